// Balances in the gateway against real peers: the simulated balance over TCP (MT-SICS, as a serial
// device server carries it) and on a socat pseudo-terminal pair (SBI, a real serial line). Values
// pinned in the simulator arrive unchanged with their unit and quality; faults turn into qualities and
// health counters; a reset socket and a pty pair closed and made again recover; a dead balance on the
// same gateway delays no other.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseBalanceProfile, type BalanceProfile, type BalanceProfileInput, type DeviceProfile } from '@labtrace/protocols';
import { Simulator } from '@labtrace/device-sim';
import { BalanceInstrument, Gateway, gatewayConfigSchema, sampleOf, type PolledSample } from '../../src/index.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';

const logger = pino({ level: 'silent' });
let sim: Simulator;
let pty: PtyPair;
let sicsPort: number;
let sbiPort: number;

const serialLine = { baudRate: 9600, dataBits: 7, parity: 'odd', stopBits: 1 } as const;

function balance(id: string, input: Partial<Omit<BalanceProfileInput, 'protocol'>>): BalanceProfile {
  return parseBalanceProfile({
    id,
    identity: { maker: 'Test', model: 'Balance', serialNumber: `SN-${id}` },
    dialect: 'mt-sics',
    connection: { transport: 'tcp', host: '127.0.0.1', port: 1 },
    pollIntervalMs: 100,
    timeoutMs: 500,
    points: [{ name: 'mass', unit: 'g' }],
    ...input,
  });
}

beforeAll(async () => {
  pty = await startPtyPair();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      { profile: balance('sics-1', {}), model: 'constant', port: 0 },
      { profile: balance('sbi-tcp', { dialect: 'sbi', mode: 'unsolicited' }), model: 'constant', port: 0 },
      { profile: balance('sbi-pty', { dialect: 'sbi', connection: { transport: 'serial', path: pty.a, ...serialLine } }), model: 'constant' },
    ],
  });
  await sim.start();
  sicsPort = sim.instruments.get('sics-1')?.server.port ?? 0;
  sbiPort = sim.instruments.get('sbi-tcp')?.server.port ?? 0;
});

afterAll(async () => {
  await sim.stop();
  await pty.stop();
});

