// The Kysely `Tables` type (src/store/tables.ts) is what a freshly migrated store holds, on SQLite and on a real
// PostgreSQL 15: a migration without its type, or one that gives a column another type on one engine, fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { serverMigrations } from '../../src/migrations.js';
import { migrateStore } from '../../src/store/database.js';
import { ddl } from '../../src/store/portable-ddl.js';
import { generateTables, introspectTables } from '../../src/store/tables-schema.js';
import { ENGINES, StoreFixture, type Engine } from '../helpers/test-store.js';

const COMMITTED = fileURLToPath(new URL('../../../src/store/tables.ts', import.meta.url));
const REGENERATE = 'run `npx tsc -b && npm run tables -w @labtrace/server` and commit src/store/tables.ts';

const fixture = new StoreFixture('tables');
beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

const open = async (engine: Engine): Promise<Kysely<unknown>> => fixture.open(await fixture.url(engine)).db as Kysely<unknown>;

describe.each(ENGINES)('on %s', (engine) => {
  test('the committed Tables type is what a freshly migrated store holds', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations);
    const generated = await generateTables(db);
    const committed = readFileSync(COMMITTED, 'utf8');
    if (generated !== committed) {
      // the first differing line, to say what changed
      const a = committed.split('\n');
      const b = generated.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      throw new Error(
        `src/store/tables.ts differs from a ${engine} store migrated by serverMigrations at line ${line + 1}:\n` +
          `  committed: ${a[line] ?? '(end of file)'}\n  ${engine}: ${b[line] ?? '(end of file)'}\n${REGENERATE}`,
      );
    }
    // every table of the store is in it (and nothing else: the comparison above), the migrator's own excepted
    const tables = (await introspectTables(db)).map((t) => t.name);
    expect(tables).toContain('log_entries');
    expect(tables).not.toContain('kysely_migration');
    for (const name of tables) expect(committed).toContain(`\n  ${name}: {\n`);
  });

  test('a migration without its type is found: a new column changes the generated type', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations);
    await ddl(db, `ALTER TABLE log_checkpoints ADD COLUMN witness TEXT`);
    await ddl(db, `CREATE TABLE extra (id INTEGER PRIMARY KEY, payload BLOB NOT NULL, weight REAL DEFAULT 1)`);
    const generated = await generateTables(db);
    expect(generated).not.toBe(readFileSync(COMMITTED, 'utf8'));
    expect(generated).toContain(
      '  log_checkpoints: {\n    size: Generated<number>;\n    note: string;\n    at: number;\n    witness: string | null;\n  };',
    );
    expect(generated).toContain('  extra: {\n    id: Generated<number>;\n    payload: Bytes;\n    weight: Generated<number | null>;\n  };');
  });

  test('a column type with no TypeScript type here is refused, naming the column', async () => {
    const db = await open(engine);
    await sql.raw('CREATE TABLE odd (id TEXT PRIMARY KEY, flag BOOLEAN)').execute(db);
    await expect(introspectTables(db)).rejects.toThrow(/odd\.flag: no TypeScript type for the (SQLite|PostgreSQL) column type "boolean"/i);
  });

  test('values read back with the types the file gives them: numbers for 64-bit integers, Buffers for bytes', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations);
    const data = new Uint8Array([0, 1, 2, 255]);
    const big = 2 ** 53 - 1;
    await sql`INSERT INTO log_entries (idx, kind, data, leaf, at) VALUES (${big}, 'audit-event', ${data}, ${data}, ${1_700_000_000_000})`.execute(db);
    const { rows } = await sql<{ idx: unknown; data: unknown; at: unknown }>`SELECT idx, data, at FROM log_entries`.execute(db);
    expect(rows).toHaveLength(1);
    const row = rows[0] as { idx: unknown; data: unknown; at: unknown };
    expect(typeof row.idx).toBe('number');
    expect(row.idx).toBe(big);
    expect(row.at).toBe(1_700_000_000_000);
    expect(Buffer.isBuffer(row.data)).toBe(true);
    expect([...(row.data as Buffer)]).toEqual([0, 1, 2, 255]);
    // an aggregate over BIGINT is a number too
    const count = await sql<{ n: unknown }>`SELECT count(*) AS n FROM log_entries`.execute(db);
    expect(count.rows[0]?.n).toBe(1);
  });
});

test('on postgres, a BIGINT beyond 2^53 is refused rather than rounded', async () => {
  const db = await open('postgres');
  await expect(sql`SELECT 9007199254740993::bigint AS n`.execute(db)).rejects.toThrow(/9007199254740993 is beyond 2\^53/);
  // the pool is still usable after the refusal
  const { rows } = await sql<{ n: number }>`SELECT 9007199254740991::bigint AS n`.execute(db);
  expect(rows[0]?.n).toBe(9007199254740991);
});
