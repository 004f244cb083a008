// SCPI instruments in the gateway against the simulated multimeter over TCP: pinned values arrive unchanged
// with their units; an instrument that is not the profile's is not read and health says why; the error queue
// is read after each cycle, counted and reported; a query that times out gives a bad sample, the exchange is
// put back in step and a late reply is never taken for another point's; noise, overload and a TCP reset are
// qualified, counted and recovered from; a dead instrument on the same gateway delays no other.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseScpiProfile, type DeviceProfile, type ScpiProfile, type ScpiProfileInput } from '@labtrace/protocols';
import { Simulator, type ScpiServer } from '@labtrace/device-sim';
import { Gateway, gatewayConfigSchema, ScpiInstrument, scpiSample, type PolledSample } from '../../src/index.js';

const logger = pino({ level: 'silent' });
let sim: Simulator;
let port: number;

const PINS = { volt: 1.5, curr: 0.0025, res: 1000.25 };
const IDN = { manufacturer: 'Keysight Technologies', model: '34465A', serialNumber: 'MY5700123' };

function dmm(id: string, input: Partial<Omit<ScpiProfileInput, 'protocol'>> = {}): ScpiProfile {
  return parseScpiProfile({
    id,
    identity: { maker: 'Keysight', model: '34465A', serialNumber: 'MY5700123' },
    connection: { transport: 'tcp', host: '127.0.0.1', port: port ?? 1 },
    idn: IDN,
    pollIntervalMs: 50,
    // the simulator answers at once: a long timeout keeps a loaded machine from turning replies into timeouts
    timeoutMs: 2000,
    points: [
      { name: 'volt', query: 'MEAS:VOLT:DC?', unit: 'V' },
      { name: 'curr', query: 'MEAS:CURR:DC?', unit: 'A' },
      { name: 'res', query: 'MEAS:RES?', unit: 'Ohm' },
    ],
    ...input,
  });
}

const server = (): ScpiServer => sim.instruments.get('dmm-1')?.server as ScpiServer;
const instrument = () => {
  const i = sim.instruments.get('dmm-1');
  if (i === undefined) throw new Error('no dmm-1');
  return i;
};

beforeAll(async () => {
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [{ profile: dmm('dmm-1'), model: 'constant', port: 0, pin: PINS }],
  });
  await sim.start();
  port = server().port;
});

afterAll(async () => {
  await sim.stop();
});

