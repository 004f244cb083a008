// A soak run through real processes: the device simulator, an enrolled gateway (its signing key, its outbox, its
// metrics, InfluxDB as its on-site historian) and the server with its embedded broker, on a temporary data directory,
// each started as `labtrace <part> --config` (server/test/helpers/parts.ts, the fault tests' harness). Faults come on a
// schedule (bench/lib/soak-figures.js, each fault once per cycle of about 10 minutes):
//   instrument-disconnect  the simulator drops the climate chamber's connections and refuses new ones for a while
//   influx-down            influxd killed (-9), started again after a while
//   gateway-kill           the gateway killed (-9), started again
//   server-restart         the server (and so its broker) stopped with SIGTERM and started again
//   disk-nearly-full       the server started again with a free-space reserve larger than the disk's free space (the
//                          store then refuses batches, as below its reserve on a nearly full disk), then with its own
//
//   npm run soak -- [--minutes N] [--rate N] [--no-influx] [--result FILE]     (60 minutes unless told)
//
// Checked at the end (each failure is named and the exit code is 1):
// - nothing lost or doubled: every sequence number the gateway has had acknowledged (its outbox) is stored exactly
//   once, or declared skipped in a signed record; every stored batch verifies against the gateway's keys; no sequence
//   number or batch is stored twice, none beyond what the gateway issued;
// - memory and file descriptors flat: RSS and open fds of the server and the gateway sampled every 5 s, a least-squares
//   slope per hour with one intercept per process lifetime (a restart is no step), the first minute of each left out,
//   at most LIMITS unless what it adds over the longest lifetime is within their margin (the noise of a short run);
// - the transparency log consistent: every checkpoint seen verifies with the log's key and is consistent with the one
//   before (a consistency proof), the first with the last, and the last's root rebuilt from every entry, among which
//   every stored batch's header once;
// - every fault has its alarm (see `alarmOf`), and the parts recover from it;
// - the metrics: /metrics scraped every 5 s; the stored-measurements counter of each server lifetime matches what the
//   store gained in that lifetime, and the store holds what the gateway offered (issued numbers less declared skips
//   and what is unacknowledged at the end).
// Writes bench/results/soak.json (the commit and the machine, the figures, the faults and the series) and prints a
// summary. SOAK_KEEP=1 keeps the temporary directory (configs, databases, every process's log); it is kept anyway when
// a check fails.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parse, stringify } from 'yaml';
import {
  CompactTree,
  ed25519NoteVerifier,
  fromBase64,
  leafHash,
  openBatch,
  openCheckpoint,
  parseVerifierKey,
  toHex,
  verifyConsistency,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { Influxd } from '../protocols/dist/test/helpers/influxd.js';
import { parsePrometheusText, valueOf } from '../protocols/dist/test/helpers/prometheus-text.js';
import { audit, GATEWAY, Parts } from '../server/dist/test/helpers/parts.js';
import { collect, runLabtrace } from '../server/dist/test/helpers/lab-process.js';
import { sleep } from './lib/children.js';
import { freePorts } from './lib/proc.js';
import { checkCounter, faultSchedule, FAULT_KINDS, isFlat, parseSoakArgs, pooledSlopePerHour, USAGE } from './lib/soak-figures.js';
import { round1, writeResult } from './lib/result.js';

const NAME = 'soak';
const SAMPLE_MS = 5000;
/** the server's free-space reserve in normal running (its default) */
const NORMAL_RESERVE = 64 * 1048576;
/** a reserve no disk here has free: the store keeps it from the start (as server/test/api/health.test.ts) */
const NEARLY_FULL_RESERVE = 2 ** 50;
/** the gateway's batch size (parts.ts): the counter may lag the store by what is committed between a scrape and a count */
const COUNTER_SLACK = 2 * 200;
/** flat enough: a slope per hour beyond these fails the run when it adds more than the margin in a lifetime (isFlat) */
const LIMITS = { rssMiBPerHour: 64, fdsPerHour: 30, rssMarginMiB: 24, fdsMargin: 8 };
const INFLUX_DATABASE = 'soak';

let opts;
try {
  opts = parseSoakArgs(process.argv.slice(2));
} catch (err) {
  console.error(`soak: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const DURATION_MS = Math.round(opts.minutes * 60_000);
const WARMUP_MS = Math.min(60_000, DURATION_MS * 0.1);
useNodeCrypto();
// the metrics token is the config's file, not the caller's environment
delete process.env['LABTRACE_METRICS_TOKEN'];

const parts = new Parts();
/** the output of every ended process of each part, oldest first */
const archive = { server: [], sim: [], gateway: [] };
/** parts stopped on purpose: their exit is no failure */
const expectingExit = new Set();
const failures = [];
const faults = [];
const series = { server: [], gateway: [] };
const metricSeries = [];
/** one per server process: the store's count when it started, its counter's last scrape and the count just after it */
const lifetimes = [];
const log = { verifier: null, origin: null, first: null, last: null, seen: 0, proofs: 0, problems: [] };
const observed = { scrapeErrors: { server: 0, gateway: 0 }, gatewayUplinkDown: 0, influxBacklogMax: 0 };
let influxd;
let gatewayMetricsPort = 0;
let metricsToken = '';
let loadStart = 0;
let stopSampling = false;
let serverBusy = false;
let serverScrape = Promise.resolve();
let died = null;

const note = (msg) => console.log(`soak ${new Date().toISOString().slice(11, 19)} ${msg}`);
const since = () => `${Math.round((Date.now() - loadStart) / 1000)} s`;
const pidOf = (part) => {
  const p = parts.procs.get(part)?.proc;
  return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
};
/** throws when a part died that was not stopped on purpose */
function alive() {
  if (died !== null) throw died;
  for (const part of ['server', 'sim', 'gateway']) {
    const p = parts.procs.get(part)?.proc;
    if (p && (p.exitCode !== null || p.signalCode !== null) && !expectingExit.has(part)) {
      died = new Error(`${part} (pid ${p.pid}) died: ${p.signalCode ?? `exit code ${p.exitCode}`}\n${parts.output(part).slice(-2000)}`);
      throw died;
    }
  }
}
async function wait(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    alive();
    await sleep(Math.min(500, end - Date.now()));
  }
  alive();
}
async function until(what, check, ms) {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    alive();
    try {
      if (await check()) return true;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) {
      if (what !== null) throw new Error(`timed out waiting for ${what}${last ? ` (${last})` : ''}`);
      return false;
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------- the parts

/** Starts a part as parts.ts does, keeping the output of its previous process; the server may answer 503 (low space). */
async function start(part) {
  const previous = parts.procs.get(part);
  if (previous) archive[part].push(previous.output());
  const proc = runLabtrace([part, '--config', parts.files[part]], part === 'server' ? { LABTRACE_ADMIN_PASSWORD: 'admin-secret-for-tests' } : {});
  const output = collect(proc);
  parts.procs.set(part, { proc, output });
  expectingExit.delete(part);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${part} exited during start-up:\n${output().slice(-3000)}`);
    if (part === 'gateway') {
      if (/gateway started/.test(output())) return;
    } else {
      const url = part === 'server' ? `${parts.base}/api/health` : `http://127.0.0.1:${parts.controlPort}/instruments`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      if (res !== undefined && (res.ok || (part === 'server' && res.status === 503))) return;
    }
    if (Date.now() > deadline) throw new Error(`${part} did not start within 90 s:\n${output().slice(-3000)}`);
    await sleep(100);
  }
}

