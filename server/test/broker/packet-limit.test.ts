// The embedded broker's limits on every listener: a packet declaring more than the limit closes its
// connection at the fixed header, before any of its body is sent or buffered (64 KiB before a login
// succeeds, mqtt.maxPacketBytes after); one address may hold a bounded number of connections.
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { topicFor } from '@labtrace/protocols';
import { PacketLimit, type Oversize } from '../../src/broker/packet-limit.js';
import type { SecurityEvent } from '../../src/trust/security-events.js';
import { LAB, startServer, waitFor, type TestServer } from '../helpers/server.js';

const MAX_PACKET = 100_000;
const PER_ADDRESS = 4;
let t: TestServer;
const clients: MqttClient[] = [];
const sockets: net.Socket[] = [];

beforeAll(async () => {
  t = await startServer({
    mqtt: { host: '127.0.0.1', port: 0, maxPacketBytes: MAX_PACKET, maxConnectionsPerAddress: PER_ADDRESS },
  });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await t.stop();
});

/** The fixed header of a packet of type `type` declaring `length` bytes to follow. */
function fixedHeader(type: number, length: number): Buffer {
  const bytes = [type << 4];
  let n = length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

/** An MQTT 3.1.1 CONNECT with a username and a password. */
function connectPacket(clientId: string, username: string, password: Buffer): Buffer {
  const field = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const body = Buffer.concat([
    field(Buffer.from('MQTT')),
    Buffer.from([4, 0xc2, 0, 30]), // level 4; username, password, clean session; keep-alive 30 s
    field(Buffer.from(clientId)),
    field(Buffer.from(username)),
    field(password),
  ]);
  return Buffer.concat([fixedHeader(1, body.length), body]);
}

function openSocket(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(t.server.mqttPort, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => undefined);
    socket.once('error', reject);
    sockets.push(socket);
  });
}

/** Resolves when the server closes the socket, with the bytes it answered. */
function closedByServer(socket: net.Socket): Promise<Buffer> {
  const received: Buffer[] = [];
  socket.on('data', (b: Buffer) => received.push(b));
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(Buffer.concat(received));
    else socket.once('close', () => resolve(Buffer.concat(received)));
  });
}

async function events(kind: string): Promise<SecurityEvent[]> {
  const res = await t.fetch(`/api/security-events?kind=${kind}&limit=500`);
  return ((await res.json()) as { items: SecurityEvent[] }).items;
}

