// Reads one balance speaking MT-SICS or Sartorius SBI, over a serial port or a serial device server.
// Poll mode asks for the weight every interval (MT-SICS `SI`, SBI `ESC P`) and waits for the reply up
// to the profile's timeout; unsolicited mode takes what the balance prints (Print key, auto print).
// Every weight gets a quality; a line that is not a reply is counted (`invalid_reply`) and never
// believed; the connection reopens by itself. Each balance has its own connection and timers, so a
// dead one delays no other instrument.
import { EventEmitter } from 'node:events';
import { channelOf, parseSbiLine, parseSicsReply, type BalanceProfile, type BalanceReading } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { ReportFilter } from '../reporting.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { describeLine, LineConnection } from './line-connection.js';

const LATENCY_WINDOW = 256;

/** What is sent to ask for the weight now: MT-SICS "send immediate weight", SBI "print". */
export const POLL_COMMAND: Readonly<Record<BalanceProfile['dialect'], string>> = { 'mt-sics': 'SI\r\n', sbi: '\x1bP' };

/** One line of the balance read by its dialect; throws E_CODEC for a line that is not a reply. */
export function readLine(dialect: BalanceProfile['dialect'], line: string): BalanceReading {
  return dialect === 'mt-sics' ? parseSicsReply(line, 'SI') : parseSbiLine(line);
}

/**
 * The sample a reading gives, or undefined for none. A busy balance (MT-SICS `S I`, SBI `C`) gives no
 * sample: it has no weight to report, and the next poll asks again; health counts it (`busy`), and a
 * balance that stays busy shows as a `lastGood` that stops moving. A weight in another unit than the
 * profile's is bad with the reason: it is never stored under the wrong unit, nor converted.
 */
export function sampleOf(profile: BalanceProfile, reading: BalanceReading, ts: number): PolledSample | undefined {
  const point = profile.points[0];
  if (point === undefined) return undefined;
  const base = { instrument: profile.id, channel: channelOf(point), ts, unit: point.unit };
  switch (reading.kind) {
    case 'weight': {
      // SBI prints no unit while the weight moves: the unit is the profile's then
      if (reading.unit !== '' && reading.unit !== point.unit) {
        return {
          ...base,
          value: null,
          quality: 'bad',
          reason: `unit: the balance printed ${reading.value} ${reading.unit}, the profile expects ${point.unit}`,
        };
      }
      if (!reading.stable) return { ...base, value: reading.value, quality: 'uncertain', reason: 'unstable' };
      return { ...base, value: reading.value, quality: 'good' };
    }
    case 'overload':
    case 'underload':
      return { ...base, value: null, quality: 'bad', reason: reading.kind };
    case 'error':
      return { ...base, value: null, quality: 'bad', reason: `${reading.code}: ${reading.meaning}` };
    case 'busy':
    case 'done':
      return undefined;
  }
}

interface Pending {
  sentAt: number;
  timer: NodeJS.Timeout;
  /** why the last line received for this poll was refused, if one was */
  invalid?: string;
  done: () => void;
}

