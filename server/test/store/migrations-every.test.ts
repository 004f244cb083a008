// Every migration from every earlier schema with data in it: for each prefix of the server's migrations (a store
// migrated to the k-th, for every k from the first to the one before the last), every table that exists there is
// filled with rows generated from the schema itself (columns, types, NOT NULL, primary keys, foreign keys and CHECK
// lists read back from the store: SQLite's pragmas, PostgreSQL's catalog), then the store is migrated to the latest,
// and every row is looked for again: no table vanishes and no row is lost, and every value in a column that survives
// reads back the same, compared by the row's primary key (by the whole row where the table has none). The few rows
// a migration moves elsewhere by design and the few columns a migration rewrites by design are listed below (MOVED,
// TRANSFORMED), each with the migration that does it; the moved rows are looked for where they went.
//
// On SQLite and on a real PostgreSQL 15, every prefix on both: a new SQLite file for each; on PostgreSQL one cluster
// for the file and a database per prefix, copied from one that is migrated a step further for each prefix. The whole
// file took 130 to 150 s on a busy 2-core machine (SQLite's prefixes about 17 s, PostgreSQL's about 60 s, the rest the
// cluster's start). The values are deterministic (a seeded generator), so a failure is the same on every run.
//
// 0004 drops a sample's arrival time (measurements.received_at): the compact layout keeps a batch's arrival only
// (batch_headers.received_at, from 0002 on), so samples stored by a server of the first schema lose theirs. A
// released migration is not changed, and a later one cannot bring the values back: listed in MOVED, not hidden.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { serverMigrations } from '../../src/migrations.js';
import { migrateStore } from '../../src/store/database.js';
import { openStore, parseDatabaseUrl } from '../../src/store/dialect.js';
import { dialectOf } from '../../src/store/portable-ddl.js';
import { createMonths, monthOf, type MonthPartition } from '../../src/store/sample-partitions.js';
import { ENGINES, StoreFixture, type Engine } from '../helpers/test-store.js';
import { noise } from '@labtrace/device-sim';

const fixture = new StoreFixture('every', 'mig-every');
beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

const NAMES = Object.keys(serverMigrations);
const LATEST = NAMES[NAMES.length - 1] as string;
/** every prefix but the whole list: the store is left at each of these, filled, then migrated to the latest */
const PREFIXES = NAMES.slice(0, -1);

/** rows written in each table */
const ROWS = 4;
/** the row whose nullable columns are left NULL (the others get values) */
const NULL_ROW = 1;
/** the row whose values are at the edges of their types: empty text and bytes, zero and negative numbers */
const EDGE_ROW = 3;

/** A time in June 2024, in a month partition of PostgreSQL's samples (0042); the others fall in its early and late partitions. */
const JUNE_2024 = Date.UTC(2024, 5, 3, 12);
const SAMPLE_TIMES = [1_000, JUNE_2024, 8_000_000_000_000, JUNE_2024 + 1];

type Value = string | number | Buffer | null;

/**
 * Per-column values where a generated one would not do, by row (row i takes the (i mod length)-th); why each:
 */
const OVERRIDES: Record<string, Record<string, readonly Value[]>> = {
  // 0004 turns a measurement into a compact sample by its kind and quality (a kind it does not know becomes a string,
  // a number of a string is dropped): the first layout's values as the server wrote them, one of each kind
  measurements: {
    value_kind: ['number', 'boolean', 'string', 'null'],
    value_num: [12.5, 1, null, null],
    value_text: [null, null, 'Überlast', null],
    quality: ['good', 'uncertain', 'bad', 'bad'],
    ts: SAMPLE_TIMES,
  },
  // 0042 moves PostgreSQL's samples into month partitions: times before 2000, in a month, and from 2200
  samples: { ts: SAMPLE_TIMES },
  // 0021 reads the key id out of each stored header (JSON) and makes key events from the keys by their status
  gateway_keys: { gateway: ['gw-0', 'gw-1', 'gw-0', 'gw-1'], key_id: ['k0', 'k1', 'k2', 'k3'], status: ['active', 'retired', 'revoked', 'revoked'] },
  batch_headers: {
    gateway: ['gw-0', 'gw-1', 'gw-0', 'gw-1'],
    header: ['{"keyId":"k0"}', '{"keyId":"k1"}', '{"keyId":"k2"}', '{"keyId":"other"}'],
  },
  // 0040 computes the verdict from the results (JSON; PostgreSQL parses it as it adds the column)
  run_results: { results: ['{"verdict":"pass","values":[]}', '{"values":[]}', '{"verdict":"fail","values":[]}', '{"verdict":"pass"}'] },
  // CHECK (valid_to > valid_from)
  accreditations: { valid_from: [100, 200, 300, 400], valid_to: [1_100, 1_200, 1_300, 1_400] },
};

