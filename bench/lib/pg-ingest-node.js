// One "server node" of bench/pg-ingest.bench.js, as a child process (fork, IPC). It first seals its gateways' batches
// (as the gateways would: not measured), then stores them as the ingest does: open the sealed bytes, verify the
// signature and the records against the gateway's key, store the batch and its samples durably, one transaction per
// batch (PostgreSQL: PgMeasurementStore, per-gateway lock; SQLite: MeasurementStore, synchronous=FULL, the per-sample
// index brought up to date after each batch). One pipeline per gateway (the ingest serializes a gateway's batches);
// the synchronous SQLite store runs one.
//
// Messages: in { cmd: 'load', store, gateways: [{ id, seed }], batches, batchSamples, instruments, channels, start, stepMs }
//             -> { loaded }  (batch i of a gateway holds samples taken over [start + i*stepMs, start + (i+1)*stepMs))
//           in { cmd: 'run', mode: 'throughput', seconds } | { cmd: 'run', mode: 'paced' } (batch i sent at start + (i+1)*stepMs)
//           -> { done, samples, batches, elapsedMs, latencies (paced: commit time - sample time, ms), cpuMs, maxRssMiB }
import { Buffer } from 'node:buffer';
import {
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  openBatch,
  parseSignerKey,
  parseVerifierKey,
  publicKeyFromSeed,
  sealBatch,
  toBase64,
  verifyBatch,
} from '@labtrace/protocols';
import { LabDatabase } from '../../server/dist/src/store/database.js';
import { MeasurementStore } from '../../server/dist/src/store/measurement-store.js';
import { PgMeasurementStore } from '../../server/dist/src/store/pg-measurement-store.js';
import { openStore, parseDatabaseUrl } from '../../server/dist/src/store/dialect.js';
import { serverMigrations } from '../../server/dist/src/migrations.js';

let gateways = [];
/** per gateway, its sealed batches in order */
let queues = [];
let engine;

let plan;

async function load(msg) {
  plan = msg;
  gateways = msg.gateways.map((g) => {
    const seed = Buffer.from(g.seed, 'hex');
    return {
      id: g.id,
      key: parseVerifierKey(formatVerifierKey(g.id, publicKeyFromSeed(seed))),
      signer: parseSignerKey(formatSignerKey(g.id, seed)),
    };
  });
  const streams = msg.instruments * msg.channels;
  queues = gateways.map((gateway) => {
    const queue = [];
    let prev = null;
    for (let b = 0; b < msg.batches; b++) {
      const samples = [];
      for (let i = 0; i < msg.batchSamples; i++) {
        const seq = b * msg.batchSamples + i;
        const stream = seq % streams;
        samples.push({
          seq,
          instrument: `${gateway.id}-i${Math.floor(stream / msg.channels)}`,
          channel: `ch${stream % msg.channels}`,
          ts: msg.start + b * msg.stepMs + Math.floor((i * msg.stepMs) / msg.batchSamples),
          value: Math.sin(seq / 100) * 100,
          unit: 'kN',
          quality: 'good',
        });
      }
      const { signed, wire } = sealBatch(gateway.signer, gateway.id, b, samples, prev);
      prev = headerHash(signed.header);
      queue.push(wire);
    }
    return queue;
  });
  if (msg.store.startsWith('sqlite:')) {
    const database = new LabDatabase(msg.store.slice('sqlite:'.length), serverMigrations);
    await database.migrate();
    const store = new MeasurementStore(database);
    store.open();
    engine = { kind: 'sqlite', database, store };
  } else {
    const opened = openStore(parseDatabaseUrl(msg.store, 'store', process.cwd()), { poolSize: gateways.length + 2 });
    engine = { kind: 'postgres', opened, store: new PgMeasurementStore(opened.db) };
  }
}

/** open, verify, store one sealed batch; returns its samples */
async function ingest(g, wire) {
  const gateway = gateways[g];
  const { signed, samples, leaves, records } = openBatch(wire);
  verifyBatch(signed, samples, gateway.key, gateway.id, leaves);
  const hash = toBase64(headerHash(signed.header));
  const now = Date.now();
  if (engine.kind === 'sqlite') {
    const { database, store } = engine;
    database.sqlite.transaction(() => store.store(gateway.id, samples, signed, hash, now, records))();
    store.indexPending();
  } else {
    const { opened, store } = engine;
    const batch = { gateway: gateway.id, samples, signed, headerHash: hash, records, now };
    await store.prepare([batch]);
    const outcome = await opened.db.transaction().execute(async (trx) => {
      await store.lockGateways(trx, [gateway.id]);
      return store.storeBatch(trx, batch);
    });
    if (outcome.kind !== 'stored') throw new Error(`batch ${signed.header.batch} of ${gateway.id}: ${outcome.kind}`);
  }
  return samples;
}

async function run(msg) {
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  let samples = 0;
  let batches = 0;
  const latencies = [];
  const deadline = msg.mode === 'throughput' ? t0 + msg.seconds * 1000 : Number.POSITIVE_INFINITY;
  const pipeline = async (g) => {
    const queue = queues[g];
    for (let i = 0; i < queue.length && Date.now() < deadline; i++) {
      if (msg.mode === 'paced') {
        const wait = plan.start + (i + 1) * plan.stepMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const stored = await ingest(g, queue[i]);
      const at = Date.now();
      samples += stored.length;
      batches++;
      if (msg.mode === 'paced') for (const s of stored) latencies.push(at - s.ts);
    }
  };
  // the synchronous SQLite store has one pipeline: its transactions cannot overlap
  if (engine.kind === 'sqlite') {
    for (let round = 0; Date.now() < deadline && queues.some((q) => round < q.length); round++)
      for (let g = 0; g < queues.length && Date.now() < deadline; g++) {
        const wire = queues[g][round];
        if (wire === undefined) continue;
        const stored = await ingest(g, wire);
        samples += stored.length;
        batches++;
      }
  } else await Promise.all(queues.map((_, g) => pipeline(g)));
  const elapsedMs = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { samples, batches, elapsedMs, latencies, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

process.on('message', (msg) => {
  const reply = (m) => process.send(m);
  (async () => {
    if (msg.cmd === 'load') {
      await load(msg);
      reply({ loaded: true });
    } else if (msg.cmd === 'run') reply({ done: true, ...(await run(msg)) });
    else if (msg.cmd === 'close') {
      if (engine?.kind === 'sqlite') await engine.database.close();
      if (engine?.kind === 'postgres') await engine.opened.close();
      reply({ closed: true });
      process.exit(0);
    }
  })().catch((err) => {
    reply({ error: err.stack ?? String(err) });
  });
});
