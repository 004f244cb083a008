// The jobs of one node besides the run inspection, on a real PostgreSQL with two in-process nodes: the demo lab of
// `npm start` (its method recorded once, one demo run at a time, following the testing machine's specimens whichever
// node stored them, moving to the other node when its node stops, and writing nothing through a node that lost its
// lease) and the calibration reminders (logged by the node that holds their job only).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { LabtraceError, type Sample } from '@labtrace/protocols';
import { PostgresLeases } from '../../src/cluster/leases.js';
import { DEMO_ACTOR, DEMO_METHOD_ID, DemoLab, type DemoParts } from '../../src/lab/demo.js';
import { demoJob } from '../../src/lab/demo-job.js';
import type { LabtraceServer } from '../../src/server.js';
import type { Tables } from '../../src/store/database.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { ORGANIZATION, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

let postgres: TestPostgres;
let keyDir: string;
const nodes: TestServer[] = [];
const gateways: TestGateway[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  keyDir = mkdtempSync(path.join(tmpdir(), 'labtrace-keys-'));
}, 120_000);
afterAll(async () => {
  for (const g of gateways) await g.end();
  for (const n of nodes) await n.stop();
  await postgres.stop();
});

/** how long a step through the nodes may take on a busy machine */
const WAIT = 30_000;
const DEMO = { enabled: true, organization: ORGANIZATION, pauseSpecimens: 0 };

interface Line {
  msg: string;
  job?: string;
  instrument?: string;
  err?: unknown;
}

/** a node on the database `url`, named `name`, signing the log with the lab's key; its log lines go to `lines` */
async function node(url: string, name: string, overrides: Record<string, unknown> = {}, lines: Line[] = []): Promise<TestServer> {
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  const t = await startServer(
    {
      database: { url },
      log: { keyFile: path.join(keyDir, `${path.basename(new URL(url).pathname)}.key`) },
      cluster: { node: name, leases: { pollMs: 200, sessionTimeoutMs: 10_000 } },
      ...overrides,
    },
    logger,
  );
  nodes.push(t);
  return t;
}

async function stopNode(t: TestServer): Promise<void> {
  await t.stop();
  nodes.splice(nodes.indexOf(t), 1);
}

const holding = (job: string, among: TestServer[]): TestServer[] => among.filter((n) => n.server.jobsRunning().includes(job));

const LAB_VIEW = { role: 'admin', organization: null } as const;
const demoRuns = async (server: LabtraceServer) => (await server.runs.list(LAB_VIEW)).filter((r) => r.method.id === DEMO_METHOD_ID);

/** the testing machine's gateway: one chain of batches, sent through whichever node it is connected to now */
class Machine {
  private seq = 0;
  constructor(
    public gw: TestGateway,
    public at: TestServer,
  ) {}

  /** connects the gateway to `t`, continuing its chain (as a gateway does after a failover) */
  async moveTo(t: TestServer): Promise<void> {
    const next = await this.gw.reconnect(t);
    gateways.push(next);
    this.gw = next;
    this.at = t;
  }

  /** one reading of the machine: force, extension and the specimen counter */
  async reading(specimen: number, force: number, extension: number): Promise<void> {
    const ts = Date.now();
    const samples: Sample[] = [
      { seq: this.seq++, instrument: 'utm-1', channel: 'force', ts, value: force, unit: 'kN', quality: 'good' },
      { seq: this.seq++, instrument: 'utm-1', channel: 'extension', ts, value: extension, unit: 'mm', quality: 'good' },
      { seq: this.seq++, instrument: 'utm-1', channel: 'specimen', ts, value: specimen, unit: '', quality: 'good' },
    ];
    expect(await send(this.at, this.gw, this.gw.sign(samples))).toBe('acked');
  }
}

const logs = { a: [] as Line[], b: [] as Line[] };
/** whether the node's demo follows the stored samples (its job started, its feed reading) */
const following = (t: TestServer): boolean =>
  (t === a ? logs.a : logs.b).some((l) => l.msg === 'the demo lab follows the stored samples on this node');

