// The store the test servers of a test file run on: the embedded SQLite file (the default), or, in the jest project
// "postgres" (on-postgres.ts sets LABTRACE_TEST_STORE), a real PostgreSQL 15 started once for the file, with a new
// database for each server. The same suites then check the server on both engines. And the stores a store test
// opens itself on both engines (StoreFixture).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { LabDatabase, migrateStore, type Tables } from '../../src/store/database.js';
import { openStore, parseDatabaseUrl, type OpenedStore } from '../../src/store/dialect.js';
import { serverMigrations } from '../../src/migrations.js';
import { startPostgres, type PostgresOptions, type TestPostgres } from './postgres.js';

let cluster: Promise<TestPostgres> | undefined;
let databases = 0;

export function testStore(): 'sqlite' | 'postgres' {
  return process.env['LABTRACE_TEST_STORE'] === 'postgres' ? 'postgres' : 'sqlite';
}

/** A new, empty PostgreSQL database for one test server, or undefined on SQLite. */
export async function testDatabaseUrl(): Promise<string | undefined> {
  if (testStore() === 'sqlite') return undefined;
  cluster ??= startPostgres();
  return (await cluster).createDatabase(`server_${++databases}`);
}

/** Stops the file's PostgreSQL, if it started one (after its last test). */
export async function stopTestStore(): Promise<void> {
  const started = cluster;
  cluster = undefined;
  if (started !== undefined) await (await started).stop();
}

export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * The stores a store test opens itself, on SQLite and on a real PostgreSQL 15: the file's cluster (start() in
 * beforeAll, close() in afterAll), a new SQLite file or PostgreSQL database for each store, and every pool opened
 * and every directory made closed and removed at the end.
 */
export class StoreFixture {
  private cluster: TestPostgres | undefined;
  private readonly opened: OpenedStore[] = [];
  private readonly labDatabases: LabDatabase[] = [];
  private readonly dirs: string[] = [];
  private databases = 0;

  /** `name`: the prefix of the databases (`<name>_<n>`) and of the directories (`labtrace-<dir>-`, else `<name>`) */
  constructor(
    private readonly name: string,
    private readonly dir: string = name,
  ) {}

  /** Starts the cluster (call in beforeAll, with a timeout long enough for initdb). */
  async start(options: PostgresOptions = {}): Promise<TestPostgres> {
    this.cluster = await startPostgres(options);
    return this.cluster;
  }

  get postgres(): TestPostgres {
    if (this.cluster === undefined) throw new Error('the PostgreSQL of the test file is not started (StoreFixture.start in beforeAll)');
    return this.cluster;
  }

  /** a new directory, removed by close() */
  tempDir(): string {
    const dir = mkdtempSync(path.join(tmpdir(), `labtrace-${this.dir}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** the URL of a new, empty store: a SQLite file in a directory of its own, or a database on the cluster */
  async url(engine: Engine): Promise<string> {
    return engine === 'sqlite'
      ? `sqlite:${path.join(this.tempDir(), 'labtrace.sqlite')}`
      : this.postgres.createDatabase(`${this.name}_${++this.databases}`);
  }

  /** Opens the store at `url` (one more pool on PostgreSQL, as another node has), closed by close(). */
  open(url: string, options: Parameters<typeof openStore>[1] = {}): OpenedStore {
    const store = openStore(parseDatabaseUrl(url, 'url', process.cwd()), options);
    this.opened.push(store);
    return store;
  }

  /**
   * `nodes` Kyselys on one new store migrated by the server's migrations (up to `to`, else all): on SQLite one
   * (one file), on PostgreSQL a pool for each node on one database.
   */
  async stores(engine: Engine, nodes = 1, to?: string): Promise<Kysely<Tables>[]> {
    const url = await this.url(engine);
    const dbs = Array.from({ length: engine === 'sqlite' ? 1 : nodes }, () => this.open(url).db);
    await migrateStore(dbs[0] as Kysely<Tables>, serverMigrations, to);
    return dbs;
  }

  /** a SQLite LabDatabase (not migrated) in `dir`, else in a new directory, closed by close() */
  labDatabase(dir: string = this.tempDir()): LabDatabase {
    const database = new LabDatabase(dir, serverMigrations);
    this.labDatabases.push(database);
    return database;
  }

  /** Closes every store opened, stops the cluster and removes the directories (call in afterAll). */
  async close(): Promise<void> {
    for (const store of this.opened.splice(0)) await store.close();
    for (const database of this.labDatabases.splice(0)) await database.close();
    const cluster = this.cluster;
    this.cluster = undefined;
    await cluster?.stop();
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
