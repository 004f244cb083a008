// The embedded broker with real MQTT clients: authentication, topic authorization, ACK after storage.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { signBatch, topicFor, type DataMessage } from '@labtrace/protocols';
import { signerOf, startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await t.stop();
});

/** The granted QoS of each filter; mqtt.js rejects a SUBACK with refusals but keeps the packet. */
async function grantedQos(client: MqttClient, filters: string[], qos: 0 | 1): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: (number | { qos: number })[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

function connect(options: mqtt.IClientOptions, url = t.mqttUrl): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    clients.push(client);
    client.once('connect', () => resolve(client));
    client.once('error', (err) => reject(err));
  });
}

async function refusal(options: mqtt.IClientOptions): Promise<string> {
  try {
    await connect(options);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the broker to refuse the connection');
}

const sample = (seq: number, value: number) => ({
  seq,
  instrument: 'i-1',
  channel: 'force',
  ts: 1_700_000_000_000 + seq,
  value,
  unit: 'kN',
  quality: 'good' as const,
});

describe('authentication', () => {
  test('anonymous clients are refused', async () => {
    expect(await refusal({ clientId: 'anon' })).toMatch(/Bad username or password|Not authorized/i);
  });
  test('a wrong password is refused', async () => {
    expect(await refusal({ clientId: 'gw-a', username: 'gw-a', password: 'guess' })).toMatch(/Bad username or password/i);
  });
  test('a gateway must use its own id as client id', async () => {
    expect(await refusal({ clientId: 'gw-b', username: 'gw-a', password: t.password })).toMatch(/Not authorized/i);
  });
});

describe('a gateway publishes, the server stores and then acknowledges', () => {
  test('a gateway that reconnects under its id takes over its session', async () => {
    const first = await connect({ clientId: 'gw-b', username: 'gw-b', password: t.password });
    const second = await connect({ clientId: 'gw-b', username: 'gw-b', password: t.password });
    for (let i = 0; i < 40 && first.connected; i++) await new Promise((r) => setTimeout(r, 25));
    expect(first.connected).toBe(false);
    expect(t.server.broker.connectedGateways()).toContain('gw-b');
    await second.publishAsync(topicFor('lab-t', 'gw-b', 'DEATH'), JSON.stringify({ v: 1, gateway: 'gw-b', session: 1 }), { qos: 1 });
    expect(second.connected).toBe(true);
    await second.endAsync();
    for (let i = 0; i < 40 && t.server.broker.connectedGateways().includes('gw-b'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(t.server.broker.connectedGateways()).not.toContain('gw-b');
  });

  test('DATA is stored once and acknowledged, also when resent', async () => {
    const gw = await connect({ clientId: 'gw-a', username: 'gw-a', password: t.password });
    const acks: number[] = [];
    gw.on('message', (_topic, payload) => acks.push((JSON.parse(payload.toString()) as { batch: number }).batch));
    await gw.subscribeAsync(topicFor('lab-t', 'gw-a', 'ACK'), { qos: 1 });
    await gw.publishAsync(
      topicFor('lab-t', 'gw-a', 'BIRTH'),
      JSON.stringify({
        v: 1,
        gateway: 'gw-a',
        session: 1,
        version: 't',
        instruments: [{ id: 'i-1', identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'force', unit: 'kN' }] }],
      }),
      { qos: 1 },
    );
    const samples = [sample(0, 1.5), sample(1, 2.5)];
    const batch: DataMessage = { v: 1, gateway: 'gw-a', batch: 0, samples, signed: signBatch(signerOf('gw-a'), 'gw-a', 0, samples, null) };
    await gw.publishAsync(topicFor('lab-t', 'gw-a', 'DATA'), JSON.stringify(batch), { qos: 1 });
    await gw.publishAsync(topicFor('lab-t', 'gw-a', 'DATA'), JSON.stringify(batch), { qos: 1 });
    for (let i = 0; i < 50 && acks.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(acks).toEqual([0, 0]);
    expect(t.server.store.count()).toBe(2);
    expect(t.server.ingest.counters).toMatchObject({ samples: 2, duplicates: 2 });
    const history = (await (await t.fetch(`/api/instruments/i-1/history?channel=force&from=0`)).json()) as { value: number }[];
    expect(history.map((s) => s.value)).toEqual([1.5, 2.5]);
  });

  test('a malformed batch is rejected with the field named, and the server keeps going', async () => {
    const gw = await connect({ clientId: 'gw-a', username: 'gw-a', password: t.password });
    const rejected = new Promise<string>((resolve) => t.server.ingest.once('rejected', (_g, reason) => resolve(reason)));
    await gw.publishAsync(
      topicFor('lab-t', 'gw-a', 'DATA'),
      JSON.stringify({ v: 1, gateway: 'gw-a', batch: 1, samples: [{ ...sample(5, 1), quality: 'great' }] }),
      { qos: 1 },
    );
    expect(await rejected).toMatch(/samples\[0\]\.quality/);
    const notJson = new Promise<string>((resolve) => t.server.ingest.once('rejected', (_g, reason) => resolve(reason)));
    await gw.publishAsync(topicFor('lab-t', 'gw-a', 'DATA'), '{oops', { qos: 1 });
    expect(await notJson).toMatch(/not JSON/);
    expect((await t.fetch(`/api/health`)).status).toBe(200);
  });
});

describe('authorization', () => {
  test("a gateway cannot publish under another gateway's id", async () => {
    const gw = await connect({ clientId: 'gw-a', username: 'gw-a', password: t.password });
    const before = t.server.store.count();
    const forged: DataMessage = { v: 1, gateway: 'gw-b', batch: 0, samples: [sample(100, 9)] };
    // Aedes drops an unauthorized QoS 0 publish, and closes the connection of a client that insists.
    gw.publish(topicFor('lab-t', 'gw-b', 'DATA'), JSON.stringify(forged), { qos: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(t.server.store.count()).toBe(before);
  });

  test("a gateway cannot subscribe to another gateway's ACK, nor to everything", async () => {
    const gw = await connect({ clientId: 'gw-a', username: 'gw-a', password: t.password });
    expect(await grantedQos(gw, [topicFor('lab-t', 'gw-b', 'ACK'), '#', topicFor('lab-t', 'gw-a', 'CMD')], 1)).toEqual([128, 128, 1]);
  });

  test('a reader may subscribe to the lab but not publish', async () => {
    const reader = await connect({ clientId: 'viewer-1', username: 'viewer', password: t.readerPassword });
    expect(await grantedQos(reader, ['labtrace/v1/lab-t/#', 'labtrace/v1/other-lab/#'], 0)).toEqual([0, 128]);
    const before = t.server.store.count();
    reader.publish(topicFor('lab-t', 'gw-a', 'DATA'), JSON.stringify({ v: 1, gateway: 'gw-a', batch: 9, samples: [sample(200, 1)] }), { qos: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(t.server.store.count()).toBe(before);
  });

  test('MQTT over WebSocket at /mqtt uses the same credentials', async () => {
    const url = `${t.base.replace('http', 'ws')}/mqtt`;
    const ws = await connect({ clientId: 'viewer-ws', username: 'viewer', password: t.readerPassword }, url);
    expect(ws.connected).toBe(true);
    await expect(connect({ clientId: 'anon-ws' }, url)).rejects.toThrow(/Bad username or password|Not authorized/i);
  });
});
