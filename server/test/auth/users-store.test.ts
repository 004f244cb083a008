// Users, sessions, API tokens and organizations through Kysely, the same code on SQLite and on a real PostgreSQL 15:
// the same cases give the same answers on both, each change in one transaction with its audit-trail entry (the trail
// one chain). On PostgreSQL, two nodes (two pools on one database) at once: one user per name, one admin from two
// first starts, every wrong password counted, a session ended on one node refused on the other, two admins demoting
// each other leave one, a token revoked once.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { AuditTrail, SYSTEM_ACTOR } from '../../src/audit/audit-trail.js';
import { Users, type AuthOptions } from '../../src/auth/users.js';
import { LabDatabase, migrateStore, type Tables } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const PASSWORD = 'correct horse battery';
const WRONG = 'not the password at all';

const fixture = new StoreFixture('users', 'users-store');
/** the sync parts of AuditTrail (reads, verify) need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh, migrated store (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes);
}

const actions = async (db: Kysely<Tables>): Promise<string[]> => (await auditChain(db)).map((r) => `${r.action} ${r.record_type} ${r.record_id}`);

/** a node's users module on `db`, on a clock the test moves */
function node(db: Kysely<Tables>, clock: { now: number }, options: AuthOptions = {}): Users {
  const now = (): number => clock.now;
  return new Users(db, new AuditTrail(unused, now), { now, sessionTtlMs: 3_600_000, maxFailures: 3, lockoutMs: 600_000, ...options });
}

