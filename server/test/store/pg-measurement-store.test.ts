// The measurement store on a real PostgreSQL 15: the per-sample index partitioned by month (migration 0042 keeps the
// rows it finds), batches stored whole and once (a duplicate is acknowledged, an overlap refused, a rolled-back
// transaction leaves nothing), two nodes storing the same batches at once store each once, and the reads answer
// what the SQLite store answers for the same batches.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { formatSignerKey, headerHash, parseSignerKey, sealBatch, toBase64, type Sample, type SignedBatch } from '@labtrace/protocols';
import { LabDatabase, migrateStore } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { PgMeasurementStore, type BatchToStore } from '../../src/store/pg-measurement-store.js';
import { monthOf, monthsBetween } from '../../src/store/sample-partitions.js';
import { serverMigrations } from '../../src/migrations.js';
import { StoreFixture } from '../helpers/test-store.js';

const fixture = new StoreFixture('ms');

beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

/** a fresh database on the cluster, migrated (to `to`, else the latest); `nodes` pools on it, as separate nodes would have */
async function database(to?: string, nodes = 1): Promise<Kysely<unknown>[]> {
  return (await fixture.stores('postgres', nodes, to)) as Kysely<unknown>[];
}

const MONTH0 = Date.UTC(2026, 10, 30, 23, 59, 59, 990); // the last 10 ms of November 2026, UTC

function samples(first: number, count: number, at = MONTH0): Sample[] {
  return Array.from({ length: count }, (_, i): Sample => {
    const seq = first + i;
    const kinds: Sample['value'][] = [seq / 7, null, true, false, `état ${seq}`];
    return {
      seq,
      instrument: `utm-${seq % 3}`,
      channel: seq % 2 === 0 ? 'force' : 'extension',
      ts: at + seq,
      value: kinds[seq % 5]!,
      unit: seq % 2 === 0 ? 'kN' : 'mm',
      quality: seq % 11 === 0 ? 'uncertain' : seq % 17 === 0 ? 'bad' : 'good',
      ...(seq % 13 === 0 && { reason: `reason ${seq}` }),
    };
  });
}

const keyOf = (gateway: string) => parseSignerKey(formatSignerKey(gateway, new Uint8Array(32).fill(gateway.length + 3)));

function batch(gateway: string, number: number, s: Sample[], now = Date.now()): BatchToStore & { wireRecords: Uint8Array } {
  const { signed, wire } = sealBatch(keyOf(gateway), gateway, number, s, null);
  const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
  const records = wire.subarray(8 + headerLength + 64 + 4);
  return { gateway, samples: s, signed, headerHash: toBase64(headerHash(signed.header)), records, wireRecords: records, now };
}

async function store(db: Kysely<unknown>, ms: PgMeasurementStore, b: BatchToStore): ReturnType<PgMeasurementStore['storeBatch']> {
  await ms.prepare([b]);
  return db.transaction().execute(async (trx) => {
    await ms.lockGateways(trx, [b.gateway]);
    return ms.storeBatch(trx, b);
  });
}

const count = async (db: Kysely<unknown>, table: string): Promise<number> =>
  Number((await sql<{ n: string }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(db)).rows[0]?.n);

