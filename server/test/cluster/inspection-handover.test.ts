// The run inspection as a lease job of one node among several on one real PostgreSQL 15 (in-process LabtraceServers,
// as in server-on-postgres.test.ts): its alarm events are stored through the lease's fence, with the position of the
// sample feed, so that a node that only believes it still inspects stores nothing, and the node that takes the job
// over resumes after the last batch whose events are stored: the batches stored while no node inspected are
// inspected, and none is inspected twice.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let postgres: TestPostgres;
let url: string;
let keyDir: string;
const nodes = new Map<string, TestServer>();
const gateways: TestGateway[] = [];
let gw: TestGateway;
let run: string;
/** the gateway's next sequence number */
let seq = 0;

beforeAll(async () => {
  postgres = await startPostgres();
  url = await postgres.createDatabase('lab');
  keyDir = mkdtempSync(path.join(tmpdir(), 'labtrace-keys-'));
}, 120_000);
afterAll(async () => {
  for (const g of gateways) await g.end();
  for (const n of nodes.values()) await n.stop();
  await postgres.stop();
});

/** a node named `name` on the shared database; its leases are polled often and its lease session ends soon */
async function node(name: string): Promise<TestServer> {
  const t = await startServer({
    database: { url },
    log: { minCheckpointIntervalMs: 100, keyFile: path.join(keyDir, 'log.key') },
    cluster: { node: name, leases: { pollMs: 200, sessionTimeoutMs: 2000 } },
  });
  nodes.set(name, t);
  return t;
}

async function stopNode(name: string): Promise<void> {
  await nodes.get(name)?.stop();
  nodes.delete(name);
}

const inspects = (t: TestServer): boolean => t.server.jobsRunning().includes('run-inspection') && t.server.inspection.inspected().includes(run);

/** the run's alarm events as stored, oldest first */
async function events(t: TestServer): Promise<string[]> {
  const rows = await t.server.db.selectFrom('run_alarms').select('event').where('run', '=', run).orderBy('id').execute();
  return rows.map((r) => r.event);
}

/** a batch of two samples of `value` on pg-1, stored through `t` */
async function store(t: TestServer, value: number): Promise<void> {
  expect(await send(t, gw, gw.seal(records('pg-1', seq, 2, value)))).toBe('acked');
  seq += 2;
}

async function storedPosition(t: TestServer): Promise<{ position: number; epoch: number } | undefined> {
  const row = await t.server.db.selectFrom('job_positions').select(['position', 'epoch']).where('name', '=', 'run-inspection').executeTakeFirst();
  return row === undefined ? undefined : { position: Number(row.position), epoch: Number(row.epoch) };
}

async function epochOf(t: TestServer): Promise<number> {
  const row = await t.server.db.selectFrom('cluster_leases').select('epoch').where('name', '=', 'run-inspection').executeTakeFirstOrThrow();
  return Number(row.epoch);
}

/**
 * Node `name` stalls as far as its leases go: it stops polling them (so it never learns that it lost them) and does
 * not notice its lease session end; the test ends that session, as PostgreSQL does after sessionTimeoutMs of silence.
 * Its store connections, its ingest and its inspection go on, believing it still holds the lease.
 */