let a: TestServer;
let b: TestServer;
let machine: Machine;
/** the node that holds the demo job, and the other one */
let holder: TestServer;
let other: TestServer;

test('two nodes with the demo on one store: its method recorded once, one demo run at a time, following specimens stored through either node', async () => {
  const url = await postgres.createDatabase('demo');
  a = await node(url, 'node-a', { demo: DEMO }, logs.a);
  b = await node(url, 'node-b', { demo: DEMO }, logs.b);
  await waitFor('one node holding the demo', () => holding('demo', [a, b]).length === 1, WAIT);
  holder = holding('demo', [a, b])[0]!;
  other = holder === a ? b : a;
  await waitFor('the demo following the stored samples', () => following(holder), WAIT);
  expect(following(other)).toBe(false);

  // the method recorded once, by the demo (both nodes run DemoLab's start only when they hold the job)
  const methods = await a.server.db.selectFrom('methods').select(['id', 'version']).where('id', '=', DEMO_METHOD_ID).execute();
  expect(methods).toEqual([{ id: DEMO_METHOD_ID, version: 1 }]);
  expect((await a.server.audit.list({ recordType: 'method', recordId: DEMO_METHOD_ID, limit: 10 })).map((e) => [e.actor, e.action])).toEqual([
    ['demo', 'create'],
  ]);

  const gw = await TestGateway.connect(other, 'gw-a');
  gateways.push(gw);
  await gw.announce([
    {
      id: 'utm-1',
      identity: { maker: 'ZwickRoell', model: 'Z050', serialNumber: 'ZR-1', kind: 'universal-testing-machine' },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'extension', unit: 'mm' },
        { name: 'specimen', unit: '' },
      ],
    },
  ]);
  await waitFor('the testing machine', async () => (await holder.server.registry.instrument('utm-1')) !== undefined, WAIT);
  machine = new Machine(gw, other);

  // a specimen mounted, stored through the node that does not run the demo: the demo's node starts a run
  await machine.reading(1, 0, 12);
  await machine.reading(2, 0, 0);
  await waitFor('the demo run', async () => (await demoRuns(a.server)).some((r) => r.state === 'running'), WAIT);
  const [first] = await demoRuns(a.server);
  expect(first).toMatchObject({ state: 'running', createdBy: 'demo', organization: ORGANIZATION });
  // the machine calibrated once, by the demo
  expect((await a.server.calibration.calibrations('utm-1')).length).toBe(1);

  // the test goes on through the demo's node; the next specimen is mounted through the other one again
  await machine.moveTo(holder);
  for (const [force, extension] of [
    [10, 0.4],
    [42.05, 9],
    [35, 12],
  ] as const)
    await machine.reading(2, force, extension);
  await machine.moveTo(other);
  await machine.reading(3, 0, 0);
  await waitFor(
    'the first run completed, the next running',
    async () => {
      const runs = await demoRuns(b.server);
      return runs.length === 2 && runs.some((r) => r.id === first!.id && r.state === 'completed') && runs.some((r) => r.state === 'running');
    },
    WAIT,
  );
  // its results from the readings stored through the demo's node
  expect((await a.server.results.resultsOf(first!.id))?.results.find((r) => r.name === 'Fm')?.value).toBe(42.05);
  expect((await demoRuns(a.server)).filter((r) => r.state === 'running')).toHaveLength(1);
  // one sample per run, one calibration
  expect((await a.server.db.selectFrom('lab_samples').select('id').where('created_by', '=', 'demo').execute()).length).toBe(2);
  expect((await a.server.calibration.calibrations('utm-1')).length).toBe(1);
}, 180_000);

