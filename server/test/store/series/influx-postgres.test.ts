// The InfluxDB copy on PostgreSQL, with a real influxd (1.6) and a real PostgreSQL 15: two server nodes share the
// store and both store batches; one node at a time copies them (the job `influx-forwarder`), in log order, with its
// cursor in the store. When that node stops mid-backlog the other takes the lease over and goes on from the stored
// cursor: every point reaches InfluxDB, none is missing. A node that lost the lease without knowing it (stalled)
// cannot move the cursor: the fence refuses, and the next holder writes again what it had written (the same points).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { Influxd } from '@labtrace/protocols/test/influxd';
import { PostgresLeases, type Lease } from '../../../src/cluster/leases.js';
import type { JobContext } from '../../../src/cluster/jobs.js';
import type { Tables } from '../../../src/store/database.js';
import type { PgMeasurementStore } from '../../../src/store/pg-measurement-store.js';
import { InfluxSeries } from '../../../src/store/series/influx-series.js';
import { startPostgres, type TestPostgres } from '../../helpers/postgres.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../../helpers/server.js';

const silent = pino({ level: 'silent' });
/** samples per batch; the forwarder writes as many lines per request, so that each write is one batch */
const PER_BATCH = 4;

let postgres: TestPostgres;
let influxd: Influxd;
let url: string;
const nodes: TestServer[] = [];
const gateways: TestGateway[] = [];
/** the lab's one log key, the same file for every node */
let keyFile: string;

beforeAll(async () => {
  [postgres, influxd] = await Promise.all([startPostgres(), Influxd.create()]);
  await influxd.start();
  await influxd.createDatabase('lab');
  url = await postgres.createDatabase('lab');
  keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'labtrace-keys-')), 'log.key');
}, 120_000);

afterAll(async () => {
  for (const g of gateways) await g.end();
  for (const n of nodes) await n.stop();
  await influxd?.dispose();
  await postgres?.stop();
}, 60_000);

async function node(name: string): Promise<TestServer> {
  const t = await startServer({
    database: { url },
    log: { minCheckpointIntervalMs: 100, keyFile },
    cluster: { node: name, leases: { pollMs: 100, sessionTimeoutMs: 3000 } },
    measurements: { store: 'influxdb', influxdb: { url: influxd.url, database: 'lab', batchLines: PER_BATCH } },
  });
  nodes.push(t);
  return t;
}

const seriesOf = (t: TestServer): InfluxSeries => t.server.series as InfluxSeries;

async function holder(): Promise<TestServer> {
  let found: TestServer | undefined;
  await waitFor(
    'one node running the InfluxDB forwarder',
    () => {
      const running = nodes.filter((n) => n.server.jobsRunning().includes('influx-forwarder'));
      found = running.length === 1 ? running[0] : undefined;
      return found !== undefined;
    },
    30_000,
  );
  return found as TestServer;
}

/** the log indexes of the stored batches, in order */
async function logIndexes(t: TestServer): Promise<number[]> {
  const rows = await t.server.db.selectFrom('batch_headers').select('log_index').orderBy('log_index').execute();
  return rows.map((r) => Number(r.log_index));
}

async function storedCursor(t: TestServer, database = 'lab'): Promise<number | undefined> {
  const rows = await t.server.db.selectFrom('influx_log_cursor').select(['target', 'last_log_index']).execute();
  const row = rows.find((r) => r.target.includes(`db=${database} `));
  return row === undefined ? undefined : Number(row.last_log_index);
}

/** the sequence numbers of a gateway's points in an InfluxDB database, in order */
async function seqsIn(database: string, gateway: string): Promise<number[]> {
  const rows = await influxd.query(database, `SELECT seq FROM "measurement" WHERE gateway = '${gateway}'`);
  return rows.map((r) => Number(r['seq'])).sort((a, b) => a - b);
}

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

let sent = { 'gw-a': 0, 'gw-b': 0 };

