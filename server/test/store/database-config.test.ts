// server.yaml's `database` section: which engine keeps the server's records. Checked when the config is read (a wrong
// URL names where it came from and never repeats a password), applied by the server and by `labtrace server migrate`.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import pino from 'pino';
import { LabtraceServer } from '../../src/server.js';
import { loadServerConfig, resolveServerConfig, serverConfigSchema } from '../../src/config.js';
import { storeTargetOf } from '../../src/store/dialect.js';
import { openSqliteFile, STORE_PAGE_SIZE } from '../../src/store/database.js';
import { startServer } from '../helpers/server.js';

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'labtrace-dbcfg-'));
const NO_ENV = {};

function configFile(text: string): string {
  const file = path.join(tmp(), 'server.yaml');
  writeFileSync(file, text);
  return file;
}

test('without a database section the records are in the SQLite file of the data directory, as before', async () => {
  const file = configFile('dataDir: ./lab-data\n');
  const config = await loadServerConfig(file, NO_ENV);
  expect(storeTargetOf(config.database, config.dataDir)).toEqual({
    dialect: 'sqlite',
    file: path.join(path.dirname(file), 'lab-data', 'labtrace.sqlite'),
  });
  expect(config.database.passwordFile).toBeUndefined();
});

test('a relative SQLite file and a password file are taken from the config file folder; the environment overrides both', async () => {
  const file = configFile('database:\n  url: sqlite:records/lab.sqlite\n');
  const dir = path.dirname(file);
  const config = await loadServerConfig(file, NO_ENV);
  expect(storeTargetOf(config.database, config.dataDir)).toEqual({ dialect: 'sqlite', file: path.join(dir, 'records', 'lab.sqlite') });
  const pg = await loadServerConfig(configFile('database:\n  url: postgres://labtrace@db.lab:5433/lab\n  passwordFile: ./pw\n'), NO_ENV);
  expect(storeTargetOf(pg.database, pg.dataDir)).toMatchObject({
    dialect: 'postgres',
    host: 'db.lab',
    port: 5433,
    user: 'labtrace',
    database: 'lab',
  });
  expect(path.isAbsolute(pg.database.passwordFile ?? '')).toBe(true);
  const env = { LABTRACE_DATABASE_URL: 'postgres://other@10.0.0.9/lab2', LABTRACE_DATABASE_PASSWORD_FILE: '/run/secrets/pg' };
  const overridden = await loadServerConfig(file, env);
  expect(storeTargetOf(overridden.database, overridden.dataDir)).toMatchObject({ dialect: 'postgres', host: '10.0.0.9', user: 'other' });
  expect(overridden.database.passwordFile).toBe('/run/secrets/pg');
});

const secret = 'do-not-print-9c1e';
test.each([
  [{ database: { url: `mysql://root:${secret}@db/lab` } }, {}, /database\.url: unknown scheme "mysql:"/],
  [{ database: { url: 'postgres://db/lab' } }, {}, /database\.url: the user is missing/],
  [{ database: { url: 'sqlite:x.sqlite', passwordFile: 'pw' } }, {}, /database\.passwordFile: a SQLite store has no password/],
  [{ database: { url: `postgres://u:${secret}@db/lab`, passwordFile: 'pw' } }, {}, /database\.passwordFile: the URL holds a password too/],
  [{}, { LABTRACE_DATABASE_URL: `redis://:${secret}@cache` }, /LABTRACE_DATABASE_URL: unknown scheme "redis:"/],
  [
    { database: { url: 'sqlite:x.sqlite' } },
    { LABTRACE_DATABASE_PASSWORD_FILE: '/pw' },
    /LABTRACE_DATABASE_PASSWORD_FILE: a SQLite store has no password/,
  ],
  [{ database: { url: 'postgres://u@db/lab' }, store: { indexWorker: true } }, {}, /store\.indexWorker: only for the embedded SQLite store/],
  [{ store: { indexWorker: true } }, { LABTRACE_DATABASE_URL: 'postgres://u@db/lab' }, /store\.indexWorker: only for the embedded SQLite store/],
  [{ store: { indexWorker: true }, retention: { sampleIndexDays: 3000 } }, {}, /store\.indexWorker: not with retention yet/],
  [{ store: { indexWorker: true }, retention: { rawBatchesDays: 3000 } }, {}, /store\.indexWorker: not with retention yet/],
])('a wrong database section is refused at load, naming the field, never the password (%#)', (section, env, message) => {
  const read = () => resolveServerConfig(serverConfigSchema.parse(section), env, tmp());
  expect(read).toThrow(message);
  try {
    read();
  } catch (err) {
    expect((err as { code?: string }).code).toBe('E_CONFIG');
    expect(String((err as Error).message)).not.toContain(secret);
  }
});

