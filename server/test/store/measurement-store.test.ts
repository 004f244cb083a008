// The per-sample index: every record of a batch arrives in it with its value, kind, quality and reason
// (rows go in 64 per statement, the rest one by one, several batches and gateways at once), a stored
// batch enters it exactly once, also after a restart, and reads see every stored batch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { formatSignerKey, parseSignerKey, sealBatch, type Sample } from '@labtrace/protocols';
import { LabDatabase } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { serverMigrations } from '../../src/migrations.js';

let dir: string;
let database: LabDatabase;
let store: MeasurementStore;
type IndexRows = (groups: { gateway: string; samples: Sample[] }[]) => number;
const insertRows = (): IndexRows => (store as unknown as { stmts: { insertMany: IndexRows } }).stmts.insertMany;
const insertMany =
  () =>
  (gateway: string, samples: Sample[]): number =>
    insertRows()([{ gateway, samples }]);

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-store-'));
  database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
  store = new MeasurementStore(database);
  store.open();
});

afterEach(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

const key = parseSignerKey(formatSignerKey('gw-1', new Uint8Array(32).fill(3)));
function sealed(batch: Sample[]): { signed: ReturnType<typeof sealBatch>['signed']; wire: Uint8Array } {
  const { signed, wire } = sealBatch(key, 'gw-1', 0, batch, null);
  // the records' bytes as ingest stores them: what follows the header, the signature and the count
  const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
  return { signed, wire: wire.subarray(8 + headerLength + 64 + 4) };
}

function samples(first: number, count: number): Sample[] {
  return Array.from({ length: count }, (_, i): Sample => {
    const seq = first + i;
    const kinds: Sample['value'][] = [seq / 7, null, true, false, `state ${seq}`];
    return {
      seq,
      instrument: `utm-${seq % 3}`,
      channel: seq % 2 === 0 ? 'force' : 'extension',
      ts: 1_800_000_000_000 + seq,
      value: kinds[seq % 5]!,
      unit: seq % 2 === 0 ? 'kN' : 'mm',
      quality: seq % 11 === 0 ? 'uncertain' : 'good',
      ...(seq % 13 === 0 && { reason: `reason ${seq}` }),
    };
  });
}

test('every record of 64-row chunks and of the remainder is indexed as it was', () => {
  const batch = samples(0, 64 * 3 + 17);
  expect(insertMany()('gw-1', batch)).toBe(batch.length);
  expect(store.count()).toBe(batch.length);
  const rows = database.sqlite
    .prepare(
      'SELECT s.seq, st.instrument, st.channel, st.unit, s.ts, s.num, s.text, s.kind, s.quality, s.reason FROM samples s JOIN streams st ON st.id = s.stream ORDER BY s.seq',
    )
    .all() as {
    seq: number;
    instrument: string;
    channel: string;
    unit: string;
    ts: number;
    num: number | null;
    text: string | null;
    kind: number;
    quality: number;
    reason: string | null;
  }[];
  expect(rows).toHaveLength(batch.length);
  rows.forEach((row, i) => {
    const s = batch[i]!;
    expect(row).toMatchObject({ seq: s.seq, instrument: s.instrument, channel: s.channel, unit: s.unit, ts: s.ts, reason: s.reason ?? null });
    expect(row.quality).toBe(s.quality === 'uncertain' ? 1 : 0);
    if (typeof s.value === 'number') expect(row).toMatchObject({ kind: 3, num: s.value, text: null });
    else if (typeof s.value === 'string') expect(row).toMatchObject({ kind: 4, num: null, text: s.value });
    else expect(row).toMatchObject({ kind: s.value === null ? 0 : s.value ? 2 : 1, num: null, text: null });
  });
  expect(store.history('utm-0', 'force', 0, 2e12, 1000).map((s) => s.seq)).toEqual(
    batch.filter((s) => s.instrument === 'utm-0' && s.channel === 'force').map((s) => s.seq),
  );
});

test('a stored batch enters the index once, and a batch meeting its sequence numbers is refused before it is stored', () => {
  const batch = samples(0, 150);
  const { signed, wire } = sealed(batch);
  database.sqlite.transaction(() => store.store('gw-1', batch, signed, 'h0', Date.now(), wire))();
  expect(store.indexPending()).toBe(0);
  expect(store.indexPending()).toBe(0);
  expect(store.count()).toBe(150);
  // a restart finds nothing left to index
  const reopened = new MeasurementStore(database);
  reopened.open();
  expect(reopened.indexBacklog).toBe(0);
  expect(reopened.count()).toBe(150);
  const overlapping = samples(140, 20);
  const other = sealBatch(key, 'gw-1', 1, overlapping, null);
  expect(() => database.sqlite.transaction(() => store.store('gw-1', overlapping, other.signed, 'h1'))()).toThrow(
    'sequence numbers 140..149 of gw-1 are already stored in batch 0',
  );
  expect(store.count()).toBe(150);
});

test('batches stored before a stop and not indexed are indexed after the next start', () => {
  const batch = samples(0, 90);
  const { signed, wire } = sealed(batch);
  database.sqlite.transaction(() => store.store('gw-1', batch, signed, 'h0', Date.now(), wire))();
  const reopened = new MeasurementStore(database);
  reopened.open();
  expect(reopened.indexBacklog).toBe(1);
  expect(reopened.indexBacklogSamples).toBe(90);
  expect(reopened.indexPending()).toBe(0);
  expect(reopened.history('utm-1', 'extension', 0, 2e12, 1000).map((s) => s.seq)).toEqual(
    batch.filter((s) => s.instrument === 'utm-1' && s.channel === 'extension').map((s) => s.seq),
  );
});

test('records of several batches and gateways go in together, each under its own gateway', () => {
  const a = samples(0, 100);
  const b = samples(100, 37);
  const c = samples(0, 70);
  expect(
    insertRows()([
      { gateway: 'gw-1', samples: a },
      { gateway: 'gw-2', samples: c },
      { gateway: 'gw-1', samples: b },
    ]),
  ).toBe(207);
  const rows = database.sqlite
    .prepare(
      'SELECT g.name AS gateway, s.seq, st.gateway AS streamGateway, st.instrument, s.ts FROM samples s JOIN gateway_ids g ON g.id = s.gateway JOIN streams st ON st.id = s.stream ORDER BY g.name, s.seq',
    )
    .all() as { gateway: string; seq: number; streamGateway: string; instrument: string; ts: number }[];
  const expected = [...[...a, ...b].map((s) => ({ gateway: 'gw-1', s })), ...c.map((s) => ({ gateway: 'gw-2', s }))];
  expect(rows).toEqual(expected.map(({ gateway, s }) => ({ gateway, seq: s.seq, streamGateway: gateway, instrument: s.instrument, ts: s.ts })));
});

test('reads see stored batches at once: what waits for the index goes in before a read answers', () => {
  const batch = samples(0, 300);
  const { signed, wire } = sealed(batch);
  database.sqlite.transaction(() => store.store('gw-1', batch, signed, 'h0', Date.now(), wire))();
  expect(store.indexBacklog).toBe(1);
  expect(store.indexBacklogSamples).toBe(300);
  expect(store.history('utm-0', 'force', 0, 2e12, 1000)).toHaveLength(batch.filter((s) => s.instrument === 'utm-0' && s.channel === 'force').length);
  expect(store.indexBacklog).toBe(0);
  expect(store.indexBacklogSamples).toBe(0);
  expect(store.count()).toBe(300);
});
