// What the trust modules share about their store while the server moves onto Kysely: the SQLite LabDatabase (whose
// synchronous twins the modules not yet moved call) or any Kysely store, and how a SQLite write transaction waits for
// another process (the admin command line beside the running server) rather than fail.
import { sql, type Kysely, type Transaction } from 'kysely';
import { LabDatabase, type Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

/** The store of a module moving to Kysely: the SQLite LabDatabase (with its synchronous twins), or any Kysely store. */
export type TrustStore = LabDatabase | Kysely<Tables>;

/** The Kysely store, and the SQLite database for the synchronous twins when there is one. */
export function storeOf(source: TrustStore): { db: Kysely<Tables>; sqlite: LabDatabase | undefined } {
  return source instanceof LabDatabase ? { db: source.db, sqlite: source } : { db: source, sqlite: undefined };
}

/**
 * SQLite: takes the write lock first thing in the transaction (a write that changes no row), waiting busy_timeout
 * for another process's. Kysely begins a deferred transaction: one that reads first and writes later fails at its
 * first write (SQLITE_BUSY, its WAL snapshot cannot become a write) when another process committed in between,
 * such as the running server while the command line revokes a key. PostgreSQL: nothing (its writers do not block
 * readers; the modules' own locks order the writers that must be).
 */
export async function holdWriteLock(trx: Transaction<Tables>): Promise<void> {
  if (dialectOf(trx as unknown as Kysely<unknown>) === 'sqlite') await sql`UPDATE key_events SET log_index = log_index WHERE id = -1`.execute(trx);
}
