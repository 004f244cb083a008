// Benchmark of the walking skeleton, end to end with real processes: N simulated Modbus instruments
// (copies of the two demo profiles, polled every 100 ms) -> gateway -> MQTT (broker in the server) ->
// SQLite -> socket.io -> a socket.io client here. It measures the samples per second and the latency
// from the instrument read in the gateway (sample `ts`) to arrival here, the CPU and peak RSS of each
// process, and counts the stored rows the live client did not receive: the live push is thinned to
// one sample per channel every LIVE_MIN_INTERVAL_MS (100 ms), so a channel polled at about that rate
// loses some to jitter there (never in storage).
//
// Environment: BENCH_INSTRUMENTS (50), BENCH_SECONDS (20, measured window), BENCH_WARMUP_SECONDS (5),
// BENCH_POLL_MS (100), BENCH_KEEP=1 keeps the temporary directory (configs, logs, database), TMPDIR
// chooses where that directory (and so the SQLite file, written with synchronous=FULL) lives.
// CPU is in % of one core; othersCpuPercent is what the rest of the machine used meanwhile (a busy
// machine skews the figures). machineBusyPercent is in % of all cores.
// Writes bench/results/skeleton.json. Exits non-zero when a process dies or the run cannot complete.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import Database from 'better-sqlite3';
import { io } from 'socket.io-client';
import { parse, stringify } from 'yaml';
import { hashPassword, randomPassword } from '@labtrace/server';
import { Children, cliEnv, sleep } from './lib/children.js';
import { CpuWindow } from './lib/cpu-window.js';
import { freePorts, peakRssMiB } from './lib/proc.js';
import { ROOT, percentile, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'skeleton';
const { envInt } = envReader(NAME);
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const PROFILES_DIR = path.join(ROOT, 'device-sim', 'profiles');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-bench';
/** The demo instruments: profile file and simulator model. */
const TEMPLATES = [
  { profile: 'climate-chamber.yaml', model: 'climate-chamber' },
  { profile: 'universal-testing-machine.yaml', model: 'universal-testing-machine' },
];
const PROCESS_NAMES = ['server', 'sim', 'gateway'];

const params = {
  instruments: envInt('BENCH_INSTRUMENTS', 50, 1, 2000),
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 5, 0, 600),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
  pollIntervalMs: envInt('BENCH_POLL_MS', 100, 10, 60_000),
  simTickMs: 100,
  batch: { maxSamples: 500, maxDelayMs: 100 },
};
const keep = process.env['BENCH_KEEP'] === '1';

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- the run

