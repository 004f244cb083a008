// Benchmark of measurement ingest into InfluxDB and into the embedded SQLite store, on this machine:
//
//   curl         the baseline: the same line protocol, in files of 5,000 lines, POSTed to /write by one curl process
//                (one keep-alive connection, batches one after the other)
//   writer       the shared InfluxDB writer (@labtrace/protocols/influx, api v1) sending the same lines, one request
//                per 5,000 lines, to the same influxd in the same run (another database, so no write is an overwrite)
//   forwarder    the server's InfluxDB store catching up a backlog of stored batches: reading them from SQLite,
//                decoding their records, encoding line protocol, writing 5,000 lines per request, moving its cursor
//   embedded     the embedded store: MeasurementStore.store of signed batches (one durable transaction each, as ingest
//                commits) and its per-sample index, measurements per second
//
// influxd (Debian's 1.6) runs on loopback with its data in a temporary folder, started and stopped by this script.
// Environment: BENCH_INFLUX_LINES (500000: lines per method), BENCH_INFLUX_BATCH (5000: lines per request).
// Writes bench/results/influx.json. A figure below its target (100,000 measurements/s) is reported, not fatal.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import pino from 'pino';
import * as protocols from '../protocols/dist/src/index.js';
import { InfluxWriter, toLineProtocol } from '../protocols/dist/src/influx/index.js';
import { Influxd } from '../protocols/dist/test/helpers/influxd.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { LabDatabase } from '../server/dist/src/store/database.js';
import { MeasurementStore } from '../server/dist/src/store/measurement-store.js';
import { InfluxSeries } from '../server/dist/src/store/series/influx-series.js';
import { round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { clockTicks, cpuTicks, descendants, machineTicks, processTable, waitForQuiet } from './lib/proc.js';
import { serverMigrations } from '../server/dist/src/migrations.js';

const NAME = 'influx';
const { envInt: envNumber } = envReader(NAME);
const TARGET = 100_000;
const run = promisify(execFile);

const params = {
  lines: envNumber('BENCH_INFLUX_LINES', 500_000, 5000, 50_000_000),
  batchLines: envNumber('BENCH_INFLUX_BATCH', 5000, 100, 100_000),
  instruments: 20,
  channelsPerInstrument: 4,
  embeddedBatchSamples: 500,
  targetMeasurementsPerSecond: TARGET,
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const rate = (n, ms) => Math.round((n * 1000) / ms);

useNodeCrypto();
const GATEWAY = 'gw-bench';
const key = protocols.parseSignerKey(protocols.formatSignerKey(GATEWAY, new Uint8Array(32).fill(7)));
const T0 = Date.UTC(2026, 0, 1);
const CHANNELS = ['force', 'extension', 'temperature', 'state'];

/** Realistic samples: 20 instruments x 4 channels at 100 Hz, numbers mostly, a text state channel, some uncertain. */
function samplesFrom(firstSeq, n) {
  const samples = new Array(n);
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + i;
    const stream = seq % (params.instruments * params.channelsPerInstrument);
    const instrument = `utm-${String(Math.floor(stream / params.channelsPerInstrument) + 1).padStart(2, '0')}`;
    const channel = CHANNELS[stream % CHANNELS.length];
    const tick = Math.floor(seq / (params.instruments * params.channelsPerInstrument));
    const value = channel === 'state' ? (tick % 50 === 0 ? 'hold' : 'loading') : Math.round((Math.sin(tick / 100 + stream) * 50 + 50) * 1e4) / 1e4;
    samples[i] = {
      seq,
      instrument,
      channel,
      ts: T0 + tick * 10,
      value,
      unit: channel === 'force' ? 'kN' : channel === 'extension' ? 'mm' : channel === 'temperature' ? 'degC' : '',
      quality: seq % 997 === 0 ? 'uncertain' : 'good',
    };
  }
  return samples;
}

const dirs = [];
const tmp = (prefix) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};

const TICKS = clockTicks();

/** the influxd started by this script (a child of this process) */
function influxdPid() {
  const table = processTable();
  const mine = new Set(descendants(process.pid, table));
  return table.find((p) => mine.has(p.pid) && p.comm === 'influxd')?.pid;
}

