// The embedded relational store: one SQLite file (WAL) under the data directory. Lab records go
// through Kysely, which also speaks PostgreSQL; the hot measurement path uses prepared statements.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Migration, type MigrationProvider, type Transaction } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import { dialectOf } from './portable-ddl.js';
import { withStatementCache } from './sqlite-statements.js';

// the Kysely type of every table the migrations create, generated from a migrated store (store/tables-schema.ts)
export type { Tables } from './tables.js';
import type { Tables } from './tables.js';

/**
 * Opens the transaction a module's write runs in and commits it: the store's own by default. A job of one node of
 * several passes its lease's fenced() (cluster/jobs.ts), so that the write commits only while that node still holds
 * the job's lease, and a node that lost it writes nothing.
 */
export type Transact = <T>(work: (trx: Transaction<Tables>) => Promise<T>) => Promise<T>;

/**
 * The migrations of a store, by name: each module defines those of its own tables (its migrations.ts), and the
 * server's composition (src/migrations.ts) gives the store the ordered list of all of them. The store knows none
 * of the modules: it runs the list it is given.
 */
export type Migrations = Readonly<Record<string, Migration>>;

class StaticMigrations implements MigrationProvider {
  constructor(private readonly migrations: Migrations) {}

  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve({ ...this.migrations });
  }
}

/**
 * Brings a store (SQLite or PostgreSQL) to the latest schema, or to the named migration; returns the migrations it
 * applied, in order. Kysely's Migrator holds a lock meanwhile (on PostgreSQL an advisory lock, so that two processes
 * migrating one database at once apply each migration once) and records what it applied in kysely_migration.
 * On SQLite its lock is the process's own; `exclusive` runs the whole migration in one write transaction
 * (BEGIN IMMEDIATE), so that a second process waits for it and then finds nothing left to apply.
 */
export async function migrateStore(
  db: Kysely<Tables> | Kysely<unknown>,
  migrations: Migrations,
  to?: string,
  options: { exclusive?: boolean; onStep?: (step: MigrationStep) => void } = {},
): Promise<string[]> {
  const store = db as Kysely<unknown>;
  const exclusive = options.exclusive === true && dialectOf(store) === 'sqlite';
  // (one SQLite connection: the Migrator's statements run inside this transaction)
  if (exclusive) await sql`BEGIN IMMEDIATE`.execute(store);
  const migrator = new Migrator({ db: store, provider: new StaticMigrations(migrations) });
  const applied: string[] = [];
  let error: unknown;
  if (to === undefined && options.onStep !== undefined) {
    // one migration at a time, each told as it is applied (a migration that rewrites a large table takes minutes)
    let pending: string[] = [];
    try {
      pending = (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
    } catch (err) {
      // (a store that does not answer: the same coded error as a failed migration)
      error = err;
    }
    for (const [index, name] of (error === undefined ? pending : []).entries()) {
      const started = Date.now();
      const step = await migrator.migrateTo(name);
      const done = (step.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      applied.push(...done);
      if (step.error !== undefined) {
        error = step.error;
        break;
      }
      // (another process migrating the same PostgreSQL database may have applied it meanwhile: then nothing is told)
      if (done.includes(name)) options.onStep({ name, index: index + 1, total: pending.length, ms: Date.now() - started });
    }
  } else {
    const result = to === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(to);
    error = result.error;
    applied.push(...(result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName));
  }
  if (exclusive) await sql.raw(error ? 'ROLLBACK' : 'COMMIT').execute(store);
  if (error)
    throw new LabtraceError('E_STORE', `store migration failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
      cause: error,
    });
  return applied;
}

/** One migration applied by migrateStore: its name, its place among those this start applies, and how long it took. */
export interface MigrationStep {
  name: string;
  index: number;
  total: number;
  ms: number;
}

/**
 * The page size of a new store, in bytes (SQLite's default is 4 KiB). The per-sample index writes a few rows to each
 * of thousands of streams' last pages per transaction; larger pages take more of a stream's rows each, so a row costs
 * fewer page splits, fewer B-tree levels and less WAL bookkeeping, and a stored batch's records (about 40 bytes a
 * sample) need fewer overflow pages. Measured with MeasurementStore (10,000 streams, batches of 10,000 samples, on
 * a busy 2-core machine): the index 6.9-8.1 µs of CPU a sample with 4 KiB pages, 3.3-4.0 with 32-64 KiB, storing a
 * batch 3.8-4.0 against 2.8-3.5; with one row per stream per transaction (a light load) 6.2 against 4.3.
 */
export const STORE_PAGE_SIZE = 32_768;
/** how much of the WAL is written before it is copied back into the database: 2,000 pages of 4 KiB */
const WAL_CHECKPOINT_BYTES = 2000 * 4096;

/** Opens the SQLite file of a store (WAL, durable commits, foreign keys) as the server runs it. */
export function openSqliteFile(file: string): Database.Database {
  let sqlite: Database.Database;
  try {
    sqlite = new Database(file);
  } catch (err) {
    throw new LabtraceError('E_STORE', `cannot open the store ${file}: ${(err as Error).message}`, { cause: err });
  }
  // A new store's pages are STORE_PAGE_SIZE bytes (set before anything is written; an existing store keeps its own)
  if ((sqlite.pragma('page_count', { simple: true }) as number) === 0) sqlite.pragma(`page_size = ${STORE_PAGE_SIZE}`);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a batch acknowledged to a gateway survives a power cut, not only a process crash.
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  // a page cache large enough for the index of many streams written at once (the default is 2 MiB)
  sqlite.pragma('cache_size = -131072');
  // The WAL is copied back into the database every 8 MB of pages (2,000 pages of 4 KiB) rather than every 4 MB: the
  // per-sample index rewrites the same pages (each stream's last) from group to group, and each checkpoint copies them
  // once. It was 40 MB, which let the WAL grow to 10 times the data on a small lab; once checkpointed, the WAL file is
  // cut back to 8 MiB, and an idle one is truncated (store/capacity.ts).
  const pageSize = sqlite.pragma('page_size', { simple: true }) as number;
  sqlite.pragma(`wal_autocheckpoint = ${Math.max(1, Math.round(WAL_CHECKPOINT_BYTES / pageSize))}`);
  sqlite.pragma(`journal_size_limit = ${8 * 1048576}`);
  return sqlite;
}

export class LabDatabase {
  readonly sqlite: Database.Database;
  readonly db: Kysely<Tables>;

  /**
   * `migrations`: the list `migrate` runs (src/migrations.ts composes the server's); `file`: the SQLite file, by
   * default labtrace.sqlite in the data directory (`database.url: sqlite:<file>` puts it elsewhere)
   */
  constructor(
    readonly dataDir: string,
    private readonly migrations: Migrations,
    readonly file = path.join(dataDir, 'labtrace.sqlite'),
  ) {
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(path.dirname(file), { recursive: true });
    this.sqlite = openSqliteFile(file);
    this.db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: withStatementCache(this.sqlite) }) });
  }

  /** Migrates to the latest schema, or to the named migration (for tests of the migrations); `onStep` tells each one applied. */
  async migrate(to?: string, onStep?: (step: MigrationStep) => void): Promise<void> {
    await migrateStore(this.db, this.migrations, to, onStep === undefined ? {} : { onStep });
  }

  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.db);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.db.destroy(); // closes the SQLite handle too
  }
}