const TECH = { username: 'tech', role: 'technician' as const, password: PASSWORD };

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('users and organizations: created once, listed, paged and searched, each with its audit entry', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const users = node(db, clock);
    expect(await users.count()).toBe(0);
    expect(await users.bootstrapAdmin('given-admin-password')).toEqual({ username: 'admin', password: undefined });
    expect(await users.bootstrapAdmin('given-admin-password')).toBeUndefined();
    expect(await users.createOrganization(SYSTEM_ACTOR, 'acme', 'ACME_Labs', 'q@acme.example')).toEqual({
      id: 'acme',
      name: 'ACME_Labs',
      contact: 'q@acme.example',
      createdAt: clock.now,
    });
    await expect(users.createOrganization(SYSTEM_ACTOR, 'acme', 'again')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await users.create(SYSTEM_ACTOR, TECH);
    await expect(users.create(SYSTEM_ACTOR, { ...TECH, role: 'signatory' })).rejects.toMatchObject({
      code: 'E_CONFLICT',
      refusal: { reason: 'record.exists' },
    });
    await expect(users.create(SYSTEM_ACTOR, { username: 'cli', role: 'client', organization: 'nope' })).rejects.toThrow(/"nope" is not known/);
    const { user, password } = await users.create(SYSTEM_ACTOR, { username: 'cli_1', role: 'client', organization: 'acme' });
    expect(user).toMatchObject({ username: 'cli_1', role: 'client', organization: 'acme', mustChange: true, disabled: false });
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await expect(
      users.create(SYSTEM_ACTOR, { username: 'aud', role: 'auditor', grantUntil: clock.now + 1000, grantOrganizations: ['acme', 'zzz'] }),
    ).rejects.toThrow(/grantOrganizations\[1\]: "zzz" is not known/);
    await users.create(SYSTEM_ACTOR, { username: 'aud', role: 'auditor', grantUntil: clock.now + 1000, grantOrganizations: ['acme'] });
    expect(await users.count()).toBe(4);
    expect((await users.list()).map((u) => u.username)).toEqual(['admin', 'aud', 'cli_1', 'tech']);
    expect(await users.get('aud')).toMatchObject({ grantOrganizations: ['acme'], grantUntil: clock.now + 1000 });
    expect(await users.get('nobody')).toBeUndefined();
    expect(await users.organizations()).toEqual([{ id: 'acme', name: 'ACME_Labs', contact: 'q@acme.example', createdAt: clock.now }]);
    // newest first, two a page; the search ignores case and takes % and _ literally
    const first = await users.page({ limit: 2 });
    expect(first.items.map((u) => u.username)).toEqual(['aud', 'cli_1']);
    const second = await users.page({ limit: 2, cursor: first.next ?? undefined });
    expect(second).toMatchObject({ items: [{ username: 'tech' }, { username: 'admin' }], next: null });
    expect((await users.page({ limit: 10, q: 'CLI' })).items.map((u) => u.username)).toEqual(['cli_1']);
    expect((await users.page({ limit: 10, q: 'ACME' })).items.map((u) => u.username)).toEqual(['cli_1']);
    expect((await users.page({ limit: 10, q: 'i_' })).items.map((u) => u.username)).toEqual(['cli_1']);
    expect((await users.page({ limit: 10, q: '%' })).items).toEqual([]);
    expect((await users.page({ limit: 10, role: 'admin' })).items.map((u) => u.username)).toEqual(['admin']);
    expect((await users.page({ limit: 10, disabled: true })).items).toEqual([]);
    expect(await actions(db)).toEqual(['create user admin', 'create organization acme', 'create user tech', 'create user cli_1', 'create user aud']);
    // no password in the trail, only hashes in the table
    const stored = JSON.stringify(await db.selectFrom('users').selectAll().execute());
    expect(stored).not.toContain(PASSWORD);
    expect(stored).not.toContain('given-admin-password');
    expect(stored).toMatch(/scrypt\$16384\$8\$1\$/);
    expect(JSON.stringify(await auditChain(db))).not.toMatch(/scrypt|given-admin-password|correct horse/);
  });

  test('sessions: hashed, expired, ended by logout, a password change, a role change or disabling, and pruned', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const users = node(db, clock);
    const ended: string[] = [];
    users.on('sessionsEnded', (u) => ended.push(u));
    await users.bootstrapAdmin('given-admin-password');
    await users.create(SYSTEM_ACTOR, TECH);
    const a = await users.login('tech', PASSWORD, { ip: '10.0.0.1', userAgent: 'agent/1' });
    expect(a).toMatchObject({ expiresAt: clock.now + 3_600_000, user: { username: 'tech' } });
    expect(await users.authenticate(a.token, 'cookie')).toMatchObject({ username: 'tech', role: 'technician', via: 'cookie', csrf: a.csrf });
    expect(await users.authenticate(a.token, 'bearer')).toMatchObject({ csrf: '' });
    expect(await users.authenticate('lts_unknown', 'bearer')).toBeUndefined();
    const rows = JSON.stringify(await db.selectFrom('sessions').selectAll().execute());
    expect(rows).not.toContain(a.token);
    expect(rows).not.toContain(a.token.slice(4));
    // expiry
    clock.now += 3_600_000;
    expect(await users.authenticate(a.token, 'bearer')).toBeUndefined();
    await users.prune();
    expect(await db.selectFrom('sessions').selectAll().execute()).toEqual([]);
    // logout ends every session and token of the user only
    const b = await users.login('tech', PASSWORD);
    const api = await users.createApiToken(SYSTEM_ACTOR, 'tech', 'script', 86_400_000);
    const admin = await users.login('admin', 'given-admin-password');
    await users.logoutAll({ username: 'tech', role: 'technician' }, 'tech', { ip: '10.0.0.2' });
    expect(await users.authenticate(b.token, 'bearer')).toBeUndefined();
    expect(await users.authenticate(api.token, 'bearer')).toBeUndefined();
    expect((await users.authenticate(admin.token, 'bearer'))?.username).toBe('admin');
    expect(ended).toEqual(['tech']);
    // a role change (privilege) ends the sessions; an update of nothing that matters does not
    const c = await users.login('tech', PASSWORD);
    const changed = await users.update(SYSTEM_ACTOR, 'tech', { role: 'signatory' }, 'moved to sign-off');
    expect(changed).toMatchObject({ role: 'signatory' });
    expect(await users.authenticate(c.token, 'bearer')).toBeUndefined();
    const d = await users.login('tech', PASSWORD);
    await users.update(SYSTEM_ACTOR, 'tech', {}, 'nothing');
    expect((await users.authenticate(d.token, 'bearer'))?.role).toBe('signatory');
    await users.update(SYSTEM_ACTOR, 'tech', { disabled: true }, 'left the lab');
    expect(await users.authenticate(d.token, 'bearer')).toBeUndefined();
    await expect(users.login('tech', PASSWORD)).rejects.toMatchObject({ code: 'E_AUTH', details: { reason: 'disabled' } });
    await users.update(SYSTEM_ACTOR, 'tech', { disabled: false }, 'back');
    // a password change needs the current password and ends every session
    const e = await users.login('tech', PASSWORD);
    const principal = await users.authenticate(e.token, 'bearer');
    if (principal === undefined) throw new Error('not signed in');
    await expect(users.changePassword(principal, WRONG, 'a brand new password')).rejects.toMatchObject({ code: 'E_AUTH' });
    await users.changePassword(principal, PASSWORD, 'a brand new password');
    expect(await users.authenticate(e.token, 'bearer')).toBeUndefined();
    await expect(users.login('tech', PASSWORD)).rejects.toMatchObject({ code: 'E_AUTH' });
    await expect(users.login('tech', 'a brand new password')).resolves.toMatchObject({ user: { mustChange: false } });
    // an admin's reset: a one-time password that must be changed
    const oneTime = await users.setPassword(SYSTEM_ACTOR, 'tech');
    const f = await users.login('tech', oneTime ?? '');
    expect(await users.authenticate(f.token, 'bearer')).toMatchObject({ mustChange: true });
    expect(ended).toEqual(['tech', 'tech', 'tech', 'tech', 'tech']);
    // the last active admin stays one
    await expect(users.update(SYSTEM_ACTOR, 'admin', { role: 'technician' }, 'oops')).rejects.toMatchObject({
      code: 'E_CONFLICT',
      refusal: { reason: 'user.last-admin' },
    });
    await expect(users.update(SYSTEM_ACTOR, 'admin', { disabled: true }, 'oops')).rejects.toThrow(/last active admin/);
    await expect(users.update(SYSTEM_ACTOR, 'nobody', {}, 'x')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // preferences
    expect(await users.setPreferences({ username: 'tech', role: 'signatory' }, 'tech', { locale: 'zh-CN', timeZone: 'Asia/Shanghai' })).toMatchObject(
      {
        locale: 'zh-CN',
        timeZone: 'Asia/Shanghai',
      },
    );
    expect(await users.setPreferences({ username: 'tech', role: 'signatory' }, 'tech', { timeZone: null })).toMatchObject({
      locale: 'zh-CN',
      timeZone: null,
    });
    const trail = await actions(db);
    expect(trail.filter((a) => a.startsWith('login session tech'))).toHaveLength(7);
    expect(trail).toEqual(
      expect.arrayContaining([
        'token-created user tech',
        'logout session tech',
        'privilege-change user tech',
        'update user tech',
        'password-set user tech',
        'update user-preferences tech',
      ]),
    );
  });

  test('failed logins lock the account for a while; every refusal is in the trail with its cause', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const users = node(db, clock);
    await users.create(SYSTEM_ACTOR, TECH);
    for (let i = 0; i < 2; i++) await expect(users.login('tech', WRONG)).rejects.toMatchObject({ details: { reason: 'password' } });
    // a success resets the count
    await users.login('tech', PASSWORD);
    for (let i = 0; i < 2; i++) await expect(users.login('tech', WRONG)).rejects.toMatchObject({ details: { reason: 'password' } });
    await expect(users.login('tech', WRONG)).rejects.toMatchObject({ details: { reason: 'locked-now' } });
    await expect(users.login('tech', PASSWORD)).rejects.toMatchObject({ details: { reason: 'locked' } });
    expect(await users.get('tech')).toMatchObject({ lockedUntil: clock.now + 600_000 });
    clock.now += 600_001;
    await expect(users.login('tech', PASSWORD)).resolves.toMatchObject({ user: { username: 'tech' } });
    // an unknown user: the same message, recorded without the name typed
    const unknown = await users.login('nobody', PASSWORD).catch((err: Error) => err.message);
    const wrong = await users.login('tech', WRONG).catch((err: Error) => err.message);
    expect(unknown).toBe(wrong);
    const rows = await auditChain(db);
    const failed = rows.filter((r) => r.action === 'login-failed');
    expect(failed.map((r) => [r.record_id, (JSON.parse(r.new_value ?? '{}') as { cause: string }).cause])).toEqual([
      ['tech', 'password'],
      ['tech', 'password'],
      ['tech', 'password'],
      ['tech', 'password'],
      ['tech', 'locked-now'],
      ['tech', 'locked'],
      ['(unknown user)', 'unknown-user'],
      ['tech', 'password'],
    ]);
    expect(failed.every((r) => r.actor === 'anonymous')).toBe(true);
    expect(rows.filter((r) => r.action === 'lockout').map((r) => r.reason)).toEqual(['3 wrong passwords in a row']);
  });

  test('API tokens: numbered, listed without secrets, revoked by their owner or an admin only, once', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const users = node(db, clock);
    await users.bootstrapAdmin('given-admin-password');
    await users.create(SYSTEM_ACTOR, TECH);
    await users.login('tech', PASSWORD); // a session takes a number too, and is no API token
    const one = await users.createApiToken(SYSTEM_ACTOR, 'tech', 'script', 86_400_000);
    const two = await users.createApiToken(SYSTEM_ACTOR, 'admin', 'backup', 60_000);
    expect(one.token).toMatch(/^lta_/);
    expect(two.id).toBeGreaterThan(one.id);
    await expect(users.createApiToken(SYSTEM_ACTOR, 'nobody', 'x', 1000)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await users.apiTokens()).toEqual([
      { id: two.id, name: 'backup', username: 'admin', role: 'admin', createdAt: clock.now, expiresAt: clock.now + 60_000 },
      { id: one.id, name: 'script', username: 'tech', role: 'technician', createdAt: clock.now, expiresAt: clock.now + 86_400_000 },
    ]);
    expect((await users.apiTokens('tech')).map((t) => t.id)).toEqual([one.id]);
    expect(JSON.stringify(await users.apiTokens())).not.toContain(one.token.slice(4));
    // another's token answers 404 like an unknown one
    await expect(users.revokeApiToken({ username: 'tech', role: 'technician' }, two.id, 'tech', 'not mine')).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    expect(await users.revokeApiToken({ username: 'tech', role: 'technician' }, one.id, 'tech', 'leaked')).toMatchObject({ id: one.id });
    expect(await users.authenticate(one.token, 'bearer')).toBeUndefined();
    await expect(users.revokeApiToken(SYSTEM_ACTOR, one.id, undefined, 'again')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // an expired one is no longer listed
    clock.now += 60_000;
    expect(await users.apiTokens()).toEqual([]);
    const revoked = (await auditChain(db)).filter((r) => r.action === 'state-change');
    expect(revoked.map((r) => [r.record_type, r.record_id, r.reason])).toEqual([['api-token', `tech/${one.id}`, 'leaked']]);
  });
});

