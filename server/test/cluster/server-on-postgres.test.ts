// The whole server on PostgreSQL (`database.url`): the store every node shares. Nodes here are LabtraceServers in
// this process, each with its own data directory, embedded broker and pool on one real PostgreSQL 15 database; the
// log key is the lab's one key, given to every node. What one node stores, the other reads; one log grows from both.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { ed25519NoteVerifier, fromBase64, leafHash, openCheckpoint, verifyConsistency, verifyInclusion } from '@labtrace/protocols';
import { LabtraceError } from '@labtrace/protocols';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let postgres: TestPostgres;
let url: string;
const nodes: TestServer[] = [];
const gateways: TestGateway[] = [];
let keyDir: string;

beforeAll(async () => {
  postgres = await startPostgres();
  url = await postgres.createDatabase('lab');
  keyDir = mkdtempSync(path.join(tmpdir(), 'labtrace-keys-'));
}, 120_000);
afterAll(async () => {
  for (const g of gateways) await g.end();
  for (const n of nodes) await n.stop();
  await postgres.stop();
});

/** a node on the shared database, signing the log with the lab's key (created by the first node in its data dir) */
async function node(): Promise<TestServer> {
  const keyFile = path.join(keyDir, 'log.key');
  const t = await startServer({ database: { url }, log: { minCheckpointIntervalMs: 100, keyFile } });
  nodes.push(t);
  return t;
}

async function checkpointOf(t: TestServer): Promise<{ size: number; rootHash: Uint8Array }> {
  const note = await (await t.fetch('/api/log/checkpoint')).text();
  const reader = t.server.logReader;
  if (reader === undefined) throw new Error('the log is not open');
  return openCheckpoint(note, [ed25519NoteVerifier(reader.verifierKey())], { origin: 'labtrace/lab-t' }).checkpoint;
}

async function stored(t: TestServer, gateway: string): Promise<number[]> {
  const rows = await t.server.db.selectFrom('batch_headers').select('batch').where('gateway', '=', gateway).orderBy('batch').execute();
  return rows.map((r) => Number(r.batch));
}

test('a server on PostgreSQL stores and acknowledges verified batches, logs them, and serves them', async () => {
  const a = await node();
  expect(a.server.engine).toBe('postgres');
  // the embedded SQLite parts are not there to be used by mistake
  expect(() => a.server.database).toThrow(LabtraceError);
  const gw = await TestGateway.connect(a, 'gw-a');
  gateways.push(gw);
  await gw.birth('pg-1');
  for (let i = 0; i < 3; i++) expect(await send(a, gw, gw.seal(records('pg-1', i * 4, 4)))).toBe('acked');
  expect(await stored(a, 'gw-a')).toEqual([0, 1, 2]);
  // a forged batch is refused and not stored
  const forged = gw.sign(records('pg-1', 12, 2));
  expect(await send(a, gw, { ...forged, samples: records('pg-1', 12, 2, 99) })).not.toBe('acked');
  expect(await stored(a, 'gw-a')).toEqual([0, 1, 2]);

  // the dashboard's reads: the instrument from BIRTH, its latest values
  const instruments = (await (await a.fetch('/api/instruments')).json()) as { id: string }[];
  expect(instruments.map((i) => i.id)).toContain('pg-1');
  const view = (await (await a.fetch('/api/instruments/pg-1')).json()) as { latest: Record<string, { value: number; ts: number }> };
  const newest = records('pg-1', 11, 1)[0]!;
  expect(view.latest[newest.channel]).toEqual(expect.objectContaining({ value: newest.value, ts: newest.ts }));

  // each batch header is in the log with an inclusion proof under a signed checkpoint
  const entries = (await a.server.logReader!.entries(0, (await checkpointOf(a)).size)).filter((e) => e.kind === 'batch-header');
  await waitFor('a checkpoint covering the batches', async () => (await checkpointOf(a)).size >= entries.length && entries.length >= 3);
  const cp = await checkpointOf(a);
  const all = await a.server.logReader!.entries(0, cp.size);
  const index = all.findIndex((e) => e.kind === 'batch-header');
  const proof = (await (await a.fetch(`/api/log/proof/inclusion?index=${index}&size=${cp.size}`)).json()) as { proof: string[] };
  expect(() => verifyInclusion(leafHash(all[index]!.data), index, cp.size, proof.proof.map(fromBase64), cp.rootHash)).not.toThrow();
  // the audit trail (the test users made entries) is anchored in the same log
  expect(all.some((e) => e.kind === 'audit-event')).toBe(true);
}, 60_000);

