// The InfluxDB series store. Writes: the shared forwarder (@labtrace/protocols/influx) copies the stored batches to
// InfluxDB in commit order, up to batchLines lines per request and a few requests in flight, with line protocol
// written straight from the stored record bytes, and moves its durable cursor only past writes InfluxDB acknowledged,
// in order (stored-batches.ts: SQLite's rowid and table influx_cursor, PostgreSQL's log index and table
// influx_log_cursor). While InfluxDB is down the server keeps accepting: the batches are already durable in the store
// (stored before their ACK), so the backlog survives a restart of either side, and is written in order afterwards.
// Lines carry explicit timestamps and stable tags, so writing a batch again (a crash between the write and the cursor
// update, writes after a failed one in the pipeline, or a node that lost the forwarder's lease between the two)
// overwrites the same points: nothing is lost, nothing doubled.
// On SQLite the forwarder runs from start() to stop(). On PostgreSQL, where every node stores batches, it runs on one
// node at a time, as the server's job `influx-forwarder` (forwarderJob): it reads its cursor and moves it only in
// transactions fenced by its lease, so that a node that lost the lease never moves it and the next holder goes on
// from the stored cursor. Every node reads the series from InfluxDB.
// Reads: InfluxQL on /query (InfluxDB 1.x, 2.x through its DBRP mappings, 3.x).
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { isLabtraceError, LabtraceError, QUALITIES, type LiveSample, type Quality } from '@labtrace/protocols';
import {
  InfluxForwarder,
  InfluxQuery,
  InfluxWriter,
  influxIdentifier,
  influxString,
  recordsToLineProtocol,
  type ForwardItem,
  type ForwardSource,
  type InfluxQueryAuth,
  type InfluxTarget,
} from '@labtrace/protocols/influx';
import type { JobContext } from '../../cluster/jobs.js';
import type { Logger } from '../../log.js';
import type { LabDatabase, Tables } from '../database.js';
import type { PgMeasurementStore } from '../pg-measurement-store.js';
import { CatchUpProgress } from './catch-up.js';
import { bucketWidth, type SeriesResult, type SeriesStatus, type SeriesStore } from './series-store.js';
import { PgBatches, SqliteBatches, type ForwardingCounts, type Refusal, type StoredBatch } from './stored-batches.js';

export interface InfluxSeriesOptions {
  /** the embedded SQLite store: the forwarder runs from start() to stop() */
  database?: LabDatabase | undefined;
  /** or PostgreSQL, shared by several nodes: the store's Kysely and its measurement store; the forwarder is a job (forwarderJob) */
  postgres?: { db: Kysely<Tables>; store: PgMeasurementStore } | undefined;
  /** base URL, such as http://127.0.0.1:8086 */
  url: string;
  target: InfluxTarget;
  /** the database (and retention policy) InfluxQL reads; for v2 the bucket's DBRP mapping (default: the bucket) */
  read: { database: string; retentionPolicy?: string | undefined; auth: InfluxQueryAuth };
  measurement?: string;
  /** lines per write request (default 5000) */
  batchLines?: number;
  /** write requests in flight at once (default 4) */
  maxInFlight?: number;
  requestTimeoutMs?: number;
  /** back-off after the first failed write, doubling up to retryMaxMs (defaults 1 s and 30 s) */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** how often the store is looked at when everything is written (default 1 s); notify() looks at once */
  pollMs?: number;
  /** the catch-up's progress lines (catch-up.ts): how often, and from what backlog in samples (defaults 5 s and 50,000) */
  progress?: { everyMs?: number; minSamples?: number };
  logger: Logger;
}

export interface InfluxSeriesEvents {
  /** stored batches up to this position (SQLite rowid, PostgreSQL log index) are in InfluxDB (or refused for good); `lines`: this batch's */
  written: [lastPosition: number, lines: number];
  rejected: [gateway: string, batch: number, error: string];
  failing: [error: string];
  recovered: [];
}

/** A stored batch with its line protocol. */
interface Pending extends ForwardItem {
  gateway: string;
  batch: number;
}

