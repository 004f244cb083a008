// Leases on a real PostgreSQL 15, two nodes' leases in this process (each with its own lease connection): the lock
// key, a lost session, a release, and the fence's ordering against a holder whose write transaction is still open.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { isLabtraceError } from '@labtrace/protocols';
import { leaseKey, PostgresLeases, type ClusterTables, type Lease, type LeaseLossReason } from '../../src/cluster/leases.js';
import { clusterMigrations } from '../../src/cluster/migrations.js';
import { migrateStore, type Tables } from '../../src/store/database.js';
import type { OpenedStore } from '../../src/store/dialect.js';
import { StoreFixture } from '../helpers/test-store.js';

async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, limitMs = 10_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the lock key of a lease: the first 8 bytes of SHA-256("labtrace:lease:" + name), a signed 64-bit integer', () => {
  // computed apart, with Python's hashlib: int.from_bytes(sha256(b"labtrace:lease:ticks").digest()[:8], "big", signed=True)
  expect(leaseKey('ticks')).toBe('-5105942187526535293');
  expect(leaseKey('log.checkpoint')).toBe('-8261906856536246222');
});

type NoteTables = ClusterTables & { notes: { text: string } };

describe('on PostgreSQL 15', () => {
  const fixture = new StoreFixture('leases');
  let admin: pg.Client;
  let store: OpenedStore;
  let db: Kysely<Tables & NoteTables>;
  const connection = (): pg.ClientConfig => ({ host: '127.0.0.1', port: fixture.postgres.port, user: 'postgres', database: 'labtrace' });
  const started: PostgresLeases<Tables & NoteTables>[] = [];

  function leases(node: string): PostgresLeases<Tables & NoteTables> {
    const l = new PostgresLeases({ db, connection: connection(), node, pollMs: 100, sessionTimeoutMs: 3000 });
    started.push(l);
    return l;
  }

  beforeAll(async () => {
    // the store as the server opens it (its URL)
    store = fixture.open((await fixture.start()).url);
    db = store.db.withTables<NoteTables>();
    await migrateStore(store.db, clusterMigrations);
    await sql`CREATE TABLE notes (text TEXT NOT NULL)`.execute(db);
    admin = new pg.Client(connection());
    await admin.connect();
  }, 120_000);

  afterAll(async () => {
    for (const l of started) await l.stop();
    await admin?.end();
    await fixture.close();
  }, 60_000);

  /** the advisory locks held, as (key, application) pairs */
  async function advisoryLocks(): Promise<{ key: string; app: string }[]> {
    const { rows } = await admin.query<{ key: string; app: string }>(
      `SELECT ((l.classid::bigint << 32) | l.objid::bigint)::text AS key, a.application_name AS app
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted`,
    );
    return rows;
  }

  test("PostgreSQL derives the same key, and the lock is held by the node's own lease session", async () => {
    const { rows } = await admin.query<{ key: string }>(
      `SELECT ('x' || substr(encode(sha256(convert_to('labtrace:lease:ticks', 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint::text AS key`,
    );
    expect(rows[0]?.key).toBe(leaseKey('ticks'));
    const a = leases('key-a');
    a.want('ticks');
    await a.start();
    expect(a.held('ticks')?.holder).toBe('key-a');
    expect(await advisoryLocks()).toEqual([{ key: leaseKey('ticks'), app: 'labtrace-leases:key-a' }]);
    await a.stop();
    expect(await advisoryLocks()).toEqual([]);
  });

  test('while one node holds a lease the other waits; a released lease goes to the other at its next poll', async () => {
    const a = leases('release-a');
    const b = leases('release-b');
    const acquiredByB: Lease[] = [];
    b.on('acquired', (l) => acquiredByB.push(l));
    a.want('reminders');
    await a.start();
    const held = a.held('reminders') as Lease;
    b.want('reminders');
    // start() returns after one poll: b tried, and did not get it
    await b.start();
    expect(acquiredByB).toEqual([]);
    const released: Lease[] = [];
    a.on('released', (l) => released.push(l));
    await a.release('reminders');
    expect(released).toEqual([held]);
    const got = await eventually('b acquires the released lease', () => acquiredByB[0]);
    expect(got).toEqual({ name: 'reminders', holder: 'release-b', epoch: held.epoch + 1 });
    await a.stop();
    await b.stop();
  });

  test("a node whose lease session ends loses its leases at once; a write transaction it began before is ordered before the next holder's epoch", async () => {
    const a = leases('fence-a');
    const b = leases('fence-b');
    const lost: [string, LeaseLossReason][] = [];
    a.on('lost', (l, reason) => lost.push([l.name, reason]));
    const bWaitedForTheRow: string[] = [];
    b.on('connectionError', (e) => {
      if (/cannot record its acquisition/.test(e.message)) bWaitedForTheRow.push(e.message);
    });
    a.want('results');
    await a.start();
    const leaseA = a.held('results') as Lease;
    b.want('results');
    await b.start();
    expect(b.held('results')).toBeUndefined();

    await a.fenced(leaseA, async (trx) => {
      await trx.insertInto('notes').values({ text: 'results of run 7, computed by a' }).execute();
      // a's lease session ends (a partition, an idle timeout), while this transaction is still open
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'labtrace-leases:fence-a'`);
      await eventually('a knows at once that it lost its lease', () => (lost.length > 0 ? true : undefined));
      // and, cut off, it does not compete again (else it might well win the lease back itself)
      await a.release('results');
      // b got the lock, but cannot record its epoch while this transaction holds the lease's row
      await eventually('b waited for the row', () => (bWaitedForTheRow.length > 0 ? true : undefined));
      expect(b.held('results')).toBeUndefined();
    });
    // (the connection's error event, or the poll's query on the ended session, whichever comes first)
    expect(lost).toEqual([['results', expect.stringMatching(/^(connection-lost|query-failed)$/)]]);

    const leaseB = await eventually('b acquires the lease', () => b.held('results'));
    expect(leaseB.epoch).toBe(leaseA.epoch + 1);
    // the next holder sees what the old one wrote before it lost the lease
    const seen = await b.fenced(leaseB, (trx) => trx.selectFrom('notes').select('text').execute());
    expect(seen).toEqual([{ text: 'results of run 7, computed by a' }]);
    // and the old holder's next write is refused, writing nothing
    const refusal = await a
      .fenced(leaseA, (trx) => trx.insertInto('notes').values({ text: 'results of run 7, again' }).execute())
      .catch((e: unknown) => e);
    expect(isLabtraceError(refusal) && refusal.code).toBe('E_LEASE_LOST');
    expect(isLabtraceError(refusal) && refusal.details).toEqual({ name: 'results', epoch: leaseA.epoch, current: leaseB.epoch });
    expect((await db.selectFrom('notes').select('text').execute()).length).toBe(1);
    await a.stop();
    await b.stop();
  });

  test("a store connection that the server ends inside a fenced write fails that write, not the node's process", async () => {
    const a = leases('ended-a');
    a.want('checkpoint');
    await a.start();
    const lease = a.held('checkpoint') as Lease;
    const before = (await db.selectFrom('notes').select('text').execute()).length;
    const failure = await a
      .fenced(lease, async (trx) => {
        await trx.insertInto('notes').values({ text: 'checkpoint 12 signed' }).execute();
        const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
        // the server ends the session while the transaction is idle (idle_in_transaction_session_timeout does this)
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
        await eventually('the session is gone', async () =>
          (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]?.pid])).rowCount === 0 ? true : undefined,
        );
        // the connection's error arrives while no query runs on it (an error event nobody listened to would end the process)
        await new Promise((r) => setTimeout(r, 200));
        await trx.insertInto('notes').values({ text: 'checkpoint 12 logged' }).execute();
      })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((await db.selectFrom('notes').select('text').execute()).length).toBe(before);
    // the lease and the store go on: the next write through the fence commits on another connection
    await a.fenced(lease, (trx) => trx.insertInto('notes').values({ text: 'checkpoint 12 signed' }).execute());
    expect((await db.selectFrom('notes').select('text').execute()).length).toBe(before + 1);
    await a.stop();
  });
});
