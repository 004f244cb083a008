// Benchmark of the offline verifier of export bundles (protocols/src/verify/verifier.ts), in this process on one core.
//
// The bundle is real: batches of signed records are sealed as a gateway seals them (sealBatch), stored in a temporary
// SQLite store as the server stores them (batch_headers with the records' bytes), their headers appended to a
// transparency log (TransparencyLog) and a checkpoint signed; exportBundle then writes the bundle, and the files are
// read into memory once. Timed: verifyBundle over the whole bundle (checkpoint, every signature, every record decoded
// and hashed, every Merkle root, every log inclusion proof, the sequence, the signed export statement and the boundaries, and records.jsonl parsed and compared field
// by field), which is what `labtrace verify` does after reading the files.
//   pure-js   the default crypto of the protocols package (@noble, what a browser runs)
//   node      Node's crypto installed as the command line installs it (useNodeCrypto)
// Also reported: the export's own rate, and `labtrace verify <dir>` as a process (with Node's start-up).
// Environment: BENCH_VERIFY_RECORDS (200000), BENCH_VERIFY_BATCH (1000 records per batch), BENCH_VERIFY_ROUNDS (5).
// Writes bench/results/verify.json. Exits non-zero when the bundle does not verify; a figure below its target is reported.
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ed25519 } from '@noble/curves/ed25519.js';
import * as trust from '../protocols/dist/src/index.js';
import { exportBundle } from '../server/dist/src/export/bundle.js';
import { readBundle } from '../server/dist/src/export/read-bundle.js';
import { TransparencyLog } from '../server/dist/src/log/transparency-log.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { LabDatabase } from '../server/dist/src/store/database.js';
import { ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { serverMigrations } from '../server/dist/src/migrations.js';

const NAME = 'verify';
const { envNumber } = envReader(NAME);
const GATEWAY = 'gw-bench';
const ORIGIN = 'labtrace.example/bench';
const TARGETS = { verifyRecordsPerSecond: 400_000 };

const params = {
  records: envNumber('BENCH_VERIFY_RECORDS', 200_000, 1000, 10_000_000),
  batchSize: envNumber('BENCH_VERIFY_BATCH', 1000, 1, 10_000),
  rounds: envNumber('BENCH_VERIFY_ROUNDS', 5, 1, 100),
  instruments: 50,
  channels: ['force', 'extension'],
  targets: TARGETS,
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- the bundle
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-verify-'));
const outDir = path.join(dataDir, 'bundle');
const database = new LabDatabase(dataDir, serverMigrations);
await database.migrate();
const logSigner = trust.parseSignerKey(trust.formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32))));
const transparencyLog = new TransparencyLog(database, { origin: ORIGIN, signer: logSigner, minCheckpointIntervalMs: 0 });
transparencyLog.open();
const gatewayKey = trust.parseSignerKey(trust.formatSignerKey(GATEWAY, new Uint8Array(randomBytes(32))));
const T0 = Date.UTC(2026, 0, 1);
database.sqlite
  .prepare("INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)")
  .run(GATEWAY, trust.toHex(gatewayKey.keyId), trust.formatVerifierKey(GATEWAY, gatewayKey.publicKey), T0);
