// Reads one SCPI instrument (a multimeter, a calibrator, a power supply, a counter) over a raw TCP socket.
// At every connect the instrument must answer `*IDN?` with the profile's identity, or it is not read (its
// points are bad with the reason, and health says why). Each cycle sends the points' queries one after the
// other, each with its own timeout, then empties the error queue (`SYST:ERR?` until `0,"No error"`): the
// errors are counted and reported, and the readings of a cycle in which the instrument logged an error are
// `uncertain`, never `good`. The samples of a cycle leave together, once the error queue has been read.
//
// SCPI answers in order, one line per query, so a reply that came too late would be taken for the next
// query's. After a timeout (or a line of noise) the exchange is put back in step before anything else is
// believed: `*IDN?` is sent again and every line before its answer is dropped (counted `stale_reply`); if
// that answer does not come either, the socket is closed and opened again with a back-off. A late reply is
// therefore never stored as another point's value. Each instrument has its own socket and timers, so a dead
// one delays no other.
import { EventEmitter } from 'node:events';
import {
  channelOf,
  hasControlCharacters,
  idnMismatch,
  parseScpiError,
  parseScpiIdn,
  parseScpiNumber,
  type ScpiError,
  type ScpiPoint,
  type ScpiProfile,
} from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { ReportFilter } from '../reporting.js';
import type { InstrumentHealth, InstrumentSource, PolledSample, SourceEvents } from '../source.js';
import { describeLine, LineConnection } from './line-connection.js';

const LATENCY_WINDOW = 256;
/** the most error-queue entries read in one cycle (an instrument that never says "No error" does not hold the cycle) */
export const MAX_ERRORS_PER_CYCLE = 32;
const IDN_QUERY = '*IDN?';
const ERROR_QUERY = 'SYST:ERR?';

type Answer = { kind: 'line'; line: string } | { kind: 'timeout' } | { kind: 'closed'; reason: string } | { kind: 'stopped' };

interface Pending {
  timer: NodeJS.Timeout;
  /** lines this ask waits for; others are dropped as stale (used to get back in step) */
  accept: ((line: string) => boolean) | undefined;
  sentAt: number;
  resolve: (answer: Answer) => void;
}

/** A reading as a sample of its point. */
export function scpiSample(profile: ScpiProfile, point: ScpiPoint, line: string, ts: number): PolledSample {
  const base = { instrument: profile.id, channel: channelOf(point), ts, unit: point.unit };
  let value;
  try {
    value = parseScpiNumber(line);
  } catch (err) {
    return { ...base, value: null, quality: 'bad', reason: `invalid reply to ${point.query}: ${(err as Error).message}` };
  }
  switch (value.kind) {
    case 'number':
      return { ...base, value: value.value, quality: 'good' };
    case 'overload':
      return { ...base, value: null, quality: 'bad', reason: `overload: ${point.query} returned ${value.text}` };
    case 'nan':
      return { ...base, value: null, quality: 'bad', reason: `no value: ${point.query} returned ${value.text} (not a number)` };
  }
}

