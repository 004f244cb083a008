// A session cookie that is not valid percent-encoding is anyone's to send: it is no credential (the request is
// anonymous), never a 500 over HTTP or a crash of the server over socket.io.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { io } from 'socket.io-client';
import { USER_PASSWORD, startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

const MALFORMED = 'labtrace_session=%E0%A4%A';

test('over HTTP a malformed session cookie is no session: public routes answer, login works, the rest is 401', async () => {
  const health = await fetch(`${t.base}/api/health`, { headers: { cookie: MALFORMED } });
  expect(health.status).toBe(200);
  const login = await fetch(`${t.base}/api/auth/login`, {
    method: 'POST',
    headers: { cookie: MALFORMED, 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'technician', password: USER_PASSWORD }),
  });
  expect(login.status).toBe(200);
  const gateways = await fetch(`${t.base}/api/gateways`, { headers: { cookie: MALFORMED } });
  expect(gateways.status).toBe(401);
  expect(((await gateways.json()) as { code: string }).code).toBe('E_AUTH');
  // a bearer token beside it still counts
  const withToken = await fetch(`${t.base}/api/gateways`, { headers: { cookie: MALFORMED, authorization: `Bearer ${t.tokens.admin}` } });
  expect(withToken.status).toBe(200);
});

test('over socket.io a malformed session cookie is refused as no credential, and the server keeps serving', async () => {
  const socket = io(t.base, { transports: ['websocket'], extraHeaders: { cookie: MALFORMED }, reconnection: false });
  const outcome = await new Promise<string>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (err) => resolve(err.message));
  });
  socket.close();
  expect(outcome).toMatch(/^E_AUTH/);
  expect((await fetch(`${t.base}/api/health`)).status).toBe(200);
});

test('a socket event with an argument that cannot become a string is answered, not thrown out of the handler', async () => {
  const socket = io(t.base, { transports: ['websocket'], auth: { token: t.tokens.technician }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  // JSON gives the server a plain object whose toString is no function: String() of it throws
  const answer = await new Promise<unknown>((resolve) => socket.emit('run:watch', { toString: 1 }, resolve));
  socket.close();
  expect(answer).toEqual({ ok: false, error: 'expected a run id (a string)' });
  expect((await fetch(`${t.base}/api/health`)).status).toBe(200);
});
