// Benchmark of the walking skeleton, end to end with real processes: N simulated Modbus instruments
// (copies of the two demo profiles, polled every 100 ms) -> gateway -> MQTT (broker in the server) ->
// SQLite -> socket.io -> a socket.io client here. It measures the samples per second and the latency
// from the instrument read in the gateway (sample `ts`) to arrival here, the CPU and peak RSS of each
// process, and checks that every stored row also reached the live client.
//
// Environment: BENCH_INSTRUMENTS (50), BENCH_SECONDS (20, measured window), BENCH_WARMUP_SECONDS (5),
// BENCH_POLL_MS (100), BENCH_KEEP=1 keeps the temporary directory (configs, logs, database), TMPDIR
// chooses where that directory (and so the SQLite file, written with synchronous=FULL) lives.
// CPU is in % of one core; othersCpuPercent is what the rest of the machine used meanwhile (a busy
// machine skews the figures). machineBusyPercent is in % of all cores.
// Writes bench/results/skeleton.json. Exits non-zero when a process dies or the run cannot complete.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { io } from 'socket.io-client';
import { parse, stringify } from 'yaml';
import { hashPassword, randomPassword } from '@labtrace/server';
import { clockTicks, cpuTicks, freePorts, peakRssMiB } from './lib/proc.js';

const NAME = 'skeleton';
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const PROFILES_DIR = path.join(ROOT, 'device-sim', 'profiles');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-bench';
/** The demo instruments: profile file and simulator model. */
const TEMPLATES = [
  { profile: 'climate-chamber.yaml', model: 'climate-chamber' },
  { profile: 'universal-testing-machine.yaml', model: 'universal-testing-machine' },
];
const PROCESS_NAMES = ['server', 'sim', 'gateway'];
const STOP_TIMEOUT_MS = 20_000;

