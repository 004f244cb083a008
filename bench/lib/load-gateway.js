// A gateway that generates its samples instead of polling instruments, for the ingest benchmark: the real
// gateway classes (Sequencer, durable Outbox with the gateway's signing key, MqttUplink) wired as
// gateway/src/gateway.ts wires them, and synthetic samples (timestamp = now) pushed into the uplink at a
// target rate, round-robin over instruments x channels.
//
//   node bench/lib/load-gateway.js <options.json>    (started by bench/ingest.bench.js, with an IPC channel)
//
// Options (a JSON file, as it holds the broker password): url, username, password, gateway, lab, dataDir (holding the key made by createIdentity),
// instruments, channels, maxBatchSamples, maxBatchDelayMs, maxHeldSamples.
// Messages from the parent: { cmd: 'rate', rate } starts (or changes) the load, { cmd: 'window', on } opens and
// closes the measured window (its counters, its duration and a series per second are on this process's clock),
// { cmd: 'stats', id } is answered with { type: 'stats', id, ... }. To the parent:
// { type: 'ready' } once connected. SIGTERM stops the load and the uplink (which flushes and waits briefly
// for the last acknowledgements) and closes the outbox.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { toHex } from '../../protocols/dist/src/index.js';
import { useNodeCrypto } from '../../protocols/dist/src/node/index.js';
import { Sequencer } from '../../gateway/dist/src/sequencer.js';
import { Outbox } from '../../gateway/dist/src/outbox/outbox.js';
import { MQTT_SINK, MqttUplink } from '../../gateway/dist/src/uplink/mqtt-uplink.js';
import { loadIdentity } from '../../gateway/dist/src/identity/identity.js';
import { createLogger } from '../../gateway/dist/src/log.js';

const TICK_MS = 5;
/** at most this many samples per tick, so that a gateway that falls behind still answers (ACKs, IPC) */
const MAX_PER_TICK = 20_000;
/** latency histogram: 1 ms buckets up to this, and one overflow bucket */
const MAX_LATENCY_MS = 120_000;

const CHANNELS = [
  { name: 'force', unit: 'kN' },
  { name: 'extension', unit: 'mm' },
  { name: 'temperature', unit: 'degC' },
  { name: 'humidity', unit: '%' },
  { name: 'pressure', unit: 'kPa' },
  { name: 'strain', unit: 'um/m' },
  { name: 'position', unit: 'mm' },
  { name: 'speed', unit: 'mm/min' },
  { name: 'voltage', unit: 'V' },
  { name: 'current', unit: 'A' },
];

const instrumentId = (i) => `load-${String(i + 1).padStart(4, '0')}`;

const options = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const channels = CHANNELS.slice(0, options.channels);
const instruments = Array.from({ length: options.instruments }, (_, i) => instrumentId(i));
const streams = instruments.length * channels.length;

useNodeCrypto();
const logger = createLogger('load-gateway');
const key = loadIdentity(options.dataDir);
const sequencer = new Sequencer(options.dataDir);

// ---------------------------------------------------------------- what the harness measures

const inflight = new Map(); // batch -> Float64Array of its samples' timestamps
const histogram = new Uint32Array(MAX_LATENCY_MS + 2);
const counters = { generated: 0, refused: 0, batches: 0, ackedBatches: 0, ackedSamples: 0 };
const win = { on: false, start: 0, end: Infinity, generated: 0, ackedSamples: 0, ackedBatches: 0, maxHeld: 0, series: [] };

/** The real outbox; each appended batch's sample timestamps are kept until its ACK, for the latency. */
class TrackingOutbox extends Outbox {
  append(gateway, samples, now) {
    // the batch number is `batch` of what append returns (a DataMessage, or a StoredBatch { batch, message, wire })
    const appended = super.append(gateway, samples, now);
    const ts = new Float64Array(samples.length);
    for (let i = 0; i < samples.length; i++) ts[i] = samples[i].ts;
    inflight.set(appended.batch, ts);
    counters.batches++;
    return appended;
  }
}

const outbox = new TrackingOutbox(options.dataDir, [MQTT_SINK], key);
const uplink = new MqttUplink(
  {
    url: options.url,
    username: options.username,
    password: options.password,
    gateway: options.gateway,
    lab: options.lab,
    keepaliveSeconds: 30,
    maxBatchSamples: options.maxBatchSamples,
    maxBatchDelayMs: options.maxBatchDelayMs,
    maxHeldSamples: options.maxHeldSamples,
    outbox,
    birth: () => ({
      v: 1,
      gateway: options.gateway,
      version: 'bench',
      keyId: toHex(key.keyId),
      instruments: instruments.map((id, i) => ({
        id,
        identity: { maker: 'labtrace bench', model: 'load', serialNumber: `L-${i + 1}` },
        channels: channels.map((c) => ({ name: c.name, unit: c.unit })),
      })),
    }),
  },
  logger,
);

uplink.on('acked', (batch) => {
  const ts = inflight.get(batch);
  if (ts === undefined) return;
  inflight.delete(batch);
  const now = Date.now();
  counters.ackedBatches++;
  counters.ackedSamples += ts.length;
  if (win.on) {
    win.ackedBatches++;
    win.ackedSamples += ts.length;
  }
  // latency of the samples made in the window, whenever their ACK comes
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i];
    if (t >= win.start && t < win.end) histogram[Math.min(MAX_LATENCY_MS + 1, Math.max(0, now - t))]++;
  }
});
uplink.on('full', (n) => (counters.refused += n));