/** Rows a migration moves out of a table by design (the table is gone after it), and where they are looked for. */
const MOVED: Record<string, { by: string; check: (db: Kysely<unknown>, before: Row[]) => Promise<void> }> = {
  // 0004 moves the first layout's measurements into samples (with gateway_ids and streams), read back through the
  // measurements view; the view has no received_at (the compact layout keeps the batch's arrival, not the sample's)
  measurements: {
    by: '0004_compact_samples',
    async check(db, before) {
      const { rows } = await sql<Row>`SELECT * FROM measurements`.execute(db);
      const after = new Map(rows.map((r) => [JSON.stringify([r['gateway'], r['seq']]), normalize(r)]));
      for (const row of before) {
        const { received_at: _arrival, ...kept } = row;
        expect(after.get(JSON.stringify([row['gateway'], row['seq']]))).toEqual(kept);
      }
    },
  },
};

/**
 * Columns a migration rewrites by design: when the store crossed that migration, their values are compared with what
 * the migration makes of the row as it was before (`expected`), not with the value written.
 */
const TRANSFORMED: { by: string; table: string; column: string; expected: (before: Row) => unknown }[] = [
  {
    // a retired or revoked key's validity becomes a server arrival time, from which no batch under it is taken (its
    // end of validity as it was, its registration when it had none, the migration's time when later than that)
    by: '0021_key_events',
    table: 'gateway_keys',
    column: 'valid_until',
    expected: (row) => (row['status'] === 'active' ? row['valid_until'] : Math.min(Number(row['valid_until'] ?? row['registered_at']), Date.now())),
  },
];

type Row = Record<string, unknown>;
type Kind = 'integer' | 'real' | 'text' | 'blob';

interface Column {
  name: string;
  kind: Kind;
  notNull: boolean;
  /** computed by the engine (GENERATED ALWAYS AS): never written, not compared */
  generated: boolean;
}

interface ForeignKey {
  columns: string[];
  parent: string;
  parentColumns: string[];
}

interface Table {
  name: string;
  columns: Column[];
  primaryKey: string[];
  foreignKeys: ForeignKey[];
  /** CHECK (column IN ('a', 'b')): the values allowed */
  allowed: Map<string, string[]>;
  /** PostgreSQL: partitioned by range (samples after 0042) */
  partitioned: boolean;
}

function kindOf(declared: string): Kind {
  const t = declared.toUpperCase();
  if (/INT/.test(t)) return 'integer';
  if (/REAL|DOUBLE|FLOAT/.test(t)) return 'real';
  if (/BLOB|BYTEA/.test(t)) return 'blob';
  return 'text';
}

const quoted = (list: string): string[] => [...list.matchAll(/'([^']*)'/g)].map((m) => m[1] as string);

const group = <T extends { tbl: string }>(rows: T[], table: string): T[] => rows.filter((r) => r.tbl === table);

/**
 * The lab's tables (not the Migrator's, not SQLite's own, not PostgreSQL's partitions) as the store describes them:
 * SQLite's sqlite_master and pragmas, PostgreSQL's information_schema and pg_constraint (one query each).
 */
