// The server's own clock: against NTP servers (config `clock.ntp`), and, when NTP is off or does not answer, against
// its gateways (the median of their measured offsets). Sample times are evidence and the server dates what arrives,
// so its clock beyond the bound is a `clock-offset` alarm (gateway ""), once, and a notice when back within half of it;
// no NTP answer for a while is an alarm too. Two gateways at least must agree before the gateways' view is an alarm
// (one gateway whose clock is wrong says nothing about the server's).
import type { Kysely } from 'kysely';
import { NtpClock, type NtpChange, type NtpStatus } from '@labtrace/protocols/node';
import type { NtpConfig } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { LabDatabase, Tables } from '../store/database.js';
import type { SecurityEvents, Severity } from '../trust/security-events.js';

/** how often the gateways' view of the server's clock is looked at */
export const GATEWAY_CHECK_MS = 30_000;
/** the gateways that must agree before their view of the server's clock is an alarm */
export const GATEWAYS_AGREEING = 2;

export interface ClockHealth {
  /** null: no NTP server is configured */
  ntp: {
    servers: string[];
    status: 'pending' | 'ok' | 'beyond-bound' | 'unreachable';
    /** a server answered the last round */
    answering: boolean;
    /** this server's clock minus NTP's, in ms (positive: ahead); null before the first answer */
    offsetMs: number | null;
    delayMs: number | null;
    server: string | null;
    stratum: number | null;
    measuredAt: number | null;
    boundMs: number;
    lastError: string | null;
  } | null;
  /** the clock as the gateways see it (their HEALTH messages' times) */
  gateways: {
    /** gateways measured recently */
    count: number;
    /**
     * this server's clock minus the median gateway's, in ms (a gateway that measures its own clock against NTP counts
     * with that offset taken out); null without a gateway measured
     */
    offsetMs: number | null;
    boundMs: number;
    /** at least two gateways agree that it is beyond the bound (and the median is) */
    beyondBound: boolean;
  };
}

