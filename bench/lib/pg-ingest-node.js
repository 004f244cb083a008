// One "server node" of bench/pg-ingest.bench.js, as a child process (fork, IPC). It first seals its gateways' batches
// (as the gateways would: not measured), then stores them as the ingest does: open the sealed bytes, verify the
// signature and the records against the gateway's key, store the batch and its samples durably, one transaction per
// batch (PostgreSQL: PgMeasurementStore, per-gateway lock; SQLite: MeasurementStore, synchronous=FULL, the per-sample
// index brought up to date after each batch). One pipeline per gateway (the ingest serializes a gateway's batches);
// the synchronous SQLite store runs one.
//
// With `through: 'ingest'` (PostgreSQL only), the batches go through the server's own Ingest instead: its PostgreSQL path
// (one transaction per batch: gateway lock, chain, batch and samples, security events, transparency log leaf), fed as
// the broker feeds it (a DATA message on the bus) and counted when its ACK is published, after COMMIT. The keys and
// the security events' counters live in a SQLite file of their own (the trust modules still run on SQLite).
//
// Messages: in { cmd: 'load', store, through?, gateways: [{ id, seed }], batches, batchSamples, instruments, channels, start, stepMs }
//             -> { loaded }  (batch i of a gateway holds samples taken over [start + i*stepMs, start + (i+1)*stepMs))
//           in { cmd: 'run', mode: 'throughput', seconds } | { cmd: 'run', mode: 'paced' } (batch i sent at start + (i+1)*stepMs)
//           -> { done, samples, batches, elapsedMs, latencies (paced: commit time - sample time, ms), cpuMs, maxRssMiB }
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import {
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  openBatch,
  parseSignerKey,
  parseTopic,
  parseVerifierKey,
  publicKeyFromSeed,
  sealBatch,
  toBase64,
  topicFor,
  verifyBatch,
} from '@labtrace/protocols';
import { Ingest } from '../../server/dist/src/ingest/ingest.js';
import { LogStore } from '../../server/dist/src/log/log-store.js';
import { Registry } from '../../server/dist/src/store/registry.js';
import { KeyRegistry } from '../../server/dist/src/trust/key-registry.js';
import { SecurityEvents } from '../../server/dist/src/trust/security-events.js';
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
  } else if (msg.through === 'ingest') engine = await ingestEngine(msg);
  else {
    const opened = openStore(parseDatabaseUrl(msg.store, 'store', process.cwd()), { poolSize: gateways.length + 2 });
    engine = { kind: 'postgres', opened, store: new PgMeasurementStore(opened.db) };
  }
}

const LAB = 'bench';

/** What the Ingest needs of the broker: DATA in (emitted here), ACKs out (each resolves the wait for its batch). */
class Bus extends EventEmitter {
  running = true;
  waiting = new Map();
  start() {
    return Promise.resolve();
  }
  stop() {
    return Promise.resolve();
  }
  connectedGateways() {
    return [];
  }
  publish(topic, payload) {
    const t = parseTopic(topic);
    if (t?.kind === 'ACK') {
      const key = `${t.gateway}/${JSON.parse(payload).batch}`;
      this.waiting.get(key)?.();
      this.waiting.delete(key);
    }
    return Promise.resolve();
  }
  /** publishes a gateway's batch and resolves with its ACK */
  deliver(gateway, batch, wire) {
    const acked = new Promise((resolve) => this.waiting.set(`${gateway}/${batch}`, resolve));
    this.emit('message', topicFor(LAB, gateway, 'DATA'), Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength));
    return acked;
  }
}

/** The server's Ingest on PostgreSQL, its gateways registered and born. */
async function ingestEngine(msg) {
  const logger = pino({ level: 'silent' });
  const opened = openStore(parseDatabaseUrl(msg.store, 'store', process.cwd()), { poolSize: gateways.length + 2 });
  const trust = new LabDatabase(mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-trust-')), serverMigrations);
  await trust.migrate();
  const events = new SecurityEvents(trust, logger);
  const keys = new KeyRegistry(trust, events);
  keys.open(gateways.map((g) => ({ id: g.id, key: formatVerifierKey(g.id, g.key.publicKey) })));
  const log = new LogStore(opened.db, { origin: `labtrace/${LAB}`, signer: parseSignerKey(formatSignerKey(`labtrace/${LAB}`, Buffer.alloc(32, 7))) });
  await log.open();
  const bus = new Bus();
  const ingest = new Ingest(LAB, bus, opened.db, new PgMeasurementStore(opened.db), new Registry({ db: opened.db }), keys, events, logger);
  ingest.useLog(log);
  ingest.on('rejected', (gateway, reason) => {
    console.error(`pg-ingest node: refused: ${gateway}: ${reason}`);
    process.exit(1);
  });
  await ingest.start();
  for (const g of gateways) {
    const instruments = Array.from({ length: msg.instruments }, (_, i) => ({
      id: `${g.id}-i${i}`,
      identity: { maker: 'bench', model: 'b', serialNumber: String(i) },
      channels: Array.from({ length: msg.channels }, (__, c) => ({ name: `ch${c}`, unit: 'kN' })),
    }));
    const born = new Promise((resolve) => ingest.once('birth', resolve));
    bus.emit(
      'message',
      topicFor(LAB, g.id, 'BIRTH'),
      Buffer.from(JSON.stringify({ v: 1, gateway: g.id, session: 1, version: 'bench', instruments })),
    );
    await born;
  }
  return { kind: 'ingest', opened, trust, events, ingest, bus };
}

/** open, verify, store one sealed batch (number b of its gateway); returns its samples (the Ingest: their times) */
async function ingest(g, wire, b) {
  const gateway = gateways[g];
  if (engine.kind === 'ingest') {
    await engine.bus.deliver(gateway.id, b, wire);
    const t0 = plan.start + b * plan.stepMs;
    return Array.from({ length: plan.batchSamples }, (_, i) => ({ ts: t0 + Math.floor((i * plan.stepMs) / plan.batchSamples) }));
  }
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
      const stored = await ingest(g, queue[i], i);
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
        const stored = await ingest(g, wire, round);
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
      if (engine?.kind === 'ingest') {
        await engine.ingest.stop();
        await engine.events.stop();
        await engine.trust.close();
        await engine.opened.close();
      }
      reply({ closed: true });
      process.exit(0);
    }
  })().catch((err) => {
    reply({ error: err.stack ?? String(err) });
  });
});
