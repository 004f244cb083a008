// Result files at the server (files/raw-files.ts): a FILE message whose bytes hash to the SHA-256 it names is kept
// under that hash and confirmed to the gateway; one whose bytes do not, or that names another gateway, is neither
// kept nor confirmed (the gateway keeps its copy and sends it again), and is a security event of the gateway.
// Served as bytes to lab readers.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import { encodeRawFile, topicFor, type RawFileHeader } from '@labtrace/protocols';
import { LAB, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let t: TestServer;
let gw: mqtt.MqttClient;
const acks: unknown[] = [];

beforeAll(async () => {
  t = await startServer();
  gw = await mqtt.connectAsync(t.mqttUrl, { clientId: 'gw-a', username: 'gw-a', password: t.password, reconnectPeriod: 0 });
  gw.on('message', (_topic, payload) => acks.push(JSON.parse(payload.toString())));
  await gw.subscribeAsync(topicFor(LAB, 'gw-a', 'ACK'), { qos: 1 });
});

afterAll(async () => {
  await gw.endAsync();
  await t.stop();
});

const headerOf = (bytes: Buffer, over: Partial<RawFileHeader> = {}): RawFileHeader => ({
  v: 1,
  gateway: 'gw-a',
  instrument: 'utm-1',
  sha256: createHash('sha256').update(bytes).digest('hex'),
  name: 'test 1.csv',
  size: bytes.length,
  takenAt: 1_800_000_000_000,
  ...over,
});

test('a file whose bytes match its hash is kept, confirmed and served; a damaged or foreign one is neither', async () => {
  const good = Buffer.from('Time;Force [kN]\r\n01.01.2027 10:00:00.000;11,125\r\n');
  const damaged = Buffer.from('Time;Force [kN]\r\n01.01.2027 10:00:00.000;99,999\r\n');
  const foreign = Buffer.from('another file');
  // damaged in transit: the header names the good file's hash
  await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(good, { size: damaged.length }), damaged)), { qos: 1 });
  await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(foreign, { gateway: 'gw-b' }), foreign)), { qos: 1 });
  await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(good), good)), { qos: 1 });
  const hash = headerOf(good).sha256;
  await waitFor('the ACK of the good file', () => acks.length > 0);
  expect(acks).toEqual([{ v: 1, file: hash }]);

  const res = await t.fetch(`/api/raw-files/${hash}`, {}, 'auditor');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/octet-stream');
  expect(res.headers.get('content-disposition')).toBe('attachment; filename="test_1.csv"');
  expect(Buffer.from(await res.arrayBuffer()).equals(good)).toBe(true);
  expect((await t.fetch(`/api/raw-files/${headerOf(foreign).sha256}`)).status).toBe(404);

  // sent again (a lost ACK): kept once, confirmed again
  await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(good), good)), { qos: 1 });
  await waitFor('the second ACK', () => acks.length > 1);
  const rows = t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM raw_files').get() as { n: number };
  expect(rows.n).toBe(1);
  expect((await t.fetch(`/api/raw-files/${hash.toUpperCase()}`)).status).toBe(400);

  // each refusal is a security event of the sending gateway, naming what was wrong
  expect(await eventsOf('malformed')).toEqual([`FILE: raw file: the bytes hash to ${headerOf(damaged).sha256}, the header says ${hash}`]);
  expect(await eventsOf('foreign-gateway')).toEqual([`FILE ${headerOf(foreign).sha256}: names gateway "gw-b"; not kept`]);
});

/** The details of gw-a's security events of a kind, once there is one. */
async function eventsOf(kind: string): Promise<string[]> {
  let details: string[] = [];
  await waitFor(`a ${kind} event`, async () => {
    const res = await t.fetch(`/api/security-events?gateway=gw-a&kind=${kind}`, {}, 'auditor');
    details = ((await res.json()) as { items: { detail: string }[] }).items.map((e) => e.detail);
    return details.length > 0;
  });
  return details;
}

test("a file for another gateway's instrument is not kept", async () => {
  const other = await TestGateway.connect(t, 'gw-b');
  try {
    await other.birth('owned-by-b');
    await waitFor(
      'the BIRTH of gw-b recorded',
      () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'owned-by-b'").get() !== undefined,
    );
    const bytes = Buffer.from("not gw-a's to send");
    const before = acks.length;
    await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(bytes, { instrument: 'owned-by-b' }), bytes)), {
      qos: 1,
    });
    // a file sent after it is confirmed: the refused one was handled before it
    const later = Buffer.from('a later file');
    await gw.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(headerOf(later), later)), { qos: 1 });
    await waitFor('the later ACK', () => acks.length > before);
    expect(acks.slice(before)).toEqual([{ v: 1, file: headerOf(later).sha256 }]);
    expect((await t.fetch(`/api/raw-files/${headerOf(bytes).sha256}`)).status).toBe(404);
    expect(await eventsOf('foreign-instrument')).toEqual([
      `FILE ${headerOf(bytes).sha256}: instrument "owned-by-b" belongs to gateway gw-b; not kept`,
    ]);
  } finally {
    await other.client.endAsync();
  }
});
