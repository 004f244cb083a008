// Benchmark of the trust code, in this process on one core: signed batches of measurement records as the
// gateway makes them and the server checks them, next to the naive design of one Ed25519 signature per record.
//
//   gateway signing      sealBatch, as the gateway's outbox calls it: record encoding into the wire form, leaf
//                        hashes, Merkle root, header JCS, one signature per batch
//   server verification  openBatch + verifyBatch, as the server's ingest calls them: the wire form decoded into
//                        records, leaf hashes over the received bytes, key id, header signature, sequence and time
//                        ranges, Merkle root
//   naive                one Node crypto signature per record (its canonical bytes), and one verify per record
//
// Both sides run with Node's crypto as the processes do: protocols' useNodeCrypto (the native batched SHA-256,
// Ed25519 through Node), and for the server a Node Ed25519 verifier (a KeyObject cached per public key).
// Verification is also measured with protocols' default (noble, pure JavaScript), and from record objects
// (verifyBatch re-encoding them, as the tests do); the time per batch is split into its parts (encoding, root,
// header signature) so that the figures show what dominates. Signing and verifying are measured once more
// without the native module (SHA-256 through Node's one-shot crypto.hash, one call per hash: what runs where the
// module could not be built), so the module's gain is a figure of the same run.
// Batches hold 1,000 records (instrument ids utm-01..utm-50, channels force and extension, float64 values,
// contiguous sequence numbers); 100 and 10,000 are measured too.
//
// Environment: BENCH_TRUST_SECONDS (3: measured time of each figure, split over the rounds), BENCH_TRUST_ROUNDS (3:
// the measurements run interleaved, round after round, and each figure is the median of its rounds),
// BENCH_TRUST_WARMUP_SECONDS (1, before each measurement of the first round), BENCH_TRUST_QUIET_WAIT_SECONDS (10:
// before each measurement, wait at most this long for the rest of the machine to use less than a quarter of a core).
// Rates are records per second of wall-clock time of this single-threaded loop. cpuPercent is this process in
// % of one core (about 100, a little more with the garbage collector's threads); othersCpuPercent is what the
// rest of the machine used meanwhile: on two cores, anything above a few % makes the figures low.
// Writes bench/results/trust.json. Exits non-zero when a check fails (a batch that does not verify, a forged
// one that does); a figure below its target is reported, not an error.
import { Buffer } from 'node:buffer';
import crypto, { createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { clockTicks, machineTicks, waitForQuiet } from './lib/proc.js';
import { round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'trust';
const { envNumber } = envReader(NAME);
const GATEWAY = 'gw-bench';
const SIZES = [100, 1000, 10_000];
const MAIN_SIZE = 1000;
/** records per naive measurement call, so that the clock is read once per this many signatures */
const NAIVE_CHUNK = 50;
/** the rest of the machine counts as quiet below this (% of one core) */
const QUIET_OTHERS_PERCENT = 25;
const TARGETS = { signRecordsPerSecond: 300_000, verifyRecordsPerSecond: 400_000 };
// DER prefixes of raw Ed25519 keys (RFC 8410): PKCS#8 before a 32-byte seed, SPKI before a 32-byte public key
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

const params = {
  seconds: envNumber('BENCH_TRUST_SECONDS', 3, 0.1, 600),
  rounds: envNumber('BENCH_TRUST_ROUNDS', 3, 1, 100),
  warmupSeconds: envNumber('BENCH_TRUST_WARMUP_SECONDS', 1, 0, 600),
  quietWaitSeconds: envNumber('BENCH_TRUST_QUIET_WAIT_SECONDS', 10, 0, 3600),
  batchSizes: SIZES,
  mainBatchSize: MAIN_SIZE,
  instruments: 50,
  channels: ['force', 'extension'],
  targets: TARGETS,
};

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const round0 = (x) => (x === null || !Number.isFinite(x) ? null : Math.round(x));
const round3 = (x) => (x === null || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000);

// ---------------------------------------------------------------- keys, crypto, data

const seed = new Uint8Array(randomBytes(32));
const publicKey = trust.publicKeyFromSeed(seed);
const signerKey = { name: GATEWAY, keyId: trust.ed25519KeyId(GATEWAY, publicKey), publicKey, seed };
const verifierKey = trust.parseVerifierKey(trust.formatVerifierKey(GATEWAY, publicKey));
const privateKeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
const publicKeyObject = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });

