// The embedded series store on both engines: the dashboard's reads (latest values, history, series) through the
// SeriesStore that seriesStoreFrom makes, on the SQLite MeasurementStore and on a real PostgreSQL 15 through
// PgMeasurementStore, agree on the same batches; on PostgreSQL, `measurements.store: influxdb` gives the InfluxDB
// series store, whose copy is a job for one node at a time (store/series/influx-postgres.test.ts runs it).
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { formatSignerKey, headerHash, parseConfigText, parseSignerKey, sealBatch, toBase64, type Sample } from '@labtrace/protocols';
import { serverConfigSchema } from '../../../src/config.js';
import { LabDatabase } from '../../../src/store/database.js';
import { MeasurementStore } from '../../../src/store/measurement-store.js';
import { PgMeasurementStore, type BatchToStore } from '../../../src/store/pg-measurement-store.js';
import { EmbeddedSeries } from '../../../src/store/series/embedded-series.js';
import { InfluxSeries } from '../../../src/store/series/influx-series.js';
import { seriesStoreFrom } from '../../../src/store/series/open-series.js';
import type { SeriesStore } from '../../../src/store/series/series-store.js';
import { serverMigrations } from '../../../src/migrations.js';
import type { Tables } from '../../../src/store/tables.js';
import { StoreFixture } from '../../helpers/test-store.js';

const silent = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 10);
const fixture = new StoreFixture('series', 'embedded-series');
let pgDb: Kysely<Tables>;
let sqlite: LabDatabase;
let pgStore: PgMeasurementStore;
let onSqlite: SeriesStore;
let onPostgres: SeriesStore;

function samples(first: number, count: number): Sample[] {
  return Array.from({ length: count }, (_, i): Sample => {
    const seq = first + i;
    return {
      seq,
      instrument: 'utm-1',
      channel: seq % 3 === 0 ? 'state' : seq % 2 === 0 ? 'force' : 'extension',
      ts: T0 + seq * 10,
      value: seq % 3 === 0 ? `phase ${seq}` : seq / 7,
      unit: seq % 3 === 0 ? '' : seq % 2 === 0 ? 'kN' : 'mm',
      quality: seq % 11 === 0 ? 'uncertain' : 'good',
    };
  });
}

function batch(gateway: string, number: number, s: Sample[]): BatchToStore {
  const key = parseSignerKey(formatSignerKey(gateway, new Uint8Array(32).fill(7)));
  const { signed, wire } = sealBatch(key, gateway, number, s, null);
  const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
  return { gateway, samples: s, signed, headerHash: toBase64(headerHash(signed.header)), records: wire.subarray(8 + headerLength + 64 + 4), now: T0 };
}

beforeAll(async () => {
  await fixture.start();
  const [db] = (await fixture.stores('postgres')) as [Kysely<unknown>];
  pgDb = db as unknown as Kysely<Tables>;
  pgStore = new PgMeasurementStore(db);
  sqlite = new LabDatabase(fixture.tempDir(), serverMigrations);
  await sqlite.migrate();
  const store = new MeasurementStore(sqlite);
  store.open();
  // two batches of one gateway: stored the way each engine's ingest stores them
  for (const b of [batch('gw-a', 0, samples(0, 300)), batch('gw-a', 1, samples(300, 200))]) {
    store.store(b.gateway, [...b.samples], b.signed, b.headerHash, b.now, b.records);
    await pgStore.prepare([b]);
    const outcome = await db.transaction().execute(async (trx) => {
      await pgStore.lockGateways(trx, [b.gateway]);
      return pgStore.storeBatch(trx, b);
    });
    expect(outcome.kind).toBe('stored');
  }
  store.indexPending();
  onSqlite = seriesStoreFrom({ store: 'embedded' }, { database: sqlite, store, logger: silent }, {});
  onPostgres = seriesStoreFrom({ store: 'embedded' }, { store: pgStore, db: pgDb, logger: silent }, {});
}, 120_000);
afterAll(async () => {
  await sqlite.close();
  await fixture.close();
});

test('latest values, history and series agree on SQLite and on PostgreSQL', async () => {
  const byChannel = (xs: { channel: string }[]) => [...xs].sort((p, q) => p.channel.localeCompare(q.channel));
  const latest = await onPostgres.latest('utm-1');
  expect(latest.map((s) => s.seq).sort((a, b) => a - b)).toEqual([496, 498, 499]);
  expect(byChannel(latest)).toEqual(byChannel(await onSqlite.latest('utm-1')));
  expect(await onPostgres.latest('none')).toEqual([]);
  for (const channel of ['force', 'extension', 'state']) {
    for (const [from, to, limit] of [
      [T0, T0 + 10_000, 1000],
      [T0 + 2_000, T0 + 3_500, 20],
    ] as const) {
      const history = await onPostgres.history('utm-1', channel, from, to, limit);
      expect(history.length).toBeGreaterThan(0);
      expect(history).toEqual(await onSqlite.history('utm-1', channel, from, to, limit));
    }
    for (const [from, to, points] of [
      [T0, T0 + 5_000, 12],
      [T0 - 1_000, T0 + 1_000, 7],
    ] as const) {
      const got = await onPostgres.series('utm-1', channel, from, to, points);
      const want = await onSqlite.series('utm-1', channel, from, to, points);
      if (channel !== 'state') expect(got.points.length).toBeGreaterThan(0);
      expect(got.bucketMs).toBe(want.bucketMs);
      expect(got.points.map((p) => ({ ...p, mean: Number(p.mean.toPrecision(12)) }))).toEqual(
        want.points.map((p) => ({ ...p, mean: Number(p.mean.toPrecision(12)) })),
      );
    }
  }
}, 120_000);

test('the health report names the engine', () => {
  expect(onPostgres).toBeInstanceOf(EmbeddedSeries);
  expect(onPostgres.status()).toEqual({ kind: 'postgres', status: 'ok', backlog: { batches: 0, samples: 0 }, refusedBatches: 0 });
  expect(onSqlite.status().kind).toBe('sqlite');
});

test('on PostgreSQL, measurements.store: influxdb reads from InfluxDB and copies through a job of one node at a time', () => {
  const config = parseConfigText(
    JSON.stringify({ measurements: { store: 'influxdb', influxdb: { url: 'http://127.0.0.1:8086', database: 'lab' } } }),
    'server.yaml',
    serverConfigSchema,
  );
  const series = seriesStoreFrom(config.measurements, { store: pgStore, db: pgDb, logger: silent }, {});
  expect(series).toBeInstanceOf(InfluxSeries);
  expect(series.status().kind).toBe('influxdb');
  expect(typeof series.forwarderJob).toBe('function');
  // the embedded stores copy nothing; InfluxDB on SQLite copies from start() (one node)
  expect(onPostgres.forwarderJob).toBeUndefined();
  expect(
    seriesStoreFrom(config.measurements, { database: sqlite, store: new MeasurementStore(sqlite), logger: silent }, {}).forwarderJob,
  ).toBeUndefined();
});
