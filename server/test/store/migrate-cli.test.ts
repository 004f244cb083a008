// `labtrace server migrate` as an operator runs it: real processes against a real PostgreSQL 15 and a SQLite file.
import { existsSync, mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import pg from 'pg';
import { LabDatabase, openSqliteFile } from '../../src/store/database.js';
import { openStore, parseDatabaseUrl } from '../../src/store/dialect.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { serverMigrations } from '../../src/migrations.js';

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'labtrace-migrate-'));
// none of the caller's store settings leak into the processes under test
const CLEAN_ENV = { LABTRACE_DATABASE_URL: '', LABTRACE_DATABASE_PASSWORD_FILE: '', LABTRACE_DATA_DIR: '' };

async function migrate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string; applied: string[] }> {
  const proc = runLabtrace(['server', 'migrate', ...args], { ...CLEAN_ENV, ...env });
  const output = collect(proc);
  const code = await exitOf(proc);
  const applied = [...output().matchAll(/^applied (\S+)(?: \(\d+\/\d+, [^)]+\))?$/gm)].map((m) => m[1] ?? '');
  return { code, output: output(), applied };
}

/** every migration of a SQLite store, by name (the reference list) */
async function allMigrations(): Promise<string[]> {
  const database = new LabDatabase(tmp(), serverMigrations);
  await database.migrate();
  const names = database.sqlite.prepare('SELECT name FROM kysely_migration ORDER BY name').pluck().all() as string[];
  await database.close();
  return names;
}

// Kysely's Migrator serializes migrations on PostgreSQL with this advisory lock (kysely's postgres-adapter.js)
const KYSELY_MIGRATION_LOCK = '3853314791062309107';

describe('on PostgreSQL 15', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres.stop();
  });

  test('two migrate processes at once both exit 0, and each migration is applied once', async () => {
    const url = await postgres.createDatabase('concurrent');
    const expected = await allMigrations();
    // The test holds the migration lock until both processes wait for it, so that they do run at once
    const holder = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: 'postgres', database: 'concurrent' });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(${KYSELY_MIGRATION_LOCK})`);
      const a = migrate(['--database-url', url]);
      const b = migrate([], { LABTRACE_DATABASE_URL: url });
      // both are waiting for the lock: two ungranted advisory locks on the database
      for (let waited = 0; ; waited += 50) {
        if (waited > 20_000) throw new Error('the two migrate processes never both waited for the migration lock');
        const { rows } = await holder.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = 'concurrent'`,
        );
        if (Number(rows[0]?.n) === 2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await holder.query(`SELECT pg_advisory_unlock(${KYSELY_MIGRATION_LOCK})`);
      const [ra, rb] = await Promise.all([a, b]);
      expect([ra.code, rb.code]).toEqual([0, 0]);
      // between them, every migration once (each is applied under the lock, one at a time: the two may take turns)
      expect([...ra.applied, ...rb.applied].sort()).toEqual(expected);
      const { rows } = await holder.query<{ name: string }>('SELECT name FROM kysely_migration ORDER BY name');
      expect(rows.map((r) => r.name)).toEqual(expected);
    } finally {
      await holder.end();
    }
  });

  test('migrate is idempotent: a second run applies nothing and says so', async () => {
    const url = await postgres.createDatabase('idempotent');
    const first = await migrate(['--database-url', url]);
    expect(first.code).toBe(0);
    expect(first.applied).toEqual(await allMigrations());
    // each told as it is applied, with its place and its time
    const total = first.applied.length;
    expect(first.output).toMatch(new RegExp(`^applied ${first.applied[0]} \\(1/${total}, \\d+ s\\)$`, 'm'));
    expect(first.output).toMatch(new RegExp(`^applied ${first.applied[total - 1]} \\(${total}/${total}, \\d+ s\\)$`, 'm'));
    const second = await migrate(['--database-url', url]);
    expect(second.code).toBe(0);
    expect(second.applied).toEqual([]);
    expect(second.output).toContain(`postgres://postgres@127.0.0.1:${postgres.port}/idempotent: the schema is up to date; nothing applied`);
  });
});

