// Instrument connection health over time (ISO/IEC 17025 6.4.13: the equipment's record of malfunctions). The
// gateways' HEALTH messages come every few seconds and the ingest keeps only the latest in memory; this keeps a
// thinned series of them: at most one point a minute per instrument, and every change of connection, for 90 days.
import type { InstrumentHealthMessage } from '@labtrace/protocols';
import type { HealthPoint } from '@labtrace/protocols/api';
import type { LabDatabase } from '../store/database.js';

export interface EquipmentHealthOptions {
  /** the least time between two stored points of an instrument whose connection did not change */
  intervalMs: number;
  /** how long points are kept */
  retentionMs: number;
}

interface HealthRow {
  at: number;
  connected: number;
  polls: number;
  errors: string;
  latency_p50: number | null;
  latency_p99: number | null;
}

const DEFAULTS: EquipmentHealthOptions = { intervalMs: 60_000, retentionMs: 90 * 86_400_000 };

export class EquipmentHealth {
  /** the last stored point of each instrument: its time and connection */
  private readonly last = new Map<string, { at: number; connected: boolean }>();
  private lastPrune = 0;
  private readonly options: EquipmentHealthOptions;

  constructor(
    private readonly database: LabDatabase,
    options: Partial<EquipmentHealthOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Keeps the reports that are due (a minute after the last, or a change of connection). */
  record(reports: readonly InstrumentHealthMessage[]): void {
    const at = this.now();
    const db = this.database.sqlite;
    const insert = db.prepare(
      'INSERT INTO instrument_health (instrument, at, connected, polls, errors, latency_p50, latency_p99) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (const h of reports) {
        const last = this.last.get(h.instrument) ?? this.lastStored(h.instrument);
        if (last !== undefined && last.connected === h.connected && at - last.at < this.options.intervalMs) continue;
        insert.run(h.instrument, at, h.connected ? 1 : 0, h.polls, JSON.stringify(h.errors), h.latencyMs.p50, h.latencyMs.p99);
        this.last.set(h.instrument, { at, connected: h.connected });
      }
      if (at - this.lastPrune > 3_600_000) {
        this.lastPrune = at;
        db.prepare('DELETE FROM instrument_health WHERE at < ?').run(at - this.options.retentionMs);
      }
    })();
  }

  /**
   * The points of an instrument between two times, at most `points`: the interval is cut into that many buckets,
   * each answered by its last report (the counters are cumulative), disconnected when any report in it was.
   */
  history(instrument: string, from: number, to: number, points: number): HealthPoint[] {
    const rows = this.database.sqlite
      .prepare(
        'SELECT at, connected, polls, errors, latency_p50, latency_p99 FROM instrument_health WHERE instrument = ? AND at >= ? AND at <= ? ORDER BY at, id',
      )
      .all(instrument, from, to) as HealthRow[];
    const bucketMs = Math.max(1, Math.ceil((to - from + 1) / points));
    const out: HealthPoint[] = [];
    let bucket = -1;
    for (const r of rows) {
      const b = Math.floor((r.at - from) / bucketMs);
      const point: HealthPoint = {
        at: r.at,
        connected: r.connected === 1,
        polls: r.polls,
        errors: JSON.parse(r.errors) as Record<string, number>,
        latencyP50: r.latency_p50,
        latencyP99: r.latency_p99,
      };
      const previous = out.at(-1);
      if (b === bucket && previous !== undefined) out[out.length - 1] = { ...point, connected: previous.connected && point.connected };
      else out.push(point);
      bucket = b;
    }
    return out;
  }

  private lastStored(instrument: string): { at: number; connected: boolean } | undefined {
    const row = this.database.sqlite
      .prepare('SELECT at, connected FROM instrument_health WHERE instrument = ? ORDER BY id DESC LIMIT 1')
      .get(instrument) as { at: number; connected: number } | undefined;
    return row === undefined ? undefined : { at: row.at, connected: row.connected === 1 };
  }
}