describe('the per-sample index partitioned by month', () => {
  test('the months of a range; times before 2000 and from 2200 have no month of their own', () => {
    expect(monthOf(Date.UTC(2026, 11, 6))).toEqual({ name: 'samples_m202612', from: Date.UTC(2026, 11, 1), to: Date.UTC(2027, 0, 1) });
    expect(monthOf(Date.UTC(1999, 11, 31, 23, 59, 59, 999))).toBeUndefined();
    expect(monthOf(Date.UTC(2200, 0, 1))).toBeUndefined();
    expect(monthsBetween(Date.UTC(2026, 10, 15), Date.UTC(2027, 1, 1)).map((m) => m.name)).toEqual([
      'samples_m202611',
      'samples_m202612',
      'samples_m202701',
      'samples_m202702',
    ]);
  });

  test('migration 0042 moves the rows it finds into their months, and the readable view reads them as before', async () => {
    const [db] = (await database('0041_cluster_leases')) as [Kysely<unknown>];
    await sql`INSERT INTO gateway_ids (id, name) VALUES (1, 'gw-1')`.execute(db);
    await sql`INSERT INTO streams (id, gateway, instrument, channel, unit) VALUES (1, 'gw-1', 'utm-1', 'force', 'kN')`.execute(db);
    const times = [Date.UTC(1990, 0, 1), Date.UTC(2026, 10, 30, 23, 59, 59, 999), Date.UTC(2026, 11, 1), Date.UTC(2300, 5, 1), Date.UTC(2150, 0, 1)];
    for (const [i, ts] of times.entries())
      await sql`INSERT INTO samples (gateway, seq, stream, ts, num, text, kind, quality, reason) VALUES (1, ${i}, 1, ${ts}, ${i + 0.5}, NULL, 3, 0, NULL)`.execute(
        db,
      );
    const before = (await sql`SELECT * FROM measurements ORDER BY seq`.execute(db)).rows;
    await migrateStore(db, serverMigrations);
    const { rows: kind } = await sql<{ relkind: string }>`SELECT relkind FROM pg_class WHERE relname = 'samples'`.execute(db);
    expect(kind[0]?.relkind).toBe('p');
    const { rows } = await sql<{ seq: string; part: string }>`SELECT seq, tableoid::regclass::text AS part FROM samples ORDER BY seq`.execute(db);
    expect(rows.map((r) => r.part)).toEqual(['samples_early', 'samples_m202611', 'samples_m202612', 'samples_late', 'samples_m215001']);
    expect((await sql`SELECT * FROM measurements ORDER BY seq`.execute(db)).rows).toEqual(before);
    // every partition has the (stream, ts) index
    const { rows: indexed } = await sql<{
      n: string;
    }>`SELECT COUNT(*) AS n FROM pg_indexes WHERE tablename LIKE 'samples_%' AND indexdef LIKE '%(stream, ts)%'`.execute(db);
    expect(Number(indexed[0]?.n)).toBe(5);
  }, 120_000);

  test('months are made when first written (with the next), once, by concurrent nodes; retention drops whole months', async () => {
    const pools = await database(undefined, 3);
    const stores = pools.map((db) => new PgMeasurementStore(db));
    const times = [Date.UTC(2026, 0, 15), Date.UTC(2026, 2, 31, 23), Date.UTC(2026, 2, 1)];
    await Promise.all(stores.map((s) => s.partitions.ensure(times)));
    const months = (await stores[0]!.partitions.list()).map((m) => m.name);
    expect(months).toEqual(['samples_m202601', 'samples_m202602', 'samples_m202603', 'samples_m202604']);
    expect(await stores[1]!.partitions.dropBefore(Date.UTC(2026, 2, 1))).toEqual(['samples_m202601', 'samples_m202602']);
    expect((await stores[2]!.partitions.list()).map((m) => m.name)).toEqual(['samples_m202603', 'samples_m202604']);
    // a store that saw a month another node then dropped makes it again when written to: only the current and the
    // previous month are remembered, and retention never drops those
    await stores[0]!.partitions.ensure([Date.UTC(2026, 0, 2)]);
    expect((await stores[0]!.partitions.list()).map((m) => m.name)).toContain('samples_m202601');
    const now = new Date();
    await expect(stores[0]!.partitions.dropBefore(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 2))).rejects.toThrow(
      'would drop the current or the previous month, which are always kept',
    );
  }, 120_000);
});