test('on SQLite, API tokens keep the numbers they had before the migration (their SQLite rowids)', async () => {
  const dir = fixture.tempDir();
  const database = new LabDatabase(dir, serverMigrations);
  try {
    const before = Object.fromEntries(Object.entries(serverMigrations).filter(([name]) => name < '0046_session_ids'));
    await migrateStore(database.db, before);
    const db = database.sqlite;
    db.prepare("INSERT INTO users (username, role, password_hash, created_at, password_changed_at) VALUES ('tech', 'technician', 'x', 0, 0)").run();
    const insert = db.prepare('INSERT INTO sessions (token_hash, user_id, kind, name, created_at, expires_at) VALUES (?, 1, ?, ?, 0, ?)');
    for (const [hash, kind, name] of [
      ['h1', 'api', 'a'],
      ['h2', 'session', null],
      ['h3', 'api', 'c'],
    ] as const)
      insert.run(hash, kind, name, 2_000_000_000_000);
    db.prepare("DELETE FROM sessions WHERE token_hash = 'h1'").run();
    const rowids = db.prepare('SELECT rowid AS id, token_hash FROM sessions ORDER BY rowid').all();
    await migrateStore(database.db, serverMigrations);
    expect(db.prepare('SELECT id, token_hash FROM sessions ORDER BY id').all()).toEqual(rowids);
    const users = new Users(database, new AuditTrail(database, () => 1_000));
    expect((await users.apiTokens()).map((t) => [t.id, t.name])).toEqual([[3, 'c']]);
    // a new token never takes a number that was used
    expect((await users.createApiToken(SYSTEM_ACTOR, 'tech', 'd', 1000)).id).toBe(4);
  } finally {
    await database.close();
  }
});

