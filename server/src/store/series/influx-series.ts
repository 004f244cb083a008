// The InfluxDB series store. Writes: a forwarder copies the stored batches to InfluxDB in commit order, up to
// batchLines lines per request, and moves its durable cursor only after InfluxDB answered 2xx (stored-batches.ts:
// SQLite's rowid and table influx_cursor, PostgreSQL's log index and table influx_log_cursor). While InfluxDB is down
// the server keeps accepting: the batches are already durable in the store (stored before their ACK), so the backlog
// survives a restart of either side, and is written in order afterwards. Lines carry explicit timestamps and stable
// tags, so writing a batch again (a crash between the write and the cursor update, or a node that lost the
// forwarder's lease between the two) overwrites the same points: nothing is lost, nothing doubled.
// On SQLite the forwarder runs from start() to stop(). On PostgreSQL, where every node stores batches, it runs on one
// node at a time, as the server's job `influx-forwarder` (forwarderJob): it reads its cursor and moves it only in
// transactions fenced by its lease, so that a node that lost the lease never moves it and the next holder goes on
// from the stored cursor. Every node reads the series from InfluxDB.
// Reads: InfluxQL on /query (InfluxDB 1.x, 2.x through its DBRP mappings, 3.x).
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { isLabtraceError, LabtraceError, QUALITIES, type LiveSample, type Quality } from '@labtrace/protocols';
import {
  InfluxQuery,
  InfluxWriter,
  influxIdentifier,
  influxString,
  toLineProtocol,
  type InfluxFailure,
  type InfluxQueryAuth,
  type InfluxTarget,
} from '@labtrace/protocols/influx';
import type { JobContext } from '../../cluster/jobs.js';
import type { Logger } from '../../log.js';
import type { LabDatabase, Tables } from '../database.js';
import { decodeRecords } from '../measurement-store.js';
import type { PgMeasurementStore } from '../pg-measurement-store.js';
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
  requestTimeoutMs?: number;
  /** back-off after the first failed write, doubling up to retryMaxMs (defaults 1 s and 30 s) */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** how often the store is looked at when everything is written (default 1 s); notify() looks at once */
  pollMs?: number;
  logger: Logger;
}

export interface InfluxSeriesEvents {
  /** stored batches up to this position (SQLite rowid, PostgreSQL log index) are in InfluxDB (or refused for good) */
  written: [lastPosition: number, lines: number];
  rejected: [gateway: string, batch: number, error: string];
  failing: [error: string];
  recovered: [];
}

interface Pending {
  position: number;
  gateway: string;
  batch: number;
  lines: string[];
}

/** One run of the forwarder's loop: where it reads the stored batches, and how it moves its durable cursor. */
interface ForwardRun {
  read(after: number, limit: number): Promise<StoredBatch[]>;
  advance(position: number, refusal?: Refusal): Promise<void>;
}

/** stored batches read from the store at a time */
const PAGE = 64;

const QUALITY_NAMES = new Set<string>(QUALITIES);

export class InfluxSeries extends EventEmitter<InfluxSeriesEvents> implements SeriesStore {
  /**
   * On PostgreSQL: the forwarder, as a job of one node at a time (the server runs it as `influx-forwarder` through its
   * JobRunner); it runs until its signal is aborted. Undefined on SQLite, where start() runs the forwarder.
   */
  readonly forwarderJob: ((context: JobContext<Tables>) => Promise<void>) | undefined;
  private readonly measurement: string;
  private readonly batchLines: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly pollMs: number;
  private readonly writer: InfluxWriter;
  private readonly reader: InfluxQuery;
  /** the cursor's key: a new InfluxDB target starts from the first stored batch */
  private readonly targetKey: string;
  private readonly logger: Logger;
  private readonly sqlite: SqliteBatches | undefined;
  private readonly pg: PgBatches | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idle = false;
  private poked = false;
  private cursor = 0;
  /** after a refused write of several batches, batches up to this position are written one at a time */
  private isolateUntil = 0;
  private failedAttempts = 0;
  private outageSince: number | undefined;
  private outageKind: InfluxFailure['kind'] | undefined;
  private lastError: string | undefined;
  /** on PostgreSQL: the backlog and refusals as last read from the store (status() reads them again in the background) */
  private lastCounts: ForwardingCounts = { backlog: { batches: 0, samples: 0 }, refused: 0 };
  private counting: Promise<void> | undefined;

