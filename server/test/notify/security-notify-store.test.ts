// A security event's notifications are queued in the transaction that records it, the same code on SQLite (given as
// Kysely) and on a real PostgreSQL 15, with no SQLite LabDatabase given to the notifier: an event rolled back queues
// nothing, one committed queues one delivery per subscriber and webhook, in each recipient's language and zone, sent
// once the event is announced after the commit. A hook that fails is rolled back alone: the event and the caller's
// transaction stand. On PostgreSQL, an event recorded on one node and announced again on another is queued once.
// On the embedded SQLite LabDatabase, the synchronous record() (the SQLite ingest's) queues them in its transaction.
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { AuditTrail, SYSTEM_ACTOR } from '../../src/audit/audit-trail.js';
import { Users } from '../../src/auth/users.js';
import { LabDatabase, type Tables } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';
import { notificationsConfigSchema } from '../../src/notify/config.js';
import { Notifier, type NotifierDeps } from '../../src/notify/notifier.js';
import { Outbox, type OutboxRow } from '../../src/notify/outbox.js';
import { Subscriptions } from '../../src/notify/subscriptions.js';
import { Webhooks } from '../../src/notify/webhooks.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';
import { HttpReceiver } from './receivers.js';

const fixture = new StoreFixture('security_notify', 'security-notify');
let receiver: HttpReceiver;
let port: number;
const closing: LabDatabase[] = [];

beforeAll(async () => {
  await fixture.start();
  receiver = new HttpReceiver();
  port = await receiver.listen();
}, 120_000);
afterAll(async () => {
  for (const d of closing) await d.close();
  await receiver.close();
  await fixture.close();
});

/** `nodes` Kyselys on one fresh, migrated store (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes);
}

/** no run, alarm or gateway is announced here: sources that stay silent */
class Silent extends EventEmitter {
  get(): undefined {
    return undefined;
  }
}

const silentLog = pino({ level: 'silent' });

/**
 * The admin (no language saved: English, UTC) and olga, a technician who reads Chinese in Shanghai's zone, each with
 * a webhook on the receiver (its path names the test and the user) subscribed to security events.
 */
