// The store's migrations on both engines: a new SQLite store gets the schema SQLite stores always had, and a real
// PostgreSQL 15 gets the same tables, columns, views, indexes and refusing triggers.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { LabDatabase, migrateStore } from '../../src/store/database.js';
import type { OpenedStore } from '../../src/store/dialect.js';
import { postgresStatement } from '../../src/store/portable-ddl.js';
import { StoreFixture } from '../helpers/test-store.js';
import { serverMigrations } from '../../src/migrations.js';

// the SQLite schema (sqlite_master) a fresh store had before the migrations learnt PostgreSQL
const FIXTURE = fileURLToPath(new URL('../../../test/store/fixtures/sqlite-schema.json', import.meta.url));

interface Column {
  name: string;
  /** integer, real, text, blob */
  type: string;
  notNull: boolean;
  generated: boolean;
}
type Schema = Record<string, Column[]>;

// a portable notion of a column's type: SQLite's declared type (its affinity words) and PostgreSQL's data type
const SQLITE_TYPES: Record<string, string> = { INTEGER: 'integer', REAL: 'real', TEXT: 'text', BLOB: 'blob', 'VARCHAR(255)': 'text' };
const POSTGRES_TYPES: Record<string, string> = {
  bigint: 'integer',
  integer: 'integer',
  'double precision': 'real',
  text: 'text',
  bytea: 'blob',
  'character varying': 'text',
};

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'labtrace-ddl-'));

interface Constraints {
  /** "table(col, ...) -> table(col, ...)" */
  foreignKeys: string[];
  /** "table: primary key (col, ...)" and "table: unique (col, ...)" */
  keys: string[];
}

async function sqliteSchema(database: LabDatabase): Promise<{ tables: Schema; views: Schema; indexes: string[]; triggers: string[] } & Constraints> {
  const objects = database.sqlite
    .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND (type <> 'index' OR sql IS NOT NULL) ORDER BY name")
    .all() as { type: string; name: string }[];
  const columnsOf = (table: string): Column[] =>
    (
      database.sqlite.prepare(`SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`).all(table) as {
        name: string;
        type: string;
        notnull: number;
        pk: number;
        hidden: number;
      }[]
    ).map((c) => ({
      name: c.name,
      type: SQLITE_TYPES[c.type.toUpperCase()] ?? `?${c.type}`,
      // a key column holds no NULL on either engine (SQLite's table_info leaves notnull 0 on an undeclared one)
      notNull: c.notnull === 1 || c.pk > 0,
      generated: c.hidden === 2 || c.hidden === 3,
    }));
  const tables: Schema = {};
  const views: Schema = {};
  for (const o of objects) {
    if (o.type === 'table') tables[o.name] = columnsOf(o.name);
    if (o.type === 'view') views[o.name] = columnsOf(o.name).map((c) => ({ ...c, type: '', notNull: false }));
  }
  const foreignKeys: string[] = [];
  const keys: string[] = [];
  for (const table of Object.keys(tables)) {
    const fks = database.sqlite.prepare('SELECT id, "table" AS target, "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq').all(table) as {
      id: number;
      target: string;
      from: string;
      to: string | null;
    }[];
    for (const id of new Set(fks.map((f) => f.id))) {
      const parts = fks.filter((f) => f.id === id);
      foreignKeys.push(`${table}(${parts.map((p) => p.from).join(', ')}) -> ${parts[0]?.target}(${parts.map((p) => p.to).join(', ')})`);
    }
    const pk = database.sqlite.prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(table) as { name: string }[];
    if (pk.length > 0) keys.push(`${table}: primary key (${pk.map((c) => c.name).join(', ')})`);
    const uniques = database.sqlite.prepare("SELECT name FROM pragma_index_list(?) WHERE origin = 'u'").all(table) as { name: string }[];
    for (const u of uniques) {
      const cols = database.sqlite.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(u.name) as { name: string }[];
      keys.push(`${table}: unique (${cols.map((c) => c.name).join(', ')})`);
    }
  }
  return {
    tables,
    views,
    foreignKeys: foreignKeys.sort(),
    keys: keys.sort(),
    indexes: objects.filter((o) => o.type === 'index').map((o) => o.name),
    triggers: objects.filter((o) => o.type === 'trigger').map((o) => o.name),
  };
}