  constructor(private readonly options: InfluxSeriesOptions) {
    super();
    this.measurement = options.measurement ?? 'measurement';
    this.batchLines = options.batchLines ?? 5000;
    this.retryInitialMs = options.retryInitialMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.logger = options.logger;
    const timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.writer = new InfluxWriter({ url: options.url, target: options.target, timeoutMs });
    this.reader = new InfluxQuery({ url: options.url, ...options.read, timeoutMs });
    const t = options.target;
    this.targetKey = `${options.url} ${t.api === 'v1' ? `db=${t.database} rp=${t.retentionPolicy ?? ''}` : `org=${t.org} bucket=${t.bucket}`} ${this.measurement}`;
    if ((options.database === undefined) === (options.postgres === undefined))
      throw new LabtraceError('E_CONFIG', 'InfluxSeries: give either the SQLite database or the PostgreSQL store');
    this.sqlite = options.database === undefined ? undefined : new SqliteBatches(options.database, this.targetKey);
    this.pg = options.postgres === undefined ? undefined : new PgBatches(options.postgres.db, options.postgres.store, this.targetKey);
    this.forwarderJob = this.pg === undefined ? undefined : (context) => this.forward(this.pg as PgBatches, context);
    this.cursor = this.pg === undefined ? SqliteBatches.START : PgBatches.START;
  }