// the gateway's crypto: the native batched SHA-256 and Node's Ed25519 signing behind protocols' hooks
const hashing = useNodeCrypto();
/** What runs where the native module is not built: one Node crypto.hash call per SHA-256. */
function withoutNative() {
  trust.useSha256Batch(undefined);
  trust.useSha256((data) => {
    const digest = crypto.hash('sha256', data, 'buffer');
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  });
}

/** The server's verifier: Node's crypto, one KeyObject per public key, created once. */
const publicKeyObjects = new Map();
function nodeVerifier(signature, message, key) {
  const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
  let keyObject = publicKeyObjects.get(id);
  if (keyObject === undefined) {
    keyObject = createPublicKey({ key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' });
    publicKeyObjects.set(id, keyObject);
  }
  return verify(null, message, keyObject, signature);
}
const hasVerifierHook = typeof trust.useEd25519Verifier === 'function';
/** protocols' default verifier (noble, RFC 8032 rules), to install again after the Node one */
const nobleVerifier = (signature, message, key) => ed25519.verify(signature, message, key, { zip215: false });

/** Realistic records: 50 testing machines, two channels each, sampled at 1 kHz; contiguous sequence numbers. */
function makeSamples(firstSeq, count, t0) {
  const samples = new Array(count);
  const streams = params.instruments * 2;
  for (let i = 0; i < count; i++) {
    const seq = firstSeq + i;
    const slot = Math.floor(seq / 2);
    const channel = seq % 2 === 0 ? 'force' : 'extension';
    samples[i] = {
      seq,
      instrument: `utm-${String((slot % params.instruments) + 1).padStart(2, '0')}`,
      channel,
      ts: t0 + Math.floor(seq / streams),
      value: channel === 'force' ? 12.5 + Math.random() * 40 : Math.random() * 8.2,
      unit: channel === 'force' ? 'kN' : 'mm',
      quality: 'good',
    };
  }
  return samples;
}

/** `count` batches of `size` records each, contiguous across batches, signed and chained as the outbox does. */
function makeBatches(size, count) {
  const batches = [];
  const t0 = Date.now();
  let prev = null;
  for (let b = 0; b < count; b++) {
    const samples = makeSamples(b * size, size, t0);
    const { signed, wire } = trust.sealBatch(signerKey, GATEWAY, b, samples, prev);
    prev = trust.headerHash(signed.header);
    batches.push({ samples, signed: JSON.parse(JSON.stringify(signed)), wire });
  }
  return batches;
}

// ---------------------------------------------------------------- measuring

const clkTck = clockTicks();

/** CPU the rest of the machine used between two machineTicks() readings, in % of one core, given this process's share. */
function othersPercent(m0, m1, seconds, ownPercent) {
  if (m0 === null || m1 === null) return null;
  return round1(Math.max(0, ((m1.busy - m0.busy) / clkTck / seconds) * 100 - ownPercent));
}

/**
 * Calls fn(i) (i = 0, 1, 2, ...) for the warm-up, then for the measured time; fn does `units` units of work
 * per call. Returns units per second, microseconds per call, this process's CPU and the rest of the machine's,
 * in % of one core.
 */
async function measure(label, units, fn, measureSeconds, warmupSeconds) {
  await waitForQuiet(params.quietWaitSeconds * 1000, QUIET_OTHERS_PERCENT);
  let i = 0;
  const warmEnd = performance.now() + warmupSeconds * 1000;
  while (performance.now() < warmEnd) fn(i++);
  const cpu0 = process.cpuUsage();
  const m0 = machineTicks();
  const t0 = performance.now();
  const end = t0 + measureSeconds * 1000;
  let calls = 0;
  let now;
  do {
    fn(i++);
    calls++;
    now = performance.now();
  } while (now < end);
  const seconds = (now - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const m1 = machineTicks();
  const cpuPercent = ((cpu.user + cpu.system) / 1e6 / seconds) * 100;
  const result = {
    perSecond: round0((calls * units) / seconds),
    perCpuSecond: round0((calls * units) / ((cpu.user + cpu.system) / 1e6)),
    usPerCall: round1((seconds * 1e6) / calls),
    cpuPercent: round1(cpuPercent),
    othersCpuPercent: othersPercent(m0, m1, seconds, cpuPercent),
    calls,
  };
  log(
    `${label.padEnd(46)} ${String(result.perSecond).padStart(10)} /s  ${String(result.usPerCall).padStart(9)} us/call  ` +
      `cpu ${result.cpuPercent} %, others ${result.othersCpuPercent} %`,
  );
  return result;
}

/** The rounds of one measurement as one figure: the median rate (and its time per call), the CPU figures' mean and max. */
function combine(list, units) {
  const rates = list.map((r) => r.perSecond).sort((a, b) => a - b);
  const mid = rates.length >> 1;
  const perSecond = rates.length % 2 === 1 ? rates[mid] : Math.round((rates[mid - 1] + rates[mid]) / 2);
  const mean = (k) => round1(list.reduce((sum, r) => sum + (r[k] ?? 0), 0) / list.length);
  return {
    perSecond,
    usPerCall: round1((units / perSecond) * 1e6),
    rounds: rates,
    spreadPercent: round1(((rates.at(-1) - rates[0]) / perSecond) * 100),
    perCpuSecond: Math.round(mean('perCpuSecond')),
    cpuPercent: mean('cpuPercent'),
    othersCpuPercent: Math.max(...list.map((r) => r.othersCpuPercent ?? 0)),
    calls: list.reduce((sum, r) => sum + r.calls, 0),
  };
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

function expectThrow(fn, what) {
  let threw = false;
  try {
    fn();
  } catch {
    threw = true;
  }
  check(threw, what);
}

// ---------------------------------------------------------------- the run

async function run() {
  const notes = [];
  const pools = new Map(SIZES.map((size) => [size, makeBatches(size, Math.max(4, Math.ceil(40_000 / size)))]));
  const main = pools.get(MAIN_SIZE);
  log(
    `batches of ${SIZES.join(', ')} records; ${params.seconds} s per figure in ${params.rounds} rounds, after ${params.warmupSeconds} s of warm-up; ` +
      `verifier hook ${hasVerifierHook ? 'present' : 'ABSENT'}`,
  );

  const signAt = (pool) => {
    let prev = null;
    return (i) => {
      const { samples } = pool[i % pool.length];
      const { signed } = trust.sealBatch(signerKey, GATEWAY, i, samples, prev);
      prev = trust.headerHash(signed.header);
    };
  };
  // what the server's ingest does with a DATA payload
  const verifyAt = (pool) => (i) => {
    const { signed, samples, leaves } = trust.openBatch(pool[i % pool.length].wire);
    trust.verifyBatch(signed, samples, verifierKey, GATEWAY, leaves);
  };
  const verifyObjectsAt = (pool) => (i) => {
    const { samples, signed } = pool[i % pool.length];
    trust.verifyBatch(signed, samples, verifierKey, GATEWAY);
  };
  const encodeAt = (pool) => (i) => {
    for (const sample of pool[i % pool.length].samples) trust.encodeRecord(GATEWAY, signerKey.keyId, sample);
  };
  // the SHA-256 calls of a root of MAIN_SIZE records, without the rest: a leaf (0x00 || a record) and a node (0x01 || two hashes)
  const leafInput = new Uint8Array([0, ...trust.encodeRecord(GATEWAY, signerKey.keyId, main[0].samples[0])]);
  const nodeInput = new Uint8Array(65).fill(1);
  // the bounds of the records in the wire form of a batch of the main pool (all its batches have the same layout)
  const firstWire = trust.openBatch(main[0].wire);
  const recordsAt = main[0].wire.length - firstWire.records.length;
  const wireBounds = new Uint32Array(MAIN_SIZE + 1);
  {
    let k = 0;
    trust.readRecords(firstWire.records, (_r, start, end, index) => {
      wireBounds[index] = recordsAt + start;
      wireBounds[index + 1] = recordsAt + end;
      k++;
    });
    check(k === MAIN_SIZE, 'the main batch does not hold its records');
  }
  const hashFloor = () => {
    for (let k = 0; k < MAIN_SIZE; k++) {
      trust.sha256(leafInput);
      trust.sha256(nodeInput);
    }
  };
  const headerVerify = (i) => {
    const { signed } = main[i % main.length];
    if (!trust.verifyEd25519(trust.fromBase64(signed.signature), trust.canonicalBytes(signed.header), publicKey))
      throw new Error('header does not verify');
  };

  // ---- correctness first: every figure below is only worth something if these hold
  const checkVerifier = (which) => {
    for (const { samples, signed } of main.slice(0, 3)) trust.verifyBatch(signed, samples, verifierKey, GATEWAY);
    for (let k = 0; k < 3; k++) verifyAt(main)(k);
    const changed = main[0].wire.slice();
    changed[changed.length - 7] ^= 0x01; // a low bit of the last record's value
    expectThrow(() => {
      const opened = trust.openBatch(changed);
      trust.verifyBatch(opened.signed, opened.samples, verifierKey, GATEWAY, opened.leaves);
    }, `${which}: a wire batch with one changed bit verifies`);
    const { samples, signed } = main[0];
    const forged = { ...signed, signature: flipBit(signed.signature) };
    expectThrow(() => trust.verifyBatch(forged, samples, verifierKey, GATEWAY), `${which}: a batch with a flipped signature bit verifies`);
    const altered = samples.map((s, i) => (i === 500 ? { ...s, value: s.value + 1e-9 } : s));
    expectThrow(() => trust.verifyBatch(signed, altered, verifierKey, GATEWAY), `${which}: a batch with an altered value verifies`);
  };
  checkVerifier('noble');
  const naiveBytes = trust.encodeRecord(GATEWAY, signerKey.keyId, main[0].samples[0]);
  const naiveSig = sign(null, naiveBytes, privateKeyObject);
  check(verify(null, naiveBytes, publicKeyObject, naiveSig), 'naive: Node cannot verify its own record signature');
  check(trust.verifyEd25519(new Uint8Array(naiveSig), naiveBytes, publicKey), 'noble and Node disagree on a record signature');

  // ---- the measurements, run in rounds (each job a share of its time per round, jobs interleaved) so that a
  // passing load on the machine or a slower period of the virtual machine hits every figure alike; the median
  // of the rounds is the figure
  const flat = main.flatMap((b) => b.samples);
  const flatSigs = flat.map((s) => sign(null, trust.encodeRecord(GATEWAY, signerKey.keyId, s), privateKeyObject));
  const verifierName = hasVerifierHook ? 'node' : 'noble';
  const jobs = [
    { key: 'sign1000', label: `sealBatch, ${MAIN_SIZE} records`, units: MAIN_SIZE, fn: signAt(main) },
    {
      key: 'rootOnly',
      label: `root of ${MAIN_SIZE} records (encode+leaves+root)`,
      units: MAIN_SIZE,
      fn: (i) => trust.recordsRoot(GATEWAY, signerKey.keyId, main[i % main.length].samples),
    },
    { key: 'encodeOnly', label: `encode ${MAIN_SIZE} records (canonical bytes)`, units: MAIN_SIZE, fn: encodeAt(main) },
    { key: 'hashFloor', label: `2 x ${MAIN_SIZE} SHA-256 (leaf, node)`, units: MAIN_SIZE, fn: hashFloor },
    {
      key: 'hashSlicesOnly',
      label: `leaves of ${MAIN_SIZE} records, one batched call`,
      units: MAIN_SIZE,
      fn: (i) => trust.hashSlices(main[i % main.length].wire, wireBounds),
    },
    { key: 'hashFloorNoNative', label: `2 x ${MAIN_SIZE} SHA-256 (leaf, node), no native`, units: MAIN_SIZE, fn: hashFloor, sha: 'noNative' },
    {
      key: 'headerSign',
      label: 'header: JCS + Node sign',
      units: 1,
      fn: (i) => trust.signEd25519(trust.canonicalBytes(main[i % main.length].signed.header), seed),
    },
    {
      key: 'verify1000Noble',
      label: `open+verifyBatch, ${MAIN_SIZE} records, noble verifier`,
      units: MAIN_SIZE,
      fn: verifyAt(main),
      verifier: 'noble',
    },
    {
      key: 'verifyObjects',
      label: `verifyBatch from objects, ${MAIN_SIZE} records`,
      units: MAIN_SIZE,
      fn: verifyObjectsAt(main),
      verifier: hasVerifierHook ? 'node' : 'noble',
    },
    {
      key: 'openOnly',
      label: `openBatch (decode + leaves), ${MAIN_SIZE} records`,
      units: MAIN_SIZE,
      fn: (i) => trust.openBatch(main[i % main.length].wire),
    },
    { key: 'headerVerifyNoble', label: 'header: JCS + noble verify', units: 1, fn: headerVerify, verifier: 'noble' },
    ...(hasVerifierHook
      ? [
          {
            key: 'verify1000Node',
            label: `open+verifyBatch, ${MAIN_SIZE} records, Node verifier`,
            units: MAIN_SIZE,
            fn: verifyAt(main),
            verifier: 'node',
          },
          { key: 'headerVerifyNode', label: 'header: JCS + Node verify', units: 1, fn: headerVerify, verifier: 'node' },
        ]
      : []),
    {
      key: 'naiveSign',
      label: 'naive: encode + Node sign, per record',
      units: NAIVE_CHUNK,
      fn: (i) => {
        const from = (i * NAIVE_CHUNK) % flat.length;
        for (let k = from; k < from + NAIVE_CHUNK; k++)
          sign(null, trust.encodeRecord(GATEWAY, signerKey.keyId, flat[k % flat.length]), privateKeyObject);
      },
    },
    {
      key: 'naiveVerify',
      label: 'naive: encode + Node verify, per record',
      units: NAIVE_CHUNK,
      fn: (i) => {
        const from = (i * NAIVE_CHUNK) % flat.length;
        for (let k = from; k < from + NAIVE_CHUNK; k++) {
          const j = k % flat.length;
          if (!verify(null, trust.encodeRecord(GATEWAY, signerKey.keyId, flat[j]), publicKeyObject, flatSigs[j]))
            throw new Error(`record ${j} does not verify`);
        }
      },
    },
    ...SIZES.filter((size) => size !== MAIN_SIZE).flatMap((size) => [
      { key: `sign${size}`, label: `sealBatch, ${size} records`, units: size, fn: signAt(pools.get(size)) },
      {
        key: `verify${size}`,
        label: `open+verifyBatch, ${size} records, ${verifierName} verifier`,
        units: size,
        fn: verifyAt(pools.get(size)),
        verifier: verifierName,
      },
    ]),
    { key: 'signNoNative', label: `sealBatch, ${MAIN_SIZE} records, no native module`, units: MAIN_SIZE, fn: signAt(main), sha: 'noNative' },
    {
      key: 'verifyNoNative',
      label: `open+verifyBatch, ${MAIN_SIZE} records, no native module`,
      units: MAIN_SIZE,
      fn: verifyAt(main),
      sha: 'noNative',
      verifier: verifierName,
    },
  ];
  if (hasVerifierHook) {
    trust.useEd25519Verifier(nodeVerifier);
    checkVerifier('node');
  }
  const setUp = (job) => {
    useNodeCrypto(); // what the gateway and the server install
    if (hasVerifierHook) trust.useEd25519Verifier(job.verifier === 'node' ? nodeVerifier : nobleVerifier);
    if (job.sha === 'noNative') withoutNative();
  };
  const rounds = new Map(jobs.map((job) => [job.key, []]));
  for (let round = 0; round < params.rounds; round++) {
    log(`round ${round + 1} of ${params.rounds}`);
    for (const job of jobs) {
      setUp(job);
      const warmup = round === 0 ? params.warmupSeconds : Math.min(0.2, params.warmupSeconds);
      rounds.get(job.key).push(await measure(job.label, job.units, job.fn, params.seconds / params.rounds, warmup));
    }
  }
  useNodeCrypto();
  const m = Object.fromEntries([...rounds].map(([key, list]) => [key, combine(list, jobs.find((j) => j.key === key).units)]));
  const { sign1000, rootOnly, headerSign, verify1000Noble, headerVerifyNoble, naiveSign, naiveVerify } = m;
  const verify1000Node = m.verify1000Node ?? null;
  const headerVerifyNode = m.headerVerifyNode ?? null;

  const bySize = { signRecordsPerSecond: {}, verifyRecordsPerSecond: {} };
  for (const size of SIZES) {
    bySize.signRecordsPerSecond[size] = (size === MAIN_SIZE ? sign1000 : m[`sign${size}`]).perSecond;
    bySize.verifyRecordsPerSecond[size] = (size === MAIN_SIZE ? (verify1000Node ?? verify1000Noble) : m[`verify${size}`]).perSecond;
  }

  // ---- results
  const serverVerify = verify1000Node ?? verify1000Noble;
  const results = {
    gatewaySign: {
      recordsPerSecond: sign1000.perSecond,
      target: TARGETS.signRecordsPerSecond,
      pass: sign1000.perSecond >= TARGETS.signRecordsPerSecond,
      cpuPercent: sign1000.cpuPercent,
    },
    serverVerify: {
      recordsPerSecond: serverVerify.perSecond,
      target: TARGETS.verifyRecordsPerSecond,
      pass: serverVerify.perSecond >= TARGETS.verifyRecordsPerSecond,
      verifier: verify1000Node ? 'node' : 'noble',
      cpuPercent: serverVerify.cpuPercent,
    },
    serverVerifyNoble: { recordsPerSecond: verify1000Noble.perSecond },
    naive: { signRecordsPerSecond: naiveSign.perSecond, verifyRecordsPerSecond: naiveVerify.perSecond },
    batchOverNaive: {
      sign: round1(sign1000.perSecond / naiveSign.perSecond),
      verify: round1(serverVerify.perSecond / naiveVerify.perSecond),
    },
    bySize,
    splitUsPerBatch: {
      encodeRecords: m.encodeOnly.usPerCall,
      sha256Calls: m.hashFloor.usPerCall,
      sha256CallsNoNative: m.hashFloorNoNative.usPerCall,
      leavesBatched: m.hashSlicesOnly.usPerCall,
      openBatch: m.openOnly.usPerCall,
      root: rootOnly.usPerCall,
      headerSignNode: headerSign.usPerCall,
      headerVerifyNode: headerVerifyNode?.usPerCall ?? null,
      headerVerifyNoble: headerVerifyNoble.usPerCall,
      signBatch: sign1000.usPerCall,
      verifyBatchNode: verify1000Node?.usPerCall ?? null,
      verifyBatchNoble: verify1000Noble.usPerCall,
      verifyFromObjects: m.verifyObjects.usPerCall,
    },
    withoutNativeModule: {
      signRecordsPerSecond: m.signNoNative.perSecond,
      verifyRecordsPerSecond: m.verifyNoNative.perSecond,
      nativeGain: {
        sign: round1(sign1000.perSecond / m.signNoNative.perSecond),
        verify: round1(serverVerify.perSecond / m.verifyNoNative.perSecond),
      },
    },
    hashing,
    meetsTarget: sign1000.perSecond >= TARGETS.signRecordsPerSecond && serverVerify.perSecond >= TARGETS.verifyRecordsPerSecond,
  };
  if (!hasVerifierHook)
    notes.push(
      'protocols has no useEd25519Verifier hook: server verification is measured with noble (pure JavaScript); ' +
        'add useEd25519Verifier((signature, message, publicKey) => boolean) to protocols/src/trust/ed25519.ts',
    );
  const busy = Object.entries(m)
    .filter(([, r]) => r.othersCpuPercent > QUIET_OTHERS_PERCENT)
    .map(([k, r]) => `${k} (others up to ${r.othersCpuPercent} %)`);
  if (busy.length > 0)
    notes.push(
      `the rest of the machine was busy during ${busy.join(', ')}: on ${os.cpus().length} cores these figures are low; run again on a quiet machine`,
    );
  results.othersCpuPercentMax = Math.max(...Object.values(m).map((r) => r.othersCpuPercent));

  const share = (part, whole) => (whole ? round3(part / whole) : null);
  const detail = {
    units: {
      recordsPerSecond: 'records/s on one core (wall clock of a single-threaded loop)',
      splitUsPerBatch: `microseconds per batch of ${MAIN_SIZE} records (header parts: per header)`,
      batchOverNaive: 'ratio of records/s, batch design over one signature per record',
      cpuPercent: '% of one core used by this process during the measurement',
    },
    shares: {
      signSha256Calls: share(m.hashFloor.usPerCall, sign1000.usPerCall),
      signRoot: share(rootOnly.usPerCall, sign1000.usPerCall),
      signHeader: share(headerSign.usPerCall, sign1000.usPerCall),
      verifyRootNode: share(rootOnly.usPerCall, verify1000Node?.usPerCall),
      verifyHeaderNode: share(headerVerifyNode?.usPerCall, verify1000Node?.usPerCall),
      verifyRootNoble: share(rootOnly.usPerCall, verify1000Noble.usPerCall),
      verifyHeaderNoble: share(headerVerifyNoble.usPerCall, verify1000Noble.usPerCall),
    },
    headerSignaturesPerSecond: {
      nodeSign: headerSign.perSecond,
      nodeVerify: headerVerifyNode?.perSecond ?? null,
      nobleVerify: headerVerifyNoble.perSecond,
    },
    measurements: m,
    notes,
  };
  writeResult(NAME, { params: { ...params, verifierHook: hasVerifierHook }, results, detail });
  printTable(results);
  for (const note of notes) log(`note: ${note}`);
  log(`wrote bench/results/${NAME}.json`);
}

function printTable(r) {
  const fmt = (x) => (x === null || x === undefined ? '-' : typeof x === 'number' ? x.toLocaleString('en-US') : String(x));
  const rows = [
    ['figure', 'value', 'unit', 'target', 'pass'],
    [
      `gateway sealBatch (${MAIN_SIZE})`,
      r.gatewaySign.recordsPerSecond,
      'records/s',
      `>= ${fmt(r.gatewaySign.target)}`,
      r.gatewaySign.pass ? 'yes' : 'NO',
    ],
    [
      `server open+verifyBatch (${MAIN_SIZE}, ${r.serverVerify.verifier})`,
      r.serverVerify.recordsPerSecond,
      'records/s',
      `>= ${fmt(r.serverVerify.target)}`,
      r.serverVerify.pass ? 'yes' : 'NO',
    ],
    [`server open+verifyBatch (${MAIN_SIZE}, noble)`, r.serverVerifyNoble.recordsPerSecond, 'records/s', '', ''],
    ['naive: sign per record (Node)', r.naive.signRecordsPerSecond, 'records/s', '', ''],
    ['naive: verify per record (Node)', r.naive.verifyRecordsPerSecond, 'records/s', '', ''],
    ['batch / naive, signing', r.batchOverNaive.sign, 'x', '', ''],
    ['batch / naive, verification', r.batchOverNaive.verify, 'x', '', ''],
    ...SIZES.map((size) => [`signBatch, batch of ${size}`, r.bySize.signRecordsPerSecond[size], 'records/s', '', '']),
    ...SIZES.map((size) => [`verifyBatch, batch of ${size}`, r.bySize.verifyRecordsPerSecond[size], 'records/s', '', '']),
    [`encode ${MAIN_SIZE} records`, r.splitUsPerBatch.encodeRecords, 'us/batch', '', ''],
    [`2 x ${MAIN_SIZE} SHA-256 calls`, r.splitUsPerBatch.sha256Calls, 'us/batch', '', ''],
    [`2 x ${MAIN_SIZE} SHA-256 calls, no native module`, r.splitUsPerBatch.sha256CallsNoNative, 'us/batch', '', ''],
    [`leaves of ${MAIN_SIZE} records, one batched call`, r.splitUsPerBatch.leavesBatched, 'us/batch', '', ''],
    [`openBatch of ${MAIN_SIZE} records (decode + leaves)`, r.splitUsPerBatch.openBatch, 'us/batch', '', ''],
    [`verifyBatch from ${MAIN_SIZE} record objects`, r.splitUsPerBatch.verifyFromObjects, 'us/batch', '', ''],
    [`root of ${MAIN_SIZE} records (all of it)`, r.splitUsPerBatch.root, 'us/batch', '', ''],
    ['header JCS + sign (Node)', r.splitUsPerBatch.headerSignNode, 'us/batch', '', ''],
    ['header JCS + verify (Node)', r.splitUsPerBatch.headerVerifyNode, 'us/batch', '', ''],
    ['header JCS + verify (noble)', r.splitUsPerBatch.headerVerifyNoble, 'us/batch', '', ''],
    ['sealBatch, no native module', r.withoutNativeModule.signRecordsPerSecond, 'records/s', '', ''],
    ['open+verifyBatch, no native module', r.withoutNativeModule.verifyRecordsPerSecond, 'records/s', '', ''],
  ].map((row) => row.map(fmt));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log('');
}

function flipBit(base64) {
  const bytes = trust.fromBase64(base64);
  bytes[10] ^= 0x01;
  return trust.toBase64(bytes);
}

try {
  await run();
} catch (err) {
  console.error(`${NAME}: FAILED: ${err.stack ?? err.message}`);
  process.exit(1);
}