async function schemaOf(db: Kysely<unknown>): Promise<Map<string, Table>> {
  const tables = new Map<string, Table>();
  if (dialectOf(db) === 'sqlite') {
    const lab = sql`m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND m.name NOT LIKE 'kysely\\_%' ESCAPE '\\'`;
    const { rows } = await sql<{ name: string; sql: string }>`SELECT name, sql FROM sqlite_master m WHERE ${lab}`.execute(db);
    const columns = await sql<{ tbl: string; name: string; type: string; notnull: number; pk: number; hidden: number }>`
      SELECT m.name AS tbl, p.name, p.type, p."notnull", p.pk, p.hidden FROM sqlite_master m, pragma_table_xinfo(m.name) p
      WHERE ${lab} ORDER BY m.name, p.cid`.execute(db);
    const keys = await sql<{ tbl: string; id: number; table: string; from: string; to: string | null }>`
      SELECT m.name AS tbl, p.id, p."table", p."from", p."to" FROM sqlite_master m, pragma_foreign_key_list(m.name) p
      WHERE ${lab} ORDER BY m.name, p.id, p.seq`.execute(db);
    for (const { name, sql: ddl } of rows) {
      const foreignKeys = new Map<number, ForeignKey>();
      for (const k of group(keys.rows, name)) {
        const fk = foreignKeys.get(k.id) ?? { columns: [], parent: k.table, parentColumns: [] };
        fk.columns.push(k.from);
        fk.parentColumns.push(k.to ?? '');
        foreignKeys.set(k.id, fk);
      }
      const own = group(columns.rows, name);
      tables.set(name, {
        name,
        columns: own.map((c) => ({ name: c.name, kind: kindOf(c.type), notNull: c.notnull === 1 || c.pk > 0, generated: c.hidden >= 2 })),
        primaryKey: own
          .filter((c) => c.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((c) => c.name),
        foreignKeys: [...foreignKeys.values()],
        allowed: new Map([...ddl.matchAll(/CHECK \((\w+) IN \(([^)]*)\)\)/gi)].map((m) => [m[1] as string, quoted(m[2] as string)])),
        partitioned: false,
      });
    }
  } else {
    const { rows } = await sql<{ name: string; kind: string }>`SELECT c.relname AS name, c.relkind AS kind FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT LIKE 'kysely\\_%' ESCAPE '\\'`.execute(db);
    const columns = await sql<{ tbl: string; column_name: string; data_type: string; is_nullable: string; is_generated: string }>`
      SELECT table_name AS tbl, column_name, data_type, is_nullable, is_generated FROM information_schema.columns
      WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`.execute(db);
    const constraints = await sql<{ tbl: string; type: string; definition: string }>`
      SELECT conrelid::regclass::text AS tbl, contype AS type, pg_get_constraintdef(oid) AS definition FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace AND contype IN ('p', 'f', 'c')`.execute(db);
    const names = (list: string): string[] => list.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    for (const { name, kind } of rows) {
      const own = group(constraints.rows, name);
      const primary = own.find((c) => c.type === 'p');
      tables.set(name, {
        name,
        columns: group(columns.rows, name).map((c) => ({
          name: c.column_name,
          kind: kindOf(c.data_type),
          notNull: c.is_nullable === 'NO',
          generated: c.is_generated === 'ALWAYS',
        })),
        primaryKey: primary === undefined ? [] : names(/PRIMARY KEY \(([^)]*)\)/.exec(primary.definition)?.[1] ?? ''),
        foreignKeys: own
          .filter((c) => c.type === 'f')
          .map((c) => {
            const m = /FOREIGN KEY \(([^)]*)\) REFERENCES (\w+)\(([^)]*)\)/.exec(c.definition);
            if (m === null) throw new Error(`${name}: cannot read the foreign key ${c.definition}`);
            return { columns: names(m[1] as string), parent: m[2] as string, parentColumns: names(m[3] as string) };
          }),
        // CHECK ((kind = ANY (ARRAY['suspend'::text, ...])))
        allowed: new Map(
          own
            .filter((c) => c.type === 'c')
            .flatMap((c) => {
              const m = /CHECK \(\((\w+) = ANY \(ARRAY\[([^\]]*)\]/.exec(c.definition);
              return m === null ? [] : [[m[1] as string, quoted(m[2] as string)] as const];
            }),
        ),
        partitioned: kind === 'p',
      });
    }
  }
  // a foreign key naming no parent columns names the parent's primary key
  for (const table of tables.values())
    for (const fk of table.foreignKeys)
      if (fk.parentColumns.some((c) => c === '')) fk.parentColumns = tables.get(fk.parent)?.primaryKey ?? fk.parentColumns;
  return tables;
}

