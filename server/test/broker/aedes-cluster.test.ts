// The embedded broker on several server nodes: two real server nodes whose Aedes brokers form one broker over a real
// Redis 7 (mqemitter-redis between the nodes, aedes-persistence-redis for sessions and QoS 1 messages in flight).
// Every publish reaches every node's emitter, so what this proves is that ingest hangs off the node that RECEIVED a
// publish: a batch from a gateway connected to node A is stored by A only, although node B sees it too (a reader on
// B receives it), and the ACK reaches the gateway. Each node has its own SQLite store here.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { sealBatch, topicFor } from '@labtrace/protocols';
import { serverConfigSchema } from '../../src/config.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { LAB, records, signerOf, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let redis: TestRedis;
let a: TestServer;
let b: TestServer;
const gateways: TestGateway[] = [];
const readers: MqttClient[] = [];
/** batches ingested by each node (the ingest's `samples` event, once per stored batch here) */
const ingested = new Map<TestServer, number>();

const clustered = (): { mqtt: { host: string; port: number; cluster: { redis: { url: string; passwordFile: string } } } } => ({
  mqtt: { host: '127.0.0.1', port: 0, cluster: { redis: { url: redis.url, passwordFile: redis.passwordFile } } },
});

const storedSamples = (t: TestServer): number => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number }).n;

async function node(): Promise<TestServer> {
  const t = await startServer(clustered());
  ingested.set(t, 0);
  t.server.ingest.on('samples', () => ingested.set(t, (ingested.get(t) ?? 0) + 1));
  return t;
}

/** A reader (role reader) on a node, collecting every message of the lab it receives there. */
async function reader(t: TestServer, clientId: string): Promise<{ topic: string; payload: string }[]> {
  const seen: { topic: string; payload: string }[] = [];
  const client = await mqtt.connectAsync(t.mqttUrl, { clientId, username: 'viewer', password: t.readerPassword, reconnectPeriod: 0 });
  readers.push(client);
  client.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  await client.subscribeAsync(`labtrace/v1/${LAB}/#`, { qos: 1 });
  return seen;
}

beforeAll(async () => {
  redis = await startRedis();
  a = await node();
  b = await node();
}, 60_000);

