// The gateway against libmodbus's unit-test server (built here from Debian's libmodbus-dev examples):
// an implementation nobody here wrote, with trap addresses for a busy device, a reply with a wrong
// transaction id, a slow reply and a reply sent byte by byte.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { parseModbusProfile } from '@labtrace/protocols';
import { LinkPool, ModbusInstrument, type PolledSample } from '../../src/index.js';

const EXAMPLES = '/usr/share/doc/libmodbus-dev/examples';
const PORT = 1502; // fixed in unit-test-server.c
let dir: string;
let server: ChildProcess;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-libmodbus-'));
  for (const f of ['unit-test-server.c', 'unit-test.h']) copyFileSync(path.join(EXAMPLES, f), path.join(dir, f));
  const flags = execFileSync('pkg-config', ['--libs', '--cflags', 'libmodbus'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('gcc', [path.join(dir, 'unit-test-server.c'), '-o', path.join(dir, 'uts'), ...flags]);
  server = spawn(path.join(dir, 'uts'), ['tcp'], { stdio: 'ignore' });
  // it accepts one client: wait until it listens without connecting to it
  for (let i = 0; i < 100; i++) {
    const listening = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(true));
      probe.listen(PORT, '127.0.0.1', () => probe.close(() => resolve(false)));
    });
    if (listening) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the libmodbus unit-test server did not start');
}, 60_000);

afterAll(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('values, a busy device, a wrong transaction id, a slow and a byte-by-byte reply', async () => {
  const profile = parseModbusProfile({
    id: 'libmodbus',
    identity: { maker: 'libmodbus', model: 'unit-test-server', serialNumber: '3.1' },
    connection: { transport: 'tcp', host: '127.0.0.1', port: PORT },
    unitId: 17,
    pollIntervalMs: 5000,
    timeoutMs: 1000,
    retries: 1,
    limits: { maxRegisters: 1 }, // one request per trap address
    points: [
      { name: 'input', register: 'input', address: 0x108, type: 'uint16' },
      { name: 'first', register: 'holding', address: 0x160, type: 'uint16' },
      { name: 'busy', register: 'holding', address: 0x170, type: 'uint16' },
      { name: 'slow', register: 'holding', address: 0x172, type: 'uint16' },
      { name: 'bytewise', register: 'holding', address: 0x173, type: 'uint16' },
      { name: 'wrongtid', register: 'holding', address: 0x171, type: 'uint16' },
    ],
  });
  const pool = new LinkPool({ maxQueue: 10, pacingMs: 0 });
  const link = pool.acquire(profile.connection, 0);
  const instrument = new ModbusInstrument(profile, link, pino({ level: 'silent' }));
  const samples = await new Promise<PolledSample[]>((resolve) => {
    instrument.once('samples', resolve);
    void instrument.start();
  });
  await instrument.stop();
  await pool.release(link);
  const by = Object.fromEntries(samples.map((s) => [s.channel, s]));
  expect(by['input']).toMatchObject({ value: 10, quality: 'good' });
  expect(by['first']).toMatchObject({ value: 0, quality: 'good' });
  expect(by['busy']?.reason).toMatch(/exception 6 \(server device busy\)/);
  expect(instrument.getHealth().errors['exception_6']).toBe(2); // retried once
  expect(by['slow']).toMatchObject({ value: 0, quality: 'good' });
  expect(by['bytewise']).toMatchObject({ value: 0, quality: 'good' });
  // the reply with another transaction id is never taken for the answer
  expect(by['wrongtid']).toMatchObject({ value: null, quality: 'bad' });
  expect(by['wrongtid']?.reason).toMatch(/did not answer in 1000 ms/);
  expect(link.counters.staleReplies).toBeGreaterThanOrEqual(1);
}, 30_000);
