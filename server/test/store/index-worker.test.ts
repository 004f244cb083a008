// The per-sample index in its worker thread, on a file of its own: only committed batches reach it, each once (also
// when the thread is killed in the middle of a slice and started again), reads see every stored batch, the index
// built again from scratch equals the one built as batches came, and ingest is held back while the worker is too far
// behind. Last, a server with `store.indexWorker` acknowledges and serves what its gateway sends.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { formatSignerKey, parseSignerKey, sealBatch, type Sample } from '@labtrace/protocols';
import { LabDatabase } from '../../src/store/database.js';
import { indexFileOf, type IndexWorkerOptions } from '../../src/store/index-worker.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { serverMigrations } from '../../src/migrations.js';
import { records, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let dir: string;
let database: LabDatabase;
const opened: MeasurementStore[] = [];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-index-'));
  database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A store whose index is in its worker (opened; closed after the test). */
function workerStore(options: IndexWorkerOptions = {}): MeasurementStore {
  const store = new MeasurementStore(database, { indexWorker: options });
  store.open();
  opened.push(store);
  return store;
}

const key = parseSignerKey(formatSignerKey('gw-1', new Uint8Array(32).fill(3)));

function samples(first: number, count: number, tsBase = 1_800_000_000_000): Sample[] {
  return Array.from({ length: count }, (_, i): Sample => {
    const seq = first + i;
    const kinds: Sample['value'][] = [seq / 7, null, true, false, `state ${seq}`];
    return {
      seq,
      instrument: `utm-${seq % 3}`,
      channel: seq % 2 === 0 ? 'force' : 'extension',
      ts: tsBase + seq,
      value: kinds[seq % 5]!,
      unit: seq % 2 === 0 ? 'kN' : 'mm',
      quality: seq % 11 === 0 ? 'uncertain' : 'good',
      ...(seq % 13 === 0 && { reason: `reason ${seq}` }),
    };
  });
}

/** Stores batch `batch` of gw-1 (records first..first+count-1) in a transaction of its own, committed. */
function storeBatch(store: MeasurementStore, batch: number, first: number, count: number, tsBase?: number): Sample[] {
  const batchSamples = samples(first, count, tsBase);
  const { signed, wire } = sealBatch(key, 'gw-1', batch, batchSamples, null);
  // the records' bytes as ingest stores them: what follows the header, the signature and the count
  const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
  const bytes = wire.subarray(8 + headerLength + 64 + 4);
  database.sqlite.transaction(() => store.store('gw-1', batchSamples, signed, `h${batch}`, Date.now(), bytes))();
  return batchSamples;
}

/** Every row of an index file, by the names it stands for (ids differ between two builds of one index). */
function dump(file: string): unknown[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM measurements ORDER BY gateway, seq').all();
  } finally {
    db.close();
  }
}

/** (gateway, seq) stored more than once in an index file */
function doubled(file: string): unknown[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT gateway, seq, COUNT(*) AS n FROM samples GROUP BY gateway, seq HAVING n > 1').all();
  } finally {
    db.close();
  }
}

const lastRowid = (): number => database.sqlite.prepare('SELECT MAX(rowid) FROM batch_headers').pluck().get() as number;

test('reads see every stored batch, told to the worker or not, from the index file beside the store', async () => {
  const store = workerStore();
  // the worker started, its index file open for reads
  expect(await store.reads.count()).toBe(0);
  const a = storeBatch(store, 0, 0, 150);
  store.indexPending();
  const b = storeBatch(store, 1, 150, 90);
  // not told (no indexPending): a read finds it committed in the store and waits for it all the same
  expect(await store.reads.count()).toBe(240);
  const force = [...a, ...b].filter((s) => s.instrument === 'utm-0' && s.channel === 'force');
  expect((await store.reads.history('utm-0', 'force', 0, 2e12, 1000)).map((s) => [s.seq, s.value, s.quality])).toEqual(
    force.map((s) => [s.seq, s.value, s.quality]),
  );
  const latest = await store.reads.latest('utm-1');
  // utm-1: the records whose seq is 1 mod 3; the newest of each channel (force: even, extension: odd)
  expect(latest.map((s) => s.seq).sort((x, y) => x - y)).toEqual([235, 238]);
  // the store's own per-sample table stays empty: the index is in its file
  expect(database.sqlite.prepare('SELECT COUNT(*) FROM samples').pluck().get()).toBe(0);
  expect(store.worker?.file).toBe(indexFileOf(database.file));
  expect(path.basename(indexFileOf(database.file))).toBe('labtrace.index.sqlite');
  expect(dump(indexFileOf(database.file))).toHaveLength(240);
});

