// Two server nodes on one PostgreSQL, through real processes on loopback: a PostgreSQL 15 database, Mosquitto 2
// running the shipped configuration and ACL (plus a user for the second node), Redis 7 for socket.io's streams
// adapter, two `labtrace server` processes with database.url on that one database, the same mqtt.external
// sharedGroup, the same live.redis stream and the lab's one log key and certificate key; three gateways publishing
// signed, chained batches.
//
// What the shared store adds to the shared subscription (broker/shared-subscription.test.ts, separate stores): a
// batch is stored once whichever node takes it, also when a gateway publishes it again because its ACK was lost
// with a killed node (the other node finds it stored, acknowledges it and stores nothing); one transparency log
// grows from both nodes; a run started through one node is followed and finished through the other (the node that
// inspects the runs passes every node's stored batches to the run's live room, whichever node stored them).
//
// Which node stored a batch: each node logs `batch acknowledged` (debug) with the gateway, the batch and whether
// it stored it or found it stored.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { io, type Socket } from 'socket.io-client';
import { stringify } from 'yaml';
import {
  ed25519NoteVerifier,
  formatVerifierKey,
  fromBase64,
  openCheckpoint,
  publicKeyFromSeed,
  unpackRunSamples,
  verifyConsistency,
  type ClientToServerEvents,
  type LiveSample,
  type RunWatchAnswer,
  type ServerToClientEvents,
} from '@labtrace/protocols';
import type { Mosquitto, MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { collect, exitOf, runLabtrace, signIn, waitFor as until } from '../helpers/lab-process.js';
import { Gateway, gatewayUsers, NODE_USERS, nodeMqtt, SAMPLES_PER_BATCH, startNodesBroker, waitFor } from '../helpers/mqtt-gateway.js';
import { freePort } from '../helpers/ports.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { LAB, seedOf, TEST_CLOCK_WINDOW_MS } from '../helpers/server.js';

const GATEWAYS = ['gw-1', 'gw-2', 'gw-3'];
const GATEWAY_USERS = gatewayUsers(GATEWAYS);
/** a gateway publishes a batch again when its ACK has not come within this (the real gateway: 30 s) */
const ACK_TIMEOUT_MS = 3000;
const ADMIN_PASSWORD = 'admin-secret-for-tests';
const USER_PASSWORD = 'user-secret-for-tests';
const ORIGIN = `labtrace/${LAB}`;

interface Node {
  name: string;
  base: string;
  config: string;
  proc: ChildProcess;
  /** the output of each process the node ran as, in order */
  outputs: (() => string)[];
}

let postgres: TestPostgres;
let url: string;
let store: pg.Pool;
let redis: TestRedis;
let broker: Mosquitto;
let a: Node;
let b: Node;
let gateways: Gateway[] = [];
/** the lab's log and certificate keys, shared by the nodes */
let keyDir: string;
const sockets: Socket[] = [];
const tokens: Record<'admin' | 'technician' | 'signatory', string> = { admin: '', technician: '', signatory: '' };

/** Writes a node's server.yaml: its own data directory and port, everything else shared with the other node. */
async function configure(
  name: string,
  user: MosquittoUser,
  url: string,
  keyDir: string,
  roles?: ('api' | 'ingest' | 'jobs')[],
): Promise<{ config: string; base: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), `labtrace-${name}-`));
  const httpPort = await freePort();
  const config = path.join(dir, 'server.yaml');
  writeFileSync(
    config,
    stringify({
      lab: LAB,
      dataDir: path.join(dir, 'data'),
      database: { url },
      http: { host: '127.0.0.1', port: httpPort },
      mqtt: nodeMqtt(dir, name, user, broker.url),
      live: { redis: { url: redis.url, passwordFile: redis.passwordFile, stream: 'labtrace-test:live' } },
      log: { keyFile: path.join(keyDir, 'log.key'), minCheckpointIntervalMs: 200 },
      certificates: { keyFile: path.join(keyDir, 'certificate.key') },
      gateways: GATEWAYS.map((id) => ({ id, key: formatVerifierKey(id, publicKeyFromSeed(seedOf(id))) })),
      calibration: { requireForRuns: false },
      laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown' },
      ingest: { maxClockSkewMs: TEST_CLOCK_WINDOW_MS, maxAgeMs: TEST_CLOCK_WINDOW_MS },
      ...(roles === undefined ? {} : { cluster: { roles } }),
    }),
  );
  return { config, base: `http://127.0.0.1:${httpPort}` };
}

