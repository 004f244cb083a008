// The store the test servers of a test file run on: the embedded SQLite file (the default), or, in the jest project
// "postgres" (on-postgres.ts sets LABTRACE_TEST_STORE), a real PostgreSQL 15 started once for the file, with a new
// database for each server. The same suites then check the server on both engines.
import { startPostgres, type TestPostgres } from './postgres.js';

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
