// `labtrace server migrate-store`: copies a SQLite lab into PostgreSQL and proves the copy is the same lab. The
// tables are the schema's own (whatever the composed migrations create, read from both catalogs), copied in an order
// that satisfies their foreign keys, in bounded chunks, ids kept, in one transaction on the target that commits only
// once the copy verifies; an interrupted or refused copy leaves the target as empty as it was. The verification is
// its own function: per table, row count and an order-independent digest of the values as each side reads them
// back; for the transparency log, the tree recomputed from the copied entries has the root the lab's latest signed
// checkpoint says at its size, and a consistency proof from the copied hashes leads from that checkpoint to the
// copied log's full size.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { sql, type Kysely, type Transaction } from 'kysely';
import {
  CompactTree,
  EMPTY_ROOT,
  LabtraceError,
  bytesEqual,
  consistencyProof,
  ed25519NoteVerifier,
  leafHash,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  toHex,
  verifyConsistency,
  type VerifierKey,
} from '@labtrace/protocols';
import type { Migrations, Tables } from './database.js';
import { createMonths, monthOf } from './sample-partitions.js';

/** kysely's own bookkeeping: each store has its own record of the migrations it applied */
const BOOKKEEPING = new Set(['kysely_migration', 'kysely_migration_lock']);
/** one copy at a time on a target (pg_advisory_xact_lock): "labtms" in ASCII */
const COPY_LOCK = 0x6c61_6274_6d73;
/** rows per INSERT, and raw bytes gathered before one is sent: memory stays bounded whatever the table's size */
const DEFAULT_ROWS_PER_INSERT = 5000;
const BYTES_PER_INSERT = 8 * 2 ** 20;
/** rows per FETCH when the target is read back */
const ROWS_PER_FETCH = 5000;

type Db = Kysely<unknown> | Transaction<unknown>;

/** A column as PostgreSQL declares it; its type decides how a value is carried and compared. */
export interface ColumnInfo {
  name: string;
  /** udt_name: int8, float8, text, bytea, bool, ... */
  type: string;
}

export interface TableInfo {
  name: string;
  /** in name order: the order both digests read them in */
  columns: ColumnInfo[];
  /** the tables this one references (copied before it) */
  references: string[];
  /** identity or serial columns, whose sequences are set past the copied ids */
  sequenced: string[];
}

export interface TableCheck {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceDigest: string;
  targetDigest: string;
  match: boolean;
}

export interface LogCheck {
  /** entries in the copied log */
  size: number;
  /** its root, recomputed from the copied entries */
  root: string;
  /** the same, from the source's entries */
  sourceRoot: string;
  /** the SQLite lab's latest signed checkpoint */
  checkpoint: { origin: string; size: number; root: string } | null;
  /** the copied checkpoints whose roots were checked against the copied tree */
  checkpoints: number;
  /** what fails; empty when the copied log is the lab's log */
  problems: string[];
}

export interface VerificationReport {
  ok: boolean;
  tables: TableCheck[];
  log: LogCheck;
  /** every mismatch, each naming its table or the log */
  problems: string[];
}

export interface CopyReport {
  /** the tables in the order they were copied, with the rows each got */
  tables: { table: string; rows: number }[];
  /** sequences set past the copied ids: table.column -> the next id */
  sequences: Record<string, string>;
  verification: VerificationReport;
  /** how long the copy (with the sequences) and the verification took, ms */
  timings: { copyMs: number; verifyMs: number };
}

export interface CopyOptions {
  /** the lab's log key: the source's latest checkpoint must be signed by it */
  logKey: VerifierKey;
  /** the composed migrations: both stores must have applied exactly these */
  migrations: Migrations;
  rowsPerInsert?: number;
  /** called after each table is copied */
  onTable?: (table: string, rows: number) => void;
}