test('the demo’s node stops: the other node takes the demo over, ends the run left running and follows the next specimen', async () => {
  // a run running again (the demo's node follows the next specimen)
  const earlier = new Set((await demoRuns(other.server)).map((r) => r.id));
  await machine.reading(4, 0, 0);
  const next = async () => (await demoRuns(other.server)).find((r) => r.state === 'running' && !earlier.has(r.id));
  await waitFor('the run of specimen 4', async () => (await next()) !== undefined, WAIT);
  const left = (await next())!;

  await stopNode(holder);
  await waitFor('the other node holding the demo', () => holding('demo', [other]).length === 1, WAIT);
  await waitFor('the demo following the stored samples there', () => following(other), WAIT);
  expect((await other.server.runs.get(LAB_VIEW, left.id))?.state).toBe('aborted');
  expect((await other.server.runs.get(LAB_VIEW, left.id))?.endReason).toBe('the demo lab was restarted while the run was running');

  // the machine goes on through the remaining node: the next specimen starts a run there
  await machine.reading(4, 5, 0.2);
  await machine.reading(5, 0, 0);
  await waitFor('a new demo run', async () => (await demoRuns(other.server)).some((r) => r.state === 'running' && r.id !== left.id), WAIT);
  expect((await demoRuns(other.server)).filter((r) => r.state === 'running')).toHaveLength(1);
  // still the one method
  expect(await other.server.db.selectFrom('methods').select('version').where('id', '=', DEMO_METHOD_ID).execute()).toEqual([{ version: 1 }]);
}, 180_000);

test('a node that lost the demo’s lease writes nothing: not the end of the run running, not a new run', async () => {
  const running = (await demoRuns(other.server)).filter((r) => r.state === 'running');
  expect(running).toHaveLength(1);
  // the last node with the demo stops; a node without it takes the machine's batches (nobody runs the demo now)
  const url = other.config.database.url!;
  await stopNode(other);
  const e = await node(url, 'node-e');
  await machine.moveTo(e);
  // the demo job as a node runs it whose lease was taken over since (the acquisition before the current one)
  const row = await e.server.db.selectFrom('cluster_leases').select(['holder', 'epoch']).where('name', '=', 'demo').executeTakeFirstOrThrow();
  const stale = { name: 'demo', holder: row.holder, epoch: Number(row.epoch) - 1 };
  const leases = new PostgresLeases<Tables>({ db: e.server.db, connection: {}, node: row.holder, pollMs: 200, sessionTimeoutMs: 10_000 });
  const lines: Line[] = [];
  const job = demoJob({
    db: e.server.db,
    lab: {
      records: e.server.labRecords,
      runs: e.server.runs,
      calibration: e.server.calibration,
      instrumentExists: async (id) => (await e.server.registry.instrument(id)) !== undefined,
    },
    logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) }),
    options: { technician: 'technician', signatory: 'signatory', organization: ORGANIZATION, pauseSpecimens: 0 },
  });
  const staleRun = (signal: AbortSignal) => job({ lease: stale, signal, fenced: (write) => leases.fenced(stale, write) });

  // its start would end the run left running: refused, the run goes on (were it not fenced: the demo would follow)
  const following = (): boolean => lines.some((l) => l.msg === 'the demo lab follows the stored samples on this node');
  const first = new AbortController();
  let settled = false;
  const refused = staleRun(first.signal).then(
    () => undefined,
    (err: unknown) => err,
  );
  void refused.finally(() => (settled = true));
  await waitFor('the stale demo refused, or following', () => settled || following(), WAIT);
  first.abort();
  const error = await refused;
  expect(error).toBeInstanceOf(LabtraceError);
  expect((error as LabtraceError).code).toBe('E_LEASE_LOST');
  expect((await e.server.runs.get(LAB_VIEW, running[0]!.id))?.state).toBe('running');

  // with no run running, the next specimen would start one: refused, nothing recorded
  await e.server.runs.abort(DEMO_ACTOR, running[0]!.id, 'test: the specimen was taken out');
  const runs = await demoRuns(e.server);
  const samples = (await e.server.db.selectFrom('lab_samples').select('id').execute()).length;
  const stop = new AbortController();
  const ended = staleRun(stop.signal);
  await waitFor('the stale demo following the stored samples', following, WAIT);
  await machine.reading(6, 0, 0);
  await machine.reading(7, 0, 0);
  // the step taken: refused, or (were the writes not fenced) a run started
  await waitFor('the demo’s step', () => lines.some((l) => l.msg === 'demo run step failed' || l.msg.startsWith('demo run started')), WAIT);
  stop.abort();
  await ended;
  expect(lines.filter((l) => l.msg === 'demo run step failed')).toHaveLength(1);
  expect(String(lines.find((l) => l.msg === 'demo run step failed')?.err)).toMatch(/^lease demo: epoch /);
  expect(await demoRuns(e.server)).toEqual(runs);
  expect((await e.server.db.selectFrom('lab_samples').select('id').execute()).length).toBe(samples);
}, 180_000);