test('an unknown key of the section is refused by name', async () => {
  await expect(loadServerConfig(configFile('database:\n  uri: sqlite:x\n'), NO_ENV)).rejects.toThrow(/database.*uri/);
});

test('a server given database.url sqlite:<file> keeps its records in that file, not in the data directory', async () => {
  const file = path.join(tmp(), 'elsewhere', 'records.sqlite');
  const lab = await startServer({ database: { url: `sqlite:${file}` } });
  try {
    // a user's token reads its account: both are records of that file
    expect((await lab.fetch('/api/auth/me', {}, 'technician')).status).toBe(200);
  } finally {
    await lab.stop();
  }
  expect(existsSync(path.join(lab.config.dataDir, 'labtrace.sqlite'))).toBe(false);
  const sqlite = openSqliteFile(file);
  try {
    const users = sqlite.prepare('SELECT username FROM users ORDER BY username').pluck().all();
    expect(users).toEqual(expect.arrayContaining(['admin', 'technician']));
  } finally {
    sqlite.close();
  }
});

test('a server on a PostgreSQL store it cannot reach fails at its start with the reason, never the password, and leaves nothing running', async () => {
  const config = serverConfigSchema.parse({
    dataDir: tmp(),
    http: { host: '127.0.0.1', port: 0 },
    mqtt: { host: '127.0.0.1', port: 0 },
    database: { url: `postgres://labtrace:${secret}@127.0.0.1:1/lab` },
  });
  const server = new LabtraceServer(config, pino({ level: 'silent' }));
  expect(server.engine).toBe('postgres');
  let error: unknown;
  try {
    await server.start();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(Error);
  expect(String((error as Error).message)).toMatch(/ECONNREFUSED|connect/);
  expect(String((error as Error).message)).not.toContain(secret);
  expect(server.httpPort).toBe(0);
});

test('the demo lab is taken on PostgreSQL, as the job of one node rather than every node\u2019s own (cluster/demo-on-postgres)', () => {
  const config = serverConfigSchema.parse({ dataDir: tmp(), demo: { enabled: true }, database: { url: 'postgres://labtrace@127.0.0.1:1/lab' } });
  const server = new LabtraceServer(config, pino({ level: 'silent' }));
  expect(server.engine).toBe('postgres');
  expect(server.demo).toBeUndefined();
});

test('a new SQLite store is made of 32 KiB pages, a store made before keeps its own; either copies its WAL back every 8 MB', () => {
  const fresh = path.join(tmp(), 'new.sqlite');
  const made = openSqliteFile(fresh);
  made.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  made.close();
  const opened = openSqliteFile(fresh);
  try {
    expect(STORE_PAGE_SIZE).toBe(32_768);
    expect(opened.pragma('page_size', { simple: true })).toBe(32_768);
    expect(opened.pragma('wal_autocheckpoint', { simple: true })).toBe(250);
  } finally {
    opened.close();
  }
  // a store of SQLite's default pages (4 KiB), as every store was made before, opens as it is, its rows intact
  const before = path.join(tmp(), 'before.sqlite');
  const old = new Database(before);
  old.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('kept')");
  old.close();
  const reopened = openSqliteFile(before);
  try {
    expect(reopened.pragma('page_size', { simple: true })).toBe(4096);
    expect(reopened.pragma('wal_autocheckpoint', { simple: true })).toBe(2000);
    expect(reopened.prepare('SELECT v FROM t').pluck().all()).toEqual(['kept']);
  } finally {
    reopened.close();
  }
});
