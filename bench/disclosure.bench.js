// Benchmark of a client's selective-disclosure bundle (server/src/export/disclosure.ts, verified by
// protocols/src/verify/checks/disclosure.ts), in this process. Target (issue 19): the bundle of a one-hour
// run at 50 samples/s (180,000 records) verifies in under 1 s.
//
// The data is real: the run's instrument and another customer's instrument on the same gateway, each at 50 samples/s
// for an hour, so that every signed batch holds both customers' records; batches close after BATCH_MS of samples, as
// the gateway's batch.maxDelayMs does (its default is 200 ms); sealed as a gateway seals them, stored in a temporary
// SQLite store as the server stores them, their headers appended to a transparency log and a checkpoint signed. The
// bundle of the run is then made by the server's code, with every record carrying a `reason` (one in ten) redacted.
// Timed: the verification of the bundle's text (JSON parsing, every gateway signature, every log inclusion, every
// record checked and hashed, every batch's multi-leaf proof, the statement) as `labtrace verify` runs it
// (verifyDisclosureInParallel: Node's crypto, the signatures on worker threads), the same on one thread
// (verifyDisclosure, the browser's path, with Node's crypto), and `labtrace verify <file>` as a process. The baseline, measured in the same run: the full export
// bundle of the same batches (both customers' records) through verifyBundle, whose figure on a quiet machine is known
// (bench/results/verify.json), so that a loaded machine shows as such.
// One scenario per batch window in BENCH_DISCLOSURE_BATCH_MS (a comma-separated list, default "200,1000": the
// gateway's default and one-second batches), since the batches' signatures are most of the verifier's work.
// Environment: BENCH_DISCLOSURE_SECONDS (3600), BENCH_DISCLOSURE_RATE (50 samples/s per instrument),
// BENCH_DISCLOSURE_BATCH_MS ("200,1000"), BENCH_DISCLOSURE_ROUNDS (5).
// Writes bench/results/disclosure.json. Exits non-zero when a bundle does not verify.
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { useNodeCrypto, verifyDisclosureInParallel } from '../protocols/dist/src/node/index.js';
import { exportBundle } from '../server/dist/src/export/bundle.js';
import { disclosureBundle } from '../server/dist/src/export/disclosure.js';
import { readBundle } from '../server/dist/src/export/read-bundle.js';
import { TransparencyLog } from '../server/dist/src/log/transparency-log.js';
import { serverMigrations } from '../server/dist/src/migrations.js';
import { LabDatabase } from '../server/dist/src/store/database.js';
import { envReader } from './lib/env.js';
import { ROOT, round1, writeResult } from './lib/result.js';

