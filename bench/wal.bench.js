// Benchmark of the SQLite write-ahead log's size during ingest (server/src/store/database.ts: wal_autocheckpoint =
// 2000 pages, journal_size_limit = 8 MiB; server/src/store/capacity.ts: a WAL that stopped growing between two
// checks of free space is checkpointed and truncated): a real server in a child process (bench/lib/store-server.js:
// the test server and a test gateway) takes BENCH_WAL_BATCHES signed batches of BENCH_WAL_PER_BATCH samples over
// MQTT, one after the other (each publish waits for the broker's PUBACK), while this process reads the size of
// labtrace.sqlite-wal every 5 ms. Then the server is left idle for BENCH_WAL_IDLE_SECONDS (the free-space check runs
// every 5 s: the idle WAL is truncated at the second check that finds it unchanged).
//
//   peakWalMB          the largest WAL file seen during ingest
//   databaseMB         the database file once the WAL was copied into it (after the idle period)
//   walAfterIdleBytes  the WAL file at the end of the idle period (0: truncated), and when it was first seen at 0
//
// othersCpuPercent is what the rest of the machine used during ingest (% of one core).
// Environment: BENCH_WAL_BATCHES (360), BENCH_WAL_PER_BATCH (250), BENCH_WAL_IDLE_SECONDS (20).
// Writes bench/results/wal.json. Exits non-zero when the server dies or ingest does not complete.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { Children, sleep } from './lib/children.js';
import { othersCpu } from './lib/proc.js';
import { ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { startStoreServer, stopStoreServer } from './lib/store-control.js';

const NAME = 'wal';
const { envInt } = envReader(NAME);
const params = {
  batches: envInt('BENCH_WAL_BATCHES', 360, 1, 100_000),
  perBatch: envInt('BENCH_WAL_PER_BATCH', 250, 1, 10_000),
  idleSeconds: envInt('BENCH_WAL_IDLE_SECONDS', 20, 1, 600),
  pollMs: 5,
  walAutocheckpointPages: 2000,
  journalSizeLimitBytes: 8 * 2 ** 20,
  capacityCheckIntervalMs: 5000,
};

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const MB = 1e6;
const sizeOf = (file) => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-wal-'));
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
  const dbFile = path.join(server.dataDir, 'labtrace.sqlite');
  const walFile = `${dbFile}-wal`;
  const before = { db: sizeOf(dbFile), wal: sizeOf(walFile) };

  // the WAL's size, read every pollMs; a series of the largest per second
  let peakWal = 0;
  let secondPeak = 0;
  const perSecond = [];
  let second = 0;
  const started = performance.now();
  const poll = setInterval(() => {
    const wal = sizeOf(walFile);
    peakWal = Math.max(peakWal, wal);
    const s = Math.floor((performance.now() - started) / 1000);
    if (s !== second) {
      perSecond.push(round1(secondPeak / MB));
      secondPeak = 0;
      second = s;
    }
    secondPeak = Math.max(secondPeak, wal);
  }, params.pollMs);

  const samples = params.batches * params.perBatch;
  const others = othersCpu([server.proc.pid]);
  log(`ingest: ${params.batches} batches of ${params.perBatch} samples (${samples})`);
  const filled = await server.ask('fill', { batches: params.batches, perBatch: params.perBatch, instrument: 'wal-1' }, 900_000);
  const atEnd = { db: sizeOf(dbFile), wal: sizeOf(walFile) };
  const othersCpuPercent = others();
  log(
    `  ${filled.seconds.toFixed(1)} s (${Math.round(samples / filled.seconds)} samples/s); peak WAL ${(peakWal / MB).toFixed(1)} MB; ` +
      `at the end: database ${(atEnd.db / MB).toFixed(1)} MB, WAL ${(atEnd.wal / MB).toFixed(1)} MB`,
  );
  const peakDuringIngest = peakWal;

  log(`idle for ${params.idleSeconds} s`);
  const idleStart = performance.now();
  let zeroAfterMs = null;
  const idleSeries = [];
  while (performance.now() - idleStart < params.idleSeconds * 1000) {
    await children.guard(sleep(250));
    const wal = sizeOf(walFile);
    if (wal === 0 && zeroAfterMs === null) zeroAfterMs = performance.now() - idleStart;
    if (idleSeries.length < Math.floor((performance.now() - idleStart) / 1000)) idleSeries.push(wal);
  }
  clearInterval(poll);
  const afterIdle = { db: sizeOf(dbFile), wal: sizeOf(walFile) };
  log(
    `  after idle: WAL ${afterIdle.wal} bytes${zeroAfterMs === null ? '' : ` (0 after ${(zeroAfterMs / 1000).toFixed(1)} s)`}, database ${(afterIdle.db / MB).toFixed(1)} MB`,
  );

  results.samples = samples;
  results.peakWalMB = round1(peakDuringIngest / MB);
  results.databaseMB = round1(afterIdle.db / MB);
  results.peakWalPerDatabase = Math.round((peakDuringIngest / afterIdle.db) * 100) / 100;
  results.walAtEndOfIngestMB = round1(atEnd.wal / MB);
  results.walAfterIdleBytes = afterIdle.wal;
  results.walTruncatedAfterIdleSeconds = zeroAfterMs === null ? null : round1(zeroAfterMs / 1000);
  results.ingestSamplesPerSecond = Math.round(samples / filled.seconds);
  results.othersCpuPercent = othersCpuPercent;
  detail.sizes = { before, atEndOfIngest: atEnd, afterIdle };
  detail.peakWalMBPerSecond = perSecond;
  detail.idleWalBytesPerSecond = idleSeries;
} catch (err) {
  failed = true;
  console.error(`${NAME}: ${err instanceof Error ? err.stack : String(err)}`);
  children.printTails();
} finally {
  if (server && !failed) await stopStoreServer(children, server);
  else await children.killAllGracefully();
  // the server removes its data directory when it stops; not when it was killed
  if (server && failed) rmSync(server.dataDir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
}

if (!failed) {
  const file = writeResult(NAME, { params, results, detail });
  log(`wrote ${path.relative(process.cwd(), file)}`);
}
process.exit(failed ? 1 : 0);
