// Kysely's SQLite driver prepares a query's statement every time it runs it. On the server's schema (dozens of
// tables) preparing costs more than running a small query (the session lookup of every request: ~10x), so the
// driver is given the database behind a cache of prepared statements, by SQL text. A statement is run by one query at
// a time: Kysely holds the one connection for a query (a stream too) and its transaction.
import type Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** the statements kept: the queries of the modules are a few hundred texts; an IN list of another length is another */
const KEPT = 1000;

const NOTHING_TO_ROLL_BACK = {
  reader: false,
  all: () => [],
  run: () => ({ changes: 0, lastInsertRowid: 0 }),
  iterate: () => [][Symbol.iterator](),
} as unknown as SqliteStatement;

/** `sqlite` for Kysely's SqliteDialect, its statements prepared once per SQL text (the least recently used dropped). */
export function withStatementCache(sqlite: Database.Database, kept = KEPT): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string): SqliteStatement {
      // SQLite rolls a transaction back by itself when a write fails for want of space or on an I/O error
      // (SQLITE_FULL, SQLITE_IOERR); Kysely's ROLLBACK after it would fail ("no transaction is active") and hide
      // the error the caller must see (a full disk answers 503, not 500): nothing is left to roll back
      if (text === 'rollback' && !sqlite.inTransaction) return NOTHING_TO_ROLL_BACK;
      const cached = cache.get(text);
      if (cached !== undefined) {
        // most recently used last
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const statement = sqlite.prepare(text) as unknown as SqliteStatement;
      cache.set(text, statement);
      if (cache.size > kept) cache.delete(cache.keys().next().value as string);
      return statement;
    },
  };
}
