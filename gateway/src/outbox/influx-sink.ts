// Writes the outbox's batches to InfluxDB, an optional on-site historian. The sink keeps its own cursor in the
// outbox: a batch is confirmed for 'influx' only after InfluxDB has answered 2xx to the write that carried it, so
// a batch survives an InfluxDB outage of any length in the outbox (durably) and is written in order afterwards.
//
// A point is identified by measurement + tags + timestamp, and the tags are stable (never the sequence number), so
// writing a batch again (its confirmation was lost in a crash) overwrites the same points: a replay is idempotent.
//
// What is retried and what is not:
// - network errors, time-outs, 408, 429 and 5xx: an outage; retried with exponential back-off, nothing is confirmed;
// - 401, 403, 404 (database or bucket not found): the server refuses every batch, not this one; an operator can fix
//   it (create the database, correct the credentials), so it is retried like an outage, with an ALARM in the log;
// - any other 4xx (400 field type conflict, 413, 422 ...): this batch can never be written as it is. It is logged as
//   an ALARM, recorded in the outbox's sink_failures and confirmed for 'influx' only: the MQTT sink (and so the
//   server) still has it. Several batches joined into one write are first written one by one, to find which.
import { EventEmitter } from 'node:events';
import { LabtraceError, type DataMessage } from '@labtrace/protocols';
import {
  INFLUX_MEASUREMENT_NAME,
  InfluxWriter,
  toLineProtocol as samplesToLines,
  type InfluxFailure,
  type InfluxOutcome,
  type InfluxTarget,
} from '@labtrace/protocols/influx';
import type { InfluxConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Outbox, StoredBatch } from './outbox.js';

export const INFLUX_SINK = 'influx';

export type { InfluxTarget } from '@labtrace/protocols/influx';

export interface InfluxSinkOptions {
  outbox: Outbox;
  /** base URL of the server, such as http://127.0.0.1:8086 (a path prefix behind a proxy is kept) */
  url: string;
  target: InfluxTarget;
  /** default 'measurement' */
  measurement?: string;
  /** lines per HTTP write; batches are joined up to it, a larger batch is split (default 5000) */
  batchLines?: number;
  /** every request is abandoned after this long and counts as an outage (default 10 s) */
  requestTimeoutMs?: number;
  /** back-off after the first failed write, doubling up to retryMaxMs (defaults 1 s and 30 s) */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** how often the outbox is looked at when everything is written (default 1 s); notify() looks at once */
  pollMs?: number;
}

export interface InfluxSinkEvents {
  /** a batch was written and confirmed in the outbox */
  written: [batch: number, lines: number];
  /** InfluxDB refused a batch for good; it is recorded in sink_failures and confirmed for this sink only */
  rejected: [batch: number, error: string];
  /** the first failed write of an outage; the batches stay in the outbox */
  failing: [error: string];
  /** a write succeeded after an outage */
  recovered: [];
}

type Failure = InfluxFailure;
type Outcome = InfluxOutcome;

/** batches read from the outbox at a time */
const PAGE = 32;

export class InfluxSink extends EventEmitter<InfluxSinkEvents> {
  private readonly measurement: string;
  private readonly batchLines: number;
  private readonly timeoutMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly pollMs: number;
  private readonly writer: InfluxWriter;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** notify() ends an idle wait, never a back-off (a gateway notifies on every batch, an outage must not speed up) */
  private idle = false;
  private poked = false;
  private timer: NodeJS.Timeout | undefined;
  /** the last batch this sink has confirmed (or found confirmed) in this run */
  private cursor = -1;
  private queue: StoredBatch[] = [];
  /** after a refused write of several batches, batches up to this one are written one at a time */
  private isolateUntil = -1;
  private failedAttempts = 0;
  private outageSince: number | undefined;
  private outageKind: Failure['kind'] | undefined;

  constructor(
    private readonly options: InfluxSinkOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.measurement = options.measurement ?? 'measurement';
    if (!INFLUX_MEASUREMENT_NAME.test(this.measurement)) {
      throw new LabtraceError('E_CONFIG', `influx measurement ${JSON.stringify(this.measurement)}: no backslash or control character allowed`);
    }
    this.batchLines = options.batchLines ?? 5000;
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.retryInitialMs = options.retryInitialMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.writer = new InfluxWriter({ url: options.url, target: options.target, timeoutMs: this.timeoutMs });
  }