/** Where one run of the forwarder reads the stored batches, and how it moves its durable cursor. */
interface BatchSource {
  read(after: number, limit: number): Promise<StoredBatch[]> | StoredBatch[];
  advance(position: number, refusal?: Refusal): Promise<void> | void;
}

const QUALITY_NAMES = new Set<string>(QUALITIES);

export class InfluxSeries extends EventEmitter<InfluxSeriesEvents> implements SeriesStore {
  /**
   * On PostgreSQL: the forwarder, as a job of one node at a time (the server runs it as `influx-forwarder` through its
   * JobRunner); it runs until its signal is aborted. Undefined on SQLite, where start() runs the forwarder.
   */
  readonly forwarderJob: ((context: JobContext<Tables>) => Promise<void>) | undefined;
  private readonly measurement: string;
  private readonly forwarder: InfluxForwarder<Pending>;
  private readonly reader: InfluxQuery;
  /** the cursor's key: a new InfluxDB target starts from the first stored batch */
  private readonly targetKey: string;
  private readonly logger: Logger;
  private readonly sqlite: SqliteBatches | undefined;
  private readonly pg: PgBatches | undefined;
  private loop: Promise<void> | undefined;
  /** on PostgreSQL: the backlog and refusals as last read from the store (status() reads them again in the background) */
  private lastCounts: ForwardingCounts = { backlog: { batches: 0, samples: 0 }, refused: 0 };
  private counting: Promise<void> | undefined;
  /** the catch-up told in the log while the forwarder runs on this node */
  private readonly progress: CatchUpProgress;

  constructor(private readonly options: InfluxSeriesOptions) {
    super();
    this.measurement = options.measurement ?? 'measurement';
    this.logger = options.logger;
    const timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.forwarder = new InfluxForwarder<Pending>({
      writer: new InfluxWriter({ url: options.url, target: options.target, timeoutMs }),
      logger: options.logger,
      logFields: { store: 'influxdb' },
      holder: 'the store',
      alarmOnOutage: true,
      batchLines: options.batchLines,
      maxInFlight: options.maxInFlight,
      retryInitialMs: options.retryInitialMs,
      retryMaxMs: options.retryMaxMs,
      pollMs: options.pollMs,
      start: options.database === undefined ? PgBatches.START : SqliteBatches.START,
    });
    // one event per batch (the cursor is already past all of them)
    this.forwarder.on('written', (items) => {
      for (const item of items) {
        this.progress.written(item.lines);
        this.emit('written', item.position, item.lines);
      }
    });
    this.forwarder.on('rejected', (item, error) => {
      this.progress.written(item.lines);
      this.emit('rejected', item.gateway, item.batch, error);
    });
    this.progress = new CatchUpProgress({ logger: options.logger, backlog: () => this.status().backlog, ...options.progress });
    this.forwarder.on('failing', (error) => this.emit('failing', error));
    this.forwarder.on('recovered', () => this.emit('recovered'));
    this.reader = new InfluxQuery({ url: options.url, ...options.read, timeoutMs });
    const t = options.target;
    this.targetKey = `${options.url} ${t.api === 'v1' ? `db=${t.database} rp=${t.retentionPolicy ?? ''}` : `org=${t.org} bucket=${t.bucket}`} ${this.measurement}`;
    if ((options.database === undefined) === (options.postgres === undefined))
      throw new LabtraceError('E_CONFIG', 'InfluxSeries: give either the SQLite database or the PostgreSQL store');
    this.sqlite = options.database === undefined ? undefined : new SqliteBatches(options.database, this.targetKey);
    this.pg = options.postgres === undefined ? undefined : new PgBatches(options.postgres.db, options.postgres.store, this.targetKey);
    this.forwarderJob = this.pg === undefined ? undefined : (context) => this.forward(this.pg as PgBatches, context);
  }

