// Decides which good samples of a channel are worth reporting (periodic, on change with a deadband,
// or both). Pure: no clock and no timers; the caller passes each sample's timestamp.
import type { Reporting } from '@labtrace/protocols';

export type ReportedValue = number | boolean | string | null;

interface LastReport {
  value: ReportedValue;
  ts: number;
}

export class ReportFilter {
  // One entry per channel that has reported, so the map is bounded by the profile's points.
  private readonly last = new Map<string, LastReport>();

  constructor(
    private readonly defaults: Reporting,
    /** per-channel settings that override the defaults (a Modbus point may carry its own) */
    private readonly perChannel: ReadonlyMap<string, Reporting> = new Map(),
  ) {}

  /**
   * True when the value should be reported; the filter then remembers it as the channel's last report.
   * - periodic: always.
   * - change: the first value, then a number that moved by more than the deadband from the last
   *   reported value (not the last seen one, so a slow drift is reported once it adds up), or any
   *   other value (boolean, string, null) that differs from it.
   * - both: as change, and also when periodMs or more have passed since the last report.
   */
  accept(channel: string, value: ReportedValue, ts: number): boolean {
    const reporting = this.perChannel.get(channel) ?? this.defaults;
    const last = this.last.get(channel);
    let report: boolean;
    if (reporting.mode === 'periodic' || last === undefined) report = true;
    else report = changed(last.value, value, reporting.deadband) || (reporting.mode === 'both' && ts - last.ts >= reporting.periodMs);
    if (report) this.last.set(channel, { value, ts });
    return report;
  }

  /** Forgets the channel's last report, so its next value is reported (after a bad or stale sample, for instance). */
  forget(channel: string): void {
    this.last.delete(channel);
  }

  clear(): void {
    this.last.clear();
  }
}

function changed(before: ReportedValue, now: ReportedValue, deadband: number): boolean {
  if (typeof before === 'number' && typeof now === 'number') return Math.abs(now - before) > deadband;
  return before !== now;
}