  /** True while writes fail and batches are held back. */
  get isFailing(): boolean {
    return this.outageSince !== undefined;
  }

  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.cursor = -1;
    this.queue = [];
    this.loop = this.run().catch((err: unknown) => {
      // a bug or a closed outbox: say so instead of stopping silently
      this.logger.error({ sink: INFLUX_SINK, err: (err as Error).message }, 'ALARM: the InfluxDB sink stopped');
      this.running = false;
    });
    return Promise.resolve();
  }

  /** Stops after the write in flight, if any, has been answered (or timed out); leaves no timer behind. */
  async stop(): Promise<void> {
    this.running = false;
    this.interrupt();
    await this.loop;
    this.loop = undefined;
  }

  /** Looks at the outbox now rather than at the next poll (call it after appending a batch). */
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

  private async run(): Promise<void> {
    while (this.running) {
      if (this.queue.length === 0) {
        this.poked = false;
        this.queue = this.options.outbox.unackedPage(INFLUX_SINK, this.cursor, PAGE);
      }
      const group = this.nextGroup();
      if (group.length === 0) {
        await this.pause(this.pollMs, true);
        continue;
      }
      const outcome = await this.writeGroup(group);
      if (outcome.ok) {
        this.succeeded(group);
      } else if (outcome.kind === 'refused' && group.length > 1) {
        this.answered();
        // one of them (or more) is refused for good: find which, one at a time
        this.isolateUntil = group[group.length - 1]?.batch ?? -1;
        this.logger.warn(
          { sink: INFLUX_SINK, batches: group.length, err: outcome.error },
          'InfluxDB refused a write; writing its batches one by one',
        );
      } else if (outcome.kind === 'refused') {
        const [only] = group;
        if (only) this.refused(only, outcome);
      } else {
        await this.backOff(outcome);
      }
    }
  }

  /** The next batches to write together, oldest first: whole batches up to batchLines lines, always at least one. */
  private nextGroup(): StoredBatch[] {
    const group: StoredBatch[] = [];
    let lines = 0;
    for (const stored of this.queue) {
      const n = stored.message.samples.length;
      if (group.length > 0 && (lines + n > this.batchLines || stored.batch <= this.isolateUntil)) break;
      group.push(stored);
      lines += n;
      if (stored.batch <= this.isolateUntil) break;
    }
    return group;
  }

  private async writeGroup(group: StoredBatch[]): Promise<Outcome> {
    const lines: string[] = [];
    for (const { message } of group) for (const line of toLineProtocol(message, this.measurement)) lines.push(line);
    // a batch larger than batchLines goes in several writes; it is confirmed when all of them succeeded
    for (let i = 0; i < lines.length; i += this.batchLines) {
      const outcome = await this.send(lines.slice(i, i + this.batchLines));
      if (!outcome.ok) return outcome;
    }
    return { ok: true };
  }

  /** InfluxDB took a write, or judged a batch on its merits: whatever stopped the writes is over. */
  private answered(): void {
    if (this.outageSince === undefined) return;
    this.logger.info({ sink: INFLUX_SINK, attempts: this.failedAttempts, outageMs: Date.now() - this.outageSince }, 'InfluxDB writes succeed again');
    this.outageSince = undefined;
    this.outageKind = undefined;
    this.failedAttempts = 0;
    this.emit('recovered');
  }

  private succeeded(group: StoredBatch[]): void {
    this.answered();
    for (const stored of group) {
      this.confirm(stored.batch);
      this.emit('written', stored.batch, stored.message.samples.length);
    }
  }

  private refused(stored: StoredBatch, outcome: Failure): void {
    this.answered();
    const { samples } = stored.message;
    const error = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
    this.logger.error(
      {
        sink: INFLUX_SINK,
        batch: stored.batch,
        gateway: stored.message.gateway,
        samples: samples.length,
        firstSeq: samples[0]?.seq,
        lastSeq: samples[samples.length - 1]?.seq,
        status: outcome.status,
        err: outcome.error,
      },
      'ALARM: InfluxDB refused a batch for good; recorded as a sink failure and skipped for InfluxDB only (the server still receives it)',
    );
    // recorded before it is confirmed: a crash in between makes the batch be tried (and recorded) again, never lost silently
    this.options.outbox.recordSinkFailure(INFLUX_SINK, stored.batch, error);
    this.confirm(stored.batch);
    this.emit('rejected', stored.batch, error);
  }

  private confirm(batch: number): void {
    this.options.outbox.ack(INFLUX_SINK, batch);
    this.cursor = batch;
    const at = this.queue.findIndex((s) => s.batch === batch);
    if (at >= 0) this.queue.splice(0, at + 1);
  }

  private async backOff(outcome: Failure): Promise<void> {
    this.failedAttempts++;
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(this.failedAttempts - 1, 30));
    const fields = { sink: INFLUX_SINK, status: outcome.status, err: outcome.error, attempts: this.failedAttempts, retryInMs: delay };
    const first = this.outageSince === undefined;
    if (first) this.outageSince = Date.now();
    // said once per outage, and again when its nature changes (the server came back but refuses every write)
    if (outcome.kind !== this.outageKind) {
      if (outcome.kind === 'refused-all') {
        this.logger.error(fields, 'ALARM: InfluxDB refuses every write (database or bucket missing, or credentials); batches are held in the outbox');
      } else {
        this.logger.warn(fields, 'InfluxDB write failed; batches are held in the outbox and retried');
      }
    } else {
      this.logger.debug(fields, 'InfluxDB write failed again');
    }
    this.outageKind = outcome.kind;
    if (first) this.emit('failing', outcome.error);
    // the queue is read again after the pause: nothing is lost by dropping it, and the outbox is the truth
    this.queue = [];
    if (this.running) await this.pause(delay, false);
  }

  private send(lines: string[]): Promise<Outcome> {
    return this.writer.write(lines);
  }
}

/** The lines of a batch: see the shared encoder for tags, fields and timestamps. */
export function toLineProtocol(message: DataMessage, measurement = 'measurement'): string[] {
  return samplesToLines(message.gateway, message.samples, measurement);
}

/** The sink's options from the gateway config, or undefined when no influx section is configured. */
export function influxSinkOptions(influx: InfluxConfig | undefined, secret: string | undefined, outbox: Outbox): InfluxSinkOptions | undefined {
  if (!influx) return undefined;
  const common = { outbox, url: influx.url, measurement: influx.measurement, batchLines: influx.batchLines };
  if (influx.api === 'v2') {
    if (influx.org === undefined || influx.bucket === undefined || secret === undefined)
      throw new LabtraceError('E_CONFIG', 'influx: api v2 needs org, bucket and a token');
    return { ...common, target: { api: 'v2', org: influx.org, bucket: influx.bucket, token: secret } };
  }
  if (influx.database === undefined) throw new LabtraceError('E_CONFIG', 'influx: api v1 needs a database');
  return {
    ...common,
    target: { api: 'v1', database: influx.database, retentionPolicy: influx.retentionPolicy, username: influx.username, password: secret },
  };
}