async function people(db: Kysely<Tables> | LabDatabase, name: string): Promise<{ users: Users; audit: AuditTrail; hooks: Record<string, string> }> {
  const audit = new AuditTrail(db);
  const users = new Users(db, audit);
  await users.bootstrapAdmin('security-notify-admin-password');
  await users.create(SYSTEM_ACTOR, { username: 'olga', role: 'technician' });
  await users.setPreferences({ username: 'olga', role: 'technician' }, 'olga', { locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
  const kysely = db instanceof LabDatabase ? db.db : db;
  const webhooks = new Webhooks(kysely, users, audit, Date.now);
  const subscriptions = new Subscriptions(kysely, Date.now);
  const hooks: Record<string, string> = {};
  for (const username of ['admin', 'olga']) {
    const hook = await webhooks.create(SYSTEM_ACTOR, {
      name: `${username}-hook`,
      owner: username,
      url: `http://127.0.0.1:${port}/${name}/${username}`,
      preset: 'generic',
      format: 'text',
    });
    hooks[username] = hook.id;
    await subscriptions.set(username, undefined, { 'security-event': { email: false, webhooks: [hook.id] } });
  }
  return { users, audit, hooks };
}

/** a node's notifier on `store`, hooked to `events` once started; `database` only for the synchronous SQLite ingest */
function notifierOn(store: Kysely<Tables>, users: Users, audit: AuditTrail, events: SecurityEvents, database?: LabDatabase): Notifier {
  const silent = new Silent();
  return new Notifier({
    store,
    database,
    users,
    audit,
    runs: silent as unknown as NotifierDeps['runs'],
    inspection: silent,
    events,
    broker: silent as unknown as NotifierDeps['broker'],
    calibration: { reminders: () => Promise.resolve([]) },
    certificateFor: () => Promise.resolve(undefined),
    // the sender runs at start and when an event is announced after its commit (the poll: a minute)
    config: notificationsConfigSchema.parse({ pollMs: 60_000, timeoutMs: 5000 }),
    baseUrl: () => 'http://127.0.0.1',
    logger: silentLog,
  });
}

const summary = (rows: OutboxRow[]): [string, string, string, string, string][] =>
  rows
    .map((r): [string, string, string, string, string] => [r.eventKey, r.kind, r.recipient, r.channel, r.target])
    .sort((a, b) => a[2].localeCompare(b[2]));

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(['sqlite', 'postgres'] as const)('on %s (Kysely, no LabDatabase)', (engine) => {
  test('an event recorded in a transaction that rolls back queues nothing; one that commits queues its deliveries, in each language', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const name = `${engine}-commit`;
    const { users, audit, hooks } = await people(db, name);
    const events = new SecurityEvents(db, silentLog);
    const notifier = notifierOn(db, users, audit, events);
    const outbox = new Outbox(db);
    await notifier.start();
    // the sender's pass at start is over before anything is recorded (on SQLite its queries end within this turn),
    // so that what is sent below is sent because the event was announced
    await new Promise((resolve) => setImmediate(resolve));
    try {
      await expect(
        db.transaction().execute(async (trx) => {
          await events.recordIn(trx, 'gw-1', 'forged', 'alarm', 'rolled back with its transaction', 7, Date.UTC(2027, 0, 15, 9));
          throw new Error('the batch failed');
        }),
      ).rejects.toThrow('the batch failed');
      expect(await outbox.list({ limit: 10 })).toEqual([]);
      expect((await events.page({ limit: 10 })).items).toEqual([]);

      const event = await db
        .transaction()
        .execute((trx) => events.recordIn(trx, 'gw-1', 'forged', 'alarm', 'a batch signed by another key', 8, Date.UTC(2027, 0, 15, 9)));
      // queued with the commit, before anyone is told of the event
      const rows = await outbox.list({ limit: 10 });
      expect(summary(rows)).toEqual([
        [`security:${event.id}`, 'security-event', 'admin', 'webhook', hooks['admin']],
        [`security:${event.id}`, 'security-event', 'olga', 'webhook', hooks['olga']],
      ]);
      const olga = rows.find((r) => r.recipient === 'olga')?.message;
      expect(olga?.locale).toBe('zh-CN');
      expect(olga?.message.subject).toBe('安全事件：forged（gw-1）');
      expect(olga?.message.text).toContain('2027-01-15 17:00:00 GMT+8');
      const admin = rows.find((r) => r.recipient === 'admin')?.message;
      expect(admin?.locale).toBe('en');
      expect(admin?.message.subject).toBe('Security event: forged (gw-1)');
      expect(admin?.message.text).toContain('2027-01-15 09:00:00 UTC');

      // told after the commit: the sender goes at once (not at the next poll)
      events.announce(event);
      await waitFor('both deliveries', () => receiver.requests.filter((r) => r.url.startsWith(`/${name}/`)).length === 2);
      const body = receiver.requests.find((r) => r.url === `/${name}/olga`)?.body ?? '';
      expect(body).toContain('安全事件：forged（gw-1）');
      await waitFor('recorded as sent', async () => (await outbox.count('sent')) === 2);
      expect(await notifier.status()).toEqual({ pending: 0, failed: 0, oldestPendingAt: null, email: false });

      // below notifications.securityMinSeverity (alarm): not notified
      await db.transaction().execute((trx) => events.recordIn(trx, 'gw-1', 'duplicate', 'notice', 'sent twice', 9, Date.now()));
      expect(await outbox.list({ limit: 10 })).toHaveLength(2);
    } finally {
      await notifier.stop();
      await events.stop();
    }
  }, 120_000);

  test('a refusal (its own transaction) queues its deliveries with its row; a stopped notifier queues nothing', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const { users, audit, hooks } = await people(db, `${engine}-refusal`);
    const events = new SecurityEvents(db, silentLog);
    const notifier = notifierOn(db, users, audit, events);
    const outbox = new Outbox(db);
    await notifier.start();
    try {
      events.refuse({ kind: 'enrollment-refused', severity: 'alarm', detail: 'an enrollment with a token never issued', address: '192.0.2.7' });
      await events.stop();
      const [refused] = (await events.page({ limit: 10 })).items;
      expect(summary(await outbox.list({ limit: 10 }))).toEqual([
        [`security:${refused?.id}`, 'security-event', 'admin', 'webhook', hooks['admin']],
        [`security:${refused?.id}`, 'security-event', 'olga', 'webhook', hooks['olga']],
      ]);
    } finally {
      await notifier.stop();
    }
    await db.transaction().execute((trx) => events.recordIn(trx, 'gw-2', 'forged', 'alarm', 'after the notifier stopped', 1, Date.now()));
    expect(await outbox.list({ limit: 10 })).toHaveLength(2);
  }, 120_000);

  test('a hook that fails is rolled back alone: the event and the rest of the transaction commit', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const logs: string[] = [];
    const events = new SecurityEvents(db, pino({ level: 'error' }, { write: (line: string) => logs.push(line) }));
    events.hookRecording({
      in: async (trx, e) => {
        await trx
          .insertInto('notification_outbox')
          .values({
            event_key: `security:${e.id}`,
            kind: 'security-event',
            recipient: 'admin',
            channel: 'webhook',
            target: 'wh-1',
            message: '{}',
            status: 'pending',
            attempts: 0,
            next_at: 0,
            created_at: 0,
          })
          .execute();
        // a statement that fails: on PostgreSQL it aborts the transaction, unless rolled back to a savepoint
        await sql`SELECT * FROM no_such_table`.execute(trx);
      },
      now: () => undefined,
    });
    const event = await db.transaction().execute(async (trx) => {
      const e = await events.recordIn(trx, 'gw-1', 'forged', 'alarm', 'recorded though its hook fails', 3, 1000);
      await trx.insertInto('notification_settings').values({ username: 'after-the-hook', email: null, updated_at: 1 }).execute();
      return e;
    });
    expect((await events.page({ limit: 10 })).items.map((e) => e.id)).toEqual([event.id]);
    expect(await db.selectFrom('notification_settings').select('username').execute()).toEqual([{ username: 'after-the-hook' }]);
    expect(await new Outbox(db).list({ limit: 10 })).toEqual([]);
    expect(logs.join('')).toContain('ALARM: what is written with a security event (its notifications) could not be');
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('an event recorded on one node is queued once; announced again on the other, nothing is added', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const { audit, hooks } = await people(a, 'two-nodes');
    const nodes = [a, b].map((db) => {
      const events = new SecurityEvents(db, silentLog);
      return { db, events, notifier: notifierOn(db, new Users(db, audit), audit, events) };
    });
    for (const n of nodes) await n.notifier.start();
    try {
      // each node records its own events at once: each event's deliveries on the node that recorded it
      const recorded = await Promise.all(
        Array.from({ length: 6 }, (_, i) => {
          const n = nodes[i % 2] as (typeof nodes)[0];
          return n.db.transaction().execute((trx) => n.events.recordIn(trx, `gw-${i}`, 'forged', 'alarm', `event ${i}`, i, 1000 + i));
        }),
      );
      const rows = await new Outbox(b).list({ limit: 100 });
      expect(rows).toHaveLength(12);
      expect(new Set(rows.map((r) => `${r.eventKey} ${r.recipient}`)).size).toBe(12);
      // the same event announced again on the other node (as a redelivery would): the outbox's key keeps it once
      const first = recorded[0];
      if (first === undefined) throw new Error('no event');
      const again = {
        kind: 'security-event',
        at: first.at,
        id: first.id,
        gateway: first.gateway,
        event: first.kind,
        severity: first.severity,
        detail: first.detail,
      } as const;
      expect(await nodes[1]?.notifier.announce(again)).toBe(0);
      expect(await nodes[0]?.notifier.announce(again)).toBe(0);
      expect(summary(await new Outbox(a).list({ limit: 100 })).filter((r) => r[0] === `security:${first.id}`)).toEqual([
        [`security:${first.id}`, 'security-event', 'admin', 'webhook', hooks['admin']],
        [`security:${first.id}`, 'security-event', 'olga', 'webhook', hooks['olga']],
      ]);
    } finally {
      for (const n of nodes) await n.notifier.stop();
    }
  }, 120_000);
});

