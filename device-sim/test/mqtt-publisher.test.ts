// MQTT instruments publishing to a real Mosquitto: payload shapes by the profile (value at jsonPath,
// timestamp at timestampPath, plain numbers), the publishing interval, the faults that apply to a
// publisher, and broker credentials read from a password file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceProfileSchema, type MqttProfile } from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { Simulator, type MqttPublisher } from '../src/index.js';
import { expectNoLeakedHandles, liveHandles, sleep, waitFor } from './helpers.js';

const USER = 'sim-instrument';
const PASSWORD = 'broker-secret-for-tests';
// One listener for anonymous clients (tests only) and one that checks the password file; the log
// names the username of each connection.
const BROKER_CONF = [
  'per_listener_settings true',
  'persistence false',
  'log_type all',
  'connection_messages true',
  'listener 1883',
  'allow_anonymous true',
  'listener 1884',
  'allow_anonymous false',
].join('\n');

interface Message {
  topic: string;
  payload: string;
  at: number;
}

let handlesBefore: Map<string, number>;
let broker: Mosquitto;
/** the listener that checks the password file */
let authUrl: string;
let dir: string;
let subscriber: MqttClient;
let sim: Simulator;
let control: string;
const messages: Message[] = [];

function mqttProfile(id: string, url: string, extra: Partial<MqttProfile['connection']> = {}): MqttProfile {
  const parsed = deviceProfileSchema.parse({
    id,
    identity: { maker: 'Test', model: 'Sensor', serialNumber: id },
    connection: { transport: 'mqtt', url, ...extra },
    points: [
      { name: 'temperature', topic: `lab/${id}/climate`, jsonPath: 'reading.value', timestampPath: 'reading.ts', unit: '°C' },
      { name: 'humidity', topic: `lab/${id}/climate`, jsonPath: 'reading.rh', unit: '%RH' },
      { name: 'pressure', topic: `lab/${id}/pressure`, scale: 0.001, unit: 'bar' },
    ],
  });
  if (parsed.protocol !== 'mqtt') throw new Error('not an MQTT profile');
  return parsed;
}

/** Messages on a topic that arrived after `since`. */
const on = (topic: string, since = 0): Message[] => messages.filter((m) => m.topic === topic && m.at >= since);
const temperatures = (since: number): number[] =>
  on('lab/mq-1/climate', since).map((m) => (JSON.parse(m.payload) as { reading: { value: number } }).reading.value);

async function api(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${control}${route}`, {
    method,
    headers: { 'content-type': 'application/json', connection: 'close' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  handlesBefore = liveHandles();
  broker = await Mosquitto.create({ users: [{ username: USER, password: PASSWORD }], conf: BROKER_CONF });
  await broker.start();
  const [, second] = broker.urls;
  if (second === undefined) throw new Error('the broker has no second listener');
  authUrl = second;
  dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-sim-mqtt-'));
  subscriber = await mqtt.connectAsync(broker.url, { clientId: 'test-subscriber', reconnectPeriod: 0 });
  subscriber.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString(), at: Date.now() }));
  await subscriber.subscribeAsync('lab/#');
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20, control: { host: '127.0.0.1', port: 0 } },
    instruments: [{ profile: mqttProfile('mq-1', 'mqtt://127.0.0.1:1'), model: 'constant', url: broker.url, publishIntervalMs: 100 }],
  });
  await sim.start();
  control = `http://127.0.0.1:${sim.control?.port ?? 0}`;
  sim.instruments.get('mq-1')?.pin({ temperature: 21.5, humidity: 40, pressure: 1.013 }, Date.now());
  await waitFor('first message', () => on('lab/mq-1/climate').length > 0);
});

afterEach(async () => {
  await api('DELETE', '/instruments/mq-1/fault');
});

afterAll(async () => {
  await sim.stop();
  await subscriber.endAsync();
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
  await expectNoLeakedHandles(handlesBefore);
});

describe('what the instrument publishes', () => {
  test('JSON with the value at jsonPath and the time at timestampPath; points sharing a topic share a message', async () => {
    const since = Date.now();
    await waitFor('a climate message', () => on('lab/mq-1/climate', since).length > 0);
    const m = on('lab/mq-1/climate', since)[0];
    const doc = JSON.parse(m?.payload ?? '{}') as { reading: { value: number; rh: number; ts: number } };
    expect(doc).toEqual({ reading: { value: 21.5, rh: 40, ts: expect.any(Number) } });
    expect(Math.abs(doc.reading.ts - (m?.at ?? 0))).toBeLessThan(1000);
  });

  test('a plain number where the point has no jsonPath, in raw units (the inverse of scale)', async () => {
    const since = Date.now();
    await waitFor('a pressure message', () => on('lab/mq-1/pressure', since).length > 0);
    expect(on('lab/mq-1/pressure', since)[0]?.payload).toBe('1013');
  });

  test('every publishIntervalMs', async () => {
    const since = Date.now();
    await sleep(1000);
    const n = on('lab/mq-1/climate', since).length;
    expect(n).toBeGreaterThanOrEqual(7);
    expect(n).toBeLessThanOrEqual(12);
  });

  test('the control API shows the publisher and refuses Modbus-only faults', async () => {
    const { body } = await api('GET', '/instruments/mq-1');
    expect(body).toMatchObject({ transport: 'mqtt', address: broker.url, connected: true });
    expect(body.published).toBeGreaterThan(0);
    const refused = await api('PUT', '/instruments/mq-1/fault', { kind: 'exception', code: 6 });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/Modbus/);
    expect((await api('PUT', '/instruments/mq-1/fault', { kind: 'wrong-byte-order' })).status).toBe(400);
  });
});

