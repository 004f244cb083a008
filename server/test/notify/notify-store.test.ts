// The notifications' store through Kysely, the same code on SQLite and on a real PostgreSQL 15: subscriptions,
// webhooks (each change with its audit-trail entry) and the outbox (one delivery per event, recipient and target;
// claimed rows taken by one sender until their claim runs out; outcomes written only for the claim they belong to).
// On PostgreSQL, two nodes (two pools) announcing the same deliveries at once queue each once, and two nodes
// draining one outbox at once claim each row once, and two notifiers (the sender loops of two nodes) draining one
// outbox send each delivery to its webhook once.
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Users } from '../../src/auth/users.js';
import { LabDatabase, type Tables } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';
import { notificationsConfigSchema } from '../../src/notify/config.js';
import { Notifier, type NotifierDeps } from '../../src/notify/notifier.js';
import { Outbox, type NewDelivery } from '../../src/notify/outbox.js';
import { Subscriptions } from '../../src/notify/subscriptions.js';
import { Webhooks } from '../../src/notify/webhooks.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';
import { HttpReceiver } from './receivers.js';

const fixture = new StoreFixture('notify', 'notify-store');
/** a SQLite store of users for the webhooks' owner check; a notifier reads its recipients in its own store (the recipients are users of the same store) */
let userStore: LabDatabase;
let users: Users;

beforeAll(async () => {
  await fixture.start();
  const dir = fixture.tempDir();
  userStore = new LabDatabase(dir, serverMigrations);
  await userStore.migrate();
  users = new Users(userStore, new AuditTrail(userStore));
  await users.bootstrapAdmin('notify-store-admin-password');
}, 120_000);
afterAll(async () => {
  await userStore.close();
  await fixture.close();
});