test('a second node on the same store reads what the first stored, continues the one log, and its ingest never doubles a batch', async () => {
  const a = nodes[0]!;
  const before = await checkpointOf(a);
  const b = await node();
  // the same records through either node
  const listA = (await (await a.fetch('/api/instruments')).json()) as { id: string }[];
  const listB = (await (await b.fetch('/api/instruments')).json()) as { id: string }[];
  expect(listB.map((i) => i.id).sort()).toEqual(listA.map((i) => i.id).sort());

  // a gateway on node B continues the chain node A stored (gw-a's next batch is 4: batch 3 was the forged one)
  const gwA = gateways[0]!;
  const onB = await gwA.reconnect(b);
  gateways.push(onB);
  expect(await send(b, onB, onB.seal(records('pg-1', 14, 4)))).toBe('acked');
  // and another gateway on node A at the same time
  const gwB = await TestGateway.connect(a, 'gw-b');
  gateways.push(gwB);
  await gwB.birth('pg-2');
  await Promise.all([
    (async () => {
      for (let i = 0; i < 5; i++) expect(await send(b, onB, onB.seal(records('pg-1', 18 + i * 2, 2)))).toBe('acked');
    })(),
    (async () => {
      for (let i = 0; i < 5; i++) expect(await send(a, gwB, gwB.seal(records('pg-2', i * 2, 2)))).toBe('acked');
    })(),
  ]);
  expect(await stored(a, 'gw-a')).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9]);
  expect(await stored(b, 'gw-b')).toEqual([0, 1, 2, 3, 4]);
  // a batch sent again to the other node (a redelivery after a failover) is acknowledged and stored once
  const again = gwB.seal(records('pg-2', 10, 2));
  expect(await send(a, gwB, again)).toBe('acked');
  const gwBonB = await TestGateway.connect(b, 'gw-b', { key: gwB.key });
  gateways.push(gwBonB);
  expect(await send(b, gwBonB, again)).toBe('acked');
  expect(await stored(b, 'gw-b')).toEqual([0, 1, 2, 3, 4, 5]);

  // one log: both nodes serve one checkpoint, consistent with the one before node B came
  await waitFor('both nodes serve the same checkpoint', async () => {
    const [ca, cb] = await Promise.all([checkpointOf(a), checkpointOf(b)]);
    return ca.size === cb.size && Buffer.from(ca.rootHash).equals(Buffer.from(cb.rootHash)) && ca.size > before.size;
  });
  const after = await checkpointOf(b);
  const proof = (await (await b.fetch(`/api/log/proof/consistency?from=${before.size}&to=${after.size}`)).json()) as { proof: string[] };
  expect(() => verifyConsistency(before.size, after.size, before.rootHash, after.rootHash, proof.proof.map(fromBase64))).not.toThrow();
  // every stored batch's header is in the log exactly once
  const headers = (await b.server.logReader!.entries(0, after.size)).filter((e) => e.kind === 'batch-header');
  const seen = headers.map((e) => {
    const h = JSON.parse(new TextDecoder().decode(e.data)) as { header: { gateway: string; batch: number } };
    return `${h.header.gateway}/${h.header.batch}`;
  });
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.length).toBe((await stored(a, 'gw-a')).length + (await stored(a, 'gw-b')).length);
}, 90_000);

