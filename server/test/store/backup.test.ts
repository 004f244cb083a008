// `labtrace server backup` and `restore` against a real server: a backup taken while a gateway sends, restored
// elsewhere and started; the log held to the last published checkpoint (consistent, a gap, a contradiction); a
// damaged archive, a store in the way and a key in the way refused, with nothing left behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { ed25519NoteSigner, formatSignerKey, parseCheckpoint, parseNote, parseSignerKey, signCheckpoint } from '@labtrace/protocols';
import { BACKUP_FORMAT } from '../../src/store/backup.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { checkpointOf, keepSending, manifestOf, tarMembers } from '../helpers/backup-archive.js';
import { startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
let work: string;
let sender: { stop(): Promise<void> } | undefined;

async function labtrace(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['server', ...args]);
  const output = collect(proc);
  const code = await exitOf(proc);
  return { code, output: output() };
}

/** A server.yaml naming a data directory (the store and the keys go there). */
function configFor(dataDir: string): string {
  const file = path.join(work, `${path.basename(dataDir)}.yaml`);
  writeFileSync(file, `lab: lab-t\ndataDir: ${JSON.stringify(dataDir)}\n`);
  return file;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'labtrace-backup-'));
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('bk-1');
  sender = await keepSending(gw, 'bk-1');
}, 60_000);