describe('two nodes on one PostgreSQL', () => {
  test('the first start on two nodes at once creates one admin; the other finds it and does not fail', async () => {
    for (let round = 0; round < 3; round++) {
      const clock = { now: 1_800_000_000_000 };
      const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
      const results = await Promise.all([node(a, clock).bootstrapAdmin(), node(b, clock).bootstrapAdmin(), node(a, clock).bootstrapAdmin()]);
      const made = results.filter((r) => r !== undefined);
      expect(made).toHaveLength(1);
      expect(made[0]?.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect(await a.selectFrom('users').select(['username', 'role']).execute()).toEqual([{ username: 'admin', role: 'admin' }]);
      expect(await actions(a)).toEqual(['create user admin']);
      await expect(node(b, clock).login('admin', made[0]?.password ?? '')).resolves.toBeDefined();
    }
  });

  test('two nodes creating the same user at once: one user, the other refused with 409, one audit entry', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const settled = await Promise.allSettled([
      node(a, clock).create(SYSTEM_ACTOR, TECH),
      node(b, clock).create(SYSTEM_ACTOR, { ...TECH, role: 'signatory' }),
      node(a, clock).createOrganization(SYSTEM_ACTOR, 'acme', 'ACME'),
      node(b, clock).createOrganization(SYSTEM_ACTOR, 'acme', 'ACME too'),
    ]);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(2);
    const refused = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as { code: string }] : []));
    expect(refused.map((e) => e.code)).toEqual(['E_CONFLICT', 'E_CONFLICT']);
    expect(await a.selectFrom('users').select('username').execute()).toEqual([{ username: 'tech' }]);
    expect((await actions(b)).sort()).toEqual(['create organization acme', 'create user tech']);
  });

  test('wrong passwords sent to two nodes at once are all counted: the one that reaches the limit locks the account', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const nodes = [node(a, clock, { maxFailures: 4 }), node(b, clock, { maxFailures: 4 })];
    await nodes[0]?.create(SYSTEM_ACTOR, TECH);
    // all read the account before any counts (the password check takes tens of ms), then each counts its failure
    const causes = await Promise.all(
      [0, 1, 0, 1].map((i) => (nodes[i] as Users).login('tech', WRONG).catch((err: { details: { reason: string } }) => err.details.reason)),
    );
    expect(causes.sort()).toEqual(['locked-now', 'password', 'password', 'password']);
    await expect(nodes[1]?.login('tech', PASSWORD)).rejects.toMatchObject({ details: { reason: 'locked' } });
    await expect(nodes[0]?.login('tech', PASSWORD)).rejects.toMatchObject({ details: { reason: 'locked' } });
    const rows = await auditChain(a);
    expect(rows.filter((r) => r.action === 'lockout')).toHaveLength(1);
    clock.now += 600_001;
    await expect(nodes[1]?.login('tech', PASSWORD)).resolves.toBeDefined();
  });

  test('a session made on one node is used on the other; ended, expired or pruned on one, refused on both', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const [onA, onB] = [node(a, clock), node(b, clock)];
    await onA.bootstrapAdmin('given-admin-password');
    await onA.create(SYSTEM_ACTOR, TECH);
    const first = await onA.login('tech', PASSWORD);
    expect((await onB.authenticate(first.token, 'bearer'))?.username).toBe('tech');
    await onB.logoutAll({ username: 'tech', role: 'technician' }, 'tech');
    expect(await onA.authenticate(first.token, 'bearer')).toBeUndefined();
    // a change of role on one node counts at once on the other
    const second = await onB.login('tech', PASSWORD);
    await onA.update(SYSTEM_ACTOR, 'tech', { role: 'signatory' }, 'promoted');
    expect(await onB.authenticate(second.token, 'bearer')).toBeUndefined();
    const third = await onB.login('tech', PASSWORD);
    expect((await onA.authenticate(third.token, 'bearer'))?.role).toBe('signatory');
    // expired: refused on both, then pruned by one
    clock.now += 3_600_000;
    expect(await onA.authenticate(third.token, 'bearer')).toBeUndefined();
    expect(await onB.authenticate(third.token, 'bearer')).toBeUndefined();
    await onB.prune();
    expect(await a.selectFrom('sessions').selectAll().execute()).toEqual([]);
    // a password changed on one node while the other signs in with the old one: no session from the old password
    const token = await onA.login('tech', PASSWORD);
    const principal = await onB.authenticate(token.token, 'bearer');
    if (principal === undefined) throw new Error('not signed in');
    const [oldLogin] = await Promise.allSettled([onA.login('tech', PASSWORD), onB.changePassword(principal, PASSWORD, 'a brand new password')]);
    if (oldLogin.status === 'fulfilled') expect(await onB.authenticate(oldLogin.value.token, 'bearer')).toBeUndefined();
    await expect(onA.login('tech', PASSWORD)).rejects.toMatchObject({ code: 'E_AUTH' });
    await auditChain(a);
  });

  test('two admins demoting each other on two nodes at once: one change passes, the last active admin stays', async () => {
    for (let round = 0; round < 3; round++) {
      const clock = { now: 1_800_000_000_000 };
      const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
      await node(a, clock).bootstrapAdmin('given-admin-password');
      await node(a, clock).create(SYSTEM_ACTOR, { username: 'admin2', role: 'admin', password: PASSWORD });
      // both pools connected, so that the two changes run at the same time
      await Promise.all([a, b].map((k) => sql`SELECT 1`.execute(k)));
      const settled = await Promise.allSettled([
        node(a, clock).update({ username: 'admin2', role: 'admin' }, 'admin', { role: 'technician' }, 'demoted'),
        node(b, clock).update({ username: 'admin', role: 'admin' }, 'admin2', { disabled: true }, 'disabled'),
      ]);
      expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(settled.find((s) => s.status === 'rejected')).toMatchObject({ reason: { code: 'E_CONFLICT', refusal: { reason: 'user.last-admin' } } });
      const active = await b.selectFrom('users').select('username').where('role', '=', 'admin').where('disabled', '=', 0).execute();
      expect(active).toHaveLength(1);
      await auditChain(a);
    }
  });

  test('one token revoked on two nodes at once: revoked once, the other answers 404, one audit entry', async () => {
    const clock = { now: 1_800_000_000_000 };
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    await node(a, clock).create(SYSTEM_ACTOR, TECH);
    const { id, token } = await node(a, clock).createApiToken(SYSTEM_ACTOR, 'tech', 'script', 86_400_000);
    const settled = await Promise.allSettled([
      node(a, clock).revokeApiToken(SYSTEM_ACTOR, id, undefined, 'leaked'),
      node(b, clock).revokeApiToken(SYSTEM_ACTOR, id, undefined, 'leaked too'),
    ]);
    expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(settled.find((s) => s.status === 'rejected')).toMatchObject({ reason: { code: 'E_NOT_FOUND' } });
    expect(await node(b, clock).authenticate(token, 'bearer')).toBeUndefined();
    expect((await auditChain(a)).filter((r) => r.action === 'state-change')).toHaveLength(1);
  });
});