/** `batches` batches from each gateway, gw-a through node A and gw-b through node B at once */
async function storeThroughBoth(batches: number): Promise<void> {
  const [gwA, gwB] = gateways as [TestGateway, TestGateway];
  const [a, b] = nodes as [TestServer, TestServer];
  await Promise.all(
    (
      [
        [a, gwA, 'pg-1'],
        [b, gwB, 'pg-2'],
      ] as const
    ).map(async ([t, gw, instrument]) => {
      for (let i = 0; i < batches; i++) {
        const id = gw.id as 'gw-a' | 'gw-b';
        expect(await send(t, gw, gw.seal(records(instrument, sent[id], PER_BATCH, sent[id])))).toBe('acked');
        sent[id] += PER_BATCH;
      }
    }),
  );
}

test('batches stored through two nodes all reach InfluxDB, copied by the one node holding the forwarder; any node reads from InfluxDB', async () => {
  const a = await node('node-a');
  const b = await node('node-b');
  for (const [t, id, instrument] of [
    [a, 'gw-a', 'pg-1'],
    [b, 'gw-b', 'pg-2'],
  ] as const) {
    const gw = await TestGateway.connect(t, id);
    gateways.push(gw);
    await gw.birth(instrument);
  }
  sent = { 'gw-a': 0, 'gw-b': 0 };
  await storeThroughBoth(10);
  const forwarding = await holder();
  const last = (await logIndexes(a)).at(-1) as number;
  await waitFor('the forwarder caught up', async () => (await storedCursor(a)) === last, 30_000);
  expect(await seqsIn('lab', 'gw-a')).toEqual(upTo(sent['gw-a']));
  expect(await seqsIn('lab', 'gw-b')).toEqual(upTo(sent['gw-b']));
  // the other node copies nothing, and its health report reads the backlog from the store
  const other = forwarding === a ? b : a;
  expect(other.server.jobsRunning()).not.toContain('influx-forwarder');
  expect(seriesOf(other).writtenUpTo).toBe(-1);
  await waitFor('the other node reports no backlog', async () => {
    const health = (await (await other.fetch('/api/health')).json()) as { measurements: { kind: string; backlog: { batches: number } } };
    return health.measurements.kind === 'influxdb' && health.measurements.backlog.batches === 0;
  });
  // the dashboard's reads on either node come from InfluxDB
  const history = async (t: TestServer, instrument: string): Promise<Response> =>
    t.fetch(`/api/instruments/${instrument}/history?channel=c&from=1800000000000&to=1800000100000&limit=1000`, {}, 'technician');
  for (const t of [a, b]) {
    const res = await history(t, 'pg-2');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { seq: number }[]).map((s) => s.seq)).toEqual(upTo(sent['gw-b']));
  }
  await influxd.kill();
  const down = await history(other, 'pg-1');
  expect(down.status).toBe(503);
  expect(((await down.json()) as { code: string }).code).toBe('E_INFLUX_UNAVAILABLE');
  await influxd.start();
}, 120_000);

test('the forwarding node stops mid-backlog: the other takes the lease and goes on from the stored cursor; every point arrives', async () => {
  const first = await holder();
  const next = nodes.find((n) => n !== first) as TestServer;
  // a backlog: stored through both nodes while InfluxDB is down
  const before = (await logIndexes(first)).at(-1) as number;
  await influxd.kill();
  await storeThroughBoth(60);
  const indexes = (await logIndexes(first)).filter((i) => i > before);
  const last = indexes.at(-1) as number;
  const written: number[] = [];
  seriesOf(next).on('written', (position) => written.push(position));
  // the forwarding node stops at its first write of the backlog (each write is one batch)
  const stopped = new Promise<void>((resolve, reject) =>
    seriesOf(first).once('written', () => {
      first.stop().then(resolve, reject);
    }),
  );
  await influxd.start();
  await stopped;
  nodes.splice(nodes.indexOf(first), 1);
  // where it left the cursor: its last write's batch, moved before it gave the lease up
  const handedOver = seriesOf(first).writtenUpTo;
  expect(handedOver).toBeGreaterThan(before);
  expect(handedOver).toBeLessThan(last);
  // the other node holds the job now and writes, batch by batch, from the one after the stored cursor
  await waitFor('the other node caught up', async () => (await storedCursor(next)) === last, 60_000);
  expect(next.server.jobsRunning()).toContain('influx-forwarder');
  expect(written).toEqual(indexes.filter((i) => i > handedOver));
  // nothing missing (and no point twice: InfluxDB keeps one point per series and time)
  expect(await seqsIn('lab', 'gw-a')).toEqual(upTo(sent['gw-a']));
  expect(await seqsIn('lab', 'gw-b')).toEqual(upTo(sent['gw-b']));
}, 120_000);

