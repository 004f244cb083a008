// The InfluxDB series store. Writes: a forwarder copies the batches stored in SQLite to InfluxDB, in commit order
// (batch_headers rowid), up to batchLines lines per request, and moves its durable cursor (table influx_cursor) only
// after InfluxDB answered 2xx. While InfluxDB is down the server keeps accepting: the batches are already durable in
// SQLite (stored before their ACK), so the backlog survives a restart of either side, and is written in order
// afterwards. Lines carry explicit timestamps and stable tags, so writing a batch again (a crash between the write and
// the cursor update) overwrites the same points: nothing is lost, nothing doubled.
// Reads: InfluxQL on /query (InfluxDB 1.x, 2.x through its DBRP mappings, 3.x).
import { EventEmitter } from 'node:events';
import { QUALITIES, type LiveSample, type Quality } from '@labtrace/protocols';
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
import type { Logger } from '../../log.js';
import type { LabDatabase } from '../database.js';
import { decodeRecords } from '../measurement-store.js';
import { bucketWidth, type SeriesResult, type SeriesStatus, type SeriesStore } from './series-store.js';

export interface InfluxSeriesOptions {
  database: LabDatabase;
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
  /** how often SQLite is looked at when everything is written (default 1 s); notify() looks at once */
  pollMs?: number;
  logger: Logger;
}

export interface InfluxSeriesEvents {
  /** stored batches up to this rowid are in InfluxDB (or refused for good) */
  written: [lastRowid: number, lines: number];
  rejected: [gateway: string, batch: number, error: string];
  failing: [error: string];
  recovered: [];
}

interface Pending {
  rowid: number;
  gateway: string;
  batch: number;
  lines: string[];
}

/** stored batches read from SQLite at a time */
const PAGE = 64;

const QUALITY_NAMES = new Set<string>(QUALITIES);

export class InfluxSeries extends EventEmitter<InfluxSeriesEvents> implements SeriesStore {
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
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idle = false;
  private poked = false;
  private cursor = 0;
  /** after a refused write of several batches, batches up to this rowid are written one at a time */
  private isolateUntil = 0;
  private failedAttempts = 0;
  private outageSince: number | undefined;
  private outageKind: InfluxFailure['kind'] | undefined;
  private lastError: string | undefined;

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
  }

  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    const row = this.db.prepare('SELECT last_rowid AS lastRowid FROM influx_cursor WHERE target = ?').get(this.targetKey) as
      { lastRowid: number } | undefined;
    this.cursor = row?.lastRowid ?? 0;
    this.running = true;
    this.loop = this.run().catch((err: unknown) => {
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
  }

  notify(): void {
    this.poked = true;
    if (this.idle) this.interrupt();
  }

  /** the rowid of the last stored batch written to InfluxDB (or refused for good) */
  get writtenUpTo(): number {
    return this.cursor;
  }

  status(): SeriesStatus {
    const backlog = this.db
      .prepare('SELECT COUNT(*) AS batches, COALESCE(SUM(count), 0) AS samples FROM batch_headers WHERE rowid > ?')
      .get(this.cursor) as { batches: number; samples: number };
    const refused = this.db.prepare('SELECT COUNT(*) AS n FROM influx_failures WHERE target = ?').get(this.targetKey) as { n: number };
    return {
      kind: 'influxdb',
      status: this.outageSince === undefined ? 'ok' : 'failing',
      backlog,
      refusedBatches: refused.n,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  private get db(): LabDatabase['sqlite'] {
    return this.options.database.sqlite;
  }

  // ---- writes ----

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

  private page(): Pending[] {
    const rows = this.db
      .prepare(
        `SELECT b.rowid, b.gateway, b.batch, b.records, k.earliest, k.latest FROM batch_headers b
         LEFT JOIN clock_skew_batches k ON k.gateway = b.gateway AND k.batch = b.batch WHERE b.rowid > ? ORDER BY b.rowid LIMIT ?`,
      )
      .all(this.cursor, PAGE) as {
      rowid: number;
      gateway: string;
      batch: number;
      records: Buffer | null;
      earliest: number | null;
      latest: number | null;
    }[];
    // a batch stored before records were kept (migration 0005) has nothing to write: its lines are empty. Samples
    // dated outside the accepted window around their batch's arrival (clock skew) are not copied: InfluxDB's latest
    // values and charts never show them (they stay in the SQLite store, in exports and in proofs)
    return rows.map((r) => ({
      rowid: r.rowid,
      gateway: r.gateway,
      batch: r.batch,
      lines:
        r.records === null
          ? []
          : toLineProtocol(
              r.gateway,
              decodeRecords(r.records).filter((s) => r.earliest === null || r.latest === null || (s.ts >= r.earliest && s.ts <= r.latest)),
              this.measurement,
            ),
    }));
  }

  private async run(): Promise<void> {
    let queue: Pending[] = [];
    while (this.running) {
      if (queue.length === 0) {
        this.poked = false;
        queue = this.page();
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
        this.advance(last.rowid);
        queue.splice(0, group.length);
        this.emit(
          'written',
          last.rowid,
          group.reduce((n, p) => n + p.lines.length, 0),
        );
      } else if (outcome.kind === 'refused' && group.length > 1) {
        this.answered();
        this.isolateUntil = last.rowid;
        this.logger.warn(
          { store: 'influxdb', batches: group.length, err: outcome.error },
          'InfluxDB refused a write; writing its batches one by one',
        );
      } else if (outcome.kind === 'refused') {
        this.refused(last, outcome);
        queue.splice(0, 1);
      } else {
        await this.backOff(outcome);
        // read again after the pause: SQLite is the truth
        queue = [];
      }
    }
  }

  /** Whole batches up to batchLines lines, oldest first, always at least one; one at a time while isolating. */
  private nextGroup(queue: Pending[]): Pending[] {
    const group: Pending[] = [];
    let lines = 0;
    for (const p of queue) {
      if (group.length > 0 && (lines + p.lines.length > this.batchLines || p.rowid <= this.isolateUntil)) break;
      group.push(p);
      lines += p.lines.length;
      if (p.rowid <= this.isolateUntil) break;
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

  private advance(rowid: number): void {
    this.db
      .prepare(
        'INSERT INTO influx_cursor (target, last_rowid, updated_at) VALUES (?, ?, ?) ON CONFLICT(target) DO UPDATE SET last_rowid = excluded.last_rowid, updated_at = excluded.updated_at',
      )
      .run(this.targetKey, rowid, Date.now());
    this.cursor = rowid;
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

  private refused(p: Pending, outcome: InfluxFailure): void {
    this.answered();
    const error = outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}: ${outcome.error}`;
    this.logger.error(
      { store: 'influxdb', gateway: p.gateway, batch: p.batch, samples: p.lines.length, status: outcome.status, err: outcome.error },
      'ALARM: InfluxDB refused a batch for good; recorded in influx_failures and skipped for InfluxDB only (SQLite keeps it)',
    );
    this.lastError = error;
    // recorded in the same transaction as the cursor moves past it: never skipped silently
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO influx_failures (target, batch_rowid, gateway, batch, samples, status, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(this.targetKey, p.rowid, p.gateway, p.batch, p.lines.length, outcome.status ?? null, error, Date.now());
      this.advance(p.rowid);
    })();
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
          ? 'ALARM: InfluxDB refuses every write (database or bucket missing, or credentials); batches wait in SQLite'
          : 'ALARM: InfluxDB writes fail; batches wait in SQLite and are written when it is back',
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