/** `nodes` Kyselys on one fresh, migrated store (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes);
}

const ADMIN = { username: 'admin', role: 'admin' };
const message = { type: 'test', at: 1, data: {}, message: { subject: 'Probe', text: 'probe', markdown: 'probe', link: null }, locale: 'en' };
const delivery = (i: number, over: Partial<NewDelivery> = {}): NewDelivery => ({
  eventKey: `event:${i}`,
  kind: 'alarm',
  recipient: 'admin',
  channel: 'webhook',
  target: 'wh-1',
  message,
  ...over,
});

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('subscriptions: an address and channels per kind, replaced as a whole, listed by kind, a deleted webhook forgotten', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    let clock = 1000;
    const subs = new Subscriptions(db, () => clock);
    expect(await subs.address('olga')).toBeNull();
    await subs.set('olga', 'olga@lab.example', {
      alarm: { email: true, webhooks: ['wh-a', 'wh-a', 'wh-b'] },
      'run-completed': { email: false, webhooks: [] },
    });
    await subs.set('ivan', undefined, { alarm: { email: false, webhooks: ['wh-b'] }, 'calibration-due': { email: false, webhooks: ['wh-a'] } });
    expect(await subs.address('olga')).toBe('olga@lab.example');
    const olga = await subs.of('olga');
    // a kind with no channel is not kept
    expect(olga.alarm).toEqual({ email: true, webhooks: ['wh-a', 'wh-b'] });
    expect(olga['run-completed']).toEqual({ email: false, webhooks: [] });
    expect(await subs.subscribers('alarm')).toEqual([
      { username: 'ivan', address: null, choice: { email: false, webhooks: ['wh-b'] } },
      { username: 'olga', address: 'olga@lab.example', choice: { email: true, webhooks: ['wh-a', 'wh-b'] } },
    ]);
    // the address is replaced (ON CONFLICT DO UPDATE), the subscriptions as a whole
    clock = 2000;
    await subs.set('olga', 'o.k@lab.example', { alarm: { email: true, webhooks: ['wh-b'] } });
    expect(await subs.address('olga')).toBe('o.k@lab.example');
    expect(await subs.subscribers('run-completed')).toEqual([]);
    // the address kept when left out
    await subs.set('olga', undefined, { alarm: { email: true, webhooks: ['wh-b'] } });
    expect(await subs.address('olga')).toBe('o.k@lab.example');
    await db.transaction().execute((trx) => subs.forgetWebhook(trx, 'wh-b'));
    // ivan's alarm subscription named only wh-b: gone; olga's keeps its e-mail
    expect((await subs.subscribers('alarm')).map((s) => [s.username, s.choice])).toEqual([['olga', { email: true, webhooks: [] }]]);
    expect((await subs.subscribers('calibration-due')).map((s) => s.choice.webhooks)).toEqual([['wh-a']]);
  }, 120_000);

  test('webhooks: created, listed, changed and deleted, each with its audit entry, the secret never audited', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const hooks = new Webhooks(db, users, new AuditTrail(userStore), () => 5000);
    const created = await hooks.create(ADMIN, {
      name: 'ops',
      owner: 'admin',
      url: 'https://user:pw@hooks.example/ops',
      preset: 'generic',
      format: 'markdown',
    });
    expect(created).toMatchObject({ name: 'ops', owner: 'admin', enabled: true, hasSecret: true, createdAt: 5000 });
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.url).not.toContain('pw');
    await expect(
      hooks.create(ADMIN, { name: 'x', owner: 'nobody', url: 'https://h.example', preset: 'generic', format: 'text' }),
    ).rejects.toMatchObject({
      code: 'E_BAD_REQUEST',
    });
    expect((await hooks.list()).map((h) => h.id)).toEqual([created.id]);
    expect(await hooks.list('someone-else')).toEqual([]);
    expect(await hooks.get(created.id)).toMatchObject({ url: 'https://user:pw@hooks.example/ops', secret: created.secret, enabled: true });
    const changed = await hooks.update(ADMIN, created.id, { enabled: false, rotateSecret: true, reason: 'receiver moved' });
    expect(changed.enabled).toBe(false);
    expect(changed.secret).toMatch(/^whsec_/);
    expect(changed.secret).not.toBe(created.secret);
    await expect(hooks.update(ADMIN, 'wh-000000000000', { name: 'y', reason: 'r' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // a change refused at its audit entry (no reason) is undone with it
    await expect(hooks.update(ADMIN, created.id, { name: 'renamed', reason: '' })).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect((await hooks.get(created.id))?.name).toBe('ops');
    await db.transaction().execute((trx) => hooks.remove(trx, ADMIN, created.id, 'not needed'));
    expect(await hooks.get(created.id)).toBeUndefined();
    const { rows } = await sql<{ action: string; record_id: string; old_value: string | null; new_value: string | null }>`
      SELECT action, record_id, old_value, new_value FROM audit_trail WHERE record_type = 'notification-webhook' ORDER BY id`.execute(db);
    expect(rows.map((r) => [r.action, r.record_id])).toEqual([
      ['create', created.id],
      ['update', created.id],
      ['delete', created.id],
    ]);
    const text = JSON.stringify(rows);
    expect(text).not.toContain(created.secret);
    expect(text).not.toContain(changed.secret);
    expect(text).not.toContain('pw@');
  }, 120_000);

  test('outbox: one delivery per key, bounded, claimed once, outcomes written for their claim only', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const outbox = new Outbox(db);
    const first = await outbox.add(delivery(1), 100, 10);
    expect(first).toMatchObject({ eventKey: 'event:1', status: 'pending', attempts: 0, nextAt: 100, message });
    // the same event to the same recipient and target: no second row
    expect(await outbox.add(delivery(1), 101, 10)).toBeUndefined();
    const second = await outbox.add(delivery(1, { channel: 'email', target: 'olga@lab.example' }), 101, 10);
    expect(second).toMatchObject({ status: 'pending', channel: 'email' });
    // past the bound: recorded as failed at once, with the reason
    expect(await outbox.add(delivery(2), 102, 2)).toMatchObject({ status: 'failed', lastError: 'the outbox holds 2 pending deliveries already' });
    expect(await outbox.count('pending')).toBe(2);
    expect(await outbox.count('failed')).toBe(1);

    // claimed: shown as pending, not claimed again until the claim runs out
    const claimed = await outbox.claim(200, 10, 1000);
    expect(claimed.map((r) => [r.id, r.status, r.nextAt, r.claimedUntil])).toEqual([
      [first?.id, 'pending', 1200, 1200],
      [second?.id, 'pending', 1200, 1200],
    ]);
    expect(await outbox.claim(300, 10, 1000)).toEqual([]);
    expect(await outbox.count('pending')).toBe(2);
    expect((await outbox.list({ status: 'pending', limit: 10 })).map((r) => r.status)).toEqual(['pending', 'pending']);
    const [a, b] = claimed as [(typeof claimed)[0], (typeof claimed)[0]];
    await outbox.sent(a.id, 400);
    // a failure written with a claim that is not the row's changes nothing
    await outbox.attemptFailed(b.id, 'stale', 900, 999);
    expect(await outbox.get(b.id)).toMatchObject({ attempts: 0, lastError: null, nextAt: 1200 });
    await outbox.attemptFailed(b.id, 'webhook: ECONNREFUSED', 5000, b.claimedUntil);
    expect(await outbox.get(b.id)).toMatchObject({ status: 'pending', attempts: 1, nextAt: 5000, lastError: 'webhook: ECONNREFUSED' });
    expect(await outbox.get(a.id)).toMatchObject({ status: 'sent', attempts: 1, sentAt: 400 });
    // not due before its time; then claimed, and its claim run out (its sender died): claimed again by another
    expect(await outbox.claim(4999, 10, 1000)).toEqual([]);
    const [again] = await outbox.claim(5000, 10, 1000);
    expect(again).toMatchObject({ id: b.id, claimedUntil: 6000 });
    const [taken] = await outbox.claim(6000, 10, 1000);
    expect(taken).toMatchObject({ id: b.id, claimedUntil: 7000 });
    // the dead sender's late outcome is not written over the new claim's
    await outbox.attemptFailed(b.id, 'late', null, 6000);
    expect(await outbox.get(b.id)).toMatchObject({ status: 'pending', attempts: 1 });
    await outbox.attemptFailed(b.id, 'e-mail: 550 no such user', null, 7000);
    expect(await outbox.get(b.id)).toMatchObject({ status: 'failed', attempts: 2, lastError: 'e-mail: 550 no such user' });
    // the admin's retry: a failed row only
    expect(await outbox.requeue(b.id, 8000)).toBe(true);
    expect(await outbox.requeue(b.id, 8000)).toBe(false);
    expect(await outbox.requeue(a.id, 8000)).toBe(false);
    expect(await outbox.get(b.id)).toMatchObject({ status: 'pending', attempts: 0, nextAt: 8000 });
    // a deleted webhook: its pending deliveries fail, claimed ones too (b goes by e-mail)
    const c = await outbox.add(delivery(3), 8000, 10);
    expect((await outbox.claim(8000, 10, 1000)).map((r) => r.id)).toEqual([b.id, c?.id]);
    expect(await outbox.failTarget('webhook', 'wh-1', 'the webhook was deleted')).toBe(1);
    expect(await outbox.get(c?.id ?? 0)).toMatchObject({ status: 'failed', lastError: 'the webhook was deleted' });
    // a stopped process's claims released at start (the embedded store's one node)
    await outbox.sent(b.id, 8500);
    const d = await outbox.add(delivery(4), 9000, 10, db, 99_000);
    expect(await outbox.claim(9000, 10, 1000)).toEqual([]);
    expect(await outbox.releaseClaims(9001)).toBe(1);
    expect((await outbox.claim(9001, 10, 1000)).map((r) => r.id)).toEqual([d?.id]);
    // newest first, paged by id, filtered by status
    const all = await outbox.list({ limit: 100 });
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((x, y) => y - x));
    expect((await outbox.list({ before: all[1]?.id, limit: 2 })).map((r) => r.id)).toEqual(all.slice(2, 4).map((r) => r.id));
    expect((await outbox.list({ status: 'sent', limit: 10 })).map((r) => r.id)).toEqual([b.id, a.id]);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('announcing the same deliveries at once from both queues each once', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = new Outbox(a);
    const onB = new Outbox(b);
    const added = await Promise.all(Array.from({ length: 60 }, (_, i) => [onA.add(delivery(i), 1, 1000), onB.add(delivery(i), 1, 1000)]).flat());
    const queued = added.filter((r) => r !== undefined);
    expect(queued).toHaveLength(60);
    expect(new Set(queued.map((r) => r?.eventKey)).size).toBe(60);
    expect(await onB.count('pending')).toBe(60);
  }, 120_000);

  test('draining one outbox at once from both: every row claimed by exactly one node', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = new Outbox(a);
    const onB = new Outbox(b);
    const total = 300;
    for (let i = 0; i < total; i += 50)
      await a
        .insertInto('notification_outbox')
        .values(
          Array.from({ length: 50 }, (_, j) => ({
            event_key: `event:${i + j}`,
            kind: 'alarm',
            recipient: 'admin',
            channel: 'webhook',
            target: 'wh-1',
            message: JSON.stringify(message),
            status: 'pending',
            attempts: 0,
            next_at: 0,
            created_at: 0,
          })),
        )
        .execute();
    // each node: several senders claiming small batches at once, as a sender loop does, until nothing is due
    const drain = async (outbox: Outbox): Promise<number[]> => {
      const got: number[] = [];
      for (;;) {
        const rows = await outbox.claim(10, 7, 60_000);
        if (rows.length === 0) return got;
        got.push(...rows.map((r) => r.id));
      }
    };
    const claims = await Promise.all([drain(onA), drain(onB), drain(onA), drain(onB)]);
    const ids = claims.flat();
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
  }, 120_000);
});

/** no run, alarm, security event or gateway is announced in the sender test: sources that stay silent */
class Silent extends EventEmitter {
  get(): undefined {
    return undefined;
  }
  hookRecording(): void {}
  unhookRecording(): void {}
}