/** Samples of the instruments until `until` holds; the collected ones by instrument. */
async function collect(
  sources: BalanceInstrument[],
  until: (seen: Map<string, PolledSample[]>) => boolean,
  ms = 15_000,
): Promise<Map<string, PolledSample[]>> {
  const seen = new Map<string, PolledSample[]>();
  const listeners: [BalanceInstrument, (s: PolledSample[]) => void][] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; seen ${JSON.stringify([...seen])}`)), ms);
      for (const source of sources) {
        const listener = (samples: PolledSample[]): void => {
          seen.set(source.id, [...(seen.get(source.id) ?? []), ...samples]);
          if (until(seen)) {
            clearTimeout(timer);
            resolve();
          }
        };
        source.on('samples', listener);
        listeners.push([source, listener]);
      }
    });
  } finally {
    for (const [source, listener] of listeners) source.off('samples', listener);
  }
  return seen;
}

const goodValues = (list: PolledSample[] | undefined): PolledSample['value'][] =>
  (list ?? []).filter((s) => s.quality === 'good').map((s) => s.value);
const pin = (id: string, mass: number): void => void sim.instruments.get(id)?.pin({ mass }, Date.now());

describe('quality of a reading', () => {
  const profile = balance('q', {});
  test('stable: good; moving: uncertain (unstable); another unit: bad, never converted; busy: no sample', () => {
    expect(sampleOf(profile, { kind: 'weight', value: 1.5, unit: 'g', stable: true }, 7)).toEqual({
      instrument: 'q',
      channel: 'mass',
      ts: 7,
      value: 1.5,
      unit: 'g',
      quality: 'good',
    });
    expect(sampleOf(profile, { kind: 'weight', value: 1.5, unit: '', stable: false }, 7)).toMatchObject({
      value: 1.5,
      unit: 'g',
      quality: 'uncertain',
      reason: 'unstable',
    });
    expect(sampleOf(profile, { kind: 'weight', value: 0.0015, unit: 'kg', stable: true }, 7)).toMatchObject({
      value: null,
      unit: 'g',
      quality: 'bad',
      reason: 'unit: the balance printed 0.0015 kg, the profile expects g',
    });
    expect(sampleOf(profile, { kind: 'overload' }, 7)).toMatchObject({ value: null, quality: 'bad', reason: 'overload' });
    expect(sampleOf(profile, { kind: 'underload' }, 7)).toMatchObject({ value: null, quality: 'bad', reason: 'underload' });
    expect(sampleOf(profile, { kind: 'error', code: 'ES', meaning: 'syntax error' }, 7)).toMatchObject({
      quality: 'bad',
      reason: 'ES: syntax error',
    });
    expect(sampleOf(profile, { kind: 'busy' }, 7)).toBeUndefined();
  });
});

test('MT-SICS over TCP: a pinned weight arrives unchanged; moving, overload, error and garbage replies are qualified and counted', async () => {
  const source = new BalanceInstrument(balance('sics-1', { connection: { transport: 'tcp', host: '127.0.0.1', port: sicsPort } }), logger);
  pin('sics-1', 100.25);
  await source.start();
  try {
    const first = await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    const samples = first.get('sics-1') ?? [];
    // the first look at a new weight is while it settles
    expect(samples[0]).toMatchObject({ channel: 'mass', value: 100.25, unit: 'g', quality: 'uncertain', reason: 'unstable' });
    expect(samples.find((s) => s.quality === 'good')).toMatchObject({ value: 100.25, unit: 'g' });
    expect(source.getHealth()).toMatchObject({ instrument: 'sics-1', connected: true });

    sim.instruments.get('sics-1')?.setFault({ kind: 'overload' }, Date.now());
    const over = await collect([source], (s) => (s.get('sics-1') ?? []).some((x) => x.quality === 'bad'));
    expect((over.get('sics-1') ?? []).find((x) => x.quality === 'bad')).toMatchObject({ value: null, unit: 'g', reason: 'overload' });
    sim.instruments.get('sics-1')?.clearFault(Date.now(), 'overload');

    sim.instruments.get('sics-1')?.setFault({ kind: 'error-reply', code: 'ES', count: 1 }, Date.now());
    const error = await collect([source], (s) => (s.get('sics-1') ?? []).some((x) => x.reason?.startsWith('ES') === true));
    expect((error.get('sics-1') ?? []).find((x) => x.quality === 'bad')?.reason).toBe('ES: syntax error: the balance did not recognize the command');
    expect(source.getHealth().errors['error_ES']).toBe(1);

    sim.instruments.get('sics-1')?.setFault({ kind: 'garbage', count: 2 }, Date.now());
    const garbage = await collect([source], (s) => (s.get('sics-1') ?? []).filter((x) => x.reason?.startsWith('invalid reply') === true).length >= 2);
    expect((garbage.get('sics-1') ?? []).find((x) => x.quality === 'bad')?.reason).toMatch(/^invalid reply: balance reply .*control characters/);
    expect(source.getHealth().errors['invalid_reply']).toBe(2);
    // and it goes on reading
    const after = await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    expect(goodValues(after.get('sics-1'))[0]).toBe(100.25);
  } finally {
    await source.stop();
    sim.instruments.get('sics-1')?.clearFault(Date.now());
  }
}, 60_000);

test('a weight printed in another unit than the profile expects is stored bad with the reason', async () => {
  const source = new BalanceInstrument(
    balance('sics-1', { connection: { transport: 'tcp', host: '127.0.0.1', port: sicsPort }, points: [{ name: 'mass', unit: 'kg' }] }),
    logger,
  );
  pin('sics-1', 100.25);
  await source.start();
  try {
    const seen = await collect([source], (s) => (s.get('sics-1') ?? []).some((x) => x.quality === 'bad'));
    expect((seen.get('sics-1') ?? []).find((x) => x.quality === 'bad')).toMatchObject({
      value: null,
      unit: 'kg',
      reason: 'unit: the balance printed 100.25 g, the profile expects kg',
    });
    expect(goodValues(seen.get('sics-1'))).toEqual([]);
  } finally {
    await source.stop();
  }
});

test('a TCP reset: samples turn bad with the reason, the socket reopens with back-off and the weight comes back', async () => {
  const source = new BalanceInstrument(balance('sics-1', { connection: { transport: 'tcp', host: '127.0.0.1', port: sicsPort } }), logger);
  pin('sics-1', 42.5);
  await source.start();
  try {
    await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    sim.instruments.get('sics-1')?.setFault({ kind: 'disconnect', ms: 600 }, Date.now());
    const down = await collect([source], (s) => (s.get('sics-1') ?? []).some((x) => x.quality === 'bad'));
    expect((down.get('sics-1') ?? []).find((x) => x.quality === 'bad')?.reason).toMatch(/tcp 127\.0\.0\.1:\d+: /);
    const up = await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    expect(goodValues(up.get('sics-1'))[0]).toBe(42.5);
    expect(source.getHealth().connected).toBe(true);
    expect(source.getHealth().errors['connect']).toBeGreaterThanOrEqual(1);
  } finally {
    await source.stop();
    sim.instruments.get('sics-1')?.clearFault(Date.now());
  }
}, 60_000);

test('SBI printing on its own, read unsolicited over TCP', async () => {
  const source = new BalanceInstrument(
    balance('sbi-tcp', { dialect: 'sbi', mode: 'unsolicited', connection: { transport: 'tcp', host: '127.0.0.1', port: sbiPort } }),
    logger,
  );
  pin('sbi-tcp', -0.0125);
  await source.start();
  try {
    const seen = await collect([source], (s) => goodValues(s.get('sbi-tcp')).length >= 2);
    expect(goodValues(seen.get('sbi-tcp'))).toEqual([-0.0125, -0.0125]);
    expect(source.getHealth().polls).toBe(0);
  } finally {
    await source.stop();
  }
});

test('SBI on a serial line (socat pty at 7O1): the pair closed and made again, and reading resumes', async () => {
  const source = new BalanceInstrument(
    balance('sbi-pty', { dialect: 'sbi', connection: { transport: 'serial', path: pty.b, ...serialLine } }),
    logger,
  );
  pin('sbi-pty', 12.3456);
  await source.start();
  try {
    const before = await collect([source], (s) => goodValues(s.get('sbi-pty')).length >= 1);
    expect(goodValues(before.get('sbi-pty'))[0]).toBe(12.3456);
    // the cable pulled: both ends of the pair go away
    const links = { a: pty.a, b: pty.b };
    await pty.stop(true);
    const down = await collect([source], (s) => (s.get('sbi-pty') ?? []).some((x) => x.quality === 'bad'));
    expect((down.get('sbi-pty') ?? []).find((x) => x.quality === 'bad')?.reason).toMatch(/serial /);
    expect(source.getHealth().connected).toBe(false);
    // plugged back in: the same device names again
    pty = await startPtyPair(links);
    pin('sbi-pty', 12.5);
    const after = await collect([source], (s) => goodValues(s.get('sbi-pty')).length >= 1, 30_000);
    expect(goodValues(after.get('sbi-pty'))[0]).toBe(12.5);
    expect(source.getHealth().connected).toBe(true);
  } finally {
    await source.stop();
  }
}, 60_000);

test('on one gateway, a balance that never answers delays no other instrument', async () => {
  // a serial device server whose balance is switched off: it accepts the connection and says nothing
  const silent = net.createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-balance-'));
  const profiles: DeviceProfile[] = [
    balance('dead', { connection: { transport: 'tcp', host: '127.0.0.1', port: silentPort }, timeoutMs: 5000 }),
    balance('sics-1', { connection: { transport: 'tcp', host: '127.0.0.1', port: sicsPort } }),
  ];
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-balances', lab: 'lab' },
    mqtt: { url: 'mqtt://127.0.0.1:1', username: 'gw-balances' },
    instruments: [{ profile: 'dead.yaml' }, { profile: 'live.yaml' }],
  });
  const gateway = new Gateway({ config, profiles, dataDir, password: 'unused', instrumentPasswords: new Map() }, logger);
  const sources = gateway.sources.filter((s): s is BalanceInstrument => s instanceof BalanceInstrument);
  expect(sources.map((s) => s.id)).toEqual(['dead', 'sics-1']);
  pin('sics-1', 7.5);
  await Promise.all(sources.map((s) => s.start()));
  try {
    // the dead balance's first poll waits 5 s for a reply; meanwhile the live one is read over and over
    const seen = await collect(sources, (s) => (s.get('dead') ?? []).length > 0);
    expect(goodValues(seen.get('sics-1')).length).toBeGreaterThanOrEqual(5);
    expect(goodValues(seen.get('sics-1')).every((v) => v === 7.5)).toBe(true);
    expect(seen.get('dead')?.[0]).toMatchObject({ quality: 'bad', reason: 'no reply within 5000 ms' });
    const health = gateway.healthMessage().instruments;
    expect(health.find((h) => h.instrument === 'dead')).toMatchObject({ connected: true, errors: { timeout: 1 }, lastGood: null });
    expect(health.find((h) => h.instrument === 'sics-1')?.lastGood).not.toBeNull();
  } finally {
    await Promise.all(sources.map((s) => s.stop()));
    gateway.outbox.close();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
}, 60_000);

test('a busy balance gives no sample: it is counted in health, and the weight returns when it is free', async () => {
  const source = new BalanceInstrument(balance('sics-1', { connection: { transport: 'tcp', host: '127.0.0.1', port: sicsPort } }), logger);
  pin('sics-1', 5.5);
  await source.start();
  try {
    await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    sim.instruments.get('sics-1')?.setFault({ kind: 'busy' }, Date.now());
    const busy = (): number => source.getHealth().errors['busy'] ?? 0;
    await waitUntil(() => busy() >= 1);
    // every poll from here on is answered busy: none of them may give a sample
    const during: PolledSample[] = [];
    const listener = (s: PolledSample[]): void => void during.push(...s);
    source.on('samples', listener);
    await waitUntil(() => busy() >= 4);
    source.off('samples', listener);
    expect(during).toEqual([]);
    sim.instruments.get('sics-1')?.clearFault(Date.now(), 'busy');
    const after = await collect([source], (s) => goodValues(s.get('sics-1')).length >= 1);
    expect(goodValues(after.get('sics-1'))[0]).toBe(5.5);
  } finally {
    await source.stop();
    sim.instruments.get('sics-1')?.clearFault(Date.now());
  }
}, 60_000);

async function waitUntil(check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
