// Benchmark of the auditor's verifier in the browser: the built dashboard's verifier worker (dashboard/src/verify/
// verify.worker.ts: protocols' pure-JavaScript verifier, the tar reader) checks the export archive of a one-hour run
// of 50 samples/s (180,000 records) in headless Chromium.
//
// The bundle is real: records sealed and signed as the gateway seals them (sealBatch, one batch per 200 ms as the
// gateway's default batch.maxDelayMs closes them at 50 samples/s: 10 records a batch), stored as the server stores
// them, their headers appended to a transparency log with a signed checkpoint; exportBundle writes the bundle and the
// system's tar archives it as GET /api/runs/:id/export sends it. The archive is cached under the system's temporary
// folder (not in the repository) and reused while its parameters are the same.
//
// Timed in the page, from the archive posted to the worker to the report received (reading the tar, every signature,
// every Merkle root, every inclusion proof, the sequence, the statement, records.jsonl compared): the median of
// BENCH_BROWSER_VERIFY_ROUNDS rounds, each in a fresh worker as the view starts one. The log key is pinned as the view
// pins the lab's published key. Target: under 3 s.
// Environment: BENCH_BROWSER_VERIFY_RECORDS (180000), BENCH_BROWSER_VERIFY_BATCH (10 records a batch),
// BENCH_BROWSER_VERIFY_ROUNDS (3). Needs the built server, dashboard and dashboard tests (npx tsc -b; npm run build
// -w @labtrace/dashboard). Writes bench/results/browser-verify.json; exits non-zero when the bundle does not verify.
/* global window, Worker, navigator -- in functions run in the page */
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { exportBundle } from '../server/dist/src/export/bundle.js';
import { TransparencyLog } from '../server/dist/src/log/transparency-log.js';
import { LabDatabase } from '../server/dist/src/store/database.js';
import { startServer } from '../server/dist/test/helpers/server.js';
import { launch } from './lib/dashboard.js';
import { clockTicks, cpuTicks, descendants } from './lib/proc.js';
import { envReader } from './lib/env.js';
import { ROOT, round1, writeResult } from './lib/result.js';
import { serverMigrations } from '../server/dist/src/migrations.js';

