// The PostgreSQL side of a backup and a restore (store/backup.ts), with PostgreSQL's own tools: pg_dump's custom
// format taken in a snapshot this module exports (so that the manifest's facts and the dump are the same moment of the
// store), and pg_restore into an empty database in one transaction. A restore whose log then fails its checks is
// dropped again: the database is left as empty as it was. The tools are found on the PATH, or in the directory
// LABTRACE_PG_BINDIR names; the password reaches them in their environment (PGPASSWORD), never on a command line.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { LabtraceError } from '@labtrace/protocols';
import type { StoreTarget } from './config.js';
import { describeTarget, postgresConnection } from './dialect.js';
import {
  BackupInvalid,
  BackupRefused,
  type BackupManifest,
  type RestoreEvent,
  type RestoreTarget,
  type RestoredLog,
  type Say,
  type SnapshotFacts,
  type SnapshotSource,
} from './backup.js';

type PostgresTarget = Extract<StoreTarget, { dialect: 'postgres' }>;
type Tool = 'pg_dump' | 'pg_restore';

/** pg_dump or pg_restore is not installed, or older than the server or the dump needs. */
export class BackupToolMissing extends LabtraceError {
  constructor(message: string) {
    super('E_CONFIG', message);
  }
}

const SYSTEM_SCHEMAS =
  "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/** The tool's file: in LABTRACE_PG_BINDIR when set, else the first on the PATH. */
export function pgTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): string {
  const bindir = env['LABTRACE_PG_BINDIR'];
  const executable = (file: string): boolean => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (bindir !== undefined && bindir !== '') {
    const file = path.join(bindir, tool);
    if (!executable(file)) throw new BackupToolMissing(`LABTRACE_PG_BINDIR: ${bindir} holds no ${tool}`);
    return file;
  }
  const found = (env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => path.join(dir, tool))
    .find(executable);
  if (found === undefined)
    throw new BackupToolMissing(
      `${tool}: not found on the PATH; a PostgreSQL store is backed up and restored with PostgreSQL's client tools (Debian: apt-get install postgresql-client), or set LABTRACE_PG_BINDIR to the directory that holds them`,
    );
  return found;
}

const majorOf = (version: string): number => Number(/^(\d+)/.exec(version)?.[1] ?? NaN);

/** The environment a tool connects with: the store's fields, the password as PGPASSWORD (never an argument). */
function toolEnv(connection: pg.ClientConfig): NodeJS.ProcessEnv {
  const ssl = connection.ssl;
  return {
    ...process.env,
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGUSER: connection.user,
    PGDATABASE: connection.database,
    PGAPPNAME: 'labtrace-backup',
    ...(typeof connection.password === 'string' ? { PGPASSWORD: connection.password } : {}),
    ...(ssl === undefined ? {} : { PGSSLMODE: ssl === false ? 'disable' : ssl === true ? 'verify-full' : 'require' }),
  };
}

