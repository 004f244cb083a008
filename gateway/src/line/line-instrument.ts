// Reads one instrument that speaks in lines, over a serial port or a serial device server: a balance
// (MT-SICS, SBI) or any instrument read by a pattern (the generic dialect). Poll mode sends the request every
// interval and waits for the reply up to the timeout; unsolicited mode takes what the instrument prints. A
// reader turns each line into samples; a line that is not a reply is counted (`invalid_reply`) and never
// believed; the connection reopens by itself. Each instrument has its own connection and timers, so a dead
// one delays no other.
import { EventEmitter } from 'node:events';
import type { LineConnection as LineConnectionConfig, Reporting } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { ReportFilter } from '../reporting.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { describeLine, LineConnection } from './line-connection.js';

const LATENCY_WINDOW = 256;

/** What one line is: an answer (its samples, maybe none, and a health counter to bump), or not a reply. */
export type LineOutcome =
  | { kind: 'answer'; samples: PolledSample[]; count?: string }
  /** not a reply at all (noise, a line the dialect cannot read): counted as invalid_reply */
  | { kind: 'invalid'; reason: string }
  /** a well-formed line that does not answer a request (an acknowledgement): invalid_reply, after the stale check */
  | { kind: 'not-an-answer'; reason: string };

/** How the lines of one instrument are read. */
export interface LineReader {
  /** sent at each poll; undefined in unsolicited mode */
  readonly request: string | undefined;
  read(line: string, ts: number): LineOutcome;
  /** a bad sample for every point, with the reason */
  bad(reason: string, ts: number): PolledSample[];
  /**
   * The reply to a command that changes the instrument (zero, tare): done, refused with the reason, or
   * undefined for a line that is not its reply. Absent: the instrument takes no commands.
   */
  ack?(command: string, line: string): { ok: true } | { ok: false; reason: string } | undefined;
  /** the channel that carries the records of the commands sent */
  readonly commandChannel?: string;
}

interface QueuedCommand {
  name: string;
  bytes: string;
}

interface PendingCommand {
  name: string;
  timer: NodeJS.Timeout;
  done: (outcome: { ok: true } | { ok: false; reason: string }) => void;
}

export interface LineInstrumentOptions {
  id: string;
  connection: LineConnectionConfig;
  mode: 'poll' | 'unsolicited';
  pollIntervalMs: number;
  timeoutMs: number;
  reporting: Reporting;
  /** what the instrument is called in the log ("balance") */
  what: string;
}

interface Pending {
  sentAt: number;
  timer: NodeJS.Timeout;
  /** why the last line received for this poll was refused, if one was */
  invalid?: string;
  done: () => void;
}

