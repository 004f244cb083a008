// What to export for a test run: for each gateway the run is bound to (run_ranges: the exact sequence
// numbers stored while it ran), the time span of the stored batches that hold that range. An export by
// gateway and time span (bundle.ts) includes every batch meeting the span, so every batch of the range,
// with the chain links and log proofs around them; the bundle may hold some neighbouring records too.
import { LabtraceError } from '@labtrace/protocols';
import { sql, type Kysely } from 'kysely';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

export interface RunSelection {
  gateway: string;
  /** the run's sequence range at that gateway (lastSeq: the newest stored one while the run is still running) */
  firstSeq: number;
  lastSeq: number;
  /** the time span of the stored batches holding the range, ms */
  from: number;
  to: number;
}

/** `field` names the run in errors: the command line's option, or the API's path parameter. */
export async function runSelections(store: Kysely<Tables>, run: string, field = '--run'): Promise<{ state: string; selections: RunSelection[] }> {
  const row = await store.selectFrom('runs').select('state').where('id', '=', run).executeTakeFirst();
  checkRun(row, run, field);
  const ranges = await store.selectFrom('run_ranges').selectAll().where('run', '=', run).orderBy('gateway').execute();
  // a batch's time span is in its signed header (JSON text on both engines)
  const tsOf = (key: 'tsMin' | 'tsMax') =>
    dialectOf(store as unknown as Kysely<unknown>) === 'postgres'
      ? sql<number | null>`CAST(CAST(header AS jsonb) ->> ${sql.lit(key)} AS DOUBLE PRECISION)`
      : sql<number | null>`json_extract(header, ${sql.lit(`$.${key}`)})`;
  const selections: RunSelection[] = [];
  for (const r of ranges) {
    const newest = await store
      .selectFrom('batch_headers')
      .select((eb) => eb.fn.max(eb('first_seq', '+', eb(eb.ref('count'), '-', 1))).as('last'))
      .where('gateway', '=', r.gateway)
      .executeTakeFirst();
    const lastSeq = r.last_seq ?? (newest?.last === null || newest?.last === undefined ? r.first_seq - 1 : Number(newest.last));
    if (lastSeq < r.first_seq) continue; // nothing was stored from this gateway while the run ran
    const span = await store
      .selectFrom('batch_headers')
      .select((eb) => [eb.fn.min(tsOf('tsMin')).as('from'), eb.fn.max(tsOf('tsMax')).as('to')])
      .where('gateway', '=', r.gateway)
      .where('first_seq', '<=', lastSeq)
      .where((eb) => eb(eb('first_seq', '+', eb.ref('count')), '>', r.first_seq))
      .executeTakeFirst();
    if (span === undefined || span.from === null || span.to === null) continue;
    selections.push({ gateway: r.gateway, firstSeq: r.first_seq, lastSeq, from: Number(span.from), to: Number(span.to) });
  }
  return { state: row.state, selections };
}

function checkRun(row: { state: string } | undefined, run: string, field: string): asserts row is { state: string } {
  if (row === undefined) throw new LabtraceError('E_NOT_FOUND', `${field}: there is no run "${run}"`);
  if (row.state === 'planned') throw new LabtraceError('E_CONFIG', `${field}: run "${run}" has not started: it has no records`);
}