test('a batch whose transaction rolled back never reaches the index; the batch stored after it does, once', async () => {
  const store = workerStore();
  const mark = store.backlogMark();
  const lost = samples(0, 100, 1_700_000_000_000);
  const { signed } = sealBatch(key, 'gw-1', 0, lost, null);
  expect(() =>
    database.sqlite.transaction(() => {
      store.store('gw-1', lost, signed, 'lost', Date.now(), undefined);
      // the worker is woken while the batch is written, not committed
      store.worker?.committed(lastRowid(), lost.length);
      throw new Error('the disk is full');
    })(),
  ).toThrow('the disk is full');
  store.forgetFrom(mark);
  // the same batch number and sequence numbers again, with other times (takes the rowid the lost one had)
  const kept = storeBatch(store, 0, 0, 60);
  store.indexPending();
  expect(await store.reads.count()).toBe(60);
  const rows = dump(indexFileOf(database.file)) as { seq: number; ts: number }[];
  expect(rows.map((r) => [r.seq, r.ts])).toEqual(kept.map((s) => [s.seq, s.ts]));
  expect(doubled(indexFileOf(database.file))).toEqual([]);
});

test('a worker thread killed in the middle of the index is started again and goes on from its cursor: no row missing, none twice', async () => {
  // a backlog of 240,000 records in 120 batches, stored before the worker starts; indexed a batch at a time
  const plain = new MeasurementStore(database);
  plain.open();
  let total = 0;
  for (let batch = 0; batch < 120; batch++) total += storeBatch(plain, batch, batch * 2000, 2000).length;
  const store = workerStore({ sliceSamples: 2000 });
  const worker = store.worker!;
  const thread = (worker as unknown as { worker: Worker }).worker;
  // killed as soon as it says it has committed its 20th batch (it is writing the next ones meanwhile)
  const killedAfter = await new Promise<number>((resolve) => {
    const onMessage = (m: { type: string; position?: number }): void => {
      if (m.type !== 'indexed' || (m.position ?? 0) < 20) return;
      thread.off('message', onMessage);
      resolve(m.position ?? 0);
    };
    thread.on('message', onMessage);
  });
  await thread.terminate();
  expect(killedAfter).toBeLessThan(lastRowid());
  expect(await store.reads.count()).toBe(total);
  expect(worker.restarts).toBe(1);
  expect(worker.indexedUpTo).toBe(lastRowid());
  expect(doubled(indexFileOf(database.file))).toEqual([]);
  const seqs = (dump(indexFileOf(database.file)) as { seq: number }[]).map((r) => r.seq);
  expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i));
});

test('the index built again from scratch equals the one built as batches came', async () => {
  const store = workerStore({ sliceSamples: 500 });
  for (let batch = 0; batch < 12; batch++) {
    storeBatch(store, batch, batch * 300, 300);
    if (batch % 3 === 0) store.indexPending();
    if (batch % 4 === 1) await store.reads.count();
  }
  expect(await store.reads.count()).toBe(3600);
  const incremental = dump(indexFileOf(database.file));
  // another index file for the same store: built from the stored batches alone
  const other = path.join(dir, 'rebuilt.index.sqlite');
  const rebuilt = workerStore({ file: other });
  expect(await rebuilt.reads.count()).toBe(3600);
  expect(dump(other)).toEqual(incremental);
  // the index file lost: built again at the next start
  await store.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(indexFileOf(database.file) + suffix, { force: true });
  expect(existsSync(indexFileOf(database.file))).toBe(false);
  const again = workerStore();
  expect(await again.reads.count()).toBe(3600);
  expect(dump(indexFileOf(database.file))).toEqual(incremental);
});

test('ingest is held back while the worker is more than its bound behind, and let go once it is within half of it', async () => {
  const store = workerStore({ maxBacklogSamples: 1000 });
  await store.reads.count();
  storeBatch(store, 0, 0, 800);
  store.indexPending();
  expect(store.hasIndexRoom()).toBe(true);
  storeBatch(store, 1, 800, 800);
  store.indexPending();
  // 1,600 records told to the worker and not yet indexed (it answers on a later turn)
  expect(store.hasIndexRoom()).toBe(false);
  expect(store.worker?.backlogSamples).toBe(1600);
  await store.whenIndexRoom();
  expect(store.worker!.backlogSamples).toBeLessThanOrEqual(500);
  expect(store.hasIndexRoom()).toBe(true);
});

describe('a server with the index worker', () => {
  let t: TestServer;
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.end();
    await t?.stop();
  });

  test('acknowledges the batches its gateway sends and serves every acknowledged one', async () => {
    t = await startServer({ store: { indexWorker: true } });
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.birth('iw-1');
    for (let b = 0; b < 5; b++) expect(await send(t, gw, gw.sign(records('iw-1', b * 40, 40, b)))).toBe('acked');
    const history = await t.server.series.history('iw-1', 'c', 0, 2e12, 1000);
    expect(history.map((s) => s.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect((await t.server.series.latest('iw-1')).map((s) => [s.seq, s.value])).toEqual([[199, 4]]);
    expect(existsSync(indexFileOf(t.server.database.file))).toBe(true);
    expect(t.server.database.sqlite.prepare('SELECT COUNT(*) FROM samples').pluck().get()).toBe(0);
  });
});
