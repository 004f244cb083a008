// A test run's live room: one push per stored batch, packed in columns, to the sockets watching the run and no
// others; the packed push unpacks to exactly the stored records.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import {
  unpackRunSamples,
  type ClientToServerEvents,
  type LiveSample,
  type RunSampleColumns,
  type RunWatchAnswer,
  type Sample,
  type ServerToClientEvents,
} from '@labtrace/protocols';
import { ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
const sockets: Socket[] = [];

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await gw.end();
  await t.stop();
});

function connect(): { socket: Socket<ServerToClientEvents, ClientToServerEvents>; pushes: RunSampleColumns[][] } {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, {
    transports: ['websocket'],
    auth: { token: t.tokens.client },
    reconnection: false,
  });
  sockets.push(socket);
  const pushes: RunSampleColumns[][] = [];
  socket.on('run:samples', (_run, columns) => pushes.push(columns));
  return { socket, pushes };
}

async function call<T>(path: string, body?: unknown): Promise<T> {
  const res = await t.fetch(path, body === undefined ? {} : postJson(body), 'technician');
  expect(res.ok).toBe(true);
  return (await res.json()) as T;
}

test('each stored batch reaches the watchers of the run once, packed, and unpacks to the stored records', async () => {
  await call('/api/methods', {
    id: 'm',
    standard: 'ISO 6892-1:2019',
    title: 'tensile',
    definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' } },
  });
  await call('/api/lab-samples', { id: 'S-1', organization: ORGANIZATION, description: 'bar', condition: 'intact', receivedAt: Date.now() });
  const run = (await call<{ id: string }>('/api/runs', { sample: 'S-1', method: 'm', instruments: ['ut-1'] })).id;
  const watchers = [connect(), connect()];
  const bystander = connect();
  for (const w of watchers)
    expect(await new Promise<RunWatchAnswer>((resolve) => w.socket.emit('run:watch', run, resolve))).toMatchObject({ ok: true });
  await waitFor('the bystander connected', () => bystander.socket.connected);
  await call(`/api/runs/${run}/start`, {});

  // two channels interleaved, as a gateway numbers them, and a quality that changes
  const batch = (first: number): Sample[] =>
    Array.from({ length: 40 }, (_, i) => ({
      seq: first + i,
      instrument: 'ut-1',
      channel: i % 2 === 0 ? 'c' : 'd',
      ts: 1_800_000_000_000 + (first + i) * 20,
      value: i % 2 === 0 ? i * 1.5 : i,
      unit: i % 2 === 0 ? 'kN' : 'mm',
      quality: i === 7 ? 'uncertain' : 'good',
    }));
  expect(await send(t, gw, gw.sign(batch(0)))).toBe('acked');
  expect(await send(t, gw, gw.sign(batch(40)))).toBe('acked');
  await waitFor('both pushes at both watchers', () => watchers.every((w) => w.pushes.length === 2));

  const stored = (await call<{ samples: LiveSample[] }>(`/api/runs/${run}/records`)).samples;
  expect(stored).toHaveLength(80);
  const order = (list: LiveSample[]) => [...list].sort((a, b) => a.seq - b.seq);
  for (const w of watchers) {
    // one push per batch, each grouped by stream
    expect(w.pushes.map((p) => p.map((c) => c.channel))).toEqual([
      ['c', 'd'],
      ['c', 'd'],
    ]);
    expect(order(w.pushes.flatMap((p) => unpackRunSamples(p)))).toEqual(order(stored));
  }
  // a signed-in socket that does not watch the run receives none of it (the same push reached the watchers)
  expect(bystander.pushes).toEqual([]);
});