describe('faults', () => {
  test('no-answer stops publishing until cleared', async () => {
    await api('PUT', '/instruments/mq-1/fault', { kind: 'no-answer' });
    await sleep(150); // a message already on its way may still arrive
    const quiet = Date.now();
    await sleep(400);
    expect(on('lab/mq-1/climate', quiet)).toEqual([]);
    await api('DELETE', '/instruments/mq-1/fault/no-answer');
    await waitFor('publishing again', () => on('lab/mq-1/climate', quiet).length > 0, 2000);
  });

  test('noise makes the values scatter; stuck freezes them', async () => {
    await api('PUT', '/instruments/mq-1/fault', { kind: 'noise', amplitude: 0.5 });
    const noisy = Date.now();
    await waitFor('noisy messages', () => temperatures(noisy).length >= 5, 3000);
    expect(new Set(temperatures(noisy)).size).toBeGreaterThanOrEqual(4);
    await api('PUT', '/instruments/mq-1/fault', { kind: 'stuck' });
    await sleep(150);
    const stuck = Date.now();
    await waitFor('stuck messages', () => temperatures(stuck).length >= 5, 3000);
    expect(new Set(temperatures(stuck)).size).toBe(1);
  });

  test('drift raises the values by the rate', async () => {
    await api('PUT', '/instruments/mq-1/fault', { kind: 'drift', ratePerSecond: 10, channels: ['temperature'] });
    const since = Date.now();
    await sleep(700);
    const values = temperatures(since);
    expect(values.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1] ?? Infinity);
    const rise = (values.at(-1) ?? 0) - (values[0] ?? 0);
    const expected = ((values.length - 1) * 100 * 10) / 1000;
    expect(rise).toBeGreaterThan(expected * 0.6);
    expect(rise).toBeLessThan(expected * 1.6);
  });

  test('slow delivers messages late, with the time the reading was taken', async () => {
    await api('PUT', '/instruments/mq-1/fault', { kind: 'slow', ms: 400 });
    const since = Date.now();
    await waitFor('late messages', () => on('lab/mq-1/climate', since + 450).length >= 2, 3000);
    for (const m of on('lab/mq-1/climate', since + 450)) {
      const ts = (JSON.parse(m.payload) as { reading: { ts: number } }).reading.ts;
      expect(m.at - ts).toBeGreaterThanOrEqual(390);
    }
  });

  test('disconnect drops the broker connection for the given time, then it comes back', async () => {
    const publisher = sim.instruments.get('mq-1')?.server as MqttPublisher;
    await api('PUT', '/instruments/mq-1/fault', { kind: 'disconnect', ms: 800 });
    expect(publisher.connected).toBe(false);
    await sleep(150);
    const quiet = Date.now();
    await sleep(400);
    expect(on('lab/mq-1/climate', quiet)).toEqual([]);
    await waitFor('reconnected and publishing', () => on('lab/mq-1/climate', quiet).length > 0, 3000);
    expect(publisher.connected).toBe(true);
  });
});

describe('broker credentials', () => {
  async function publishesWith(password: string): Promise<boolean> {
    const passwordFile = path.join(dir, `${password}.password`);
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const watcher = await mqtt.connectAsync(authUrl, {
      username: USER,
      password: PASSWORD,
      clientId: `watch-${password}`,
      reconnectPeriod: 0,
    });
    let got = 0;
    watcher.on('message', () => got++);
    await watcher.subscribeAsync('lab/auth-1/#');
    const authSim = new Simulator({
      config: { host: '127.0.0.1', tickMs: 20 },
      instruments: [
        {
          profile: mqttProfile('auth-1', authUrl, { username: USER, passwordFile, clientId: `auth-${password}` }),
          model: 'constant',
          publishIntervalMs: 50,
        },
      ],
    });
    await authSim.start();
    authSim.instruments.get('auth-1')?.pin({ temperature: 1, humidity: 2, pressure: 3 }, Date.now());
    try {
      await waitFor('a message on the password-protected listener', () => got > 0, 1500);
      return true;
    } catch {
      return false;
    } finally {
      await authSim.stop();
      await watcher.endAsync();
    }
  }

  test('username and passwordFile let it publish where anonymous clients may not', async () => {
    expect(await publishesWith(PASSWORD)).toBe(true);
    expect(broker.output).toContain(`u'${USER}'`);
  });

  test('with a wrong password nothing is published', async () => {
    expect(await publishesWith('not-the-password')).toBe(false);
  });
});
