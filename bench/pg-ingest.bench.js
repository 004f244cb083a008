// Benchmark of the store behind ingest on PostgreSQL 15 (on this machine, durable: fsync on, synchronous_commit on),
// next to the embedded SQLite store in the same run. Each "node" is a child process (bench/lib/pg-ingest-node.js)
// that opens its gateways' sealed batches, verifies their signatures and records, and stores each batch with its
// samples in one durable transaction, one pipeline per gateway (4 gateways x 250 instruments x 10 channels per
// node: 10,000 streams; 1,000 samples per batch). Phases:
//   sqlite       one node on the embedded SQLite store, as fast as it goes (BENCH_SECONDS)
//   postgres-1   one node on PostgreSQL, as fast as it goes
//   postgres-2   two nodes on one PostgreSQL at once, each with its own gateways
//   latency      one node on PostgreSQL at 10,000 samples/s (a batch of 250 per gateway every 100 ms): from each
//                sample's time (taken over the 100 ms before its batch is sent) to its batch's commit, p50/p99
//   ingest-1, ingest-2, ingest-latency   the same three through the server's Ingest (its PostgreSQL path: gateway lock,
//                chain state, batch and samples, security events and the transparency log leaf in one transaction per
//                batch), counted at its ACK, published after COMMIT
// For each: verified samples durably stored per second, each node's CPU (% of one core) and peak RSS, PostgreSQL's
// CPU (all its processes), the rows found in the store afterwards (each sample once).
// What this leaves out: the MQTT hops (bench/ingest.bench.js measures those on SQLite); the store-only phases also
// leave out the transparency log append and the chain state (the ingest-* phases include them).
//
// Environment: BENCH_SECONDS (15), BENCH_LATENCY_SECONDS (20), BENCH_KEEP=1 keeps the cluster's directory,
// BENCH_PHASES (a comma list of the phases above; default: all).
// Writes bench/results/pg-ingest.json.
import { Buffer } from 'node:buffer';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostgres } from '../server/dist/test/helpers/postgres.js';
import { serverMigrations } from '../server/dist/src/migrations.js';
import { migrateStore } from '../server/dist/src/store/database.js';
import { openStore, parseDatabaseUrl } from '../server/dist/src/store/dialect.js';
import { envReader } from './lib/env.js';
import { postgresTicks, storedSamples } from './lib/postgres.js';
import { clockTicks, machineTicks } from './lib/proc.js';
import { BENCH_DIR, round1, writeResult } from './lib/result.js';
import { percentile } from './lib/result.js';

const NAME = 'pg-ingest';
const { envInt } = envReader(NAME);
const SECONDS = envInt('BENCH_SECONDS', 15, 3, 600);
const LATENCY_SECONDS = envInt('BENCH_LATENCY_SECONDS', 20, 3, 600);
const GATEWAYS_PER_NODE = 4;
const INSTRUMENTS = 250;
const CHANNELS = 10;
const BATCH_SAMPLES = 1000;
const LATENCY_RATE = 10_000;
const STEP_MS = 100;
const TARGETS = { postgresPerSecond: 50_000, latencyP99Ms: 500 };
const NODE = path.join(BENCH_DIR, 'lib', 'pg-ingest-node.js');
const TICKS = clockTicks();
const PHASES = process.env['BENCH_PHASES']?.split(',').map((p) => p.trim());


function request(child, msg, expect) {
  return new Promise((resolve, reject) => {
    const onMessage = (reply) => {
      if (reply.error) {
        child.off('message', onMessage);
        reject(new Error(reply.error));
      } else if (reply[expect]) {
        child.off('message', onMessage);
        resolve(reply);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`node exited (${code}) during ${msg.cmd}`)));
    child.send(msg);
  });
}

