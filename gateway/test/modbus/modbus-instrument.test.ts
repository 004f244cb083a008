// The poller against the real simulator over loopback TCP, and against a device that never answers.
import net from 'node:net';
import { afterEach, describe, expect, test } from '@jest/globals';
import { parseModbusProfile, type ModbusProfileInput } from '@labtrace/protocols';
import { Simulator } from '@labtrace/device-sim';
import pino from 'pino';
import { LinkPool, ModbusInstrument, type PolledSample } from '../../src/index.js';

const logger = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const points: ModbusProfileInput['points'] = [
  { name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' },
  { name: 'humidity', register: 'holding', address: 2, type: 'float32', order: 'CDAB', unit: '%RH' },
  { name: 'setpoint', register: 'holding', address: 4, type: 'int16', scale: 0.1, unit: '°C' },
  { name: 'door_open', register: 'discrete', address: 0, type: 'bool' },
];

function profileInput(port: number, extra: ModbusProfileInput['points'] = [], id = 'climate-t'): ModbusProfileInput {
  return {
    id,
    identity: { maker: 'Test', model: 'Chamber', serialNumber: 'T-1' },
    connection: { transport: 'tcp', host: '127.0.0.1', port },
    pollIntervalMs: 50,
    timeoutMs: 200,
    points: [...points, ...extra],
  };
}

function profile(port: number, extra: ModbusProfileInput['points'] = [], id = 'climate-t') {
  return parseModbusProfile(profileInput(port, extra, id));
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

const pool = new LinkPool({ maxQueue: 100, pacingMs: 0 });

function startPoller(p: ReturnType<typeof profile>): {
  poller: ModbusInstrument;
  next: (pred: (s: PolledSample[]) => boolean, ms?: number) => Promise<PolledSample[]>;
} {
  const link = pool.acquire(p.connection, 0);
  const poller = new ModbusInstrument(p, link, logger);
  cleanup.push(async () => {
    await poller.stop();
    await pool.release(link);
  });
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

describe('ModbusInstrument', () => {
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

  test('on-change reporting with a deadband sends only the moves that matter', async () => {
    const sim = await startSim();
    const instrument = sim.instruments.get('climate-t');
    instrument?.pin({ temperature: 20, humidity: 50, setpoint: 20, door_open: false }, Date.now());
    const p = parseModbusProfile({ ...profileInput(portOf(sim)), reporting: { mode: 'change', deadband: 0.5 } });
    const { next } = startPoller(p);
    const seen: PolledSample[] = [];
    const first = await next(() => true);
    seen.push(...first);
    expect(first.map((s) => s.channel).sort()).toEqual(['door_open', 'humidity', 'setpoint', 'temperature']);
    instrument?.pin({ temperature: 20.3 }, Date.now());
    instrument?.pin({ temperature: 21 }, Date.now() + 1);
    const moved = await next((s) => s.some((x) => x.channel === 'temperature'));
    // Only temperature changed by more than the deadband; the others stay silent.
    expect(moved.map((s) => [s.channel, s.value])).toEqual([['temperature', 21]]);
    instrument?.pin({ temperature: 21.4 }, Date.now());
    await new Promise((r) => setTimeout(r, 400)); // eight polls
    instrument?.pin({ humidity: 60 }, Date.now());
    const later = await next(() => true);
    expect(later.map((s) => [s.channel, s.value])).toEqual([['humidity', 60]]);
  });

  test('on-change reporting reports a failure once, and the same value again once the device is back', async () => {
    const sim = await startSim();
    const instrument = sim.instruments.get('climate-t');
    instrument?.pin({ temperature: 20, humidity: 50, setpoint: 20, door_open: false }, Date.now());
    const { next } = startPoller(parseModbusProfile({ ...profileInput(portOf(sim)), retries: 0, reporting: { mode: 'change', deadband: 0 } }));
    await next((s) => s.some((x) => x.channel === 'temperature' && x.quality === 'good'));
    instrument?.setFault({ kind: 'no-answer' }, Date.now());
    const failed = await next((s) => s.some((x) => x.channel === 'temperature' && x.quality === 'bad'));
    expect(failed.find((x) => x.channel === 'temperature')?.reason).toMatch(/did not answer/);
    instrument?.clearFault(Date.now());
    const back = await next((s) => s.some((x) => x.channel === 'temperature' && x.quality === 'good'), 40_000);
    expect(back.find((x) => x.channel === 'temperature')?.value).toBe(20);
  }, 60_000);

  test('an unmapped address fails only its own request', async () => {
    const sim = await startSim();
    const { next } = startPoller(profile(portOf(sim), [{ name: 'ghost', register: 'input', address: 77, type: 'uint16' }]));
    const samples = byChannel(await next((s) => s.length === 5));
    expect(samples['ghost']).toMatchObject({ value: null, quality: 'bad' });
    expect(samples['ghost']?.reason).toMatch(/exception 2 \(illegal data address\)/i);
    expect(samples['temperature']?.quality).toBe('good');
  });

  test('a device that is not there yields bad samples with the reason, then reconnects when it appears', async () => {
    const probe = await startSim();
    const port = portOf(probe);
    await probe.stop();
    const { poller, next } = startPoller(profile(port));
    const bad = await next((s) => s.every((x) => x.quality === 'bad'));
    expect(bad[0]?.reason).toMatch(/ECONNREFUSED|not reachable/);
    const sim = await startSim(port);
    sim.instruments.get('climate-t')?.pin({ temperature: 30 }, Date.now());
    const good = byChannel(await next((s) => s.some((x) => x.quality === 'good'), 15_000));
    expect(good['temperature']?.value).toBe(30);
    expect(poller.getHealth().errors['connect']).toBeGreaterThan(0);
    expect(poller.getHealth().connected).toBe(true);
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

  test('a late reply is dropped, never decoded as the answer to the next request', async () => {
    // A device that answers its first request after the client's timeout, and every later one at once.
    let n = 0;
    const tricky = net.createServer((socket) => {
      socket.on('data', (frame: Buffer) => {
        const late = n++ === 0;
        const reply = Buffer.from([frame[0] ?? 0, frame[1] ?? 0, 0, 0, 0, 5, frame[6] ?? 1, 3, 2, 0, 0]);
        // late answer: 9999 in the first register; on time: 42
        reply.writeUInt16BE(late ? 9999 : 42, 9);
        if (late) setTimeout(() => socket.writable && socket.write(reply), 300);
        else socket.write(reply);
      });
    });
    await new Promise<void>((resolve) => tricky.listen(0, '127.0.0.1', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => tricky.close(() => resolve())));
    const p = parseModbusProfile({
      id: 'tricky',
      identity: { maker: 'T', model: 'T', serialNumber: '1' },
      connection: { transport: 'tcp', host: '127.0.0.1', port: (tricky.address() as net.AddressInfo).port },
      pollIntervalMs: 100,
      timeoutMs: 200,
      retries: 0,
      points: [{ name: 'v', register: 'holding', address: 0, type: 'uint16' }],
    });
    const { poller, next } = startPoller(p);
    const seen: PolledSample[] = [];
    await next((s) => {
      seen.push(...s);
      return seen.filter((x) => x.quality === 'good').length >= 3;
    }, 5000);
    expect(seen[0]).toMatchObject({ quality: 'bad' });
    expect(seen.filter((x) => x.quality === 'good').map((x) => x.value)).toEqual([42, 42, 42]);
    expect(seen.some((x) => x.value === 9999)).toBe(false);
    expect(poller.getHealth().errors['timeout']).toBe(1);
    expect(pool.all().find((l) => l.connection === p.connection)?.counters.staleReplies).toBe(1);
  });

  test('a device that accepts but never answers times out without delaying another device', async () => {
    const silent = net.createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const dead = startPoller(profile(silentPort, [], 'dead'));
    const sim = await startSim();
    const live = startPoller(profile(portOf(sim)));

    const timedOut = await dead.next((s) => s.some((x) => x.reason?.includes('did not answer in 200 ms') === true));
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