/**
 * CPU over a window, in % of one core: this process (the writer or forwarder, with SQLite), influxd, and the rest of
 * the machine (curl while it runs; other processes of the machine too, so that figure is an upper bound).
 */
function cpuWindow(pid) {
  const self0 = process.cpuUsage();
  const i0 = cpuTicks(pid);
  const m0 = machineTicks();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    const selfSeconds = (self.user + self.system) / 1e6;
    const i1 = cpuTicks(pid);
    const m1 = machineTicks();
    const influxdSeconds = i0 === null || i1 === null ? null : (i1 - i0) / TICKS;
    const pct = (s) => (s === null ? null : round1((s / seconds) * 100));
    const rest =
      m0 === null || m1 === null || influxdSeconds === null ? null : Math.max(0, (m1.proc - m0.proc) / TICKS - selfSeconds - influxdSeconds);
    return { node: pct(selfSeconds), influxd: pct(influxdSeconds), rest: pct(rest) };
  };
}

async function count(influxd, database) {
  const rows = await influxd.query(database, 'SELECT count(seq) FROM "measurement"');
  return Number(rows[0]?.count ?? 0);
}

async function main() {
  const batches = [];
  for (let first = 0; first < params.lines; first += params.batchLines) {
    batches.push(toLineProtocol(GATEWAY, samplesFrom(first, Math.min(params.batchLines, params.lines - first))));
  }
  const lines = batches.reduce((n, b) => n + b.length, 0);
  const bytes = batches.reduce((n, b) => n + b.join('\n').length, 0);
  log(`${lines} lines (${round1(bytes / lines)} bytes each) in ${batches.length} batches`);

  const influxd = await Influxd.create();
  await influxd.start();
  const results = { lines, batches: batches.length, bytesPerLine: round1(bytes / lines) };
  try {
    // (a) curl: the files written first, outside the timing
    const dir = tmp('labtrace-bench-influx-');
    const files = batches.map((b, i) => {
      const file = path.join(dir, `batch-${i}.lp`);
      writeFileSync(file, b.join('\n'));
      return file;
    });
    for (const db of ['curl', 'writer', 'forwarder']) await influxd.createDatabase(db);
    const pid = influxdPid();
    const url = `${influxd.url}/write?db=curl&precision=ms`;
    const args = ['-sS', '--fail', '-o', '/dev/null'];
    files.forEach((file, i) => {
      if (i > 0) args.push('--next', '-sS', '--fail', '-o', '/dev/null');
      args.push('--data-binary', `@${file}`, url);
    });
    // the machine may be shared: each timed phase starts when it is quiet (at most 30 s of waiting); what the rest of
    // the machine used meanwhile is in each phase's cpuPercent.rest
    results.busyBefore = { curl: await waitForQuiet(30_000, 25) };
    let cpu = cpuWindow(pid);
    let t = performance.now();
    await run('curl', args, { maxBuffer: 1 << 20 });
    const curlMs = performance.now() - t;
    results.curl = { ms: Math.round(curlMs), measurementsPerSecond: rate(lines, curlMs), cpuPercent: cpu(), stored: await count(influxd, 'curl') };
    log(`curl: ${results.curl.measurementsPerSecond}/s (${results.curl.stored} points stored), CPU % ${JSON.stringify(results.curl.cpuPercent)}`);

    // (b) the shared writer, same lines
    const writer = new InfluxWriter({ url: influxd.url, target: { api: 'v1', database: 'writer' } });
    results.busyBefore.writer = await waitForQuiet(30_000, 25);
    cpu = cpuWindow(pid);
    t = performance.now();
    for (const batch of batches) {
      const outcome = await writer.write(batch);
      if (!outcome.ok) throw new Error(`writer: ${outcome.error}`);
    }
    const writerMs = performance.now() - t;
    results.writer = {
      ms: Math.round(writerMs),
      measurementsPerSecond: rate(lines, writerMs),
      cpuPercent: cpu(),
      stored: await count(influxd, 'writer'),
    };
    results.writerVsCurl = round1(results.writer.measurementsPerSecond / results.curl.measurementsPerSecond);
    log(`writer: ${results.writer.measurementsPerSecond}/s (${results.writerVsCurl} x curl)`);

    // (c) the embedded store: signed batches stored as ingest stores them, then indexed
    const database = new LabDatabase(tmp('labtrace-bench-influx-db-'), serverMigrations);
    await database.migrate();
    const store = new MeasurementStore(database);
    store.open();
    const signedBatches = [];
    for (let first = 0, b = 0; first < params.lines; first += params.embeddedBatchSamples, b++) {
      const samples = samplesFrom(first, Math.min(params.embeddedBatchSamples, params.lines - first));
      // as ingest has it: the batch opened from its wire form, the received record bytes stored as they are
      const opened = protocols.openBatch(protocols.sealBatch(key, GATEWAY, b, samples, null).wire, { leaves: false });
      signedBatches.push({
        samples: opened.samples,
        signed: opened.signed,
        records: opened.records,
        hash: protocols.toBase64(protocols.headerHash(opened.signed.header)),
      });
    }
    // timed apart: the durable store of the batches (what the ACK waits for) and the per-sample index after it
    let storeMs = 0;
    let indexMs = 0;
    for (const { samples, signed, records, hash } of signedBatches) {
      t = performance.now();
      database.sqlite.transaction(() => store.store(GATEWAY, samples, signed, hash, Date.now(), records))();
      storeMs += performance.now() - t;
      if (store.indexBacklog > 16) {
        t = performance.now();
        store.indexPending();
        indexMs += performance.now() - t;
      }
    }
    t = performance.now();
    store.indexPending();
    indexMs += performance.now() - t;
    const embeddedMs = storeMs + indexMs;
    results.embedded = {
      ms: Math.round(embeddedMs),
      measurementsPerSecond: rate(lines, embeddedMs),
      storeOnlyPerSecond: rate(lines, storeMs),
      indexOnlyPerSecond: rate(lines, indexMs),
      stored: store.count(),
      batchSamples: params.embeddedBatchSamples,
    };
    log(
      `embedded: ${results.embedded.measurementsPerSecond}/s (batches stored ${results.embedded.storeOnlyPerSecond}/s, index ${results.embedded.indexOnlyPerSecond}/s)`,
    );

    // (d) the server's forwarder catching up that store's backlog (the same samples) into InfluxDB
    const forwarder = new InfluxSeries({
      database,
      url: influxd.url,
      target: { api: 'v1', database: 'forwarder' },
      read: { database: 'forwarder', auth: { kind: 'none' } },
      batchLines: params.batchLines,
      pollMs: 10,
      logger: pino({ level: 'silent' }),
    });
    const last = database.sqlite.prepare('SELECT MAX(rowid) AS r FROM batch_headers').get().r;
    const done = new Promise((resolve) => {
      forwarder.on('written', (rowid) => rowid >= last && resolve());
    });
    results.busyBefore.forwarder = await waitForQuiet(30_000, 25);
    cpu = cpuWindow(pid);
    t = performance.now();
    await forwarder.start();
    await done;
    const forwarderMs = performance.now() - t;
    const forwarderCpu = cpu();
    await forwarder.stop();
    results.forwarder = {
      ms: Math.round(forwarderMs),
      measurementsPerSecond: rate(lines, forwarderMs),
      cpuPercent: forwarderCpu,
      stored: await count(influxd, 'forwarder'),
    };
    results.forwarderVsCurl = round1(results.forwarder.measurementsPerSecond / results.curl.measurementsPerSecond);
    log(`forwarder: ${results.forwarder.measurementsPerSecond}/s (${results.forwarderVsCurl} x curl), CPU % ${JSON.stringify(forwarderCpu)}`);
    await database.close();
  } finally {
    await influxd.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }

  for (const k of ['curl', 'writer', 'forwarder', 'embedded']) {
    if (results[k].stored !== lines) throw new Error(`${k}: ${results[k].stored} of ${lines} measurements stored`);
  }
  const below = ['writer', 'forwarder', 'embedded'].filter((k) => results[k].measurementsPerSecond < TARGET);
  results.belowTarget = below;
  if (below.length > 0) log(`below the target of ${TARGET}/s: ${below.join(', ')}`);
  const file = writeResult(NAME, { params, results, detail: { influxd: (await run('influxd', ['version'])).stdout.trim() } });
  log(`wrote ${file}`);
}

await main();
