// Reads of a test server's store and log that the end-to-end suites check against, on either engine (the embedded
// SQLite file or PostgreSQL): through the store's Kysely (`server.db`) and the log's reader, never the SQLite file.
import { sql } from 'kysely';
import type { LabtraceServer } from '../../src/index.js';
import type { Tables } from '../../src/store/tables.js';

/** The number of rows of a table, of those whose columns have the values given if any. */
export async function rowCount(server: LabtraceServer, table: keyof Tables, where: Record<string, string | number> = {}): Promise<number> {
  const conditions = Object.entries(where).map(([column, value]) => sql`${sql.ref(column)} = ${value}`);
  const filter = conditions.length === 0 ? sql`` : sql` WHERE ${sql.join(conditions, sql` AND `)}`;
  const { rows } = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}${filter}`.execute(server.db);
  return Number(rows[0]?.n);
}

/** The number of entries of the server's transparency log (both engines keep them in log_entries). */
export async function logSize(server: LabtraceServer): Promise<number> {
  const row = await server.db
    .selectFrom('log_entries')
    .select((eb) => eb.fn.max('idx').as('last'))
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
}