function envInt(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`${NAME}: ${name}: expected an integer ${min}-${max}, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const params = {
  instruments: envInt('BENCH_INSTRUMENTS', 50, 1, 2000),
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 5, 0, 600),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
  pollIntervalMs: envInt('BENCH_POLL_MS', 100, 10, 60_000),
  simTickMs: 100,
  batch: { maxSamples: 500, maxDelayMs: 100 },
};
const keep = process.env['BENCH_KEEP'] === '1';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- setup helpers

/** Distinct free loopback ports: all probes stay open until every port is found, so none repeats. */
function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

function gitDirty() {
  try {
    return execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
  } catch {
    return null;
  }
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
function machineTicks() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = cpu[3] + (cpu[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) of a process, in MiB. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

// ---------------------------------------------------------------- processes

const procs = new Map();
let stopping = false;
let failWith = () => undefined;
/** Rejects as soon as one of the processes exits while it should be running. */
const died = new Promise((_, reject) => {
  failWith = reject;
});
died.catch(() => undefined);
/** Waits for `promise`, unless a process dies first. */
const guard = (promise) => Promise.race([promise, died]);

const LEVELS = { 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function launch(name, configFile, logDir) {
  const env = { ...process.env, PORT: '', MQTT_PORT: '', LABTRACE_DATA_DIR: '' };
  delete env['LABTRACE_GATEWAY_PASSWORD'];
  const child = spawn(process.execPath, [BIN, name, '--config', configFile], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child, pid: child.pid, tail: [], warnings: 0, errors: 0, notes: new Map(), exit: null, expectExit: false };
  const file = createWriteStream(path.join(logDir, `${name}.log`));
  const onData = () => {
    let rest = '';
    return (chunk) => {
      file.write(chunk);
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        proc.tail.push(line);
        if (proc.tail.length > 40) proc.tail.shift();
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          const key = line.trim().slice(0, 200);
          proc.notes.set(key, (proc.notes.get(key) ?? 0) + 1);
          continue;
        }
        const level = Number(entry.level);
        if (level >= 40) {
          if (level >= 50) proc.errors++;
          else proc.warnings++;
          const key = `${LEVELS[level] ?? level} ${entry.msg}`;
          proc.notes.set(key, (proc.notes.get(key) ?? 0) + 1);
        }
      }
    };
  };
  child.stdout.on('data', onData());
  child.stderr.on('data', onData());
  child.once('error', (err) => {
    proc.exit = { code: null, signal: null, error: err.message };
    if (!stopping) failWith(new Error(`${name} could not be started: ${err.message}`));
  });
  child.once('exit', (code, signal) => {
    proc.exit = { code, signal };
    file.end();
    if (!proc.expectExit && !stopping) failWith(new Error(`${name} (pid ${proc.pid}) died: ${signal ?? `exit code ${code}`}`));
  });
  procs.set(name, proc);
  return proc;
}

/** SIGTERM, then waits for the exit; SIGKILL after the timeout. Resolves with how it ended. */
async function stopProcess(name) {
  const proc = procs.get(name);
  if (!proc) return null;
  proc.expectExit = true;
  const started = Date.now();
  if (proc.exit === null) {
    const exited = new Promise((resolve) => proc.child.once('exit', resolve));
    proc.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)));
    const timedOut = await Promise.race([exited.then(() => false), timeout]);
    clearTimeout(timer);
    if (timedOut) {
      proc.child.kill('SIGKILL');
      await exited;
      return { ...proc.exit, killed: true, ms: Date.now() - started };
    }
  }
  return { ...proc.exit, killed: false, ms: Date.now() - started };
}

function killAll(signal) {
  for (const proc of procs.values()) if (proc.exit === null) proc.child.kill(signal);
}
process.once('exit', () => killAll('SIGKILL'));

async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result === true) return;
      if (typeof result === 'string') last = result;
    } catch (err) {
      last = err.message;
    }
    await guard(sleep(200));
  }
  throw new Error(`${what} not ready within ${timeoutMs / 1000} s (${last})`);
}

// ---------------------------------------------------------------- the run

async function run(tmp) {
  const confDir = path.join(tmp, 'conf');
  const profDir = path.join(tmp, 'profiles');
  const logDir = path.join(tmp, 'logs');
  for (const d of [confDir, profDir, logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });

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
  launch('server', files.server, logDir);
  const base = `http://${HOST}:${httpPort}`;
  await waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);

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
  await guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket.io client could not connect within 10 s')), 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    }),
  );

  log('starting the simulator');
  launch('sim', files.sim, logDir);
  await waitFor(
    'simulator control API',
    async () => {
      const list = await (await fetch(`http://${HOST}:${controlPort}/instruments`)).json();
      return (Array.isArray(list) && list.length === params.instruments) || `${Array.isArray(list) ? list.length : '?'} instruments`;
    },
    30_000,
  );

  log('starting the gateway');
  launch('gateway', files.gateway, logDir);
  await waitFor('first live sample', () => live.firstAt !== null || 'none yet', 30_000);
  log(`samples flowing; warm-up ${params.warmupSeconds} s`);
  await guard(sleep(params.warmupSeconds * 1000));

  // ---- the measured window
  const clkTck = clockTicks();
  const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, procs.get(n).pid]));
  const cpu0 = Object.fromEntries(PROCESS_NAMES.map((n) => [n, cpuTicks(pids[n])]));
  const machine0 = machineTicks();
  const client0 = process.cpuUsage();
  const perSecond = [];
  const cpuPeak = Object.fromEntries(PROCESS_NAMES.map((n) => [n, 0]));
  let cpuPrev = { ...cpu0 };
  let tickPrev = Date.now();
  const windowStart = Date.now();
  live.inWindow = true;
  log(`measuring ${params.seconds} s`);
  const ticker = setInterval(() => {
    const now = Date.now();
    perSecond.push(live.secondCount);
    live.secondCount = 0;
    for (const n of PROCESS_NAMES) {
      const t = cpuTicks(pids[n]);
      if (t !== null && cpuPrev[n] !== null) cpuPeak[n] = Math.max(cpuPeak[n], ((t - cpuPrev[n]) / clkTck / ((now - tickPrev) / 1000)) * 100);
      cpuPrev[n] = t;
    }
    tickPrev = now;
  }, 1000);
  try {
    await guard(sleep(params.seconds * 1000));
  } finally {
    clearInterval(ticker);
  }
  live.inWindow = false;
  const windowEnd = Date.now();
  const windowSeconds = (windowEnd - windowStart) / 1000;
  const cpu1 = Object.fromEntries(PROCESS_NAMES.map((n) => [n, cpuTicks(pids[n])]));
  const machine1 = machineTicks();
  const client1 = process.cpuUsage(client0);
  const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));
  const health = await (await guard(fetch(`${base}/api/health`))).json();
  const simStats = await (await guard(fetch(`http://${HOST}:${controlPort}/instruments`))).json();

  // ---- stop in order: gateway (flushes, waits for ACKs), simulator, server
  log('stopping gateway, simulator, server');
  stopping = true;
  const exits = {};
  exits.gateway = await stopProcess('gateway');
  exits.sim = await stopProcess('sim');
  await sleep(500); // the last batches' live updates leave the server just after their ACK
  socket.close();
  exits.server = await stopProcess('server');

  // ---- what was stored
  const db = new Database(path.join(serverDataDir, 'labtrace.sqlite'), { readonly: true, fileMustExist: true });
  let stored;
  let ingest;
  try {
    stored = db.prepare('SELECT COUNT(*) AS n FROM measurements').get().n;
    const delays = db
      .prepare('SELECT received_at - ts AS d FROM measurements WHERE ts >= ? AND ts < ? ORDER BY d')
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
    const proc = procs.get(n);
    processes[n] = {
      cpuPercent: cpu0[n] !== null && cpu1[n] !== null ? round1(((cpu1[n] - cpu0[n]) / clkTck / windowSeconds) * 100) : null,
      cpuPeakPercent: round1(cpuPeak[n]),
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
    clientCpuPercent: round1(((client1.user + client1.system) / 1e6 / windowSeconds) * 100),
    othersCpuPercent:
      machine0 && machine1
        ? round1(
            Math.max(
              0,
              ((machine1.busy - machine0.busy) / clkTck / windowSeconds) * 100 -
                Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0) -
                ((client1.user + client1.system) / 1e6 / windowSeconds) * 100,
            ),
          )
        : null,
    machineBusyPercent: machine0 && machine1 ? round1(((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100) : null,
    stored,
    received: unique,
    lost: stored - unique,
    duplicates: live.received - unique,
    seqGaps: seqSpan - unique,
    badQuality: live.bad,
    stopMs: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.ms])),
    stopExitCodes: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.code])),
  };
  const notes = [];
  const unclean = [];
  for (const n of PROCESS_NAMES) for (const [msg, count] of procs.get(n).notes) notes.push(`${n}: ${msg} (x${count})`);
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

  const cpus = os.cpus();
  const result = {
    name: NAME,
    date: new Date().toISOString(),
    commit: gitCommit(),
    dirty: gitDirty(),
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? null,
      memGiB: round1(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()}-${os.arch()}`,
    },
    params: { ...params, windowSeconds: round1(windowSeconds), clockTicksPerSecond: clkTck },
    results,
    detail: {
      perSecond,
      liveBatches: live.batches,
      liveSamplesTotal: live.received,
      simModbusRequests: simRequests,
      notes,
    },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const out = path.join(RESULTS_DIR, `${NAME}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(
    `${results.samplesPerSecond} samples/s (expected ${expectedSamplesPerSecond}); latency p50 ${results.latencyMs.p50} p90 ${results.latencyMs.p90} ` +
      `p99 ${results.latencyMs.p99} max ${results.latencyMs.max} ms; stored ${stored}, received ${unique}, lost ${results.lost}`,
  );
  for (const note of notes) log(`note: ${note}`);
  log(`wrote bench/results/${NAME}.json`);
  return { unclean };
}