let gatewaySerial = 0;
async function startNodes(count, store, batches, batchSamples, start, through) {
  const nodes = [];
  for (let n = 0; n < count; n++) {
    const child = fork(NODE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const gateways = Array.from({ length: GATEWAYS_PER_NODE }, () => {
      const id = `gw-${++gatewaySerial}`;
      return { id, seed: Buffer.alloc(32, gatewaySerial).toString('hex') };
    });
    nodes.push({ child, gateways });
  }
  await Promise.all(
    nodes.map(({ child, gateways }) =>
      request(
        child,
        { cmd: 'load', store, through, gateways, batches, batchSamples, instruments: INSTRUMENTS, channels: CHANNELS, start, stepMs: STEP_MS },
        'loaded',
      ),
    ),
  );
  return nodes;
}

async function phase(name, { nodes: count, store, mode, cluster, through }) {
  const latency = mode === 'paced';
  const batchSamples = latency ? LATENCY_RATE / GATEWAYS_PER_NODE / (1000 / STEP_MS) : BATCH_SAMPLES;
  // as fast as it goes: enough batches for 200,000/s per node over the window
  const batches = latency ? (LATENCY_SECONDS * 1000) / STEP_MS : Math.ceil((200_000 * SECONDS) / GATEWAYS_PER_NODE / BATCH_SAMPLES);
  const start = Date.now() + (latency ? 15_000 : 0);
  const nodes = await startNodes(count, store, batches, batchSamples, latency ? start : Date.now() - 3_600_000, through);
  const pg0 = cluster ? postgresTicks(cluster.dir) : 0;
  const m0 = machineTicks();
  const runs = await Promise.all(
    nodes.map(({ child }) => request(child, { cmd: 'run', mode: latency ? 'paced' : 'throughput', seconds: SECONDS }, 'done')),
  );
  const m1 = machineTicks();
  const pgCpuPercent = cluster ? ((postgresTicks(cluster.dir) - pg0) / TICKS / (Math.max(...runs.map((r) => r.elapsedMs)) / 1000)) * 100 : null;
  await Promise.all(nodes.map(({ child }) => request(child, { cmd: 'close' }, 'closed').catch(() => undefined)));
  const samples = runs.reduce((n, r) => n + r.samples, 0);
  const seconds = latency ? (batches * STEP_MS) / 1000 : Math.max(...runs.map((r) => r.elapsedMs)) / 1000;
  const result = {
    phase: name,
    nodes: count,
    samplesStored: samples,
    perSecond: Math.round(samples / seconds),
    nodeCpuPercent: runs.map((r) => round1((r.cpuMs / 1000 / seconds) * 100)),
    nodePeakRssMiB: runs.map((r) => round1(r.maxRssMiB)),
    postgresCpuPercent: round1(pgCpuPercent),
    machineBusyPercent: m0 && m1 ? round1(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 * os.cpus().length) : null,
  };
  if (latency) {
    const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
    result.offeredPerSecond = LATENCY_RATE;
    result.latencyP50Ms = percentile(all, 50);
    result.latencyP99Ms = percentile(all, 99);
    result.latencyMaxMs = all[all.length - 1];
  }
  console.log(`${NAME}: ${JSON.stringify(result)}`);
  return result;
}


async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-pg-bench-'));
  const cluster = await startPostgres({
    durable: true,
    settings: { shared_buffers: '512MB', max_wal_size: '4GB', checkpoint_timeout: '15min', max_connections: 50 },
  });
  const results = [];
  const chosen = (name) => PHASES === undefined || PHASES.includes(name);
  try {
    const migrated = async (name) => {
      const url = await cluster.createDatabase(name);
      const opened = openStore(parseDatabaseUrl(url, 'url', process.cwd()));
      await migrateStore(opened.db, serverMigrations);
      await opened.close();
      return url;
    };
    if (chosen('sqlite')) results.push(await phase('sqlite', { nodes: 1, store: `sqlite:${path.join(tmp, 'sqlite')}`, mode: 'throughput' }));
    for (const [name, nodes, mode, through] of [
      ['postgres-1', 1, 'throughput'],
      ['postgres-2', 2, 'throughput'],
      ['latency', 1, 'paced'],
      ['ingest-1', 1, 'throughput', 'ingest'],
      ['ingest-2', 2, 'throughput', 'ingest'],
      ['ingest-latency', 1, 'paced', 'ingest'],
    ]) {
      if (!chosen(name)) continue;
      const url = await migrated(name.replaceAll('-', '_'));
      const r = await phase(name, { nodes, store: url, mode, cluster, through });
      const stored = await storedSamples(url);
      r.rowsFound = stored.samples;
      r.rowsDoubled = stored.doubled;
      if (stored.samples !== r.samplesStored || stored.doubled !== 0)
        throw new Error(`${name}: the nodes stored ${r.samplesStored} samples and the store has ${stored.samples} (${stored.doubled} twice)`);
      results.push(r);
    }
  } finally {
    if (process.env['BENCH_KEEP'] !== '1') {
      await cluster.stop();
      rmSync(tmp, { recursive: true, force: true });
    } else console.log(`${NAME}: kept ${cluster.dir} and ${tmp}`);
  }
  const byPhase = Object.fromEntries(results.map((r) => [r.phase, r]));
  const file = writeResult(NAME, {
    params: {
      seconds: SECONDS,
      latencySeconds: LATENCY_SECONDS,
      gatewaysPerNode: GATEWAYS_PER_NODE,
      instruments: INSTRUMENTS,
      channels: CHANNELS,
      batchSamples: BATCH_SAMPLES,
      targets: TARGETS,
    },
    results: {
      sqlitePerSecond: byPhase.sqlite?.perSecond,
      postgresOneNodePerSecond: byPhase['postgres-1']?.perSecond,
      postgresTwoNodesPerSecond: byPhase['postgres-2']?.perSecond,
      latencyP99Ms: byPhase.latency?.latencyP99Ms,
      ingestOneNodePerSecond: byPhase['ingest-1']?.perSecond,
      ingestTwoNodesPerSecond: byPhase['ingest-2']?.perSecond,
      ingestLatencyP99Ms: byPhase['ingest-latency']?.latencyP99Ms,
      meetsThroughput:
        Math.max(...['postgres-1', 'postgres-2', 'ingest-1', 'ingest-2'].map((p) => byPhase[p]?.perSecond ?? 0)) >= TARGETS.postgresPerSecond,
      meetsLatency: ['latency', 'ingest-latency'].every((p) => byPhase[p] === undefined || byPhase[p].latencyP99Ms < TARGETS.latencyP99Ms),
    },
    detail: results,
  });
  console.log(`${NAME}: wrote ${file}`);
}

main().catch((err) => {
  console.error(`${NAME}: ${err.stack ?? err}`);
  process.exit(1);
});
