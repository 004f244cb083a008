// The loop that copies durably stored batches to InfluxDB, for the gateway's historian sink (its outbox) and the
// server's InfluxDB series store (its SQLite or PostgreSQL store). The source says where the batches are and how the
// durable cursor moves; this loop writes them, in order, and moves the cursor only past writes InfluxDB acknowledged.
//
// - Batches are joined into writes of whole batches up to batchLines lines; a larger batch goes in several writes and
//   counts as written when all of them succeeded.
// - Up to maxInFlight writes are in flight at once (each on its own connection). Their answers are taken in order:
//   the cursor moves past a write only when it and every write before it were acknowledged. When a write fails, the
//   writes after it are awaited and their answers dropped; they are written again from the cursor (explicit
//   timestamps and stable tags: the same points, overwritten).
// - network errors, time-outs, 408, 429 and 5xx: an outage, retried with exponential back-off, the cursor stays;
// - 401, 403, 404: InfluxDB refuses every write (an operator can fix it): retried like an outage, with an ALARM;
// - any other 4xx: this write can never succeed. Several batches joined are written again one at a time, to find
//   which; a single batch refused is handed to the source (which records it) and the cursor moves past it.
import { EventEmitter } from 'node:events';
import type { InfluxFailure, InfluxOutcome } from './write.js';
import { joinChunks } from './records.js';

/** A batch to write: its place in the source's order and its line protocol. */
export interface ForwardItem {
  /** strictly increasing in the source's order */
  position: number;
  /** the batch's lines, in chunks of at most batchLines lines each (none: nothing to write) */
  chunks: Uint8Array[];
  lines: number;
}

/** Where the batches are read and how the durable cursor moves. Any of these may be synchronous. */
export interface ForwardSource<I extends ForwardItem> {
  /** up to `limit` batches after `position`, in order */
  read(after: number, limit: number): Promise<I[]> | I[];
  /** these batches (in order, contiguous from the cursor) were acknowledged by InfluxDB: move the durable cursor past them */
  advance(items: I[]): Promise<void> | void;
  /** InfluxDB refused this batch for good: record it and move the durable cursor past it */
  refuse(item: I, failure: InfluxFailure, error: string): Promise<void> | void;
}

/** What writes a body of line protocol (InfluxWriter.writeBody) */
export interface BodyWriter {
  writeBody(body: Uint8Array): Promise<InfluxOutcome>;
}

export interface ForwarderLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface InfluxForwarderOptions {
  writer: BodyWriter;
  logger: ForwarderLogger;
  /** fields on every log line, such as { sink: 'influx' } */
  logFields: Record<string, unknown>;
  /** where the batches wait while InfluxDB is down, for the log: 'the outbox', 'the store' */
  holder: string;
  /** an outage is an ALARM (error) rather than a warning (default false) */
  alarmOnOutage?: boolean | undefined;
  /** lines per HTTP write (default 5000) */
  batchLines?: number | undefined;
  /** writes in flight at once (default 4) */
  maxInFlight?: number | undefined;
  /** batches read from the source at a time (default 64) */
  page?: number | undefined;
  /** back-off after the first failed write, doubling up to retryMaxMs (defaults 1 s and 30 s) */
  retryInitialMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** how often the source is looked at when everything is written (default 1 s); notify() looks at once */
  pollMs?: number | undefined;
  /** the cursor before the first run (the source's position before its first batch; default -1) */
  start?: number | undefined;
}

export interface InfluxForwarderEvents<I extends ForwardItem> {
  /** these batches are written and the durable cursor is past them */
  written: [items: I[], lines: number];
  /** InfluxDB refused a batch for good; the source recorded it and the cursor is past it */
  rejected: [item: I, error: string];
  /** the first failed write of an outage */
  failing: [error: string];
  /** a write succeeded (or a batch was judged on its merits) after an outage */
  recovered: [];
}

interface Flight<I> {
  group: I[];
  answer: Promise<InfluxOutcome>;
  /** the answer, once it has come */
  outcome?: InfluxOutcome;
}

