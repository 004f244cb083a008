// The per-sample index on PostgreSQL, split by time: `samples` is a table partitioned by range of `ts` (ms since the
// epoch, UTC), one partition per calendar month (samples_m202612 holds December 2026), plus one partition for every
// time before 2000 and one for every time from 2200 (an instrument's clock may say anything; its samples are kept).
//
// Why: at billions of rows one table means one (stream, ts) B-tree whose depth and cache footprint grow without end,
// and a retention that deletes rows one by one. Partitioned by month, a write lands in this month's tree (whose upper
// levels stay in memory), a read with a time range (history, series, a run's window) opens only the months it spans
// (partition pruning), the newest value of a stream is read month by month from the newest and stops at the first
// hit (an ordered append under LIMIT), and a month past retention leaves with DROP TABLE.
//
// Months are created when first written to (ensure), by whichever node writes first: creation is serialized by an
// advisory lock so that two nodes never race on one partition. SQLite keeps its single table.
import { sql, type Kysely, type Transaction } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';

/** The first and the last month with a partition of their own; times outside go to samples_early / samples_late. */
export const FIRST_MONTH_MS = Date.UTC(2000, 0, 1);
export const END_OF_MONTHS_MS = Date.UTC(2200, 0, 1);
/** the advisory lock (two-key form: this class, key 1) under which partitions are created or dropped */
const PARTITION_LOCK = [0x6c74_7370, 1] as const; // 'ltsp'

/** The measurements view as 0019_samples_rowid defines it (it reads samples, so it is made again around the change). */
const MEASUREMENTS_VIEW = `CREATE VIEW measurements AS
      SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts,
        CASE s.kind WHEN 1 THEN 0 WHEN 2 THEN 1 ELSE s.num END AS value_num, s.text AS value_text,
        CASE s.kind WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'boolean' WHEN 3 THEN 'number' ELSE 'string' END AS value_kind,
        st.unit, CASE s.quality WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality, s.reason
      FROM samples s JOIN gateway_ids g ON g.id = s.gateway JOIN streams st ON st.id = s.stream`;

export interface MonthPartition {
  name: string;
  /** first ms of the month (inclusive) */
  from: number;
  /** first ms of the next month (exclusive) */
  to: number;
}

/** The month partition a time falls in; undefined before 2000 or from 2200 (the early and late partitions). */
export function monthOf(ts: number): MonthPartition | undefined {
  if (!Number.isFinite(ts) || ts < FIRST_MONTH_MS || ts >= END_OF_MONTHS_MS) return undefined;
  const d = new Date(ts);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth();
  return {
    name: `samples_m${year}${String(month + 1).padStart(2, '0')}`,
    from: Date.UTC(year, month, 1),
    to: Date.UTC(year, month + 1, 1),
  };
}

/** The month partitions that [from, to] (ms, inclusive) touches, oldest first. */
export function monthsBetween(from: number, to: number): MonthPartition[] {
  const months: MonthPartition[] = [];
  let at = Math.max(from, FIRST_MONTH_MS);
  const last = Math.min(to, END_OF_MONTHS_MS - 1);
  while (at <= last) {
    const month = monthOf(at) as MonthPartition;
    months.push(month);
    at = month.to;
  }
  return months;
}

/**
 * Migration 0042 on PostgreSQL: `samples` becomes a table partitioned by month, holding the rows it had.
 * The view over it is dropped and made again as it was.
 */
export async function partitionSamples(db: Kysely<unknown>): Promise<void> {
  await sql`DROP VIEW measurements`.execute(db);
  await sql`ALTER TABLE samples RENAME TO samples_unpartitioned`.execute(db);
  await sql`DROP INDEX samples_by_stream`.execute(db);
  await sql
    .raw(
      `CREATE TABLE samples (
      gateway BIGINT NOT NULL, seq BIGINT NOT NULL, stream BIGINT NOT NULL, ts BIGINT NOT NULL,
      num DOUBLE PRECISION, text TEXT, kind BIGINT NOT NULL, quality BIGINT NOT NULL, reason TEXT) PARTITION BY RANGE (ts)`,
    )
    .execute(db);
  // one index definition on the parent: every partition gets its own copy
  await sql`CREATE INDEX samples_by_stream ON samples (stream, ts)`.execute(db);
  await sql.raw(`CREATE TABLE samples_early PARTITION OF samples FOR VALUES FROM (MINVALUE) TO (${FIRST_MONTH_MS})`).execute(db);
  await sql.raw(`CREATE TABLE samples_late PARTITION OF samples FOR VALUES FROM (${END_OF_MONTHS_MS}) TO (MAXVALUE)`).execute(db);
  // the months that have rows (not every month between the oldest and the newest: a clock may have said 2150)
  const { rows } = await sql<{ month: string }>`SELECT DISTINCT
      (extract(epoch FROM date_trunc('month', to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC')) * 1000)::bigint AS month
    FROM samples_unpartitioned WHERE ts >= ${FIRST_MONTH_MS} AND ts < ${END_OF_MONTHS_MS}`.execute(db);
  for (const { month } of rows) await createMonth(db, monthOf(Number(month)) as MonthPartition);
  await sql`INSERT INTO samples SELECT gateway, seq, stream, ts, num, text, kind, quality, reason FROM samples_unpartitioned`.execute(db);
  await sql`DROP TABLE samples_unpartitioned`.execute(db);
  await sql.raw(MEASUREMENTS_VIEW).execute(db);
}

