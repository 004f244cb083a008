// `labtrace server backup` and `restore` on a PostgreSQL store (a real PostgreSQL 15 with a password): a backup taken
// by pg_dump while a gateway sends, restored into another database and served by a server; a database that holds a
// store, a damaged dump, a published checkpoint the backup contradicts or lacks (unless the gap is accepted) and a
// backup of the other engine refused, with the target database left as empty as it was; the password never in the
// output or the archive.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { ed25519NoteSigner, parseCheckpoint, parseNote, parseSignerKey, signCheckpoint } from '@labtrace/protocols';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { checkpointOf, keepSending, manifestOf, tarMembers } from '../helpers/backup-archive.js';
import { startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const PASSWORD = 'pg-secret-Zq81xv';

let cluster: TestPostgres;
let t: TestServer;
let gw: TestGateway;
let work: string;
let passwordFile: string;
let liveUrl: string;
let sender: { stop(): Promise<void> } | undefined;
let databases = 0;

/** Runs the command; every run is also held to never print the password. */
async function labtrace(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['server', ...args]);
  const output = collect(proc);
  const code = await exitOf(proc);
  expect(output()).not.toContain(PASSWORD);
  return { code, output: output() };
}

/** A server.yaml naming a data directory (the keys go there) and a PostgreSQL store, its password in a file. */
function configFor(dataDir: string, url: string | undefined): string {
  const file = path.join(work, `${path.basename(dataDir)}.yaml`);
  const database = url === undefined ? '' : `database:\n  url: ${JSON.stringify(url)}\n  passwordFile: ${JSON.stringify(passwordFile)}\n`;
  writeFileSync(file, `lab: lab-t\ndataDir: ${JSON.stringify(dataDir)}\n${database}`);
  return file;
}

/** a new, empty database on the cluster */
const freshDatabase = (): Promise<string> => cluster.createDatabase(`restored_${++databases}`);

