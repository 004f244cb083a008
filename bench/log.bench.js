// Benchmark of the server's transparency log (server/src/log/transparency-log.ts) on a real SQLite store, in this
// process on one core, with Node's crypto as the server installs it (useNodeCrypto):
//
//   append       entries of ~300 bytes, 1,000 per append (one durable transaction each, synchronous = FULL as the
//                server runs), maybeCheckpoint() after each: with the default interval (a checkpoint at most every
//                second) and with a checkpoint after every transaction (worst case); once more with synchronous =
//                NORMAL, to show what the flush of each commit costs on this disk
//   proofs       inclusion proofs (random index, tree size = the log's size) and consistency proofs (random older
//                size to the log's size) from a log of 1,000,000 entries; a sample of them is verified against the
//                signed checkpoint outside the timed loop
//   open         reopening the 1,000,000-entry log (CompactTree restored from the stored hashes, checkpoint checked)
//
// The 1,000,000-entry log is built with synchronous = OFF and 50,000 entries per transaction, which is fast and
// changes nothing in what is stored.
// Environment: BENCH_LOG_SECONDS (3, at least 2 so that a checkpoint falls inside: measured time of each figure), BENCH_LOG_ENTRIES (1000000: size of the proof log).
// Writes bench/results/log.json. Exits non-zero when a proof does not verify; a figure below its target is reported.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { LabDatabase } from '../server/dist/src/store/database.js';
import { TransparencyLog } from '../server/dist/src/log/transparency-log.js';
import { round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { serverMigrations } from '../server/dist/src/migrations.js';

const NAME = 'log';
const { envNumber } = envReader(NAME);
const ORIGIN = 'labtrace.example/bench';
const TARGETS = { appendEntriesPerSecond: 50_000, inclusionProofsPerSecond: 20_000, consistencyProofsPerSecond: 20_000 };

const params = {
  seconds: envNumber('BENCH_LOG_SECONDS', 3, 2, 600),
  proofLogEntries: envNumber('BENCH_LOG_ENTRIES', 1_000_000, 1000, 100_000_000),
  entryBytes: 300,
  entriesPerTransaction: 1000,
  buildEntryBytes: 100,
  buildEntriesPerTransaction: 50_000,
  targets: TARGETS,
};

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const round0 = (x) => (x === null || !Number.isFinite(x) ? null : Math.round(x));

useNodeCrypto();
const signer = trust.parseSignerKey(trust.formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32))));
const verifier = trust.ed25519NoteVerifier(trust.formatVerifierKey(ORIGIN, signer.publicKey));
const dirs = [];
let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

async function openLog(dir, options = {}) {
  const database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
  const transparencyLog = new TransparencyLog(database, { origin: ORIGIN, signer, ...options });
  transparencyLog.open();
  return { database, transparencyLog };
}

function tempDir() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-log-'));
  dirs.push(dir);
  return dir;
}

/** Entries like batch headers: ~300 bytes of JSON-ish text, each different. */
function makeEntries(first, count, size) {
  const pad = 'x'.repeat(size);
  const entries = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = Buffer.from(`{"entry":${first + i},"pad":"${pad}"}`.slice(0, size - 2) + '"}');
  return entries;
}

/** Appends for `seconds`; entries/s over the wall-clock time, checkpoints included. */
async function appendRate(minCheckpointIntervalMs, synchronous = 'FULL') {
  const { database, transparencyLog } = await openLog(tempDir(), { minCheckpointIntervalMs });
  database.sqlite.pragma(`synchronous = ${synchronous}`);
  // the entries are made beforehand, so that only the log is measured
  const pool = Array.from({ length: 20 }, (_, k) => makeEntries(k * params.entriesPerTransaction, params.entriesPerTransaction, params.entryBytes));
  let appended = 0;
  let checkpoints = 0;
  let round = 0;
  const started = performance.now();
  const until = started + params.seconds * 1000;
  while (performance.now() < until) {
    transparencyLog.append('batch-header', pool[round++ % pool.length]);
    appended += params.entriesPerTransaction;
    if (transparencyLog.maybeCheckpoint()) checkpoints++;
  }
  const seconds = (performance.now() - started) / 1000;
  sampleRss();
  const checkpoint = trust.openCheckpoint(transparencyLog.checkpoint(), [verifier], { origin: ORIGIN }).checkpoint;
  // the last appends may be within the interval of the latest checkpoint
  if (checkpoint.size === 0 || checkpoint.size > appended) throw new Error(`the latest checkpoint has size ${checkpoint.size} of ${appended}`);
  await database.close();
  return { entriesPerSecond: round0(appended / seconds), entries: appended, checkpoints, seconds: round1(seconds) };
}

/** Calls `fn` in a loop for `seconds`; calls/s. */
function rate(fn) {
  const started = performance.now();
  const until = started + params.seconds * 1000;
  let calls = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
  }
  return calls / ((performance.now() - started) / 1000);
}

