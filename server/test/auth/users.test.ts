import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { AuditTrail, SYSTEM_ACTOR } from '../../src/audit/audit-trail.js';
import { Users } from '../../src/auth/users.js';
import { LabDatabase } from '../../src/store/database.js';
import { startServer, USER_PASSWORD } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

const PASSWORD = 'correct horse battery';
let database: LabDatabase;
let users: Users;
let now: number;

beforeEach(async () => {
  database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-users-')), serverMigrations);
  await database.migrate();
  now = 1_800_000_000_000;
  const clock = (): number => now;
  users = new Users(database, new AuditTrail(database, clock), { now: clock, sessionTtlMs: 3_600_000, maxFailures: 3, lockoutMs: 600_000 });
  await users.create(SYSTEM_ACTOR, { username: 'tech', role: 'technician', password: PASSWORD });
});
afterEach(async () => {
  await database.close();
});

test('the first start creates admin with a one-time password, once', async () => {
  const first = await users.bootstrapAdmin();
  expect(first?.username).toBe('admin');
  expect(first?.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
  expect(await users.get('admin')).toMatchObject({ role: 'admin', mustChange: true });
  await expect(users.login('admin', first?.password ?? '')).resolves.toMatchObject({ user: { username: 'admin' } });
  expect(await users.bootstrapAdmin()).toBeUndefined();
});

test('the first start takes the given admin password, and keeps no plain password', async () => {
  expect(await users.bootstrapAdmin('given-admin-password')).toEqual({ username: 'admin', password: undefined });
  await expect(users.login('admin', 'given-admin-password')).resolves.toBeDefined();
  const row = database.sqlite.prepare("SELECT password_hash FROM users WHERE username = 'admin'").get() as { password_hash: string };
  expect(row.password_hash).toMatch(/^scrypt\$16384\$8\$1\$/);
  expect(row.password_hash).not.toContain('given-admin-password');
});

describe('lockout', () => {
  test('after repeated failures even the right password is refused, until the lockout ends', async () => {
    for (let i = 0; i < 3; i++) await expect(users.login('tech', 'wrong password!')).rejects.toMatchObject({ code: 'E_AUTH' });
    await expect(users.login('tech', PASSWORD)).rejects.toMatchObject({ code: 'E_AUTH', details: { reason: 'locked' } });
    now += 600_001;
    await expect(users.login('tech', PASSWORD)).resolves.toMatchObject({ user: { username: 'tech' } });
  });

  test('a success resets the count of failures', async () => {
    for (let i = 0; i < 2; i++) await expect(users.login('tech', 'wrong password!')).rejects.toThrow();
    await users.login('tech', PASSWORD);
    for (let i = 0; i < 2; i++) await expect(users.login('tech', 'wrong password!')).rejects.toThrow();
    await expect(users.login('tech', PASSWORD)).resolves.toBeDefined();
  });

  test('an unknown user is refused with the same message', async () => {
    const unknown = users.login('nobody', PASSWORD).catch((err: Error) => err.message);
    const wrong = users.login('tech', 'wrong password!').catch((err: Error) => err.message);
    expect(await unknown).toBe(await wrong);
  });
});

describe('sessions', () => {
  test('a session ends when it expires', async () => {
    const { token } = await users.login('tech', PASSWORD);
    expect((await users.authenticate(token, 'bearer'))?.username).toBe('tech');
    now += 3_600_000;
    expect(await users.authenticate(token, 'bearer')).toBeUndefined();
  });

  test('logout ends every session and API token of the user, not those of others', async () => {
    await users.create(SYSTEM_ACTOR, { username: 'sig', role: 'signatory', password: PASSWORD });
    const a = await users.login('tech', PASSWORD);
    const b = await users.login('tech', PASSWORD);
    const api = await users.createApiToken(SYSTEM_ACTOR, 'tech', 'script', 86_400_000);
    const other = await users.login('sig', PASSWORD);
    await users.logoutAll({ username: 'tech', role: 'technician' }, 'tech');
    for (const token of [a.token, b.token, api.token]) expect(await users.authenticate(token, 'bearer')).toBeUndefined();
    expect((await users.authenticate(other.token, 'bearer'))?.username).toBe('sig');
  });

  test('tokens are stored only as hashes', async () => {
    const { token } = await users.login('tech', PASSWORD);
    const stored = JSON.stringify(database.sqlite.prepare('SELECT * FROM sessions').all());
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(token.slice(4));
  });

  test('a password change needs the current password and ends every session', async () => {
    const { token } = await users.login('tech', PASSWORD);
    const principal = await users.authenticate(token, 'bearer');
    if (!principal) throw new Error('not signed in');
    await expect(users.changePassword(principal, 'not the password', 'a brand new password')).rejects.toMatchObject({ code: 'E_AUTH' });
    await users.changePassword(principal, PASSWORD, 'a brand new password');
    expect(await users.authenticate(token, 'bearer')).toBeUndefined();
    await expect(users.login('tech', PASSWORD)).rejects.toThrow();
    await expect(users.login('tech', 'a brand new password')).resolves.toBeDefined();
  });

  test("an auditor's access ends with the grant", async () => {
    await users.create(SYSTEM_ACTOR, { username: 'aud', role: 'auditor', password: PASSWORD, grantUntil: now + 60_000 });
    const { token } = await users.login('aud', PASSWORD);
    expect((await users.authenticate(token, 'bearer'))?.role).toBe('auditor');
    now += 60_000;
    expect(await users.authenticate(token, 'bearer')).toBeUndefined();
    await expect(users.login('aud', PASSWORD)).rejects.toThrow();
  });

  test('disabling a user or changing the role ends the sessions at once', async () => {
    const { token } = await users.login('tech', PASSWORD);
    await users.update(SYSTEM_ACTOR, 'tech', { role: 'signatory' }, 'moved to sign-off');
    expect(await users.authenticate(token, 'bearer')).toBeUndefined();
    const again = await users.login('tech', PASSWORD);
    expect((await users.authenticate(again.token, 'bearer'))?.role).toBe('signatory');
    await users.update(SYSTEM_ACTOR, 'tech', { disabled: true }, 'left the lab');
    expect(await users.authenticate(again.token, 'bearer')).toBeUndefined();
  });
});

test('roles and scopes: a client needs a known organization, an auditor a grant end, and the last admin stays', async () => {
  await expect(users.create(SYSTEM_ACTOR, { username: 'cli', role: 'client' })).rejects.toThrow(/organization: required/);
  await expect(users.create(SYSTEM_ACTOR, { username: 'cli', role: 'client', organization: 'acme' })).rejects.toThrow(/not known/);
  await users.createOrganization(SYSTEM_ACTOR, 'acme', 'ACME');
  await expect(users.create(SYSTEM_ACTOR, { username: 'cli', role: 'client', organization: 'acme' })).resolves.toMatchObject({
    user: { organization: 'acme' },
  });
  await expect(users.create(SYSTEM_ACTOR, { username: 'aud', role: 'auditor' })).rejects.toThrow(/grantUntil/);
  await users.bootstrapAdmin('given-admin-password');
  await expect(users.update(SYSTEM_ACTOR, 'admin', { role: 'technician' }, 'oops')).rejects.toThrow(/last active admin/);
});

test('over HTTP: lockout after repeated failures, then throttling per address', async () => {
  const t = await startServer();
  try {
    const attempt = (password: string): Promise<Response> =>
      fetch(`${t.base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'technician', password }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await attempt('wrong password!')).status);
    const locked = await attempt(USER_PASSWORD);
    expect(locked.status).toBe(401);
    expect(((await locked.json()) as { error: string }).error).toMatch(/locked for a while/);
    for (let i = 0; i < 16; i++) statuses.push((await attempt('wrong password!')).status);
    expect(statuses).toEqual([...Array(19).fill(401), 429, 429]);
  } finally {
    await t.stop();
  }
}, 60_000);