/** a node's notifier on `store`: its sender loop drains the outbox (pollMs 20) */
function notifierOn(store: Kysely<Tables>): Notifier {
  const silent = new Silent();
  return new Notifier({
    store,
    users: new Users(store, new AuditTrail(userStore)),
    audit: new AuditTrail(userStore),
    runs: silent as unknown as NotifierDeps['runs'],
    inspection: silent,
    events: silent as unknown as NotifierDeps['events'],
    broker: silent as unknown as NotifierDeps['broker'],
    calibration: { reminders: () => Promise.resolve([]) },
    certificateFor: () => Promise.resolve(undefined),
    config: notificationsConfigSchema.parse({ pollMs: 20, timeoutMs: 5000 }),
    baseUrl: () => 'http://127.0.0.1',
    logger: pino({ level: 'silent' }),
  });
}

describe("two nodes replacing one user's subscriptions on one PostgreSQL", () => {
  test('every replacement at once from both succeeds, and one of them is what remains, whole', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const nodes = [new Subscriptions(a, Date.now), new Subscriptions(b, Date.now)];
    const choices = Array.from({ length: 12 }, (_, i) => ({
      alarm: { email: false, webhooks: [`wh-${i}`] },
      'run-completed': { email: false, webhooks: [`wh-${i}`, 'wh-x'] },
    }));
    const results = await Promise.allSettled(choices.map((c, i) => (nodes[i % 2] as Subscriptions).set('olga', undefined, c)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const kept = await nodes[0]?.of('olga');
    const which = choices.findIndex((c) => c.alarm.webhooks[0] === kept?.alarm.webhooks[0]);
    expect(which).toBeGreaterThanOrEqual(0);
    expect(kept).toMatchObject(choices[which] ?? {});
    expect(await nodes[1]?.address('olga')).toBeNull();
  }, 120_000);
});

describe('two senders on one PostgreSQL', () => {
  test("two nodes' notifiers draining one outbox at once send every delivery to its webhook exactly once", async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const receiver = new HttpReceiver();
    const port = await receiver.listen();
    const hook = await new Webhooks(a, users, new AuditTrail(userStore), Date.now).create(ADMIN, {
      name: 'ops',
      owner: 'admin',
      url: `http://127.0.0.1:${port}/ops`,
      preset: 'generic',
      format: 'text',
    });
    const outbox = new Outbox(a);
    const total = 200;
    for (let i = 0; i < total; i++) await outbox.add(delivery(i, { target: hook.id }), Date.now(), 1000);
    await new Users(a, new AuditTrail(userStore)).bootstrapAdmin('notify-store-admin-password');
    // two sender loops on each node's pool
    const nodes = [notifierOn(a), notifierOn(b), notifierOn(a), notifierOn(b)];
    try {
      await Promise.all(nodes.map((n) => n.start()));
      const deadline = Date.now() + 60_000;
      while ((await outbox.count('sent')) < total) {
        if (Date.now() > deadline) throw new Error(`${await outbox.count('sent')} of ${total} deliveries sent within 60 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      // each sender's attempts under way end before the requests are counted
      for (const n of nodes) await n.stop();
      await receiver.close();
    }
    const ids = receiver.requests.map((r) => r.headers['webhook-id']);
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
    expect(await outbox.count('pending')).toBe(0);
  }, 120_000);

  test("two nodes' notifiers announcing one event at once queue it once per recipient and target", async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const hook = await new Webhooks(a, users, new AuditTrail(userStore), Date.now).create(ADMIN, {
      name: 'ops',
      owner: 'admin',
      url: 'http://127.0.0.1:9/ops',
      preset: 'generic',
      format: 'text',
    });
    await new Subscriptions(a, Date.now).set('admin', undefined, { 'calibration-due': { email: false, webhooks: [hook.id] } });
    // not started: announcing only, no sender
    await new Users(a, new AuditTrail(userStore)).bootstrapAdmin('notify-store-admin-password');
    const nodes = [notifierOn(a), notifierOn(b)];
    const event = { kind: 'calibration-due', at: 1, instrument: 'balance-1', status: 'expired', dueAt: 1 } as const;
    const added = await Promise.all(Array.from({ length: 8 }, (_, i) => (nodes[i % 2] as Notifier).announce(event)));
    expect(added.reduce((x, y) => x + y, 0)).toBe(1);
    const rows = await new Outbox(b).list({ limit: 10 });
    expect(rows.map((r) => [r.kind, r.recipient, r.channel, r.target, r.status])).toEqual([
      ['calibration-due', 'admin', 'webhook', hook.id, 'pending'],
    ]);
  }, 120_000);
});
