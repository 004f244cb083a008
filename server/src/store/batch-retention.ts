// What retention does to the store's tables (the job that decides when is retention/retention.ts): finds the stored
// batches that arrived before a time and may go, removes a batch's records' bytes while keeping its header, signature,
// log index and its records' leaf hashes (so that its signed root and the log's proofs still check), and removes a
// batch's samples from the per-sample index. The same queries on SQLite and PostgreSQL.
//
// A batch is never removed while a run that holds any of its sequence numbers (run_ranges) is planned or running, or
// completed without an issued certificate: its records are still the evidence of work not yet reported.
import { fromBase64, hashSlices, LabtraceError, readRecords, rootOfPacked, bytesEqual, type BatchHeader } from '@labtrace/protocols';
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Tables } from './tables.js';

type Db = Kysely<Tables> | Transaction<Tables>;

/** what retention removes of a batch: its records' bytes (and its samples with them), or only its samples in the index */
export type RetentionTarget = 'records' | 'index';

export interface ExpiredBatch {
  gateway: string;
  batch: number;
  firstSeq: number;
  count: number;
  receivedAt: number;
  /** the header's hash (base64), null for a batch stored before hashes were kept */
  hash: string | null;
  header: BatchHeader;
  /** its samples have left the per-sample index already */
  indexRemoved: boolean;
}

/** a gateway's share of what retention removes (or would) */
export interface GatewayRange {
  gateway: string;
  batches: number;
  records: number;
  firstSeq: number;
  lastSeq: number;
}

/** SQL: the batch `b` holds sequence numbers of a run whose records must stay (open, or completed without a certificate) */
const HELD_BY_A_RUN = sql`EXISTS (SELECT 1 FROM run_ranges rr JOIN runs r ON r.id = rr.run
  WHERE rr.gateway = b.gateway AND rr.first_seq < b.first_seq + b.count AND (rr.last_seq IS NULL OR rr.last_seq >= b.first_seq)
    AND (r.state IN ('planned', 'running') OR (r.state = 'completed' AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.run = r.id))))`;

/** SQL: the batch `b` arrived before `before` and still has what `target` removes */
function expired(target: RetentionTarget, before: number): RawBuilder<unknown> {
  return target === 'records'
    ? sql`b.received_at < ${before} AND b.records IS NOT NULL AND b.records_removed_at IS NULL AND b.indexed = 1`
    : sql`b.received_at < ${before} AND b.index_removed_at IS NULL AND b.indexed = 1`;
}

const num = (v: unknown): number => Number(v);

/** The oldest `limit` batches that arrived before `before` and may lose what `target` removes (not held by a run). */
export async function expiredBatches(db: Db, target: RetentionTarget, before: number, limit: number): Promise<ExpiredBatch[]> {
  const { rows } = await sql<{
    gateway: string;
    batch: unknown;
    first_seq: unknown;
    count: unknown;
    received_at: unknown;
    hash: string | null;
    header: string;
    index_removed_at: unknown;
  }>`SELECT b.gateway, b.batch, b.first_seq, b.count, b.received_at, b.hash, b.header, b.index_removed_at FROM batch_headers b
    WHERE ${expired(target, before)} AND NOT ${HELD_BY_A_RUN}
    ORDER BY b.received_at, b.gateway, b.batch LIMIT ${limit}`.execute(db);
  return rows.map((r) => ({
    gateway: r.gateway,
    batch: num(r.batch),
    firstSeq: num(r.first_seq),
    count: num(r.count),
    receivedAt: num(r.received_at),
    hash: r.hash,
    header: JSON.parse(r.header) as BatchHeader,
    indexRemoved: r.index_removed_at !== null,
  }));
}

