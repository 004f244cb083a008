// Benchmark of the supervisor's compliance rules over a synthetic year of one lab's evidence: 10 million records
// (in signed batches of BENCH_SUPERVISOR_BATCH, each a batch-header entry of the log), 50,000 runs, 50,000
// certificates (each an issue entry of the log), 20 instruments with their calibrations and alarms of some runs,
// with a few violations seeded (gaps, self-approved reports, an expired calibration, batches after a key revocation) so that findings are made.
// Two figures: the rules over the evidence in memory, and the whole check as the supervisor runs it (the evidence
// read from its store and parsed, then the rules). Target (issue 19): every check under 60 s.
//
// Environment: BENCH_SUPERVISOR_RECORDS (10,000,000), BENCH_SUPERVISOR_RUNS (50,000), BENCH_SUPERVISOR_BATCH (50:
// records per batch), BENCH_STORE (sqlite | postgres: the supervisor's store; postgres starts a PostgreSQL 15 on
// loopback, durable). Writes bench/results/supervisor.json (supervisor-postgres.json on PostgreSQL).
import { mkdtempSync, rmSync } from 'node:fs';
import { TextEncoder } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { createLogger } from '../server/dist/src/log.js';
import { DEFAULT_RULE_SETTINGS } from '../server/dist/src/supervisor/evidence.js';
import { LabFollower } from '../server/dist/src/supervisor/lab-follower.js';
import { RULES } from '../server/dist/src/supervisor/rules/index.js';
import { SupervisorStore } from '../server/dist/src/supervisor/supervisor-store.js';
import { parseDatabaseUrl } from '../server/dist/src/store/config.js';
import { startPostgres } from '../server/dist/test/helpers/postgres.js';
import { envReader } from './lib/env.js';
import { round1, writeResult } from './lib/result.js';

const { envInt, envChoice } = envReader('supervisor');
const STORE = envChoice('BENCH_STORE', ['sqlite', 'postgres']);
const NAME = STORE === 'postgres' ? 'supervisor-postgres' : 'supervisor';
const TARGET_SECONDS = 60;
const params = {
  records: envInt('BENCH_SUPERVISOR_RECORDS', 10_000_000, 1000, 100_000_000),
  runs: envInt('BENCH_SUPERVISOR_RUNS', 50_000, 10, 1_000_000),
  recordsPerBatch: envInt('BENCH_SUPERVISOR_BATCH', 50, 1, 10_000),
  instruments: 20,
  store: STORE,
};
params.certificates = params.runs;
params.batches = Math.ceil(params.records / params.recordsPerBatch);

useNodeCrypto();
const YEAR0 = Date.UTC(2026, 0, 1);
const YEAR = 365 * 86_400_000;
const recordsPerRun = Math.floor(params.records / params.runs);
const enc = new TextEncoder();

/** the lab's year: log entries (batch headers, certificate issues) in time order, runs, certificates, instruments */
function syntheticYear() {
  const entries = [];
  const runs = [];
  const certificates = [];
  const alarms = [];
  let seq = 0;
  let batch = 0;
  for (let r = 0; r < params.runs; r++) {
    const startedAt = YEAR0 + Math.floor((r / params.runs) * YEAR);
    const firstSeq = seq;
    const gap = r % 1000 === 999; // one run in a thousand loses a batch
    let left = recordsPerRun;
    let b = 0;
    while (left > 0) {
      const count = Math.min(params.recordsPerBatch, left);
      if (!(gap && b === 1)) {
        const header = {
          v: 1,
          gateway: 'gw-1',
          keyId: 'a1b2c3d4',
          batch,
          firstSeq: seq,
          count,
          tsMin: startedAt,
          tsMax: startedAt + 1000,
          root: 'AAAA',
          prev: null,
        };
        entries.push({ kind: 'batch-header', at: startedAt + b, value: { header, signature: 'sig' } });
      }
      batch++;
      seq += count;
      left -= count;
      b++;
    }
    const endedAt = startedAt + 600_000;
    const instrument = `ut-${r % params.instruments}`;
    const selfApproved = r % 5000 === 4999;
    runs.push({
      id: `run-${r}`,
      technician: selfApproved ? 'sig-1' : `tech-${r % 7}`,
      createdBy: `tech-${r % 7}`,
      state: 'completed',
      instruments: [{ id: instrument, gateway: 'gw-1' }],
      startedAt,
      endedAt,
      ranges: [{ gateway: 'gw-1', firstSeq, lastSeq: seq - 1 }],
      openAlarms: 0,
    });
    if (r % 50 === 0)
      alarms.push([
        `run-${r}`,
        [{ id: 'limits/x#1', raisedAt: startedAt + 10, acknowledgedAt: startedAt + 20, clearedAt: null, severity: 'alarm', message: '' }],
      ]);
    const id = `TR-${r}`;
    const issuedAt = endedAt + 3_600_000;
    const digests = { dcc: 'c'.repeat(64), json: 'a'.repeat(64), pdf: 'b'.repeat(64) };
    const logIndex = entries.length;
    entries.push({
      kind: 'certificate-event',
      at: issuedAt,
      value: { v: 1, kind: 'issue', certificate: id, at: issuedAt, keyId: 'k', digests, signature: 's' },
    });
    certificates.push({ id, run: `run-${r}`, status: 'valid', issuedBy: 'sig-1', issuedAt, amends: null, amendReason: null, logIndex, digests });
  }
  // the gateway's key revoked at the end of the year, the last ten batches having come after it
  const revokedAt = YEAR0 + YEAR - 1;
  entries.push({
    kind: 'key-event',
    at: revokedAt,
    value: {
      type: 'key-event',
      v: 1,
      gateway: 'gw-1',
      keyId: 'a1b2c3d4',
      at: revokedAt,
      event: 'revoked',
      reason: 'bench',
      from: revokedAt,
      lastValidBatch: batch - 11,
    },
  });
  const instruments = [];
  for (let i = 0; i < params.instruments; i++) {
    // ut-0 lets its calibration lapse for the last month of the year
    const calibrations = [
      { calibratedAt: YEAR0 - 86_400_000, nextDueAt: i === 0 ? YEAR0 + 334 * 86_400_000 : YEAR0 + 2 * YEAR, certificate: `CAL-${i}` },
    ];
    instruments.push([`ut-${i}`, { id: `ut-${i}`, calibrations, checks: [], status: [] }]);
  }
  return { entries: entries.map((e, index) => ({ index, ...e })), runs, certificates, alarms, instruments };
}

