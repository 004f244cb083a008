// socket.io: the handshake is authenticated, and the lab-wide stream reaches only the roles it is for.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, GatewayStatus, ServerToClientEvents } from '@labtrace/protocols';
import type { Role } from '../../src/index.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

let t: TestServer;
const sockets: Socket[] = [];
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await t.stop();
});

function connect(auth: Record<string, string> = {}, headers: Record<string, string> = {}): Socket<ServerToClientEvents, ClientToServerEvents> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, {
    transports: ['websocket'],
    auth,
    extraHeaders: headers,
    reconnection: false,
  });
  sockets.push(socket);
  return socket;
}

const outcome = (socket: Socket): Promise<string> =>
  new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (err) => resolve(err.message));
  });

test('a socket without a valid credential is refused', async () => {
  expect(await outcome(connect())).toMatch(/^E_AUTH/);
  expect(await outcome(connect({ token: 'lta_forged' }))).toMatch(/^E_AUTH/);
});

test('a browser socket authenticates with its session cookie', async () => {
  const res = await fetch(`${t.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'signatory', password: 'user-secret-for-tests' }),
  });
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  expect(await outcome(connect({}, { cookie }))).toBe('connected');
  // the same cookie on a socket opened by another site's page is refused
  expect(await outcome(connect({}, { cookie, origin: 'http://elsewhere.example' }))).toMatch(/^E_FORBIDDEN/);
  expect(await outcome(connect({}, { cookie, origin: t.base }))).toBe('connected');
});

test('the lab stream reaches staff and auditors, not clients', async () => {
  const got: Partial<Record<Role, GatewayStatus[]>> = {};
  for (const role of ['technician', 'auditor', 'client'] as const) {
    const socket = connect({ token: t.tokens[role] });
    expect(await outcome(socket)).toBe('connected');
    got[role] = [];
    socket.on('gateway', (g) => got[role]?.push(g));
  }
  t.server.live.gateway({ id: 'gw-x', connected: true, lastSeen: 1 });
  await waitFor('staff and auditor updates', () => got.technician?.length === 1 && got.auditor?.length === 1);
  // emitted at the same moment: had the client been in the room, its copy would have arrived by now
  await new Promise((r) => setTimeout(r, 200));
  expect(got.client).toEqual([]);
});

test('logout disconnects the user’s sockets', async () => {
  const socket = connect({ token: t.tokens.technician });
  expect(await outcome(socket)).toBe('connected');
  const gone = new Promise<string>((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
  expect((await t.fetch('/api/auth/logout', { method: 'POST' }, 'technician')).status).toBe(204);
  expect(await gone).toBe('io server disconnect');
});