const NAME = 'browser-verify';
const { envInt } = envReader(NAME);
const GATEWAY = 'gw-bench';
const ORIGIN = 'labtrace.example/bench';
const RATE = 50; // samples a second
const TARGETS = { seconds: 3 };
const params = {
  records: envInt('BENCH_BROWSER_VERIFY_RECORDS', 180_000, 1000, 2_000_000),
  batchSize: envInt('BENCH_BROWSER_VERIFY_BATCH', 10, 1, 10_000),
  rounds: envInt('BENCH_BROWSER_VERIFY_ROUNDS', 3, 1, 20),
  samplesPerSecond: RATE,
  targets: TARGETS,
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- the bundle (cached)
const GENERATOR_VERSION = 1;
const cacheKey = createHash('sha256')
  .update(JSON.stringify({ v: GENERATOR_VERSION, records: params.records, batchSize: params.batchSize }))
  .digest('hex')
  .slice(0, 16);
const cacheDir = path.join(os.tmpdir(), 'labtrace-bench-browser-verify', cacheKey);
const archivePath = path.join(cacheDir, 'bundle.tar');

async function generate() {
  rmSync(cacheDir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  const dataDir = path.join(cacheDir, 'store');
  mkdirSync(dataDir);
  const database = new LabDatabase(dataDir, serverMigrations);
  await database.migrate();
  const logSigner = trust.parseSignerKey(trust.formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32))));
  const transparencyLog = new TransparencyLog(database, { origin: ORIGIN, signer: logSigner, minCheckpointIntervalMs: 0 });
  transparencyLog.open();
  const gatewayKey = trust.parseSignerKey(trust.formatSignerKey(GATEWAY, new Uint8Array(randomBytes(32))));
  const T0 = Date.UTC(2026, 0, 1, 8);
  database.sqlite
    .prepare("INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)")
    .run(GATEWAY, trust.toHex(gatewayKey.keyId), trust.formatVerifierKey(GATEWAY, gatewayKey.publicKey), T0 - 86_400_000);
  const insert = database.sqlite.prepare(
    'INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash, records, indexed, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)',
  );
  const store = database.sqlite.transaction((items) => {
    for (const { signed, records } of items) {
      const index = transparencyLog.append('batch-header', [trust.canonicalBytes(signed)]);
      const { header } = signed;
      insert.run(
        GATEWAY,
        header.batch,
        header.firstSeq,
        header.count,
        JSON.stringify(header),
        signed.signature,
        header.tsMax + 50,
        trust.toBase64(trust.headerHash(header)),
        records,
        index,
      );
    }
  });
  const started = performance.now();
  let prev = null;
  let pending = [];
  for (let batch = 0, seq = 0; seq < params.records; batch++) {
    const n = Math.min(params.batchSize, params.records - seq);
    // one instrument's force and extension, alternately, 50 samples a second
    const samples = Array.from({ length: n }, (_, i) => {
      const k = seq + i;
      return {
        seq: k,
        instrument: 'utm-01',
        channel: k % 2 === 0 ? 'force' : 'extension',
        ts: T0 + Math.floor((k * 1000) / RATE),
        value: Math.round((k % 2 === 0 ? 40 + 5 * Math.sin(k / 500) : k / 1000) * 1000) / 1000,
        unit: k % 2 === 0 ? 'kN' : 'mm',
        quality: 'good',
      };
    });
    const { signed, wire } = trust.sealBatch(gatewayKey, GATEWAY, batch, samples, prev);
    prev = trust.headerHash(signed.header);
    const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
    pending.push({ signed, records: Buffer.from(wire.subarray(8 + headerLength + 64 + 4)) });
    if (pending.length === 1000) {
      store(pending);
      pending = [];
    }
    seq += n;
  }
  store(pending);
  transparencyLog.maybeCheckpoint();
  const outDir = path.join(cacheDir, 'labtrace-bundle-bench');
  const exported = await exportBundle(database, transparencyLog, { outDir, gateway: GATEWAY, from: T0, to: T0 + 3_600_000 });
  await database.close();
  execFileSync('tar', ['-cf', archivePath, '-C', cacheDir, 'labtrace-bundle-bench']);
  rmSync(dataDir, { recursive: true, force: true });
  log(`generated ${exported.records} records in ${exported.batches} batches in ${round1((performance.now() - started) / 1000)} s`);
}

if (!existsSync(archivePath)) await generate();
else log(`reusing the cached archive ${archivePath}`);
const keys = JSON.parse(readFileSync(path.join(cacheDir, 'labtrace-bundle-bench', 'keys.json'), 'utf8'));
const archiveBytes = statSync(archivePath).size;

// ---------------------------------------------------------------- the built worker, in headless Chromium
/** CPU seconds Chromium's processes (the processes below this one) have used so far: what the verification costs whatever else runs on the machine */
const TICKS = clockTicks();
const chromiumCpuSeconds = () => descendants(process.pid).reduce((n, pid) => n + (cpuTicks(pid) ?? 0), 0) / TICKS;