/** Per gateway, what `target` would remove of the batches that arrived before `before`, and how many a run holds back. */
export async function expiredSummary(db: Db, target: RetentionTarget, before: number): Promise<{ gateways: GatewayRange[]; held: number }> {
  const { rows } = await sql<{ gateway: string; batches: unknown; records: unknown; first_seq: unknown; last_seq: unknown }>`
    SELECT b.gateway, COUNT(*) AS batches, SUM(b.count) AS records, MIN(b.first_seq) AS first_seq, MAX(b.first_seq + b.count - 1) AS last_seq
    FROM batch_headers b WHERE ${expired(target, before)} AND NOT ${HELD_BY_A_RUN} GROUP BY b.gateway ORDER BY b.gateway`.execute(db);
  const held = await sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM batch_headers b WHERE ${expired(target, before)} AND ${HELD_BY_A_RUN}`.execute(db);
  return {
    gateways: rows.map((r) => ({
      gateway: r.gateway,
      batches: num(r.batches),
      records: num(r.records),
      firstSeq: num(r.first_seq),
      lastSeq: num(r.last_seq),
    })),
    held: num(held.rows[0]?.n ?? 0),
  };
}

/** The packed leaf hashes (32 bytes each, in order) of a batch's stored records, checked against its signed root. */
export function leavesOf(records: Uint8Array, header: BatchHeader): Uint8Array {
  const bounds: number[] = [0];
  readRecords(records, (_record, _start, end) => void bounds.push(end));
  const packed = hashSlices(records, Uint32Array.from(bounds));
  if (bounds.length - 1 !== header.count || !bytesEqual(rootOfPacked(packed), fromBase64(header.root)))
    throw new LabtraceError(
      'E_STORE',
      `retention: the stored records of batch ${header.batch} of ${header.gateway} do not give its signed root; they are kept`,
    );
  return packed;
}

/**
 * Removes the records' bytes of these batches (the caller's transaction), keeping their leaf hashes; returns how
 * many records went. A batch whose stored records do not give its signed root is refused (the transaction rolls back).
 */
export async function removeRecords(trx: Transaction<Tables>, batches: readonly ExpiredBatch[], at: number): Promise<number> {
  let records = 0;
  for (const b of batches) {
    const { rows } = await sql<{ records: Uint8Array | null }>`SELECT records FROM batch_headers
      WHERE gateway = ${b.gateway} AND batch = ${b.batch} AND records_removed_at IS NULL`.execute(trx);
    const bytes = rows[0]?.records;
    if (bytes === null || bytes === undefined) continue;
    const leaves = leavesOf(bytes, b.header);
    await sql`UPDATE batch_headers SET records = NULL, leaves = ${Buffer.from(leaves.buffer, leaves.byteOffset, leaves.byteLength)},
      records_removed_at = ${at} WHERE gateway = ${b.gateway} AND batch = ${b.batch}`.execute(trx);
    records += b.count;
  }
  return records;
}

/** Removes these batches' samples from the per-sample index (the caller's transaction); returns the rows removed. */
export async function removeIndex(trx: Transaction<Tables>, batches: readonly ExpiredBatch[], at: number): Promise<number> {
  let removed = 0;
  for (const b of batches) {
    // the index is keyed by stream and time: the batch's streams and time span find its rows, its numbers pick them
    const result = await sql`DELETE FROM samples WHERE gateway = (SELECT id FROM gateway_ids WHERE name = ${b.gateway})
      AND stream IN (SELECT id FROM streams WHERE gateway = ${b.gateway})
      AND ts >= ${b.header.tsMin} AND ts <= ${b.header.tsMax} AND seq >= ${b.firstSeq} AND seq <= ${b.firstSeq + b.count - 1}`.execute(trx);
    removed += Number(result.numAffectedRows ?? 0n);
    await sql`UPDATE batch_headers SET index_removed_at = ${at} WHERE gateway = ${b.gateway} AND batch = ${b.batch}`.execute(trx);
  }
  return removed;
}

/** Per gateway, the batches given (in any order). */
export function rangesOf(batches: readonly ExpiredBatch[]): GatewayRange[] {
  const by = new Map<string, GatewayRange>();
  for (const b of batches) {
    const last = b.firstSeq + b.count - 1;
    const g = by.get(b.gateway);
    if (g === undefined) by.set(b.gateway, { gateway: b.gateway, batches: 1, records: b.count, firstSeq: b.firstSeq, lastSeq: last });
    else {
      g.batches++;
      g.records += b.count;
      g.firstSeq = Math.min(g.firstSeq, b.firstSeq);
      g.lastSeq = Math.max(g.lastSeq, last);
    }
  }
  return [...by.values()].sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
}