/** Samples of the sources until `until` holds; the collected ones by instrument. */
async function collect(
  sources: ScpiInstrument[],
  until: (seen: Map<string, PolledSample[]>) => boolean,
  ms = 15_000,
): Promise<Map<string, PolledSample[]>> {
  const seen = new Map<string, PolledSample[]>();
  const listeners: [ScpiInstrument, (s: PolledSample[]) => void][] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; seen ${JSON.stringify([...seen]).slice(0, 2000)}`)), ms);
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

const good = (list: PolledSample[] | undefined, channel?: string): PolledSample[] =>
  (list ?? []).filter((s) => s.quality === 'good' && (channel === undefined || s.channel === channel));
const allChannelsGood = (list: PolledSample[] | undefined): boolean => ['volt', 'curr', 'res'].every((c) => good(list, c).length > 0);
/** every good sample holds its channel's pinned value: a late reply taken for another query would break this */
const expectOnlyPinned = (list: PolledSample[] | undefined): void => {
  for (const s of good(list)) expect(s.value).toBe(PINS[s.channel as keyof typeof PINS]);
};

describe('a reply as a sample', () => {
  const profile = dmm('q');
  const point = profile.points[0];
  if (point === undefined) throw new Error('no point');
  test('a number is good; 9.9E37 is overload and 9.91E37 no value, both bad; text is an invalid reply', () => {
    expect(scpiSample(profile, point, '+1.50000000E+00', 5)).toEqual({
      instrument: 'q',
      channel: 'volt',
      ts: 5,
      value: 1.5,
      unit: 'V',
      quality: 'good',
    });
    expect(scpiSample(profile, point, '-9.9E37', 5)).toMatchObject({
      value: null,
      quality: 'bad',
      reason: 'overload: MEAS:VOLT:DC? returned -9.9E37',
    });
    expect(scpiSample(profile, point, '+9.91000000E+37', 5)).toMatchObject({ value: null, quality: 'bad' });
    expect(scpiSample(profile, point, '1.0,2.0', 5).reason).toMatch(/^invalid reply to MEAS:VOLT:DC\?: .*several values/);
    expect(scpiSample(profile, point, 'OVLD', 5).reason).toMatch(/^invalid reply to MEAS:VOLT:DC\?: .*not a number/);
  });
});

test('pinned values arrive unchanged with their units, after the identity was checked', async () => {
  const source = new ScpiInstrument(dmm('dmm-1'), logger);
  await source.start();
  try {
    const seen = await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    const samples = seen.get('dmm-1') ?? [];
    expect(good(samples, 'volt')[0]).toMatchObject({ instrument: 'dmm-1', value: 1.5, unit: 'V' });
    expect(good(samples, 'curr')[0]).toMatchObject({ value: 0.0025, unit: 'A' });
    expect(good(samples, 'res')[0]).toMatchObject({ value: 1000.25, unit: 'Ohm' });
    expect(samples.filter((s) => s.quality !== 'good')).toEqual([]);
    expectOnlyPinned(samples);
    const health = source.getHealth();
    expect(health).toMatchObject({ instrument: 'dmm-1', connected: true });
    expect(health.errors).toEqual({});
    expect(health.problem).toBeUndefined();
    expect(health.lastGood).not.toBeNull();
  } finally {
    await source.stop();
  }
});

test('an instrument that is not the profile’s is not read: its points are bad with the reason, health says why', async () => {
  const valuesBefore = server().sent.value;
  const source = new ScpiInstrument(dmm('dmm-1', { idn: { ...IDN, serialNumber: 'MY0000001' } }), logger);
  await source.start();
  try {
    const seen = await collect([source], (s) => (s.get('dmm-1') ?? []).length >= 6);
    const samples = seen.get('dmm-1') ?? [];
    expect(samples.every((s) => s.quality === 'bad' && s.value === null)).toBe(true);
    expect(samples[0]?.reason).toMatch(/^not read: identity: .*serial number "MY5700123", expected "MY0000001"/);
    const health = source.getHealth();
    expect(health.problem).toMatch(/^identity: the instrument at tcp 127\.0\.0\.1:\d+ answers "Keysight Technologies,34465A,MY5700123,1\.0"/);
    expect(health.errors['identity_mismatch']).toBeGreaterThanOrEqual(2);
    // not one measurement query was sent
    expect(server().sent.value).toBe(valuesBefore);
  } finally {
    await source.stop();
  }
  const other = new ScpiInstrument(dmm('dmm-1', { idn: { manufacturer: 'Fluke', model: '8846A' } }), logger);
  await other.start();
  try {
    const seen = await collect([other], (s) => (s.get('dmm-1') ?? []).length >= 3);
    expect(seen.get('dmm-1')?.[0]?.reason).toMatch(/manufacturer "Keysight Technologies", expected "Fluke"; model "34465A", expected "8846A"/);
  } finally {
    await other.stop();
  }
});

test('the error queue is read after each cycle: errors are counted and reported, and that cycle’s readings are uncertain', async () => {
  const source = new ScpiInstrument(dmm('dmm-1'), logger);
  await source.start();
  try {
    await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    // every measurement query logs -222 from now on
    instrument().setFault({ kind: 'error-queue', code: -222, message: 'Data out of range' }, Date.now());
    const seen = await collect([source], (s) => (s.get('dmm-1') ?? []).some((x) => x.quality === 'uncertain'));
    instrument().clearFault(Date.now());
    const flagged = (seen.get('dmm-1') ?? []).filter((x) => x.quality === 'uncertain');
    // the whole cycle: the three readings, with their values, none of them good
    expect(flagged.map((x) => x.channel).sort()).toEqual(['curr', 'res', 'volt']);
    const reason = flagged[0]?.reason ?? '';
    // one entry per query that logged it (the fault may have begun in the middle of the cycle)
    expect(reason).toMatch(/^instrument error: -222,"Data out of range"(; -222,"Data out of range"){0,2}$/);
    const logged = reason.split(';').length;
    for (const s of flagged) {
      expect(s.value).toBe(PINS[s.channel as keyof typeof PINS]);
      expect(s.reason).toBe(reason);
    }
    expect(source.getHealth().errors['instrument_error']).toBeGreaterThanOrEqual(logged);
    expect(source.getHealth().errors['error_-222']).toBe(source.getHealth().errors['instrument_error']);
    expect(source.getHealth().problem).toMatch(/^instrument error: -222,"Data out of range"/);
    // the queue is empty again: good readings, and the problem is gone
    const after = await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    expectOnlyPinned(after.get('dmm-1'));
    expect(source.getHealth().problem).toBeUndefined();
    expect(server().errorQueue).toEqual([]);
  } finally {
    await source.stop();
    instrument().clearFault(Date.now());
  }
});

test('a query the instrument does not know times out: that point is bad, the others are read, and -113 is reported', async () => {
  const profile = dmm('dmm-1', {
    points: [
      { name: 'volt', query: 'MEAS:VOLT:DC?', unit: 'V' },
      { name: 'freq', query: 'MEAS:FREQ?', unit: 'Hz', timeoutMs: 200 },
      { name: 'res', query: 'MEAS:RES?', unit: 'Ohm' },
    ],
  });
  const source = new ScpiInstrument(profile, logger);
  await source.start();
  try {
    const seen = await collect([source], (s) => (s.get('dmm-1') ?? []).filter((x) => x.channel === 'res').length >= 2);
    const samples = seen.get('dmm-1') ?? [];
    expect(samples.find((x) => x.channel === 'freq')).toMatchObject({ value: null, quality: 'bad', reason: 'no reply to MEAS:FREQ? within 200 ms' });
    // read after the lost one, put back in step, with the instrument's complaint about the header attached
    const res = samples.filter((x) => x.channel === 'res');
    expect(res[0]).toMatchObject({ value: 1000.25, quality: 'uncertain', reason: 'instrument error: -113,"Undefined header"' });
    expect(samples.find((x) => x.channel === 'volt')).toMatchObject({ value: 1.5 });
    expect(source.getHealth().errors['error_-113']).toBeGreaterThanOrEqual(1);
    expect(source.getHealth().errors['timeout']).toBeGreaterThanOrEqual(1);
    expect(source.getHealth().connected).toBe(true);
  } finally {
    await source.stop();
  }
});

test('a query that times out gives a bad sample, the next cycle recovers, and a late reply is never taken for another point', async () => {
  const source = new ScpiInstrument(dmm('dmm-1', { timeoutMs: 300 }), logger);
  const all: PolledSample[] = [];
  source.on('samples', (s) => void all.push(...s));
  await source.start();
  try {
    await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    // replies leave 450 ms late against a 300 ms timeout: each late reply arrives while the next line is awaited
    instrument().setFault({ kind: 'slow', ms: 450 }, Date.now());
    const slow = await collect([source], (s) => (s.get('dmm-1') ?? []).filter((x) => x.reason?.includes('no reply') === true).length >= 6);
    expect((slow.get('dmm-1') ?? []).find((x) => x.reason?.startsWith('no reply') === true)).toMatchObject({
      value: null,
      quality: 'bad',
      reason: expect.stringMatching(/^no reply to (MEAS:(VOLT:DC|CURR:DC|RES)|\*IDN)\? within 300 ms$/),
    });
    expectOnlyPinned(slow.get('dmm-1'));
    // silent too, for a while
    instrument().setFault({ kind: 'no-answer' }, Date.now());
    const silent = await collect([source], (s) => (s.get('dmm-1') ?? []).some((x) => x.reason?.includes('no reply') === true));
    expect(good(silent.get('dmm-1'))).toEqual([]);
    instrument().clearFault(Date.now());
    const after = await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    expectOnlyPinned(after.get('dmm-1'));
    expect(source.getHealth().errors['timeout']).toBeGreaterThanOrEqual(2);
    expect(source.getHealth().connected).toBe(true);
  } finally {
    await source.stop();
    instrument().clearFault(Date.now());
  }
  expectOnlyPinned(all);
}, 60_000);

test('noise and overload replies are bad with the reason and counted; reading goes on', async () => {
  const source = new ScpiInstrument(dmm('dmm-1'), logger);
  await source.start();
  try {
    await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    instrument().setFault({ kind: 'garbage', count: 1 }, Date.now());
    const noise = await collect([source], (s) => (s.get('dmm-1') ?? []).some((x) => x.reason?.includes('noise') === true));
    expect((noise.get('dmm-1') ?? []).find((x) => x.quality === 'bad')?.reason).toMatch(
      /^invalid reply to MEAS:.*: noise \(control characters in the line\)$/,
    );
    expect(source.getHealth().errors['invalid_reply']).toBe(1);
    instrument().setFault({ kind: 'overload' }, Date.now());
    const over = await collect([source], (s) => (s.get('dmm-1') ?? []).some((x) => x.reason?.startsWith('overload') === true));
    expect((over.get('dmm-1') ?? []).find((x) => x.reason?.startsWith('overload') === true)).toMatchObject({
      value: null,
      quality: 'bad',
      reason: expect.stringMatching(/^overload: MEAS:.*\? returned \+9\.90000000E\+37$/),
    });
    instrument().clearFault(Date.now());
    const after = await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    expectOnlyPinned(after.get('dmm-1'));
  } finally {
    await source.stop();
    instrument().clearFault(Date.now());
  }
}, 60_000);

test('a TCP reset: samples turn bad with the reason, the socket reopens with back-off, the identity is checked again and reading resumes', async () => {
  const source = new ScpiInstrument(dmm('dmm-1'), logger);
  await source.start();
  try {
    await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    const identities = server().sent.identity;
    instrument().setFault({ kind: 'disconnect', ms: 600 }, Date.now());
    const down = await collect([source], (s) => (s.get('dmm-1') ?? []).some((x) => x.reason?.startsWith('not connected') === true));
    expect((down.get('dmm-1') ?? []).find((x) => x.reason?.startsWith('not connected') === true)?.reason).toMatch(/tcp 127\.0\.0\.1:\d+: /);
    const up = await collect([source], (s) => allChannelsGood(s.get('dmm-1')));
    expectOnlyPinned(up.get('dmm-1'));
    expect(source.getHealth().connected).toBe(true);
    expect(source.getHealth().errors['connect']).toBeGreaterThanOrEqual(1);
    expect(server().sent.identity).toBeGreaterThan(identities);
  } finally {
    await source.stop();
    instrument().clearFault(Date.now());
  }
}, 60_000);

test('on one gateway, a SCPI instrument that never answers delays no other', async () => {
  // an instrument that accepts the connection and says nothing
  const silent = net.createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-scpi-'));
  const profiles: DeviceProfile[] = [
    dmm('dead', { connection: { transport: 'tcp', host: '127.0.0.1', port: silentPort }, timeoutMs: 5000 }),
    dmm('dmm-1'),
  ];
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-scpi', lab: 'lab' },
    mqtt: { url: 'mqtt://127.0.0.1:1', username: 'gw-scpi' },
    instruments: [{ profile: 'dead.yaml' }, { profile: 'live.yaml' }],
  });
  const gateway = new Gateway({ config, profiles, dataDir, password: 'unused', instrumentPasswords: new Map() }, logger);
  const sources = gateway.sources.filter((s): s is ScpiInstrument => s instanceof ScpiInstrument);
  expect(sources.map((s) => s.id)).toEqual(['dead', 'dmm-1']);
  await Promise.all(sources.map((s) => s.start()));
  try {
    // the dead instrument's first *IDN? waits 5 s for a reply; meanwhile the live one is read cycle after cycle
    const seen = await collect(sources, (s) => (s.get('dead') ?? []).length > 0);
    expect(good(seen.get('dmm-1'), 'volt').length).toBeGreaterThanOrEqual(5);
    expectOnlyPinned(seen.get('dmm-1'));
    expect(seen.get('dead')?.[0]).toMatchObject({ quality: 'bad', reason: 'not read: no reply to *IDN? within 5000 ms' });
    const health = gateway.healthMessage().instruments;
    expect(health.find((h) => h.instrument === 'dead')).toMatchObject({ errors: { timeout: 1 }, lastGood: null });
    expect(health.find((h) => h.instrument === 'dmm-1')?.lastGood).not.toBeNull();
  } finally {
    await Promise.all(sources.map((s) => s.stop()));
    gateway.outbox.close();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
}, 60_000);