test('a node that lost the forwarder lease without knowing it cannot move the cursor; the next holder writes its batch again', async () => {
  const t = nodes[0] as TestServer;
  await influxd.createDatabase('fenced');
  const { port } = new URL(url);
  const connection = { host: '127.0.0.1', port: Number(port), user: 'postgres', database: 'lab' };
  const leases = (name: string): PostgresLeases<Tables> =>
    new PostgresLeases<Tables>({ db: t.server.db, connection, node: name, pollMs: 100, sessionTimeoutMs: 3000 });
  const copy = (): InfluxSeries =>
    new InfluxSeries({
      postgres: { db: t.server.db, store: t.server.measurements as PgMeasurementStore },
      url: influxd.url,
      target: { api: 'v1', database: 'fenced' },
      read: { database: 'fenced', auth: { kind: 'none' } },
      batchLines: PER_BATCH,
      pollMs: 50,
      logger: silent,
    });
  const acquired = (l: PostgresLeases<Tables>): Promise<Lease> => new Promise((resolve) => l.once('acquired', resolve));
  // as the JobRunner runs a job, but with a signal nobody aborts: a node stalled while another took its lease over
  const contextOf = (l: PostgresLeases<Tables>, lease: Lease, signal: AbortSignal): JobContext<Tables> => ({
    lease,
    signal,
    fenced: (write) => l.fenced(lease, write),
  });
  const NAME = 'influx-forwarder-fenced';

  const leasesA = leases('stalled');
  leasesA.want(NAME);
  const gotA = acquired(leasesA);
  await leasesA.start();
  const leaseA = await gotA;
  const stalled = copy();
  const stalledRun = (stalled.forwarderJob as NonNullable<InfluxSeries['forwarderJob']>)(contextOf(leasesA, leaseA, new AbortController().signal));
  const caughtUp = (await logIndexes(t)).at(-1) as number;
  await waitFor('the first holder caught up', async () => (await storedCursor(t, 'fenced')) === caughtUp, 30_000);

  // another node takes the lease over (its session ended), with a newer epoch
  await leasesA.stop();
  const leasesB = leases('taking-over');
  leasesB.want(NAME);
  const gotB = acquired(leasesB);
  await leasesB.start();
  const leaseB = await gotB;
  expect(leaseB.epoch).toBeGreaterThan(leaseA.epoch);

  // a new batch: the stalled node writes it to InfluxDB, but its cursor move is refused, and it stops
  // through the node left, by the gateway connected to it
  const [gw, instrument] = t.server.config.cluster.node === 'node-a' ? [gateways[0] as TestGateway, 'pg-1'] : [gateways[1] as TestGateway, 'pg-2'];
  const id = gw.id as 'gw-a' | 'gw-b';
  expect(await send(t, gw, gw.seal(records(instrument, sent[id], PER_BATCH, sent[id])))).toBe('acked');
  sent[id] += PER_BATCH;
  const newest = (await logIndexes(t)).at(-1) as number;
  stalled.notify();
  await stalledRun;
  expect(await storedCursor(t, 'fenced')).toBe(caughtUp);
  expect(stalled.writtenUpTo).toBe(caughtUp);

  // the holder goes on from the stored cursor: the stalled node's batch again, the same points, once in InfluxDB
  const holding = copy();
  const written: number[] = [];
  holding.on('written', (position) => written.push(position));
  const stop = new AbortController();
  const holdingRun = (holding.forwarderJob as NonNullable<InfluxSeries['forwarderJob']>)(contextOf(leasesB, leaseB, stop.signal));
  await waitFor('the holder caught up', async () => (await storedCursor(t, 'fenced')) === newest, 30_000);
  stop.abort();
  await holdingRun;
  expect(written).toEqual([newest]);
  expect(await seqsIn('fenced', 'gw-a')).toEqual(upTo(sent['gw-a']));
  expect(await seqsIn('fenced', 'gw-b')).toEqual(upTo(sent['gw-b']));
  await leasesB.stop();
}, 120_000);