afterAll(async () => {
  for (const r of readers) await r.endAsync(true);
  for (const g of gateways) await g.end();
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

test('a batch is ingested by the node its gateway is connected to, once, though every node sees it; the ACK comes back', async () => {
  const onB = await reader(b, 'reader-on-b');
  const gw = await TestGateway.connect(a, 'gw-a');
  gateways.push(gw);
  await gw.birth('ut-a');
  for (let i = 0; i < 5; i++) await gw.publish(gw.seal(records('ut-a', i * 4, 4)));
  await waitFor('the ACKs of gw-a', () => gw.acks.length >= 5);
  expect(gw.acks).toEqual([0, 1, 2, 3, 4]);
  // node B's broker got every DATA (through Redis) and the ACKs node A published
  await waitFor('the DATA and ACKs on node B', () => onB.filter((m) => m.topic.startsWith(topicFor(LAB, 'gw-a', 'DATA'))).length >= 5);
  await waitFor('the ACKs on node B', () => onB.filter((m) => m.topic === topicFor(LAB, 'gw-a', 'ACK')).length >= 5);
  // ... and ingested none of them
  expect(storedSamples(a)).toBe(20);
  expect(ingested.get(a)).toBe(5);
  expect(storedSamples(b)).toBe(0);
  expect(ingested.get(b)).toBe(0);
  expect(a.server.broker.connectedGateways()).toEqual(['gw-a']);
  expect(b.server.broker.connectedGateways()).toEqual([]);
}, 60_000);

test('a gateway connected to node B: stored by B only; node A sees its batches and ingests none', async () => {
  const onA = await reader(a, 'reader-on-a');
  const beforeA = storedSamples(a);
  const gw = await TestGateway.connect(b, 'gw-b');
  gateways.push(gw);
  await gw.birth('ut-b');
  for (let i = 0; i < 3; i++) await gw.publish(gw.seal(records('ut-b', i * 4, 4)));
  await waitFor('the ACKs of gw-b', () => gw.acks.length >= 3);
  expect(gw.acks).toEqual([0, 1, 2]);
  await waitFor('the DATA on node A', () => onA.filter((m) => m.topic === topicFor(LAB, 'gw-b', 'DATA')).length >= 3);
  expect(storedSamples(b)).toBe(12);
  expect(ingested.get(b)).toBe(3);
  expect(storedSamples(a)).toBe(beforeA);
  expect(ingested.get(a)).toBe(5);
}, 60_000);

test('a gateway session is shared: subscribed on node A, the gateway reconnects to node B and gets its ACKs there', async () => {
  // a persistent session (clean: false) of gw-s subscribes to its ACK topic on node A, then goes away. (One topic per
  // SUBSCRIBE: a persistent session subscribing to two topics in one SUBSCRIBE is never answered with Redis
  // persistence; the real gateway uses clean sessions, which this does not touch; docs/scale-out.md.)
  const connect = async (t: TestServer): Promise<{ client: MqttClient; sessionPresent: boolean }> => {
    const client = mqtt.connect(t.mqttUrl, { clientId: 'gw-s', username: 'gw-s', password: t.password, clean: false, reconnectPeriod: 0 });
    readers.push(client);
    const sessionPresent = await new Promise<boolean>((resolve, reject) => {
      client.once('connect', (packet) => resolve(packet.sessionPresent));
      client.once('error', reject);
    });
    return { client, sessionPresent };
  };
  const first = await connect(a);
  await first.client.subscribeAsync(topicFor(LAB, 'gw-s', 'ACK'), { qos: 1 });
  await first.client.endAsync();
  // on node B, the same client id finds its session in Redis (sessionPresent) with its subscription: it does not
  // subscribe again, and node B's ingest publishes the ACK of its batch to it
  const { client, sessionPresent } = await connect(b);
  expect(sessionPresent).toBe(true);
  const acks: number[] = [];
  client.on('message', (topic, payload) => {
    if (topic === topicFor(LAB, 'gw-s', 'ACK')) acks.push((JSON.parse(payload.toString()) as { batch: number }).batch);
  });
  const before = ingested.get(b) ?? 0;
  await client.publishAsync(
    topicFor(LAB, 'gw-s', 'BIRTH'),
    JSON.stringify({
      v: 1,
      gateway: 'gw-s',
      session: 1,
      version: 't',
      instruments: [{ id: 'ut-s', identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: '' }] }],
    }),
    { qos: 1 },
  );
  const { wire } = sealBatch(signerOf('gw-s'), 'gw-s', 0, records('ut-s', 0, 4), null);
  await client.publishAsync(topicFor(LAB, 'gw-s', 'DATA'), Buffer.from(wire), { qos: 1 });
  await waitFor('the ACK of gw-s on node B', () => acks.length >= 1);
  expect(acks).toEqual([0]);
  expect(ingested.get(b)).toBe(before + 1);
  expect(ingested.get(a)).toBe(5);
}, 60_000);

test('mqtt.cluster.redis: no credentials in the URL; the password from a file or the environment', async () => {
  const parsed = serverConfigSchema.safeParse({ lab: 'lab-1', mqtt: { cluster: { redis: { url: 'redis://:secret@127.0.0.1:6379' } } } });
  expect(parsed.success).toBe(false);
  expect(JSON.stringify(parsed.error?.issues)).toMatch(/mqtt.*cluster.*redis.*url|no user or password/);
  const saved = process.env['LABTRACE_REDIS_PASSWORD'];
  delete process.env['LABTRACE_REDIS_PASSWORD'];
  try {
    await expect(startServer({ mqtt: { host: '127.0.0.1', port: 0, cluster: { redis: { url: redis.url } } } })).rejects.toThrow(
      /mqtt\.cluster\.redis\.passwordFile: required/,
    );
  } finally {
    if (saved !== undefined) process.env['LABTRACE_REDIS_PASSWORD'] = saved;
  }
});