afterAll(async () => {
  await sender?.stop();
  await gw.end();
  await t.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('a backup taken while the gateway sends', () => {
  let archive: string;
  let withKeys: string;
  let published: string;

  beforeAll(async () => {
    // the checkpoint an auditor saved before the backup
    published = await checkpointOf(t);
    archive = path.join(work, 'lab.tar');
    const before = gw.acks.length;
    const run = await labtrace(['backup', '--out', archive, '--config', configFor(t.config.dataDir)]);
    expect([run.code, run.output]).toEqual([0, expect.stringContaining('backup written')]);
    withKeys = path.join(work, 'lab-keys.tar');
    expect((await labtrace(['backup', '--out', withKeys, '--include-keys', '--config', configFor(t.config.dataDir)])).code).toBe(0);
    // the gateway was acknowledged meanwhile: the backup did not stop ingest
    await waitFor('more batches acknowledged', () => gw.acks.length > before + 5, 30_000);
  }, 120_000);

  test('the archive: the manifest first, the snapshot, no key unless asked; the snapshot is one commit of the store', () => {
    expect(tarMembers(archive)).toEqual(['manifest.json', 'labtrace.sqlite']);
    expect(tarMembers(withKeys)).toEqual(['manifest.json', 'labtrace.sqlite', 'keys/log.key', 'keys/certificates.key']);
    const m = manifestOf(archive);
    expect(m.format).toBe(BACKUP_FORMAT);
    expect(m.keys.map((k) => [k.role, k.present, k.included])).toEqual([
      ['log', true, false],
      ['certificates', true, false],
    ]);
    expect(readFileSync(archive).includes(Buffer.from('PRIVATE+KEY+'))).toBe(false);
    expect(readFileSync(withKeys).includes(Buffer.from('PRIVATE+KEY+'))).toBe(true);
    expect(statSync(archive).mode & 0o077).toBe(0);
    // the snapshot: its checkpoint is the manifest's, and its batches and log are those of one moment
    const dir = mkdtempSync(path.join(work, 'x-'));
    execFileSync('tar', ['-xf', archive, '-C', dir]);
    const db = new Database(path.join(dir, 'labtrace.sqlite'), { readonly: true });
    try {
      const batches = db.prepare('SELECT COUNT(*) FROM batch_headers').pluck().get();
      expect(batches).toBe(m.counts.batches);
      expect(m.counts.batches).toBeGreaterThanOrEqual(20);
      const size = db.prepare('SELECT COUNT(*) FROM log_entries').pluck().get();
      expect(size).toBe(m.counts.logEntries);
      // every stored batch is in the snapshot's log (it was appended in the batch's own transaction)
      expect(m.counts.logEntries).toBeGreaterThanOrEqual(m.counts.batches);
      expect(db.prepare('PRAGMA integrity_check').pluck().get()).toBe('ok');
    } finally {
      db.close();
    }
    expect(m.log.size).toBeLessThanOrEqual(m.counts.logEntries);
  });

  test('restored elsewhere, consistent with the checkpoint published before it: the server starts on it and serves the same log', async () => {
    const dataDir = mkdtempSync(path.join(work, 'restored-'));
    const checkpointFile = path.join(work, 'published-before.txt');
    writeFileSync(checkpointFile, published);
    const run = await labtrace(['restore', '--from', withKeys, '--checkpoint', checkpointFile, '--config', configFor(dataDir)]);
    expect([run.code, run.output]).toEqual([0, expect.stringContaining('consistent with the published checkpoint')]);
    expect(run.output).toContain('keys written: log, certificates');
    expect(statSync(path.join(dataDir, 'log.key')).mode & 0o077).toBe(0);
    const m = manifestOf(withKeys);
    const restored = await startServer({ dataDir, log: { minCheckpointIntervalMs: 100 } });
    try {
      const cp = parseCheckpoint(parseNote(await (await restored.fetch('/api/log/checkpoint', {}, null)).text()).text);
      expect(cp.size).toBeGreaterThanOrEqual(m.log.size);
      expect(cp.origin).toBe(m.log.origin);
      // the restore is in the lab's security events, a notice
      const events = (await (await restored.fetch('/api/security-events?kind=store-restored')).json()) as {
        items: { severity: string; detail: string }[];
      };
      expect(events.items).toHaveLength(1);
      expect(events.items[0]).toMatchObject({ severity: 'notice', detail: expect.stringContaining('consistent with the published checkpoint') });
    } finally {
      await restored.stop();
    }
  }, 120_000);

  test('a checkpoint published after the backup: refused (the entries after it would be lost), or restored with an alarm when the gap is accepted', async () => {
    await waitFor(
      'the log to grow past the backup',
      async () => parseCheckpoint(parseNote(await checkpointOf(t)).text).size > manifestOf(archive).log.size + 10,
      30_000,
    );
    const later = path.join(work, 'published-later.txt');
    writeFileSync(later, await checkpointOf(t));
    const laterSize = parseCheckpoint(parseNote(readFileSync(later, 'utf8')).text).size;
    const dataDir = mkdtempSync(path.join(work, 'gap-'));
    const refused = await labtrace(['restore', '--from', archive, '--checkpoint', later, '--config', configFor(dataDir)]);
    expect(refused.code).toBe(3);
    expect(refused.output).toMatch(new RegExp(`published a checkpoint of size ${laterSize}`));
    expect(readdirSync(dataDir)).toEqual([]);
    // the log key is taken from the manifest (this archive holds no key)
    const accepted = await labtrace(['restore', '--from', archive, '--checkpoint', later, '--accept-gap', '--config', configFor(dataDir)]);
    expect([accepted.code, accepted.output]).toEqual([0, expect.stringContaining('entries lost')]);
    const db = new Database(path.join(dataDir, 'labtrace.sqlite'), { readonly: true });
    try {
      const event = db.prepare("SELECT severity, detail FROM security_events WHERE kind = 'store-restored'").get() as {
        severity: string;
        detail: string;
      };
      expect(event.severity).toBe('alarm');
      expect(event.detail).toContain(`checkpoint of size ${laterSize}`);
    } finally {
      db.close();
    }
  }, 60_000);

  test('a checkpoint of the same log and key with another root at a size the backup holds: the backup contradicts it, nothing restored', async () => {
    const key = parseSignerKey(readFileSync(path.join(t.config.dataDir, 'log.key'), 'utf8').trim());
    const honest = parseCheckpoint(parseNote(published).text);
    const root = new Uint8Array(honest.rootHash);
    root[0] = (root[0] ?? 0) ^ 1;
    const forged = signCheckpoint({ ...honest, rootHash: root }, [ed25519NoteSigner(key)]);
    const file = path.join(work, 'forged.txt');
    writeFileSync(file, forged);
    const dataDir = mkdtempSync(path.join(work, 'fork-'));
    const run = await labtrace(['restore', '--from', archive, '--checkpoint', file, '--config', configFor(dataDir)]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('contradicts the history the lab published');
    expect(readdirSync(dataDir)).toEqual([]);
  }, 60_000);

  test('a checkpoint signed by another key, or of another log: does not verify', async () => {
    // the log's name, another key
    const other = parseSignerKey(formatSignerKey(parseNote(published).signatures[0]?.name ?? 'lab-t', new Uint8Array(32).fill(9)));
    const honest = parseCheckpoint(parseNote(published).text);
    const file = path.join(work, 'other-key.txt');
    writeFileSync(file, signCheckpoint(honest, [ed25519NoteSigner(other)]));
    const dataDir = mkdtempSync(path.join(work, 'other-'));
    const run = await labtrace(['restore', '--from', archive, '--checkpoint', file, '--config', configFor(dataDir)]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('not a checkpoint signed by the log key');
    expect(readdirSync(dataDir)).toEqual([]);
  }, 60_000);

  test('a damaged archive (one byte of the store changed): does not verify, nothing restored', async () => {
    const bytes = readFileSync(archive);
    // the store's bytes follow the manifest's 512-byte header and padded body, and the store's own header
    const at = bytes.indexOf(Buffer.from('SQLite format 3'));
    expect(at).toBeGreaterThan(0);
    bytes[at + 4096 + 100] = (bytes[at + 4096 + 100] ?? 0) ^ 0xff;
    const damaged = path.join(work, 'damaged.tar');
    writeFileSync(damaged, bytes);
    const dataDir = mkdtempSync(path.join(work, 'damaged-'));
    const run = await labtrace(['restore', '--from', damaged, '--unpublished', '--config', configFor(dataDir)]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('the archive is damaged');
    expect(readdirSync(dataDir)).toEqual([]);
  }, 60_000);

  test('never over a store or a key: refused, and what was there is untouched', async () => {
    const live = await labtrace(['restore', '--from', archive, '--unpublished', '--config', configFor(t.config.dataDir)]);
    expect(live.code).toBe(3);
    expect(live.output).toContain('a restore never overwrites a store');
    const dataDir = mkdtempSync(path.join(work, 'key-'));
    writeFileSync(path.join(dataDir, 'log.key'), 'someone else\n');
    const key = await labtrace(['restore', '--from', withKeys, '--unpublished', '--config', configFor(dataDir)]);
    expect(key.code).toBe(3);
    expect(key.output).toContain('a restore never replaces a key');
    expect(readdirSync(dataDir)).toEqual(['log.key']);
    expect(readFileSync(path.join(dataDir, 'log.key'), 'utf8')).toBe('someone else\n');
    // a backup never overwrites either
    const again = await labtrace(['backup', '--out', archive, '--config', configFor(t.config.dataDir)]);
    expect(again.code).toBe(3);
  }, 60_000);

  test('wrong options: exit 2 naming the option; not an archive: does not verify', async () => {
    const noOut = await labtrace(['backup']);
    expect([noOut.code, noOut.output]).toEqual([2, expect.stringContaining('--out: missing')]);
    const both = await labtrace(['restore', '--from', archive, '--checkpoint', 'x', '--unpublished']);
    expect([both.code, both.output]).toEqual([2, expect.stringContaining('--checkpoint and --unpublished')]);
    const unknown = await labtrace(['backup', '--out', 'x', '--bogus']);
    expect(unknown.code).toBe(2);
    const neither = await labtrace(['restore', '--from', archive, '--config', configFor(mkdtempSync(path.join(work, 'n-')))]);
    expect([neither.code, neither.output]).toEqual([3, expect.stringContaining('--unpublished')]);
    const notTar = path.join(work, 'not.tar');
    writeFileSync(notTar, 'hello');
    const dataDir = mkdtempSync(path.join(work, 'nt-'));
    const bad = await labtrace(['restore', '--from', notTar, '--unpublished', '--config', configFor(dataDir)]);
    expect(bad.code).toBe(1);
    expect(existsSync(path.join(dataDir, 'labtrace.sqlite'))).toBe(false);
  }, 60_000);
});