describe('storing batches', () => {
  test('a batch is stored whole, once: a resend is a duplicate, an overlap or another header under its number a conflict', async () => {
    const [db] = (await database()) as [Kysely<unknown>];
    const ms = new PgMeasurementStore(db);
    const first = batch('gw-1', 0, samples(0, 300));
    expect(await store(db, ms, first)).toEqual({ kind: 'stored', samples: 300 });
    expect(await store(db, ms, first)).toEqual({ kind: 'duplicate' });
    const overlap = await store(db, ms, batch('gw-1', 1, samples(299, 10)));
    expect(overlap).toEqual({ kind: 'conflict', detail: 'sequence numbers 299..299 of gw-1 are already stored in batch 0' });
    const renumbered = await store(db, ms, batch('gw-1', 0, samples(300, 10)));
    expect(renumbered.kind).toBe('conflict');
    expect(await ms.count()).toBe(300);
    expect(await count(db, 'batch_headers')).toBe(1);
    // the month's turn: the samples went to November and December 2026
    const { rows } = await sql<{
      part: string;
      n: string;
    }>`SELECT tableoid::regclass::text AS part, COUNT(*) AS n FROM samples GROUP BY 1 ORDER BY 1`.execute(db);
    expect(rows).toEqual([
      { part: 'samples_m202611', n: 10 },
      { part: 'samples_m202612', n: 290 },
    ]);
    // the stored batch's bytes and header, as the SQLite store returns them
    const got = await ms.batchOf('gw-1', 150);
    expect(got?.signed).toEqual(first.signed);
    expect(Buffer.from(got!.records).equals(Buffer.from(first.wireRecords))).toBe(true);
    expect(got?.logIndex).toBeNull();
    await ms.setLogIndex(db, 'gw-1', 0, 42);
    expect((await ms.batchOf('gw-1', 0))?.logIndex).toBe(42);
    expect(await ms.batchOf('gw-1', 300)).toBeUndefined();
  }, 120_000);

  test('a transaction that rolls back leaves neither the batch nor a sample', async () => {
    const [db] = (await database()) as [Kysely<unknown>];
    const ms = new PgMeasurementStore(db);
    const b = batch('gw-1', 0, samples(0, 50));
    await ms.prepare([b]);
    await expect(
      db.transaction().execute(async (trx) => {
        await ms.lockGateways(trx, ['gw-1']);
        expect((await ms.storeBatch(trx, b)).kind).toBe('stored');
        throw new Error('the log append failed');
      }),
    ).rejects.toThrow('the log append failed');
    expect(await count(db, 'batch_headers')).toBe(0);
    expect(await ms.count()).toBe(0);
    expect(await store(db, ms, b)).toEqual({ kind: 'stored', samples: 50 });
  }, 120_000);

  test('two nodes given the same batches at once (a redelivery) store each once, and the others all', async () => {
    const pools = await database(undefined, 2);
    const [a, b] = pools.map((db) => new PgMeasurementStore(db)) as [PgMeasurementStore, PgMeasurementStore];
    const gateways = ['gw-1', 'gw-2', 'gw-3'];
    const batches = gateways.flatMap((g) => Array.from({ length: 8 }, (_, n) => batch(g, n, samples(n * 100, 100))));
    const outcomes = await Promise.all([
      ...batches.map((x) => store(pools[0]!, a, x)),
      ...batches.map((x) => store(pools[1]!, b, x)),
      // and, on node b, several gateways' batches in one transaction (locks taken in gateway order)
      (async () => {
        const group = [batches[3]!, batches[20]!, batches[9]!];
        await b.prepare(group);
        return pools[1]!.transaction().execute(async (trx) => {
          await b.lockGateways(
            trx,
            group.map((x) => x.gateway),
          );
          const each = [];
          for (const x of group) each.push(await b.storeBatch(trx, x));
          return each;
        });
      })(),
    ]);
    const flat = outcomes.flat();
    expect(flat.filter((o) => o.kind === 'stored')).toHaveLength(batches.length);
    expect(flat.filter((o) => o.kind === 'duplicate')).toHaveLength(batches.length + 3);
    expect(flat.filter((o) => o.kind === 'conflict')).toHaveLength(0);
    expect(await a.count()).toBe(batches.length * 100);
    const { rows } = await sql<{
      n: number;
    }>`SELECT COUNT(*) AS n FROM (SELECT gateway, seq FROM samples GROUP BY gateway, seq HAVING COUNT(*) > 1) d`.execute(pools[0]!);
    expect(rows[0]?.n).toBe(0);
  }, 120_000);
});