export interface ServerClockDeps {
  config: NtpConfig;
  events: SecurityEvents;
  /** the SQLite LabDatabase (events recorded synchronously), or undefined on another store (recorded through db) */
  database: LabDatabase | undefined;
  db: Kysely<Tables>;
  /** each gateway measured recently: its clock minus the server's, and minus NTP's when it measures that, in ms */
  gatewayOffsets: () => readonly { offsetMs: number; ntpOffsetMs: number | undefined }[];
  /** the bound of the gateways' view (ingest.maxClockOffsetMs) */
  gatewayBoundMs: number;
  logger: Logger;
  /** the clock measured: Date.now unless a test makes it wrong */
  now?: () => number;
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export class ServerClock {
  readonly ntp: NtpClock;
  private timer: NodeJS.Timeout | undefined;
  private inferredBeyond = false;
  /** events being written (another store than SQLite), one after the other */
  private recording: Promise<void> = Promise.resolve();
  private readonly onChange = (change: NtpChange): void => this.ntpChanged(change);

  constructor(private readonly deps: ServerClockDeps) {
    this.ntp = new NtpClock(deps.config, deps.now === undefined ? {} : { now: deps.now });
  }

  async start(): Promise<void> {
    this.ntp.on('change', this.onChange);
    await this.ntp.start();
    this.timer = setInterval(() => this.checkGateways(), GATEWAY_CHECK_MS);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.ntp.stop();
    this.ntp.off('change', this.onChange);
    await this.settled();
  }

  /** One NTP round now, then the gateways' view (tests; the timers do the same). */
  async poll(): Promise<ClockHealth> {
    await this.ntp.poll();
    this.checkGateways();
    await this.settled();
    return this.health();
  }

  /** Resolves once the events under way are written. */
  async settled(): Promise<void> {
    for (;;) {
      const recording = this.recording;
      await recording;
      if (recording === this.recording) return;
    }
  }

  health(): ClockHealth {
    const n = this.ntp.status();
    return {
      ntp: n.enabled
        ? {
            servers: n.servers,
            status: n.unreachable ? 'unreachable' : n.offsetMs === null ? 'pending' : n.beyondBound ? 'beyond-bound' : 'ok',
            answering: !this.ntpDown(n),
            offsetMs: n.offsetMs === null ? null : Math.round(n.offsetMs),
            delayMs: n.delayMs === null ? null : Math.round(n.delayMs),
            server: n.server,
            stratum: n.stratum,
            measuredAt: n.measuredAt,
            boundMs: n.boundMs,
            lastError: n.lastError,
          }
        : null,
      gateways: (({ agreeing: _agreeing, ...view }) => view)(this.gatewaysView()),
    };
  }

  /** NTP off, or no reading in its last round: the gateways' view stands in */
  private ntpDown(n: NtpStatus = this.ntp.status()): boolean {
    return !n.enabled || n.failedRounds > 0 || n.offsetMs === null;
  }

  private gatewaysView(): ClockHealth['gateways'] & { agreeing: number } {
    // each gateway's estimate of the server's clock minus the true time: (gateway - true) - (gateway - server), the
    // first taken as 0 when the gateway does not measure it against NTP
    const estimates = this.deps.gatewayOffsets().map((g) => (g.ntpOffsetMs ?? 0) - g.offsetMs);
    const m = median(estimates);
    const offsetMs = m === null ? null : Math.round(m);
    const bound = this.deps.gatewayBoundMs;
    const agreeing = offsetMs === null ? 0 : estimates.filter((e) => Math.abs(e) > bound && Math.sign(e) === Math.sign(offsetMs)).length;
    return { count: estimates.length, offsetMs, boundMs: bound, beyondBound: this.inferredBeyond, agreeing };
  }

  /** The gateways' view, while NTP is off or down: an alarm when two of them agree the clock is beyond the bound. */
  checkGateways(): void {
    const view = this.gatewaysView();
    if (view.offsetMs === null) return;
    const size = Math.abs(view.offsetMs);
    if (!this.inferredBeyond && this.ntpDown() && view.agreeing >= GATEWAYS_AGREEING && size > view.boundMs) {
      this.inferredBeyond = true;
      this.note(
        'alarm',
        `inferred from the gateways (NTP ${this.ntp.enabled ? 'does not answer' : 'is not configured'}): the server's clock is ${seconds(Math.abs(view.offsetMs))} ${view.offsetMs > 0 ? 'ahead of' : 'behind'} the median of ${view.count} gateways' (${view.agreeing} agree, bound ${seconds(view.boundMs)}): the times it records are off by as much`,
      );
    } else if (this.inferredBeyond && size <= view.boundMs / 2) {
      this.inferredBeyond = false;
      this.note(
        'notice',
        `inferred from the gateways: the server's clock is back within ${seconds(view.boundMs)} of the median of ${view.count} gateways' (${seconds(view.offsetMs)})`,
      );
    }
  }

  private ntpChanged(change: NtpChange): void {
    const bound = seconds(this.deps.config.maxOffsetMs);
    if (change.kind === 'beyond')
      this.note(
        'alarm',
        `the server's clock is ${seconds(Math.abs(change.offsetMs))} ${change.offsetMs > 0 ? 'ahead of' : 'behind'} NTP (${change.server}, bound ${bound}): the times it records are off by as much`,
      );
    else if (change.kind === 'back')
      this.note('notice', `the server's clock is back within ${bound} of NTP (${seconds(change.offsetMs)}, ${change.server})`);
    else if (change.kind === 'unreachable')
      this.note(
        'alarm',
        `no NTP server answered for ${change.failedRounds} rounds (${this.ntp.status().servers.join(', ')}; ${change.lastError}): the server's clock is not measured`,
      );
    else this.note('notice', `NTP answers again (${change.server})`);
  }

  /** A `clock-offset` event about the server itself (gateway ""), as the store takes it; a log line if it cannot. */
  private note(severity: Severity, detail: string): void {
    const logInstead = (err: unknown): void =>
      this.deps.logger.error(
        { kind: 'clock-offset', severity, err: (err as Error).message },
        `a clock-offset event could not be recorded: ${detail}`,
      );
    const database = this.deps.database;
    if (database !== undefined)
      try {
        this.deps.events.record('', 'clock-offset', severity, detail);
      } catch (err) {
        logInstead(err);
      }
    else {
      const at = Date.now();
      this.recording = this.recording.then(async () => {
        try {
          const event = await this.deps.db
            .transaction()
            .execute((trx) => this.deps.events.recordIn(trx, '', 'clock-offset', severity, detail, null, at));
          this.deps.events.announce(event);
        } catch (err) {
          logInstead(err);
        }
      });
    }
  }
}
