// Sign-in events in the audit trail, so that an auditor can review shared accounts and privilege changes:
// logins (with the address and the user agent), refused logins with their cause, lockouts, logouts,
// password and role changes; never a password or a token.
import type { Page } from '@labtrace/protocols/api';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { AuditEntry } from '../../src/index.js';
import { postJson, startServer, USER_PASSWORD, type TestServer } from '../helpers/server.js';

let t: TestServer;
const SECRET_TYPED = 'this-is-a-password-in-the-user-field';

beforeAll(async () => {
  t = await startServer({}, undefined);
  await t.server.users.create({ username: 'test-setup', role: 'system' }, { username: 'erin', role: 'technician', password: USER_PASSWORD });
});
afterAll(async () => {
  await t.stop();
});

const login = (username: string, password: string, userAgent = 'test-agent/1'): Promise<Response> =>
  fetch(`${t.base}/api/auth/login`, {
    ...postJson({ username, password }),
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
  });

async function trail(query: string): Promise<AuditEntry[]> {
  const res = await t.fetch(`/api/audit-trail?${query}&limit=500`, {}, 'auditor');
  expect(res.status).toBe(200);
  // newest first: the tests read them oldest first
  return ((await res.json()) as Page<AuditEntry>).items.reverse();
}

test('a login is recorded as the user, with the address and user agent; a logout too', async () => {
  const res = await login('erin', USER_PASSWORD, 'browser A');
  expect(res.status).toBe(200);
  const { token } = (await res.json()) as { token: string };
  expect((await login('erin', USER_PASSWORD, 'browser B')).status).toBe(200);
  const logins = await trail('action=login&recordId=erin');
  expect(logins).toEqual([
    expect.objectContaining({
      actor: 'erin',
      actorRole: 'technician',
      recordType: 'session',
      newValue: expect.objectContaining({ ip: expect.stringMatching(/127\.0\.0\.1/), userAgent: 'browser A' }),
    }),
    expect.objectContaining({ actor: 'erin', newValue: expect.objectContaining({ userAgent: 'browser B' }) }),
  ]);
  const out = await fetch(`${t.base}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  expect(out.status).toBe(204);
  expect(await trail('action=logout&recordId=erin')).toEqual([expect.objectContaining({ actor: 'erin', recordType: 'session' })]);
});

test('refused logins carry their cause; the attempt that locks the account adds a lockout', async () => {
  for (let i = 0; i < 5; i++) expect((await login('erin', 'wrong password!!')).status).toBe(401);
  expect((await login('erin', USER_PASSWORD)).status).toBe(401); // locked: the right password is refused too
  const failed = await trail('action=login-failed&recordId=erin');
  expect(failed.map((e) => (e.newValue as { cause: string }).cause)).toEqual([
    'password',
    'password',
    'password',
    'password',
    'locked-now',
    'locked',
  ]);
  expect(failed.every((e) => e.actor === 'anonymous')).toBe(true);
  expect(await trail('action=lockout&recordId=erin')).toEqual([
    expect.objectContaining({ recordType: 'user', newValue: expect.objectContaining({ failures: 5 }), reason: '5 wrong passwords in a row' }),
  ]);
});

test('an unknown user name is not recorded: it may be a password typed in the wrong field', async () => {
  expect((await login(SECRET_TYPED, 'x')).status).toBe(401);
  const [entry] = (await trail('action=login-failed&recordId=(unknown user)')).slice(-1);
  expect(entry?.newValue).toMatchObject({ cause: 'unknown-user' });
});

test('role changes are privilege changes; password changes are recorded; no secret is in the trail', async () => {
  const patch = await t.fetch('/api/users/signatory', {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'technician', reason: 'moved to testing' }),
  });
  expect(patch.status).toBe(200);
  expect(await trail('action=privilege-change&recordId=signatory')).toEqual([
    expect.objectContaining({
      actor: 'admin',
      oldValue: expect.objectContaining({ role: 'signatory' }),
      newValue: expect.objectContaining({ role: 'technician' }),
      reason: 'moved to testing',
    }),
  ]);
  const changed = await t.fetch('/api/auth/password', postJson({ currentPassword: USER_PASSWORD, newPassword: 'a much newer secret' }), 'client');
  expect(changed.status).toBe(204);
  expect(await trail('action=password-set&recordId=client')).toHaveLength(1);
  const everything = await (await t.fetch('/api/audit-trail/export', {}, 'admin')).text();
  for (const secret of [USER_PASSWORD, 'wrong password!!', 'a much newer secret', SECRET_TYPED, ...Object.values(t.tokens)])
    expect(everything).not.toContain(secret);
  expect(everything).not.toMatch(/scrypt\$|lts_|lta_/);
});