async function stop(part, signal) {
  expectingExit.add(part);
  return parts.stop(part, signal);
}

function writeServerConfig(reserveBytes) {
  const config = parse(readFileSync(parts.files.server, 'utf8'));
  config.store = { ...config.store, reserveBytes };
  writeFileSync(parts.files.server, stringify(config));
}

/** A copy of a device profile polled `rate` times a second. */
function ratedProfile(file) {
  const profile = parse(readFileSync(file, 'utf8'));
  profile.pollIntervalMs = Math.max(50, Math.round(1000 / opts.rate));
  const dir = path.join(parts.dir, 'profiles');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, path.basename(file));
  writeFileSync(out, stringify(profile));
  return out;
}

async function health() {
  const res = await fetch(`${parts.base}/api/health`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

const gatewayConnected = async () => (await health()).body.gateways?.find((g) => g.id === GATEWAY)?.connected === true;

/** a scrape, read with the metrics tests' reader: get(name, labels) is the value of the one sample that matches */
function metricsOf(text) {
  const parsed = parsePrometheusText(text);
  return { get: (name, labels = {}) => valueOf(parsed, name, labels) };
}

async function serverMetrics() {
  const res = await fetch(`${parts.base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` }, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/metrics: HTTP ${res.status}`);
  return metricsOf(await res.text());
}

async function gatewayMetrics() {
  const res = await fetch(`http://127.0.0.1:${gatewayMetricsPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`gateway /metrics: HTTP ${res.status}`);
  return metricsOf(await res.text());
}

/** Reads the server's database, read-only. */
function readDb(fn) {
  const db = new Database(parts.serverDb, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The last sequence number up to which the server has acknowledged everything (the MQTT sink's confirmations). */
function ackedThrough() {
  const db = new Database(parts.outboxDb, { readonly: true, fileMustExist: true });
  try {
    const first = db
      .prepare(
        "SELECT payload FROM batches b WHERE NOT EXISTS (SELECT 1 FROM acks a WHERE a.sink = 'mqtt' AND a.batch = b.batch) ORDER BY batch LIMIT 1",
      )
      .get();
    const lastSeq = db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get()?.value ?? -1;
    if (first === undefined) return { through: lastSeq, lastSeq };
    const firstSeq = typeof first.payload === 'string' ? JSON.parse(first.payload).samples[0].seq : openBatch(first.payload).signed.header.firstSeq;
    return { through: firstSeq - 1, lastSeq };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- what is sampled every 5 s

function resources(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return { rssMiB: rss ? Number(rss[1]) / 1024 : null, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return null; // it ended meanwhile
  }
}

/** One scrape of the server's counter for its current lifetime, and the store's count just after it. */
async function scrapeServer() {
  const life = lifetimes.at(-1);
  const metrics = await serverMetrics();
  const counter = metrics.get('labtrace_ingest_measurements_stored_total');
  const atScrape = parts.stored();
  if (counter !== undefined && life.pid === pidOf('server')) {
    life.counter = counter;
    life.atScrape = atScrape;
    life.duplicates = metrics.get('labtrace_ingest_duplicate_measurements_total') ?? 0;
  }
  return { metrics, counter, atScrape };
}

/** The latest checkpoint, verified with the log's key, and consistent with the one seen before it. */
async function followLog() {
  const res = await fetch(`${parts.base}/api/log/checkpoint`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/api/log/checkpoint: HTTP ${res.status}`);
  const note = await res.text();
  const { size, rootHash } = openCheckpoint(note, [log.verifier], { origin: log.origin }).checkpoint;
  const cp = { size, root: toHex(rootHash), rootHash, at: Date.now() };
  log.seen++;
  const prev = log.last;
  if (prev === null) log.first = cp;
  else if (size < prev.size) log.problems.push(`the log went back from ${prev.size} to ${size} entries`);
  else if (size === prev.size && cp.root !== prev.root) log.problems.push(`two trees of size ${size}: ${prev.root} and ${cp.root}`);
  else if (size > prev.size && prev.size > 0) {
    const proof = await consistencyProof(prev.size, size);
    try {
      verifyConsistency(prev.size, size, prev.rootHash, rootHash, proof);
      log.proofs++;
    } catch (err) {
      log.problems.push(`checkpoint ${size} is not consistent with ${prev.size}: ${err.message}`);
    }
  }
  if (prev === null || size >= prev.size) log.last = cp;
  return cp;
}

async function consistencyProof(from, to) {
  const res = await fetch(`${parts.base}/api/log/proof/consistency?from=${from}&to=${to}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`consistency proof ${from}..${to}: HTTP ${res.status}`);
  return (await res.json()).proof.map(fromBase64);
}

async function sampleOnce() {
  const t = Date.now();
  for (const part of ['server', 'gateway']) {
    const pid = pidOf(part);
    const r = pid === undefined ? null : resources(pid);
    if (r !== null) series[part].push({ t, pid, rssMiB: round1(r.rssMiB), fds: r.fds });
  }
  const point = { t };
  if (!serverBusy) {
    const scrape = (async () => {
      const { metrics, counter } = await scrapeServer();
      Object.assign(point, {
        stored: counter ?? null,
        received: metrics.get('labtrace_ingest_measurements_received_total') ?? null,
        duplicates: metrics.get('labtrace_ingest_duplicate_measurements_total') ?? null,
        logSize: metrics.get('labtrace_log_size_entries') ?? null,
        // the JavaScript heap apart from the RSS, which also holds SQLite's page cache (bounded, and filled as the
        // store grows): a leak of the server's own objects shows here
        heapMiB: round1((metrics.get('labtrace_nodejs_heap_size_used_bytes') ?? NaN) / 2 ** 20),
        pid: pidOf('server'),
      });
      await followLog();
    })();
    serverScrape = scrape.catch(() => undefined);
    try {
      await scrape;
    } catch {
      observed.scrapeErrors.server++; // a restart under way
    }
  }
  try {
    const g = await gatewayMetrics();
    point.gatewayAcked = g.get('labtrace_gateway_batches_acknowledged_total') ?? null;
    point.uplinkConnected = g.get('labtrace_gateway_uplink_connected') ?? null;
    point.influxBacklog = g.get('labtrace_gateway_outbox_measurements', { sink: 'influx' }) ?? null;
    point.mqttBacklog = g.get('labtrace_gateway_outbox_measurements', { sink: 'mqtt' }) ?? null;
  } catch {
    observed.scrapeErrors.gateway++; // killed, or starting
  }
  metricSeries.push(point);
}

async function sampler() {
  while (!stopSampling) {
    const next = Date.now() + SAMPLE_MS;
    await sampleOnce();
    while (!stopSampling && Date.now() < next) await sleep(Math.min(250, next - Date.now()));
  }
}

// ---------------------------------------------------------------- the faults

/** SIGTERM to the server (after a last scrape of its counter), then a start with the given reserve. */
async function restartServer(reserveBytes, whileDown = async () => undefined) {
  serverBusy = true;
  try {
    await serverScrape;
    await scrapeServer().catch(() => observed.scrapeErrors.server++);
    await stop('server', 'SIGTERM');
    const downAt = Date.now();
    const down = await whileDown();
    writeServerConfig(reserveBytes);
    const before = parts.stored();
    await start('server');
    lifetimes.push({ pid: pidOf('server'), before, counter: null, atScrape: null, duplicates: 0, quiet: false, startedAt: Date.now(), reserveBytes });
    return { downMs: Date.now() - downAt, ...down };
  } finally {
    serverBusy = false;
  }
}

const INJECT = {
  async 'instrument-disconnect'(f) {
    const instruments = await (await fetch(`http://127.0.0.1:${parts.controlPort}/instruments`)).json();
    const instrument = instruments[0].id;
    const res = await fetch(`http://127.0.0.1:${parts.controlPort}/instruments/${instrument}/fault`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'disconnect', ms: f.holdMs }),
    });
    if (!res.ok) throw new Error(`the simulator refused the fault: HTTP ${res.status} ${await res.text()}`);
    await wait(f.holdMs);
    return { instrument };
  },

  async 'influx-down'(f) {
    await influxd.kill();
    let backlog = 0;
    const end = Date.now() + f.holdMs;
    while (Date.now() < end) {
      await wait(Math.min(1000, end - Date.now()));
      try {
        backlog = Math.max(backlog, (await gatewayMetrics()).get('labtrace_gateway_outbox_measurements', { sink: 'influx' }) ?? 0);
      } catch {
        // the gateway answers at the next look
      }
    }
    observed.influxBacklogMax = Math.max(observed.influxBacklogMax, backlog);
    await influxd.start();
    return { influxBacklogMax: backlog };
  },

  async 'gateway-kill'(f) {
    const killedAt = Date.now();
    await stop('gateway', 'SIGKILL');
    // the server sees the gateway go (its health)
    const serverSawItGo = await until(null, async () => !(await gatewayConnected()), 15_000);
    await wait(Math.max(0, f.holdMs - (Date.now() - killedAt)));
    await start('gateway');
    const reconnected = await until(null, gatewayConnected, 60_000);
    return { serverSawItGo, reconnected };
  },

  async 'server-restart'() {
    const r = await restartServer(NORMAL_RESERVE, async () => {
      // the gateway sees its broker go (its uplink gauge)
      const gatewaySawItGo = await until(null, async () => (await gatewayMetrics()).get('labtrace_gateway_uplink_connected') === 0, 15_000);
      return { gatewaySawItGo };
    });
    const reconnected = await until(null, gatewayConnected, 60_000);
    return { ...r, reconnected };
  },

  async 'disk-nearly-full'(f) {
    await restartServer(NEARLY_FULL_RESERVE);
    const healthSaidLowSpace = await until(null, async () => (await health()).body.store?.status === 'low-space', 30_000);
    await wait(f.holdMs);
    let refused = 0;
    try {
      refused = (await health()).body.ingest?.refusedByReason?.['store-low-space'] ?? 0;
    } catch {
      // counted as none
    }
    await restartServer(NORMAL_RESERVE);
    const reconnected = await until(null, gatewayConnected, 60_000);
    const writesAgain = await until(null, async () => (await health()).body.store?.status === 'ok', 30_000);
    return { healthSaidLowSpace, refusedWhileFull: refused, reconnected, writesAgain };
  },
};

/** The log lines (pino JSON) of every process a part has had. */
function logLines(part) {
  const text = [...archive[part], parts.output(part)].join('\n');
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // not a log line
    }
  }
  return out;
}

/**
 * Whether a fault raised what an operator would see, from what was observed during it and what is stored and logged:
 * instrument-disconnect  the gateway's warning "instrument does not answer" and a stored sample of that instrument
 *                        that is not good (its reason), both in the fault's time
 * influx-down            the gateway's warning "InfluxDB write failed" and a backlog for InfluxDB in its metrics
 * gateway-kill           the server's health showing the gateway gone, and the signed sequence-jump record of its
 *                        restart (a security event) after the kill
 * server-restart         the gateway's uplink gauge at 0 while the server was down
 * disk-nearly-full       the security event (severity alarm) "below the reserve", health saying low-space, and
 *                        batches refused meanwhile (kept by the gateway)
 * and each: the parts recovered (the gateway connected again).
 */
function alarmOf(f, gatewayLog) {
  const after = (line, from, to) => line.time >= from && line.time <= to;
  const events = (kind, severity) =>
    readDb(
      (db) =>
        db
          .prepare(
            `SELECT COUNT(*) AS n FROM security_events WHERE gateway IN (?, '') AND kind = ? AND at >= ? AND at <= ? ${severity ? 'AND severity = ?' : ''}`,
          )
          .get(...[GATEWAY, kind, f.start, f.end + 60_000, ...(severity ? [severity] : [])]).n,
    );
  switch (f.kind) {
    case 'instrument-disconnect': {
      const warned = gatewayLog.filter(
        (l) => l.msg === 'instrument does not answer' && l.instrument === f.instrument && after(l, f.start, f.end + 10_000),
      ).length;
      const badSamples = readDb(
        (db) =>
          db
            .prepare("SELECT COUNT(*) AS n FROM measurements WHERE gateway = ? AND instrument = ? AND quality <> 'good' AND ts >= ? AND ts <= ?")
            .get(GATEWAY, f.instrument, f.start, f.end + 10_000).n,
      );
      const goodAfter = readDb(
        (db) =>
          db
            .prepare("SELECT COUNT(*) AS n FROM measurements WHERE gateway = ? AND instrument = ? AND quality = 'good' AND ts > ?")
            .get(GATEWAY, f.instrument, f.end).n,
      );
      return { ok: warned > 0 && badSamples > 0 && goodAfter > 0, evidence: { warned, badSamples, goodSamplesAfter: goodAfter } };
    }
    case 'influx-down': {
      const warned = gatewayLog.filter((l) => /InfluxDB write failed|ALARM: InfluxDB/.test(l.msg ?? '') && after(l, f.start, f.end + 10_000)).length;
      return { ok: warned > 0 && f.influxBacklogMax > 0, evidence: { warned, influxBacklogMax: f.influxBacklogMax } };
    }
    case 'gateway-kill': {
      const jumps = events('sequence-jump');
      return {
        ok: f.serverSawItGo && jumps > 0 && f.reconnected,
        evidence: { serverSawItGo: f.serverSawItGo, sequenceJumpEvents: jumps, reconnected: f.reconnected },
      };
    }
    case 'server-restart':
      return { ok: f.gatewaySawItGo && f.reconnected, evidence: { gatewaySawItGo: f.gatewaySawItGo, reconnected: f.reconnected, downMs: f.downMs } };
    case 'disk-nearly-full': {
      const alarms = events('store-capacity', 'alarm');
      return {
        ok: alarms > 0 && f.healthSaidLowSpace && f.refusedWhileFull > 0 && f.reconnected && f.writesAgain,
        evidence: {
          storeCapacityAlarms: alarms,
          healthSaidLowSpace: f.healthSaidLowSpace,
          refusedWhileFull: f.refusedWhileFull,
          writesAgain: f.writesAgain,
        },
      };
    }
    default:
      return { ok: false, evidence: { error: `no alarm known for ${f.kind}` } };
  }
}

// ---------------------------------------------------------------- the run

async function setUp() {
  metricsToken = randomBytes(24).toString('hex');
  const tokenFile = path.join(parts.dir, 'metrics.token');
  writeFileSync(tokenFile, `${metricsToken}\n`, { mode: 0o600 });
  if (opts.influx) {
    influxd = await Influxd.create();
    await influxd.start();
    await influxd.createDatabase(INFLUX_DATABASE);
  }
  [gatewayMetricsPort] = await freePorts(1);
  // the server, the simulator, and the gateway enrolled (`gateway init`, `gateway enroll`) as a lab does it
  await parts.setUp({
    server: { metrics: { tokenFile }, log: { minCheckpointIntervalMs: 1000 }, store: { reserveBytes: NORMAL_RESERVE, checkIntervalMs: 1000 } },
  });
  lifetimes.push({
    pid: pidOf('server'),
    before: 0,
    counter: null,
    atScrape: null,
    duplicates: 0,
    quiet: false,
    startedAt: Date.now(),
    reserveBytes: NORMAL_RESERVE,
  });
  const gateway = parse(readFileSync(parts.files.gateway, 'utf8'));
  gateway.instruments = gateway.instruments.map((i) => ({ ...i, profile: ratedProfile(i.profile) }));
  gateway.metrics = { listen: `127.0.0.1:${gatewayMetricsPort}` };
  if (influxd) gateway.influx = { url: influxd.url, database: INFLUX_DATABASE };
  writeFileSync(parts.files.gateway, stringify(gateway));
  const keys = await (await fetch(`${parts.base}/api/log/keys`)).json();
  log.verifier = ed25519NoteVerifier(keys.log.verifierKey);
  log.origin = parseVerifierKey(keys.log.verifierKey).name;
  await start('gateway');
  await until('the gateway connected', gatewayConnected, 60_000);
}

/** Stops the load, lets the gateway deliver what it holds, and stops it: from then on nothing changes. */
async function quiesce() {
  if (influxd && !influxd.running) await influxd.start();
  await stop('sim', 'SIGTERM');
  const drained = await until(null, () => parts.outbox().held === 0, 180_000);
  await stop('gateway', 'SIGTERM');
  // the last batches the server took before the gateway went: the counter settles on the store's count
  serverBusy = true;
  await serverScrape;
  const life = lifetimes.at(-1);
  const settled = await until(
    null,
    async () => {
      await scrapeServer();
      return life.counter !== null && life.atScrape - life.before === life.counter;
    },
    15_000,
  );
  life.quiet = true;
  // a checkpoint covering the last entries (signed at most every second)
  let size = -1;
  await until(
    null,
    async () => {
      const cp = await followLog();
      const same = cp.size === size;
      size = cp.size;
      await sleep(1500);
      return same;
    },
    30_000,
  );
  return { drained, counterSettled: settled };
}

/** The last checkpoint against the first (one proof) and against every entry of the log (its root rebuilt). */
async function checkLogEnds() {
  const { first, last } = log;
  if (first === null || last === null) return log.problems.push('no checkpoint was seen');
  if (first.size > 0 && last.size > first.size) {
    try {
      verifyConsistency(first.size, last.size, first.rootHash, last.rootHash, await consistencyProof(first.size, last.size));
      log.firstToLast = true;
    } catch (err) {
      log.problems.push(`the last checkpoint (${last.size}) is not consistent with the first (${first.size}): ${err.message}`);
    }
  }
  const tree = new CompactTree();
  log.entriesByKind = {};
  while (tree.size < last.size) {
    const end = Math.min(last.size, tree.size + 1000);
    const res = await fetch(`${parts.base}/api/log/entries?start=${tree.size}&end=${end}`, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) return log.problems.push(`entries ${tree.size}..${end}: HTTP ${res.status}`);
    const { entries } = await res.json();
    if (entries.length === 0) return log.problems.push(`no entries served from ${tree.size}`);
    for (const e of entries) {
      if (e.index !== tree.size) return log.problems.push(`entry ${e.index} served where ${tree.size} was expected`);
      tree.append(leafHash(fromBase64(e.data)));
      log.entriesByKind[e.kind] = (log.entriesByKind[e.kind] ?? 0) + 1;
    }
  }
  log.rebuilt = toHex(tree.root()) === last.root;
  if (!log.rebuilt) log.problems.push(`the root of the ${last.size} entries served is not the last checkpoint's`);
}

function accounting() {
  const { through, lastSeq } = ackedThrough();
  const a = audit(parts.serverDb, GATEWAY, through);
  const store = readDb((db) => ({
    stored: db.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ?').get(GATEWAY).n,
    doubledSeqs: db
      .prepare('SELECT COUNT(*) AS n FROM (SELECT seq FROM measurements WHERE gateway = ? GROUP BY seq HAVING COUNT(*) > 1)')
      .get(GATEWAY).n,
    doubledBatches: db
      .prepare('SELECT COUNT(*) AS n FROM (SELECT batch FROM batch_headers WHERE gateway = ? GROUP BY batch HAVING COUNT(*) > 1)')
      .get(GATEWAY).n,
    beyondIssued: db.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ? AND seq > ?').get(GATEWAY, lastSeq).n,
    events: Object.fromEntries(
      db
        .prepare('SELECT kind, COUNT(*) AS n FROM security_events GROUP BY kind')
        .all()
        .map((e) => [e.kind, e.n]),
    ),
  }));
  const skipped = a.declaredJumps.reduce((s, j) => s + (j.to - j.from + 1), 0);
  const unacked = lastSeq - through;
  return {
    issued: lastSeq + 1,
    ackedThrough: through,
    declaredSkipped: skipped,
    declaredJumps: a.declaredJumps.length,
    unackedAtEnd: unacked,
    expectedStored: lastSeq + 1 - skipped - unacked - a.refusedDeclared,
    refusedDeclared: a.refusedDeclared,
    stored: store.stored,
    batches: a.batches,
    lost: a.missing.length,
    lostFirst: a.missing.slice(0, 10),
    doubled: store.doubledSeqs + store.doubledBatches,
    beyondIssued: store.beyondIssued,
    verifyFailures: a.failures,
    securityEvents: store.events,
  };
}

/** The server's JavaScript heap (scraped): its slope per hour over its lifetimes, as for the RSS. */
function heapSlope() {
  const byPid = new Map();
  for (const p of metricSeries)
    if (p.pid !== undefined && Number.isFinite(p.heapMiB)) byPid.set(p.pid, [...(byPid.get(p.pid) ?? []), { t: p.t, value: p.heapMiB }]);
  const fit = pooledSlopePerHour([...byPid.values()], WARMUP_MS);
  const flat = isFlat(fit, LIMITS.rssMiBPerHour, LIMITS.rssMarginMiB);
  return { heapMiBPerHour: round1(fit?.perHour ?? null), heapRiseMiB: round1(flat.rise), heapFlat: flat.ok };
}

function slopes(part) {
  const byPid = new Map();
  for (const p of series[part]) byPid.set(p.pid, [...(byPid.get(p.pid) ?? []), p]);
  const lives = [...byPid.values()];
  const fit = (key) =>
    pooledSlopePerHour(
      lives.map((l) => l.map((p) => ({ t: p.t, value: p[key] }))),
      WARMUP_MS,
    );
  const rss = fit('rssMiB');
  const fds = fit('fds');
  const rssFlat = isFlat(rss, LIMITS.rssMiBPerHour, LIMITS.rssMarginMiB);
  const fdsFlat = isFlat(fds, LIMITS.fdsPerHour, LIMITS.fdsMargin);
  const values = (key) => series[part].map((p) => p[key]).filter((v) => v !== null);
  return {
    rssMiBPerHour: round1(rss?.perHour ?? null),
    fdsPerHour: round1(fds?.perHour ?? null),
    rssRiseMiB: round1(rssFlat.rise),
    fdsRise: round1(fdsFlat.rise),
    rssFlat: rssFlat.ok,
    fdsFlat: fdsFlat.ok,
    points: rss?.points ?? 0,
    longestFittedMinutes: round1((rss?.spanMs ?? 0) / 60_000),
    lifetimes: lives.length,
    rssMiBMax: round1(Math.max(...values('rssMiB'))),
    fdsMax: Math.max(...values('fds')),
    fdsLast: series[part].at(-1)?.fds ?? null,
  };
}

function saveLogs() {
  const dir = path.join(parts.dir, 'logs');
  mkdirSync(dir, { recursive: true });
  for (const part of ['server', 'sim', 'gateway']) writeFileSync(path.join(dir, `${part}.log`), [...archive[part], parts.output(part)].join('\n'));
  return dir;
}

async function tearDown() {
  stopSampling = true;
  await stop('server', 'SIGTERM').catch(() => undefined);
  await parts.tearDown().catch(() => undefined);
  await influxd?.dispose().catch(() => undefined);
}

process.once('SIGINT', () => {
  console.error(`soak: interrupted; logs and databases kept in ${parts.dir}`);
  void tearDown().then(() => process.exit(130));
});

const schedule = faultSchedule(DURATION_MS, { influx: opts.influx, faults: opts.faults });
let quiet;
let fatal = null;
try {
  note(`setting up in ${parts.dir} (${opts.minutes} min, ${opts.rate} polls/s per instrument, InfluxDB ${opts.influx ? 'on' : 'off'})`);
  await setUp();
  loadStart = Date.now();
  note(`load running; ${schedule.length} faults scheduled`);
  const sampling = sampler();
  for (const planned of schedule) {
    await wait(Math.max(0, loadStart + planned.atMs - Date.now()));
    const f = { kind: planned.kind, plannedAtMs: planned.atMs, holdMs: planned.holdMs, start: Date.now() };
    note(`${since()}: ${f.kind}`);
    Object.assign(f, await INJECT[f.kind](f));
    f.end = Date.now();
    faults.push(f);
  }
  await wait(Math.max(0, loadStart + DURATION_MS - Date.now()));
  const loadEnd = Date.now();
  note(`${since()}: load stopped; delivering what the gateway holds`);
  quiet = { ...(await quiesce()), loadSeconds: Math.round((loadEnd - loadStart) / 1000) };
  stopSampling = true;
  await sampling;
  await checkLogEnds();
} catch (err) {
  fatal = err;
  failures.push(`the run did not complete: ${err.message}`);
}

// ---------------------------------------------------------------- the checks and the report

const check = (name, ok, detail) => {
  if (!ok) failures.push(`${name}: ${detail}`);
  return ok;
};
let results = {};
try {
  const acc = accounting();
  const gatewayLog = logLines('gateway');
  for (const f of faults) f.alarm = alarmOf(f, gatewayLog);
  const counter = checkCounter(lifetimes, COUNTER_SLACK);
  const server = { ...slopes('server'), ...heapSlope() };
  const gateway = slopes('gateway');
  const injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.filter((f) => f.kind === k).length]));
  const alarmed = Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.filter((f) => f.kind === k && f.alarm.ok).length]));
  if (fatal === null) {
    check('delivered', quiet.drained, 'the gateway still held batches 180 s after the load stopped');
    check(
      'nothing lost',
      acc.lost === 0,
      `${acc.lost}${acc.lost > 20 ? '+' : ''} acknowledged sequence numbers not stored, from ${acc.lostFirst.join(', ')}`,
    );
    check('nothing doubled', acc.doubled === 0, `${acc.doubled} sequence numbers or batches stored more than once`);
    check('nothing invented', acc.beyondIssued === 0, `${acc.beyondIssued} stored numbers beyond the last the gateway issued`);
    check('every batch verifies', acc.verifyFailures.length === 0, acc.verifyFailures.slice(0, 5).join('; '));
    check('the store holds the load offered', acc.stored === acc.expectedStored, `${acc.stored} stored, ${acc.expectedStored} expected`);
    check(
      'the log holds every stored batch once',
      log.entriesByKind?.['batch-header'] === acc.batches,
      `${log.entriesByKind?.['batch-header'] ?? 0} batch-header entries, ${acc.batches} stored batches`,
    );
    check('the stored counter', counter.problems.length === 0, counter.problems.join('; '));
    check(
      'the log consistent',
      log.problems.length === 0 && log.rebuilt === true && log.proofs > 0,
      log.problems.join('; ') || 'no proof or rebuild made',
    );
    for (const k of FAULT_KINDS) {
      if ((!opts.influx && k === 'influx-down') || !opts.faults.includes(k)) continue;
      check(`fault ${k} injected`, injected[k] > 0, 'never injected');
      check(`fault ${k} alarmed`, alarmed[k] === injected[k], `${injected[k] - alarmed[k]} of ${injected[k]} without their alarm`);
    }
    for (const [part, s] of [
      ['server', server],
      ['gateway', gateway],
    ]) {
      check(
        `${part} memory flat`,
        s.rssFlat,
        `RSS ${s.rssMiBPerHour} MiB/h (limit ${LIMITS.rssMiBPerHour}), ${s.rssRiseMiB} MiB over ${s.longestFittedMinutes} min (margin ${LIMITS.rssMarginMiB})`,
      );
      check(
        `${part} file descriptors flat`,
        s.fdsFlat,
        `${s.fdsPerHour} fds/h (limit ${LIMITS.fdsPerHour}), ${s.fdsRise} over ${s.longestFittedMinutes} min (margin ${LIMITS.fdsMargin})`,
      );
    }
  }
  const loadSeconds = quiet?.loadSeconds ?? null;
  results = {
    loadSeconds,
    offered: {
      issued: acc.issued,
      declaredSkipped: acc.declaredSkipped,
      measurements: acc.issued - acc.declaredSkipped,
      perSecond: loadSeconds ? round1((acc.issued - acc.declaredSkipped) / loadSeconds) : null,
    },
    delivery: {
      stored: acc.stored,
      expectedStored: acc.expectedStored,
      lost: acc.lost,
      doubled: acc.doubled,
      beyondIssued: acc.beyondIssued,
      unackedAtEnd: acc.unackedAtEnd,
      batches: acc.batches,
      declaredJumps: acc.declaredJumps,
      verifyFailures: acc.verifyFailures.length,
    },
    resources: { server, gateway, limits: LIMITS, warmupSeconds: WARMUP_MS / 1000 },
    log: {
      checkpointsSeen: log.seen,
      proofsVerified: log.proofs,
      firstSize: log.first?.size ?? null,
      lastSize: log.last?.size ?? null,
      firstToLast: log.firstToLast ?? false,
      rebuiltRootMatches: log.rebuilt ?? false,
      entriesByKind: log.entriesByKind ?? {},
      problems: log.problems,
    },
    faults: { injected, alarmed },
    metrics: {
      storedCounterTotal: counter.counted,
      serverLifetimes: lifetimes.length,
      duplicatesCounted: lifetimes.reduce((s, l) => s + (l.duplicates ?? 0), 0),
      scrapes: metricSeries.length,
      scrapeErrors: observed.scrapeErrors,
      problems: counter.problems,
    },
    securityEvents: acc.securityEvents,
    failed: failures,
  };
} catch (err) {
  failures.push(`the checks could not be made: ${err.message}`);
  results.failed = failures;
}