const assets = path.join(ROOT, 'dashboard', 'dist', 'assets');
const worker = readdirSync(assets).find((f) => /^verify\.worker-.*\.js$/.test(f));
if (worker === undefined) {
  console.error(`${NAME}: no verify.worker-*.js in dashboard/dist/assets: build the dashboard first`);
  process.exit(2);
}
const t = await startServer();
const browser = await launch();
let rounds;
let report;
try {
  const page = await browser.newPage();
  // the archive, as the page would download it from the export route
  await page.route('**/bench/bundle.tar', (route) =>
    route.fulfill({ status: 200, contentType: 'application/x-tar', body: readFileSync(archivePath) }),
  );
  await page.goto(`${t.base}/`);
  await page.evaluate(async () => {
    window.benchArchive = await (await fetch('/bench/bundle.tar')).arrayBuffer();
  });
  const times = [];
  let answer;
  // one warm-up round (the worker's module compiled), then the timed ones, each in a fresh worker as the view starts one
  for (let round = 0; round <= params.rounds; round++) {
    const cpuBefore = chromiumCpuSeconds();
    answer = await page.evaluate(
      async ({ workerUrl, logKey }) => {
        const copy = window.benchArchive.slice(0);
        const w = new Worker(workerUrl, { type: 'module' });
        const started = performance.now();
        const last = await new Promise((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => reject(new Error(e.message));
          w.postMessage({ id: 1, kind: 'bundle', archive: copy, logKey }, [copy]);
        });
        const ms = performance.now() - started;
        w.terminate();
        const summary =
          last.kind === 'bundle'
            ? last.reports.map((r) => ({ status: r.report.status, counts: r.report.counts, problems: r.report.problems.slice(0, 3) }))
            : last;
        return { wallMs: ms, workerMs: last.ms, summary, userAgent: navigator.userAgent, cores: navigator.hardwareConcurrency };
      },
      { workerUrl: `/assets/${worker}`, logKey: keys.log.verifierKey },
    );
    const cpuSeconds = chromiumCpuSeconds() - cpuBefore;
    log(`round ${round}: ${Math.round(answer.wallMs)} ms in the page, ${round1(cpuSeconds)} CPU s in Chromium${round === 0 ? ' (warm-up)' : ''}`);
    if (round > 0) times.push({ wallMs: answer.wallMs, workerMs: answer.workerMs, cpuSeconds, load1: os.loadavg()[0] });
  }
  answer.times = times;
  rounds = answer.times;
  report = answer;
} finally {
  await browser.close();
  await t.stop();
}

const summary = report.summary;
if (!Array.isArray(summary) || summary.length !== 1 || summary[0].status !== 'verified') {
  console.error(`${NAME}: the bundle does not verify in the browser: ${JSON.stringify(summary, null, 2)}`);
  process.exit(1);
}
const sorted = [...rounds].sort((a, b) => a.wallMs - b.wallMs);
const median = sorted[Math.floor(sorted.length / 2)];
const seconds = median.wallMs / 1000;
const cpu = [...rounds].map((r) => r.cpuSeconds).sort((a, b) => a - b);
const cpuSeconds = cpu[Math.floor(cpu.length / 2)];
const results = {
  seconds: Math.round(seconds * 100) / 100,
  /** CPU seconds of Chromium's processes per verification (median): the time on a machine nobody else is using */
  cpuSeconds: Math.round(cpuSeconds * 100) / 100,
  /** the machine's 1-minute load average per core during the rounds (above 1: the figures wait for a core) */
  loadPerCore: Math.round((rounds.reduce((n, r) => n + r.load1, 0) / rounds.length / os.cpus().length) * 10) / 10,
  records: summary[0].counts.records,
  batches: summary[0].counts.batches,
  recordsPerSecond: Math.round(summary[0].counts.records / seconds),
  archiveMiB: round1(archiveBytes / 2 ** 20),
  meetsTarget: seconds < TARGETS.seconds,
  meetsTargetInCpuTime: cpuSeconds < TARGETS.seconds,
};
log(
  `${results.records} records in ${results.batches} batches (${results.archiveMiB} MiB) verified in the browser in ${Math.round(median.wallMs)} ms (median of ${rounds.length}; ${results.cpuSeconds} CPU s; load ${results.loadPerCore} per core) = ${results.recordsPerSecond} records/s`,
);
const file = writeResult(NAME, {
  params,
  results,
  detail: { rounds, counts: summary[0].counts, browser: report.userAgent, browserCores: report.cores, archive: path.basename(archivePath), worker },
});
log(`wrote ${file}`);
if (!results.meetsTarget) log(`below target: ${round1(seconds)} s >= ${TARGETS.seconds} s`);