test('a node whose log key is not the lab\u2019s is refused at start, naming log.keyFile; the log is left as it was', async () => {
  const a = nodes[0]!;
  const before = await checkpointOf(a);
  const otherKeyDir = mkdtempSync(path.join(tmpdir(), 'labtrace-keys-'));
  let error: unknown;
  try {
    nodes.push(await startServer({ database: { url }, log: { keyFile: path.join(otherKeyDir, 'log.key') } }));
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(LabtraceError);
  expect((error as LabtraceError).code).toBe('E_CONFIG');
  expect((error as Error).message).toMatch(/^log\.keyFile: /);
  const now = await checkpointOf(a);
  expect(now.size).toBeGreaterThanOrEqual(before.size);
  // the lab's key, copied to a new node's own place, is accepted
  const copied = path.join(otherKeyDir, 'lab.key');
  copyFileSync(path.join(keyDir, 'log.key'), copied);
  const c = await startServer({ database: { url }, log: { keyFile: copied } });
  nodes.push(c);
  expect((await checkpointOf(c)).size).toBeGreaterThanOrEqual(now.size);
}, 60_000);

test('one node inspects the running runs, fed every node’s stored samples; alarms acted on through another node reach its engine; the job moves when that node stops', async () => {
  const running = nodes.filter((n) => n.server.engine === 'postgres');
  await waitFor('one node holding the run inspection', () => running.filter((n) => n.server.jobsRunning().includes('run-inspection')).length === 1);
  const holder = running.find((n) => n.server.jobsRunning().includes('run-inspection'))!;
  const other = nodes[1] === holder ? nodes[0]! : nodes[1]!;
  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const call = async <T>(t: TestServer, p: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const res = await t.fetch(p, init, 'technician');
    return { status: res.status, body: (await res.json()) as T };
  };
  const method = {
    id: 'inspected-pg',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing, inspected',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      decisionRule: { kind: 'simple-acceptance' },
      rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'c', high: 100 }],
    },
  };
  expect((await call(other, '/api/methods', json(method))).status).toBe(201);
  const sample = { id: 'S-PG-1', organization: 'org-a', description: 'bar', condition: 'intact', receivedAt: Date.now() };
  expect((await call(other, '/api/lab-samples', json(sample))).status).toBe(201);
  // planned and started through a node that does not inspect
  const run = (await call<{ id: string }>(other, '/api/runs', json({ sample: 'S-PG-1', method: 'inspected-pg', instruments: ['pg-1'] }))).body.id;
  expect((await call(other, `/api/runs/${run}/start`, json({}))).status).toBe(200);
  await waitFor('the inspecting node to build the run’s engine', () => holder.server.inspection.inspected().includes(run));
  expect(other.server.inspection.inspected()).toEqual([]);

  // an out-of-limit value stored through the node that does not inspect (gw-a's chain went on at node B)
  const at = other === nodes[1] ? gateways[1]! : await gateways[1]!.reconnect(other);
  if (at !== gateways[1]) gateways.push(at);
  expect(await send(other, at, at.seal(records('pg-1', 28, 2, 150)))).toBe('acked');
  type Alarms = { alarms: { id: string; acknowledged: { by: string } | null }[]; events: { event: string }[] };
  await waitFor(
    'the alarm raised by the inspecting node',
    async () => (await call<Alarms>(other, `/api/runs/${run}/alarms`)).body.alarms.length === 1,
  );
  const raised = (await call<Alarms>(other, `/api/runs/${run}/alarms`)).body;
  expect(raised.events.map((e) => e.event)).toEqual(['raised']);
  const alarm = raised.alarms[0]!.id;

  // acknowledged through the node that does not inspect: the inspecting node's engine carries it, so acknowledging it
  // again through the inspecting node is refused (a stale engine would record a second acknowledgement)
  const path = `/api/runs/${run}/alarms/${encodeURIComponent(alarm)}/acknowledge`;
  expect((await call(other, path, json({ reason: 'seen on the other node' }))).status).toBe(200);
  await waitFor('the acknowledgement followed by the inspecting node', async () => {
    const again = await call<{ error: string }>(holder, path, json({ reason: 'seen twice' }));
    return again.status === 409;
  });
  const after = (await call<Alarms>(holder, `/api/runs/${run}/alarms`)).body;
  expect(after.events.map((e) => e.event)).toEqual(['raised', 'acknowledged']);

  // cleared through the node that does not inspect: refused while the condition is present, as the engine refuses it
  const clearPath = `/api/runs/${run}/alarms/${encodeURIComponent(alarm)}/clear`;
  const early = await call<{ reason?: string }>(other, clearPath, json({ reason: 'done' }));
  expect(early.status).toBe(409);
  expect(early.body.reason).toBe('alarm.condition-present');
  // the value back within limits: the inspecting node records the return, still acknowledged; then the clearance stands
  expect(await send(other, at, at.seal(records('pg-1', 30, 2, 20)))).toBe('acked');
  await waitFor('the return recorded', async () =>
    (await call<Alarms>(other, `/api/runs/${run}/alarms`)).body.events.some((e) => e.event === 'returned'),
  );
  expect((await call<Alarms>(other, `/api/runs/${run}/alarms`)).body.alarms[0]!.acknowledged).toMatchObject({ by: 'technician' });
  expect((await call(other, clearPath, json({ reason: 'specimen replaced' }))).status).toBe(200);

  // the inspecting node stops: another takes the job over and inspects the run
  await holder.stop();
  nodes.splice(nodes.indexOf(holder), 1);
  await waitFor(
    'another node holding the run inspection',
    () => nodes.some((n) => n.server.jobsRunning().includes('run-inspection') && n.server.inspection.inspected().includes(run)),
    30_000,
  );
}, 90_000);
