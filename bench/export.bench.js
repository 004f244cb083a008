// Benchmark of the streamed export (server/src/export: GET /api/export?gateway=&from=&to= answers a tar bundle,
// written a step at a time from a read snapshot and streamed with back-pressure), against a real server in a child
// process (bench/lib/store-server.js: the test server and a test gateway) whose store holds ~16 MB of signed
// batches (340 batches of 250 records):
//
//   throughput     each of BENCH_EXPORT_RUNS exports downloaded in full by this process: MB/s and records/s from the
//                  request to the last byte (the first run's bundle is extracted and verified offline, outside the time)
//   event loop     the server's event-loop delay during each export (perf_hooks.monitorEventLoopDelay in the server
//                  process, sampled every 1 ms: a value includes that 1 ms): longest and p99; the same over an idle
//                  stretch, and over the paused downloads below (their bundles made at once, then read), for comparison
//   other requests GET /api/health sent one after the other (10 ms apart) while the export runs: p50, p99, max
//   paused         BENCH_EXPORT_PAUSED downloads started at once and not read for BENCH_EXPORT_PAUSE_SECONDS: growth of the
//                  server's heap, external (+ array buffers) memory and RSS after a full GC on both sides (what the
//                  downloads hold), and of its peak RSS (the growth without GC, which counts garbage, is in detail),
//                  then read to the end (each must be complete)
//
// Before the measurements, the benchmark waits (at most 30 s) for the machine to use less than 30 % of a core;
// othersCpuPercent is what the rest of the machine used during each export (% of one core): a busy machine skews them.
// Environment: BENCH_EXPORT_BATCHES (340), BENCH_EXPORT_PER_BATCH (250), BENCH_EXPORT_RUNS (3),
// BENCH_EXPORT_PAUSED (5), BENCH_EXPORT_PAUSE_SECONDS (5).
// Writes bench/results/export.json. Exits non-zero when the server dies, an export fails or its bundle does not verify.
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { verifyBundle } from '../protocols/dist/src/index.js';
import { readBundle } from '../server/dist/src/export/read-bundle.js';
import { Children, sleep } from './lib/children.js';
import { othersCpu, peakRssMiB, waitForQuiet } from './lib/proc.js';
import { percentile, ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { startStoreServer, stopStoreServer } from './lib/store-control.js';

const NAME = 'export';
const { envInt } = envReader(NAME);
const params = {
  batches: envInt('BENCH_EXPORT_BATCHES', 340, 1, 100_000),
  perBatch: envInt('BENCH_EXPORT_PER_BATCH', 250, 1, 10_000),
  runs: envInt('BENCH_EXPORT_RUNS', 3, 1, 50),
  pausedDownloads: envInt('BENCH_EXPORT_PAUSED', 5, 1, 100),
  pauseSeconds: envInt('BENCH_EXPORT_PAUSE_SECONDS', 5, 1, 600),
  healthIntervalMs: 10,
  loopResolutionMs: 1,
};
const INSTRUMENT = 'big-1';
const T0 = 1_800_000_000_000;
const EXPORT_PATH = `/api/export?gateway=gw-a&from=${new Date(T0 - 60_000).toISOString()}&to=${new Date(T0 + 86_400_000).toISOString()}`;

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const MB = 1e6;

/** GET with node's http client, no keep-alive: resolves with the response, whose body is the caller's to read or not. */
function get(base, token, p) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${p}`, { headers: { authorization: `Bearer ${token}` }, agent: false }, resolve);
    req.on('error', reject);
  });
}

/** Reads a response to its end; bytes, and the body written to `file` when given. */
function drain(res, file) {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const out = file ? createWriteStream(file) : null;
    res.on('data', (chunk) => {
      bytes += chunk.length;
      if (out && !out.write(chunk)) {
        res.pause();
        out.once('drain', () => res.resume());
      }
    });
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('the response was aborted')));
    res.once('end', () => (out ? out.end(() => resolve(bytes)) : resolve(bytes)));
  });
}

/** GET /api/health one after the other, `intervalMs` apart, until `stop()`; resolves with the latencies (ms). */
function healthProbe(base) {
  const latencies = [];
  let failures = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/api/health`);
        await res.arrayBuffer();
        if (!res.ok && res.status !== 503) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t0);
      await sleep(params.healthIntervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        requests: sorted.length,
        failures,
        p50Ms: round1(percentile(sorted, 50)),
        p99Ms: round1(percentile(sorted, 99)),
        maxMs: round1(sorted.at(-1) ?? null),
      };
    },
  };
}