/** Makes these month partitions where missing, in the caller's transaction (migrate-store's copy). */
export async function createMonths(db: Kysely<unknown> | Transaction<unknown>, months: readonly MonthPartition[]): Promise<void> {
  for (const month of months) await createMonth(db, month);
}

async function createMonth(db: Kysely<unknown> | Transaction<unknown>, month: MonthPartition): Promise<void> {
  await sql.raw(`CREATE TABLE IF NOT EXISTS ${month.name} PARTITION OF samples FOR VALUES FROM (${month.from}) TO (${month.to})`).execute(db);
}

/**
 * The month partitions of a PostgreSQL store: makes sure the months a write touches exist before the write's own
 * transaction begins (a partition cannot be made inside it: creating one locks the whole table). Months known to
 * exist are remembered; the next month is made ahead of time, so that writes at a month's turn do not wait for it.
 */
export class SamplePartitions {
  /** months known to exist, from the previous month on (retention never drops those: see dropBefore) */
  private readonly known = new Set<string>();

  constructor(
    private readonly db: Kysely<unknown>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The first ms of the previous month: months from here on are never dropped, so they may be remembered. */
  private keptFrom(): number {
    const now = new Date(this.clock());
    return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
  }

  /** Makes the month partitions of these times exist (with the month after the newest). */
  async ensure(times: Iterable<number>): Promise<void> {
    const missing = new Map<string, MonthPartition>();
    // the month of the time before: most times of a batch fall in one month, looked up once
    let seen: MonthPartition | undefined;
    for (const ts of times) {
      if (seen !== undefined && ts >= seen.from && ts < seen.to) continue;
      const month = monthOf(ts);
      seen = month;
      if (month === undefined || this.known.has(month.name) || missing.has(month.name)) continue;
      missing.set(month.name, month);
      const next = monthOf(month.to);
      if (next !== undefined && !this.known.has(next.name)) missing.set(next.name, next);
    }
    if (missing.size === 0) return;
    await this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${PARTITION_LOCK[0]}, ${PARTITION_LOCK[1]})`.execute(trx);
      const names = [...missing.keys()];
      const { rows } = await sql<{ relname: string }>`SELECT relname FROM pg_class WHERE relname = ANY(${names}::text[])`.execute(trx);
      const existing = new Set(rows.map((r) => r.relname));
      for (const month of missing.values()) if (!existing.has(month.name)) await createMonth(trx, month);
    });
    // an older month may be dropped by another node's retention at any time: looked up again on its next write
    const keptFrom = this.keptFrom();
    for (const month of missing.values()) if (month.from >= keptFrom) this.known.add(month.name);
  }

  /** The month partitions there are, oldest first. */
  async list(): Promise<MonthPartition[]> {
    const { rows } = await sql<{ relname: string }>`SELECT c.relname FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = 'samples' AND c.relname LIKE 'samples_m%' ORDER BY c.relname`.execute(this.db);
    return rows.flatMap((r) => {
      const m = /^samples_m(\d{4})(\d{2})$/.exec(r.relname);
      return m === null ? [] : [monthOf(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)) as MonthPartition];
    });
  }

  /**
   * Retention: drops every month that ends at or before `before` (ms), whole; returns the months dropped. The
   * stored batches keep every sample (the index is derived from them); this bounds the index only. The current and
   * the previous month are always kept (every node may remember that they exist).
   */
  async dropBefore(before: number): Promise<string[]> {
    if (!Number.isFinite(before)) throw new LabtraceError('E_BAD_REQUEST', 'before: expected a time in ms');
    if (before > this.keptFrom())
      throw new LabtraceError(
        'E_BAD_REQUEST',
        `before: ${new Date(before).toISOString()} would drop the current or the previous month, which are always kept`,
      );
    const dropped: string[] = [];
    await this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${PARTITION_LOCK[0]}, ${PARTITION_LOCK[1]})`.execute(trx);
      for (const month of await this.list())
        if (month.to <= before) {
          await sql.raw(`DROP TABLE ${month.name}`).execute(trx);
          dropped.push(month.name);
        }
    });
    for (const name of dropped) this.known.delete(name);
    return dropped;
  }
}