/** Parents before children. */
function fillingOrder(tables: Map<string, Table>): Table[] {
  const ordered: Table[] = [];
  const placed = new Set<string>();
  const visit = (table: Table, path: string[]): void => {
    if (placed.has(table.name)) return;
    if (path.includes(table.name)) throw new Error(`a cycle of foreign keys: ${[...path, table.name].join(' -> ')}`);
    for (const fk of table.foreignKeys) {
      const parent = tables.get(fk.parent);
      if (parent === undefined) throw new Error(`${table.name} references ${fk.parent}, which is not a table`);
      if (parent !== table) visit(parent, [...path, table.name]);
    }
    placed.add(table.name);
    ordered.push(table);
  };
  for (const table of [...tables.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) visit(table, []);
  return ordered;
}

/** the simulator's seeded generator (mulberry32) moved to [0, 1), so that every run writes the same values */
function seeded(seed: number): () => number {
  const next = noise(seed);
  return () => next() + 0.5;
}

/**
 * Writes ROWS rows in every table: a column's value is its override, else its parent row's (row i of a child refers
 * to row i of its parent, so that a key that is also a foreign key stays unique), else one of the CHECK's values,
 * else NULL in the NULL_ROW where the column allows it, else a value of its type, distinct from row to row (in the
 * EDGE_ROW: empty text and bytes, a negative number).
 */
async function fill(db: Kysely<unknown>, tables: Map<string, Table>, random: () => number): Promise<void> {
  const written = new Map<string, Row[]>();
  for (const table of fillingOrder(tables)) {
    if (table.partitioned && table.name === 'samples')
      // the month partitions the rows fall in, made as the store makes them before a write (SamplePartitions)
      await createMonths(
        db,
        SAMPLE_TIMES.map((ts) => monthOf(ts)).filter((m): m is MonthPartition => m !== undefined),
      );
    const rows: Row[] = [];
    for (let i = 0; i < ROWS; i++) {
      const row: Row = {};
      for (const column of table.columns.filter((c) => !c.generated)) {
        const override = OVERRIDES[table.name]?.[column.name];
        const fk = table.foreignKeys.find((k) => k.columns.includes(column.name));
        const allowed = table.allowed.get(column.name);
        let value: Value;
        if (override !== undefined) value = override[i % override.length] as Value;
        else if (fk !== undefined) {
          const parentRow = written.get(fk.parent)?.[i] as Row;
          value = parentRow[fk.parentColumns[fk.columns.indexOf(column.name)] as string] as Value;
        } else if (allowed !== undefined) value = allowed[i % allowed.length] as string;
        else if (i === NULL_ROW && !column.notNull) value = null;
        else if (i === EDGE_ROW && column.kind === 'integer') value = -Math.floor(random() * 2 ** 40);
        else if (i === EDGE_ROW && column.kind === 'real') value = -0.5;
        else if (i === EDGE_ROW && column.kind === 'blob') value = Buffer.alloc(0);
        else if (i === EDGE_ROW) value = '';
        else if (column.kind === 'integer') value = 1 + Math.floor(random() * 2 ** 40);
        else if (column.kind === 'real') value = Math.floor(random() * 2 ** 30) / 64;
        else if (column.kind === 'blob') value = Buffer.from(Array.from({ length: 12 }, () => Math.floor(random() * 256)));
        else value = `${column.name}-${i}-ü-${Math.floor(random() * 2 ** 32).toString(16)}`;
        row[column.name] = value;
      }
      const names = Object.keys(row);
      await sql`INSERT INTO ${sql.table(table.name)} (${sql.join(names.map((n) => sql.ref(n)))}) VALUES (${sql.join(names.map((n) => row[n]))})`.execute(
        db,
      );
      rows.push(row);
    }
    written.set(table.name, rows);
  }
}

/** a value as compared: bytes as hex (both engines' blobs), the rest as read */
function normalize(row: Row): Row {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v]));
}

async function rowsOf(db: Kysely<unknown>, table: string): Promise<Row[]> {
  const { rows } = await sql<Row>`SELECT * FROM ${sql.table(table)}`.execute(db);
  return rows.map(normalize);
}

const keyOf = (row: Row, columns: readonly string[]): string => JSON.stringify(columns.map((c) => row[c]));