const NAME = 'disclosure';
const { envInt } = envReader(NAME);
const GATEWAY = 'gw-bench';
const ORIGIN = 'labtrace.example/bench';
const TARGET_SECONDS = 1;
const windows = (process.env.BENCH_DISCLOSURE_BATCH_MS || '200,1000').split(',').map((w) => {
  const n = Number(w);
  if (!Number.isInteger(n) || n < 20 || n > 60_000) {
    console.error(`${NAME}: BENCH_DISCLOSURE_BATCH_MS: expected whole milliseconds 20-60000, comma-separated, got "${w}"`);
    process.exit(2);
  }
  return n;
});
const params = {
  seconds: envInt('BENCH_DISCLOSURE_SECONDS', 3600, 1, 86_400),
  ratePerInstrument: envInt('BENCH_DISCLOSURE_RATE', 50, 1, 10_000),
  batchMs: windows,
  rounds: envInt('BENCH_DISCLOSURE_ROUNDS', 5, 1, 100),
  redact: ['reason'],
  reasonEvery: 10,
  targetSeconds: TARGET_SECONDS,
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
useNodeCrypto();

const T0 = Date.UTC(2026, 0, 1);
const periodMs = 1000 / params.ratePerInstrument;

/** Stores an hour of both instruments in batches of `batchMs`; returns the database, log and the run. */
async function store(dataDir, batchMs) {
  const database = new LabDatabase(dataDir, serverMigrations);
  await database.migrate();
  const logSigner = trust.parseSignerKey(trust.formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32))));
  const transparencyLog = new TransparencyLog(database, { origin: ORIGIN, signer: logSigner, minCheckpointIntervalMs: 0 });
  transparencyLog.open();
  const gatewayKey = trust.parseSignerKey(trust.formatSignerKey(GATEWAY, new Uint8Array(randomBytes(32))));
  database.sqlite
    .prepare("INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)")
    .run(GATEWAY, trust.toHex(gatewayKey.keyId), trust.formatVerifierKey(GATEWAY, gatewayKey.publicKey), T0);
  const insert = database.sqlite.prepare(
    'INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash, records, indexed, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)',
  );
  const put = (signed, records) => {
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
  };
  const samplesPerInstrument = params.seconds * params.ratePerInstrument;
  let prev = null;
  let seq = 0;
  let batch = 0;
  let pending = [];
  const flush = () => {
    if (pending.length === 0) return;
    const { signed, wire } = trust.sealBatch(gatewayKey, GATEWAY, batch++, pending, prev);
    prev = trust.headerHash(signed.header);
    const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
    put(signed, Buffer.from(wire.subarray(8 + headerLength + 64 + 4)));
    pending = [];
  };
  const inTransaction = database.sqlite.transaction((from, to) => {
    for (let k = from; k < to; k++) {
      const ts = T0 + Math.floor(k * periodMs);
      if (pending.length > 0 && ts - pending[0].ts >= batchMs) flush();
      for (const instrument of ['ut-run', 'ut-other']) {
        const s = { seq: seq++, instrument, channel: 'force', ts, value: Math.round(Math.random() * 1e6) / 1e3, unit: 'kN', quality: 'good' };
        pending.push(k % params.reasonEvery === 0 ? { ...s, quality: 'uncertain', reason: `operator note ${k} (${instrument})` } : s);
      }
    }
  });
  for (let k = 0; k < samplesPerInstrument; k += 10_000) inTransaction(k, Math.min(samplesPerInstrument, k + 10_000));
  database.sqlite.transaction(flush)();
  transparencyLog.maybeCheckpoint();
  const run = { id: 'run-bench', instruments: [{ id: 'ut-run', gateway: GATEWAY }], ranges: [{ gateway: GATEWAY, firstSeq: 0, lastSeq: seq - 1 }] };
  return { database, transparencyLog, run, batches: batch, records: seq };
}

