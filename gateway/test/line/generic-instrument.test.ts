// The generic line dialect against real peers: an instrument printing on its own on a serial line (a socat
// pseudo-terminal pair, the lines written by this test as the instrument), and the simulated MT-SICS balance
// over TCP polled with a request and a pattern. Values arrive unchanged with their units; a line that does not
// match and a group that holds no number are counted and reported; a pulled cable recovers.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { SerialPort } from 'serialport';
import { parseBalanceProfile, parseLineProfile, type LineProfileInput } from '@labtrace/protocols';
import { Simulator } from '@labtrace/device-sim';
import { GenericLineInstrument, type PolledSample } from '../../src/index.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';

const logger = pino({ level: 'silent' });
let sim: Simulator;
let balancePort: number;

function instrument(id: string, input: Partial<Omit<LineProfileInput, 'protocol'>>) {
  return parseLineProfile({
    id,
    identity: { maker: 'Test', model: 'pH meter', serialNumber: `SN-${id}` },
    connection: { transport: 'tcp', host: '127.0.0.1', port: 1 },
    pattern: '^pH (?<ph>\\S+) T (?<temp>\\S+) C$',
    points: [
      { name: 'ph', group: 'ph', unit: 'pH', decimalComma: true },
      { name: 'temp', group: 'temp', unit: '°C', decimalComma: true },
    ],
    ...input,
  });
}

beforeAll(async () => {
  const balance = parseBalanceProfile({
    id: 'bal-1',
    identity: { maker: 'Test', model: 'Balance', serialNumber: 'B-1' },
    dialect: 'mt-sics',
    connection: { transport: 'tcp', host: '127.0.0.1', port: 1 },
    pollIntervalMs: 100,
    points: [{ name: 'mass', unit: 'g' }],
  });
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [{ profile: balance, model: 'constant', port: 0, pin: { mass: 250.125 } }],
  });
  await sim.start();
  balancePort = sim.instruments.get('bal-1')?.server.port ?? 0;
});

afterAll(async () => {
  await sim.stop();
});

async function collect(source: GenericLineInstrument, until: (seen: PolledSample[]) => boolean, ms = 15_000): Promise<PolledSample[]> {
  const seen: PolledSample[] = [];
  let listener: ((s: PolledSample[]) => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; seen ${JSON.stringify(seen).slice(0, 2000)}`)), ms);
      listener = (samples) => {
        seen.push(...samples);
        if (until(seen)) {
          clearTimeout(timer);
          resolve();
        }
      };
      source.on('samples', listener);
    });
  } finally {
    if (listener) source.off('samples', listener);
  }
  return seen;
}

/** The instrument's end of the serial line: it prints a line every 50 ms until told to stop. */
async function printer(path: string, line: () => string): Promise<{ stop(): Promise<void> }> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on('error', () => undefined);
  const timer = setInterval(() => {
    if (port.isOpen) port.write(Buffer.from(line(), 'latin1'));
  }, 50);
  return {
    stop: async () => {
      clearInterval(timer);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}

test('unsolicited on a serial line: decimal commas read, units kept; a line that does not match and a group without a number are counted; a pulled cable recovers', async () => {
  // a pair of its own, so that the test can be run again after a failure left its line unplugged
  let pty: PtyPair = await startPtyPair();
  let text = 'pH 7,012 T 23,4 C\r\n';
  let print = await printer(pty.a, () => text);
  const source = new GenericLineInstrument(instrument('ph-1', { connection: { transport: 'serial', path: pty.b } }), logger);
  await source.start();
  const health = (): string => JSON.stringify(source.getHealth());
  try {
    const first = await collect(source, (s) => s.length >= 4);
    expect(first.slice(0, 2)).toEqual([
      { instrument: 'ph-1', channel: 'ph', ts: expect.any(Number), value: 7.012, unit: 'pH', quality: 'good' },
      { instrument: 'ph-1', channel: 'temp', ts: expect.any(Number), value: 23.4, unit: '°C', quality: 'good' },
    ]);
    expect(source.getHealth().polls).toBe(0);

    // the probe is out of the sample: the meter prints dashes for the temperature
    text = 'pH 6,998 T ---- C\r\n';
    const dashes = await collect(source, (s) => s.some((x) => x.quality === 'bad'));
    expect(dashes.find((x) => x.quality === 'bad')).toMatchObject({
      channel: 'temp',
      value: null,
      unit: '°C',
      reason: 'group temp: "----" is not a number',
    });
    expect(dashes.find((x) => x.channel === 'ph' && x.value === 6.998)).toMatchObject({ quality: 'good' });
    expect(source.getHealth().errors['invalid_value']).toBeGreaterThanOrEqual(1);

    // noise on the line: counted, never a sample
    text = 'p\u0000H ?? 12\r\n';
    const before = source.getHealth().errors['invalid_reply'] ?? 0;
    const during: PolledSample[] = [];
    const listener = (s: PolledSample[]): void => void during.push(...s);
    source.on('samples', listener);
    await waitUntil(() => (source.getHealth().errors['invalid_reply'] ?? 0) >= before + 3, health);
    source.off('samples', listener);
    expect(during.filter((x) => x.value === 12)).toEqual([]);

    // the cable pulled, then plugged back in
    text = 'pH 7,5 T 20,0 C\r\n';
    await print.stop();
    const links = { a: pty.a, b: pty.b };
    await pty.stop(true);
    await waitUntil(() => !source.getHealth().connected, health, 30_000);
    pty = await startPtyPair(links);
    print = await printer(pty.a, () => text);
    const after = await collect(source, (s) => s.some((x) => x.channel === 'temp' && x.value === 20), 30_000);
    expect(after.filter((x) => x.quality === 'good').map((x) => x.value)).toEqual(expect.arrayContaining([7.5, 20]));
    expect(source.getHealth().connected).toBe(true);
  } finally {
    await source.stop();
    await print.stop();
    await pty.stop();
  }
}, 90_000);

test('polled over TCP with a request: the pinned weight of a balance read by a pattern arrives unchanged with its unit', async () => {
  const source = new GenericLineInstrument(
    instrument('bal-generic', {
      connection: { transport: 'tcp', host: '127.0.0.1', port: balancePort },
      request: 'SI\r\n',
      pattern: '^S S +(?<mass>-?\\d+\\.\\d+) g$',
      pollIntervalMs: 100,
      timeoutMs: 2000,
      points: [{ name: 'mass', group: 'mass', unit: 'g' }],
    }),
    logger,
  );
  await source.start();
  try {
    const seen = await collect(source, (s) => s.some((x) => x.quality === 'good'));
    // while the pan settles the balance answers S D: no match, so the poll is bad with the reason
    const bad = seen.filter((x) => x.quality === 'bad');
    for (const b of bad) expect(b.reason).toMatch(/^invalid reply: line "S D +250\.1250 g" does not match the pattern/);
    expect(seen.find((x) => x.quality === 'good')).toMatchObject({ channel: 'mass', value: 250.125, unit: 'g' });
    expect(source.getHealth().polls).toBeGreaterThanOrEqual(1);
    expect(source.getHealth().connected).toBe(true);
  } finally {
    await source.stop();
  }
}, 30_000);

async function waitUntil(check: () => boolean, state: () => string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms; the source's health: ${state()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
