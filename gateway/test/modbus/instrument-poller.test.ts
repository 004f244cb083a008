// The poller against the real simulator over loopback TCP, and against a device that never answers.
import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { deviceProfileSchema, type DeviceProfileInput } from '@labtrace/protocols';
import { Simulator } from '@labtrace/device-sim';
import pino from 'pino';
import { InstrumentPoller, type PolledSample } from '../../src/index.js';

const logger = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const points: DeviceProfileInput['points'] = [
  { name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' },
  { name: 'humidity', register: 'holding', address: 2, type: 'float32', order: 'CDAB', unit: '%RH' },
  { name: 'setpoint', register: 'holding', address: 4, type: 'int16', scale: 0.1, unit: '°C' },
  { name: 'door_open', register: 'discrete', address: 0, type: 'bool' },
];

function profile(port: number, extra: DeviceProfileInput['points'] = [], id = 'climate-t') {
  return deviceProfileSchema.parse({
    id,
    identity: { maker: 'Test', model: 'Chamber', serialNumber: 'T-1' },
    connection: { transport: 'tcp', host: '127.0.0.1', port },
    pollIntervalMs: 50,
    timeoutMs: 200,
    points: [...points, ...extra],
  });
}

async function startSim(port = 0): Promise<Simulator> {
  const sim = new Simulator({ config: { host: '127.0.0.1', tickMs: 20 }, instruments: [{ profile: profile(1), model: 'constant', port }] });
  await sim.start();
  cleanup.push(() => sim.stop());
  return sim;
}

function portOf(sim: Simulator): number {
  const i = sim.instruments.get('climate-t');
  if (!i) throw new Error('no instrument');
  return i.server.port;
}

function startPoller(p: ReturnType<typeof profile>): {
  poller: InstrumentPoller;
  next: (pred: (s: PolledSample[]) => boolean, ms?: number) => Promise<PolledSample[]>;
} {
  const poller = new InstrumentPoller(p, logger);
  cleanup.push(() => poller.stop());
  void poller.start();
  const next = (pred: (s: PolledSample[]) => boolean, ms = 5000) =>
    new Promise<PolledSample[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        poller.off('samples', on);
        reject(new Error('no matching samples in time'));
      }, ms);
      const on = (s: PolledSample[]): void => {
        if (!pred(s)) return;
        clearTimeout(timer);
        poller.off('samples', on);
        resolve(s);
      };
      poller.on('samples', on);
    });
  return { poller, next };
}

const byChannel = (s: PolledSample[]) => Object.fromEntries(s.map((x) => [x.channel, x]));

describe('InstrumentPoller', () => {
  test('reads every point with its type, order and scale, quality good', async () => {
    const sim = await startSim();
    sim.instruments.get('climate-t')?.pin({ temperature: 21.375, humidity: 48.39, setpoint: 23.5, door_open: true }, Date.now());
    const { next } = startPoller(profile(portOf(sim)));
    const samples = byChannel(await next((s) => s.some((x) => x.quality === 'good')));
    expect(samples['temperature']).toMatchObject({ value: 21.375, quality: 'good', unit: '°C' });
    expect(samples['humidity']).toMatchObject({ value: 48.39, quality: 'good' });
    expect(samples['setpoint']).toMatchObject({ value: 23.5, quality: 'good' });
    expect(samples['door_open']).toMatchObject({ value: true, quality: 'good' });
  });

  test('an unmapped address fails only its own request', async () => {
    const sim = await startSim();
    const { next } = startPoller(profile(portOf(sim), [{ name: 'ghost', register: 'input', address: 77, type: 'uint16' }]));
    const samples = byChannel(await next((s) => s.length === 5));
    expect(samples['ghost']).toMatchObject({ value: null, quality: 'bad' });
    expect(samples['ghost']?.reason).toMatch(/exception 2/i);
    expect(samples['temperature']?.quality).toBe('good');
  });

  test('a device that is not there yields bad samples with the reason, then reconnects when it appears', async () => {
    const probe = await startSim();
    const port = portOf(probe);
    await probe.stop();
    const { poller, next } = startPoller(profile(port));
    const bad = await next((s) => s.every((x) => x.quality === 'bad'));
    expect(bad[0]?.reason).toMatch(/not connected/);
    const sim = await startSim(port);
    sim.instruments.get('climate-t')?.pin({ temperature: 30 }, Date.now());
    const good = byChannel(await next((s) => s.some((x) => x.quality === 'good'), 15_000));
    expect(good['temperature']?.value).toBe(30);
    expect(poller.getHealth().errors['connect']).toBeGreaterThan(0);
  });

  test('after the device restarts, polling resumes by itself', async () => {
    const sim = await startSim();
    const port = portOf(sim);
    const { next } = startPoller(profile(port));
    await next((s) => s.some((x) => x.quality === 'good'));
    await sim.stop();
    await next((s) => s.every((x) => x.quality === 'bad'));
    const again = await startSim(port);
    again.instruments.get('climate-t')?.pin({ temperature: -5.5 }, Date.now());
    const good = byChannel(await next((s) => s.some((x) => x.quality === 'good'), 15_000));
    expect(good['temperature']?.value).toBe(-5.5);
  });

  test('a device that accepts but never answers times out without delaying another device', async () => {
    const silent = net.createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const dead = startPoller(profile(silentPort, [], 'dead'));
    const sim = await startSim();
    const live = startPoller(profile(portOf(sim)));

    const timedOut = await dead.next((s) => s.some((x) => x.reason?.includes('no answer within 200 ms') === true));
    expect(timedOut.every((x) => x.quality === 'bad')).toBe(true);
    // Meanwhile the live device is polled at its own interval (50 ms): several cycles within 1 s.
    const stamps: number[] = [];
    await live.next((s) => {
      stamps.push(s[0]?.ts ?? 0);
      return stamps.length >= 5;
    });
    expect(stamps.length).toBe(5);
    expect(dead.poller.getHealth().errors['timeout']).toBeGreaterThan(0);
    for (const s of await live.next(() => true)) expect(s.quality).toBe('good');
  });
});
