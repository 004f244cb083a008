// The whole skeleton as `npm start` runs it: simulator -> gateway -> broker -> store -> socket.io client.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, LiveSample, ServerToClientEvents } from '@labtrace/protocols';
import { signIn, startLab, waitFor, type LabProcess } from '../helpers/lab-process.js';

let lab: LabProcess;
let socket: Socket<ServerToClientEvents, ClientToServerEvents>;
let token: string;
const received: LiveSample[] = [];

beforeAll(async () => {
  lab = await startLab();
  token = await signIn(`http://127.0.0.1:${lab.httpPort}`);
  socket = io(`http://127.0.0.1:${lab.httpPort}`, { transports: ['websocket'], auth: { token } });
  socket.on('samples', (s) => received.push(...s));
  await waitFor('socket.io connection', () => (socket.connected ? true : undefined));
}, 90_000);

afterAll(async () => {
  socket?.close();
  if (lab && lab.proc.exitCode === null) await lab.stop('SIGKILL');
});

async function pin(instrument: string, values: Record<string, number | boolean>): Promise<void> {
  const res = await fetch(`${lab.controlUrl}/instruments/${instrument}/values`, { method: 'PUT', body: JSON.stringify(values) });
  expect(res.status).toBe(200);
}

test('health reports the broker, the store and the connected gateway', async () => {
  const health = await waitFor('gateway gw-1 connected', async () => {
    const body = (await (await fetch(`http://127.0.0.1:${lab.httpPort}/api/health`)).json()) as { gateways: { id: string; connected: boolean }[] };
    return body.gateways.some((g) => g.id === 'gw-1' && g.connected) ? body : undefined;
  });
  expect(health).toMatchObject({ status: 'ok', version: expect.any(String), broker: { status: 'ok' }, store: { status: 'ok' } });
});

test('the values the simulator serves arrive unchanged at a socket.io client', async () => {
  // Values chosen to exercise float32 in two word orders, a scaled int16, an int32 and a bool.
  const steps = [
    { climate: { temperature: 21.375, humidity: 48.39, setpoint: 23.5, door_open: true }, utm: { force: 12.345, extension: 4.567, specimen: 7 } },
    { climate: { temperature: -12.5, humidity: 97.25, setpoint: -10, door_open: false }, utm: { force: 41.999, extension: 11.999, specimen: 8 } },
  ];
  for (const step of steps) {
    await pin('climate-1', step.climate);
    await pin('utm-1', step.utm);
    for (const [instrument, values] of [
      ['climate-1', step.climate],
      ['utm-1', step.utm],
    ] as const) {
      for (const [channel, value] of Object.entries(values)) {
        const sample = await waitFor(`${instrument}/${channel} = ${String(value)}`, () =>
          received.find((s) => s.instrument === instrument && s.channel === channel && s.value === value && s.quality === 'good'),
        );
        expect(sample.gateway).toBe('gw-1');
      }
    }
  }
  const units = Object.fromEntries(received.map((s) => [`${s.instrument}/${s.channel}`, s.unit]));
  expect(units).toMatchObject({ 'climate-1/temperature': '°C', 'climate-1/humidity': '%RH', 'utm-1/force': 'kN', 'utm-1/extension': 'mm' });
}, 60_000);

test('the instrument list holds identities and latest values', async () => {
  const list = (await (
    await fetch(`http://127.0.0.1:${lab.httpPort}/api/instruments`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as {
    id: string;
    identity: { serialNumber: string };
    latest: Record<string, unknown>;
  }[];
  expect(list.map((i) => i.id).sort()).toEqual(['climate-1', 'utm-1']);
  expect(list.find((i) => i.id === 'utm-1')?.identity.serialNumber).toBe('ZR-734401');
  expect(Object.keys(list.find((i) => i.id === 'climate-1')?.latest ?? {}).sort()).toEqual(['door_open', 'humidity', 'setpoint', 'temperature']);
});

test('SIGTERM stops every part cleanly and keeps everything received', async () => {
  const code = await lab.stop('SIGTERM');
  expect(code).toBe(0);
  expect(lab.output()).toMatch(/server stopped/);
  const db = new Database(path.join(lab.dataDir, 'server', 'labtrace.sqlite'), { readonly: true });
  try {
    const stored = new Set((db.prepare('SELECT seq FROM measurements WHERE gateway = ?').all('gw-1') as { seq: number }[]).map((r) => r.seq));
    expect(received.length).toBeGreaterThan(0);
    const missing = received.filter((s) => !stored.has(s.seq));
    expect(missing).toEqual([]);
    // Sequence numbers are contiguous: nothing was dropped between the gateway and the store.
    const seqs = [...stored].sort((a, b) => a - b);
    expect(seqs[seqs.length - 1]! - seqs[0]! + 1).toBe(seqs.length);
  } finally {
    db.close();
  }
}, 30_000);
