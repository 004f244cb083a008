// The per-sample index: every record of a batch arrives in it with its value, kind, quality and reason
// (rows go in 64 per statement, the rest one by one), indexing the same records again changes nothing,
// and a different record under a stored sequence number is refused, whichever way it was inserted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import type { Sample } from '@labtrace/protocols';
import { LabDatabase } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';

let dir: string;
let database: LabDatabase;
let store: MeasurementStore;
type IndexRows = (gateway: string, samples: Sample[]) => number;
const insertMany = (): IndexRows => (store as unknown as { stmts: { insertMany: IndexRows } }).stmts.insertMany;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-store-'));
  database = new LabDatabase(dir);
  await database.migrate();
  store = new MeasurementStore(database);
  store.open();
});

afterEach(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

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

test('indexing the same records again inserts nothing and throws nothing', () => {
  const batch = samples(100, 64 * 2 + 5);
  insertMany()('gw-1', batch);
  expect(insertMany()('gw-1', batch)).toBe(0);
  // half old, half new, across a chunk
  expect(insertMany()('gw-1', samples(100 + 64, 128))).toBe(100 + 64 + 128 - (100 + 64 * 2 + 5)); // seq 233..291 are new
  expect(store.count()).toBe(64 + 128); // seq 100..291
});

test.each([
  ['inside a 64-row chunk', 10],
  ['in the remainder', 64 + 3],
])('a different record under a stored sequence number is refused (%s)', (_where, at) => {
  const batch = samples(0, 64 + 5);
  insertMany()('gw-1', batch);
  const reused = batch.map((s, i) => (i === at ? { ...s, ts: s.ts + 1 } : s));
  expect(() => insertMany()('gw-1', reused)).toThrow(`sequence number ${at} of gw-1 is already stored for another record`);
  // the same numbers under another gateway are another record
  expect(insertMany()('gw-2', reused)).toBe(reused.length);
});