export class BalanceInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  private readonly connection: LineConnection;
  private readonly health: Omit<InstrumentHealth, 'latencyMs'>;
  private readonly latencies: number[] = [];
  private nextLatency = 0;
  private readonly reports: ReportFilter;
  private pollTimer: NodeJS.Timeout | undefined;
  private pending: Pending | undefined;
  private cycle: Promise<void> = Promise.resolve();
  private running = false;
  private lastReason = 'not connected yet';
  /** wakes a poll waiting for the line when the source stops */
  private readonly lifecycle = new EventEmitter<{ stopping: [] }>();

  constructor(
    readonly profile: BalanceProfile,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.connection = new LineConnection(profile.connection, { connectTimeoutMs: Math.max(profile.timeoutMs, 1000) });
    this.reports = new ReportFilter(profile.reporting, new Map());
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
    this.connection.on('line', (line) => this.onLine(line));
    this.connection.on('overflow', (bytes) => {
      this.count('invalid_reply');
      this.logger.warn({ bytes }, 'balance sent a line longer than any reply: dropped');
    });
    this.connection.on('connected', () => {
      this.logger.info({ connection: describeLine(profile.connection) }, 'balance connected');
      this.setConnected(true);
    });
    this.connection.on('disconnected', (reason, retryInMs) => {
      this.count('connect');
      this.lastReason = `${describeLine(profile.connection)}: ${reason}`;
      if (this.health.connected) this.logger.warn({ reason, retryInMs }, 'balance connection lost');
      else this.logger.debug({ reason, retryInMs }, 'balance not reachable');
      this.setConnected(false);
      // a poll waiting on a closed line will not get its reply
      this.finishPending(`${this.lastReason} (closed while waiting for the reply)`);
    });
  }

  get id(): string {
    return this.profile.id;
  }

  start(): Promise<void> {
    this.running = true;
    this.connection.start();
    if (this.profile.mode === 'poll') this.schedule(0);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.lifecycle.emit('stopping');
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.finishPending(undefined);
    await this.cycle;
    await this.connection.stop();
  }

  getHealth(): InstrumentHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number): number | null =>
      sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null);
    return { ...this.health, errors: { ...this.health.errors }, latencyMs: { p50: at(0.5), p99: at(0.99) } };
  }

  private count(kind: string): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + 1;
  }

  private setConnected(connected: boolean): void {
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    this.emit('health', this.getHealth());
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.pollTimer = setTimeout(() => {
      const started = this.now();
      this.cycle = this.poll().then(
        () => this.schedule(Math.max(0, this.profile.pollIntervalMs - (this.now() - started))),
        (err: unknown) => {
          this.logger.error({ err: String(err) }, 'poll failed unexpectedly');
          this.schedule(this.profile.pollIntervalMs);
        },
      );
    }, delay);
  }

  /** One poll: the request, then its reply, a timeout, or a closed line. */
  private async poll(): Promise<void> {
    this.health.polls++;
    // a line being opened (at start, or again after it closed) gets the poll's timeout to come up
    if (!this.connection.connected && !(await this.connectedWithin(this.profile.timeoutMs))) {
      if (this.running) this.report([this.badSample(`not connected: ${this.lastReason}`, this.now())]);
      return;
    }
    const sentAt = this.now();
    if (!this.running || !this.connection.write(POLL_COMMAND[this.profile.dialect])) return;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const invalid = this.pending?.invalid;
        this.count('timeout');
        this.finishPending(
          invalid === undefined
            ? `no reply within ${this.profile.timeoutMs} ms`
            : `invalid reply: ${invalid} (no valid reply within ${this.profile.timeoutMs} ms)`,
        );
      }, this.profile.timeoutMs);
      this.pending = { sentAt, timer, done: resolve };
    });
  }

  /** Resolves true once the line is open, false when an attempt fails, the time is up, or the source stops. */
  private connectedWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.connection.off('connected', onUp);
        this.connection.off('disconnected', onDown);
        this.lifecycle.off('stopping', onDown);
        resolve(ok);
      };
      const onUp = (): void => done(true);
      const onDown = (): void => done(false);
      const timer = setTimeout(onDown, ms);
      this.connection.on('connected', onUp);
      this.connection.on('disconnected', onDown);
      this.lifecycle.once('stopping', onDown);
    });
  }

  /** Ends the waiting poll: with a bad sample for `reason`, or silently (undefined: stopping, or answered). */
  private finishPending(reason: string | undefined): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    if (reason !== undefined) this.report([this.badSample(reason, this.now())]);
    pending.done();
  }

  private onLine(line: string): void {
    const ts = this.now();
    let reading: BalanceReading;
    try {
      reading = readLine(this.profile.dialect, line);
    } catch (err) {
      this.count('invalid_reply');
      const reason = (err as Error).message;
      if (this.pending) this.pending.invalid = reason;
      this.logger.debug({ reason }, 'balance line refused');
      return;
    }
    if (this.profile.mode === 'poll') {
      const pending = this.pending;
      if (!pending) {
        // a reply to a poll that already timed out, or a print the operator asked for: not this poll's answer
        this.count('stale_reply');
        return;
      }
      this.pushLatency(ts - pending.sentAt);
    }
    if (reading.kind === 'done') {
      // an acknowledgement is not an answer to a weight request
      this.count('invalid_reply');
      if (this.pending) this.pending.invalid = 'an acknowledgement instead of a weight';
      return;
    }
    if (reading.kind === 'busy') this.count('busy');
    if (reading.kind === 'error') this.count(`error_${reading.code.replace(/\s+/g, '_')}`);
    const sample = sampleOf(this.profile, reading, ts);
    if (sample?.quality === 'good') this.health.lastGood = ts;
    if (sample) this.report([sample]);
    this.finishPending(undefined);
  }

  private pushLatency(ms: number): void {
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.nextLatency] = ms;
    this.nextLatency = (this.nextLatency + 1) % LATENCY_WINDOW;
  }

  private report(samples: PolledSample[]): void {
    // on-change reporting: a bad or uncertain sample counts as a change of value (to its reason)
    const reported = samples.filter((s) => this.reports.accept(s.channel, s.quality === 'good' ? s.value : `${s.quality}:${s.reason ?? ''}`, s.ts));
    if (reported.length > 0) this.emit('samples', reported);
  }

  private badSample(reason: string, ts: number): PolledSample {
    const point = this.profile.points[0];
    return {
      instrument: this.profile.id,
      channel: point === undefined ? 'weight' : channelOf(point),
      ts,
      value: null,
      unit: point?.unit ?? '',
      quality: 'bad',
      reason,
    };
  }
}