const results = {};
const detail = {};
let failed = false;
try {
  log(`append: ${params.entryBytes}-byte entries, ${params.entriesPerTransaction} per transaction, ${params.seconds} s each`);
  const defaultInterval = await appendRate(1000);
  log(`  checkpoint at most every 1 s: ${defaultInterval.entriesPerSecond} entries/s (${defaultInterval.checkpoints} checkpoints)`);
  const everyTx = await appendRate(0);
  log(`  checkpoint after every transaction: ${everyTx.entriesPerSecond} entries/s (${everyTx.checkpoints} checkpoints)`);

  const normal = await appendRate(1000, 'NORMAL');
  log(`  with synchronous = NORMAL (no flush per commit), checkpoint at most every 1 s: ${normal.entriesPerSecond} entries/s`);

  log(`building a log of ${params.proofLogEntries} entries`);
  const dir = tempDir();
  // no minimum interval: the checkpoint signed after the build is of the whole log, however fast it was built
  let { database, transparencyLog } = await openLog(dir, { minCheckpointIntervalMs: 0 });
  database.sqlite.pragma('synchronous = OFF');
  const buildStarted = performance.now();
  for (let first = 0; first < params.proofLogEntries; first += params.buildEntriesPerTransaction) {
    const count = Math.min(params.buildEntriesPerTransaction, params.proofLogEntries - first);
    transparencyLog.append('batch-header', makeEntries(first, count, params.buildEntryBytes));
  }
  transparencyLog.maybeCheckpoint();
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  sampleRss();
  await database.close();
  const dbBytes = ['labtrace.sqlite', 'labtrace.sqlite-wal'].reduce((sum, f) => {
    try {
      return sum + statSync(path.join(dir, f)).size;
    } catch {
      return sum;
    }
  }, 0);
  log(`  built in ${buildSeconds.toFixed(1)} s, ${(dbBytes / 2 ** 20).toFixed(0)} MiB`);

  const openStarted = performance.now();
  ({ database, transparencyLog } = await openLog(dir));
  const openMs = performance.now() - openStarted;
  const size = transparencyLog.size;
  const { rootHash } = trust.openCheckpoint(transparencyLog.checkpoint(), [verifier], { origin: ORIGIN }).checkpoint;

  // the proofs are checked first, outside the timed loops
  let seed = 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let k = 0; k < 2000; k++) {
    const index = Math.floor(random() * size);
    const entry = transparencyLog.entries(index, index + 1)[0];
    trust.verifyInclusion(trust.leafHash(entry.data), index, size, transparencyLog.inclusionProof(index, size), rootHash);
    const from = 1 + Math.floor(random() * (size - 1));
    trust.verifyConsistency(from, size, transparencyLog.root(from), rootHash, transparencyLog.consistencyProof(from, size));
  }
  log(`  2000 inclusion and 2000 consistency proofs verified against the checkpoint (size ${size})`);

  const inclusion = rate(() => transparencyLog.inclusionProof(Math.floor(random() * size), size));
  log(`  inclusion proofs: ${round0(inclusion)}/s`);
  const consistency = rate(() => transparencyLog.consistencyProof(1 + Math.floor(random() * (size - 1)), size));
  log(`  consistency proofs: ${round0(consistency)}/s`);
  // a cold cache: proofs right after open, before the top levels are cached
  await database.close();
  ({ database, transparencyLog } = await openLog(dir));
  const coldStarted = performance.now();
  for (let k = 0; k < 1000; k++) transparencyLog.inclusionProof(Math.floor(random() * size), size);
  const coldPerSecond = 1000 / ((performance.now() - coldStarted) / 1000);
  sampleRss();
  await database.close();

  results.appendEntriesPerSecond = defaultInterval.entriesPerSecond;
  results.appendEntriesPerSecondCheckpointEveryTransaction = everyTx.entriesPerSecond;
  results.appendEntriesPerSecondSynchronousNormal = normal.entriesPerSecond;
  results.inclusionProofsPerSecond = round0(inclusion);
  results.consistencyProofsPerSecond = round0(consistency);
  results.inclusionProofsPerSecondFirst1000AfterOpen = round0(coldPerSecond);
  results.buildEntriesPerSecond = round0(params.proofLogEntries / buildSeconds);
  results.openMs = round1(openMs);
  results.peakRssMiB = round1(peakRss / 2 ** 20);
  results.targetsMet = {
    append: defaultInterval.entriesPerSecond >= TARGETS.appendEntriesPerSecond,
    inclusion: inclusion >= TARGETS.inclusionProofsPerSecond,
    consistency: consistency >= TARGETS.consistencyProofsPerSecond,
  };
  detail.append = { checkpointEverySecond: defaultInterval, checkpointEveryTransaction: everyTx, synchronousNormal: normal };
  detail.proofLog = { entries: size, buildSeconds: round1(buildSeconds), dbMiB: round1(dbBytes / 2 ** 20) };
} catch (err) {
  failed = true;
  console.error(`${NAME}: ${err instanceof Error ? err.stack : String(err)}`);
} finally {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

if (!failed) {
  const file = writeResult(NAME, { params, results, detail });
  log(`wrote ${path.relative(process.cwd(), file)}`);
  for (const [k, v] of Object.entries(results.targetsMet)) if (!v) log(`below target: ${k}`);
}
process.exit(failed ? 1 : 0);