  /** On SQLite, starts the forwarder from the stored cursor; on PostgreSQL the job does (forwarderJob). */
  start(): Promise<void> {
    const source = this.sqlite;
    if (this.loop !== undefined || source === undefined) return Promise.resolve();
    this.progress.start();
    this.loop = this.forwarder
      .run(
        this.sourceOf({ read: (after, limit) => source.after(after, limit), advance: (position, refusal) => source.advance(position, refusal) }),
        source.cursor(),
      )
      .catch((err: unknown) => {
        this.logger.error({ store: 'influxdb', err: (err as Error).message }, 'ALARM: the InfluxDB forwarder stopped');
        this.loop = undefined;
      });
    return Promise.resolve();
  }

  /** Stops after the writes in flight, if any, have been answered (or timed out); leaves no timer behind. */
  async stop(): Promise<void> {
    this.progress.stop();
    this.forwarder.stop();
    await this.loop;
    this.loop = undefined;
    await this.counting;
  }

  notify(): void {
    this.forwarder.notify();
  }

  /** the position of the last stored batch written to InfluxDB (or refused for good) by this node */
  get writtenUpTo(): number {
    return this.forwarder.cursor;
  }

  status(): SeriesStatus {
    const counts = this.sqlite !== undefined ? this.sqlite.counts(this.forwarder.cursor) : this.pgCounts();
    const lastError = this.forwarder.lastError;
    return {
      kind: 'influxdb',
      status: this.forwarder.isFailing ? 'failing' : 'ok',
      backlog: counts.backlog,
      refusedBatches: counts.refused,
      ...(lastError === undefined ? {} : { lastError }),
    };
  }

  /**
   * PostgreSQL's counts, from the stored cursor (any node answers, whichever forwards): read in the background, so that
   * the health report shows what the previous read found. ('failing' and lastError are known on the forwarding node.)
   */
  private pgCounts(): ForwardingCounts {
    const source = this.pg;
    if (source !== undefined)
      this.counting ??= source
        .counts()
        .then(
          (counts) => void (this.lastCounts = counts),
          (err: unknown) => this.logger.warn({ store: 'influxdb', err: (err as Error).message }, 'the InfluxDB backlog could not be counted'),
        )
        .finally(() => (this.counting = undefined));
    return this.lastCounts;
  }

  // ---- writes ----

