// `labtrace server check`: what the server would find at start, without starting or writing. A new data directory
// (warnings only), a lab that ran (every check ok, also while it runs), and each thing that would stop or mislead
// a start: another log key, a key others may read, a tree that no longer has the signed root, a schema from a later
// version, another lab's name, a config that does not load.
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { formatSignerKey } from '@labtrace/protocols';
import { checkServer, type CheckLine } from '../../src/check-cli.js';
import { serverConfigSchema, type ServerConfig } from '../../src/config.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { records, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let work: string;
let t: TestServer;

const configOf = (dataDir: string, more: Record<string, unknown> = {}): ServerConfig => serverConfigSchema.parse({ lab: 'lab-t', dataDir, ...more });
const outcomes = (lines: CheckLine[]): Record<string, string> => Object.fromEntries(lines.map((l) => [l.what, l.outcome]));
const failure = (lines: CheckLine[], what: string): string => lines.find((l) => l.what === what && l.outcome === 'fail')?.detail ?? '(no failure)';

/** A copy of the lab's data directory (its store checkpointed into the main file first), to break one thing in. */
function copyLab(): string {
  const dir = mkdtempSync(path.join(work, 'copy-'));
  const db = new Database(path.join(t.config.dataDir, 'labtrace.sqlite'), { readonly: true });
  db.prepare('VACUUM INTO ?').run(path.join(dir, 'labtrace.sqlite'));
  db.close();
  for (const key of ['log.key', 'certificate.key']) {
    copyFileSync(path.join(t.config.dataDir, key), path.join(dir, key));
    chmodSync(path.join(dir, key), 0o600);
  }
  return dir;
}

async function labtrace(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['server', ...args]);
  const output = collect(proc);
  return { code: await exitOf(proc), output: output() };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'labtrace-check-'));
  t = await startServer();
  const gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ck-1');
  for (let i = 0; i < 5; i++) await gw.publish(gw.sign(records('ck-1', i * 10, 10)));
  await waitFor('batches acknowledged', () => gw.acks.length === 5);
  await gw.end();
  t.server.log?.checkpoint();
}, 60_000);

afterAll(async () => {
  await t.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('labtrace server check', () => {
  test('a new data directory: nothing fails; the store and the keys are made at start (warnings)', async () => {
    const lines = await checkServer(configOf(path.join(work, 'new')));
    expect(outcomes(lines)).toEqual({
      config: 'ok',
      'log.keyFile': 'warn',
      'certificates.keyFile': 'warn',
      store: 'warn',
      'free space': expect.stringMatching(/^(ok|warn)$/),
    });
  });

  test('a lab that runs: every check ok, read while the server writes; the command exits 0', async () => {
    const lines = await checkServer(configOf(t.config.dataDir));
    expect(lines.filter((l) => l.outcome !== 'ok' && l.what !== 'free space')).toEqual([]);
    expect(lines.find((l) => l.what === 'transparency log')?.detail).toMatch(
      /entries; the latest checkpoint \(size \d+\) is signed by the log key and matches the stored tree/,
    );
    expect(lines.find((l) => l.what === 'schema')?.detail).toMatch(/^at the latest schema/);
    const file = path.join(work, 'running.yaml');
    writeFileSync(file, `lab: lab-t\ndataDir: ${JSON.stringify(t.config.dataDir)}\n`);
    const run = await labtrace(['check', '--config', file]);
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/^ok {4}transparency log: /m);
  }, 60_000);

  test('another log key: the latest checkpoint is not signed by it', async () => {
    const dir = copyLab();
    writeFileSync(path.join(dir, 'log.key'), `${formatSignerKey('labtrace/lab-t', new Uint8Array(32).fill(5))}\n`, { mode: 0o600 });
    expect(failure(await checkServer(configOf(dir)), 'transparency log')).toMatch(/is not signed by the configured log key/);
  });

  test('a key others may read: fails, naming the file and the fix', async () => {
    const dir = copyLab();
    chmodSync(path.join(dir, 'log.key'), 0o644);
    expect(failure(await checkServer(configOf(dir)), 'log.keyFile')).toMatch(/lets others read the private key; chmod 600 it/);
    expect(statSync(path.join(dir, 'log.key')).mode & 0o777).toBe(0o644);
  });

  test("a stored tree altered (every stored hash): its root is not the signed checkpoint's", async () => {
    const dir = copyLab();
    const db = new Database(path.join(dir, 'labtrace.sqlite'));
    db.prepare('UPDATE log_entries SET leaf = zeroblob(32)').run();
    db.prepare('UPDATE log_hashes SET hash = zeroblob(32)').run();
    db.close();
    expect(failure(await checkServer(configOf(dir)), 'transparency log')).toMatch(
      /the stored tree's root at size \d+ is [0-9a-f]{64}, the signed checkpoint says/,
    );
  });

  test('a store migrated by a later version: this one cannot run on it', async () => {
    const dir = copyLab();
    const db = new Database(path.join(dir, 'labtrace.sqlite'));
    db.prepare("INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_from_the_future', '2030-01-01T00:00:00.000Z')").run();
    db.close();
    expect(failure(await checkServer(configOf(dir)), 'schema')).toMatch(/migrated by a later labtrace \(9999_from_the_future\)/);
  });

  test("another lab's name in the config: the store's log is not this lab's", async () => {
    const dir = copyLab();
    expect(failure(await checkServer(configOf(dir, { lab: 'lab-other' })), 'transparency log')).toMatch(
      /the store's log is "labtrace\/lab-t", the config's "labtrace\/lab-other"/,
    );
  });

  test('the store missing beside its keys: the log key signs nothing yet (a warning); the command exits 1 only on failures', async () => {
    const dir = copyLab();
    rmSync(path.join(dir, 'labtrace.sqlite'));
    const lines = await checkServer(configOf(dir));
    expect(outcomes(lines)).toMatchObject({ 'log.keyFile': 'ok', store: 'warn' });
    const file = path.join(work, 'broken.yaml');
    const broken = copyLab();
    chmodSync(path.join(broken, 'certificate.key'), 0o640);
    writeFileSync(file, `lab: lab-t\ndataDir: ${JSON.stringify(broken)}\n`);
    const run = await labtrace(['check', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.output).toMatch(/^fail {2}certificates\.keyFile: .*chmod 600 it$/m);
  }, 60_000);

  test('a config that does not load: exit 2, naming the field', async () => {
    const file = path.join(work, 'bad.yaml');
    writeFileSync(file, 'lab: lab-t\nstore:\n  reserveBytes: -5\n');
    const run = await labtrace(['check', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/store\.reserveBytes/);
    expect(readFileSync(file, 'utf8')).toContain('reserveBytes');
    expect((await labtrace(['check', '--bogus'])).code).toBe(2);
  }, 60_000);
});
