// Where a job that reads a stream got: the last item whose consequences are committed. A job that must not skip an
// item nor act on one twice when it moves to another node (the run inspection reads the stored batches in log order)
// writes its position in the same fenced transaction as the writes that item led to (or in one after them): a stale
// holder's transaction is refused as a whole (leases.ts), so the position a new holder reads is exactly as far as
// the committed consequences go. The row carries the epoch of the lease that wrote it (for the record: which
// acquisition got that far).
import type { Kysely, Transaction } from 'kysely';
import type { Lease } from './leases.js';

export type PositionTables = {
  job_positions: { name: string; position: number; epoch: number };
};

/** the stored position of the job `name`, or undefined when it never stored one (its first start) */
export async function readPosition<DB extends PositionTables>(store: Kysely<DB>, name: string): Promise<number | undefined> {
  const db = store as unknown as Kysely<PositionTables>;
  const row = await db.selectFrom('job_positions').select('position').where('name', '=', name).executeTakeFirst();
  return row === undefined ? undefined : Number(row.position);
}

/** Stores the position of the lease's job; call inside the lease's fenced transaction (JobContext.fenced). */
export async function writePosition<DB extends PositionTables>(trx: Transaction<DB>, lease: Lease, position: number): Promise<void> {
  const db = trx as unknown as Transaction<PositionTables>;
  await db
    .insertInto('job_positions')
    .values({ name: lease.name, position, epoch: lease.epoch })
    .onConflict((oc) => oc.column('name').doUpdateSet({ position, epoch: lease.epoch }))
    .execute();
}