describe('the embedded SQLite LabDatabase (the SQLite ingest: synchronous record())', () => {
  test('an event recorded in a synchronous transaction that rolls back queues nothing; one that commits queues its deliveries', async () => {
    const database = new LabDatabase(fixture.tempDir(), serverMigrations);
    closing.push(database);
    await database.migrate();
    const { users, audit, hooks } = await people(database, 'sqlite-sync');
    const events = new SecurityEvents(database, silentLog);
    const notifier = notifierOn(database.db, users, audit, events, database);
    const outbox = new Outbox(database.db);
    await notifier.start();
    try {
      expect(() =>
        database.sqlite.transaction(() => {
          events.record('gw-1', 'altered', 'alarm', 'rolled back with the group', 4, Date.UTC(2027, 0, 15, 9));
          throw new Error('the group failed');
        })(),
      ).toThrow('the group failed');
      expect(await outbox.list({ limit: 10 })).toEqual([]);
      const event = database.sqlite.transaction(() => events.record('gw-1', 'altered', 'alarm', 'a batch altered', 5, Date.UTC(2027, 0, 15, 9)))();
      const rows = await outbox.list({ limit: 10 });
      expect(summary(rows)).toEqual([
        [`security:${event.id}`, 'security-event', 'admin', 'webhook', hooks['admin']],
        [`security:${event.id}`, 'security-event', 'olga', 'webhook', hooks['olga']],
      ]);
      expect(rows.find((r) => r.recipient === 'olga')?.message.message.subject).toBe('安全事件：altered（gw-1）');
    } finally {
      await notifier.stop();
      await events.stop();
    }
  }, 120_000);
});