  /** On SQLite, starts the forwarder from the stored cursor; on PostgreSQL the job does (forwarderJob). */
  start(): Promise<void> {
    const source = this.sqlite;
    if (this.running || source === undefined) return Promise.resolve();
    this.cursor = source.cursor();
    this.isolateUntil = SqliteBatches.START;
    this.running = true;
    this.loop = this.run({
      read: (after, limit) => Promise.resolve(source.after(after, limit)),
      advance: (position, refusal) => Promise.resolve(source.advance(position, refusal)),
    }).catch((err: unknown) => {
      this.logger.error({ store: 'influxdb', err: (err as Error).message }, 'ALARM: the InfluxDB forwarder stopped');
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
    await this.counting;
  }

  notify(): void {
    this.poked = true;
    if (this.idle) this.interrupt();
  }

  /** the position of the last stored batch written to InfluxDB (or refused for good) by this node */
  get writtenUpTo(): number {
    return this.cursor;
  }

  status(): SeriesStatus {
    const counts = this.sqlite !== undefined ? this.sqlite.counts(this.cursor) : this.pgCounts();
    return {
      kind: 'influxdb',
      status: this.outageSince === undefined ? 'ok' : 'failing',
      backlog: counts.backlog,
      refusedBatches: counts.refused,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
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
    this.cursor = await fenced((trx) => source.cursor(trx));
    this.isolateUntil = PgBatches.START;
    this.running = true;
    const onAbort = (): void => {
      this.running = false;
      this.interrupt();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    const loop = this.run({
      read: (after, limit) => source.after(after, limit),
      advance: (position, refusal) => fenced((trx) => source.advance(trx, position, refusal)),
    });
    this.loop = loop.catch(() => undefined);
    try {
      await loop;
    } catch (err) {
      if (!(isLabtraceError(err) && err.code === 'E_LEASE_LOST')) throw err;
      this.logger.warn(
        { store: 'influxdb', err: err.message },
        'the InfluxDB forwarder lost its lease: it stops here, and the node holding the lease goes on from the stored cursor',
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.running = false;
      this.interrupt();
      this.loop = undefined;
    }
  }

  private interrupt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.idle = false;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** An idle wait ends early on notify(); a back-off does not (ingest notifies on every batch). */
  private pause(ms: number, idle: boolean): Promise<void> {
    if (idle && this.poked) return Promise.resolve();
    this.idle = idle;
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => this.interrupt(), ms);
    });
  }

  /**
   * A batch stored before records were kept (migration 0005) has nothing to write: its lines are empty. Samples dated
   * outside the accepted window around their batch's arrival (clock skew) are not copied: InfluxDB's latest values and
   * charts never show them (they stay in the store, in exports and in proofs).
   */
  private pending(batches: StoredBatch[]): Pending[] {
    return batches.map((b) => ({
      position: b.position,
      gateway: b.gateway,
      batch: b.batch,
      lines:
        b.records === null
          ? []
          : toLineProtocol(
              b.gateway,
              decodeRecords(b.records).filter((s) => b.accepted === null || (s.ts >= b.accepted.earliest && s.ts <= b.accepted.latest)),
              this.measurement,
            ),
    }));
  }

  private async run(source: ForwardRun): Promise<void> {
    let queue: Pending[] = [];
    while (this.running) {
      if (queue.length === 0) {
        this.poked = false;
        queue = this.pending(await source.read(this.cursor, PAGE));
        if (!this.running) break;
      }
      const group = this.nextGroup(queue);
      if (group.length === 0) {
        await this.pause(this.pollMs, true);
        continue;
      }
      const outcome = await this.writeGroup(group);
      const last = group[group.length - 1];
      if (last === undefined) continue;
      if (outcome.ok) {
        this.answered();
        await source.advance(last.position);
        this.cursor = last.position;
        queue.splice(0, group.length);
        this.emit(
          'written',
          last.position,
          group.reduce((n, p) => n + p.lines.length, 0),
        );
      } else if (outcome.kind === 'refused' && group.length > 1) {
        this.answered();
        this.isolateUntil = last.position;
        this.logger.warn(
          { store: 'influxdb', batches: group.length, err: outcome.error },
          'InfluxDB refused a write; writing its batches one by one',
        );
      } else if (outcome.kind === 'refused') {
        await this.refused(source, last, outcome);
        queue.splice(0, 1);
      } else {
        await this.backOff(outcome);
        // read again after the pause: the store is the truth
        queue = [];
      }
    }
  }

  /** Whole batches up to batchLines lines, oldest first, always at least one; one at a time while isolating. */
  private nextGroup(queue: Pending[]): Pending[] {
    const group: Pending[] = [];
    let lines = 0;
    for (const p of queue) {
      if (group.length > 0 && (lines + p.lines.length > this.batchLines || p.position <= this.isolateUntil)) break;
      group.push(p);
      lines += p.lines.length;
      if (p.position <= this.isolateUntil) break;
    }
    return group;
  }

  private async writeGroup(group: Pending[]): Promise<{ ok: true } | InfluxFailure> {
    const lines = group.length === 1 ? (group[0]?.lines ?? []) : group.flatMap((p) => p.lines);
    // a batch larger than batchLines goes in several writes; it counts as written when all of them succeeded
    for (let i = 0; i < lines.length; i += this.batchLines) {
      const outcome = await this.writer.write(lines.slice(i, i + this.batchLines));
      if (!outcome.ok) return outcome;
    }
    return { ok: true };
  }

  /** InfluxDB took a write, or judged a batch on its merits: whatever stopped the writes is over. */
  private answered(): void {
    if (this.outageSince === undefined) return;
    this.logger.info(
      { store: 'influxdb', attempts: this.failedAttempts, outageMs: Date.now() - this.outageSince },
      'InfluxDB writes succeed again; catching up',
    );
    this.outageSince = undefined;
    this.outageKind = undefined;
    this.failedAttempts = 0;
    this.emit('recovered');
  }

  private async refused(source: ForwardRun, p: Pending, outcome: InfluxFailure): Promise<void> {
    this.answered();
    const error = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
    this.logger.error(
      { store: 'influxdb', gateway: p.gateway, batch: p.batch, samples: p.lines.length, status: outcome.status, err: outcome.error },
      'ALARM: InfluxDB refused a batch for good; recorded in influx_failures and skipped for InfluxDB only (the store keeps it)',
    );
    this.lastError = error;
    // recorded in the same transaction as the cursor moves past it: never skipped silently
    await source.advance(p.position, {
      position: p.position,
      gateway: p.gateway,
      batch: p.batch,
      samples: p.lines.length,
      status: outcome.status,
      error,
    });
    this.cursor = p.position;
    this.emit('rejected', p.gateway, p.batch, error);
  }

  private async backOff(outcome: InfluxFailure): Promise<void> {
    this.failedAttempts++;
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(this.failedAttempts - 1, 30));
    const fields = { store: 'influxdb', status: outcome.status, err: outcome.error, attempts: this.failedAttempts, retryInMs: delay };
    const first = this.outageSince === undefined;
    if (first) this.outageSince = Date.now();
    this.lastError = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
    // one ALARM per outage, and again when its nature changes (the server came back but refuses every write)
    if (outcome.kind !== this.outageKind) {
      this.logger.error(
        fields,
        outcome.kind === 'refused-all'
          ? 'ALARM: InfluxDB refuses every write (database or bucket missing, or credentials); batches wait in the store'
          : 'ALARM: InfluxDB writes fail; batches wait in the store and are written when it is back',
      );
    } else {
      this.logger.debug(fields, 'InfluxDB write failed again');
    }
    this.outageKind = outcome.kind;
    if (first) this.emit('failing', outcome.error);
    if (this.running) await this.pause(delay, false);
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