async function postgresSchema(db: Kysely<unknown>): Promise<{ tables: Schema; views: Schema; indexes: string[]; triggers: string[] } & Constraints> {
  const { rows: columns } = await sql<{
    table_name: string;
    table_type: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
    is_generated: string;
  }>`SELECT c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable, c.is_generated
     FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'public'
       -- a partitioned table is one table (its partitions, samples' months on PostgreSQL, are its storage)
       AND NOT EXISTS (SELECT 1 FROM pg_class p JOIN pg_namespace pn ON pn.oid = p.relnamespace
         WHERE pn.nspname = 'public' AND p.relname = c.table_name AND p.relispartition)
     ORDER BY c.table_name, c.ordinal_position`.execute(db);
  const tables: Schema = {};
  const views: Schema = {};
  for (const c of columns) {
    const view = c.table_type === 'VIEW';
    const into = view ? views : tables;
    (into[c.table_name] ??= []).push({
      name: c.column_name,
      type: view ? '' : (POSTGRES_TYPES[c.data_type] ?? `?${c.data_type}`),
      notNull: view ? false : c.is_nullable === 'NO',
      generated: c.is_generated === 'ALWAYS',
    });
  }
  // the indexes made by CREATE INDEX (not those behind a key or a UNIQUE constraint, which SQLite keeps unnamed)
  const { rows: indexes } = await sql<{ name: string }>`SELECT c.relname AS name FROM pg_index x
     JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT c.relispartition AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
     ORDER BY c.relname`.execute(db);
  const { rows: triggers } = await sql<{ name: string }>`SELECT t.tgname AS name FROM pg_trigger t
     JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY t.tgname`.execute(db);
  // constraints with their columns in key order
  const { rows: constraints } = await sql<{ kind: string; source: string; columns: string[]; target: string | null; targets: string[] | null }>`
    SELECT k.contype AS kind, c.relname AS source,
      ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS columns,
      t.relname AS target,
      ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS targets
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = k.confrelid
    WHERE n.nspname = 'public' AND k.contype IN ('p', 'u', 'f')`.execute(db);
  const foreignKeys = constraints
    .filter((k) => k.kind === 'f')
    .map((k) => `${k.source}(${k.columns.join(', ')}) -> ${k.target}(${(k.targets ?? []).join(', ')})`)
    .sort();
  const keys = constraints
    .filter((k) => k.kind !== 'f')
    .map((k) => `${k.source}: ${k.kind === 'p' ? 'primary key' : 'unique'} (${k.columns.join(', ')})`)
    .sort();
  return { tables, views, foreignKeys, keys, indexes: indexes.map((r) => r.name), triggers: triggers.map((r) => r.name) };
}

const sorted = (names: string[]): string[] => [...names].sort();

test('a new SQLite store has the schema SQLite stores always had, statement for statement', async () => {
  const expected = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { migrations: string[]; objects: unknown[] };
  const database = new LabDatabase(tmp(), serverMigrations);
  await database.migrate();
  const objects = database.sqlite
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
    .all();
  expect(objects).toEqual(expected.objects);
  expect(database.sqlite.prepare('SELECT name FROM kysely_migration ORDER BY name').pluck().all()).toEqual(expected.migrations);
  await database.close();
});

test('a statement the rules do not cover is refused, not guessed at', () => {
  expect(() => postgresStatement('CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET n = n + 1; END')).toThrow(/no PostgreSQL form/);
  expect(postgresStatement('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v REAL, b BLOB, PRIMARY KEY (id)) WITHOUT ROWID')).toEqual([
    'CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v DOUBLE PRECISION, b BYTEA, PRIMARY KEY (id))',
  ]);
});

