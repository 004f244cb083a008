// What the server accepts from gateways: signed batches of registered gateways, only their own
// instruments, and never a reused sequence number; anything refused is not acknowledged.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { formatSignerKey, parseSignerKey, signBatch, topicFor, type DataMessage, type Sample } from '@labtrace/protocols';
import { GW_S_SEED, startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
const clients: MqttClient[] = [];
const key = parseSignerKey(formatSignerKey('gw-s', GW_S_SEED));

beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await t.stop();
});

async function gateway(id: string): Promise<{ client: MqttClient; acks: number[] }> {
  const client = await mqtt.connectAsync(t.mqttUrl, { clientId: id, username: id, password: t.password, reconnectPeriod: 0 });
  clients.push(client);
  const acks: number[] = [];
  client.on('message', (_t, p) => acks.push((JSON.parse(p.toString()) as { batch: number }).batch));
  await client.subscribeAsync(topicFor('lab-t', id, 'ACK'), { qos: 1 });
  return { client, acks };
}

async function birth(client: MqttClient, id: string, instrument: string): Promise<void> {
  await client.publishAsync(
    topicFor('lab-t', id, 'BIRTH'),
    JSON.stringify({
      v: 1,
      gateway: id,
      session: 1,
      version: 't',
      instruments: [{ id: instrument, identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: '' }] }],
    }),
    { qos: 1 },
  );
}

const records = (instrument: string, first: number, n: number, value = 1): Sample[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument,
    channel: 'c',
    ts: 1_800_000_000_000 + first + i,
    value,
    unit: '',
    quality: 'good' as const,
  }));

async function send(client: MqttClient, id: string, message: DataMessage): Promise<string> {
  const rejected = new Promise<string>((resolve) => t.server.ingest.once('rejected', (_g, reason) => resolve(reason)));
  const before = t.server.ingest.counters.batches;
  await client.publishAsync(topicFor('lab-t', id, 'DATA'), JSON.stringify(message), { qos: 1 });
  const acked = (async () => {
    for (let i = 0; i < 100; i++) {
      if (t.server.ingest.counters.batches > before) return 'acked' as const;
      await new Promise((r) => setTimeout(r, 20));
    }
    return 'timeout';
  })();
  return Promise.race([rejected, acked]);
}

test('a registered gateway: signed batches are stored, unsigned or tampered ones refused', async () => {
  const { client, acks } = await gateway('gw-s');
  await birth(client, 'gw-s', 'sig-1');
  const samples = records('sig-1', 0, 3);
  expect(await send(client, 'gw-s', { v: 1, gateway: 'gw-s', batch: 0, samples, signed: signBatch(key, 'gw-s', 0, samples, null) })).toBe('acked');
  expect(await send(client, 'gw-s', { v: 1, gateway: 'gw-s', batch: 1, samples: records('sig-1', 3, 2) })).toMatch(/batch 1 is not signed/);
  const next = records('sig-1', 3, 2);
  const signed = signBatch(key, 'gw-s', 1, next, null);
  expect(await send(client, 'gw-s', { v: 1, gateway: 'gw-s', batch: 1, samples: records('sig-1', 3, 2, 99), signed })).toMatch(
    /do not hash to the signed Merkle root/,
  );
  for (let i = 0; i < 20 && acks.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
  expect(acks).toEqual([0]);
  const header = t.server.database.sqlite.prepare('SELECT count, signature FROM batch_headers WHERE gateway = ?').all('gw-s') as {
    count: number;
    signature: string;
  }[];
  expect(header).toEqual([{ count: 3, signature: expect.any(String) }]);
});

test("a gateway cannot write another gateway's instrument, nor one it never announced", async () => {
  const a = await gateway('gw-a');
  await birth(a.client, 'gw-a', 'owned-1');
  const b = await gateway('gw-b');
  await birth(b.client, 'gw-b', 'owned-1'); // refused: owned by gw-a
  expect(await send(b.client, 'gw-b', { v: 1, gateway: 'gw-b', batch: 0, samples: records('owned-1', 0, 1) })).toMatch(
    /instrument "owned-1" belongs to gateway gw-a/,
  );
  expect(await send(b.client, 'gw-b', { v: 1, gateway: 'gw-b', batch: 1, samples: records('ghost-9', 0, 1) })).toMatch(/"ghost-9" was not announced/);
  expect(await send(a.client, 'gw-a', { v: 1, gateway: 'gw-a', batch: 0, samples: records('owned-1', 0, 1) })).toBe('acked');
});

test('a reused sequence number with another record is refused, not acknowledged and lost', async () => {
  const a = await gateway('gw-a');
  await birth(a.client, 'gw-a', 'seq-1');
  expect(await send(a.client, 'gw-a', { v: 1, gateway: 'gw-a', batch: 10, samples: records('seq-1', 100, 2) })).toBe('acked');
  // the same batch again: fine (a resend)
  expect(await send(a.client, 'gw-a', { v: 1, gateway: 'gw-a', batch: 10, samples: records('seq-1', 100, 2) })).toBe('acked');
  // a new record under seq 101 (the gateway's numbering restarted)
  const reused = records('seq-1', 101, 1).map((s) => ({ ...s, ts: s.ts + 5000 }));
  expect(await send(a.client, 'gw-a', { v: 1, gateway: 'gw-a', batch: 11, samples: reused })).toMatch(
    /sequence number 101 of gw-a is already stored for another record/,
  );
});

test('a reader cannot take the client id of a gateway', async () => {
  await expect(
    mqtt.connectAsync(t.mqttUrl, { clientId: 'gw-a', username: 'viewer', password: t.readerPassword, reconnectPeriod: 0 }),
  ).rejects.toThrow(/Not authorized/i);
});
