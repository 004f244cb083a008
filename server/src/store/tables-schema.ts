// The Kysely `Tables` type (store/tables.ts) is generated, not written by hand: a freshly migrated store is asked which
// tables and columns it has (SQLite: PRAGMA table_xinfo; PostgreSQL: information_schema), and the interface is written
// from the answer. Both dialects must give the same text (server/test/store/tables.test.ts regenerates it from each and
// compares it with the committed file), so that a migration without its type, or one that says different things on
// the two engines, fails the tests. `npm run tables -w @labtrace/server` rewrites the file after a new migration.
import { sql, type Kysely } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import { dialectOf } from './portable-ddl.js';

export interface ColumnShape {
  name: string;
  /** the TypeScript type of a value read from the column, without null */
  type: 'number' | 'string' | 'Bytes';
  nullable: boolean;
  /** an insert may leave it out: a default, SQLite's row id (INTEGER PRIMARY KEY), PostgreSQL's identity */
  generated: boolean;
  /** computed by the engine from other columns (GENERATED ALWAYS AS): never written */
  generatedAlways: boolean;
}

export interface TableShape {
  name: string;
  columns: ColumnShape[];
}

/** The tables of Kysely's Migrator: not the lab's, not in `Tables`. */
const MIGRATOR_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);

/** The tables of a store in name order, their columns in the order they were declared (views are left out). */
export async function introspectTables(db: Kysely<unknown>): Promise<TableShape[]> {
  const tables = dialectOf(db) === 'postgres' ? await postgresTables(db) : await sqliteTables(db);
  return tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function tsType(table: string, column: string, declared: string, dialect: string): ColumnShape['type'] {
  const t = declared.trim().toUpperCase();
  // SQLite's INTEGER and PostgreSQL's BIGINT hold 64 bits; both are read as a number (see openStore's int8 parser)
  if (t === 'INTEGER' || t === 'BIGINT') return 'number';
  if (t === 'REAL' || t === 'DOUBLE PRECISION') return 'number';
  if (t === 'TEXT') return 'string';
  if (t === 'BLOB' || t === 'BYTEA') return 'Bytes';
  throw new LabtraceError(
    'E_STORE',
    `${table}.${column}: no TypeScript type for the ${dialect} column type "${declared}" (the store's columns are INTEGER, REAL, TEXT or BLOB)`,
  );
}

async function sqliteTables(db: Kysely<unknown>): Promise<TableShape[]> {
  const { rows: tables } = await sql<{ name: string; wr: number }>`
    SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`.execute(db);
  const shapes: TableShape[] = [];
  for (const table of tables.filter((t) => !MIGRATOR_TABLES.has(t.name))) {
    const { rows } = await sql<{ name: string; type: string; notnull: number; dflt_value: string | null; pk: number; hidden: number }>`
      SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(${table.name}) ORDER BY cid`.execute(db);
    const keyColumns = rows.filter((r) => r.pk > 0);
    shapes.push({
      name: table.name,
      columns: rows.map((r) => {
        // an INTEGER PRIMARY KEY of a rowid table is the row id: given a value when an insert leaves it out
        const rowid = table.wr === 0 && keyColumns.length === 1 && r.pk === 1 && r.type.toUpperCase() === 'INTEGER';
        const generatedAlways = r.hidden === 2 || r.hidden === 3;
        return {
          name: r.name,
          type: tsType(table.name, r.name, r.type, 'SQLite'),
          // SQLite lets a key column other than the row id hold NULL unless it says NOT NULL; PostgreSQL does not, and
          // labtrace never writes one: a key column is not null on both
          nullable: r.notnull === 0 && r.pk === 0,
          generated: !generatedAlways && (rowid || r.dflt_value !== null),
          generatedAlways,
        };
      }),
    });
  }
  return shapes;
}

async function postgresTables(db: Kysely<unknown>): Promise<TableShape[]> {
  const { rows } = await sql<{
    table_name: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
    column_default: string | null;
    is_identity: string;
    is_generated: string;
  }>`
    SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default, c.is_identity, c.is_generated
    FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      -- a partitioned table is one table: its partitions (the months of samples) are its storage, not tables of their own
      AND NOT EXISTS (SELECT 1 FROM pg_class p WHERE p.oid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass AND p.relispartition)
    ORDER BY c.table_name, c.ordinal_position`.execute(db);
  const shapes = new Map<string, TableShape>();
  for (const r of rows.filter((r) => !MIGRATOR_TABLES.has(r.table_name))) {
    let shape = shapes.get(r.table_name);
    if (shape === undefined) {
      shape = { name: r.table_name, columns: [] };
      shapes.set(r.table_name, shape);
    }
    const generatedAlways = r.is_generated === 'ALWAYS';
    shape.columns.push({
      name: r.column_name,
      type: tsType(r.table_name, r.column_name, r.data_type, 'PostgreSQL'),
      nullable: r.is_nullable === 'YES',
      generated: !generatedAlways && (r.is_identity === 'YES' || r.column_default !== null),
      generatedAlways,
    });
  }
  return [...shapes.values()];
}

const HEADER = `// GENERATED from a freshly migrated store by store/tables-schema.ts: do not edit. After adding a migration, run
// \`npm run tables -w @labtrace/server\`; server/test/store/tables.test.ts regenerates this file from a new SQLite store
// and from a new PostgreSQL 15 store and fails if either differs from it.
//
// The same types on both engines:
// - SQLite INTEGER and PostgreSQL BIGINT (64 bits; times in ms, sequence numbers, indexes): number. better-sqlite3
//   reads them as numbers; on PostgreSQL openStore (store/dialect.ts) reads int8 as a number and refuses a value
//   beyond 2^53 rather than round it. SQLite REAL and PostgreSQL DOUBLE PRECISION: number. TEXT: string.
// - BLOB and BYTEA: \`Bytes\`, read as a Node Buffer (both drivers), written from any Uint8Array.
// - Nullable as the column is declared; a key column is never null (PostgreSQL refuses one; SQLite would take one, labtrace never writes one).
// - Generated<>: an insert may leave the column out (a DEFAULT; SQLite's INTEGER PRIMARY KEY row id, which is a
//   BIGINT identity column on PostgreSQL). GeneratedAlways<>: computed by the engine, never written.
// - Views (measurements, the readable form of the per-sample index) are not tables and are not here.
`;

/** The text of store/tables.ts for these tables. */
export function renderTables(tables: readonly TableShape[]): string {
  const lines = [
    HEADER,
    "import type { ColumnType, Generated, GeneratedAlways } from 'kysely';",
    '',
    '/** Bytes: read as a Buffer, written from any Uint8Array. */',
    'export type Bytes = ColumnType<Buffer, Uint8Array, Uint8Array>;',
    '',
    'export interface Tables {',
  ];
  for (const table of tables) {
    lines.push(`  ${table.name}: {`);
    for (const c of table.columns) {
      let type: string = c.type;
      if (c.nullable) type += ' | null';
      if (c.generatedAlways) type = `GeneratedAlways<${type}>`;
      else if (c.generated) type = `Generated<${type}>`;
      lines.push(`    ${c.name}: ${type};`);
    }
    lines.push('  };');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** The text of store/tables.ts generated from a migrated store. */
export async function generateTables(db: Kysely<unknown>): Promise<string> {
  return renderTables(await introspectTables(db));
}
