// The synchronous twins of the lab records' and the equipment's methods, for the modules not yet on Kysely that call
// them inside their own synchronous SQLite transactions. A twin runs the query its async method builds (compiled by
// Kysely, so that both say the same) on the embedded SQLite store's connection. This file goes with the last twin.
import type { Compilable, Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';

/** the store a module is given: its Kysely, or the embedded SQLite store (which also serves the synchronous twins) */
export type LabStore = Kysely<Tables> | LabDatabase;

const isLabDatabase = (store: LabStore): store is LabDatabase => 'sqlite' in store && 'db' in store;

/** the Kysely of a store */
export const kyselyOf = (store: LabStore): Kysely<Tables> => (isLabDatabase(store) ? store.db : store);

/** Runs compiled Kysely queries synchronously on the embedded SQLite store; throws when the store is another. */
export class SyncTwins {
  private readonly database: LabDatabase | undefined;

  constructor(
    store: LabStore,
    private readonly owner: string,
  ) {
    this.database = isLabDatabase(store) ? store : undefined;
  }

  private sqlite(): LabDatabase['sqlite'] {
    if (this.database === undefined) throw new Error(`${this.owner}: a synchronous call needs the embedded SQLite store`);
    return this.database.sqlite;
  }

  /** the first row the query answers */
  first<R>(query: Compilable<R>): R | undefined {
    const { sql, parameters } = query.compile();
    return this.sqlite()
      .prepare(sql)
      .get(...parameters) as R | undefined;
  }

  /** every row the query answers */
  all<R>(query: Compilable<R>): R[] {
    const { sql, parameters } = query.compile();
    return this.sqlite()
      .prepare(sql)
      .all(...parameters) as R[];
  }

  run(query: Compilable<unknown>): void {
    const { sql, parameters } = query.compile();
    this.sqlite()
      .prepare(sql)
      .run(...parameters);
  }

  /** `fn` in one synchronous transaction (nested in the caller's, when it has one) */
  transaction<T>(fn: () => T): T {
    return this.sqlite().transaction(fn)();
  }
}
