// Live updates across server nodes: two real server nodes share socket.io's emits through a real Redis 7 (the Redis
// streams adapter), so a dashboard connected to node B receives what node A ingested, and a node that stops ends
// only its own sockets. (Each node has its own SQLite store here; with a shared store, run rooms work across nodes
// the same way: a room is joined on the node the dashboard is connected to, after that node's visibility check.)
import http from 'node:http';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import { LabtraceError, type ClientToServerEvents, type LiveSample, type ServerToClientEvents } from '@labtrace/protocols';
import { serverConfigSchema } from '../../src/config.js';
import { LiveHub } from '../../src/live/live-hub.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let redis: TestRedis;
let a: TestServer;
let b: TestServer;
let gw: TestGateway;
const sockets: Socket[] = [];

const clustered = (): { live: { redis: { url: string; passwordFile: string; stream: string } } } => ({
  live: { redis: { url: redis.url, passwordFile: redis.passwordFile, stream: 'labtrace-test:live' } },
});

beforeAll(async () => {
  redis = await startRedis();
  a = await startServer(clustered());
  b = await startServer(clustered());
  gw = await TestGateway.connect(a, 'gw-a');
  await gw.birth('ut-1');
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await gw?.end();
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

function connect(t: TestServer): Socket<ServerToClientEvents, ClientToServerEvents> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, {
    transports: ['websocket'],
    auth: { token: t.tokens.technician },
    reconnection: false,
  });
  sockets.push(socket);
  return socket;
}

const connected = (socket: Socket): Promise<void> =>
  new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });

test('a dashboard on node B receives the samples node A ingested, and the list changes node A announces', async () => {
  const onB = connect(b);
  await connected(onB);
  const seen: LiveSample[] = [];
  onB.on('samples', (samples) => seen.push(...samples));
  const changes: { list: string; id: string }[] = [];
  onB.on('changed', (c) => changes.push(c));
  // the adapter subscribes as the nodes start; an emit before B's subscription is not replayed, so send until one lands
  let first = 0;
  await waitFor(
    'a sample of node A on node B',
    () => {
      if (seen.length === 0) void send(a, gw, gw.sign(records('ut-1', (first += 10), 10, 42)));
      return seen.length > 0;
    },
    20_000,
  );
  expect(seen[0]).toMatchObject({ gateway: 'gw-a', instrument: 'ut-1', value: 42 });
  // node B stored nothing: the sample came through Redis, not through B's own ingest
  expect(b.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM batch_headers').get()).toEqual({ n: 0 });
  a.server.live.changed({ list: 'runs', id: 'run-from-a' });
  await waitFor('the change on node B', () => changes.some((c) => c.id === 'run-from-a'), 5_000);
});

test('a node that stops ends only its own sockets; the others keep receiving', async () => {
  const onA = connect(a);
  await connected(onA);
  const c = await startServer(clustered());
  const onC = connect(c);
  await connected(onC);
  let aDisconnected = false;
  onA.on('disconnect', () => (aDisconnected = true));
  await c.stop();
  await waitFor('node C’s socket ends', () => !onC.connected, 5_000);
  const changes: string[] = [];
  onA.on('changed', (x) => changes.push(x.id));
  b.server.live.changed({ list: 'runs', id: 'after-c-stopped' });
  await waitFor('a change from node B on node A', () => changes.includes('after-c-stopped'), 5_000);
  expect(aDisconnected).toBe(false);
  expect(onA.connected).toBe(true);
}, 30_000);

test('a user signed out on node A is disconnected on node B too', async () => {
  const onB = connect(b);
  await connected(onB);
  a.server.live.disconnectUser('technician');
  await waitFor('the socket on node B ends', () => !onB.connected, 5_000);
});

test('Redis without a password is refused at start; a password in the URL is refused by the schema, naming the field', async () => {
  const saved = process.env['LABTRACE_REDIS_PASSWORD'];
  delete process.env['LABTRACE_REDIS_PASSWORD'];
  try {
    await expect(startServer({ live: { redis: { url: redis.url } } })).rejects.toThrow(/live\.redis\.passwordFile: required/);
  } finally {
    if (saved !== undefined) process.env['LABTRACE_REDIS_PASSWORD'] = saved;
  }
  const parsed = serverConfigSchema.safeParse({ lab: 'lab-1', live: { redis: { url: 'redis://:secret@127.0.0.1:6379' } } });
  expect(parsed.success).toBe(false);
  expect(parsed.error?.issues[0]?.path).toEqual(['live', 'redis', 'url']);
  // a wrong password: the hub does not start, the message names the field and not the password
  const hub = new LiveHub(http.createServer(), 'test', a.server.users, undefined, undefined, {
    url: redis.url,
    password: 'not-the-password',
    stream: 'labtrace-test:live',
  });
  const failure = await hub.start().catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(LabtraceError);
  expect((failure as Error).message).toMatch(/^live\.redis\.url: cannot connect to Redis/);
  expect((failure as Error).message).not.toContain('not-the-password');
});
