// The InfluxDB series store against a real influxd (1.6, loopback, temporary folder): stored batches arrive in
// InfluxDB exactly once and in commit order, read back the same through the store's InfluxQL reads as through the
// embedded index, and through the `influx` command line; a crash of influxd (SIGKILL) while batches keep being
// stored loses nothing and doubles nothing; a batch InfluxDB refuses for good is recorded and skipped.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { headerHash, parseConfigText, signBatch, toBase64, type Sample } from '@labtrace/protocols';
import { Influxd, rowsOf, type QueryResponse } from '@labtrace/protocols/test/influxd';
import { serverConfigSchema } from '../../../src/config.js';
import { LabDatabase } from '../../../src/store/database.js';
import { MeasurementStore } from '../../../src/store/measurement-store.js';
import { EmbeddedSeries } from '../../../src/store/series/embedded-series.js';
import { seriesStoreFrom } from '../../../src/store/series/open-series.js';
import { InfluxSeries } from '../../../src/store/series/influx-series.js';
import { signerOf } from '../../helpers/server.js';
import { serverMigrations } from '../../../src/migrations.js';

const run = promisify(execFile);
const T0 = 1_800_000_000_000;
const silent = pino({ level: 'silent' });
const GW = 'gw-a';
const key = signerOf(GW);

/** A lab's SQLite store with batches appended the way ingest stores them. */
class Lab {
  readonly database: LabDatabase;
  readonly store: MeasurementStore;
  private nextBatch = 0;
  nextSeq = 0;

  constructor() {
    this.database = new LabDatabase(mkdtempSync(path.join(os.tmpdir(), 'labtrace-influx-series-')), serverMigrations);
    this.store = new MeasurementStore(this.database);
  }

  async open(): Promise<this> {
    await this.database.migrate();
    this.store.open();
    return this;
  }

  /** Stores one batch of `n` samples over channels force/temp/door/state; returns the batch's samples. */
  storeBatch(n: number, make: (seq: number) => Partial<Sample> = () => ({})): Sample[] {
    const samples: Sample[] = [];
    for (let i = 0; i < n; i++) {
      const seq = this.nextSeq++;
      const channel = ['force', 'temp', 'door', 'state'][seq % 4] ?? 'force';
      const value = channel === 'door' ? seq % 8 === 2 : channel === 'state' ? `s${seq % 3}` : seq * 0.5;
      samples.push({
        seq,
        instrument: 'ut-1',
        channel,
        ts: T0 + seq * 10,
        value,
        unit: channel === 'force' ? 'kN' : '',
        quality: 'good',
        ...make(seq),
      });
    }
    const signed = signBatch(key, GW, this.nextBatch++, samples, null);
    this.database.sqlite.transaction(() => this.store.store(GW, samples, signed, toBase64(headerHash(signed.header))))();
    this.store.indexPending();
    return samples;
  }

  get lastRowid(): number {
    return (this.database.sqlite.prepare('SELECT MAX(rowid) AS r FROM batch_headers').get() as { r: number }).r;
  }

  async close(): Promise<void> {
    await this.database.close();
  }
}

function influxStore(
  lab: Lab,
  influxd: Influxd,
  database: string,
  extra: { batchLines?: number; progress?: { everyMs?: number; minSamples?: number }; logger?: pino.Logger } = {},
): InfluxSeries {
  return new InfluxSeries({
    database: lab.database,
    url: influxd.url,
    target: { api: 'v1', database },
    read: { database, auth: { kind: 'none' } },
    retryInitialMs: 50,
    retryMaxMs: 200,
    pollMs: 50,
    logger: silent,
    ...extra,
  });
}

/** Resolves when the store has written everything stored so far (it is notified of nothing: it must poll). */
function caughtUp(series: InfluxSeries, lab: Lab): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (series.writtenUpTo >= lab.lastRowid) {
        series.off('written', check);
        series.off('rejected', check);
        resolve();
      }
    };
    series.on('written', check);
    series.on('rejected', check);
    check();
  });
}