async function login(options: mqtt.IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(t.mqttUrl, { reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

describe('packet size', () => {
  test('a CONNECT declaring 200 MB is closed at its header: nothing of the body is sent', async () => {
    const socket = await openSocket();
    const closed = closedByServer(socket);
    socket.write(fixedHeader(1, 200 * 1024 * 1024));
    // the server closes without the body: had it waited for it, this would never resolve
    expect((await closed).length).toBe(0);
    await waitFor('the refusal recorded', () => t.server.events.list({ kind: 'oversize-packet' }).length > 0);
    const [event] = await events('oversize-packet');
    expect(event).toMatchObject({
      gateway: '',
      severity: 'notice',
      address: expect.stringMatching(/127\.0\.0\.1/),
      detail: 'connection closed: it declared a packet of more than 65536 bytes before authenticating',
    });
    // the broker still serves everyone else
    const reader = await login({ clientId: 'reader-after', username: 'viewer', password: t.readerPassword });
    expect(reader.connected).toBe(true);
  });

  test('a declared length that no MQTT packet has (five length bytes) is closed too', async () => {
    const socket = await openSocket();
    const closed = closedByServer(socket);
    socket.write(Buffer.from([0x10, 0x81, 0x80, 0x80, 0x80]));
    expect((await closed).length).toBe(0);
    // from the same address in the same window: counted on the row of the first
    await waitFor('the refusal counted', () => t.server.events.list({ kind: 'oversize-packet' })[0]?.count === 2);
  });

  test('before authentication a CONNECT may hold 64 KiB: a 70 KB password is refused unread', async () => {
    const socket = await openSocket();
    const closed = closedByServer(socket);
    const connect = connectPacket('big-login', 'viewer', Buffer.alloc(70_000, 0x61));
    socket.write(connect.subarray(0, 8));
    expect((await closed).length).toBe(0);
  });

  test('after authentication packets up to mqtt.maxPacketBytes pass; a larger one closes the connection', async () => {
    const gw = await login({ clientId: 'gw-a', username: 'gw-a', password: t.password });
    // 80 KB: above the limit before authentication, below the configured one
    await gw.publishAsync(topicFor(LAB, 'gw-a', 'HEALTH'), Buffer.alloc(80_000, 0x20), { qos: 1 });
    expect(gw.connected).toBe(true);
    const closed = new Promise<void>((resolve) => gw.once('close', () => resolve()));
    gw.publish(topicFor(LAB, 'gw-a', 'HEALTH'), Buffer.alloc(MAX_PACKET + 1, 0x20), { qos: 0 });
    await closed;
    await waitFor('the refusal recorded', () => t.server.events.list({ kind: 'oversize-packet', gateway: 'gw-a' }).length > 0);
    const [event] = t.server.events.list({ kind: 'oversize-packet', gateway: 'gw-a' });
    expect(event).toMatchObject({ severity: 'alarm', client: 'gw-a', detail: expect.stringMatching(/more than 100000 bytes \(mqtt.maxPacketBytes/) });
  });

  test('MQTT over WebSocket has the same limit', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${t.server.httpPort}/mqtt`, 'mqtt');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.send(fixedHeader(1, 200 * 1024 * 1024));
    await closed;
    expect(ws.readyState).toBe(WebSocket.CLOSED);
  });
});

describe('connections per address', () => {
  test(`the connection after ${PER_ADDRESS} open ones from one address is closed at once; one closing makes room`, async () => {
    // wait until the earlier tests' connections are gone
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    for (const s of sockets.splice(0)) s.destroy();
    await waitFor('earlier connections closed', () => t.server.embeddedBroker?.openConnections === 0);
    // held open by logged-in readers (a CONNACK proves the broker counted each)
    const held = [];
    for (let i = 0; i < PER_ADDRESS; i++) held.push(await login({ clientId: `held-${i}`, username: 'viewer', password: t.readerPassword }));
    const extra = await openSocket();
    const closed = closedByServer(extra);
    await closed;
    await waitFor('the refusal recorded', () => t.server.events.list({ kind: 'connection-refused' }).length > 0);
    expect((await events('connection-refused'))[0]).toMatchObject({
      gateway: '',
      address: expect.stringMatching(/127\.0\.0\.1/),
      detail: `more than ${PER_ADDRESS} connections from this address (mqtt.maxConnectionsPerAddress)`,
    });
    expect(held.every((c) => c.connected)).toBe(true);
    await held[0]!.endAsync();
    // the count follows the close: a new login gets in once the server has seen it
    let again: MqttClient | undefined;
    for (let i = 0; i < 100 && again === undefined; i++) {
      again = await login({ clientId: 'held-again', username: 'viewer', password: t.readerPassword }).catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(again?.connected).toBe(true);
  });
});

describe('framing: the check follows packet boundaries however the bytes are split', () => {
  /** A PUBLISH-like packet with `n` bytes after its fixed header. */
  const packet = (n: number): Buffer => Buffer.concat([fixedHeader(3, n), Buffer.alloc(n, n % 251)]);
  // lengths at each boundary of the variable-length encoding (1, 2 and 3 length bytes)
  const stream = Buffer.concat([0, 1, 127, 128, 16_383, 16_384, 70_000, 5].map(packet));

  async function through(bytes: Buffer, chunk: (i: number) => number, limit: number): Promise<{ out: Buffer; refused: Oversize[] }> {
    const inner = new PassThrough();
    const refused: Oversize[] = [];
    const guard = new PacketLimit(inner, limit, (o) => refused.push(o));
    const out: Buffer[] = [];
    guard.on('data', (b: Buffer) => out.push(b));
    guard.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => guard.once('close', () => resolve()));
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = chunk(i);
      inner.write(bytes.subarray(at, at + n));
      at += n;
    }
    inner.end();
    await ended;
    return { out: Buffer.concat(out), refused };
  }

  test.each([
    ['one byte at a time', () => 1],
    ['7 bytes at a time', () => 7],
    ['uneven chunks', (i: number) => [3, 1, 4, 1, 5, 9, 2, 6][i % 8]! * 97],
    ['all at once', () => stream.length],
  ])('%s: every byte passes, unchanged', async (_name, chunk) => {
    const { out, refused } = await through(stream, chunk, 70_000);
    expect(refused).toEqual([]);
    expect(out.equals(stream)).toBe(true);
  });

  test('a packet one byte over the limit, its header split across chunks, is refused at its header', async () => {
    const bytes = Buffer.concat([packet(10), fixedHeader(3, 70_001), Buffer.alloc(100)]);
    const { out, refused } = await through(bytes, () => 1, 70_000);
    expect(refused).toEqual([{ declared: 70_001, limit: 70_000, malformed: false }]);
    // the packet before it passed, and its header but for the length byte that makes it too large;
    // none of its body
    expect(out.length).toBe(15);
    expect(out.equals(bytes.subarray(0, 15))).toBe(true);
  });
});
