// Benchmark of the witness (C2SP tlog-witness): how many checkpoints it cosigns per second on one core, each
// one checked as in production (log signature, old size, consistency proof, SQLite update, cosignature), first
// through Witness.addCheckpoint (no HTTP), then over HTTP with one keep-alive client sending one request at a time.
// The log's checkpoints and proofs are made before the clock starts (a log of 8 new leaves per checkpoint, its
// subtree hashes kept in memory for O(log n) proofs). Target (issue 19): 1,000 checkpoints/s on one core.
//
// Environment: BENCH_WITNESS_CHECKPOINTS (3000: checkpoints per measurement).
// Writes bench/results/witness.json. Exits non-zero when a checkpoint is not cosigned.
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as trust from '../protocols/dist/src/index.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { createLogger } from '../server/dist/src/log.js';
import { Witness } from '../server/dist/src/witness/witness.js';
import { envReader } from './lib/env.js';
import { round1, writeResult } from './lib/result.js';

const NAME = 'witness';
const { envInt } = envReader(NAME);
const TARGET_PER_SECOND = 1000;
const LEAVES_PER_CHECKPOINT = 8;
const params = { checkpoints: envInt('BENCH_WITNESS_CHECKPOINTS', 3000, 10, 1_000_000), leavesPerCheckpoint: LEAVES_PER_CHECKPOINT };

useNodeCrypto();

/** Requests of one log growing by LEAVES_PER_CHECKPOINT leaves per checkpoint, each from the one before. */
function requests(origin, seed, count) {
  const signer = trust.ed25519NoteSigner(trust.formatSignerKey(origin, seed));
  const tree = new trust.CompactTree();
  const hashes = new Map();
  const read = (level, index) => hashes.get(`${level}/${index}`);
  const bodies = [];
  let oldSize = 0;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < LEAVES_PER_CHECKPOINT; j++) {
      const leaf = trust.leafHash(trust.utf8(`${origin} ${tree.size}`));
      hashes.set(`0/${tree.size}`, leaf);
      for (const s of tree.append(leaf)) hashes.set(`${s.level}/${s.index}`, s.hash);
    }
    const note = trust.signCheckpoint({ origin, size: tree.size, rootHash: tree.root(), extensions: [] }, [signer]);
    const proof = oldSize === 0 ? [] : trust.consistencyProof(oldSize, tree.size, read);
    bodies.push(Buffer.from(trust.formatAddCheckpoint({ oldSize, proof, note })));
    oldSize = tree.size;
  }
  return { vkey: trust.formatVerifierKey(origin, trust.publicKeyFromSeed(seed)), bodies };
}

const direct = requests('bench.example/direct', new Uint8Array(32).fill(1), params.checkpoints);
const overHttp = requests('bench.example/http', new Uint8Array(32).fill(2), params.checkpoints);
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-bench-witness-'));
const witness = new Witness(
  {
    key: trust.parseCosignerSignerKey(trust.formatCosignerSignerKey('bench.example/witness', new Uint8Array(32).fill(3))),
    database: path.join(dir, 'witness.db'),
    host: '127.0.0.1',
    port: 0,
    logs: [
      { origin: 'bench.example/direct', keys: [direct.vkey] },
      { origin: 'bench.example/http', keys: [overHttp.vkey] },
    ],
  },
  createLogger('witness', 'silent'),
);
await witness.start();
let failed = 0;
try {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const body of direct.bodies) {
    const answer = await witness.addCheckpoint(body);
    if (answer.status !== 200) failed++;
  }
  const directSeconds = (performance.now() - t0) / 1000;
  const directCpu = process.cpuUsage(cpu0);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(`${witness.url}/add-checkpoint`);
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(body);
    });
  const t1 = performance.now();
  for (const body of overHttp.bodies) if ((await post(body)) !== 200) failed++;
  const httpSeconds = (performance.now() - t1) / 1000;
  agent.destroy();

  const results = {
    directPerSecond: round1(params.checkpoints / directSeconds),
    directCpuPercent: round1(((directCpu.user + directCpu.system) / 1e6 / directSeconds) * 100),
    httpPerSecond: round1(params.checkpoints / httpSeconds),
    targetPerSecond: TARGET_PER_SECOND,
    failed,
  };
  const file = writeResult(NAME, { params, results });
  console.log(
    `witness: ${results.directPerSecond} checkpoints/s direct, ${results.httpPerSecond}/s over HTTP (target ${TARGET_PER_SECOND}); ${failed} refused; ${file}`,
  );
} finally {
  await witness.stop();
  rmSync(dir, { recursive: true, force: true });
}
if (failed > 0) process.exit(1);