async function cli(influxd: Influxd, database: string, q: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await run('influx', [
    ...['-host', '127.0.0.1', '-port', String(influxd.port), '-database', database, '-precision', 'ms', '-format', 'json'],
    ...['-execute', q],
  ]);
  return rowsOf(JSON.parse(stdout) as QueryResponse, q);
}

let influxd: Influxd;
const open: { lab: Lab; series?: InfluxSeries }[] = [];

beforeAll(async () => {
  influxd = await Influxd.create();
  await influxd.start();
}, 60_000);

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.series?.stop();
    await o.lab.close();
  }
});

afterAll(async () => {
  await influxd.dispose();
});

describe('InfluxSeries', () => {
  test('stored batches reach InfluxDB once each and read back as the embedded index reads them', async () => {
    await influxd.createDatabase('basic');
    const lab = await new Lab().open();
    const series = influxStore(lab, influxd, 'basic', { batchLines: 300 });
    open.push({ lab, series });
    for (let b = 0; b < 10; b++) lab.storeBatch(250);
    await series.start();
    await caughtUp(series, lab);
    // a stop and start reads the cursor back from SQLite: nothing is written again (the count would not show it, the
    // cursor does) and new batches follow
    await series.stop();
    const cursor = series.writtenUpTo;
    await series.start();
    expect(series.writtenUpTo).toBe(cursor);
    lab.storeBatch(120);
    series.notify();
    await caughtUp(series, lab);

    const total = lab.nextSeq;
    expect(await cli(influxd, 'basic', 'SELECT count(seq) FROM "measurement"')).toEqual([{ name: 'measurement', time: 0, count: total }]);
    const embedded = new EmbeddedSeries(lab.store);
    const from = T0;
    const to = T0 + total * 10;
    for (const channel of ['force', 'temp', 'door', 'state']) {
      expect(await series.history('ut-1', channel, from, to, 50)).toEqual(await embedded.history('ut-1', channel, from, to, 50));
    }
    const byChannel = (a: { channel: string }, b: { channel: string }) => a.channel.localeCompare(b.channel);
    expect((await series.latest('ut-1')).sort(byChannel)).toEqual((await embedded.latest('ut-1')).sort(byChannel));
    // every kind of value comes back as it went in (text, boolean, number)
    expect(new Set((await series.latest('ut-1')).map((s) => typeof s.value))).toEqual(new Set(['number', 'string', 'boolean']));
    // a chart's buckets: never more than asked for, and the same min, max, mean and count as the embedded index
    const chart = await series.series('ut-1', 'force', from, to, 37);
    expect(chart.points.length).toBeLessThanOrEqual(37);
    expect(chart.points.length).toBeGreaterThan(30);
    const reference = await embedded.series('ut-1', 'force', from, to, 37);
    expect(chart.bucketMs).toBe(reference.bucketMs);
    expect(chart.points.map((p) => [p.ts, p.min, p.max, p.count])).toEqual(reference.points.map((p) => [p.ts, p.min, p.max, p.count]));
    chart.points.forEach((p, i) => expect(p.mean).toBeCloseTo(reference.points[i]?.mean ?? NaN, 9));
    expect(chart.points.reduce((n, p) => n + p.count, 0)).toBe(total / 4);
    expect(series.status()).toMatchObject({ kind: 'influxdb', status: 'ok', backlog: { batches: 0, samples: 0 }, refusedBatches: 0 });
  });

  test('samples of a batch stored with clock skew are not copied: the latest values leave them out, as the embedded index does', async () => {
    await influxd.createDatabase('skew');
    const lab = await new Lab().open();
    const series = influxStore(lab, influxd, 'skew');
    open.push({ lab, series });
    lab.storeBatch(8);
    // as ingest records a batch dated outside the accepted window around its arrival: half of it in 2100
    const Y2100 = Date.parse('2100-01-01T00:00:00Z');
    const skewed = lab.storeBatch(8, (seq) => (seq % 2 === 0 ? { ts: Y2100 + seq } : {}));
    lab.database.sqlite
      .prepare('INSERT INTO clock_skew_batches (gateway, batch, first_seq, last_seq, earliest, latest) VALUES (?, 1, ?, ?, ?, ?)')
      .run(GW, skewed[0]!.seq, skewed.at(-1)!.seq, T0 - 86_400_000, T0 + 86_400_000);
    await series.start();
    await caughtUp(series, lab);
    expect(await cli(influxd, 'skew', 'SELECT count(seq) FROM "measurement"')).toEqual([{ name: 'measurement', time: 0, count: 12 }]);
    const byChannel = (a: { channel: string }, b: { channel: string }) => a.channel.localeCompare(b.channel);
    const latest = (await series.latest('ut-1')).sort(byChannel);
    expect(latest.every((s) => s.ts < Y2100)).toBe(true);
    expect(latest).toEqual((await new EmbeddedSeries(lab.store).latest('ut-1')).sort(byChannel));
  });

  test('influxd killed (SIGKILL) while batches keep being stored: all arrive, once, in order, after its restart', async () => {
    await influxd.createDatabase('crash');
    const lab = await new Lab().open();
    // the catch-up told in the log, looked at every 50 ms from a backlog of 2,000 samples (10 batches)
    const told: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => told.push((JSON.parse(line) as { msg: string }).msg) });
    const series = influxStore(lab, influxd, 'crash', { batchLines: 500, progress: { everyMs: 50, minSamples: 2000 }, logger });
    open.push({ lab, series });
    const writtenRowids: number[] = [];
    series.on('written', (rowid) => writtenRowids.push(rowid));
    let failing = 0;
    let recovered = 0;
    series.on('failing', () => failing++);
    series.on('recovered', () => recovered++);
    await series.start();
    const storeSome = async (batches: number): Promise<void> => {
      for (let b = 0; b < batches; b++) {
        lab.storeBatch(200);
        series.notify();
        await new Promise((r) => setImmediate(r));
      }
    };
    await storeSome(20);
    // mid-stream: some batches written, more being stored
    await new Promise<void>((resolve) => series.once('written', () => resolve()));
    await influxd.kill();
    await storeSome(30);
    await new Promise<void>((resolve) => (failing > 0 ? resolve() : series.once('failing', () => resolve())));
    const during = series.status();
    expect(during.status).toBe('failing');
    expect(during.backlog.batches).toBeGreaterThan(0);
    expect(during.backlog.samples).toBe(during.backlog.batches * 200);
    await storeSome(10);
    await influxd.start();
    await storeSome(10);
    await caughtUp(series, lab);

    expect(recovered).toBe(1);
    expect(series.status()).toMatchObject({ status: 'ok', backlog: { batches: 0, samples: 0 } });
    // written in commit order
    expect(writtenRowids).toEqual([...writtenRowids].sort((a, b) => a - b));
    expect(new Set(writtenRowids).size).toBe(writtenRowids.length);
    // nothing lost, nothing doubled: every sequence number once, through the command line
    const total = lab.nextSeq;
    expect(total).toBe(70 * 200);
    expect(await cli(influxd, 'crash', 'SELECT count(seq) FROM "measurement"')).toEqual([{ name: 'measurement', time: 0, count: total }]);
    const seqs = (await influxd.query('crash', 'SELECT seq FROM "measurement"')).map((r) => r['seq']);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i));
    // the catch-up after the restart was told, and its end
    const deadline = Date.now() + 10_000;
    while (!told.some((m) => m.startsWith('InfluxDB caught up: ')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(told.find((m) => m.startsWith('InfluxDB catch-up: '))).toMatch(/^InfluxDB catch-up: \d+ samples in \d+ stored batches to write$/);
    expect(told.find((m) => m.startsWith('InfluxDB caught up: '))).toMatch(/^InfluxDB caught up: \d+ samples written in \d+ s$/);
  }, 90_000);

  test('a batch InfluxDB refuses for good is recorded in SQLite and skipped; the batches around it arrive', async () => {
    await influxd.createDatabase('conflict');
    // `value` is a string field in this database: a numeric value is a field type conflict (400 partial write)
    const response = await fetch(`${influxd.url}/write?db=conflict&precision=ms`, {
      method: 'POST',
      body: `measurement,channel=x,gateway=other,instrument=other,quality=good value="text" ${T0 - 1000}`,
    });
    expect(response.status).toBe(204);
    const lab = await new Lab().open();
    const series = influxStore(lab, influxd, 'conflict');
    open.push({ lab, series });
    const text = (): Partial<Sample> => ({ channel: 'state', value: 'ok' });
    lab.storeBatch(30, text);
    // numbers in `value`: refused (all of them: a 400 partial write would have stored the other lines of a batch)
    lab.storeBatch(30, () => ({ channel: 'force', value: 2.5 }));
    lab.storeBatch(30, text);
    const rejected: number[] = [];
    series.on('rejected', (_gateway, batch) => rejected.push(batch));
    await series.start();
    await caughtUp(series, lab);

    expect(rejected).toEqual([1]);
    expect(lab.database.sqlite.prepare('SELECT gateway, batch, samples, status FROM influx_failures').all()).toEqual([
      { gateway: GW, batch: 1, samples: 30, status: 400 },
    ]);
    expect(series.status()).toMatchObject({ status: 'ok', refusedBatches: 1, backlog: { batches: 0 } });
    const seqs = (await cli(influxd, 'conflict', `SELECT seq FROM "measurement" WHERE gateway = 'gw-a'`)).map((r) => r['seq']);
    expect(seqs).toEqual([...Array.from({ length: 30 }, (_, i) => i), ...Array.from({ length: 30 }, (_, i) => 60 + i)]);
  });

  test('a bad InfluxDB configuration names the field', () => {
    const parse = (measurements: unknown) => () => parseConfigText(JSON.stringify({ measurements }), 'server.yaml', serverConfigSchema);
    expect(parse({ store: 'influxdb' })).toThrow('server.yaml: measurements.influxdb: required when store is influxdb');
    expect(parse({ store: 'influxdb', influxdb: { url: 'http://127.0.0.1:8086' } })).toThrow(
      'server.yaml: measurements.influxdb.database: required when api is v1',
    );
    expect(parse({ store: 'influxdb', influxdb: { url: 'http://127.0.0.1:8086', api: 'v2', org: 'lab' } })).toThrow(
      'measurements.influxdb.bucket: required when api is v2',
    );
    expect(parse({ store: 'influxdb', influxdb: { url: '127.0.0.1:8086', database: 'lab' } })).toThrow('measurements.influxdb.url: expected a URL');
    expect(parse({ store: 'influx' })).toThrow('measurements.store');
    // a token file that is not there names the field, and the embedded store needs nothing
    const config = parseConfigText(
      JSON.stringify({
        measurements: {
          store: 'influxdb',
          influxdb: { url: 'http://127.0.0.1:8086', api: 'v2', org: 'lab', bucket: 'm', tokenFile: '/nonexistent/token' },
        },
      }),
      'server.yaml',
      serverConfigSchema,
    );
    const deps = { database: {} as LabDatabase, store: {} as MeasurementStore, logger: silent };
    expect(() => seriesStoreFrom(config.measurements, deps, {})).toThrow('measurements.influxdb.tokenFile: /nonexistent/token: file not found');
    expect(seriesStoreFrom({ store: 'embedded' }, deps, {})).toBeInstanceOf(EmbeddedSeries);
  });
});