test('two demos starting at once on one store record its method once, and both start', async () => {
  const url = await postgres.createDatabase('seeding');
  const c = await node(url, 'node-c');
  const d = await node(url, 'node-d');
  const options = { technician: 'technician', signatory: 'signatory', organization: ORGANIZATION, pauseSpecimens: 0 };
  const partsOf = (t: TestServer): DemoParts => ({
    records: t.server.labRecords,
    runs: t.server.runs,
    calibration: t.server.calibration,
    instrumentExists: async (id) => (await t.server.registry.instrument(id)) !== undefined,
  });
  const demos = [c, d].map((t) => new DemoLab(partsOf(t), pino({ level: 'silent' }), options));
  await Promise.all(demos.map((demo) => demo.start()));
  await Promise.all(demos.map((demo) => demo.stop()));
  expect(await c.server.db.selectFrom('methods').select('version').where('id', '=', DEMO_METHOD_ID).execute()).toEqual([{ version: 1 }]);
  expect((await c.server.audit.list({ recordType: 'method', recordId: DEMO_METHOD_ID, limit: 10 })).length).toBe(1);
  await stopNode(c);
  await stopNode(d);
}, 120_000);

test('the calibration reminders are logged by the node that holds their job only, and by the next holder when it stops', async () => {
  const url = await postgres.createDatabase('reminders');
  const first: Line[] = [];
  const c = await node(url, 'node-c', {}, first);
  // an instrument whose calibration expired
  const gw = await TestGateway.connect(c, 'gw-b');
  gateways.push(gw);
  await gw.birth('cal-1');
  await waitFor('the instrument', async () => (await c.server.registry.instrument('cal-1')) !== undefined, WAIT);
  const day = 86_400_000;
  await c.server.calibration.record({ username: 'test-setup', role: 'system' }, 'cal-1', {
    calibratedAt: Date.now() - 400 * day,
    laboratory: 'Calibration Services',
    certificate: 'CAL-1',
    results: [{ point: '10 kN', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.3, unit: '%', k: 2 },
    nextDueAt: Date.now() - 35 * day,
  });
  await waitFor('node C holding the reminders', () => holding('calibration-reminders', [c]).length === 1, WAIT);

  // a second node comes while the instrument is expired: it does not hold the reminders, so it logs none
  const second: Line[] = [];
  const d = await node(url, 'node-d', {}, second);
  const reminded = (lines: Line[]) => lines.filter((l) => l.instrument === 'cal-1' && l.msg.startsWith('calibration expired'));
  // the first node stops: the second takes the reminders over, and logs the instrument's once
  await stopNode(c);
  await waitFor('node D holding the reminders', () => holding('calibration-reminders', [d]).length === 1, WAIT);
  await waitFor('node D’s reminder', () => reminded(second).length > 0, WAIT);
  expect(reminded(second)).toHaveLength(1);
  const took = second.findIndex((l) => l.msg === 'job started on this node' && l.job === 'calibration-reminders');
  expect(took).toBeGreaterThanOrEqual(0);
  expect(second.indexOf(reminded(second)[0]!)).toBeGreaterThan(took);
  await stopNode(d);
}, 180_000);