/** Checks that every row read before the migrations is still there after them (see the file's header). */
async function expectKept(db: Kysely<unknown>, prefix: string, before: Map<string, { table: Table; rows: Row[] }>): Promise<void> {
  const after = await schemaOf(db);
  for (const [name, { table, rows }] of before) {
    const moved = MOVED[name];
    const afterTable = after.get(name);
    if (afterTable === undefined) {
      // a table may leave only as its listed migration moves its rows elsewhere, and only if the store crossed it
      expect(moved !== undefined && moved.by > prefix ? name : `${name}: gone, and no listed migration moved its rows`).toBe(name);
      await moved?.check(db, rows);
      continue;
    }
    // a column leaves only with its table (MOVED): a migration that drops one loses its values
    const gone = table.columns.filter((c) => !afterTable.columns.some((a) => a.name === c.name)).map((c) => c.name);
    expect({ table: name, columnsGone: gone }).toEqual({ table: name, columnsGone: [] });
    const transformed = TRANSFORMED.filter((t) => t.table === name && t.by > prefix);
    const compared = table.columns
      .filter((c) => !c.generated && !afterTable.columns.some((a) => a.name === c.name && a.generated))
      .map((c) => c.name);
    const pick = (row: Row): Row => Object.fromEntries(compared.map((c) => [c, row[c]]));
    // the row as the migrations should leave it: the rewritten columns as their migration makes them
    const expectedOf = (row: Row): Row => ({ ...pick(row), ...Object.fromEntries(transformed.map((t) => [t.column, t.expected(row)])) });
    const afterRows = await rowsOf(db, name);
    expect({ table: name, rowsLost: Math.max(0, rows.length - afterRows.length) }).toEqual({ table: name, rowsLost: 0 });
    if (table.primaryKey.length > 0 && table.primaryKey.every((c) => compared.includes(c))) {
      const byKey = new Map(afterRows.map((r) => [keyOf(r, table.primaryKey), r]));
      for (const row of rows) {
        const found = byKey.get(keyOf(row, table.primaryKey));
        expect({ table: name, row: found === undefined ? 'lost' : pick(found) }).toEqual({ table: name, row: expectedOf(row) });
      }
    } else {
      // no key (SQLite's samples after 0019, a partitioned table): the rows as a multiset
      const left = afterRows.map((r) => JSON.stringify(pick(r)));
      for (const row of rows) {
        const at = left.indexOf(JSON.stringify(expectedOf(row)));
        expect({ table: name, row: at === -1 ? 'lost' : expectedOf(row) }).toEqual({ table: name, row: expectedOf(row) });
        if (at !== -1) left.splice(at, 1);
      }
    }
  }
}

/**
 * PostgreSQL: the store at a prefix is a copy of one database migrated a step further for each prefix (CREATE DATABASE
 * ... TEMPLATE), so that the migrations up to the prefixes run once in the file, not once for each (the prefixes are
 * tested in order). SQLite migrates a new file to each prefix.
 */
let ladder: string | undefined;
async function postgresStoreAt(prefix: string): Promise<string> {
  ladder ??= await fixture.url('postgres');
  const store = openStore(parseDatabaseUrl(ladder, 'url', process.cwd()), { poolSize: 1 });
  try {
    await migrateStore(store.db, serverMigrations, prefix);
  } finally {
    await store.close();
  }
  const from = new URL(ladder).pathname.slice(1);
  const name = `every_at_${prefix.slice(0, 4)}`;
  const client = new pg.Client({ host: '127.0.0.1', port: fixture.postgres.port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${from} STRATEGY FILE_COPY`);
  } finally {
    await client.end();
  }
  return Object.assign(new URL(ladder), { pathname: `/${name}` }).toString();
}

/** The store at `url` left at `prefix` (migrated there if it is not), filled, migrated to the latest, and checked. */
async function fromPrefix(url: string, prefix: string, seed: number): Promise<void> {
  const store = openStore(parseDatabaseUrl(url, 'url', process.cwd()), { poolSize: 1 });
  const db = store.db as Kysely<unknown>;
  try {
    // a test store thrown away afterwards: no fsync at each migration's commit
    if (store.dialect === 'sqlite') await sql`PRAGMA synchronous = OFF`.execute(db);
    await migrateStore(db, serverMigrations, prefix);
    const tables = await schemaOf(db);
    await fill(db, tables, seeded(seed));
    const before = new Map<string, { table: Table; rows: Row[] }>();
    for (const table of tables.values()) {
      const rows = await rowsOf(db, table.name);
      expect({ table: table.name, rows: rows.length }).toEqual({ table: table.name, rows: ROWS });
      before.set(table.name, { table, rows });
    }
    const applied = await migrateStore(db, serverMigrations);
    expect(applied).toEqual(NAMES.filter((n) => n > prefix));
    await expectKept(db, prefix, before);
  } finally {
    await store.close();
  }
}

test('the lists of exceptions name migrations that exist', () => {
  for (const { by } of [...Object.values(MOVED), ...TRANSFORMED]) expect(NAMES).toContain(by);
  expect(PREFIXES.length).toBe(NAMES.length - 1);
  expect(LATEST > (PREFIXES[PREFIXES.length - 1] as string)).toBe(true);
});

describe.each(ENGINES)('on %s', (engine: Engine) => {
  test.each(PREFIXES.map((prefix, i) => [prefix, i] as const))(
    'a store at %s, every table filled, migrates to the latest keeping every row',
    async (prefix, i) => {
      const url = engine === 'sqlite' ? await fixture.url(engine) : await postgresStoreAt(prefix);
      await fromPrefix(url, prefix, 0x1abc0de + i);
    },
    60_000,
  );
});