describe('reads answer what the SQLite store answers', () => {
  let sqlite: LabDatabase;
  let reference: MeasurementStore;
  let db: Kysely<unknown>;
  let ms: PgMeasurementStore;
  const stored: { gateway: string; s: Sample[]; signed: SignedBatch; hash: string; records: Uint8Array }[] = [];

  beforeAll(async () => {
    sqlite = new LabDatabase(fixture.tempDir(), serverMigrations);
    await sqlite.migrate();
    reference = new MeasurementStore(sqlite);
    reference.open();
    [db] = (await database()) as [Kysely<unknown>];
    ms = new PgMeasurementStore(db);
    // two gateways, months apart, with a unit change on one channel and a batch outside the clock window
    const plan: [string, number, Sample[]][] = [
      ['gw-1', 0, samples(0, 500)],
      ['gw-1', 1, samples(500, 500, Date.UTC(2027, 1, 3))],
      ['gw-2', 0, samples(0, 200, Date.UTC(2026, 5, 1)).map((s) => ({ ...s, unit: s.unit === 'kN' ? 'N' : s.unit }))],
      ['gw-2', 1, samples(200, 50, Date.UTC(2031, 0, 1))],
    ];
    for (const [gateway, number, s] of plan) {
      const b = batch(gateway, number, s, 1_000);
      stored.push({ gateway, s, signed: b.signed, hash: b.headerHash, records: b.records as Uint8Array });
      reference.store(gateway, s, b.signed, b.headerHash, 1_000, b.records);
      expect((await store(db, ms, b)).kind).toBe('stored');
    }
    // gw-2's batch 1 is dated years ahead of its arrival: out of the latest values on both
    const skew = [`gw-2`, 1, 200, 249, 0, Date.UTC(2030, 0, 1)] as const;
    sqlite.sqlite
      .prepare('INSERT INTO clock_skew_batches (gateway, batch, first_seq, last_seq, earliest, latest) VALUES (?, ?, ?, ?, ?, ?)')
      .run(...skew);
    await sql`INSERT INTO clock_skew_batches (gateway, batch, first_seq, last_seq, earliest, latest) VALUES (${skew[0]}, ${skew[1]}, ${skew[2]}, ${skew[3]}, ${skew[4]}, ${skew[5]})`.execute(
      db,
    );
    reference.indexPending();
  }, 120_000);

  afterAll(async () => {
    await sqlite.close();
  });

  const byKey = (xs: { gateway: string; channel: string }[]) =>
    [...xs].sort((p, q) => `${p.gateway}${p.channel}`.localeCompare(`${q.gateway}${q.channel}`));

  test('counts, latest values (skewed batches left out), history and series', async () => {
    expect(await ms.count()).toBe(reference.count());
    for (const instrument of ['utm-0', 'utm-1', 'utm-2', 'none']) {
      const latest = await ms.latest(instrument);
      expect(byKey(latest)).toEqual(byKey(reference.latest(instrument)));
      if (instrument !== 'none') expect(latest.length).toBeGreaterThan(0);
      for (const channel of ['force', 'extension']) {
        const spans: [number, number, number][] = [
          [0, Date.UTC(2100, 0, 1), 10_000],
          [MONTH0, MONTH0 + 100, 7],
          [Date.UTC(2026, 0, 1), Date.UTC(2027, 11, 31), 3],
        ];
        for (const [from, to, limit] of spans) {
          const history = await ms.history(instrument, channel, from, to, limit);
          expect(history).toEqual(reference.history(instrument, channel, from, to, limit));
        }
        for (const [from, to, points] of [
          [MONTH0 - 1000, MONTH0 + 2000, 17],
          [Date.UTC(2026, 0, 1), Date.UTC(2028, 0, 1), 24],
        ] as const) {
          const got = await ms.series(instrument, channel, from, to, points);
          const want = reference.series(instrument, channel, from, to, points);
          expect(got.bucketMs).toBe(want.bucketMs);
          expect(got.points.map((p) => ({ ...p, mean: Number(p.mean.toPrecision(12)) }))).toEqual(
            want.points.map((p) => ({ ...p, mean: Number(p.mean.toPrecision(12)) })),
          );
        }
      }
    }
    // the skewed batch's samples are the newest by time, and are left out of the latest values
    expect((await ms.latest('utm-1')).every((s) => s.ts < Date.UTC(2030, 0, 1))).toBe(true);
    expect(stored).toHaveLength(4);
  }, 120_000);
});
