// Result files end to end, with real processes: the simulator (`labtrace sim drop-files`, a child process) writes
// CSV result files into a folder, a gateway (`labtrace gateway`, a child process) takes them, and the server stores
// their samples and their raw bytes. Values, units and times arrive as written; each sample's signed record names
// the file's SHA-256, and the file served by the server hashes to it; a half-written file is taken only once
// complete; a malformed one is quarantined with its reason and an alarm; a file dropped twice is taken once; a
// gateway killed in the middle of a folder loses nothing and takes nothing twice.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { formatSignerKey, readRecords, type Sample } from '@labtrace/protocols';
import { resultRows, type WrittenFile } from '@labtrace/device-sim';
import { BIN, collect, exitOf } from '../helpers/lab-process.js';
import { seedOf, startServer, waitFor, type TestServer } from '../helpers/server.js';

const GW = 'gw-s';
const INSTRUMENT = 'utm-files';
let t: TestServer;
let dir: string;
let incoming: string;
let gateway: { proc: ChildProcess; output: () => string } | undefined;

function startGateway(): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, [BIN, 'gateway', '--config', path.join(dir, 'gateway.yaml')], {
    env: { ...process.env, LOG_LEVEL: 'info', LABTRACE_GATEWAY_PASSWORD: t.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { proc, output: collect(proc) };
}

/** Runs the simulator's drop-files to its end; the files it wrote, complete. */
async function dropFiles(args: string[]): Promise<WrittenFile[]> {
  const proc = spawn(process.execPath, [BIN, 'sim', 'drop-files', '--folder', incoming, '--decimal-comma', '--zone', 'Europe/Berlin', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collect(proc);
  const code = await exitOf(proc);
  if (code !== 0) throw new Error(`drop-files failed (${String(code)}):\n${output()}`);
  return output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as WrittenFile);
}

/** Every record the server stored for the gateway, decoded from the signed batches' bytes. */
function storedRecords(): Sample[] {
  const rows = t.server.database.sqlite.prepare('SELECT records FROM batch_headers WHERE gateway = ? ORDER BY batch').all(GW) as {
    records: Buffer | null;
  }[];
  const out: Sample[] = [];
  for (const r of rows) if (r.records) readRecords(new Uint8Array(r.records), (record) => void out.push(record.sample));
  return out;
}

const ofFile = (sha256: string): Sample[] => storedRecords().filter((s) => s.file === sha256);

async function waitForFile(file: WrittenFile, ms = 30_000): Promise<Sample[]> {
  await waitFor(`the ${file.rows * 2} samples of ${file.name}`, () => ofFile(file.sha256).length >= file.rows * 2, ms);
  return ofFile(file.sha256);
}

beforeAll(async () => {
  t = await startServer();
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-files-e2e-'));
  incoming = path.join(dir, 'incoming');
  mkdirSync(incoming);
  const dataDir = path.join(dir, 'gateway-data');
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(path.join(dataDir, 'gateway.key'), `${formatSignerKey(GW, seedOf(GW))}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    [
      `gateway: { id: ${GW}, lab: ${t.config.lab} }`,
      `mqtt: { url: "${t.mqttUrl}", username: ${GW} }`,
      'batch: { maxSamples: 100, maxDelayMs: 50 }',
      'instruments:',
      '  - profile: utm-files.yaml',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'utm-files.yaml'),
    [
      'protocol: file',
      `id: ${INSTRUMENT}`,
      'identity: { maker: Zwick, model: testXpert result files, serialNumber: F-1 }',
      'folder: incoming',
      'include: ["*.csv"]',
      // the simulator pauses 500 ms between the pieces of a half-written file
      'stableMs: 1500',
      'parser: { format: csv, delimiter: ";", skipRows: 1, decimalComma: true }',
      'timestamp: { from: Time, format: "dd.MM.yyyy HH:mm:ss.SSS", zone: Europe/Berlin }',
      'points:',
      '  - { name: force, from: "Force [kN]", unit: kN }',
      '  - { name: elongation, from: "Elongation [mm]", unit: mm }',
    ].join('\n'),
  );
  gateway = startGateway();
  await waitFor('the gateway to connect', () => t.server.broker.connectedGateways().includes(GW), 30_000);
}, 60_000);

afterAll(async () => {
  if (gateway && gateway.proc.exitCode === null) {
    gateway.proc.kill('SIGTERM');
    await exitOf(gateway.proc);
  }
  await t.stop();
});

describe('result files', () => {
  test('values, units and times written by another process arrive unchanged; the file served hashes to the signed record', async () => {
    const files = await dropFiles(['--count', '3', '--rows', '40', '--rate', '5']);
    expect(files).toHaveLength(3);
    for (const file of files) {
      const samples = await waitForFile(file);
      const rows = resultRows(file.index, file.rows, file.base);
      expect(samples.filter((s) => s.channel === 'force').map((s) => [s.ts, s.value, s.unit, s.quality])).toEqual(
        rows.map((r) => [r.ts, r.force, 'kN', 'good']),
      );
      expect(samples.filter((s) => s.channel === 'elongation').map((s) => [s.ts, s.value, s.unit])).toEqual(
        rows.map((r) => [r.ts, r.elongation, 'mm']),
      );
      expect(samples.every((s) => s.instrument === INSTRUMENT)).toBe(true);

      // the raw file, from the server, as a lab reader: its SHA-256 is the one in the signed records
      let res = await t.fetch(`/api/raw-files/${file.sha256}`);
      for (let i = 0; res.status === 404 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        res = await t.fetch(`/api/raw-files/${file.sha256}`);
      }
      expect(res.status).toBe(200);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(samples[0]?.file);
      // and the bytes are the simulator's, moved to done/ after they were taken
      await waitFor(`${file.name} in done/`, () => existsSync(path.join(incoming, 'done', file.name)));
      expect(bytes.equals(readFileSync(path.join(incoming, 'done', file.name)))).toBe(true);
    }
    // not for everyone: a client's account and no account at all are refused
    const some = files[0]?.sha256 ?? '';
    expect((await t.fetch(`/api/raw-files/${some}`, {}, 'client')).status).toBe(403);
    expect((await t.fetch(`/api/raw-files/${some}`, {}, null)).status).toBe(401);
    expect((await t.fetch('/api/raw-files/not-a-hash')).status).toBe(400);
  }, 90_000);

  test('a half-written file is taken only once complete', async () => {
    const [file] = await dropFiles(['--kind', 'half-written', '--rows', '60', '--write-ms', '1500', '--first', '100']);
    if (!file) throw new Error('no file written');
    const samples = await waitForFile(file);
    await waitFor('the file in done/', () => existsSync(path.join(incoming, 'done', file.name)));
    // every sample of the file comes from the complete file: no part of it was taken before
    expect(samples).toHaveLength(file.rows * 2);
    // the file's forces are 110 and up (file number 100): no other file has them
    const fromThisFile = storedRecords().filter((s) => s.channel === 'force' && typeof s.value === 'number' && s.value >= 110 && s.value < 120);
    expect(new Set(fromThisFile.map((s) => s.file))).toEqual(new Set([file.sha256]));
    expect(fromThisFile).toHaveLength(file.rows);
    expect(existsSync(path.join(incoming, 'quarantine', file.name))).toBe(false);
  }, 60_000);

  test('a malformed file is quarantined with its reason and an alarm, never deleted', async () => {
    const [file] = await dropFiles(['--kind', 'malformed', '--rows', '5', '--first', '200']);
    if (!file) throw new Error('no file written');
    const quarantined = path.join(incoming, 'quarantine', file.name);
    await waitFor('the file in quarantine/', () => existsSync(`${quarantined}.reason.txt`), 20_000);
    expect(createHash('sha256').update(readFileSync(quarantined)).digest('hex')).toBe(file.sha256);
    const reason = readFileSync(`${quarantined}.reason.txt`, 'utf8');
    expect(reason).toMatch(/line 8/);
    expect(reason).toContain(file.sha256);
    await waitFor(
      'the alarm in the health the server received',
      () => (t.server.ingest.healthOf(INSTRUMENT)?.errors['quarantined'] ?? 0) >= 1,
      20_000,
    );
    expect(gateway?.output()).toMatch(/ALARM: result file could not be parsed/);
    expect(ofFile(file.sha256)).toHaveLength(0);
  }, 60_000);

  test('the same file dropped twice is taken once', async () => {
    const [file] = await dropFiles(['--rows', '10', '--first', '300']);
    if (!file) throw new Error('no file written');
    await waitForFile(file);
    await waitFor('the file in done/', () => existsSync(path.join(incoming, 'done', file.name)));
    copyFileSync(path.join(incoming, 'done', file.name), path.join(incoming, `again-${file.name}`));
    await waitFor('the copy handled', () => !existsSync(path.join(incoming, `again-${file.name}`)), 20_000);
    await waitFor('the duplicate counted', () => (t.server.ingest.healthOf(INSTRUMENT)?.errors['duplicate_file'] ?? 0) >= 1, 20_000);
    expect(ofFile(file.sha256)).toHaveLength(file.rows * 2);
  }, 60_000);

  test('a gateway killed in the middle of a folder loses nothing and takes nothing twice', async () => {
    const running = gateway;
    if (!running) throw new Error('no gateway');
    // 2 files/s: the later files are still being written, or not yet stable, when the first is taken and the gateway is killed
    const dropping = dropFiles(['--count', '8', '--rows', '200', '--rate', '2', '--first', '400']);
    await waitFor('the first file taken', () => readdirSync(path.join(incoming, 'done')).some((n) => n.startsWith('test-004')), 30_000);
    running.proc.kill('SIGKILL');
    await exitOf(running.proc);
    const files = await dropping;
    expect(files).toHaveLength(8);
    gateway = startGateway();
    for (const file of files) {
      const samples = await waitForFile(file, 60_000);
      expect(samples).toHaveLength(file.rows * 2);
      const rows = resultRows(file.index, file.rows, file.base);
      expect(samples.filter((s) => s.channel === 'force').map((s) => s.value)).toEqual(rows.map((r) => r.force));
    }
    expect(readdirSync(incoming).filter((n) => n.endsWith('.csv'))).toEqual([]);
  }, 120_000);
});