  /**
   * The forwarder on PostgreSQL, on the node holding its lease, until the lease is lost or the node stops. The cursor
   * is read and moved in fenced transactions: the first read sees the last move of any earlier holder, and a move by a
   * node whose lease was taken over meanwhile is refused (E_LEASE_LOST): that node stops, and the batch it had written
   * is written again by the next holder (the same points: harmless).
   */
  private async forward(source: PgBatches, { signal, fenced }: JobContext<Tables>): Promise<void> {
    const from = await fenced((trx) => source.cursor(trx));
    const onAbort = (): void => this.forwarder.stop();
    const loop = this.forwarder.run(
      this.sourceOf({
        read: (after, limit) => source.after(after, limit),
        advance: (position, refusal) => fenced((trx) => source.advance(trx, position, refusal)),
      }),
      from,
    );
    this.loop = loop.catch(() => undefined);
    this.progress.start();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      await loop;
    } catch (err) {
      if (!(isLabtraceError(err) && err.code === 'E_LEASE_LOST')) throw err;
      this.logger.warn(
        { store: 'influxdb', err: err.message },
        'the InfluxDB forwarder lost its lease: it stops here, and the node holding the lease goes on from the stored cursor',
      );
    } finally {
      this.progress.stop();
      signal.removeEventListener('abort', onAbort);
      this.loop = undefined;
    }
  }

  /** The shared forwarder's source over one engine's stored batches. */
  private sourceOf(batches: BatchSource): ForwardSource<Pending> {
    return {
      read: async (after, limit) => (await batches.read(after, limit)).map((b) => this.pending(b)),
      advance: async (items) => {
        const last = items[items.length - 1];
        if (last !== undefined) await batches.advance(last.position);
      },
      refuse: async (p, outcome, error) => {
        this.logger.error(
          { store: 'influxdb', gateway: p.gateway, batch: p.batch, samples: p.lines, status: outcome.status, err: outcome.error },
          'ALARM: InfluxDB refused a batch for good; recorded in influx_failures and skipped for InfluxDB only (the store keeps it)',
        );
        // recorded in the same transaction as the cursor moves past it: never skipped silently
        await batches.advance(p.position, {
          position: p.position,
          gateway: p.gateway,
          batch: p.batch,
          samples: p.lines,
          status: outcome.status,
          error,
        });
      },
    };
  }

  /**
   * A stored batch's line protocol, written straight from its record bytes. A batch stored before records were kept
   * (migration 0005) has nothing to write: no lines. Samples dated outside the accepted window around their batch's
   * arrival (clock skew) are not copied: InfluxDB's latest values and charts never show them (they stay in the store,
   * in exports and in proofs).
   */
  private pending(b: StoredBatch): Pending {
    const body =
      b.records === null
        ? { chunks: [], lines: 0 }
        : recordsToLineProtocol(b.records, {
            gateway: b.gateway,
            measurement: this.measurement,
            accepted: b.accepted,
            maxLines: this.forwarder.batchLines,
          });
    return { position: b.position, gateway: b.gateway, batch: b.batch, ...body };
  }

  // ---- reads ----

  private from(): string {
    return influxIdentifier(this.measurement);
  }

  async latest(instrument: string): Promise<LiveSample[]> {
    const rows = await this.reader.rows(
      `SELECT * FROM ${this.from()} WHERE instrument = ${influxString(instrument)} GROUP BY channel ORDER BY time DESC LIMIT 1`,
    );
    // a channel written under several qualities is still one channel: the newest point wins
    const byChannel = new Map<string, LiveSample>();
    for (const s of rows.map(toSample)) {
      const seen = byChannel.get(s.channel);
      if (seen === undefined || s.ts > seen.ts) byChannel.set(s.channel, s);
    }
    return [...byChannel.values()];
  }

  async history(instrument: string, channel: string, from: number, to: number, limit: number): Promise<LiveSample[]> {
    const rows = await this.reader.rows(
      `SELECT * FROM ${this.from()} WHERE instrument = ${influxString(instrument)} AND channel = ${influxString(channel)}` +
        ` AND time >= ${Math.trunc(from)}ms AND time <= ${Math.trunc(to)}ms ORDER BY time DESC LIMIT ${Math.trunc(limit)}`,
    );
    return rows.map(toSample).sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  }

  async series(instrument: string, channel: string, from: number, to: number, points: number): Promise<SeriesResult> {
    const bucketMs = bucketWidth(from, to, points);
    // buckets start at `from`: InfluxQL aligns them to the epoch plus this offset
    const offset = ((from % bucketMs) + bucketMs) % bucketMs;
    const rows = await this.reader.rows(
      `SELECT min(value), max(value), mean(value), count(value) FROM ${this.from()}` +
        ` WHERE instrument = ${influxString(instrument)} AND channel = ${influxString(channel)}` +
        ` AND time >= ${Math.trunc(from)}ms AND time <= ${Math.trunc(to)}ms GROUP BY time(${bucketMs}ms, ${offset}ms) fill(none)`,
    );
    return {
      bucketMs,
      points: rows
        .filter((r) => typeof r['count'] === 'number' && r['count'] > 0)
        .map((r) => ({ ts: Number(r['time']), min: Number(r['min']), max: Number(r['max']), mean: Number(r['mean']), count: Number(r['count']) })),
    };
  }
}

function toSample(row: Record<string, unknown>): LiveSample {
  const value =
    typeof row['value'] === 'number'
      ? row['value']
      : typeof row['value_text'] === 'string'
        ? row['value_text']
        : typeof row['value_bool'] === 'boolean'
          ? row['value_bool']
          : null;
  const quality = String(row['quality']);
  return {
    gateway: String(row['gateway']),
    seq: Number(row['seq']),
    instrument: String(row['instrument']),
    channel: String(row['channel']),
    ts: Number(row['time']),
    value,
    unit: typeof row['unit'] === 'string' ? row['unit'] : '',
    quality: QUALITY_NAMES.has(quality) ? (quality as Quality) : 'bad',
  };
}
