// Writes the outbox's batches to InfluxDB, an optional on-site historian, through the shared forwarder
// (@labtrace/protocols/influx: the same loop as the server's InfluxDB store). The sink keeps its own cursor in the
// outbox: a batch is confirmed for 'influx' only after InfluxDB has answered 2xx to the write that carried it (and to
// every write before it), so a batch survives an InfluxDB outage of any length in the outbox (durably) and is written
// in order afterwards. A signed batch's lines are written straight from its record bytes.
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
  InfluxForwarder,
  InfluxWriter,
  influxEndpoints,
  linesToBody,
  recordsToLineProtocol,
  sealedBatchRecords,
  toLineProtocol as samplesToLines,
  type ForwardItem,
  type ForwardSource,
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
  /** write requests in flight at once (default 4) */
  maxInFlight?: number;
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

/** An outbox batch with its line protocol. */
interface Pending extends ForwardItem {
  stored: StoredBatch;
}

/** batches read from the outbox at a time */
const PAGE = 32;

export class InfluxSink extends EventEmitter<InfluxSinkEvents> {
  private readonly measurement: string;
  private readonly forwarder: InfluxForwarder<Pending>;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly options: InfluxSinkOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.measurement = options.measurement ?? 'measurement';
    if (!INFLUX_MEASUREMENT_NAME.test(this.measurement)) {
      throw new LabtraceError('E_CONFIG', `influx measurement ${JSON.stringify(this.measurement)}: no backslash or control character allowed`);
    }
    this.forwarder = new InfluxForwarder<Pending>({
      writer: new InfluxWriter({ url: options.url, target: options.target, timeoutMs: options.requestTimeoutMs ?? 10_000 }),
      logger,
      logFields: { sink: INFLUX_SINK },
      holder: 'the outbox',
      batchLines: options.batchLines,
      maxInFlight: options.maxInFlight,
      page: PAGE,
      retryInitialMs: options.retryInitialMs,
      retryMaxMs: options.retryMaxMs,
      pollMs: options.pollMs,
    });
    this.forwarder.on('written', (items) => {
      for (const item of items) this.emit('written', item.stored.batch, item.lines);
    });
    this.forwarder.on('rejected', (item, error) => this.emit('rejected', item.stored.batch, error));
    this.forwarder.on('failing', (error) => this.emit('failing', error));
    this.forwarder.on('recovered', () => this.emit('recovered'));
  }

  /** True while writes fail and batches are held back. */
  get isFailing(): boolean {
    return this.forwarder.isFailing;
  }

  start(): Promise<void> {
    if (this.loop !== undefined) return Promise.resolve();
    this.loop = this.forwarder.run(this.source(), -1).catch((err: unknown) => {
      // a bug or a closed outbox: say so instead of stopping silently
      this.logger.error({ sink: INFLUX_SINK, err: (err as Error).message }, 'ALARM: the InfluxDB sink stopped');
      this.loop = undefined;
    });
    return Promise.resolve();
  }

  /** Stops after the writes in flight, if any, have been answered (or timed out); leaves no timer behind. */
  async stop(): Promise<void> {
    this.forwarder.stop();
    await this.loop;
    this.loop = undefined;
  }

  /** Looks at the outbox now rather than at the next poll (call it after appending a batch). */
  notify(): void {
    this.forwarder.notify();
  }

  /** The outbox as the forwarder's source: its batches not confirmed for this sink, and this sink's confirmations. */
  private source(): ForwardSource<Pending> {
    const outbox = this.options.outbox;
    return {
      read: (after, limit) => outbox.unackedPage(INFLUX_SINK, after, limit).map((stored) => this.pending(stored)),
      advance: (items) => {
        for (const item of items) outbox.ack(INFLUX_SINK, item.stored.batch);
      },
      refuse: ({ stored }, outcome, error) => {
        const { samples } = stored.message;
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
        outbox.recordSinkFailure(INFLUX_SINK, stored.batch, error);
        outbox.ack(INFLUX_SINK, stored.batch);
      },
    };
  }

  /** A batch's lines: from the record bytes of a signed batch as stored, from the samples of an unsigned one. */
  private pending(stored: StoredBatch): Pending {
    const maxLines = this.forwarder.batchLines;
    const records = typeof stored.wire === 'string' ? undefined : sealedBatchRecords(stored.wire);
    const body =
      records === undefined
        ? linesToBody(toLineProtocol(stored.message, this.measurement), maxLines)
        : recordsToLineProtocol(records, { measurement: this.measurement, maxLines });
    return { position: stored.batch, stored, ...body };
  }
}

/** The lines of a batch: see the shared encoder for tags, fields and timestamps. */
export function toLineProtocol(message: DataMessage, measurement = 'measurement'): string[] {
  return samplesToLines(message.gateway, message.samples, measurement);
}

/** The sink's options from the gateway config, or undefined when no influx section is configured. */
export function influxSinkOptions(influx: InfluxConfig | undefined, secret: string | undefined, outbox: Outbox): InfluxSinkOptions | undefined {
  if (!influx) return undefined;
  const { url, target } = influxEndpoints(influx, secret, 'influx');
  return { outbox, url, target, measurement: influx.measurement, batchLines: influx.batchLines };
}
