// Modbus RTU through a real serial line (a socat pseudo-terminal pair) and RTU over TCP, against the
// simulator: several units on one bus share one link, and a silent unit does not poison the others.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { parseModbusProfile, type ModbusProfile } from '@labtrace/protocols';
import { Simulator } from '@labtrace/device-sim';
import { LinkPool, ModbusInstrument, type PolledSample } from '../../src/index.js';
import { descriptorsOn, startPtyPair, type PtyPair } from '../helpers/socat.js';

let pty: PtyPair;
let sim: Simulator;
const logger = pino({ level: 'silent' });

function profile(id: string, unitId: number, connection: ModbusProfile['connection']): ModbusProfile {
  return parseModbusProfile({
    id,
    identity: { maker: 'Test', model: 'RTU', serialNumber: id },
    connection,
    unitId,
    pollIntervalMs: 100,
    timeoutMs: 300,
    retries: 0,
    points: [
      { name: 'level', register: 'holding', address: 0, type: 'float32', order: 'ABCD' },
      { name: 'count', register: 'holding', address: 2, type: 'int32', order: 'CDAB' },
    ],
  });
}

beforeAll(async () => {
  pty = await startPtyPair();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      {
        profile: profile('rtu-3', 3, { transport: 'rtu', path: pty.a, baudRate: 19200, parity: 'even', dataBits: 8, stopBits: 1 }),
        model: 'constant',
      },
      {
        profile: profile('rtu-7', 7, { transport: 'rtu', path: pty.a, baudRate: 19200, parity: 'even', dataBits: 8, stopBits: 1 }),
        model: 'constant',
      },
      { profile: profile('rot-1', 1, { transport: 'rtu-over-tcp', host: '127.0.0.1', port: 1 }), model: 'constant', port: 0 },
    ],
  });
  await sim.start();
  sim.instruments.get('rtu-3')?.pin({ level: 3.75, count: -123456 }, Date.now());
  sim.instruments.get('rtu-7')?.pin({ level: 7.5, count: 70000 }, Date.now());
  sim.instruments.get('rot-1')?.pin({ level: 1.25, count: 42 }, Date.now());
});

afterAll(async () => {
  await sim.stop();
  await pty.stop();
});

async function collect(
  instruments: ModbusInstrument[],
  until: (seen: Map<string, PolledSample[]>) => boolean,
  ms = 10_000,
): Promise<Map<string, PolledSample[]>> {
  const seen = new Map<string, PolledSample[]>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; seen ${JSON.stringify([...seen])}`)), ms);
    for (const i of instruments) {
      i.on('samples', (s) => {
        seen.set(i.id, [...(seen.get(i.id) ?? []), ...s]);
        if (until(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
  return seen;
}

const good = (list: PolledSample[] | undefined, channel: string) =>
  (list ?? []).filter((s) => s.channel === channel && s.quality === 'good').map((s) => s.value);

test('two units on one serial bus share one link and read their own values', async () => {
  const pool = new LinkPool({ maxQueue: 100, pacingMs: 0 });
  const bus = { transport: 'rtu', path: pty.b, baudRate: 19200, parity: 'even', dataBits: 8, stopBits: 1 } as const;
  const a = new ModbusInstrument(profile('rtu-3', 3, bus), pool.acquire(bus, 0), logger);
  const b = new ModbusInstrument(profile('rtu-7', 7, bus), pool.acquire(bus, 0), logger);
  expect(pool.all()).toHaveLength(1);
  await a.start();
  await b.start();
  try {
    const seen = await collect([a, b], (s) => good(s.get('rtu-3'), 'count').length >= 2 && good(s.get('rtu-7'), 'count').length >= 2);
    expect(good(seen.get('rtu-3'), 'level')[0]).toBe(3.75);
    expect(good(seen.get('rtu-3'), 'count')[0]).toBe(-123456);
    expect(good(seen.get('rtu-7'), 'level')[0]).toBe(7.5);
    expect(good(seen.get('rtu-7'), 'count')[0]).toBe(70000);
    expect(pool.all()[0]?.counters.crcErrors).toBe(0);
    expect(descriptorsOn(pty.b)).toBe(1);

    // Unit 3 goes silent: its samples turn bad, unit 7 keeps being read on the same bus.
    sim.instruments.get('rtu-3')?.setFault({ kind: 'no-answer' }, Date.now());
    const during = await collect([a, b], (s) => (s.get('rtu-3') ?? []).some((x) => x.quality === 'bad') && good(s.get('rtu-7'), 'level').length >= 3);
    expect((during.get('rtu-3') ?? []).find((x) => x.quality === 'bad')?.reason).toMatch(/unit 3 .* did not answer in 300 ms/);
    expect(good(during.get('rtu-7'), 'level').every((v) => v === 7.5)).toBe(true);
    sim.instruments.get('rtu-3')?.clearFault(Date.now());
    const after = await collect([a, b], (s) => good(s.get('rtu-3'), 'level').length >= 1, 40_000);
    expect(good(after.get('rtu-3'), 'level')[0]).toBe(3.75);
  } finally {
    await a.stop();
    await b.stop();
    await Promise.all(pool.all().map((l) => l.close()));
  }
  // the serial port is closed, not only its stream destroyed (which leaves the device open and polled)
  expect(descriptorsOn(pty.b)).toBe(0);
}, 60_000);

test('RTU over TCP', async () => {
  const port = sim.instruments.get('rot-1')?.server.port;
  if (port === undefined) throw new Error('no rtu-over-tcp endpoint');
  const pool = new LinkPool({ maxQueue: 100, pacingMs: 0 });
  const conn = { transport: 'rtu-over-tcp', host: '127.0.0.1', port } as const;
  const i = new ModbusInstrument(profile('rot-1', 1, conn), pool.acquire(conn, 0), logger);
  await i.start();
  try {
    const seen = await collect([i], (s) => good(s.get('rot-1'), 'count').length >= 1);
    expect(good(seen.get('rot-1'), 'level')[0]).toBe(1.25);
    expect(good(seen.get('rot-1'), 'count')[0]).toBe(42);
  } finally {
    await i.stop();
    await Promise.all(pool.all().map((l) => l.close()));
  }
});