/** The copy will not run: the source is not at the latest schema, the schemas differ, or the target holds lab data. */
export class CopyRefused extends LabtraceError {
  constructor(message: string) {
    super('E_CONFLICT', message);
  }
}

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The source must have applied exactly the migrations this labtrace knows. */
export function checkSourceSchema(source: Database.Database, migrations: Migrations): void {
  const known = Object.keys(migrations);
  const hasTable = source.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kysely_migration'").get() !== undefined;
  const applied = hasTable ? (source.prepare('SELECT name FROM kysely_migration ORDER BY name').pluck().all() as string[]) : [];
  const missing = known.filter((name) => !applied.includes(name));
  const unknown = applied.filter((name) => !known.includes(name));
  if (unknown.length > 0)
    throw new CopyRefused(
      `--from: the SQLite store has migrations this labtrace does not know (${unknown.join(', ')}): copy it with the labtrace version that wrote it`,
    );
  if (missing.length > 0)
    throw new CopyRefused(
      `--from: the SQLite store is not at the latest schema (${missing.length} migration${missing.length === 1 ? '' : 's'} missing, the first ${missing[0]}): run "labtrace server migrate --database-url sqlite:${source.name}" first`,
    );
}

/** The tables to copy, from the two catalogs: they must be the same tables with the same columns. */
export async function describeTables(source: Database.Database, target: Db): Promise<TableInfo[]> {
  const sourceTables = (
    source.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]
  ).filter((t) => !BOOKKEEPING.has(t));
  // a generated column is computed from the others on each side (and cannot be written): it is not copied
  const { rows: columnRows } = await sql<{ table_name: string; column_name: string; udt_name: string }>`
    SELECT c.table_name, c.column_name, c.udt_name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.is_generated = 'NEVER'
      -- a partitioned table is one table (the months of samples are its storage)
      AND NOT EXISTS (SELECT 1 FROM pg_class p WHERE p.oid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass AND p.relispartition)
    ORDER BY c.table_name, c.column_name`.execute(target);
  const { rows: fkRows } = await sql<{ child: string; parent: string }>`
    SELECT cl.relname AS child, pl.relname AS parent FROM pg_constraint c
    JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid
    WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`.execute(target);
  const { rows: seqRows } = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL`.execute(target);
  const targetTables = new Map<string, TableInfo>();
  for (const r of columnRows) {
    if (BOOKKEEPING.has(r.table_name)) continue;
    let t = targetTables.get(r.table_name);
    if (t === undefined) targetTables.set(r.table_name, (t = { name: r.table_name, columns: [], references: [], sequenced: [] }));
    t.columns.push({ name: r.column_name, type: r.udt_name });
  }
  for (const r of fkRows) {
    const t = targetTables.get(r.child);
    if (t !== undefined && r.parent !== r.child && !t.references.includes(r.parent)) t.references.push(r.parent);
  }
  for (const r of seqRows) targetTables.get(r.table_name)?.sequenced.push(r.column_name);
  const onlySource = sourceTables.filter((t) => !targetTables.has(t));
  const onlyTarget = [...targetTables.keys()].filter((t) => !sourceTables.includes(t));
  if (onlySource.length > 0 || onlyTarget.length > 0)
    throw new CopyRefused(
      `the two schemas differ: ${[onlySource.length > 0 ? `only in SQLite: ${onlySource.join(', ')}` : '', onlyTarget.length > 0 ? `only in PostgreSQL: ${onlyTarget.join(', ')}` : ''].filter(Boolean).join('; ')}`,
    );
  for (const table of sourceTables) {
    const info = targetTables.get(table) as TableInfo;
    // (hidden 0: a stored column; 2 and 3 are SQLite's generated columns)
    const sourceColumns = (source.prepare(`SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0`).pluck().all(table) as string[]).sort();
    const targetColumns = info.columns.map((c) => c.name).sort();
    if (sourceColumns.join(',') !== targetColumns.join(','))
      throw new CopyRefused(`table ${table}: the columns differ (SQLite: ${sourceColumns.join(', ')}; PostgreSQL: ${targetColumns.join(', ')})`);
    info.columns.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return orderByReferences([...targetTables.values()]);
}

/** Parents before children; the names break ties, so the order is the same at every run. */
function orderByReferences(tables: TableInfo[]): TableInfo[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const ordered: TableInfo[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: TableInfo, path: string[]): void => {
    const s = state.get(t.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new LabtraceError('E_STORE', `the foreign keys form a cycle: ${[...path, t.name].join(' -> ')}`);
    state.set(t.name, 'visiting');
    for (const parent of [...t.references].sort()) {
      const p = byName.get(parent);
      if (p !== undefined) visit(p, [...path, t.name]);
    }
    state.set(t.name, 'done');
    ordered.push(t);
  };
  for (const t of [...tables].sort((a, b) => (a.name < b.name ? -1 : 1))) visit(t, []);
  return ordered;
}

/** The source's rows in a stable order: a rowid table by rowid (the order they were written in), another by its key. */
function sourceRows(source: Database.Database, table: TableInfo): IterableIterator<unknown[]> {
  const statement = source.prepare<[], unknown[]>(`SELECT ${table.columns.map((c) => ident(c.name)).join(', ')} FROM ${ident(table.name)}`);
  const withoutRowid = /\bWITHOUT\s+ROWID\s*$/i.test(
    (source.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table.name) as string | null) ?? '',
  );
  const ordered = withoutRowid
    ? statement
    : source.prepare<[], unknown[]>(`SELECT ${table.columns.map((c) => ident(c.name)).join(', ')} FROM ${ident(table.name)} ORDER BY rowid`);
  // 64-bit integers as BigInt: ids and times above 2^53 are carried exactly
  return ordered.safeIntegers(true).raw(true).iterate();
}

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8']);
const FLOAT_TYPES = new Set(['float4', 'float8']);
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'json']);

/** A source value as the text PostgreSQL reads for the column's type (a Buffer for bytea); throws naming the cell. */
function toTarget(value: unknown, column: ColumnInfo, where: () => string): string | Buffer | null {
  if (value === null || value === undefined) return null;
  const bad = (what: string): never => {
    throw new LabtraceError('E_STORE', `${where()}: ${what} cannot be stored in a PostgreSQL ${column.type} column`);
  };
  if (INTEGER_TYPES.has(column.type) || column.type === 'bool') {
    let n: bigint;
    if (typeof value === 'bigint') n = value;
    else if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
    else return bad(`the value ${describe(value)}`);
    if (column.type === 'bool') return n === 0n ? 'f' : n === 1n ? 't' : bad(`the integer ${n}`);
    return n.toString();
  }
  if (FLOAT_TYPES.has(column.type)) {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value !== 'number') return bad(`the value ${describe(value)}`);
    return Object.is(value, -0) ? '-0' : String(value);
  }
  if (TEXT_TYPES.has(column.type)) {
    if (typeof value !== 'string') return bad(`the value ${describe(value)}`);
    if (value.includes('\u0000')) return bad('text with a NUL character');
    return value;
  }
  if (column.type === 'bytea') {
    if (Buffer.isBuffer(value)) return value;
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    return bad(`the value ${describe(value)}`);
  }
  return bad(`a value (the copy knows int2/int4/int8, float4/float8, text, bytea and bool, not ${column.type})`);
}

function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return `a blob of ${value.length} bytes`;
  if (typeof value === 'string') return `the text "${value.slice(0, 40)}"`;
  return String(value);
}

/** Copies one table's rows in multi-row INSERTs (unnest of one array per column). Returns the rows copied. */
async function copyTable(source: Database.Database, target: Db, table: TableInfo, rowsPerInsert: number): Promise<number> {
  const columns = table.columns;
  // the per-sample index is partitioned by month on PostgreSQL: the months of the rows exist before they go in
  if (table.name === 'samples') {
    const months = source.prepare("SELECT DISTINCT strftime('%Y-%m', ts / 1000, 'unixepoch') FROM samples").pluck().all() as (string | null)[];
    await createMonths(
      target,
      months.flatMap((m) => {
        const ym = m === null ? null : /^(\d{4})-(\d{2})$/.exec(m);
        const month = ym === null ? undefined : monthOf(Date.UTC(Number(ym[1]), Number(ym[2]) - 1, 1));
        return month === undefined ? [] : [month];
      }),
    );
  }
  const insert = (arrays: (string | Buffer | null)[][]): Promise<unknown> =>
    sql`INSERT INTO ${sql.id(table.name)} (${sql.join(columns.map((c) => sql.id(c.name)))})
      SELECT * FROM unnest(${sql.join(arrays.map((a, i) => sql`${a}::${sql.raw(`${columns[i]?.type ?? 'text'}[]`)}`))})`.execute(target);
  let arrays: (string | Buffer | null)[][] = columns.map(() => []);
  let pending = 0;
  let bytes = 0;
  let copied = 0;
  for (const row of sourceRows(source, table)) {
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i] as ColumnInfo;
      const value = toTarget(row[i], column, () => `table ${table.name}, row ${copied + pending + 1}, column ${column.name}`);
      (arrays[i] as (string | Buffer | null)[]).push(value);
      if (value !== null) bytes += value.length;
    }
    pending++;
    if (pending >= rowsPerInsert || bytes >= BYTES_PER_INSERT) {
      await insert(arrays);
      copied += pending;
      arrays = columns.map(() => []);
      pending = 0;
      bytes = 0;
    }
  }
  if (pending > 0) await insert(arrays);
  return copied + pending;
}

/**
 * Copies every table of the SQLite store into the PostgreSQL store, which must be at the latest schema and hold no
 * lab data; then sets the sequences past the copied ids and verifies the copy, all in one transaction that commits
 * only if the copy verifies. The source is read in one read transaction (one snapshot); stop the server first.
 */
export async function copySqliteToPostgres(
  source: Database.Database,
  store: Kysely<Tables> | Kysely<unknown>,
  options: CopyOptions,
): Promise<CopyReport> {
  const target = store as Kysely<unknown>;
  const rowsPerInsert = options.rowsPerInsert ?? DEFAULT_ROWS_PER_INSERT;
  checkSourceSchema(source, options.migrations);
  source.exec('BEGIN');
  try {
    return await target.transaction().execute(async (trx) => {
      // a second copy into the same target waits here, then finds it not empty
      await sql`SELECT pg_advisory_xact_lock(${COPY_LOCK})`.execute(trx);
      const tables = await describeTables(source, trx);
      const filled: string[] = [];
      for (const t of tables) {
        const { rows } = await sql<{ any: boolean }>`SELECT EXISTS (SELECT 1 FROM ${sql.id(t.name)}) AS any`.execute(trx);
        if (rows[0]?.any === true) filled.push(t.name);
      }
      if (filled.length > 0)
        throw new CopyRefused(
          `--to: the PostgreSQL store already holds lab data (in ${filled.join(', ')}); the copy goes only into an empty store. ` +
            'If it holds an earlier copy that was committed, check it with --verify-only; to copy again, drop and create the database, then rerun',
        );
      const started = Date.now();
      const copied: { table: string; rows: number }[] = [];
      for (const t of tables) {
        const rows = await copyTable(source, trx, t, rowsPerInsert);
        copied.push({ table: t.name, rows });
        options.onTable?.(t.name, rows);
      }
      const sequences = await setSequences(source, trx, tables);
      const verifying = Date.now();
      const verification = await verifyStoreCopy(source, trx, { logKey: options.logKey });
      if (!verification.ok) throw new CopyMismatch(verification);
      return { tables: copied, sequences, verification, timings: { copyMs: verifying - started, verifyMs: Date.now() - verifying } };
    });
  } finally {
    source.exec('COMMIT');
  }
}

/** Thrown out of the copy's transaction when the copy does not verify: the target is rolled back to empty. */
export class CopyMismatch extends LabtraceError {
  constructor(readonly report: VerificationReport) {
    super('E_STORE', `the copy does not verify; nothing was committed: ${report.problems.join('; ')}`);
  }
}

/**
 * Each identity or serial column's sequence past the largest copied id, and past SQLite's AUTOINCREMENT counter
 * (sqlite_sequence), so that an id a deleted row once had is not given again. Returns table.column -> next id.
 */
async function setSequences(source: Database.Database, target: Db, tables: TableInfo[]): Promise<Record<string, string>> {
  const hasSequences = source.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").get() !== undefined;
  const result: Record<string, string> = {};
  for (const t of tables)
    for (const column of t.sequenced) {
      const counter = hasSequences
        ? ((source.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').safeIntegers(true).pluck().get(t.name) as bigint | undefined) ?? 0n)
        : 0n;
      const { rows } = await sql<{ top: string }>`
        SELECT GREATEST(COALESCE(max(${sql.id(column)}), 0), ${counter.toString()}::bigint) AS top FROM ${sql.id(t.name)}`.execute(target);
      const top = BigInt(rows[0]?.top ?? '0');
      // setval(seq, n, true): the next id is n + 1; setval(seq, 1, false): the next is 1
      await sql`SELECT setval(pg_get_serial_sequence(${t.name}, ${column}), ${(top > 0n ? top : 1n).toString()}::bigint, ${top > 0n})`.execute(
        target,
      );
      result[`${t.name}.${column}`] = (top + 1n).toString();
    }
  return result;
}

/**
 * An order-independent digest of a table's rows: each row's SHA-256 over its values in column-name order, typed
 * and length-prefixed, added into eight 32-bit lanes (a sum, so that two equal rows do not cancel each other).
 * Both sides feed it the values as they read them back, normalized by the column's PostgreSQL type.
 */
class TableDigest {
  readonly #lanes = new Uint32Array(8);
  #rows = 0;
  #buffer = Buffer.alloc(1024);
  #at = 0;

  constructor(private readonly table: TableInfo) {}

  add(values: readonly unknown[]): void {
    this.#at = 0;
    this.table.columns.forEach((column, i) => this.#value(values[i], column));
    const hash = createHash('sha256').update(this.#buffer.subarray(0, this.#at)).digest();
    for (let i = 0; i < 8; i++) this.#lanes[i] = ((this.#lanes[i] as number) + hash.readUInt32BE(4 * i)) >>> 0;
    this.#rows++;
  }

  get rows(): number {
    return this.#rows;
  }

  hex(): string {
    return Buffer.from(this.#lanes.buffer.slice(0)).toString('hex');
  }

  #value(value: unknown, column: ColumnInfo): void {
    if (value === null || value === undefined) {
      this.#put(0, 0);
      return;
    }
    if (INTEGER_TYPES.has(column.type) || column.type === 'bool') {
      // the decimal digits, as PostgreSQL's int8 reads back and as a 64-bit integer prints
      const digits = typeof value === 'boolean' ? (value ? '1' : '0') : scalarText(value);
      const at = this.#put(1, digits.length);
      this.#buffer.write(digits, at, 'latin1');
      return;
    }
    if (FLOAT_TYPES.has(column.type)) {
      // the double's 8 bytes: -0 and 0 differ, as do the last bits of any value
      const at = this.#put(2, 8);
      this.#buffer.writeDoubleBE(typeof value === 'number' ? value : Number(value), at);
      return;
    }
    if (value instanceof Uint8Array) {
      const at = this.#put(4, value.length);
      this.#buffer.set(value, at);
      return;
    }
    const text = scalarText(value);
    const at = this.#put(3, Buffer.byteLength(text, 'utf8'));
    this.#buffer.write(text, at, 'utf8');
  }

  /** Writes the tag and the length, makes room for the bytes; returns where they go. */
  #put(tag: number, length: number): number {
    const need = this.#at + 5 + length;
    if (need > this.#buffer.length) {
      const grown = Buffer.alloc(Math.max(need, 2 * this.#buffer.length));
      this.#buffer.copy(grown, 0, 0, this.#at);
      this.#buffer = grown;
    }
    this.#buffer[this.#at] = tag;
    this.#buffer.writeUInt32BE(length, this.#at + 1);
    const at = this.#at + 5;
    this.#at = at + length;
    return at;
  }
}

/** A value read back as text (a number or bigint in its decimal form). */
function scalarText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new LabtraceError('E_STORE', `a value of type ${typeof value} was read back where text or a number was expected`);
}

/** Reads a query's rows from PostgreSQL through a cursor, ROWS_PER_FETCH at a time (inside the caller's transaction). */
async function* cursorRows<R>(db: Db, query: string, name: string): AsyncGenerator<R> {
  await sql.raw(`DECLARE ${name} NO SCROLL CURSOR FOR ${query}`).execute(db);
  try {
    for (;;) {
      const { rows } = await sql.raw<R>(`FETCH FORWARD ${ROWS_PER_FETCH} FROM ${name}`).execute(db);
      for (const row of rows) yield row;
      if (rows.length < ROWS_PER_FETCH) return;
    }
  } finally {
    await sql.raw(`CLOSE ${name}`).execute(db);
  }
}

/** Runs `fn` in a read transaction on the target, or inside the one it is already in (the copy's). */
async function reading<T>(target: Db, fn: (db: Db) => Promise<T>): Promise<T> {
  if (target.isTransaction) return fn(target);
  return target
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => fn(trx));
}

/**
 * Checks that the PostgreSQL store holds the SQLite store's lab: every table's rows (count and digest) and the
 * transparency log (see the file's head). Never throws for a mismatch: the report says what differs.
 */
export async function verifyStoreCopy(
  source: Database.Database,
  store: Db | Kysely<Tables>,
  options: { logKey: VerifierKey; onTable?: (check: TableCheck) => void },
): Promise<VerificationReport> {
  const target = store as Db;
  const snapshot = !source.inTransaction;
  if (snapshot) source.exec('BEGIN');
  try {
    return await reading(target, async (db) => {
      const tables = await describeTables(source, db);
      const checks: TableCheck[] = [];
      const problems: string[] = [];
      for (const t of tables) {
        const sourceDigest = new TableDigest(t);
        for (const row of sourceRows(source, t)) sourceDigest.add(row);
        const targetDigest = new TableDigest(t);
        const select = `SELECT ${t.columns.map((c) => ident(c.name)).join(', ')} FROM ${ident(t.name)}`;
        for await (const row of cursorRows<Record<string, unknown>>(db, select, 'labtrace_verify'))
          targetDigest.add(t.columns.map((c) => row[c.name]));
        const check: TableCheck = {
          table: t.name,
          sourceRows: sourceDigest.rows,
          targetRows: targetDigest.rows,
          sourceDigest: sourceDigest.hex(),
          targetDigest: targetDigest.hex(),
          match: sourceDigest.rows === targetDigest.rows && sourceDigest.hex() === targetDigest.hex(),
        };
        if (!check.match)
          problems.push(
            check.sourceRows !== check.targetRows
              ? `table ${t.name}: ${check.targetRows} rows in PostgreSQL, ${check.sourceRows} in SQLite`
              : `table ${t.name}: the rows differ (digest ${check.targetDigest} in PostgreSQL, ${check.sourceDigest} in SQLite)`,
          );
        checks.push(check);
        options.onTable?.(check);
      }
      const log = await verifyLog(source, db, options.logKey);
      problems.push(...log.problems);
      return { ok: problems.length === 0, tables: checks, log, problems };
    });
  } finally {
    if (snapshot) source.exec('COMMIT');
  }
}

/** The transparency-log half of the verification. */
async function verifyLog(source: Database.Database, db: Db, logKey: VerifierKey): Promise<LogCheck> {
  const problems: string[] = [];
  const fail = (problem: string): void => {
    problems.push(`transparency log: ${problem}`);
  };
  // the lab's latest signed checkpoint, as the SQLite store holds it, signed by the lab's log key
  const latest = source.prepare('SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1').get() as
    { size: number; note: string } | undefined;
  let checkpoint: LogCheck['checkpoint'] = null;
  let signedRoot: Uint8Array | undefined;
  let signedSize = 0;
  if (latest === undefined) fail('the SQLite store has no signed checkpoint');
  else {
    try {
      const opened = openCheckpoint(latest.note, [ed25519NoteVerifier(logKey)]);
      signedRoot = opened.checkpoint.rootHash;
      signedSize = opened.checkpoint.size;
      checkpoint = { origin: opened.checkpoint.origin, size: signedSize, root: toHex(signedRoot) };
    } catch (err) {
      let origin = '?';
      try {
        origin = parseCheckpoint(parseNote(latest.note).text).origin;
      } catch {
        // (the note itself is malformed: the error says so)
      }
      fail(`the latest checkpoint (size ${latest.size}, log "${origin}") is not signed by the log key ${logKey.name}: ${(err as Error).message}`);
    }
  }
  // the source's tree, from its entries
  const sourceTree = new CompactTree();
  for (const data of source.prepare<[], Buffer>('SELECT data FROM log_entries ORDER BY idx').pluck().iterate()) sourceTree.append(leafHash(data));
  // the copied tree, recomputed from the copied entries (each stored leaf hash checked against its data)
  const tree = new CompactTree();
  let rootAtCheckpoint: Uint8Array | undefined = signedSize === 0 ? EMPTY_ROOT : undefined;
  let leafProblems = 0;
  // every copied checkpoint (the lab's history of signed statements) must agree with the copied tree at its size:
  // checked as the entries go by; the latest one's signature is checked above
  const checkpoints = cursorRows<{ size: string; note: string }>(db, 'SELECT size, note FROM log_checkpoints ORDER BY size', 'labtrace_checkpoints');
  let pending = await checkpoints.next();
  let checkpointsChecked = 0;
  let checkpointProblems = 0;
  const checkAtSize = async (): Promise<void> => {
    while (!pending.done && Number(pending.value.size) <= tree.size) {
      const { size, note } = pending.value;
      let claimed: Uint8Array | undefined;
      try {
        claimed = parseCheckpoint(parseNote(note).text).rootHash;
      } catch (err) {
        if (checkpointProblems++ < 10) fail(`the copied checkpoint at size ${size} is malformed: ${(err as Error).message}`);
      }
      if (claimed !== undefined && !bytesEqual(claimed, tree.root()) && checkpointProblems++ < 10)
        fail(`the copied checkpoint at size ${size} says root ${toHex(claimed)}, the copied tree has ${toHex(tree.root())} at that size`);
      checkpointsChecked++;
      pending = await checkpoints.next();
    }
  };
  try {
    await checkAtSize();
    for await (const row of cursorRows<{ idx: string; data: Buffer; leaf: Buffer }>(
      db,
      'SELECT idx, data, leaf FROM log_entries ORDER BY idx',
      'labtrace_log',
    )) {
      if (BigInt(row.idx) !== BigInt(tree.size)) {
        fail(`the copied entries skip from index ${tree.size - 1} to ${row.idx}`);
        break;
      }
      const leaf = leafHash(row.data);
      if (!bytesEqual(leaf, row.leaf) && leafProblems++ < 10) fail(`entry ${row.idx}: the stored leaf hash is not the hash of the entry's data`);
      tree.append(leaf);
      if (tree.size === signedSize) rootAtCheckpoint = tree.root();
      if (!pending.done && Number(pending.value.size) <= tree.size) await checkAtSize();
    }
    if (!pending.done) fail(`a copied checkpoint has size ${pending.value.size}, beyond the copied log's ${tree.size} entries`);
  } finally {
    await checkpoints.return(undefined);
  }
  const root = tree.root();
  if (!bytesEqual(root, sourceTree.root()))
    fail(`the copied log's root ${toHex(root)} (size ${tree.size}) is not the SQLite log's ${toHex(sourceTree.root())} (size ${sourceTree.size})`);
  if (signedRoot !== undefined) {
    if (rootAtCheckpoint === undefined) fail(`the copied log has ${tree.size} entries, fewer than the ${signedSize} of the lab's latest checkpoint`);
    else if (!bytesEqual(rootAtCheckpoint, signedRoot))
      fail(`the copied log's root at size ${signedSize} is ${toHex(rootAtCheckpoint)}, the lab's signed checkpoint says ${toHex(signedRoot)}`);
    else if (signedSize > 0) {
      // a consistency proof from the checkpoint to the full size, from the copied hashes (stored subtrees and leaves)
      try {
        const proof = await storedConsistencyProof(db, signedSize, tree.size);
        verifyConsistency(signedSize, tree.size, signedRoot, root, proof);
      } catch (err) {
        fail(`the consistency proof from the signed checkpoint (size ${signedSize}) to size ${tree.size} does not verify: ${(err as Error).message}`);
      }
    }
  }
  return { size: tree.size, root: toHex(root), sourceRoot: toHex(sourceTree.root()), checkpoint, checkpoints: checkpointsChecked, problems };
}

/** A consistency proof built from the hashes the target stores: which it needs is found first, then they are read. */
async function storedConsistencyProof(db: Db, from: number, to: number): Promise<Uint8Array[]> {
  if (from === to) return [];
  const wanted: { level: number; index: number }[] = [];
  consistencyProof(from, to, (level, index) => {
    wanted.push({ level, index });
    return new Uint8Array(32);
  });
  const hashes = new Map<string, Uint8Array>();
  for (const { level, index } of wanted) {
    const { rows } =
      level === 0
        ? await sql<{ hash: Buffer }>`SELECT leaf AS hash FROM log_entries WHERE idx = ${index}`.execute(db)
        : await sql<{ hash: Buffer }>`SELECT hash FROM log_hashes WHERE level = ${level} AND idx = ${index}`.execute(db);
    const hash = rows[0]?.hash;
    if (hash === undefined) throw new Error(`the hash at level ${level}, index ${index} is missing from the copied log_hashes`);
    hashes.set(`${level}/${index}`, new Uint8Array(hash));
  }
  return consistencyProof(from, to, (level, index) => hashes.get(`${level}/${index}`));
}
