// Which engine holds a store, from a database URL: `sqlite:<file>` (the embedded default, one file) or
// `postgres://user@host:port/database` (PostgreSQL through the pg package). A PostgreSQL password comes from a file
// (`passwordFile`, a Docker or systemd secret), never from a log line: what is printed of a URL has no password.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { LabtraceError } from '@labtrace/protocols';
import { readSecretFile } from '../secret-env.js';
import type { StoreTarget } from './config.js';
import { openSqliteFile, type Tables } from './database.js';
import type { SqlDialect } from './portable-ddl.js';
import { withStatementCache } from './sqlite-statements.js';

// the `database` section of server.yaml and its URLs are read in the store's config file (no engine needed to check them)
export { databaseConfigSchema, parseDatabaseUrl, resolveDatabaseConfig, storeTargetOf, type DatabaseConfig, type StoreTarget } from './config.js';

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
  /** PostgreSQL: how to open one more connection of the node's own (the leases' session), as the pool opens its */
  connection?: pg.ClientConfig;
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

/** How to connect to a PostgreSQL store: the URL's fields, the password read from `passwordFile` (named `passwordField` in errors). */
export function postgresConnection(
  target: Extract<StoreTarget, { dialect: 'postgres' }>,
  passwordFile: string | undefined,
  passwordField = 'database.passwordFile',
): pg.ClientConfig {
  if (passwordFile !== undefined && target.password !== undefined)
    throw new LabtraceError('E_CONFIG', `${passwordField}: the URL holds a password too; give it in one place (the file)`);
  const password = passwordFile === undefined ? target.password : readSecretFile(path.resolve(passwordFile), passwordField);
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    ...(password === undefined ? {} : { password }),
    ...(target.ssl === undefined ? {} : { ssl: target.ssl }),
  };
}

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
  const connection = postgresConnection(target, options.passwordFile, passwordField);
  const pool = new pg.Pool({
    ...connection,
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
  return { db, dialect: 'postgres', description, connection: { ...connection, application_name: 'labtrace' }, close: () => db.destroy() };
}