// ---------------------------------------------------------------- the load

let rate = 0;
let rateSince = 0;
let dueSince = 0; // samples generated since the rate was set
let cursor = 0;
let lagMax = 0;

function tick() {
  if (rate <= 0) return;
  const due = Math.floor((rate * (performance.now() - rateSince)) / 1000) - dueSince;
  if (due <= 0) return;
  lagMax = Math.max(lagMax, due);
  const n = Math.min(due, MAX_PER_TICK);
  const now = Date.now();
  const samples = new Array(n);
  for (let k = 0; k < n; k++) {
    const stream = cursor++ % streams;
    const ch = channels[stream % channels.length];
    // one literal of a fixed shape, as the gateway makes them
    samples[k] = {
      seq: sequencer.take(),
      instrument: instruments[Math.floor(stream / channels.length)],
      channel: ch.name,
      ts: now,
      value: Math.round(Math.random() * 1e6) / 1e3,
      unit: ch.unit,
      quality: 'good',
    };
  }
  // samples refused by a full outbox are counted by the 'full' event; they are lost to the load, as in the gateway
  uplink.push(samples);
  dueSince += n;
  counters.generated += n;
  if (win.on) win.generated += n;
  const held = uplink.held;
  if (win.on && held > win.maxHeld) win.maxHeld = held;
}

function latencySummary() {
  let count = 0;
  for (let i = 0; i < histogram.length; i++) count += histogram[i];
  const at = (p) => {
    if (count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * count));
    let seen = 0;
    for (let i = 0; i < histogram.length; i++) {
      seen += histogram[i];
      if (seen >= rank) return i > MAX_LATENCY_MS ? `>${MAX_LATENCY_MS}` : i;
    }
    return null;
  };
  let max = null;
  for (let i = histogram.length - 1; i >= 0; i--)
    if (histogram[i] > 0) {
      max = i > MAX_LATENCY_MS ? `>${MAX_LATENCY_MS}` : i;
      break;
    }
  return { count, p50: at(50), p90: at(90), p99: at(99), max };
}

function stats() {
  return {
    now: Date.now(),
    rate,
    ...counters,
    uplinkRefused: uplink.refused,
    held: uplink.held,
    outboxHeld: outbox.heldSamples,
    inflightBatches: inflight.size,
    connected: uplink.isConnected,
    lagMaxSamples: lagMax,
    window: { ...win, end: Number.isFinite(win.end) ? win.end : null, seconds: Number.isFinite(win.end) ? (win.end - win.start) / 1000 : null },
    latencyMs: latencySummary(),
  };
}

/** One point a second of the window, on this process's clock (late when the event loop is blocked: `at` says when). */
function sampleSecond() {
  const now = Date.now();
  const last = win.series.at(-1) ?? { at: win.start, acked: 0, generated: 0 };
  const dt = (now - last.at) / 1000;
  win.series.push({
    at: now,
    acked: win.ackedSamples,
    generated: win.generated,
    ackedPerSecond: Math.round((win.ackedSamples - last.acked) / dt),
    generatedPerSecond: Math.round((win.generated - last.generated) / dt),
    held: uplink.held,
  });
}

let secondTimer;
process.on('message', (msg) => {
  if (msg.cmd === 'rate') {
    rate = msg.rate;
    rateSince = performance.now();
    dueSince = 0;
  } else if (msg.cmd === 'window') {
    if (msg.on) {
      const now = Date.now();
      Object.assign(win, { on: true, start: now, end: Infinity, generated: 0, ackedSamples: 0, ackedBatches: 0, maxHeld: uplink.held, series: [] });
      histogram.fill(0);
      lagMax = 0;
      secondTimer = setInterval(sampleSecond, 1000);
    } else {
      clearInterval(secondTimer);
      sampleSecond();
      win.on = false;
      win.end = Date.now();
    }
  } else if (msg.cmd === 'stats') {
    process.send({ type: 'stats', id: msg.id, ...stats() });
  }
});

const timer = setInterval(tick, TICK_MS);
let reportedReady = false;
uplink.on('connected', () => {
  if (!reportedReady) process.send({ type: 'ready' });
  reportedReady = true;
});

/** how long the uplink may take to stop before this process exits anyway (the outbox holds every batch durably) */
const STOP_GRACE_MS = 8000;

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  logger.info({ signal, ...counters, held: uplink.held }, 'load gateway stopping');
  // MqttUplink.stop() ends the MQTT client gracefully, which waits for the acknowledgement of every QoS 1 message in
  // flight: with a large backlog (or no broker) that is long or forever, so it gets STOP_GRACE_MS
  let timer2;
  const stopped = await Promise.race([
    uplink.stop().then(() => true),
    new Promise((resolve) => (timer2 = setTimeout(() => resolve(false), STOP_GRACE_MS))),
  ]);
  clearTimeout(timer2);
  if (stopped) outbox.close();
  else logger.warn({ held: uplink.held, graceMs: STOP_GRACE_MS }, 'uplink.stop() did not finish in time; exiting with batches in flight');
  process.disconnect?.();
  process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => void shutdown(signal));
process.on('disconnect', () => void shutdown('disconnect'));

await uplink.start();