const memDelta = (a, b) => ({
  heapPlusExternalMB: round1((b.heapUsed + b.external - a.heapUsed - a.external) / MB),
  heapUsedMB: round1((b.heapUsed - a.heapUsed) / MB),
  externalMB: round1((b.external - a.external) / MB),
  arrayBuffersMB: round1((b.arrayBuffers - a.arrayBuffers) / MB),
  rssMB: round1((b.rss - a.rss) / MB),
});
const mem = (m) => ({
  heapUsedMB: round1(m.heapUsed / MB),
  externalMB: round1(m.external / MB),
  arrayBuffersMB: round1(m.arrayBuffers / MB),
  rssMB: round1(m.rss / MB),
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-export-'));
const logDir = path.join(tmp, 'logs');
mkdirSync(logDir);
const children = new Children({ cwd: ROOT, logDir });
const results = {};
const detail = {};
let failed = false;
let server;
try {
  log('starting the server');
  server = await startStoreServer(children);
  const { base, token, ask } = server;
  const pid = server.proc.pid;
  log(`filling the store: ${params.batches} batches of ${params.perBatch} records`);
  const filled = await ask('fill', { batches: params.batches, perBatch: params.perBatch, instrument: INSTRUMENT }, 600_000);
  const records = params.batches * params.perBatch;
  log(`  filled in ${filled.seconds.toFixed(1)} s`);
  const quiet = await waitForQuiet(30_000, 30);
  detail.machineBusyBeforePercent = quiet;

  // ---- idle: the event loop and /api/health with no export, for comparison
  await ask('loop', { on: true, resolutionMs: params.loopResolutionMs });
  const idleProbe = healthProbe(base);
  await sleep(3000);
  const idleHealth = await idleProbe.stop();
  const idleLoop = await ask('loop', { on: false });
  detail.idle = { eventLoop: idleLoop, health: idleHealth };
  log(`  idle: event loop max ${idleLoop.maxMs} ms p99 ${idleLoop.p99Ms} ms; health p99 ${idleHealth.p99Ms} ms`);

  // ---- one export at a time, read to the end
  const runs = [];
  for (let run = 0; run < params.runs; run++) {
    const file = run === 0 ? path.join(tmp, 'bundle.tar') : undefined;
    await ask('loop', { on: true, resolutionMs: params.loopResolutionMs });
    const probe = healthProbe(base);
    const others = othersCpu([pid]);
    const t0 = performance.now();
    const res = await get(base, token, EXPORT_PATH);
    if (res.statusCode !== 200) throw new Error(`export answered ${res.statusCode}`);
    const firstByteMs = performance.now() - t0;
    const bytes = await drain(res, file);
    const seconds = (performance.now() - t0) / 1000;
    const othersCpuPercent = others();
    const health = await probe.stop();
    const loop = await ask('loop', { on: false });
    const r = {
      bytes,
      seconds: Math.round(seconds * 1000) / 1000,
      firstByteMs: round1(firstByteMs),
      mbPerSecond: round1(bytes / MB / seconds),
      recordsPerSecond: Math.round(records / seconds),
      eventLoop: loop,
      health,
      othersCpuPercent,
    };
    runs.push(r);
    log(
      `  export ${run + 1}: ${(bytes / MB).toFixed(1)} MB in ${seconds.toFixed(2)} s (${r.mbPerSecond} MB/s, ${r.recordsPerSecond} records/s); ` +
        `event loop max ${loop.maxMs} ms p99 ${loop.p99Ms} ms; health p50 ${health.p50Ms} p99 ${health.p99Ms} max ${health.maxMs} ms (${health.requests} requests); ` +
        `others ${othersCpuPercent} % CPU`,
    );
    if (run === 0) {
      const into = path.join(tmp, 'x');
      mkdirSync(into);
      execFileSync('tar', ['-xf', file, '-C', into]);
      const [top] = readdirSync(into);
      const report = verifyBundle(readBundle(path.join(into, top ?? '')), {});
      if (report.status !== 'verified' || report.counts?.records !== records)
        throw new Error(
          `the exported bundle does not verify: ${report.status}, ${JSON.stringify(report.counts)}, ${JSON.stringify(report.problems).slice(0, 500)}`,
        );
      log(`  the first bundle verifies offline: ${report.counts.batches} batches, ${report.counts.records} records`);
      rmSync(into, { recursive: true, force: true });
      rmSync(file, { force: true });
    }
  }
  detail.runs = runs;

  // ---- paused downloads: started, not read
  const base0 = (await ask('mem', { gc: true })).memory;
  const base0NoGc = (await ask('mem', { gc: false })).memory;
  const rssPeakBefore = peakRssMiB(pid);
  await ask('loop', { on: true, resolutionMs: params.loopResolutionMs });
  const paused = await Promise.all(
    Array.from({ length: params.pausedDownloads }, async () => {
      const res = await get(base, token, EXPORT_PATH);
      res.pause();
      return res;
    }),
  );
  if (paused.some((res) => res.statusCode !== 200)) throw new Error(`a paused download answered ${paused.map((r) => r.statusCode).join(', ')}`);
  const pausedProbe = healthProbe(base);
  await sleep(params.pauseSeconds * 1000);
  const pausedHealth = await pausedProbe.stop();
  // the forced GC below would count as a delay: the paused stretch and the reading are measured apart
  const pausedLoop = await ask('loop', { on: false });
  const heldNoGc = (await ask('mem', { gc: false })).memory;
  const held = (await ask('mem', { gc: true })).memory;
  const rssPeakPaused = peakRssMiB(pid);
  log(`  ${params.pausedDownloads} paused downloads for ${params.pauseSeconds} s: server ${JSON.stringify(memDelta(base0, held))} (after GC)`);
  await ask('loop', { on: true, resolutionMs: params.loopResolutionMs });
  const t0 = performance.now();
  const sizes = await Promise.all(
    paused.map((res) => {
      const p = drain(res);
      res.resume();
      return p;
    }),
  );
  const resumeSeconds = (performance.now() - t0) / 1000;
  if (sizes.some((s) => s !== runs[0].bytes))
    throw new Error(`a paused download, once read, was incomplete: ${sizes.join(', ')} bytes of ${runs[0].bytes}`);
  const resumeLoop = await ask('loop', { on: false });
  const after = (await ask('mem', { gc: true })).memory;
  log(`  read to the end in ${resumeSeconds.toFixed(1)} s, each complete; server after: ${JSON.stringify(memDelta(base0, after))}`);
  detail.paused = {
    before: mem(base0),
    heldAfterGc: mem(held),
    heldNoGc: mem(heldNoGc),
    beforeNoGc: mem(base0NoGc),
    // garbage not yet collected counts here: it varies from run to run (8 to 80 MB seen), unlike the growth after GC
    growthNoGc: memDelta(base0NoGc, heldNoGc),
    afterReadAfterGc: mem(after),
    health: pausedHealth,
    eventLoop: pausedLoop,
    eventLoopWhileRead: resumeLoop,
    peakRssMiBBefore: round1(rssPeakBefore),
    peakRssMiBWhilePaused: round1(rssPeakPaused),
    resumeSeconds: round1(resumeSeconds),
  };

  // ---- the figures: the median run for throughput, the worst run for the event loop and /api/health
  const byTime = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = byTime[Math.floor(byTime.length / 2)];
  results.bundleMB = round1(runs[0].bytes / MB);
  results.records = records;
  results.mbPerSecond = median.mbPerSecond;
  results.recordsPerSecond = median.recordsPerSecond;
  results.firstByteMs = median.firstByteMs;
  results.eventLoopMaxMs = Math.max(...runs.map((r) => r.eventLoop.maxMs));
  results.eventLoopP99Ms = Math.max(...runs.map((r) => r.eventLoop.p99Ms));
  results.idleEventLoopMaxMs = idleLoop.maxMs;
  results.healthDuringExport = {
    p50Ms: Math.max(...runs.map((r) => r.health.p50Ms)),
    p99Ms: Math.max(...runs.map((r) => r.health.p99Ms)),
    maxMs: Math.max(...runs.map((r) => r.health.maxMs)),
    failures: runs.reduce((sum, r) => sum + r.health.failures, 0),
  };
  results.idleHealthP99Ms = idleHealth.p99Ms;
  results.paused = {
    downloads: params.pausedDownloads,
    seconds: params.pauseSeconds,
    growthAfterGc: memDelta(base0, held),
    healthP99Ms: pausedHealth.p99Ms,
    healthMaxMs: pausedHealth.maxMs,
    eventLoopMaxMs: pausedLoop.maxMs,
    eventLoopMaxMsWhileRead: resumeLoop.maxMs,
    peakRssGrowthMiB: round1(rssPeakPaused - rssPeakBefore),
  };
  results.othersCpuPercentMax = Math.max(...runs.map((r) => r.othersCpuPercent ?? 0));
  results.fillSamplesPerSecond = Math.round(filled.samples / filled.seconds);
  detail.rssPeakMiB = round1(peakRssMiB(pid));
} catch (err) {
  failed = true;
  console.error(`${NAME}: ${err instanceof Error ? err.stack : String(err)}`);
  children.printTails();
} finally {
  if (server && !failed) await stopStoreServer(children, server);
  else await children.killAllGracefully();
  // the server removes its data directory when it stops; not when it was killed
  if (server && failed) rmSync(server.dataDir, { recursive: true, force: true });
  const notes = [...(children.get('server')?.notes ?? new Map())].map(([msg, count]) => `server: ${msg} (x${count})`);
  if (notes.length > 0) detail.notes = notes;
  rmSync(tmp, { recursive: true, force: true });
}

if (!failed) {
  const file = writeResult(NAME, { params, results, detail });
  log(`wrote ${path.relative(process.cwd(), file)}`);
}
process.exit(failed ? 1 : 0);
