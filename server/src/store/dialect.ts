// Which engine holds a store, from a database URL: `sqlite:<file>` (the embedded default, one file) or
// `postgres://user@host:port/database` (PostgreSQL through the pg package). A PostgreSQL password comes from a file
// (`passwordFile`, a Docker or systemd secret), never from a log line: what is printed of a URL has no password.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { z } from 'zod';
import { LabtraceError } from '@labtrace/protocols';
import { readSecretFile } from '../secret-env.js';
import { openSqliteFile, type Tables } from './database.js';
import type { SqlDialect } from './portable-ddl.js';
import { withStatementCache } from './sqlite-statements.js';

/** `database` in server.yaml (LABTRACE_DATABASE_URL overrides the URL); without a URL, the SQLite file in the data directory */
export const databaseConfigSchema = z.strictObject({
  url: z.string().min(1).optional(),
  /** a file holding the PostgreSQL password (one line) */
  passwordFile: z.string().min(1).optional(),
});
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;

export type StoreTarget =
  | { dialect: 'sqlite'; file: string }
  | {
      dialect: 'postgres';
      host: string;
      port: number;
      user: string;
      database: string;
      /** a password written in the URL itself (a password file is the better place) */
      password: string | undefined;
      ssl: boolean | { rejectUnauthorized: false } | undefined;
    };

const SSL_MODES: Record<string, boolean | { rejectUnauthorized: false }> = {
  disable: false,
  require: { rejectUnauthorized: false },
  'verify-full': true,
};

/**
 * Reads a database URL; `field` names it in errors (`--database-url`, `database.url`), which never repeat the URL
 * (it may hold a password). A relative SQLite path is taken from `baseDir`.
 */
export function parseDatabaseUrl(url: string, field: string, baseDir: string): StoreTarget {
  const expected = 'expected sqlite:<file> or postgres://<user>@<host>:<port>/<database>';
  if (url.startsWith('sqlite:')) {
    // sqlite:relative/file, sqlite:/absolute/file, sqlite:///absolute/file
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '' || file === '//') throw new LabtraceError('E_CONFIG', `${field}: the SQLite file is missing (${expected})`);
    return { dialect: 'sqlite', file: path.resolve(baseDir, file) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql')
    throw new LabtraceError('E_CONFIG', `${field}: ${scheme === undefined ? 'not a URL' : `unknown scheme "${scheme}:"`} (${expected})`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LabtraceError('E_CONFIG', `${field}: not a valid URL (${expected})`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (parsed.hostname === '') throw new LabtraceError('E_CONFIG', `${field}: the host is missing (${expected})`);
  if (database === '' || database.includes('/')) throw new LabtraceError('E_CONFIG', `${field}: the database name is missing (${expected})`);
  if (parsed.username === '') throw new LabtraceError('E_CONFIG', `${field}: the user is missing (${expected})`);
  let ssl: boolean | { rejectUnauthorized: false } | undefined;
  for (const [name, value] of parsed.searchParams) {
    if (name !== 'sslmode' || !(value in SSL_MODES))
      throw new LabtraceError('E_CONFIG', `${field}: unsupported parameter "${name}" (only sslmode=${Object.keys(SSL_MODES).join('|')})`);
    ssl = SSL_MODES[value];
  }
  return {
    dialect: 'postgres',
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    database,
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    ssl,
  };
}

/** The target as it may be printed: no password. */
export function describeTarget(target: StoreTarget): string {
  return target.dialect === 'sqlite'
    ? `sqlite:${target.file}`
    : `postgres://${encodeURIComponent(target.user)}@${target.host}:${target.port}/${encodeURIComponent(target.database)}`;
}

export interface OpenedStore {
  db: Kysely<Tables>;
  dialect: SqlDialect;
  /** where the store is, without a password */
  description: string;
  close(): Promise<void>;
}

// BIGINT (int8) is read as a number, as better-sqlite3 reads SQLite's INTEGER (store/tables.ts says so for every
// column); node-postgres would give a string. A value beyond 2^53 is refused rather than rounded.
const INT8_OID = 20;
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new LabtraceError('E_STORE', `a BIGINT value ${text} is beyond 2^53 and cannot be read as a number`);
  return value;
}
const typeParser = ((oid: number, format?: 'text' | 'binary'): unknown =>
  oid === INT8_OID && format !== 'binary' ? parseInt8 : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser;

/** Opens a Kysely on the store; `passwordFile` is read here (PostgreSQL only). No I/O on PostgreSQL before the first query. */
export function openStore(
  target: StoreTarget,
  options: {
    passwordFile?: string | undefined;
    poolSize?: number;
    passwordFileField?: string;
    busyTimeoutMs?: number;
    /** PostgreSQL's BIGINT as node-postgres reads it, exact text (a copy that carries every 64-bit value) */
    bigintAsText?: boolean;
  } = {},
): OpenedStore {
  const passwordField = options.passwordFileField ?? 'database.passwordFile';
  const description = describeTarget(target);
  if (target.dialect === 'sqlite') {
    if (options.passwordFile !== undefined)
      throw new LabtraceError('E_CONFIG', `${passwordField}: a SQLite store has no password (the file is for PostgreSQL)`);
    mkdirSync(path.dirname(target.file), { recursive: true });
    const sqlite = openSqliteFile(target.file);
    // another process migrating the same file holds its write lock for as long as that takes: wait for it
    if (options.busyTimeoutMs !== undefined) sqlite.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs)}`);
    const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    return { db, dialect: 'sqlite', description, close: () => db.destroy() };
  }
  if (options.passwordFile !== undefined && target.password !== undefined)
    throw new LabtraceError('E_CONFIG', `${passwordField}: the URL holds a password too; give it in one place (the file)`);
  const password = options.passwordFile === undefined ? target.password : readSecretFile(path.resolve(options.passwordFile), passwordField);
  const pool = new pg.Pool({
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    ...(password === undefined ? {} : { password }),
    ...(target.ssl === undefined ? {} : { ssl: target.ssl }),
    max: options.poolSize ?? 10,
    application_name: 'labtrace',
    ...(options.bigintAsText === true ? {} : { types: { getTypeParser: typeParser } }),
  });
  // an idle connection that the server closed is dropped by the pool, and the next query opens a new one
  pool.on('error', () => undefined);
  // a connection in use has no pool listener: when the server ends its session (idle_in_transaction_session_timeout,
  // pg_terminate_backend) the error would end the process; the query or transaction on it fails instead
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', description, close: () => db.destroy() };
}