const logDir = saveLogs();
await tearDown();
const file = writeResult(
  NAME,
  {
    params: { minutes: opts.minutes, rate: opts.rate, influx: opts.influx, faults: opts.faults, sampleSeconds: SAMPLE_MS / 1000, schedule },
    results,
    detail: {
      faults: faults.map((f) => ({ ...f, at: Math.round((f.start - loadStart) / 1000), seconds: Math.round((f.end - f.start) / 1000) })),
      lifetimes,
      series: { resources: series, metrics: metricSeries.map((p) => ({ ...p, t: Math.round((p.t - loadStart) / 1000) })) },
    },
  },
  opts.result === null ? undefined : path.resolve(opts.result),
);

const r = results;
console.log('');
console.log(
  `soak: ${opts.minutes} min at ${opts.rate} polls/s per instrument${r.offered ? `: ${r.offered.measurements} measurements offered (${r.offered.perSecond}/s)` : ''}`,
);
if (r.delivery) {
  console.log(
    `  delivery   stored ${r.delivery.stored} of ${r.delivery.expectedStored} expected; lost ${r.delivery.lost}, doubled ${r.delivery.doubled}, unacknowledged at the end ${r.delivery.unackedAtEnd}`,
  );
  for (const part of ['server', 'gateway'])
    console.log(
      `  ${part.padEnd(10)} RSS ${r.resources[part].rssMiBPerHour} MiB/h (max ${r.resources[part].rssMiBMax} MiB), fds ${r.resources[part].fdsPerHour}/h (max ${r.resources[part].fdsMax}), ${r.resources[part].lifetimes} lifetimes${part === 'server' ? `; JavaScript heap ${r.resources.server.heapMiBPerHour} MiB/h (${r.resources.server.heapRiseMiB} MiB over the longest lifetime)` : ''}`,
    );
  console.log(
    `  log        ${r.log.checkpointsSeen} checkpoints, ${r.log.proofsVerified} consistency proofs, ${r.log.firstSize} -> ${r.log.lastSize} entries, root rebuilt: ${r.log.rebuiltRootMatches}`,
  );
  console.log(`  faults     ${FAULT_KINDS.map((k) => `${k} ${r.faults.alarmed[k]}/${r.faults.injected[k]}`).join(', ')} (alarmed/injected)`);
  console.log(
    `  metrics    stored counter ${r.metrics.storedCounterTotal} over ${r.metrics.serverLifetimes} server lifetimes, ${r.metrics.duplicatesCounted} resent duplicates counted, ${r.metrics.scrapes} scrapes`,
  );
}
console.log(`  result     ${path.relative(process.cwd(), file)}`);
if (failures.length > 0) {
  console.log(`\nsoak FAILED (${failures.length}):`);
  for (const f of failures) console.log(`  - ${f}`);
  console.log(`logs and databases kept in ${parts.dir} (logs: ${logDir})`);
  process.exit(1);
}
if (process.env['SOAK_KEEP'] === '1') console.log(`kept: ${parts.dir}`);
else rmSync(parts.dir, { recursive: true, force: true });
console.log('soak passed');
process.exit(0);
