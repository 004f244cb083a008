// The property that lets the server's modules move from synchronous better-sqlite3 statements to asynchronous
// Kysely queries one at a time, on one SQLite connection: a Kysely transaction whose body awaits only its own
// queries runs to its end (COMMIT included) within one turn of the event loop, so that no synchronous statement of
// a module not yet moved (run from a timer, an MQTT message or a request) can land inside it, nor begin a
// transaction while it is open. A Kysely upgrade that yields to the event loop inside a query breaks this test,
// and the mixed server with it (docs/scale-out.md, "How the server moves onto PostgreSQL").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { LabDatabase } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';

let dir: string;
let database: LabDatabase;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-tx-'));
  database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
});
afterAll(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a Kysely transaction on the SQLite connection ends before any other task runs', async () => {
  const seen: string[] = [];
  // tasks queued before the transaction: a timer, an immediate, and I/O completing meanwhile
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      seen.push(`timer: in a transaction ${String(database.sqlite.inTransaction)}`);
      resolve();
    }, 0),
  );
  const immediate = new Promise<void>((resolve) =>
    setImmediate(() => {
      // what a module not yet moved would do: a synchronous write of its own
      database.sqlite.prepare('INSERT INTO store_probe (at) VALUES (2)').run();
      seen.push(`immediate: in a transaction ${String(database.sqlite.inTransaction)}`);
      resolve();
    }),
  );
  await database.db.transaction().execute(async (trx) => {
    for (let i = 0; i < 200; i++) await sql`INSERT INTO store_probe (at) VALUES (1)`.execute(trx);
    await sql`SELECT COUNT(*) FROM store_probe`.execute(trx);
    seen.push(`body end: in a transaction ${String(database.sqlite.inTransaction)}`);
  });
  seen.push(`committed: in a transaction ${String(database.sqlite.inTransaction)}`);
  await Promise.all([timer, immediate]);
  expect(seen).toEqual([
    'body end: in a transaction true',
    'committed: in a transaction false',
    // which of the two other tasks runs first is Node's business; both run after the commit
    ...seen.slice(2),
  ]);
  expect(seen.slice(2).sort()).toEqual(['immediate: in a transaction false', 'timer: in a transaction false']);
  // the synchronous write was its own, after the transaction: 200 rows of the transaction, then 1
  const rows = database.sqlite.prepare('SELECT at FROM store_probe ORDER BY id').pluck().all() as number[];
  expect(rows).toEqual([...Array(200).fill(1), 2]);
});
