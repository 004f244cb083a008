// Jobs that must run once, on nodes that are real processes sharing a real PostgreSQL 15: one node at a time runs
// the job, a killed node's job moves to another, a stalled node's late write is refused by the fence, a node that
// stops hands its job over at once. And the same runner on the embedded SQLite store.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { isLabtraceError } from '@labtrace/protocols';
import { JobRunner, untilAborted, type JobEnd } from '../../src/cluster/jobs.js';
import { leaseKey, SqliteLeases, type ClusterTables, type Lease } from '../../src/cluster/leases.js';
import { clusterMigrations } from '../../src/cluster/migrations.js';
import { serverMigrations } from '../../src/migrations.js';
import { migrateStore, type Tables } from '../../src/store/database.js';
import { openStore } from '../../src/store/dialect.js';
import { StoreFixture } from '../helpers/test-store.js';

const NODE_SCRIPT = fileURLToPath(new URL('./lease-node.js', import.meta.url));

interface NodeEvent {
  node: string;
  event: string;
  epoch?: number;
  tick?: number;
  current?: number | null;
  reason?: string;
  end?: string;
}

/** waits until `check` returns a value (not undefined), polling; fails after `limitMs` with `what` (a bound against hanging, not a timing claim) */
async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class LeaseNode {
  readonly events: NodeEvent[] = [];
  readonly proc: ChildProcess;
  private stderr = '';
  private buffer = '';

  constructor(
    readonly name: string,
    url: string,
  ) {
    this.proc = spawn(process.execPath, [NODE_SCRIPT], {
      env: { ...process.env, LEASE_NODE: name, LEASE_DATABASE_URL: url, LEASE_POLL_MS: '200', LEASE_SESSION_MS: '3000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') this.events.push(JSON.parse(line) as NodeEvent);
    });
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** the epoch of the job this node runs now, by its own account (started, and not yet ended) */
  runningEpoch(): number | undefined {
    let epoch: number | undefined;
    for (const e of this.events) {
      if (e.event === 'started') epoch = e.epoch;
      if (e.event === 'ended' && e.epoch === epoch) epoch = undefined;
    }
    return epoch;
  }

  has(match: Partial<NodeEvent>): NodeEvent | undefined {
    return this.events.find((e) => Object.entries(match).every(([k, v]) => e[k as keyof NodeEvent] === v));
  }

  async exited(): Promise<void> {
    if (!this.alive) return;
    await new Promise((resolve) => this.proc.once('exit', resolve));
  }

  describe(): string {
    return `${this.name}: ${this.events.map((e) => `${e.event}${e.epoch === undefined ? '' : `@${e.epoch}`}`).join(' ')} ${this.stderr}`;
  }
}

describe('on PostgreSQL 15, with three node processes', () => {
  const fixture = new StoreFixture('jobs');
  let client: pg.Client;
  let url: string;
  const nodes: LeaseNode[] = [];

  beforeAll(async () => {
    const postgres = await fixture.start();
    url = postgres.url;
    await migrateStore(fixture.open(url).db, clusterMigrations);
    client = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: 'postgres', database: 'labtrace' });
    await client.connect();
    // as an operator should: a node stalled inside a transaction does not hold the lease's row for long
    await client.query(`ALTER DATABASE labtrace SET idle_in_transaction_session_timeout = '2s'`);
    await client.query('CREATE TABLE ticks (tick BIGINT PRIMARY KEY, node TEXT NOT NULL, epoch BIGINT NOT NULL)');
  }, 120_000);

  afterAll(async () => {
    for (const node of nodes)
      if (node.alive) {
        node.proc.kill('SIGCONT');
        node.proc.kill('SIGKILL');
        await node.exited();
      }
    await client?.end();
    await fixture.close();
  }, 60_000);

  /** the node whose lease session holds the job's advisory lock now, by PostgreSQL's account */
  async function lockHolder(): Promise<string | undefined> {
    const { rows } = await client.query<{ app: string }>(
      `SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
      [leaseKey('ticks')],
    );
    expect(rows.length).toBeLessThanOrEqual(1);
    return rows[0]?.app.replace(/^labtrace-leases:/, '');
  }

  async function ticks(): Promise<{ tick: number; node: string; epoch: number }[]> {
    const { rows } = await client.query<{ tick: string; node: string; epoch: string }>('SELECT tick, node, epoch FROM ticks ORDER BY tick');
    return rows.map((r) => ({ tick: Number(r.tick), node: r.node, epoch: Number(r.epoch) }));
  }

  /** the writes that must happen once: one tick per number, epochs never going back, each epoch one node's */
  async function expectTicksInOrder(): Promise<void> {
    const rows = await ticks();
    expect(rows.map((r) => r.tick)).toEqual(rows.map((_, i) => i + 1));
    const byEpoch = new Map<number, string>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as { tick: number; node: string; epoch: number };
      if (i > 0)
        expect({
          tick: row.tick,
          epoch: row.epoch,
          after: (rows[i - 1] as { epoch: number }).epoch,
          ok: row.epoch >= (rows[i - 1] as { epoch: number }).epoch,
        }).toMatchObject({ ok: true });
      expect(byEpoch.get(row.epoch) ?? row.node).toBe(row.node);
      byEpoch.set(row.epoch, row.node);
      // the node that wrote a tick had acquired the lease with that epoch
      expect(nodes.find((n) => n.name === row.node)?.has({ event: 'acquired', epoch: row.epoch })).toBeDefined();
    }
  }

  /** waits until exactly one live node runs the job, PostgreSQL agrees it holds the lock, and it has written a tick */
  async function soleRunner(other = (_: LeaseNode) => true): Promise<{ node: LeaseNode; epoch: number }> {
    return eventually(`one node running the job (${nodes.map((n) => n.describe()).join('; ')})`, async () => {
      const running = nodes.filter((n) => n.alive && n.runningEpoch() !== undefined);
      if (running.length !== 1) return undefined;
      const node = running[0] as LeaseNode;
      const epoch = node.runningEpoch() as number;
      if (!other(node) || (await lockHolder()) !== node.name) return undefined;
      if (!(await ticks()).some((t) => t.epoch === epoch && t.node === node.name)) return undefined;
      return { node, epoch };
    });
  }

  let first: { node: LeaseNode; epoch: number };
  let second: { node: LeaseNode; epoch: number };
  let third: { node: LeaseNode; epoch: number };

  test('one node of three runs the job; the others wait', async () => {
    for (const name of ['node-a', 'node-b', 'node-c']) nodes.push(new LeaseNode(name, url));
    await eventually('all three nodes ready', () => (nodes.every((n) => n.has({ event: 'ready' })) ? true : undefined));
    first = await soleRunner();
    // the others tried and wait: they neither acquired nor started anything
    for (const node of nodes.filter((n) => n !== first.node)) expect(node.has({ event: 'acquired' })).toBeUndefined();
    const { rows } = await client.query<{ holder: string; epoch: string }>(`SELECT holder, epoch FROM cluster_leases WHERE name = 'ticks'`);
    expect(rows.map((r) => [r.holder, Number(r.epoch)])).toEqual([[first.node.name, first.epoch]]);
    await expectTicksInOrder();
  }, 90_000);

  test('kill -9 of the holder: another node takes the job over, with a newer epoch', async () => {
    first.node.proc.kill('SIGKILL');
    await first.node.exited();
    second = await soleRunner((n) => n !== first.node);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    await expectTicksInOrder();
  }, 90_000);

  test("a stalled holder's session ends, another node takes over, and the stalled node's late write is refused", async () => {
    const stalled = second.node;
    stalled.proc.kill('SIGSTOP');
    try {
      // the stalled node's lease session goes silent: PostgreSQL ends it (idle_session_timeout), the lock is free
      third = await eventually('the third node runs the job with a newer epoch', async () => {
        const node = nodes.find((n) => n !== first.node && n !== stalled) as LeaseNode;
        const epoch = node.runningEpoch();
        if (epoch === undefined || (await lockHolder()) !== node.name) return undefined;
        return (await ticks()).some((t) => t.epoch === epoch) ? { node, epoch } : undefined;
      });
    } finally {
      stalled.proc.kill('SIGCONT');
    }
    expect(third.epoch).toBeGreaterThan(second.epoch);
    // woken, the stalled node goes on with its write, as a job that did not yet know would: the fence refuses it
    const refused = await eventually(`the stalled node's write refused (${stalled.describe()})`, () =>
      stalled.has({ event: 'refused', epoch: second.epoch }),
    );
    expect(refused.current).toBeGreaterThanOrEqual(third.epoch);
    await eventually('the stalled node knows it lost the lease', () => stalled.has({ event: 'lost', epoch: second.epoch }));
    await eventually('the stalled node stopped its job', () => stalled.has({ event: 'ended', epoch: second.epoch }));
    // no tick of the old epoch after one of the new, and the third node still runs the job alone
    await expectTicksInOrder();
    const now = await soleRunner();
    expect(now.node).toBe(third.node);
  }, 90_000);

  test('a node that stops hands its job over at once, before its process ends', async () => {
    const leaving = third.node;
    const staying = second.node;
    leaving.proc.kill('SIGTERM');
    await eventually('the stopping node drained', () => leaving.has({ event: 'drained' }));
    // its job ended before it gave the lease back
    const order = leaving.events.map((e) => `${e.event}@${e.epoch ?? ''}`);
    expect(order.indexOf(`ended@${third.epoch}`)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(`ended@${third.epoch}`)).toBeLessThan(order.indexOf(`released@${third.epoch}`));
    expect(leaving.has({ event: 'ended', epoch: third.epoch })?.end).toBe('stopping' satisfies JobEnd);
    const next = await soleRunner((n) => n === staying);
    expect(next.epoch).toBeGreaterThan(third.epoch);
    // the lease was handed over by stop(), not by the end of the process or of its store connections
    expect(leaving.alive).toBe(true);
    await expectTicksInOrder();
    leaving.proc.kill('SIGINT');
    await leaving.exited();
  }, 90_000);
});