const insert = database.sqlite.prepare(
  'INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash, records, indexed, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)',
);
const store = database.sqlite.transaction((signed, records) => {
  const index = transparencyLog.append('batch-header', [trust.canonicalBytes(signed)]);
  const { header } = signed;
  insert.run(
    GATEWAY,
    header.batch,
    header.firstSeq,
    header.count,
    JSON.stringify(header),
    signed.signature,
    Date.now(),
    trust.toBase64(trust.headerHash(header)),
    records,
    index,
  );
});
let started = performance.now();
let prev = null;
for (let batch = 0, seq = 0; seq < params.records; batch++) {
  const n = Math.min(params.batchSize, params.records - seq);
  const samples = Array.from({ length: n }, (_, i) => {
    const k = seq + i;
    return {
      seq: k,
      instrument: `inst-${k % params.instruments}`,
      channel: params.channels[k % params.channels.length],
      ts: T0 + Math.floor(k / params.instruments) * 10,
      value: Math.round(Math.random() * 1e6) / 1e3,
      unit: k % 2 === 0 ? 'kN' : 'mm',
      quality: 'good',
    };
  });
  const { signed, wire } = trust.sealBatch(gatewayKey, GATEWAY, batch, samples, prev);
  prev = trust.headerHash(signed.header);
  const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
  store(signed, Buffer.from(wire.subarray(8 + headerLength + 64 + 4)));
  seq += n;
}
transparencyLog.maybeCheckpoint();
log(
  `stored ${params.records} records in ${Math.ceil(params.records / params.batchSize)} batches in ${round1((performance.now() - started) / 1000)} s`,
);
started = performance.now();
const exported = await exportBundle(database, transparencyLog, { outDir, gateway: GATEWAY, from: T0, to: T0 + 365 * 86_400_000 });
const exportSeconds = (performance.now() - started) / 1000;
log(`exported ${exported.records} records in ${round1(exportSeconds)} s`);
await database.close();

const files = readBundle(outDir);
const bundleBytes = Object.values(files).reduce((n, text) => n + Buffer.byteLength(text), 0);

// ---------------------------------------------------------------- timing
function measure(label) {
  const times = [];
  let report;
  for (let round = 0; round < params.rounds + 1; round++) {
    const t = performance.now();
    report = trust.verifyBundle(files, {});
    const seconds = (performance.now() - t) / 1000;
    // the first round warms up
    if (round > 0) times.push(seconds);
    if (!report.ok) {
      console.error(`${NAME}: the bundle does not verify (${label}):\n${trust.formatReport(report)}`);
      process.exit(1);
    }
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const perSecond = report.counts.records / median;
  log(
    `${label}: ${report.counts.records} records verified in ${round1(median * 1000)} ms (median of ${times.length}) = ${Math.round(perSecond)} records/s`,
  );
  return { recordsPerSecond: Math.round(perSecond), medianSeconds: median, roundsSeconds: times };
}

// Node's crypto first, as `labtrace verify` runs (a fresh heap); then the pure-JavaScript defaults, as a browser runs
useNodeCrypto();
const node = measure('node');
trust.useSha256(undefined);
trust.useSha256Batch(undefined);
trust.useEd25519Verifier((signature, message, key) => ed25519.verify(signature, message, key, { zip215: false }));
const pureJs = measure('pure-js');

// the command line, as a process: Node's start-up, reading the files, verifying and printing
started = performance.now();
const cli = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'labtrace.js'), 'verify', outDir, '--json'], {
  encoding: 'utf8',
  maxBuffer: 64 * 2 ** 20,
});
const cliSeconds = (performance.now() - started) / 1000;
if (cli.status !== 0) {
  console.error(`${NAME}: labtrace verify exited with ${cli.status}: ${cli.stderr}`);
  process.exit(1);
}
log(`labtrace verify (a process): ${round1(cliSeconds * 1000)} ms for ${exported.records} records`);
if (!process.env.BENCH_KEEP) rmSync(dataDir, { recursive: true, force: true });

const results = {
  verifyRecordsPerSecond: node.recordsPerSecond,
  verifyRecordsPerSecondPureJs: pureJs.recordsPerSecond,
  cliRecordsPerSecond: Math.round(exported.records / cliSeconds),
  exportRecordsPerSecond: Math.round(exported.records / exportSeconds),
  bundleMiB: round1(bundleBytes / 2 ** 20),
  meetsTarget: node.recordsPerSecond >= TARGETS.verifyRecordsPerSecond,
  meetsTargetPureJs: pureJs.recordsPerSecond >= TARGETS.verifyRecordsPerSecond,
};
const file = writeResult(NAME, {
  params,
  results,
  detail: { pureJs, node, cliSeconds, exportSeconds, records: exported.records, batches: exported.batches },
});
log(`wrote ${file}`);
if (!results.meetsTarget) log(`below target: ${results.verifyRecordsPerSecond} < ${TARGETS.verifyRecordsPerSecond} records/s`);