export class LineInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
  private readonly connection: LineConnection;
  private readonly health: Omit<InstrumentHealth, 'latencyMs'>;
  private readonly latencies: number[] = [];
  private nextLatency = 0;
  private readonly reports: ReportFilter;
  private pollTimer: NodeJS.Timeout | undefined;
  private pending: Pending | undefined;
  /** commands waiting for the next poll, and the one waiting for its reply */
  private readonly commands: QueuedCommand[] = [];
  private commandPending: PendingCommand | undefined;
  private cycle: Promise<void> = Promise.resolve();
  private running = false;
  private lastReason = 'not connected yet';
  /** wakes a poll waiting for the line when the source stops */
  private readonly lifecycle = new EventEmitter<{ stopping: [] }>();

  private readonly options: LineInstrumentOptions;

  constructor(
    options: LineInstrumentOptions,
    private readonly reader: LineReader,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.options = options;
    const profile = options;
    this.connection = new LineConnection(profile.connection, { connectTimeoutMs: Math.max(profile.timeoutMs, 1000) });
    this.reports = new ReportFilter(profile.reporting, new Map());
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
    this.connection.on('line', (line) => this.onLine(line));
    this.connection.on('overflow', (bytes) => {
      this.count('invalid_reply');
      this.logger.warn({ bytes }, `${options.what} sent a line longer than any reply: dropped`);
    });
    this.connection.on('connected', () => {
      this.logger.info({ connection: describeLine(profile.connection) }, `${options.what} connected`);
      this.setConnected(true);
    });
    this.connection.on('disconnected', (reason, retryInMs) => {
      this.count('connect');
      this.lastReason = `${describeLine(profile.connection)}: ${reason}`;
      if (this.health.connected) this.logger.warn({ reason, retryInMs }, `${options.what} connection lost`);
      else this.logger.debug({ reason, retryInMs }, `${options.what} not reachable`);
      this.setConnected(false);
      // a poll waiting on a closed line will not get its reply
      this.finishPending(`${this.lastReason} (closed while waiting for the reply)`);
    });
  }

  get id(): string {
    return this.options.id;
  }

  start(): Promise<void> {
    this.running = true;
    this.connection.start();
    if (this.options.mode === 'poll') this.schedule(0);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.commandPending?.done({ ok: false, reason: 'sent; the gateway stopped before the reply' });
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
        () => this.schedule(Math.max(0, this.options.pollIntervalMs - (this.now() - started))),
        (err: unknown) => {
          this.logger.error({ err: String(err) }, 'poll failed unexpectedly');
          this.schedule(this.options.pollIntervalMs);
        },
      );
    }, delay);
  }

  /** One poll: the request, then its reply, a timeout, or a closed line. */
  private async poll(): Promise<void> {
    this.health.polls++;
    // a line being opened (at start, or again after it closed) gets the poll's timeout to come up
    if (!this.connection.connected && !(await this.connectedWithin(this.options.timeoutMs))) {
      if (this.running) {
        this.report(this.reader.bad(`not connected: ${this.lastReason}`, this.now()));
        // a zero or tare is never sent later than asked, to a balance loaded since
        for (const c of this.commands.splice(0)) this.recordCommand(c.name, { ok: false, reason: `not sent: not connected: ${this.lastReason}` });
      }
      return;
    }
    // commands go between two polls, one at a time, each waiting for its reply
    for (let c = this.commands.shift(); c !== undefined && this.running; c = this.commands.shift()) await this.sendCommand(c);
    const sentAt = this.now();
    const request = this.reader.request;
    if (!this.running || request === undefined || !this.connection.write(request)) return;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const invalid = this.pending?.invalid;
        this.count('timeout');
        this.finishPending(
          invalid === undefined
            ? `no reply within ${this.options.timeoutMs} ms`
            : `invalid reply: ${invalid} (no valid reply within ${this.options.timeoutMs} ms)`,
        );
      }, this.options.timeoutMs);
      this.pending = { sentAt, timer, done: resolve };
    });
  }

  /** Counts a command refused before it was sent. */
  protected countRefused(): void {
    this.count('command_refused');
  }

  /** Queues a command for the next poll; its signed record is emitted once it is answered, refused or timed out. */
  protected queueCommand(name: string, bytes: string): void {
    this.commands.push({ name, bytes });
  }

  private sendCommand(command: QueuedCommand): Promise<void> {
    if (!this.connection.write(command.bytes)) {
      this.recordCommand(command.name, { ok: false, reason: `not sent: not connected: ${this.lastReason}` });
      return Promise.resolve();
    }
    this.logger.info({ command: command.name }, `${this.options.what}: command sent`);
    return new Promise<void>((resolve) => {
      const done = (outcome: { ok: true } | { ok: false; reason: string }): void => {
        clearTimeout(this.commandPending?.timer);
        this.commandPending = undefined;
        this.recordCommand(command.name, outcome);
        resolve();
      };
      const timer = setTimeout(() => {
        this.count('timeout');
        done({ ok: false, reason: `sent; no reply within ${this.options.timeoutMs} ms` });
      }, this.options.timeoutMs);
      this.commandPending = { name: command.name, timer, done };
    });
  }

  /** The signed record of a command: its name as the value, good when the instrument did it, bad with the reason. */
  private recordCommand(name: string, outcome: { ok: true } | { ok: false; reason: string }): void {
    if (!outcome.ok) this.count('command_failed');
    const sample: PolledSample = {
      instrument: this.options.id,
      channel: this.reader.commandChannel ?? 'command',
      ts: this.now(),
      value: name,
      unit: '',
      quality: outcome.ok ? 'good' : 'bad',
      ...(outcome.ok ? {} : { reason: outcome.reason }),
    };
    // never filtered by the reporting mode: every command sent is on record
    this.emit('samples', [sample]);
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
    if (reason !== undefined) this.report(this.reader.bad(reason, this.now()));
    pending.done();
  }

  private onLine(line: string): void {
    const ts = this.now();
    const command = this.commandPending;
    if (command !== undefined) {
      const outcome = this.reader.ack?.(command.name, line);
      if (outcome === undefined) this.count('stale_reply');
      else command.done(outcome);
      return;
    }
    const outcome = this.reader.read(line, ts);
    if (outcome.kind === 'invalid') {
      this.count('invalid_reply');
      if (this.pending) this.pending.invalid = outcome.reason;
      this.logger.debug({ reason: outcome.reason }, `${this.options.what} line refused`);
      return;
    }
    if (this.options.mode === 'poll') {
      const pending = this.pending;
      if (!pending) {
        // a reply to a poll that already timed out, or a print the operator asked for: not this poll's answer
        this.count('stale_reply');
        return;
      }
      this.pushLatency(ts - pending.sentAt);
    }
    if (outcome.kind === 'not-an-answer') {
      this.count('invalid_reply');
      if (this.pending) this.pending.invalid = outcome.reason;
      return;
    }
    if (outcome.count !== undefined) this.count(outcome.count);
    const good = outcome.samples.filter((s) => s.quality === 'good');
    const last = good[good.length - 1];
    if (last !== undefined) this.health.lastGood = last.ts;
    if (outcome.samples.length > 0) this.report(outcome.samples);
    this.finishPending(undefined);
  }

  private pushLatency(ms: number): void {
    this.emit('latency', ms);
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.nextLatency] = ms;
    this.nextLatency = (this.nextLatency + 1) % LATENCY_WINDOW;
  }

  private report(samples: PolledSample[]): void {
    // on-change reporting: a bad or uncertain sample counts as a change of value (to its reason)
    const reported = samples.filter((s) => this.reports.accept(s.channel, s.quality === 'good' ? s.value : `${s.quality}:${s.reason ?? ''}`, s.ts));
    if (reported.length > 0) this.emit('samples', reported);
  }
}