function describeErrors(errors: ScpiError[]): string {
  const text = errors.map((e) => `${e.code},"${e.message}"`).join('; ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export class ScpiInstrument extends EventEmitter<SourceEvents> implements InstrumentSource {
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
  /** the `*IDN?` line of the instrument on this connection, once it matched; undefined: not checked yet */
  private identity: string | undefined;
  private readonly lifecycle = new EventEmitter<{ stopping: [] }>();

  constructor(
    readonly profile: ScpiProfile,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.connection = new LineConnection(profile.connection, { connectTimeoutMs: Math.max(profile.timeoutMs, 1000), maxLineBytes: 4096 });
    this.reports = new ReportFilter(profile.reporting, new Map());
    this.health = { instrument: profile.id, connected: false, lastGood: null, errors: {}, polls: 0 };
    this.connection.on('line', (line) => this.onLine(line));
    this.connection.on('overflow', (bytes) => {
      this.count('invalid_reply');
      this.logger.warn({ bytes }, 'instrument sent a line longer than any reply: dropped');
    });
    this.connection.on('connected', () => {
      this.logger.info({ connection: describeLine(profile.connection) }, 'SCPI instrument connected');
      // another instrument may answer on this address now: ask again
      this.identity = undefined;
      this.setConnected(true);
    });
    this.connection.on('disconnected', (reason, retryInMs) => {
      this.count('connect');
      this.lastReason = `${describeLine(profile.connection)}: ${reason}`;
      if (this.health.connected) this.logger.warn({ reason, retryInMs }, 'SCPI connection lost');
      else this.logger.debug({ reason, retryInMs }, 'SCPI instrument not reachable');
      this.identity = undefined;
      this.setConnected(false);
      this.answer({ kind: 'closed', reason: this.lastReason });
    });
  }

  get id(): string {
    return this.profile.id;
  }

  start(): Promise<void> {
    this.running = true;
    this.connection.start();
    this.schedule(0);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.lifecycle.emit('stopping');
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.answer({ kind: 'stopped' });
    await this.cycle;
    await this.connection.stop();
  }

  getHealth(): InstrumentHealth {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (p: number): number | null =>
      sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null);
    return { ...this.health, errors: { ...this.health.errors }, latencyMs: { p50: at(0.5), p99: at(0.99) } };
  }

  private count(kind: string, n = 1): void {
    this.health.errors[kind] = (this.health.errors[kind] ?? 0) + n;
  }

  private setConnected(connected: boolean): void {
    if (this.health.connected === connected) return;
    this.health.connected = connected;
    this.emit('health', this.getHealth());
  }

  private setProblem(problem: string | undefined): void {
    if (this.health.problem === problem) return;
    if (problem === undefined) delete this.health.problem;
    else this.health.problem = problem;
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

  /** One cycle: the identity if not checked on this connection, every point's query, then the error queue. */
  private async poll(): Promise<void> {
    this.health.polls++;
    if (!this.connection.connected && !(await this.connectedWithin(this.profile.timeoutMs))) {
      if (this.running) this.report(this.badSamples(this.profile.points, `not connected: ${this.lastReason}`));
      return;
    }
    if (this.identity === undefined) {
      const problem = await this.checkIdentity();
      if (problem !== undefined) {
        if (this.running) this.report(this.badSamples(this.profile.points, problem));
        return;
      }
    }
    const samples: PolledSample[] = [];
    const points = this.profile.points;
    for (const [i, point] of points.entries()) {
      const timeoutMs = point.timeoutMs ?? this.profile.timeoutMs;
      const answer = await this.ask(point.query, timeoutMs);
      const ts = this.now();
      if (answer.kind === 'stopped') return;
      if (answer.kind === 'closed') {
        samples.push(...this.badSamples(points.slice(i), `not connected: ${answer.reason}`, ts));
        this.report(samples);
        return;
      }
      if (answer.kind === 'timeout' || hasControlCharacters(answer.line)) {
        const why =
          answer.kind === 'timeout'
            ? `no reply to ${point.query} within ${timeoutMs} ms`
            : `invalid reply to ${point.query}: noise (control characters in the line)`;
        this.count(answer.kind === 'timeout' ? 'timeout' : 'invalid_reply');
        samples.push(...this.badSamples([point], why, ts));
        if (!(await this.backInStep(why))) {
          samples.push(...this.badSamples(points.slice(i + 1), `not read: ${why}; the connection is opened again`, ts));
          this.report(samples);
          return;
        }
        continue;
      }
      const sample = scpiSample(this.profile, point, answer.line, ts);
      if (sample.quality === 'bad' && sample.reason?.startsWith('invalid reply') === true) this.count('invalid_reply');
      if (sample.reason?.startsWith('overload') === true) this.count('overload');
      samples.push(sample);
    }
    if (this.profile.errorQueue) await this.readErrorQueue(samples);
    const good = samples.filter((s) => s.quality === 'good');
    const last = good[good.length - 1];
    if (last !== undefined) this.health.lastGood = last.ts;
    this.report(samples);
  }

  /** Asks `*IDN?` and compares it with the profile; the problem in words, or undefined when it matches. */
  private async checkIdentity(): Promise<string | undefined> {
    const answer = await this.ask(IDN_QUERY, this.profile.timeoutMs);
    if (answer.kind === 'stopped') return 'stopped';
    if (answer.kind === 'closed') return `not connected: ${answer.reason}`;
    if (answer.kind === 'timeout') {
      this.count('timeout');
      const why = `no reply to ${IDN_QUERY} within ${this.profile.timeoutMs} ms`;
      // a reply may still come and would be taken for a point's: start again on a new connection
      this.connection.drop(why);
      return `not read: ${why}`;
    }
    let idn;
    try {
      idn = parseScpiIdn(answer.line);
    } catch (err) {
      this.count('invalid_reply');
      const why = (err as Error).message;
      this.connection.drop(`invalid identity reply: ${why}`);
      return `not read: invalid identity reply: ${why}`;
    }
    const mismatch = idnMismatch(this.profile.idn, idn);
    if (mismatch !== undefined) {
      this.count('identity_mismatch');
      const problem = `identity: the instrument at ${describeLine(this.profile.connection)} answers ${JSON.stringify(answer.line.trim())}: ${mismatch}`;
      if (this.health.problem !== problem)
        this.logger.error({ idn: answer.line.trim(), mismatch }, 'SCPI instrument is not the one of the profile: not read');
      this.setProblem(problem);
      return `not read: ${problem}`;
    }
    this.identity = answer.line;
    if (this.health.problem?.startsWith('identity:') === true) this.setProblem(undefined);
    this.logger.info({ idn: answer.line.trim() }, 'SCPI identity checked');
    return undefined;
  }

  /**
   * Gets the exchange back in step after a query that got no answer or noise: `*IDN?` again, and every line
   * before its answer dropped. False (and the socket closed, to be opened again) when that fails too.
   */
  private async backInStep(why: string): Promise<boolean> {
    const identity = this.identity;
    if (identity !== undefined && this.connection.connected) {
      const answer = await this.ask(IDN_QUERY, this.profile.timeoutMs, (line) => line === identity);
      if (answer.kind === 'line') return true;
      if (answer.kind === 'stopped' || answer.kind === 'closed') return false;
      this.count('timeout');
    }
    this.connection.drop(`out of step after ${why}`);
    return false;
  }

  /** SYST:ERR? until the queue is empty: errors counted, reported, and the cycle's good readings made uncertain. */
  private async readErrorQueue(samples: PolledSample[]): Promise<void> {
    const errors: ScpiError[] = [];
    let unread: string | undefined;
    for (let i = 0; ; i++) {
      if (i === MAX_ERRORS_PER_CYCLE) {
        unread = `more than ${MAX_ERRORS_PER_CYCLE} entries in the error queue`;
        break;
      }
      const answer = await this.ask(ERROR_QUERY, this.profile.timeoutMs);
      if (answer.kind === 'stopped') return;
      if (answer.kind === 'closed') {
        unread = `the error queue was not read: not connected: ${answer.reason}`;
        break;
      }
      if (answer.kind === 'timeout' || hasControlCharacters(answer.line)) {
        const why =
          answer.kind === 'timeout' ? `no reply to ${ERROR_QUERY} within ${this.profile.timeoutMs} ms` : `invalid reply to ${ERROR_QUERY}: noise`;
        this.count(answer.kind === 'timeout' ? 'timeout' : 'invalid_reply');
        unread = `the error queue was not read: ${why}`;
        await this.backInStep(why);
        break;
      }
      let entry: ScpiError;
      try {
        entry = parseScpiError(answer.line);
      } catch (err) {
        this.count('invalid_reply');
        unread = `the error queue was not read: ${(err as Error).message}`;
        break;
      }
      if (entry.code === 0) break;
      errors.push(entry);
    }
    if (errors.length > 0) {
      this.count('instrument_error', errors.length);
      for (const e of errors) this.count(`error_${e.code}`);
      this.logger.warn({ errors: describeErrors(errors) }, 'SCPI instrument reported errors');
    }
    const reason = errors.length > 0 ? `instrument error: ${describeErrors(errors)}${unread === undefined ? '' : `; ${unread}`}` : unread;
    if (reason === undefined) {
      if (this.health.problem !== undefined && !this.health.problem.startsWith('identity:')) this.setProblem(undefined);
      return;
    }
    this.setProblem(reason);
    for (const [i, s] of samples.entries()) {
      if (s.quality === 'good') samples[i] = { ...s, quality: 'uncertain', reason };
    }
  }

  /** Sends one query and waits for its line, the timeout, a closed socket or the stop. */
  private ask(query: string, timeoutMs: number, accept?: (line: string) => boolean): Promise<Answer> {
    if (!this.running) return Promise.resolve({ kind: 'stopped' });
    if (!this.connection.write(`${query}\n`)) return Promise.resolve({ kind: 'closed', reason: this.lastReason });
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => this.answer({ kind: 'timeout' }), timeoutMs);
      this.pending = { timer, accept, sentAt: this.now(), resolve };
    });
  }

  private answer(answer: Answer): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }

  private onLine(line: string): void {
    const pending = this.pending;
    if (!pending || (pending.accept !== undefined && !pending.accept(line))) {
      // a reply to a query that timed out: dropped, never taken for another query's
      this.count('stale_reply');
      return;
    }
    this.pushLatency(this.now() - pending.sentAt);
    this.answer({ kind: 'line', line });
  }

  /** Resolves true once the socket is open, false when an attempt fails, the time is up, or the source stops. */
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

  private badSamples(points: readonly ScpiPoint[], reason: string, ts = this.now()): PolledSample[] {
    return points.map((point): PolledSample => ({
      instrument: this.profile.id,
      channel: channelOf(point),
      ts,
      value: null,
      unit: point.unit,
      quality: 'bad',
      reason,
    }));
  }
}