async function scenario(batchMs) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-disclosure-'));
  try {
    let started = performance.now();
    const { database, transparencyLog, run, batches, records } = await store(dataDir, batchMs);
    log(
      `batches of ${batchMs} ms: stored ${records} records of two customers in ${batches} batches in ${round1((performance.now() - started) / 1000)} s`,
    );
    started = performance.now();
    const bundle = await disclosureBundle(database.db, transparencyLog, run, params.redact);
    const buildSeconds = (performance.now() - started) / 1000;
    // the baseline, in the same run on the same machine: the full export bundle of the same batches (both customers)
    const fullDir = path.join(dataDir, 'full');
    await exportBundle(database, transparencyLog, { outDir: fullDir, gateway: GATEWAY, from: T0, to: T0 + 2 * params.seconds * 1000 });
    await database.close();
    const fullFiles = readBundle(fullDir);
    const bytes = Buffer.byteLength(bundle.text);
    log(
      `bundle of run: ${bundle.records} records (${bundle.redacted} with the reason redacted) in ${bundle.batches} batches, ${round1(bytes / 2 ** 20)} MiB, made in ${round1(buildSeconds)} s`,
    );
    // timed twice: as `labtrace verify` runs it (signatures on worker threads), and on this thread alone (as the
    // browser's verifier runs, with Node's crypto in place of the browser's); CPU time counts every thread
    const timed = async (verify) => {
      const times = [];
      const cpuTimes = [];
      let report;
      for (let round = 0; round < params.rounds + 1; round++) {
        const t = performance.now();
        const cpu = process.cpuUsage();
        report = await verify();
        const seconds = (performance.now() - t) / 1000;
        const used = process.cpuUsage(cpu);
        // the first round warms up
        if (round > 0) {
          times.push(seconds);
          cpuTimes.push((used.user + used.system) / 1e6);
        }
        if (!report.ok) {
          console.error(`${NAME}: the bundle does not verify:\n${trust.formatReport(report)}`);
          process.exit(1);
        }
      }
      const rounds = times.map((t) => round1(t * 1000));
      times.sort((a, b) => a - b);
      cpuTimes.sort((a, b) => a - b);
      return { report, median: times[Math.floor(times.length / 2)], cpuMedian: cpuTimes[Math.floor(cpuTimes.length / 2)], rounds };
    };
    const { report, median, cpuMedian, rounds: verifyRounds } = await timed(() => verifyDisclosureInParallel(bundle.text));
    const single = await timed(() => trust.verifyDisclosure(bundle.text));
    const fullTimes = [];
    for (let round = 0; round < params.rounds + 1; round++) {
      const t = performance.now();
      const full = trust.verifyBundle(fullFiles, {});
      if (round > 0) fullTimes.push((performance.now() - t) / 1000);
      if (!full.ok) {
        console.error(`${NAME}: the full bundle does not verify:\n${trust.formatReport(full)}`);
        process.exit(1);
      }
    }
    fullTimes.sort((a, b) => a - b);
    const fullMedian = fullTimes[Math.floor(fullTimes.length / 2)];
    // verifying the gateways' signatures alone, on this machine now: the floor of the verifier's time
    const signatures = [];
    for (const line of bundle.text.matchAll(/"header":(\{[^}]*\}),"signature":"([^"]+)"/g))
      signatures.push([trust.canonicalBytes(JSON.parse(line[1])), trust.fromBase64(line[2])]);
    const key = trust.parseVerifierKey(JSON.parse(bundle.text).keys.gateways[0].verifierKey);
    const t0 = performance.now();
    for (const [message, signature] of signatures) trust.verifyEd25519(signature, message, key.publicKey);
    const signaturesMs = performance.now() - t0;
    log(
      `batches of ${batchMs} ms: baseline, the full export bundle of the same batches (${records} records): verified in ${round1(fullMedian * 1000)} ms`,
    );
    log(
      `batches of ${batchMs} ms: verified ${report.counts.records} records, ${report.counts.signaturesVerified} signatures in ${round1(median * 1000)} ms (median of ${verifyRounds.length}; ${round1(cpuMedian * 1000)} ms of CPU; the signatures alone ${round1(signaturesMs)} ms)`,
    );
    log(
      `batches of ${batchMs} ms: on one thread (the browser's path): ${round1(single.median * 1000)} ms (${round1(single.cpuMedian * 1000)} ms of CPU)`,
    );
    const file = path.join(dataDir, 'run.json');
    writeFileSync(file, bundle.text);
    started = performance.now();
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'labtrace.js'), 'verify', file, '--json'], {
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
    });
    const cliSeconds = (performance.now() - started) / 1000;
    if (cli.status !== 0) {
      console.error(`${NAME}: labtrace verify exited with ${cli.status}: ${cli.stderr}`);
      process.exit(1);
    }
    log(`labtrace verify <file> (a process): ${round1(cliSeconds * 1000)} ms`);
    return {
      batchMs,
      storedBatches: batches,
      storedRecords: records,
      records: bundle.records,
      redactedRecords: bundle.redacted,
      bundleBatches: bundle.batches,
      bundleMiB: round1(bytes / 2 ** 20),
      buildSeconds: round1(buildSeconds * 10) / 10,
      verifyMs: round1(median * 1000),
      verifyCpuMs: round1(cpuMedian * 1000),
      verifySingleThreadMs: round1(single.median * 1000),
      verifySingleThreadCpuMs: round1(single.cpuMedian * 1000),
      threads: os.availableParallelism(),
      signaturesOnlyMs: round1(signaturesMs),
      baselineFullBundleMs: round1(fullMedian * 1000),
      baselineFullBundleRecords: records,
      loadAverage: os.loadavg().map(round1),
      verifyRoundsMs: verifyRounds,
      verifySingleThreadRoundsMs: single.rounds,
      cliMs: round1(cliSeconds * 1000),
      meetsTarget: median < TARGET_SECONDS,
    };
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(dataDir, { recursive: true, force: true });
  }
}

const scenarios = [];
for (const w of windows) scenarios.push(await scenario(w));
const results = Object.fromEntries(
  scenarios.flatMap((s) => [
    [`verifyMs_${s.batchMs}ms`, s.verifyMs],
    [`verifyCpuMs_${s.batchMs}ms`, s.verifyCpuMs],
    [`meetsTarget_${s.batchMs}ms`, s.meetsTarget],
    [`verifySingleThreadMs_${s.batchMs}ms`, s.verifySingleThreadMs],
  ]),
);
const file = writeResult(NAME, { params, results, detail: { scenarios } });
log(`wrote ${file}`);
for (const s of scenarios) if (!s.meetsTarget) log(`batches of ${s.batchMs} ms: ${s.verifyMs} ms, above the target of ${TARGET_SECONDS * 1000} ms`);
