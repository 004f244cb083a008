// The store's side of server.yaml: `store:` (the free-space reserve) and `measurements:` (where the dashboard's
// measurement reads come from: the embedded index or InfluxDB) and `database:` (which engine keeps the records).
// Schema only: the stores live beside this file.
import path from 'node:path';
import { z } from 'zod';
import { LabtraceError } from '@labtrace/protocols';
import { influxConfigSchema } from '@labtrace/protocols/influx';

/**
 * the store's free-space reserve on the data directory's filesystem: below it /api/health is degraded, a
 * security event and an ALARM line announce it, and new batches are refused (not acknowledged: the gateways
 * keep them) until space is freed; free space is measured every checkIntervalMs
 */
export const storeConfigSchema = z
  .strictObject({
    reserveBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 50)
      .default(64 * 1048576),
    checkIntervalMs: z.number().int().min(100).max(600_000).default(5000),
    /**
     * the per-sample index (SQLite) in a worker thread, on a file of its own beside the store (<store>.index.sqlite):
     * its inserts run on another core and never hold the store's write lock (store/index-worker.ts)
     */
    indexWorker: z.boolean().default(false),
  })
  .default({ reserveBytes: 64 * 1048576, checkIntervalMs: 5000, indexWorker: false });
export type StoreConfig = z.output<typeof storeConfigSchema>;

/**
 * InfluxDB as the measurement store: the shared InfluxDB section (@labtrace/protocols/influx), written and read with
 * InfluxQL on /query, which every version serves (2.x through the bucket's DBRP mapping: with `api: v2`, `database`
 * and `retentionPolicy` name what the reads ask, by default the bucket).
 */
export const influxStoreSchema = influxConfigSchema({ reads: true });
export type InfluxStoreConfig = z.output<typeof influxStoreSchema>;

/** where the dashboard's measurement reads come from: the embedded SQLite index (default) or InfluxDB */
export const measurementsConfigSchema = z
  .strictObject({
    store: z.enum(['embedded', 'influxdb']).default('embedded'),
    influxdb: influxStoreSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.store === 'influxdb' && m.influxdb === undefined)
      ctx.addIssue({ code: 'custom', path: ['influxdb'], message: 'required when store is influxdb' });
  })
  .default({ store: 'embedded' });
export type MeasurementsConfig = z.output<typeof measurementsConfigSchema>;

/** the InfluxDB secret files, relative to the config file's folder */
export function resolveMeasurementsConfig(m: MeasurementsConfig, baseDir: string): MeasurementsConfig {
  const influx = m.influxdb;
  if (influx === undefined) return m;
  return {
    ...m,
    influxdb: {
      ...influx,
      ...(influx.passwordFile === undefined ? {} : { passwordFile: path.resolve(baseDir, influx.passwordFile) }),
      ...(influx.tokenFile === undefined ? {} : { tokenFile: path.resolve(baseDir, influx.tokenFile) }),
    },
  };
}

/** `database` in server.yaml (LABTRACE_DATABASE_URL overrides the URL); without a URL, the SQLite file in the data directory */
export const databaseConfigSchema = z.strictObject({
  url: z.string().min(1).optional(),
  /** a file holding the PostgreSQL password (one line) */
  passwordFile: z.string().min(1).optional(),
});
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;

/**
 * The `database` section with the environment applied (LABTRACE_DATABASE_URL, LABTRACE_DATABASE_PASSWORD_FILE override
 * it) and checked: a relative SQLite file or password file is taken from the config file's folder; without a URL, the
 * store is the SQLite file of the data directory (storeTargetOf). A wrong URL
 * is an E_CONFIG naming where it came from, at load, before anything opens.
 */
export function resolveDatabaseConfig(
  config: DatabaseConfig,
  env: { url?: string | undefined; passwordFile?: string | undefined },
  baseDir: string,
  dataDir: string,
): DatabaseConfig {
  const url = env.url ?? config.url;
  const passwordFile = env.passwordFile ?? config.passwordFile;
  const target: StoreTarget =
    url === undefined
      ? { dialect: 'sqlite', file: path.join(dataDir, 'labtrace.sqlite') }
      : parseDatabaseUrl(url, env.url === undefined ? 'database.url' : 'LABTRACE_DATABASE_URL', baseDir);
  const passwordField = env.passwordFile === undefined ? 'database.passwordFile' : 'LABTRACE_DATABASE_PASSWORD_FILE';
  if (passwordFile !== undefined && target.dialect === 'sqlite')
    throw new LabtraceError('E_CONFIG', `${passwordField}: a SQLite store has no password (the file is for PostgreSQL)`);
  if (passwordFile !== undefined && target.dialect === 'postgres' && target.password !== undefined)
    throw new LabtraceError('E_CONFIG', `${passwordField}: the URL holds a password too; give it in one place (the file)`);
  return {
    // a SQLite URL is kept with its absolute file; a PostgreSQL URL as given (it may hold a password: never logged);
    // none stays none (storeTargetOf gives the data directory's file, whatever the data directory is then)
    ...(url === undefined ? {} : { url: target.dialect === 'sqlite' ? `sqlite:${target.file}` : url }),
    ...(passwordFile === undefined ? {} : { passwordFile: path.resolve(baseDir, passwordFile) }),
  };
}

/** the store a resolved `database` section names (resolveDatabaseConfig checked its URL already) */
export function storeTargetOf(database: DatabaseConfig, dataDir: string): StoreTarget {
  return database.url === undefined
    ? { dialect: 'sqlite', file: path.join(dataDir, 'labtrace.sqlite') }
    : parseDatabaseUrl(database.url, 'database.url', dataDir);
}

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