const t0 = performance.now();
const year = syntheticYear();
const generateSeconds = (performance.now() - t0) / 1000;
const evidence = {
  lab: 'bench',
  now: YEAR0 + YEAR,
  settings: DEFAULT_RULE_SETTINGS,
  witnesses: { names: [], required: 0 },
  checkpoints: [{ size: year.entries.length, rootHash: '00', note: '', firstSeenAt: YEAR0 + YEAR, lastSeenAt: YEAR0 + YEAR, cosignedBy: [] }],
  entries: year.entries,
  runs: year.runs,
  alarms: new Map(year.alarms),
  certificates: year.certificates,
  instruments: new Map(year.instruments),
  conflicts: [],
  // no accreditation and no report marks: the year's reports claim none
  accreditations: [],
  marks: new Map(),
};

function runRules(ev) {
  const perRule = {};
  let findings = 0;
  const start = performance.now();
  for (const rule of RULES) {
    const t = performance.now();
    const found = rule.check(ev);
    perRule[rule.id] = { ms: round1(performance.now() - t), findings: found.length };
    findings += found.length;
  }
  return { seconds: (performance.now() - start) / 1000, perRule, findings };
}

const inMemory = runRules(evidence);

// the same year through the supervisor's store: written once (not timed in the check), then read and checked
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-bench-supervisor-'));
const cluster = STORE === 'postgres' ? await startPostgres({ database: 'supervisor', durable: true }) : undefined;
const store = new SupervisorStore(cluster === undefined ? path.join(dir, 'supervisor.db') : { target: parseDatabaseUrl(cluster.url, 'url', dir) });
let stored;
try {
  await store.open();
  const t1 = performance.now();
  const CHUNK = 50_000;
  const tree = new trust.CompactTree();
  for (let i = 0; i < year.entries.length; i += CHUNK) {
    const chunk = year.entries.slice(i, i + CHUNK).map((e) => {
      const data = enc.encode(JSON.stringify(e.value));
      const leaf = trust.leafHash(data);
      tree.append(leaf);
      return { index: e.index, kind: e.kind, at: e.at, data, leaf };
    });
    await store.advance('bench', chunk, {
      size: tree.size,
      rootHash: trust.toHex(tree.root()),
      note: '',
      peaks: [],
      seenAt: YEAR0 + YEAR,
      cosignedBy: [],
    });
  }
  await store.putRecords(
    'bench',
    'run',
    year.runs.map((r) => ({ id: r.id, body: r })),
    0,
  );
  await store.putRecords(
    'bench',
    'certificate',
    year.certificates.map((c) => ({ id: c.id, body: c })),
    0,
  );
  await store.putRecords(
    'bench',
    'instrument',
    year.instruments.map(([id, body]) => ({ id, body })),
    0,
  );
  await store.putRecords(
    'bench',
    'alarms',
    year.alarms.map(([id, body]) => ({ id, body })),
    0,
  );
  const storeSeconds = (performance.now() - t1) / 1000;
  const lab = {
    id: 'bench',
    name: 'bench',
    url: 'http://127.0.0.1:1',
    origin: 'bench.example/log',
    logKey: trust.formatVerifierKey('bench.example/log', trust.publicKeyFromSeed(new Uint8Array(32).fill(1))),
    token: 't',
    witnesses: [],
    witnessesRequired: 0,
  };
  const follower = new LabFollower(lab, store, createLogger('supervisor', 'silent'), DEFAULT_RULE_SETTINGS);
  const t2 = performance.now();
  const loaded = await follower.evidence(YEAR0 + YEAR);
  const loadSeconds = (performance.now() - t2) / 1000;
  const fromStore = runRules(loaded);
  stored = { storeSeconds, loadSeconds, rulesSeconds: fromStore.seconds, findings: fromStore.findings, entries: loaded.entries.length };
} finally {
  await store.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
}

const results = {
  logEntries: year.entries.length,
  generateSeconds: round1(generateSeconds),
  rulesInMemorySeconds: round1(inMemory.seconds),
  findings: inMemory.findings,
  storeWriteSeconds: round1(stored.storeSeconds),
  checkFromStoreSeconds: round1(stored.loadSeconds + stored.rulesSeconds),
  loadFromStoreSeconds: round1(stored.loadSeconds),
  peakRssMiB: round1(process.resourceUsage().maxRSS / 1024),
  targetSeconds: TARGET_SECONDS,
};
const file = writeResult(NAME, { params, results, detail: { perRule: inMemory.perRule } });
console.log(
  `supervisor: ${params.records} records in ${results.logEntries} log entries, ${params.runs} runs, ${params.certificates} certificates: rules ${results.rulesInMemorySeconds} s in memory, whole check from the store ${results.checkFromStoreSeconds} s (target ${TARGET_SECONDS} s); ${results.findings} findings; ${file}`,
);
if (stored.findings !== inMemory.findings) {
  console.error(`the check from the store made ${stored.findings} findings, in memory ${inMemory.findings}`);
  process.exit(1);
}