describe('on PostgreSQL 15', () => {
  const fixture = new StoreFixture('ddl');
  const open = async (name: string): Promise<OpenedStore> => fixture.open(await fixture.postgres.createDatabase(name));

  beforeAll(() => fixture.start(), 120_000);
  afterAll(() => fixture.close());

  test('the migrations give the same tables, columns (type, nullability), keys, foreign keys, views, indexes and triggers as on SQLite', async () => {
    const sqlite = new LabDatabase(tmp(), serverMigrations);
    await sqlite.migrate();
    const expected = await sqliteSchema(sqlite);
    await sqlite.close();
    const store = await open('same_schema');
    await migrateStore(store.db, serverMigrations);
    const actual = await postgresSchema(store.db as Kysely<unknown>);
    // every table, with its columns in order
    expect(sorted(Object.keys(actual.tables))).toEqual(sorted(Object.keys(expected.tables)));
    for (const [table, columns] of Object.entries(expected.tables)) expect({ table, columns: actual.tables[table] }).toEqual({ table, columns });
    expect(actual.views).toEqual(expected.views);
    expect(actual.keys).toEqual(expected.keys);
    expect(actual.foreignKeys).toEqual(expected.foreignKeys);
    expect(actual.indexes).toEqual(sorted(expected.indexes));
    expect(actual.triggers).toEqual(sorted(expected.triggers));
    // not a vacuous comparison: the store's main tables are there
    expect(Object.keys(actual.tables)).toEqual(expect.arrayContaining(['batch_headers', 'samples', 'log_entries', 'audit_trail', 'certificates']));
    expect(actual.triggers.length).toBeGreaterThan(20);
    expect(actual.foreignKeys).toEqual(
      expect.arrayContaining(['sessions(user_id) -> users(id)', 'runs(method_id, method_version) -> methods(id, version)']),
    );
    expect(actual.keys).toEqual(
      expect.arrayContaining(['gateway_keys: primary key (gateway, key_id)', 'notification_outbox: unique (event_key, recipient, channel, target)']),
    );
  });

  test('migrating twice applies nothing the second time and leaves the schema as it was', async () => {
    const store = await open('twice');
    const first = await migrateStore(store.db, serverMigrations);
    const before = await postgresSchema(store.db as Kysely<unknown>);
    expect(first).toContain('0001_skeleton');
    expect(await migrateStore(store.db, serverMigrations)).toEqual([]);
    expect(await postgresSchema(store.db as Kysely<unknown>)).toEqual(before);
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM kysely_migration`.execute(store.db);
    expect(Number(rows[0]?.n)).toBe(first.length);
  });

  test('an append-only record refuses to be deleted or changed, and takes its one allowed change once', async () => {
    const store = await open('append_only');
    await migrateStore(store.db, serverMigrations);
    const db = store.db as Kysely<unknown>;
    await sql`INSERT INTO audit_trail (at, actor, actor_role, action, record_type, record_id, prev_hash, hash)
      VALUES (1, 'admin', 'admin', 'create', 'user', 'u1', 'p', 'h')`.execute(db);
    await expect(sql`DELETE FROM audit_trail`.execute(db)).rejects.toThrow('the audit trail is append-only');
    await expect(sql`UPDATE audit_trail SET actor = 'mallory'`.execute(db)).rejects.toThrow('the audit trail is append-only');
    // a NULL made a value is a change too (SQLite's IS NOT is PostgreSQL's IS DISTINCT FROM, not <>)
    await expect(sql`UPDATE audit_trail SET reason = 'afterwards'`.execute(db)).rejects.toThrow('the audit trail is append-only');
    // anchoring in the transparency log is the one change, made once
    await sql`UPDATE audit_trail SET log_index = 7`.execute(db);
    await expect(sql`UPDATE audit_trail SET log_index = 8`.execute(db)).rejects.toThrow('the audit trail is append-only');
    const { rows } = await sql<{ actor: string; log_index: number }>`SELECT actor, log_index FROM audit_trail`.execute(db);
    expect(rows).toEqual([{ actor: 'admin', log_index: 7 }]);
    // a time in ms does not fit PostgreSQL's 32-bit INTEGER: the columns hold 64 bits as SQLite's do
    await sql`INSERT INTO store_probe (id, at) VALUES (1, ${Date.UTC(2030, 0, 1)})`.execute(db);
    // a row id left out is given, as SQLite's INTEGER PRIMARY KEY is
    await sql`INSERT INTO gateway_ids (name) VALUES ('gw-1'), ('gw-2')`.execute(db);
    const ids = await sql<{ id: string }>`SELECT id FROM gateway_ids ORDER BY id`.execute(db);
    expect(ids.rows.map((r) => Number(r.id))).toEqual([1, 2]);
  });
});