/** `children` (server, sim, gateway) keeps its logs in <tmp>/logs. */
async function run(tmp, children) {
  const confDir = path.join(tmp, 'conf');
  const profDir = path.join(tmp, 'profiles');
  for (const d of [confDir, profDir, children.logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  /** Starts `labtrace <name> --config <configFile>`. */
  const launch = (name, configFile) => children.launch(name, BIN, [name, '--config', configFile], { env: cliEnv() });

  // Instruments: copies of the demo profiles with distinct ids, serial numbers and ports.
  const templates = TEMPLATES.map((t) => ({ ...t, doc: parse(readFileSync(path.join(PROFILES_DIR, t.profile), 'utf8')) }));
  const [httpPort, mqttPort, controlPort, ...simPorts] = await freePorts(3 + params.instruments);
  const instruments = [];
  for (let i = 0; i < params.instruments; i++) {
    const t = templates[i % templates.length];
    const id = `${String(t.doc.id).replace(/-\d+$/, '')}-b${String(i + 1).padStart(3, '0')}`;
    const profile = {
      ...t.doc,
      id,
      identity: { ...t.doc.identity, serialNumber: `${t.doc.identity.serialNumber}-B${i + 1}` },
      connection: { ...t.doc.connection, host: HOST, port: simPorts[i] },
      pollIntervalMs: params.pollIntervalMs,
    };
    const file = path.join(profDir, `${id}.yaml`);
    writeFileSync(file, stringify(profile));
    instruments.push({ id, file, model: t.model, port: simPorts[i], points: profile.points.length });
  }
  const expectedSamplesPerSecond = instruments.reduce((sum, i) => sum + (i.points * 1000) / params.pollIntervalMs, 0);

  const password = randomPassword();
  const passwordFile = path.join(confDir, 'gateway.password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const files = { server: path.join(confDir, 'server.yaml'), sim: path.join(confDir, 'sim.yaml'), gateway: path.join(confDir, 'gateway.yaml') };
  writeFileSync(
    files.gateway,
    stringify({
      gateway: { id: GATEWAY_ID, lab: LAB },
      dataDir: path.join(tmp, 'gateway-data'),
      mqtt: { url: `mqtt://${HOST}:${mqttPort}`, username: GATEWAY_ID, passwordFile },
      batch: params.batch,
      instruments: instruments.map((i) => ({ profile: i.file, host: HOST, port: i.port })),
    }),
    { mode: 0o600 },
  );

  // The gateway signs its batches: its key is made by its own command and registered with the server.
  execFileSync(process.execPath, [BIN, 'gateway', 'init', '--config', files.gateway], { stdio: 'ignore' });
  const gatewayKey = readFileSync(path.join(tmp, 'gateway-data', 'gateway.pub'), 'utf8').trim();
  const serverDataDir = path.join(tmp, 'server-data');
  writeFileSync(
    files.server,
    stringify({
      lab: LAB,
      dataDir: serverDataDir,
      http: { host: HOST, port: httpPort },
      mqtt: { host: HOST, port: mqttPort },
      broker: { users: [{ username: GATEWAY_ID, passwordHash: await hashPassword(password), role: 'gateway', gateway: GATEWAY_ID }] },
      gateways: [{ id: GATEWAY_ID, key: gatewayKey }],
    }),
    { mode: 0o600 },
  );
  writeFileSync(
    files.sim,
    stringify({
      host: HOST,
      tickMs: params.simTickMs,
      control: { host: HOST, port: controlPort },
      instruments: instruments.map((i) => ({ profile: i.file, model: i.model, port: i.port })),
    }),
  );
  // Server first; the live client connects before any sample exists, so it can see every one.
  log(`${params.instruments} instruments, ${expectedSamplesPerSecond} samples/s expected; starting the server`);
  launch('server', files.server);
  const base = `http://${HOST}:${httpPort}`;
  await children.waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);

  const live = {
    received: 0,
    seqs: new Set(),
    bad: 0,
    batches: 0,
    inWindow: false,
    windowCount: 0,
    secondCount: 0,
    latencies: [],
    firstAt: null,
  };
  const socket = io(base, { transports: ['websocket'], reconnection: true });
  let disconnects = 0;
  socket.on('disconnect', () => disconnects++);
  socket.on('samples', (batch) => {
    const now = Date.now();
    live.batches++;
    live.firstAt ??= now;
    for (const s of batch) {
      live.received++;
      live.seqs.add(s.seq);
      if (s.quality !== 'good') live.bad++;
      if (live.inWindow) {
        live.windowCount++;
        live.secondCount++;
        live.latencies.push(now - s.ts);
      }
    }
  });
  await children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket.io client could not connect within 10 s')), 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    }),
  );

  log('starting the simulator');
  launch('sim', files.sim);
  await children.waitFor(
    'simulator control API',
    async () => {
      const list = await (await fetch(`http://${HOST}:${controlPort}/instruments`)).json();
      return (Array.isArray(list) && list.length === params.instruments) || `${Array.isArray(list) ? list.length : '?'} instruments`;
    },
    30_000,
  );

  log('starting the gateway');
  launch('gateway', files.gateway);
  await children.waitFor('first live sample', () => live.firstAt !== null || 'none yet', 30_000);
  log(`samples flowing; warm-up ${params.warmupSeconds} s`);
  await children.guard(sleep(params.warmupSeconds * 1000));

  // ---- the measured window
  const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, children.get(n).pid]));
  const cpu = new CpuWindow(pids);
  const perSecond = [];
  const windowStart = cpu.startedAt;
  live.inWindow = true;
  log(`measuring ${params.seconds} s`);
  const ticker = setInterval(() => {
    perSecond.push(live.secondCount);
    live.secondCount = 0;
    cpu.sample();
  }, 1000);
  try {
    await children.guard(sleep(params.seconds * 1000));
  } finally {
    clearInterval(ticker);
  }
  live.inWindow = false;
  const windowEnd = Date.now();
  cpu.end();
  const windowSeconds = cpu.seconds;
  const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));
  const health = await (await children.guard(fetch(`${base}/api/health`))).json();
  const simStats = await (await children.guard(fetch(`http://${HOST}:${controlPort}/instruments`))).json();

  // ---- stop in order: gateway (flushes, waits for ACKs), simulator, server
  log('stopping gateway, simulator, server');
  children.stopping = true;
  const exits = {};
  exits.gateway = await children.stop('gateway');
  exits.sim = await children.stop('sim');
  await sleep(500); // the last batches' live updates leave the server just after their ACK
  socket.close();
  exits.server = await children.stop('server');

  // ---- what was stored
  const db = new Database(path.join(serverDataDir, 'labtrace.sqlite'), { readonly: true, fileMustExist: true });
  let stored;
  let ingest;
  try {
    stored = db.prepare('SELECT COUNT(*) AS n FROM measurements').get().n;
    const delays = db
      // the time a sample's batch was stored, less the sample's own time
      .prepare(
        `SELECT b.received_at - m.ts AS d FROM measurements m
           JOIN batch_headers b ON b.gateway = m.gateway AND m.seq >= b.first_seq AND m.seq < b.first_seq + b.count
          WHERE m.ts >= ? AND m.ts < ? ORDER BY d`,
      )
      .pluck()
      .all(windowStart, windowEnd);
    ingest = { p50: percentile(delays, 50), p99: percentile(delays, 99), max: delays.at(-1) ?? null };
  } finally {
    db.close();
  }

  const sorted = live.latencies.sort((a, b) => a - b);
  const unique = live.seqs.size;
  let seqMin = Infinity;
  let seqMax = -Infinity;
  for (const seq of live.seqs) {
    if (seq < seqMin) seqMin = seq;
    if (seq > seqMax) seqMax = seq;
  }
  const seqSpan = unique === 0 ? 0 : seqMax - seqMin + 1;
  const processes = {};
  for (const n of ['server', 'gateway', 'sim']) {
    const proc = children.get(n);
    processes[n] = {
      cpuPercent: round1(cpu.percent(n)),
      cpuPeakPercent: round1(cpu.peak(n)),
      peakRssMiB: round1(rss[n]),
      logWarnings: proc.warnings,
      logErrors: proc.errors,
    };
  }
  const results = {
    samplesPerSecond: round1(live.windowCount / windowSeconds),
    expectedSamplesPerSecond,
    samplesPerSecondRange: { min: perSecond.length ? Math.min(...perSecond) : null, max: perSecond.length ? Math.max(...perSecond) : null },
    latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? null },
    ingestLatencyMs: ingest,
    processes,
    clientCpuPercent: round1(cpu.selfPercent()),
    othersCpuPercent:
      cpu.machinePercent('busy') === null
        ? null
        : round1(
            Math.max(0, cpu.machinePercent('busy') - Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0) - cpu.selfPercent()),
          ),
    machineBusyPercent: round1(cpu.machineBusyShare()),
    stored,
    received: unique,
    notPushedLive: stored - unique,
    duplicates: live.received - unique,
    seqGaps: seqSpan - unique,
    badQuality: live.bad,
    stopMs: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.ms])),
    stopExitCodes: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.code])),
  };
  const notes = [];
  const unclean = [];
  for (const n of PROCESS_NAMES) for (const [msg, count] of children.get(n).notes) notes.push(`${n}: ${msg} (x${count})`);
  for (const n of ['gateway', 'sim', 'server']) {
    const e = exits[n];
    if (e.killed || e.code !== 0)
      unclean.push(
        `${n} did not stop cleanly: ${e.killed ? 'SIGKILL after the timeout' : e.signal ? `ended by ${e.signal}` : `exit code ${e.code}`} after ${e.ms} ms`,
      );
  }
  notes.push(...unclean);
  if (disconnects > 1) notes.push(`socket.io client disconnected ${disconnects - 1} time(s) during the run`);
  const gw = health.gateways?.find((g) => g.id === GATEWAY_ID);
  if (health.status !== 'ok' || gw?.connected !== true) notes.push(`health at the end of the window: ${JSON.stringify(health)}`);
  const simRequests = Array.isArray(simStats) ? simStats.reduce((sum, i) => sum + (i.requests ?? 0), 0) : null;

  const file = writeResult(NAME, {
    params: { ...params, windowSeconds: round1(windowSeconds), clockTicksPerSecond: cpu.clkTck },
    results,
    detail: {
      perSecond,
      liveBatches: live.batches,
      liveSamplesTotal: live.received,
      simModbusRequests: simRequests,
      notes,
    },
  });
  log(
    `${results.samplesPerSecond} samples/s (expected ${expectedSamplesPerSecond}); latency p50 ${results.latencyMs.p50} p90 ${results.latencyMs.p90} ` +
      `p99 ${results.latencyMs.p99} max ${results.latencyMs.max} ms; stored ${stored}, received live ${unique} (thinned: ${results.notPushedLive})`,
  );
  for (const note of notes) log(`note: ${note}`);
  log(`wrote ${path.relative(ROOT, file)}`);
  return { unclean };
}

// ---------------------------------------------------------------- main

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-'));
const children = new Children({ cwd: ROOT, logDir: path.join(tmp, 'logs') });
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    children.fail(new Error(`interrupted by ${signal}`));
  });
}
try {
  const { unclean } = await run(tmp, children);
  if (unclean.length > 0) {
    // The figures stand (the result is written), but a part that does not stop cleanly is a failure.
    console.error(`${NAME}: FAILED: ${unclean.join('; ')}; configs, logs and data kept in ${tmp}`);
    process.exit(1);
  }
  if (!keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
} catch (err) {
  children.stopping = true;
  console.error(`${NAME}: FAILED: ${err.message}`);
  children.printTails();
  await children.killAllGracefully();
  if (interrupted && !keep) rmSync(tmp, { recursive: true, force: true });
  else console.error(`${NAME}: configs, logs and data kept in ${tmp}`);
  process.exit(interrupted ? 130 : 1);
}
