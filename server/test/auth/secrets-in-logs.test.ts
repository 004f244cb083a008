// No password or token reaches a log line: every line the server logs while users sign in, fail, change
// passwords and make tokens is read back and searched for the secrets.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { startServer, USER_PASSWORD, type TestServer } from '../helpers/server.js';

const lines: string[] = [];
let t: TestServer;
beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  t = await startServer({}, pino({ level: 'trace' }, sink));
});
afterAll(async () => {
  await t.stop();
});

test('passwords and tokens never appear in the log', async () => {
  const secrets = [USER_PASSWORD, ...Object.values(t.tokens)];
  const post = (path: string, body: unknown, role: 'admin' | 'technician' | null = null): Promise<Response> =>
    t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, role);
  const login = await post('/api/auth/login', { username: 'technician', password: USER_PASSWORD });
  const { token } = (await login.json()) as { token: string };
  secrets.push(token);
  // a password typed into the user field by mistake is a secret too
  await post('/api/auth/login', { username: 'typed-the-password-here-1', password: 'wrong-password-1' });
  secrets.push('wrong-password-1', 'typed-the-password-here-1');
  await post('/api/auth/password', { currentPassword: USER_PASSWORD, newPassword: 'technician-new-secret' }, 'technician');
  secrets.push('technician-new-secret');
  const created = (await (await post('/api/auth/tokens', { name: 'script' }, 'admin')).json()) as { token: string };
  secrets.push(created.token);
  const user = (await (await post('/api/users', { username: 'dave', role: 'technician' }, 'admin')).json()) as { oneTimePassword: string };
  secrets.push(user.oneTimePassword);
  await post('/api/auth/logout', {}, 'admin');
  expect(lines.length).toBeGreaterThan(3);
  expect(lines.some((l) => l.includes('login refused'))).toBe(true);
  for (const secret of secrets) expect(lines.filter((l) => l.includes(secret))).toEqual([]);
});