/** Runs a tool to its end; its error output (without the password, should it ever repeat it) names a failure. */
function runTool(file: string, args: string[], env: NodeJS.ProcessEnv, secret: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-65536)));
    child.on('error', (e) => reject(new BackupToolMissing(`${file}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const text = secret === undefined || secret === '' ? err : err.split(secret).join('***');
      if (code === 0) resolve(out);
      else reject(new LabtraceError('E_STORE', `${path.basename(file)} failed (${signal ?? `exit ${code}`}): ${text.trim()}`));
    });
  });
}

async function toolVersion(file: string, env: NodeJS.ProcessEnv): Promise<string> {
  // "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
  const text = await runTool(file, ['--version'], env, undefined);
  const version = /\)\s+(\d+(?:\.\d+)*)/.exec(text)?.[1];
  if (version === undefined) throw new BackupToolMissing(`${file}: not a PostgreSQL tool (--version says "${text.trim()}")`);
  return version;
}

async function connect(connection: pg.ClientConfig, description: string): Promise<pg.Client> {
  const client = new pg.Client({ ...connection, application_name: 'labtrace-backup' });
  // a session the server ends fails the query on it
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new LabtraceError('E_STORE', `cannot connect to ${description}: ${(err as Error).message}`, { cause: err });
  }
  return client;
}

const rows = async <T>(client: pg.Client, text: string, values: unknown[] = []): Promise<T[]> => (await client.query(text, values)).rows as T[];

/** A PostgreSQL store's snapshot: pg_dump -Fc in the snapshot of one read-only transaction, whose facts it reads. */
export class PgSnapshotSource implements SnapshotSource {
  readonly engine = 'postgresql';
  readonly description: string;

  constructor(
    private readonly target: PostgresTarget,
    private readonly passwordFile: string | undefined,
  ) {
    this.description = describeTarget(target);
  }

  async snapshot(file: string, progress: Say | undefined): Promise<SnapshotFacts> {
    const connection = postgresConnection(this.target, this.passwordFile);
    const env = toolEnv(connection);
    const dump = pgTool('pg_dump', env);
    const dumpVersion = await toolVersion(dump, env);
    const client = await connect(connection, this.description);
    try {
      const [server] = await rows<{ v: string; n: string }>(
        client,
        "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
      );
      const serverVersion = server?.v.split(' ')[0] ?? '';
      const serverMajor = Math.floor(Number(server?.n) / 10000);
      if (!(majorOf(dumpVersion) >= serverMajor))
        throw new BackupToolMissing(
          `${dump} is version ${dumpVersion}, the store's server ${serverVersion}: pg_dump must be of the server's major version or later (install postgresql-client-${serverMajor}, or set LABTRACE_PG_BINDIR to its directory)`,
        );
      // one snapshot for the facts and for pg_dump (--snapshot): the manifest describes the dump's very moment
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const [exported] = await rows<{ id: string }>(client, 'SELECT pg_export_snapshot() AS id');
      const facts = await factsOf(client);
      progress?.(`backup: pg_dump ${dumpVersion} of PostgreSQL ${serverVersion}`);
      await runTool(
        dump,
        ['--format=custom', '--no-password', `--snapshot=${exported?.id ?? ''}`, `--file=${file}`],
        env,
        connection.password as string | undefined,
      );
      await client.query('COMMIT');
      return { ...facts, serverVersion, dumpVersion };
    } finally {
      await client.end();
    }
  }
}

async function factsOf(client: pg.Client): Promise<Omit<SnapshotFacts, 'serverVersion' | 'dumpVersion'>> {
  const [has] = await rows<{ m: boolean; c: boolean; e: boolean; b: boolean }>(
    client,
    "SELECT to_regclass('kysely_migration') IS NOT NULL AS m, to_regclass('log_checkpoints') IS NOT NULL AS c, to_regclass('log_entries') IS NOT NULL AS e, to_regclass('batch_headers') IS NOT NULL AS b",
  );
  const count = async (table: string): Promise<number> =>
    Number((await rows<{ n: string }>(client, `SELECT COUNT(*)::text AS n FROM ${table}`))[0]?.n ?? 0);
  const latest =
    has?.c === true
      ? (
          await rows<{ n: string; note: string }>(
            client,
            'SELECT size::text AS n, note FROM log_checkpoints ORDER BY log_checkpoints.size DESC LIMIT 1',
          )
        )[0]
      : undefined;
  return {
    migrations: has?.m === true ? (await rows<{ name: string }>(client, 'SELECT name FROM kysely_migration ORDER BY name')).map((r) => r.name) : [],
    latest: latest === undefined ? undefined : { size: Number(latest.n), note: latest.note },
    logEntries: has?.e === true ? await count('log_entries') : 0,
    batches: has?.b === true ? await count('batch_headers') : 0,
  };
}

/** The objects a database holds outside PostgreSQL's own schemas, each as the statement that drops it. */
async function droppable(client: pg.Client): Promise<Map<string, string>> {
  const found = await rows<{ key: string; drop: string }>(
    client,
    `SELECT 'n' || n.oid AS key, format('DROP SCHEMA IF EXISTS %I CASCADE', n.nspname) AS drop
       FROM pg_namespace n WHERE ${SYSTEM_SCHEMAS} AND n.nspname <> 'public'
     UNION ALL
     SELECT CASE c.relkind WHEN 'S' THEN 's' ELSE 'c' END || c.oid, format('DROP %s IF EXISTS %I.%I CASCADE',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
              n.nspname, c.relname)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
     UNION ALL
     SELECT 'p' || p.oid, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE ${SYSTEM_SCHEMAS} AND p.prokind IN ('f', 'p')
     UNION ALL
     SELECT 't' || t.oid, format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname)
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE ${SYSTEM_SCHEMAS} AND t.typtype IN ('d', 'e', 'r', 'm') `,
  );
  return new Map(found.map((r) => [r.key, r.drop]));
}

/** A restore into a PostgreSQL database that holds no tables: pg_restore in one transaction, dropped again if it does not verify. */
export class PgRestoreTarget implements RestoreTarget {
  readonly engine = 'postgresql';
  readonly description: string;
  private dir: string | undefined;
  private client: pg.Client | undefined;
  private connection: pg.ClientConfig | undefined;
  private before: Map<string, string> | undefined;

  constructor(
    private readonly target: PostgresTarget,
    private readonly passwordFile: string | undefined,
  ) {
    this.description = describeTarget(target);
  }

  get entryFile(): string {
    if (this.dir === undefined) throw new Error('the restore target is not checked yet');
    return path.join(this.dir, 'labtrace.pgdump');
  }

  async checkEmpty(): Promise<void> {
    const connection = postgresConnection(this.target, this.passwordFile);
    pgTool('pg_restore', toolEnv(connection));
    const client = await connect(connection, this.description);
    try {
      const tables = await rows<{ name: string }>(
        client,
        `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE ${SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p') ORDER BY 1`,
      );
      if (tables.length > 0)
        throw new BackupRefused(
          `${this.description} holds ${tables.length} tables (${tables
            .slice(0, 3)
            .map((t) => t.name)
            .join(
              ', ',
            )}${tables.length > 3 ? ', ...' : ''}): a restore never overwrites a store (restore into a new, empty database: CREATE DATABASE, then name it in database.url)`,
        );
      this.before = await droppable(client);
    } catch (err) {
      await client.end();
      throw err;
    }
    this.client = client;
    this.connection = connection;
    this.dir = mkdtempSync(path.join(tmpdir(), 'labtrace-restore-'));
  }

  async load(manifest: BackupManifest, progress: Say | undefined): Promise<RestoredLog> {
    const { client, connection } = this;
    if (client === undefined || connection === undefined) throw new Error('the restore target is not checked yet');
    const env = toolEnv(connection);
    const restore = pgTool('pg_restore', env);
    const version = await toolVersion(restore, env);
    const dumped = manifest.store.dumpVersion;
    if (dumped !== undefined && majorOf(version) < majorOf(dumped))
      throw new BackupToolMissing(
        `${restore} is version ${version}; the backup was dumped by pg_dump ${dumped}: pg_restore must be of that major version or later (or set LABTRACE_PG_BINDIR to its directory)`,
      );
    progress?.(`restore: pg_restore ${version} into ${this.description}`);
    // the database by name in a connection string of its own (a name is never read as a URL); the rest from the environment
    const dbname = `dbname='${String(connection.database).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    await runTool(
      restore,
      ['--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', '--no-password', `--dbname=${dbname}`, this.entryFile],
      env,
      connection.password as string | undefined,
    ).catch((err: unknown) => {
      throw new BackupInvalid([`${manifest.store.entry}: pg_restore did not restore it: ${(err as Error).message}`]);
    });
    const PAGE = 2000;
    return {
      checkpoints: async () =>
        // (a BIGINT read as text, the order by the column's own value)
        (await rows<{ n: string; note: string }>(client, 'SELECT size::text AS n, note FROM log_checkpoints ORDER BY log_checkpoints.size')).map(
          (r) => ({
            size: Number(r.n),
            note: r.note,
          }),
        ),
      count: async () => Number((await rows<{ n: string }>(client, 'SELECT COUNT(*)::text AS n FROM log_entries'))[0]?.n ?? 0),
      entries: async function* () {
        let next = 0;
        for (;;) {
          const page = await rows<{ n: string; data: Buffer; leaf: Buffer }>(
            client,
            'SELECT idx::text AS n, data, leaf FROM log_entries WHERE idx >= $1 ORDER BY log_entries.idx LIMIT $2',
            [next, PAGE],
          );
          for (const r of page) yield { idx: Number(r.n), data: r.data, leaf: r.leaf };
          const last = page.at(-1);
          if (page.length < PAGE || last === undefined) return;
          next = Number(last.n) + 1;
        }
      },
    };
  }

  async commit(event: RestoreEvent): Promise<void> {
    const client = this.client;
    if (client === undefined) throw new Error('the restore target is not checked yet');
    await client.query(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail, last_at, address, client) VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL, NULL)',
      [event.at, '', 'store-restored', event.severity, event.detail, event.at],
    );
  }

  async finish(failed: boolean): Promise<void> {
    const { client, before, dir } = this;
    this.client = undefined;
    this.dir = undefined;
    try {
      if (failed && client !== undefined && before !== undefined) await this.dropRestored(client, before);
    } finally {
      await client?.end();
      if (dir !== undefined && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Drops, in one transaction, every object that was not in the database before the restore. */
  private async dropRestored(client: pg.Client, before: Map<string, string>): Promise<void> {
    const now = await droppable(client);
    const added = [...now].filter(([key]) => !before.has(key));
    if (added.length === 0) return;
    // schemas, then tables and views (their identity sequences, indexes and triggers go with them), then what is left
    const order = 'ncspt';
    added.sort(([a], [b]) => order.indexOf(a[0] ?? '') - order.indexOf(b[0] ?? ''));
    await client.query('BEGIN');
    try {
      for (const [, drop] of added) await client.query(drop);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw new LabtraceError(
        'E_STORE',
        `the restore into ${this.description} failed and what it restored could not be dropped: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}