test('a PostgreSQL password comes from a file and appears in no output', async () => {
  const password = 'pw-in-a-file-7f3a91';
  const postgres = await startPostgres({ password });
  try {
    const dir = tmp();
    const right = path.join(dir, 'right');
    const wrong = path.join(dir, 'wrong');
    writeFileSync(right, `${password}\n`);
    writeFileSync(wrong, 'not-the-password\n');
    // without the password, PostgreSQL refuses the connection: the file is what lets it in
    const none = await migrate(['--database-url', postgres.url]);
    expect(none.code).toBe(1);
    const refused = await migrate(['--database-url', postgres.url, '--password-file', wrong]);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/password authentication failed/);
    expect(refused.output).not.toContain('not-the-password');
    // server.yaml's `database` section: the URL without a password, the password file beside the config file
    const configDir = tmp();
    writeFileSync(path.join(configDir, 'pw'), `${password}\n`);
    writeFileSync(path.join(configDir, 'server.yaml'), `database:\n  url: ${postgres.url}\n  passwordFile: ./pw\n`);
    const fromConfig = await migrate(['--config', path.join(configDir, 'server.yaml')]);
    expect(fromConfig.code).toBe(0);
    expect(fromConfig.output).toContain(`postgres://postgres@127.0.0.1:${postgres.port}/`);
    expect(fromConfig.applied.length).toBeGreaterThan(20);
    expect(fromConfig.output).not.toContain(password);
    // emptied again, so that the environment's way below is seen to apply the same migrations
    const wipe = openStore(parseDatabaseUrl(postgres.url, 'url', dir), { passwordFile: right });
    await sql`DROP SCHEMA public CASCADE`.execute(wipe.db);
    await sql`CREATE SCHEMA public`.execute(wipe.db);
    await wipe.close();
    const ok = await migrate([], { LABTRACE_DATABASE_URL: postgres.url, LABTRACE_DATABASE_PASSWORD_FILE: right });
    expect(ok.code).toBe(0);
    expect(ok.applied).toEqual(fromConfig.applied);
    expect(ok.applied.length).toBeGreaterThan(20);
    expect(ok.output).not.toContain(password);
    // the store opened the same way from the library holds the schema
    const store = openStore(parseDatabaseUrl(postgres.url, 'url', dir), { passwordFile: right });
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM kysely_migration`.execute(store.db);
    expect(Number(rows[0]?.n)).toBe(ok.applied.length);
    await store.close();
    // the test's PostgreSQL leaves nothing behind: no server on its port, no directory
    await postgres.stop();
    expect(existsSync(postgres.dir)).toBe(false);
    const late = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: 'postgres', database: 'postgres', password });
    await expect(late.connect()).rejects.toThrow(/ECONNREFUSED/);
  } finally {
    await postgres.stop();
  }
}, 180_000);

/** a server.yaml with the given text, in a folder of its own */
function configWith(text: string): string {
  const file = path.join(tmp(), 'server.yaml');
  writeFileSync(file, text);
  return file;
}

// a password written in a wrong URL
const secret = 'hunter2-do-not-print';
const wrongInputs: { args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }[] = [
  { args: ['--database-url', `mysql://root:${secret}@db/lab`], message: /--database-url: unknown scheme "mysql:"/ },
  { args: ['--database-url', `postgres://labtrace:${secret}@/lab`], message: /--database-url: not a valid URL/ },
  { args: ['--database-url', 'postgres:///lab'], message: /--database-url: the host is missing/ },
  { args: ['--database-url', `postgres://labtrace:${secret}@db:5432/`], message: /--database-url: the database name is missing/ },
  { args: ['--database-url', 'postgres://db:5432/lab'], message: /--database-url: the user is missing/ },
  { args: ['--database-url', `postgres://u:${secret}@db/lab?sslmode=allow`], message: /--database-url: unsupported parameter "sslmode"/ },
  { args: ['--database-url', 'sqlite:'], message: /--database-url: the SQLite file is missing/ },
  { args: [], env: { LABTRACE_DATABASE_URL: `redis://:${secret}@cache` }, message: /LABTRACE_DATABASE_URL: unknown scheme "redis:"/ },
  { args: ['--database-url', 'postgres://u@db/lab', '--password-file', '/nonexistent/pw'], message: /--password-file: .*file not found/ },
  {
    args: ['--database-url', `sqlite:${tmp()}/x.sqlite`, '--password-file', '/nonexistent/pw'],
    message: /--password-file: a SQLite store has no password/,
  },
  { args: ['--databse-url', 'sqlite:x'], message: /Unknown option '--databse-url'/ },
  { args: ['--config', configWith(`database:\n  url: "postgres://u:${secret}@db/lab?x=1"\n`)], message: /database\.url: unsupported parameter "x"/ },
  {
    args: ['--config', configWith('database:\n  url: sqlite:lab.sqlite\n  passwordFile: ./pw\n')],
    message: /database\.passwordFile: a SQLite store has no password/,
  },
  { args: ['--config', configWith('database:\n  uri: sqlite:lab.sqlite\n')], message: /database.*uri/ },
];

test.each(wrongInputs)('a wrong URL or option exits 2 naming the field, and never repeats a password: $message', async ({ args, env, message }) => {
  const r = await migrate(args, env);
  expect(r.code).toBe(2);
  expect(r.output).toMatch(message);
  expect(r.output).not.toContain(secret);
});

test('two migrate processes at once on one SQLite file both exit 0, and each migration is applied once', async () => {
  const file = path.join(tmp(), 'labtrace.sqlite');
  const expected = await allMigrations();
  // The test holds the file's write lock until both processes have the file open, so that they do run at once
  const holder = openSqliteFile(file);
  holder.exec('BEGIN IMMEDIATE');
  const procs = [0, 1].map(() => runLabtrace(['server', 'migrate', '--database-url', `sqlite:${file}`], CLEAN_ENV));
  const outputs = procs.map((p) => collect(p));
  const exits = procs.map((p) => exitOf(p));
  const hasOpen = (pid: number | undefined): boolean => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  };
  while (!procs.every((p) => hasOpen(p.pid))) await new Promise((r) => setTimeout(r, 50));
  holder.exec('COMMIT');
  holder.close();
  expect(await Promise.all(exits)).toEqual([0, 0]);
  const applied = outputs.map((o) => [...o().matchAll(/^applied (\S+)(?: \(\d+\/\d+, [^)]+\))?$/gm)].map((m) => m[1] ?? ''));
  expect(applied.flat().sort()).toEqual(expected);
  expect(applied.map((a) => a.length).sort((x, y) => x - y)).toEqual([0, expected.length]);
});

test('without a URL, migrate brings the SQLite file of the data directory up to date, and the server opens it as before', async () => {
  const dataDir = tmp();
  const first = await migrate([], { LABTRACE_DATA_DIR: dataDir });
  expect(first.code).toBe(0);
  expect(first.applied).toEqual(await allMigrations());
  expect(first.output).toContain(`sqlite:${path.join(dataDir, 'labtrace.sqlite')}: ${first.applied.length} migrations applied`);
  // the server's own opening of the store (npm start's default) finds it migrated and keeps working with it
  const database = new LabDatabase(dataDir, serverMigrations);
  await database.migrate();
  expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
  expect(database.sqlite.prepare('SELECT count(*) FROM kysely_migration').pluck().get()).toBe(first.applied.length);
  await database.close();
  const again = await migrate(['--database-url', `sqlite:${path.join(dataDir, 'labtrace.sqlite')}`]);
  expect(again.code).toBe(0);
  expect(again.applied).toEqual([]);
});