describe('on the embedded SQLite store', () => {
  type NoteTables = ClusterTables & { notes: { epoch: number; text: string } };

  async function openSqlite(): Promise<{ db: Kysely<Tables & NoteTables>; close: () => Promise<void> }> {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'labtrace-leases-')), 'lab.db');
    const store = openStore({ dialect: 'sqlite', file });
    // the server's whole schema: the composed list holds the cluster's table
    await migrateStore(store.db, serverMigrations);
    const db = store.db.withTables<NoteTables>();
    await sql`CREATE TABLE notes (epoch INTEGER NOT NULL, text TEXT NOT NULL)`.execute(db);
    return { db, close: () => store.close() };
  }

  test('the single node holds the lease at once, its job writes through the fence, and a later start is a newer epoch', async () => {
    const { db, close } = await openSqlite();
    const leases = new SqliteLeases({ db, node: 'only' });
    const runner = new JobRunner(leases);
    const ends: JobEnd[] = [];
    runner.on('ended', (_n, _l, end) => ends.push(end));
    let firstLease: Lease | undefined;
    runner.runOnce('reminders', async ({ lease, signal, fenced }) => {
      firstLease = lease;
      await fenced((trx) => trx.insertInto('notes').values({ epoch: lease.epoch, text: 'sent' }).execute());
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
    await runner.start();
    await eventually('the job wrote its note', async () => ((await db.selectFrom('notes').selectAll().execute()).length === 1 ? true : undefined));
    expect(runner.runningJobs()).toEqual([{ name: 'reminders', holder: 'only', epoch: 1 }]);
    await runner.stop();
    expect(ends).toEqual(['stopping']);
    expect(leases.held('reminders')).toBeUndefined();

    const again = new SqliteLeases({ db, node: 'only' });
    const acquired: Lease[] = [];
    again.on('acquired', (l) => acquired.push(l));
    again.want('reminders');
    await again.start();
    expect(acquired).toEqual([{ name: 'reminders', holder: 'only', epoch: 2 }]);
    // the first run's lease no longer fences a write: nothing is written
    const stale = firstLease as Lease;
    const refusal = await again
      .fenced(stale, (trx) => trx.insertInto('notes').values({ epoch: stale.epoch, text: 'twice' }).execute())
      .catch((e: unknown) => e);
    expect(isLabtraceError(refusal) && refusal.code).toBe('E_LEASE_LOST');
    expect(isLabtraceError(refusal) && refusal.details).toEqual({ name: 'reminders', epoch: 1, current: 2 });
    expect(await db.selectFrom('notes').select(['epoch', 'text']).execute()).toEqual([{ epoch: 1, text: 'sent' }]);
    await again.stop();
    await close();
  });

  test('a job that throws gives its lease back and runs again under a newer epoch', async () => {
    const { db, close } = await openSqlite();
    const leases = new SqliteLeases({ db, node: 'only' });
    const runner = new JobRunner(leases, { retryMs: 10 });
    const epochs: number[] = [];
    const failed: number[] = [];
    runner.on('failed', (_n, lease) => failed.push(lease.epoch));
    runner.runOnce('forwarder', async ({ lease, signal }) => {
      epochs.push(lease.epoch);
      if (lease.epoch === 1) throw new Error('InfluxDB refused the write');
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
    await runner.start();
    await eventually('the job runs again', () => (epochs.length === 2 ? true : undefined), 10_000);
    expect(epochs).toEqual([1, 2]);
    expect(failed).toEqual([1]);
    expect(runner.runningJobs().map((l) => l.epoch)).toEqual([2]);
    await runner.stop();
    await close();
  });
});

describe('untilAborted', () => {
  test('resolves when the signal is aborted, not before, and at once for a signal already aborted', async () => {
    const controller = new AbortController();
    let settled = false;
    const waiting = untilAborted(controller.signal).then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    controller.abort();
    await waiting;
    expect(settled).toBe(true);
    await expect(untilAborted(AbortSignal.abort())).resolves.toBeUndefined();
  });
});