async function query<T>(url: string, text: string): Promise<T[]> {
  // fields rather than a connection string, whose empty password would override the one given
  const u = new URL(url);
  const client = new pg.Client({ host: u.hostname, port: Number(u.port), user: 'postgres', database: u.pathname.slice(1), password: PASSWORD });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/** what a failed restore must have left: no table, no function (the store's triggers' one) */
async function objectsIn(url: string): Promise<string[]> {
  return (
    await query<{ name: string }>(
      url,
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
       UNION ALL SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'`,
    )
  ).map((r) => r.name);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'labtrace-pgbackup-'));
  passwordFile = path.join(work, 'pg-password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  cluster = await startPostgres({ password: PASSWORD });
  liveUrl = await cluster.createDatabase('live');
  t = await startServer({ database: { url: liveUrl, passwordFile }, log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('bk-1');
  sender = await keepSending(gw, 'bk-1');
}, 120_000);

afterAll(async () => {
  await sender?.stop();
  await gw?.end();
  await t?.stop();
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('a PostgreSQL store backed up while the gateway sends', () => {
  let archive: string;
  let withKeys: string;
  let published: string;
  let ackedBefore: number[];

  beforeAll(async () => {
    published = await checkpointOf(t);
    ackedBefore = [...gw.acks];
    archive = path.join(work, 'lab.tar');
    const run = await labtrace(['backup', '--out', archive, '--config', configFor(t.config.dataDir, liveUrl)]);
    expect([run.code, run.output]).toEqual([0, expect.stringContaining('backup written')]);
    withKeys = path.join(work, 'lab-keys.tar');
    expect((await labtrace(['backup', '--out', withKeys, '--include-keys', '--config', configFor(t.config.dataDir, liveUrl)])).code).toBe(0);
    // the gateway was acknowledged meanwhile: the backup did not stop ingest
    await waitFor('more batches acknowledged', () => gw.acks.length > ackedBefore.length + 5, 30_000);
  }, 120_000);

  test('the archive: the manifest, the pg_dump of one snapshot, no key unless asked, no password', () => {
    expect(tarMembers(archive)).toEqual(['manifest.json', 'labtrace.pgdump']);
    expect(tarMembers(withKeys)).toEqual(['manifest.json', 'labtrace.pgdump', 'keys/log.key', 'keys/certificates.key']);
    const m = manifestOf(archive);
    expect(m.store).toMatchObject({ engine: 'postgresql', entry: 'labtrace.pgdump', serverVersion: expect.stringMatching(/^15\./) });
    expect(m.store.migrations).toEqual(expect.arrayContaining(['0002_batch_headers']));
    expect(m.counts.batches).toBeGreaterThanOrEqual(ackedBefore.length);
    expect(m.counts.logEntries).toBeGreaterThanOrEqual(m.log.size);
    // the latest checkpoint of the snapshot: at least the one published before it
    expect(m.log.size).toBeGreaterThanOrEqual(parseCheckpoint(parseNote(published).text).size);
    const bytes = readFileSync(archive);
    expect(bytes.includes(Buffer.from('PGDMP'))).toBe(true);
    expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false);
    expect(bytes.includes(Buffer.from('PRIVATE+KEY+'))).toBe(false);
  });

  test('restored into another database, consistent with the checkpoint published before it: every batch acknowledged before the backup is there, and a server serves the log', async () => {
    const url = await freshDatabase();
    const dataDir = mkdtempSync(path.join(work, 'restored-'));
    const checkpointFile = path.join(work, 'published-before.txt');
    writeFileSync(checkpointFile, published);
    const run = await labtrace(['restore', '--from', withKeys, '--checkpoint', checkpointFile, '--config', configFor(dataDir, url)]);
    expect([run.code, run.output]).toEqual([0, expect.stringContaining('consistent with the published checkpoint')]);
    expect(run.output).toContain('keys written: log, certificates');
    const stored = new Set(
      (await query<{ batch: string }>(url, "SELECT batch::text AS batch FROM batch_headers WHERE gateway = 'gw-a'")).map((r) => Number(r.batch)),
    );
    expect(ackedBefore.filter((b) => !stored.has(b))).toEqual([]);
    const m = manifestOf(withKeys);
    const restored = await startServer({ dataDir, database: { url, passwordFile }, log: { minCheckpointIntervalMs: 100 } });
    try {
      const cp = parseCheckpoint(parseNote(await (await restored.fetch('/api/log/checkpoint', {}, null)).text()).text);
      expect(cp.origin).toBe(m.log.origin);
      expect(cp.size).toBeGreaterThanOrEqual(m.log.size);
      const events = (await (await restored.fetch('/api/security-events?kind=store-restored')).json()) as {
        items: { severity: string; detail: string }[];
      };
      expect(events.items).toEqual([
        expect.objectContaining({ severity: 'notice', detail: expect.stringContaining('consistent with the published checkpoint') }),
      ]);
    } finally {
      await restored.stop();
    }
  }, 120_000);

  test('a database that holds a store: refused, untouched', async () => {
    const before = (await query<{ n: string }>(liveUrl, 'SELECT COUNT(*)::text AS n FROM log_checkpoints'))[0]?.n;
    const run = await labtrace([
      'restore',
      '--from',
      archive,
      '--unpublished',
      '--config',
      configFor(mkdtempSync(path.join(work, 'live-')), liveUrl),
    ]);
    expect(run.code).toBe(3);
    expect(run.output).toContain('a restore never overwrites a store');
    expect(Number((await query<{ n: string }>(liveUrl, 'SELECT COUNT(*)::text AS n FROM log_checkpoints'))[0]?.n)).toBeGreaterThanOrEqual(
      Number(before),
    );
  }, 60_000);

  test('a damaged dump (one byte changed): does not verify by its checksum, nothing restored', async () => {
    const bytes = readFileSync(archive);
    const at = bytes.indexOf(Buffer.from('PGDMP'));
    expect(at).toBeGreaterThan(0);
    bytes[at + 600] = (bytes[at + 600] ?? 0) ^ 0xff;
    const damaged = path.join(work, 'damaged.tar');
    writeFileSync(damaged, bytes);
    const url = await freshDatabase();
    const run = await labtrace(['restore', '--from', damaged, '--unpublished', '--config', configFor(mkdtempSync(path.join(work, 'damaged-')), url)]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('the archive is damaged');
    expect(await objectsIn(url)).toEqual([]);
  }, 60_000);

  test('a published checkpoint the backup contradicts: refused after pg_restore, and what it restored is dropped again', async () => {
    const key = parseSignerKey(readFileSync(path.join(t.config.dataDir, 'log.key'), 'utf8').trim());
    const honest = parseCheckpoint(parseNote(published).text);
    const root = new Uint8Array(honest.rootHash);
    root[0] = (root[0] ?? 0) ^ 1;
    const file = path.join(work, 'forged.txt');
    writeFileSync(file, signCheckpoint({ ...honest, rootHash: root }, [ed25519NoteSigner(key)]));
    const url = await freshDatabase();
    const run = await labtrace([
      'restore',
      '--from',
      archive,
      '--checkpoint',
      file,
      '--config',
      configFor(mkdtempSync(path.join(work, 'fork-')), url),
    ]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('contradicts the history the lab published');
    expect(await objectsIn(url)).toEqual([]);
  }, 60_000);

  test('a checkpoint published after the backup: refused and dropped again, or restored with an alarm when the gap is accepted', async () => {
    await waitFor(
      'the log to grow past the backup',
      async () => parseCheckpoint(parseNote(await checkpointOf(t)).text).size > manifestOf(archive).log.size + 10,
      30_000,
    );
    const later = path.join(work, 'published-later.txt');
    writeFileSync(later, await checkpointOf(t));
    const laterSize = parseCheckpoint(parseNote(readFileSync(later, 'utf8')).text).size;
    const url = await freshDatabase();
    const config = configFor(mkdtempSync(path.join(work, 'gap-')), url);
    const refused = await labtrace(['restore', '--from', archive, '--checkpoint', later, '--config', config]);
    expect(refused.code).toBe(3);
    expect(refused.output).toContain(`published a checkpoint of size ${laterSize}`);
    expect(await objectsIn(url)).toEqual([]);
    const accepted = await labtrace(['restore', '--from', archive, '--checkpoint', later, '--accept-gap', '--config', config]);
    expect([accepted.code, accepted.output]).toEqual([0, expect.stringContaining('entries lost')]);
    const events = await query<{ severity: string; detail: string }>(
      url,
      "SELECT severity, detail FROM security_events WHERE kind = 'store-restored'",
    );
    expect(events).toEqual([{ severity: 'alarm', detail: expect.stringContaining(`checkpoint of size ${laterSize}`) }]);
  }, 90_000);

  test('a backup of the other engine: refused, either way', async () => {
    const toSqlite = await labtrace([
      'restore',
      '--from',
      archive,
      '--unpublished',
      '--config',
      configFor(mkdtempSync(path.join(work, 'sq-')), undefined),
    ]);
    expect(toSqlite.code).toBe(3);
    expect(toSqlite.output).toContain('a backup of a PostgreSQL store');
    // the same archive as a SQLite store's backup says it is
    const dir = mkdtempSync(path.join(work, 'as-sqlite-'));
    execFileSync('tar', ['-xf', archive, '-C', dir]);
    const m = manifestOf(archive);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...m, store: { ...m.store, engine: 'sqlite', entry: 'labtrace.sqlite' } }));
    renameSync(path.join(dir, 'labtrace.pgdump'), path.join(dir, 'labtrace.sqlite'));
    const sqliteArchive = path.join(work, 'sqlite.tar');
    execFileSync('tar', ['-cf', sqliteArchive, '-C', dir, 'manifest.json', 'labtrace.sqlite']);
    const url = await freshDatabase();
    const toPostgres = await labtrace([
      'restore',
      '--from',
      sqliteArchive,
      '--unpublished',
      '--config',
      configFor(mkdtempSync(path.join(work, 'pq-')), url),
    ]);
    expect(toPostgres.code).toBe(3);
    expect(toPostgres.output).toContain('a backup of a SQLite store');
    expect(await objectsIn(url)).toEqual([]);
  }, 60_000);

  test('no pg_dump where LABTRACE_PG_BINDIR points: a coded error naming it, exit 2', async () => {
    const proc = runLabtrace(['server', 'backup', '--out', path.join(work, 'none.tar'), '--config', configFor(t.config.dataDir, liveUrl)], {
      LABTRACE_PG_BINDIR: work,
    });
    const output = collect(proc);
    expect(await exitOf(proc)).toBe(2);
    expect(output()).toContain(`LABTRACE_PG_BINDIR: ${work} holds no pg_dump`);
  }, 60_000);
});