/** Starts the node's process and waits until it serves (connected to the broker and subscribed: start() waits for the SUBACK). */
async function launch(node: Node): Promise<void> {
  const proc = runLabtrace(['server', '--config', node.config], { LABTRACE_ADMIN_PASSWORD: ADMIN_PASSWORD, LOG_LEVEL: 'debug' });
  const output = collect(proc);
  node.proc = proc;
  node.outputs.push(output);
  const deadline = Date.now() + 60_000;
  while (
    !(await fetch(`${node.base}/api/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${node.name} did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startNode(name: string, user: MosquittoUser, url: string, keyDir: string): Promise<Node> {
  const { config, base } = await configure(name, user, url, keyDir);
  const node: Node = { name, base, config, proc: undefined as unknown as ChildProcess, outputs: [] };
  await launch(node);
  return node;
}

async function stopNode(node: Node, signal: NodeJS.Signals): Promise<number | null> {
  const exited = exitOf(node.proc);
  if (node.proc.exitCode === null && node.proc.signalCode === null) node.proc.kill(signal);
  return exited;
}

/** `<gateway> <batch>` of each batch a node acknowledged, by what it did: stored it, or found it stored */
function acknowledged(node: Node): { stored: string[]; found: string[] } {
  const out = { stored: [] as string[], found: [] as string[] };
  for (const output of node.outputs)
    for (const line of output().split('\n')) {
      if (!line.includes('"batch acknowledged"')) continue;
      const entry = JSON.parse(line) as { gateway: string; batch: number; outcome: string };
      (entry.outcome === 'stored' ? out.stored : out.found).push(`${entry.gateway} ${entry.batch}`);
    }
  return out;
}

/** every stored batch with how often it is stored, from the shared database */
async function storedBatches(): Promise<Map<string, number>> {
  const { rows } = await store.query<{ gateway: string; batch: string; n: string }>(
    'SELECT gateway, batch, COUNT(*) AS n FROM batch_headers GROUP BY gateway, batch',
  );
  return new Map(rows.map((r) => [`${r.gateway} ${r.batch}`, Number(r.n)]));
}

const made = (): string[] => gateways.flatMap((g) => g.made.map((batch) => `${g.id} ${batch}`)).sort();
const drained = (): boolean => gateways.every((g) => g.outbox.size === 0);

/** every batch made is acknowledged and stored exactly once, and nothing else is stored */
async function expectEachStoredOnce(): Promise<void> {
  for (const g of gateways) expect([...g.acked.keys()].sort((x, y) => x - y)).toEqual(g.made);
  const stored = await storedBatches();
  expect([...stored.keys()].sort()).toEqual(made());
  expect([...stored].filter(([, n]) => n !== 1)).toEqual([]);
  // each stored header is in the one log once
  const { rows } = await store.query<{ headers: string; indexes: string }>(
    'SELECT COUNT(*) AS headers, COUNT(DISTINCT log_index) AS indexes FROM batch_headers',
  );
  expect(Number(rows[0]?.indexes)).toBe(Number(rows[0]?.headers));
}

async function call<T = Record<string, unknown>>(
  node: Node,
  p: string,
  role: keyof typeof tokens,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${node.base}${p}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${tokens[role]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
}

/** the node's current checkpoint, opened with the lab's log key as the node serves it */
async function checkpointOf(node: Node): Promise<{ size: number; rootHash: Uint8Array }> {
  const keys = (await (await fetch(`${node.base}/api/log/keys`)).json()) as { log: { verifierKey: string } };
  const note = await (await fetch(`${node.base}/api/log/checkpoint`)).text();
  return openCheckpoint(note, [ed25519NoteVerifier(keys.log.verifierKey)], { origin: ORIGIN }).checkpoint;
}

async function expectConsistent(
  node: Node,
  before: { size: number; rootHash: Uint8Array },
  after: { size: number; rootHash: Uint8Array },
): Promise<void> {
  const res = await fetch(`${node.base}/api/log/proof/consistency?from=${before.size}&to=${after.size}`);
  expect(res.status).toBe(200);
  const { proof } = (await res.json()) as { proof: string[] };
  expect(() => verifyConsistency(before.size, after.size, before.rootHash, after.rootHash, proof.map(fromBase64))).not.toThrow();
}

function connect(node: Node, role: keyof typeof tokens): Promise<Socket<ServerToClientEvents, ClientToServerEvents>> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(node.base, {
    transports: ['websocket'],
    auth: { token: tokens[role] },
    reconnection: false,
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

beforeAll(async () => {
  postgres = await startPostgres();
  url = await postgres.createDatabase('lab');
  store = new pg.Pool({ connectionString: url, max: 2 });
  redis = await startRedis();
  broker = await startNodesBroker(GATEWAY_USERS);
  keyDir = mkdtempSync(path.join(tmpdir(), 'labtrace-lab-keys-'));
  const [user1, user2] = NODE_USERS;
  // the first node migrates the database and creates the lab's keys; the second finds both
  a = await startNode('node-a', user1, url, keyDir);
  b = await startNode('node-b', user2, url, keyDir);
  tokens.admin = await signIn(a.base, 'admin', ADMIN_PASSWORD);
  gateways = await Promise.all(GATEWAY_USERS.map((u) => Gateway.connect(broker.url, u, ACK_TIMEOUT_MS)));
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await Promise.all(gateways.map((g) => g.end()));
  for (const node of [a, b]) if (node !== undefined) await stopNode(node, 'SIGTERM');
  await broker?.dispose();
  await redis?.stop();
  await store?.end();
  await postgres?.stop();
}, 60_000);

describe('two server nodes on one PostgreSQL', () => {
  test('every batch is stored once, by either node; a dashboard on node B receives what node A ingested within 1 s', async () => {
    const onB = await connect(b, 'admin');
    const arrivedOnB = new Map<string, number>();
    onB.on('samples', (samples: LiveSample[]) => {
      const at = Date.now();
      for (const s of samples) if (!arrivedOnB.has(`${s.gateway} ${s.seq}`)) arrivedOnB.set(`${s.gateway} ${s.seq}`, at);
    });

    await Promise.all(gateways.map((g) => g.produce(20)));
    await waitFor('every batch acknowledged', drained, 60_000);
    await expectEachStoredOnce();

    // spread over both nodes, each batch stored by one of them (a node logs a batch just after its ACK)
    await waitFor('each batch in a node’s log', () => acknowledged(a).stored.length + acknowledged(b).stored.length >= made().length, 5_000).catch(
      () => undefined,
    );
    const byA = acknowledged(a).stored;
    const byB = acknowledged(b).stored;
    expect(byA.length).toBeGreaterThan(0);
    expect(byB.length).toBeGreaterThan(0);
    expect([...byA, ...byB].sort()).toEqual(made());

    // the samples node A stored reached the dashboard on node B, through Redis, within a second of their ACK
    await waitFor(
      'node A’s samples on node B',
      () => byA.every((k) => arrivedOnB.has(`${k.split(' ')[0]} ${Number(k.split(' ')[1]) * SAMPLES_PER_BATCH}`)),
      5_000,
    );
    for (const key of byA) {
      const [id = '', batch = ''] = key.split(' ');
      const g = gateways.find((x) => x.id === id);
      const ackedAt = g?.acked.get(Number(batch)) ?? 0;
      for (let i = 0; i < SAMPLES_PER_BATCH; i++) {
        const arrived = arrivedOnB.get(`${id} ${Number(batch) * SAMPLES_PER_BATCH + i}`);
        expect({ key, i, inTime: arrived !== undefined && arrived - ackedAt <= 1000 }).toEqual({ key, i, inTime: true });
      }
    }
  }, 90_000);

  test('kill -9 of one node mid-stream: nothing acknowledged lost or doubled, the outboxes drain, the log stays one log', async () => {
    const before = await checkpointOf(b);
    const counts = new Map(gateways.map((g) => [g.id, g.acked.size]));
    const producing = Promise.all(gateways.map((g) => g.produce(30)));
    await waitFor('batches acknowledged after the first test', () => gateways.every((g) => g.acked.size >= (counts.get(g.id) ?? 0) + 8), 30_000);
    b.proc.kill('SIGKILL');
    expect(await exitOf(b.proc)).toBeNull();
    expect(b.proc.signalCode).toBe('SIGKILL');

    await producing;
    // Mosquitto keeps handing the dead member its share: those batches come again after the gateways' ACK timeout
    // until node A takes them
    await waitFor('the outboxes to drain through node A', drained, 120_000);
    await expectEachStoredOnce();
    const resent = gateways.flatMap((g) => [...g.sends].filter(([, n]) => n > 1));
    expect(resent.length).toBeGreaterThan(0);

    // node A's checkpoint after the failover extends what node B had signed before it died
    let after = await checkpointOf(a);
    const { rows } = await store.query<{ top: string }>('SELECT MAX(log_index) AS top FROM batch_headers');
    const deadline = Date.now() + 10_000;
    while (after.size <= Number(rows[0]?.top) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      after = await checkpointOf(a);
    }
    expect(after.size).toBeGreaterThan(Number(rows[0]?.top));
    await expectConsistent(a, before, after);

    // node B comes back: the batches Mosquitto kept in its session are found stored, acknowledged, not stored again
    await launch(b);
    await waitFor('node B’s session delivered', () => acknowledged(b).found.length > 0, 20_000);
    await expectEachStoredOnce();
    await expectConsistent(b, after, await checkpointOf(b));
  }, 180_000);

  test('a run started through node A and watched through node B completes with its results computed once and one certificate', async () => {
    // the lab's people and records, through node A
    expect((await call(a, '/api/organizations', 'admin', { id: 'org-a', name: 'Client A', contact: 'quality@client-a.example' })).status).toBe(201);
    for (const role of ['technician', 'signatory'] as const) {
      expect((await call(a, '/api/users', 'admin', { username: role, role, password: USER_PASSWORD })).status).toBe(201);
      tokens[role] = await signIn(a.base, role, USER_PASSWORD);
    }
    const instrument = `${GATEWAYS[0]}-ut`;
    const now = Date.now();
    expect(
      (
        await call(a, `/api/instruments/${instrument}/calibrations`, 'technician', {
          calibratedAt: now - 86_400_000,
          laboratory: 'Reference Lab',
          certificate: 'CAL-1',
          results: [{ point: 'p1', reference: 10, indication: 10.01, unit: '' }],
          uncertainty: { value: 0.1, unit: '', k: 2 },
          nextDueAt: now + 300 * 86_400_000,
        })
      ).status,
    ).toBe(201);
    const sample = { id: 'S-1', organization: 'org-a', description: 'steel bar B500B, 12 mm', condition: 'as received', receivedAt: now - 3_600_000 };
    expect((await call(a, '/api/lab-samples', 'technician', sample)).status).toBe(201);
    const method = {
      id: 'tensile',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing at room temperature',
      definition: {
        measurands: [{ name: 'force', unit: '', channel: 'c' }],
        instrumentTypes: ['x'],
        decisionRule: { kind: 'simple-acceptance' },
        results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01 }],
      },
    };
    expect((await call(a, '/api/methods', 'technician', method)).status).toBe(201);

    const created = await call<{ id: string }>(a, '/api/runs', 'technician', { sample: 'S-1', method: 'tensile', instruments: [instrument] });
    expect(created.status).toBe(201);
    const run = created.body.id;
    expect((await call(a, `/api/runs/${run}/start`, 'technician', {})).body).toMatchObject({ state: 'running' });

    // watched through node B
    const watcher = await connect(b, 'technician');
    const states: string[] = [];
    const runSamples: LiveSample[] = [];
    watcher.on('run:state', (r) => {
      if (r.id === run) states.push(r.state);
    });
    watcher.on('run:samples', (id, columns) => {
      if (id === run) runSamples.push(...unpackRunSamples(columns));
    });
    const answer = await new Promise<RunWatchAnswer>((resolve) => watcher.emit('run:watch', run, resolve));
    expect(answer).toEqual({ ok: true, state: 'running' });

    const gw = gateways[0]!;
    const first = gw.made.length;
    const storedBefore = new Set([...acknowledged(a).stored, ...acknowledged(b).stored]);
    await Promise.all(gateways.map((g) => g.produce(20)));
    await waitFor('every batch acknowledged', drained, 60_000);
    // the node that inspects the runs passes on the stored batches in the log's order, after their commits
    const during = gw.made.slice(first).map((batch) => `${gw.id} ${batch}`);
    const seqsOf = (key: string): string[] =>
      Array.from({ length: SAMPLES_PER_BATCH }, (_, i) => `${gw.id} ${Number(key.split(' ')[1]) * SAMPLES_PER_BATCH + i}`);
    const seenOnB = (): Set<string> => new Set(runSamples.map((s) => `${s.gateway} ${s.seq}`));
    await waitFor('the run’s samples on node B', () => during.flatMap(seqsOf).every((k) => seenOnB().has(k)), 15_000).catch(() => undefined);
    const stopped = await call<{ state: string; ranges: { gateway: string; firstSeq: number; lastSeq: number }[] }>(
      a,
      `/api/runs/${run}/stop`,
      'technician',
      {},
    );
    expect(stopped.body.state).toBe('completed');
    await waitFor('the completion on node B', () => states.includes('completed'), 5_000);

    // the run's samples reached the watcher on node B from the batches either node stored
    const storedBy = (node: Node): string[] => acknowledged(node).stored.filter((k) => during.includes(k) && !storedBefore.has(k));
    expect(storedBy(a).length).toBeGreaterThan(0);
    expect(storedBy(b).length).toBeGreaterThan(0);
    const seen = seenOnB();
    for (const key of during) expect({ key, seen: seqsOf(key).filter((k) => seen.has(k)).length }).toEqual({ key, seen: SAMPLES_PER_BATCH });
    const range = stopped.body.ranges.find((r) => r.gateway === gw.id);
    for (const s of runSamples) expect(s.seq >= (range?.firstSeq ?? 0) && s.seq <= (range?.lastSeq ?? -1) && s.instrument === instrument).toBe(true);

    // its results, asked of both nodes at once: computed once, the same on both
    const [onA, onB] = await Promise.all([
      call<{ computedAt: number; records: { count: number } }>(a, `/api/runs/${run}/results`, 'technician'),
      call<{ computedAt: number; records: { count: number } }>(b, `/api/runs/${run}/results`, 'technician'),
    ]);
    expect(onA.status).toBe(200);
    expect(onB.body).toEqual(onA.body);
    expect(onA.body.records.count).toBe(during.length * SAMPLES_PER_BATCH);
    const computed = await store.query("SELECT id FROM audit_trail WHERE record_type = 'run-results' AND record_id = $1", [run]);
    expect(computed.rowCount).toBe(1);

    // a certificate requested through node B, issued by the signatory through both nodes at once: issued once
    const draft = await call<{ id: string; status: string }>(b, '/api/certificates', 'technician', { run });
    expect(draft).toMatchObject({ status: 201, body: { status: 'draft' } });
    const issues = await Promise.all(
      [a, b].map((node) => call<{ status: string; error?: string }>(node, `/api/certificates/${draft.body.id}/issue`, 'signatory', {})),
    );
    expect(issues.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(issues.find((r) => r.status === 409)?.body).toMatchObject({ error: expect.stringMatching(/is already issued/) as unknown });
    const certificates = await store.query('SELECT id FROM certificates WHERE run = $1', [run]);
    expect(certificates.rowCount).toBe(1);
    for (const node of [a, b]) {
      const pub = (await (await fetch(`${node.base}/api/public/certificates/${draft.body.id}`)).json()) as { status: string };
      expect(pub.status).toBe('valid');
    }
  }, 120_000);

  test('both nodes restarted in turn while the gateways publish: nothing lost, nothing doubled', async () => {
    const before = await checkpointOf(a);
    const producing = Promise.all(gateways.map((g) => g.produce(100)));
    for (const node of [a, b]) {
      expect(await stopNode(node, 'SIGTERM')).toBe(0);
      await launch(node);
    }
    await producing;
    await waitFor('every batch acknowledged', drained, 90_000);
    await expectEachStoredOnce();
    await expectConsistent(b, before, await checkpointOf(b));
  }, 150_000);

  test('a node signing with another log key is refused at start, naming log.keyFile', async () => {
    const { config } = await configure('node-c', NODE_USERS[0], url, mkdtempSync(path.join(tmpdir(), 'labtrace-other-keys-')));
    const proc = runLabtrace(['server', '--config', config], { LABTRACE_ADMIN_PASSWORD: ADMIN_PASSWORD });
    const output = collect(proc);
    expect(await exitOf(proc)).not.toBe(0);
    expect(output()).toMatch(/log\.keyFile: the shared store's transparency log was not signed with this node's key/);
    // the two nodes go on serving the one log
    const [onA, onB] = await Promise.all([checkpointOf(a), checkpointOf(b)]);
    expect(Math.min(onA.size, onB.size)).toBeGreaterThan(0);
  }, 60_000);

  test('nodes with some roles: one serves the API only, the other ingests and runs the jobs; the dashboard on the first sees what the second stored', async () => {
    const [user1, user2] = NODE_USERS;
    // both restarted with roles, each keeping its MQTT session: node A, killed, did not leave the shared group, so
    // its session still holds the shared DATA subscription
    for (const [node, user, roles, signal] of [
      [a, user1, ['api'], 'SIGKILL'],
      [b, user2, ['ingest', 'jobs'], 'SIGTERM'],
    ] as const) {
      expect(await stopNode(node, signal)).toBe(signal === 'SIGKILL' ? null : 0);
      const { config, base } = await configure(node.name, user, url, keyDir, [...roles]);
      node.config = config;
      node.base = base;
      node.outputs = [];
      await launch(node);
    }
    const healthOf = async (node: Node): Promise<{ node: { roles: string[]; leases: string[] } }> =>
      (await (await fetch(`${node.base}/api/health`)).json()) as { node: { roles: string[]; leases: string[] } };
    expect((await healthOf(a)).node).toEqual({ roles: ['api'], leases: [] });
    await until(
      'node B holding the run inspection',
      async () => ((await healthOf(b)).node.leases.includes('run-inspection') ? true : undefined),
      30_000,
    );
    expect((await healthOf(b)).node.roles).toEqual(['ingest', 'jobs']);

    // node B serves its health only: the API, the dashboard and live updates answer 421, naming why
    tokens.admin = await signIn(a.base, 'admin', ADMIN_PASSWORD);
    const refused = await call(b, '/api/instruments', 'admin');
    expect(refused).toMatchObject({ status: 421, body: { code: 'E_NOT_SERVED', reason: 'node.api-not-served' } });
    expect((await fetch(`${b.base}/`)).status).toBe(421);
    await expect(connect(b, 'admin')).rejects.toThrow();

    // node A takes no batch (its session's share is given up): every batch is stored by node B, each sent once
    const onA = await connect(a, 'admin');
    const arrivedOnA = new Set<string>();
    onA.on('samples', (samples: LiveSample[]) => {
      for (const s of samples) arrivedOnA.add(`${s.gateway} ${s.seq}`);
    });
    const first = new Map(gateways.map((g) => [g.id, g.made.length]));
    await Promise.all(gateways.map((g) => g.produce(15)));
    await waitFor('every batch acknowledged', drained, 60_000);
    await expectEachStoredOnce();
    const madeNow = gateways.flatMap((g) => g.made.slice(first.get(g.id)).map((batch) => `${g.id} ${batch}`)).sort();
    await waitFor('node B’s log of its batches', () => acknowledged(b).stored.length >= madeNow.length, 10_000).catch(() => undefined);
    expect(acknowledged(a)).toEqual({ stored: [], found: [] });
    expect(acknowledged(b).stored.sort()).toEqual(madeNow);
    const resent = gateways.flatMap((g) => g.made.slice(first.get(g.id)).filter((batch) => (g.sends.get(batch) ?? 0) > 1));
    expect(resent).toEqual([]);

    // the dashboard on node A: node B's samples through Redis, and the records through its API
    const lastOf = (g: Gateway): string => `${g.id} ${(g.made[g.made.length - 1] ?? 0) * SAMPLES_PER_BATCH + SAMPLES_PER_BATCH - 1}`;
    await waitFor('node B’s samples on node A', () => gateways.every((g) => arrivedOnA.has(lastOf(g))), 10_000);
    const instruments = await call<{ id: string }[]>(a, '/api/instruments', 'admin');
    expect(instruments.status).toBe(200);
    expect(instruments.body.map((i) => i.id)).toEqual(expect.arrayContaining(GATEWAYS.map((id) => `${id}-ut`)));
    // the log's checkpoints are signed by the jobs' node and served by the API's
    const cp = await checkpointOf(a);
    const { rows } = await store.query<{ top: string }>('SELECT MAX(log_index) AS top FROM batch_headers');
    await until(
      'a checkpoint covering node B’s batches',
      async () => ((await checkpointOf(a)).size > Number(rows[0]?.top) ? true : undefined),
      10_000,
    );
    await expectConsistent(a, cp, await checkpointOf(a));
  }, 150_000);
});