// ---------------------------------------------------------------- main

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-'));
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    failWith(new Error(`interrupted by ${signal}`));
  });
}
try {
  const { unclean } = await run(tmp);
  if (unclean.length > 0) {
    // The figures stand (the result is written), but a part that does not stop cleanly is a failure.
    console.error(`${NAME}: FAILED: ${unclean.join('; ')}; configs, logs and data kept in ${tmp}`);
    process.exit(1);
  }
  if (!keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
} catch (err) {
  stopping = true;
  console.error(`${NAME}: FAILED: ${err.message}`);
  for (const proc of procs.values()) {
    if (proc.tail.length === 0) continue;
    console.error(
      `--- last lines of ${proc.name} (pid ${proc.pid}, ${proc.exit ? `exited ${proc.exit.signal ?? `code ${proc.exit.code}`}` : 'running'}):`,
    );
    // The process that ended gets more lines; the others show what they last said.
    for (const line of proc.tail.slice(proc.exit ? -20 : -5)) console.error(`  ${line}`);
  }
  killAll('SIGTERM');
  const deadline = Date.now() + 5000;
  while ([...procs.values()].some((p) => p.exit === null) && Date.now() < deadline) await sleep(100);
  killAll('SIGKILL');
  if (interrupted && !keep) rmSync(tmp, { recursive: true, force: true });
  else console.error(`${NAME}: configs, logs and data kept in ${tmp}`);
  process.exit(interrupted ? 130 : 1);
}
