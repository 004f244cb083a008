// Where the InfluxDB forwarder (influx-series.ts) reads the stored batches and keeps its durable cursor, on each
// engine. Both read in commit order, so that "after the cursor" never skips a batch committed later:
// - SQLite: by batch_headers rowid (one writer; batches are only ever appended), cursor in influx_cursor. The rowid,
//   not the log index, because a SQLite lab may hold batches stored before the log (migration 0007) without one.
// - PostgreSQL: by the log index of the batches' headers (PgMeasurementStore.batchesAfter), cursor in
//   influx_log_cursor; every node stores batches, one node at a time forwards them (the job `influx-forwarder`), and
//   its cursor moves only in a transaction fenced by its lease (the caller passes that transaction).
import { sql, type Kysely, type Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../database.js';
import type { PgMeasurementStore } from '../pg-measurement-store.js';

/** A stored batch at its position in the store's commit order. */
export interface StoredBatch {
  position: number;
  gateway: string;
  batch: number;
  /** the records' canonical bytes (null: stored before records were kept) */
  records: Uint8Array | null;
  /** for a batch stored with clock skew: the window of sample times accepted around its arrival (ms) */
  accepted: { earliest: number; latest: number } | null;
}

/** A batch InfluxDB refused for good: recorded in influx_failures as the cursor moves past it. */
export interface Refusal {
  position: number;
  gateway: string;
  batch: number;
  samples: number;
  status: number | undefined;
  error: string;
}

export interface ForwardingCounts {
  /** stored batches and samples after the stored cursor */
  backlog: { batches: number; samples: number };
  /** batches refused for good */
  refused: number;
}

/** The SQLite file's batches, by rowid; the cursor in influx_cursor. Synchronous. */
export class SqliteBatches {
  /** the position before the first batch */
  static readonly START = 0;

  constructor(
    private readonly database: LabDatabase,
    private readonly target: string,
  ) {}

  private get db(): LabDatabase['sqlite'] {
    return this.database.sqlite;
  }

  cursor(): number {
    const row = this.db.prepare('SELECT last_rowid AS lastRowid FROM influx_cursor WHERE target = ?').get(this.target) as
      { lastRowid: number } | undefined;
    return row?.lastRowid ?? SqliteBatches.START;
  }

  after(position: number, limit: number): StoredBatch[] {
    const rows = this.db
      .prepare(
        `SELECT b.rowid, b.gateway, b.batch, b.records, k.earliest, k.latest FROM batch_headers b
         LEFT JOIN clock_skew_batches k ON k.gateway = b.gateway AND k.batch = b.batch WHERE b.rowid > ? ORDER BY b.rowid LIMIT ?`,
      )
      .all(position, limit) as {
      rowid: number;
      gateway: string;
      batch: number;
      records: Buffer | null;
      earliest: number | null;
      latest: number | null;
    }[];
    return rows.map((r) => ({
      position: r.rowid,
      gateway: r.gateway,
      batch: r.batch,
      records: r.records,
      accepted: r.earliest === null || r.latest === null ? null : { earliest: r.earliest, latest: r.latest },
    }));
  }

  /** Moves the cursor to `position`; a refused batch is recorded in the same transaction (never skipped silently). */
  advance(position: number, refusal?: Refusal): void {
    this.db.transaction(() => {
      if (refusal !== undefined)
        this.db
          .prepare('INSERT INTO influx_failures (target, batch_rowid, gateway, batch, samples, status, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(this.target, refusal.position, refusal.gateway, refusal.batch, refusal.samples, refusal.status ?? null, refusal.error, Date.now());
      this.db
        .prepare(
          'INSERT INTO influx_cursor (target, last_rowid, updated_at) VALUES (?, ?, ?) ON CONFLICT(target) DO UPDATE SET last_rowid = excluded.last_rowid, updated_at = excluded.updated_at',
        )
        .run(this.target, position, Date.now());
    })();
  }

  counts(position: number): ForwardingCounts {
    const backlog = this.db
      .prepare('SELECT COUNT(*) AS batches, COALESCE(SUM(count), 0) AS samples FROM batch_headers WHERE rowid > ?')
      .get(position) as { batches: number; samples: number };
    const refused = this.db.prepare('SELECT COUNT(*) AS n FROM influx_failures WHERE target = ?').get(this.target) as { n: number };
    return { backlog, refused: refused.n };
  }
}

type Queryable = Kysely<Tables> | Transaction<Tables>;

/** PostgreSQL's batches, by log index (read through PgMeasurementStore); the cursor in influx_log_cursor. */
export class PgBatches {
  /** the position before the first batch (log indexes start at 0) */
  static readonly START = -1;

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly store: PgMeasurementStore,
    private readonly target: string,
  ) {}

  /** The stored cursor, read in `q` (a fenced transaction: it sees every write of an earlier holder of the lease). */
  async cursor(q: Queryable = this.db): Promise<number> {
    const row = await q.selectFrom('influx_log_cursor').select('last_log_index').where('target', '=', this.target).executeTakeFirst();
    return row === undefined ? PgBatches.START : Number(row.last_log_index);
  }

  async after(position: number, limit: number): Promise<StoredBatch[]> {
    return (await this.store.batchesAfter(position, limit)).map(({ logIndex, ...batch }) => ({ position: logIndex, ...batch }));
  }

  /**
   * Moves the cursor to `position` in `trx`, which must be fenced by the forwarder's lease: a node that no longer holds
   * it writes nothing. The cursor never moves back (a late write of an older position changes nothing). A refused
   * batch is recorded in the same transaction, its log index in batch_rowid (the batch's place in the copy's order).
   */
  async advance(trx: Transaction<Tables>, position: number, refusal?: Refusal): Promise<void> {
    const now = Date.now();
    if (refusal !== undefined)
      await trx
        .insertInto('influx_failures')
        .values({
          target: this.target,
          batch_rowid: refusal.position,
          gateway: refusal.gateway,
          batch: refusal.batch,
          samples: refusal.samples,
          status: refusal.status ?? null,
          error: refusal.error,
          at: now,
        })
        .execute();
    await trx
      .insertInto('influx_log_cursor')
      .values({ target: this.target, last_log_index: position, updated_at: now })
      .onConflict((oc) =>
        oc.column('target').doUpdateSet({
          last_log_index: sql<number>`GREATEST(influx_log_cursor.last_log_index, excluded.last_log_index)`,
          updated_at: (eb) => eb.ref('excluded.updated_at'),
        }),
      )
      .execute();
  }

  /** What is left to write after the stored cursor, and what was refused (any node: the health report). */
  async counts(): Promise<ForwardingCounts & { position: number }> {
    const position = await this.cursor();
    const backlog = await this.store.countAfter(position);
    const refused = await this.db
      .selectFrom('influx_failures')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('target', '=', this.target)
      .executeTakeFirst();
    return { position, backlog, refused: Number(refused?.n ?? 0) };
  }
}