async function stallLeases(name: string): Promise<void> {
  const t = nodes.get(name)!;
  const leases = (t.server as unknown as { jobs: { leases: Record<string, unknown> } }).jobs.leases;
  leases.poll = () => Promise.resolve();
  leases.drop = () => undefined;
  await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${`labtrace-leases:${name}`}`.execute(t.server.db);
}

test('the first node to inspect starts after the stored batches and stores its position, with its epoch', async () => {
  const a = await node('node-a');
  gw = await TestGateway.connect(a, 'gw-a');
  gateways.push(gw);
  await gw.birth('pg-1');
  await store(a, 1);
  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const method = {
    id: 'inspected-handover',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing, inspected',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 100 }],
    },
  };
  expect((await a.fetch('/api/methods', json(method), 'technician')).status).toBe(201);
  const sample = { id: 'S-HO-1', organization: 'org-a', description: 'bar', condition: 'intact', receivedAt: Date.now() };
  expect((await a.fetch('/api/lab-samples', json(sample), 'technician')).status).toBe(201);
  const planned = await a.fetch('/api/runs', json({ sample: 'S-HO-1', method: 'inspected-handover', instruments: ['pg-1'] }), 'technician');
  run = ((await planned.json()) as { id: string }).id;
  expect((await a.fetch(`/api/runs/${run}/start`, json({}), 'technician')).status).toBe(200);
  await waitFor('node A inspecting the run', () => inspects(a));
  await store(a, 20);
  const newest = Number(
    (
      await a.server.db
        .selectFrom('batch_headers')
        .select(sql<string>`MAX(log_index)`.as('last'))
        .executeTakeFirstOrThrow()
    ).last,
  );
  await waitFor('the position of the newest batch stored', async () => (await storedPosition(a))?.position === newest);
  expect(await storedPosition(a)).toEqual({ position: newest, epoch: await epochOf(a) });
  expect(await events(a)).toEqual([]);
}, 60_000);

test('a node that stalled past its lease stores no alarm event once another node inspects: the alarm is stored once, and the stale node stops inspecting', async () => {
  const a = nodes.get('node-a')!;
  const b = await node('node-b');
  const before = await epochOf(a);
  await stallLeases('node-a');
  await waitFor('node B inspecting the run', () => inspects(b), 20_000);
  expect(await epochOf(b)).toBe(before + 1);
  // node A still believes it inspects
  expect(inspects(a)).toBe(true);

  // an out-of-limit value: both nodes read it; only the lease's current holder stores the alarm
  await store(a, 150);
  await waitFor('the alarm raised', async () => (await events(a)).includes('raised'));
  await waitFor('node A stopping its inspection (its write was refused)', () => !a.server.jobsRunning().includes('run-inspection'), 20_000);
  expect(a.server.inspection.inspected()).toEqual([]);
  // nothing more comes of node A (it stores no event once it stopped): one alarm, raised once
  await store(a, 160);
  await waitFor('node B read the last batch', async () => {
    const newest = await a.server.db
      .selectFrom('batch_headers')
      .select(sql<string>`MAX(log_index)`.as('last'))
      .executeTakeFirstOrThrow();
    return (await storedPosition(b))?.position === Number(newest.last);
  });
  expect(await events(b)).toEqual(['raised']);
  expect((await storedPosition(b))?.epoch).toBe(before + 1);
  expect(inspects(b)).toBe(true);
}, 60_000);

test('the batches stored while no node inspects are inspected by the next node: it resumes at the stored position', async () => {
  const a = nodes.get('node-a')!;
  await store(a, 20);
  await waitFor('the return recorded', async () => (await events(a)).join() === 'raised,returned');
  // node B stops; node A (stalled) cannot take the lease: no node inspects while a value goes out of limits again
  await stopNode('node-b');
  await store(a, 150);
  await store(a, 170);
  expect(await events(a)).toEqual(['raised', 'returned']);
  const c = await node('node-c');
  await waitFor('node C inspecting the run', () => inspects(c), 20_000);
  await waitFor('the recurrence from the gap recorded', async () => (await events(c)).includes('recurred'));
  expect(await events(c)).toEqual(['raised', 'returned', 'recurred']);
}, 60_000);

test('the position survives a handover: the next node inspects each batch once, after the last one the node before it inspected', async () => {
  const a = nodes.get('node-a')!;
  const c = nodes.get('node-c')!;
  await store(a, 20);
  await waitFor('the return recorded', async () => (await events(a)).join() === 'raised,returned,recurred,returned');
  const newest = Number(
    (
      await a.server.db
        .selectFrom('batch_headers')
        .select(sql<string>`MAX(log_index)`.as('last'))
        .executeTakeFirstOrThrow()
    ).last,
  );
  await waitFor('node C stored the position of the newest batch', async () => (await storedPosition(c))?.position === newest);
  await stopNode('node-c');
  const d = await node('node-d');
  await waitFor('node D inspecting the run', () => inspects(d), 20_000);
  // node D starts where node C left: none of the batches node C inspected leads to an event a second time
  await waitFor('node D stored its position', async () => (await storedPosition(d))?.epoch === (await epochOf(d)));
  expect((await storedPosition(d))?.position).toBe(newest);
  await store(a, 150);
  await waitFor('the next recurrence recorded', async () => (await events(d)).filter((e) => e === 'recurred').length === 2);
  await store(a, 20);
  await waitFor('the next return recorded', async () => (await events(d)).filter((e) => e === 'returned').length === 3);
  expect(await events(d)).toEqual(['raised', 'returned', 'recurred', 'returned', 'recurred', 'returned']);
}, 60_000);