export class InfluxForwarder<I extends ForwardItem> extends EventEmitter<InfluxForwarderEvents<I>> {
  readonly batchLines: number;
  private readonly maxInFlight: number;
  private readonly page: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly pollMs: number;
  private running = false;
  private wake: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** notify() ends an idle wait, never a back-off (batches are notified one by one, an outage must not speed up) */
  private idle = false;
  private poked = false;
  private position: number;
  /** after a refused write of several batches, batches up to this position are written one at a time */
  private isolateUntil = Number.NEGATIVE_INFINITY;
  private failedAttempts = 0;
  private outageSince: number | undefined;
  private outageKind: InfluxFailure['kind'] | undefined;
  private error: string | undefined;

  constructor(private readonly options: InfluxForwarderOptions) {
    super();
    this.batchLines = options.batchLines ?? 5000;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 4);
    this.page = options.page ?? 64;
    this.retryInitialMs = options.retryInitialMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.position = options.start ?? -1;
  }

  /** the position of the last batch written (or refused for good) in this run */
  get cursor(): number {
    return this.position;
  }

  /** True while writes fail and batches are held back. */
  get isFailing(): boolean {
    return this.outageSince !== undefined;
  }

  /** the last failure, as reported (HTTP status and InfluxDB's message) */
  get lastError(): string | undefined {
    return this.error;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Writes the source's batches after `from` until stop(); resolves when stopped (after the writes in flight were
   * answered and, in order, taken into the cursor). Rejects when the source throws (a closed store, a lost lease).
   */
  async run(source: ForwardSource<I>, from: number): Promise<void> {
    if (this.running) throw new Error('the InfluxDB forwarder is running already');
    this.running = true;
    this.position = from;
    this.isolateUntil = Number.NEGATIVE_INFINITY;
    try {
      await this.loop(source);
    } finally {
      this.running = false;
      this.interrupt();
    }
  }

  /** Ends run() after the writes in flight have been answered (or timed out); leaves no timer behind. */
  stop(): void {
    this.running = false;
    this.interrupt();
  }

  /** Looks at the source now rather than at the next poll (call it after storing a batch). */
  notify(): void {
    this.poked = true;
    if (this.idle) this.interrupt();
  }

  private interrupt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.idle = false;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private pause(ms: number, idle: boolean): Promise<void> {
    if (idle && this.poked) return Promise.resolve();
    this.idle = idle;
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => this.interrupt(), ms);
    });
  }

  private async loop(source: ForwardSource<I>): Promise<void> {
    /** read, not yet sent */
    let queue: I[] = [];
    /** the position of the last batch read */
    let readUpTo = this.position;
    /** nothing more to read for now */
    let drained = false;
    const flights: Flight<I>[] = [];
    const dropAll = async (): Promise<void> => {
      // answers after a failure are not taken: those batches are written again from the cursor
      await Promise.all(flights.splice(0).map((f) => f.answer));
      queue = [];
      readUpTo = this.position;
      drained = false;
    };
    try {
      while (this.running) {
        // fill the pipeline
        while (this.running && flights.length < this.maxInFlight) {
          if (queue.length === 0 && !drained) {
            this.poked = false;
            queue = await source.read(readUpTo, this.page);
            const last = queue[queue.length - 1];
            if (last === undefined) drained = true;
            else readUpTo = last.position;
          }
          const group = this.nextGroup(queue);
          if (group.length === 0) break;
          queue.splice(0, group.length);
          const flight: Flight<I> = { group, answer: this.send(group) };
          flight.answer = flight.answer.then((outcome) => (flight.outcome = outcome));
          flights.push(flight);
        }
        const head = flights.shift();
        if (head === undefined) {
          if (!this.running) break;
          await this.pause(this.pollMs, true);
          drained = false;
          continue;
        }
        const outcome = await head.answer;
        if (outcome.ok) {
          this.answered();
          // the writes after it that are acknowledged already move the cursor in the same step (one durable update)
          const group = [...head.group];
          while (flights[0]?.outcome?.ok === true) group.push(...(flights.shift() as Flight<I>).group);
          await this.taken(source, group);
          // more may have been stored meanwhile
          drained = false;
          continue;
        }
        await dropAll();
        const only = head.group.length === 1 ? head.group[0] : undefined;
        if (outcome.kind === 'refused' && only === undefined) {
          this.answered();
          this.isolateUntil = head.group[head.group.length - 1]?.position ?? this.isolateUntil;
          this.options.logger.warn(
            { ...this.options.logFields, batches: head.group.length, err: outcome.error },
            'InfluxDB refused a write; writing its batches one by one',
          );
        } else if (outcome.kind === 'refused' && only !== undefined) {
          this.answered();
          const error = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
          this.error = error;
          await source.refuse(only, outcome, error);
          this.position = only.position;
          readUpTo = this.position;
          this.emit('rejected', only, error);
        } else {
          await this.backOff(outcome);
        }
      }
      // stopped: the writes in flight are answered, and those acknowledged in order are taken
      while (flights.length > 0) {
        const head = flights.shift() as Flight<I>;
        const outcome = await head.answer;
        if (!outcome.ok) break;
        this.answered();
        await this.taken(source, head.group);
      }
    } finally {
      await Promise.all(flights.splice(0).map((f) => f.answer));
    }
  }

  private async taken(source: ForwardSource<I>, group: I[]): Promise<void> {
    await source.advance(group);
    const last = group[group.length - 1];
    if (last !== undefined) this.position = last.position;
    this.emit(
      'written',
      group,
      group.reduce((n, item) => n + item.lines, 0),
    );
  }

  /** Whole batches up to batchLines lines, oldest first, always at least one; one at a time while isolating. */
  private nextGroup(queue: I[]): I[] {
    const group: I[] = [];
    let lines = 0;
    for (const item of queue) {
      if (group.length > 0 && (lines + item.lines > this.batchLines || item.position <= this.isolateUntil)) break;
      group.push(item);
      lines += item.lines;
      if (item.position <= this.isolateUntil) break;
    }
    return group;
  }

  /** One group: its chunks joined into one write, or a batch larger than batchLines in several writes, in order. */
  private async send(group: I[]): Promise<InfluxOutcome> {
    const only = group.length === 1 ? group[0] : undefined;
    const bodies = only !== undefined ? only.chunks : [joinChunks(group.flatMap((item) => item.chunks))];
    for (const body of bodies) {
      if (body.length === 0) continue;
      const outcome = await this.options.writer.writeBody(body);
      if (!outcome.ok) return outcome;
    }
    return { ok: true };
  }

  /** InfluxDB took a write, or judged a batch on its merits: whatever stopped the writes is over. */
  private answered(): void {
    if (this.outageSince === undefined) return;
    this.options.logger.info(
      { ...this.options.logFields, attempts: this.failedAttempts, outageMs: Date.now() - this.outageSince },
      'InfluxDB writes succeed again; catching up',
    );
    this.outageSince = undefined;
    this.outageKind = undefined;
    this.failedAttempts = 0;
    this.emit('recovered');
  }

  private async backOff(outcome: InfluxFailure): Promise<void> {
    this.failedAttempts++;
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(this.failedAttempts - 1, 30));
    const fields = { ...this.options.logFields, status: outcome.status, err: outcome.error, attempts: this.failedAttempts, retryInMs: delay };
    const first = this.outageSince === undefined;
    if (first) this.outageSince = Date.now();
    this.error = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
    // said once per outage, and again when its nature changes (the server came back but refuses every write)
    if (outcome.kind !== this.outageKind) {
      const holder = this.options.holder;
      if (outcome.kind === 'refused-all') {
        this.options.logger.error(
          fields,
          `ALARM: InfluxDB refuses every write (database or bucket missing, or credentials); batches are held in ${holder}`,
        );
      } else if (this.options.alarmOnOutage === true) {
        this.options.logger.error(fields, `ALARM: InfluxDB writes fail; batches are held in ${holder} and written when it is back`);
      } else {
        this.options.logger.warn(fields, `InfluxDB write failed; batches are held in ${holder} and retried`);
      }
    } else {
      this.options.logger.debug(fields, 'InfluxDB write failed again');
    }
    this.outageKind = outcome.kind;
    if (first) this.emit('failing', outcome.error);
    if (this.running) await this.pause(delay, false);
  }
}
