// Benchmark of the gateway's Modbus engine at scale, with real processes: one gateway polls N simulated
// instruments (20 holding registers each, read as 10 float32 points in one request) every 100 ms, so
// 500 instruments make 5,000 requests/s (see below). Target (issue): under half of one core for the gateway.
// It measures the CPU of each process (gateway, simulator, server with its MQTT broker), the gateway's
// peak RSS, the requests/s the simulator answered (sum of its `requests` counters over the window), and
// from the gateway's last HEALTH message (read as an MQTT reader) the poll jitter and the request
// latency (median over instruments of their p50, median and max of their p99), the breakers that are not
// closed and the error counters. Reporting is "change" with a deadband and the simulated values are
// constant (the 'constant' model, each channel pinned to a non-zero value). The gateway runs as in a lab: its
// key (made as 'labtrace gateway init' makes it) is registered with the server, so every batch is signed and
// acknowledged, and reporting is "both": on change and at least every BENCH_REPORT_PERIOD_MS (1,000 ms), so each
// point is sent once a second (5,000 samples/s for 500 instruments). The samples published are counted (DATA, as
// an MQTT reader) and so are the samples the server stored (its database, once stopped): every batch published
// must be stored, and the server must log no warning (an unsigned or refused batch is one).
//
// Then, the gateway stopped, against one simulated instrument and in this process: the requests/s of
// ONE connection of the gateway's ModbusLink (sequential requests), next to the raw round-trip limit
// of a minimal net.Socket client (a fixed pre-encoded request, the next one sent when the whole reply
// has arrived), and their ratio.
//
// Note: 20 contiguous registers are one read, so 500 instruments at 10 Hz make 5,000 requests/s;
// BENCH_REQUESTS_PER_POLL=2 (limits.maxRegisters 10) makes two reads per poll, the 10,000 of the issue.
//
// Environment: BENCH_INSTRUMENTS (500), BENCH_POLL_MS (100), BENCH_REQUESTS_PER_POLL (1), BENCH_SECONDS (20, measured window),
// BENCH_WARMUP_SECONDS (5), BENCH_ONE_SECONDS (3, each one-connection run), BENCH_REPORT_PERIOD_MS (1000; 0: on change only), BENCH_KEEP=1 keeps the
// temporary directory (configs, logs), BENCH_CPU_PROF=1 runs the gateway with --cpu-prof and adds the
// hot spots of the measured window to the result (profiling costs CPU: the figures are then not the
// clean ones).
// CPU is in % of one core; othersCpuPercent is what the rest of the machine used meanwhile (a busy
// machine skews the figures; re-run when it is high). machineBusyPercent is in % of all cores.
// Writes bench/results/gateway-modbus.json. Exits non-zero when a process dies or the run cannot complete.
import { Buffer } from 'node:buffer';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { isSealedBatch, openBatch } from '@labtrace/protocols';
import { createIdentity } from '../gateway/dist/src/identity/identity.js';
import { ModbusLink } from '@labtrace/gateway';
import { hashPassword, randomPassword } from '@labtrace/server';
import { Children, cliEnv, sleep } from './lib/children.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { CpuWindow } from './lib/cpu-window.js';
import { clockTicks, cpuTicks, freePorts, peakRssMiB } from './lib/proc.js';
import { ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'gateway-modbus';
const { envInt } = envReader(NAME);
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-modbus-bench';
const READER = 'bench-reader';
const UNIT = 1;
const REGISTERS = 20;
const POINTS = REGISTERS / 2; // float32, two registers each
const TIMEOUT_MS = 1000;
const PROCESS_NAMES = ['server', 'sim', 'gateway'];
/** the gateway keeps its latency and jitter percentiles over this many polls per instrument (LATENCY_WINDOW) */
const GATEWAY_PERCENTILE_WINDOW = 512;
/** above this, the rest of the machine was busy enough to skew the figures */
const BUSY_OTHERS_PERCENT = 15;

const params = {
  instruments: envInt('BENCH_INSTRUMENTS', 500, 1, 5000),
  registersPerInstrument: REGISTERS,
  pointsPerInstrument: POINTS,
  /** 1: the 20 registers in one read; 2: limits.maxRegisters 10 splits them into two reads per poll */
  requestsPerPoll: envInt('BENCH_REQUESTS_PER_POLL', 1, 1, 2),
  pollIntervalMs: envInt('BENCH_POLL_MS', 100, 10, 60_000),
  timeoutMs: TIMEOUT_MS,
  simModel: 'constant',
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 5, 0, 600),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
  oneConnectionSeconds: envInt('BENCH_ONE_SECONDS', 3, 1, 600),
  cpuProfile: process.env['BENCH_CPU_PROF'] === '1',
  reportPeriodMs: envInt('BENCH_REPORT_PERIOD_MS', 1000, 0, 86_400_000),
};
const REPORTING =
  params.reportPeriodMs === 0
    ? { mode: 'change', deadband: 0.001 }
    : { mode: 'both', deadband: 0.001, periodMs: Math.max(10, params.reportPeriodMs) };
params.reporting = REPORTING;
const keep = process.env['BENCH_KEEP'] === '1';

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
/** CLOCK_MONOTONIC in microseconds: the clock of V8's CPU profiles on Linux */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

// ---------------------------------------------------------------- summaries

/** Median of the finite numbers in `values`; null when there are none. */
function median(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Largest of the finite numbers in `values`; null when there are none. */
function maxOf(values) {
  const finite = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  return finite.length === 0 ? null : Math.max(...finite);
}

// ---------------------------------------------------------------- one connection, in this process

/** Sequential requests on one connection of the gateway's own ModbusLink. */
async function linkRun(port, warmupMs, ms) {
  const link = new ModbusLink({ transport: 'tcp', host: HOST, port }, { maxQueue: 16, pacingMs: 0 });
  const request = { fc: 3, address: 0, quantity: REGISTERS };
  try {
    const check = (reply) => {
      if (reply.kind !== 'registers' || reply.registers.length !== REGISTERS) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
    };
    const warmEnd = Date.now() + warmupMs;
    while (Date.now() < warmEnd) check((await link.request(UNIT, request, TIMEOUT_MS)).reply);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const end = Date.now() + ms;
    let count = 0;
    while (Date.now() < end) {
      check((await link.request(UNIT, request, TIMEOUT_MS)).reply);
      count++;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { count, seconds, clientCpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100, counters: { ...link.counters } };
  } finally {
    await link.close();
  }
}

/** The raw round-trip limit: a fixed pre-encoded MBAP request, the next sent once the whole reply is in. */
function rawRun(port, warmupMs, ms) {
  return new Promise((resolve, reject) => {
    // transaction 1, protocol 0, length 6, unit, FC3, address 0, quantity
    const request = Buffer.from([0, 1, 0, 0, 0, 6, UNIT, 3, 0, 0, REGISTERS >> 8, REGISTERS & 0xff]);
    const replyLength = 9 + 2 * REGISTERS;
    const socket = net.connect(port, HOST);
    socket.setNoDelay(true);
    let bytes = 0;
    let replies = 0;
    let measuring = false;
    let count = 0;
    let t0 = 0n;
    let cpu0;
    let end = 0;
    const timer = setTimeout(
      () => {
        socket.destroy();
        reject(new Error(`raw client: no progress (${replies} replies)`));
      },
      warmupMs + ms + 10_000,
    );
    const finish = () => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      clearTimeout(timer);
      socket.destroy();
      resolve({ count, seconds, clientCpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100, bytes });
    };
    const warmEnd = Date.now() + warmupMs;
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      bytes += chunk.length;
      while (bytes >= (replies + 1) * replyLength) {
        replies++;
        if (measuring) count++;
        const now = Date.now();
        if (!measuring && now >= warmEnd) {
          measuring = true;
          cpu0 = process.cpuUsage();
          t0 = process.hrtime.bigint();
          end = now + ms;
        } else if (measuring && now >= end) {
          finish();
          return;
        }
        socket.write(request);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`raw client: ${err.message}`));
    });
  });
}

// ---------------------------------------------------------------- the run

/** `children` (server, sim, gateway) keeps its logs in <tmp>/logs. */
async function run(tmp, children) {
  const confDir = path.join(tmp, 'conf');
  const profDir = path.join(tmp, 'profiles');
  const cpuProfDir = path.join(tmp, 'cpu-prof');
  for (const d of [confDir, profDir, children.logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  /** Starts `labtrace <name> --config <configFile>`, with `nodeArgs` before the script. */
  const launch = (name, configFile, nodeArgs = []) => children.launch(name, BIN, [name, '--config', configFile], { env: cliEnv(), nodeArgs });

  // Instruments: 10 float32 ABCD points at holding registers 0..19, each on its own simulator port.
  const [httpPort, mqttPort, controlPort, ...simPorts] = await freePorts(3 + params.instruments);
  const points = Array.from({ length: POINTS }, (_, k) => ({
    name: `ch${String(k).padStart(2, '0')}`,
    register: 'holding',
    address: 2 * k,
    type: 'float32',
    order: 'ABCD',
    unit: 'V',
  }));
  const instruments = [];
  for (let i = 0; i < params.instruments; i++) {
    const id = `bench-${String(i + 1).padStart(4, '0')}`;
    const profile = {
      protocol: 'modbus',
      id,
      identity: { maker: 'labtrace', model: 'bench-constant', serialNumber: `BENCH-${i + 1}` },
      connection: { transport: 'tcp', host: HOST, port: simPorts[i] },
      unitId: UNIT,
      pollIntervalMs: params.pollIntervalMs,
      timeoutMs: TIMEOUT_MS,
      reporting: REPORTING,
      ...(params.requestsPerPoll === 2 ? { limits: { maxRegisters: REGISTERS / 2 } } : {}),
      points,
    };
    const file = path.join(profDir, `${id}.yaml`);
    writeFileSync(file, stringify(profile));
    // constant but not trivial values (a float32 0 decodes on a shortcut), pinned in the simulator below
    const values = Object.fromEntries(points.map((pt, k) => [pt.name, Number((1.234 + 10.37 * k + 0.0113 * i).toFixed(4))]));
    instruments.push({ id, file, port: simPorts[i], values });
  }
  const requestsPerPoll = params.requestsPerPoll; // checked against the simulator's counters below
  const expectedRequestsPerSecond = round1((params.instruments * requestsPerPoll * 1000) / params.pollIntervalMs);

  const gatewayPassword = randomPassword();
  const readerPassword = randomPassword();
  const passwordFile = path.join(confDir, 'gateway.password');
  writeFileSync(passwordFile, `${gatewayPassword}\n`, { mode: 0o600 });
  const files = { server: path.join(confDir, 'server.yaml'), sim: path.join(confDir, 'sim.yaml'), gateway: path.join(confDir, 'gateway.yaml') };
  const gatewayData = path.join(tmp, 'gateway-data');
  const serverData = path.join(tmp, 'server-data');
  // the gateway's key, made as 'labtrace gateway init' makes it, registered with the server: every batch is signed
  const { verifierKey } = createIdentity(GATEWAY_ID, gatewayData);
  writeFileSync(
    files.server,
    stringify({
      lab: LAB,
      dataDir: serverData,
      http: { host: HOST, port: httpPort },
      mqtt: { host: HOST, port: mqttPort },
      broker: {
        users: [
          { username: GATEWAY_ID, passwordHash: await hashPassword(gatewayPassword), role: 'gateway', gateway: GATEWAY_ID },
          { username: READER, passwordHash: await hashPassword(readerPassword), role: 'reader' },
        ],
      },
      gateways: [{ id: GATEWAY_ID, key: verifierKey }],
    }),
    { mode: 0o600 },
  );
  writeFileSync(
    files.sim,
    stringify({
      host: HOST,
      tickMs: 100,
      control: { host: HOST, port: controlPort },
      instruments: instruments.map((i) => ({ profile: i.file, model: 'constant', port: i.port })),
    }),
  );
  writeFileSync(
    files.gateway,
    stringify({
      gateway: { id: GATEWAY_ID, lab: LAB },
      dataDir: gatewayData,
      mqtt: { url: `mqtt://${HOST}:${mqttPort}`, username: GATEWAY_ID, passwordFile },
      instruments: instruments.map((i) => ({ profile: i.file })),
    }),
    { mode: 0o600 },
  );

  log(`${params.instruments} instruments every ${params.pollIntervalMs} ms: ${expectedRequestsPerSecond} requests/s expected; starting the server`);
  launch('server', files.server);
  const base = `http://${HOST}:${httpPort}`;
  await children.waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);

  // The reader subscribes before the gateway starts: HEALTH is QoS 0 and not retained.
  const healthTopic = `labtrace/v1/${LAB}/${GATEWAY_ID}/HEALTH`;
  const dataTopic = `labtrace/v1/${LAB}/${GATEWAY_ID}/DATA`;
  const healths = [];
  let badHealth = 0;
  /** samples the gateway sent up (DATA), in total and in the measured window */
  const uplink = { samples: 0, windowSamples: 0, inWindow: false };
  const reader = mqtt.connect(`mqtt://${HOST}:${mqttPort}`, {
    username: READER,
    password: readerPassword,
    clientId: `bench-reader-${process.pid}`,
    reconnectPeriod: 1000,
  });
  reader.on('message', (topic, payload) => {
    if (topic === dataTopic) {
      try {
        const n = isSealedBatch(payload) ? openBatch(payload).samples.length : (JSON.parse(payload.toString('utf8')).samples?.length ?? 0);
        uplink.samples += n;
        if (uplink.inWindow) uplink.windowSamples += n;
      } catch {
        badHealth++;
      }
      return;
    }
    try {
      const msg = JSON.parse(payload.toString('utf8'));
      healths.push({ at: Date.now(), msg });
      if (healths.length > 100) healths.shift();
    } catch {
      badHealth++;
    }
  });
  reader.on('error', (err) => log(`reader: ${err.message}`));
  await children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('MQTT reader could not connect within 10 s')), 10_000);
      reader.once('connect', () => {
        reader.subscribe([healthTopic, dataTopic], { qos: 0 }, (err, granted) => {
          clearTimeout(timer);
          if (err) return reject(err);
          if (granted?.length !== 2 || granted.some((g) => g.qos === 128)) return reject(new Error(`subscription to ${healthTopic} or DATA refused`));
          resolve();
        });
      });
    }),
  );

  log('starting the simulator');
  launch('sim', files.sim);
  const simUrl = `http://${HOST}:${controlPort}/instruments`;
  const simRequests = async () => {
    const started = Date.now();
    const list = await (await children.guard(fetch(simUrl))).json();
    const at = (started + Date.now()) / 2;
    return { at, total: list.reduce((sum, i) => sum + (i.requests ?? 0), 0), list };
  };
  await children.waitFor(
    'simulator control API',
    async () => {
      const list = await (await fetch(simUrl)).json();
      return (Array.isArray(list) && list.length === params.instruments) || `${Array.isArray(list) ? list.length : '?'} instruments`;
    },
    60_000,
  );
  // Pin the values (20 at a time); the 'constant' model serves what is pinned.
  for (let i = 0; i < instruments.length; i += 20) {
    await children.guard(
      Promise.all(
        instruments.slice(i, i + 20).map(async (inst) => {
          const res = await fetch(`${simUrl}/${inst.id}/values`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(inst.values),
          });
          if (!res.ok) throw new Error(`pinning the values of ${inst.id}: HTTP ${res.status} ${await res.text()}`);
        }),
      ),
    );
  }

  log(`starting the gateway${params.cpuProfile ? ' (with --cpu-prof)' : ''}`);
  const gatewayArgs = params.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const gatewayStarted = Date.now();
  launch('gateway', files.gateway, gatewayArgs);
  await children.waitFor(
    'every instrument polled (HEALTH)',
    () => {
      const last = healths.at(-1)?.msg;
      if (!last) return 'no HEALTH yet';
      const polled = last.instruments.filter((i) => i.connected && i.polls > 0).length;
      return polled === params.instruments || `${polled}/${params.instruments} connected and polled`;
    },
    60_000,
  );
  log(`all ${params.instruments} instruments polled after ${((Date.now() - gatewayStarted) / 1000).toFixed(1)} s; warm-up ${params.warmupSeconds} s`);
  await children.guard(sleep(params.warmupSeconds * 1000));

  // ---- the measured window
  const clkTck = clockTicks();
  const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, children.get(n).pid]));
  const req0 = await simRequests();
  const cpu = new CpuWindow(pids, clkTck);
  const windowStartUs = monoUs();
  const healthAtStart = healths.length === 0 ? null : healths.at(-1);
  uplink.inWindow = true;
  const perSecondGatewayCpu = [];
  log(`measuring ${params.seconds} s`);
  const ticker = setInterval(() => {
    const { gateway } = cpu.sample();
    if (gateway !== null) perSecondGatewayCpu.push(round1(gateway));
  }, 1000);
  try {
    await children.guard(sleep(params.seconds * 1000));
  } finally {
    clearInterval(ticker);
  }
  cpu.end();
  uplink.inWindow = false;
  const windowEndUs = monoUs();
  const windowSeconds = cpu.seconds;
  const req1 = await simRequests();
  const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));

  // The next HEALTH message (every 5 s) is the one that covers the window's end.
  const healthsBefore = healths.length;
  const lastBefore = healths.at(-1);
  await children.waitFor(
    'a HEALTH message after the window',
    () => healths.at(-1) !== lastBefore || healths.length > healthsBefore || 'waiting',
    15_000,
  );
  const health = healths.at(-1);
  const hInstr = health.msg.instruments;
  let gatewayPollsPerSecond = null;
  if (healthAtStart && health.msg.ts > healthAtStart.msg.ts) {
    const polls = (h) => h.msg.instruments.reduce((s, i) => s + (i.polls ?? 0), 0);
    gatewayPollsPerSecond = round1((polls(health) - polls(healthAtStart)) / ((health.msg.ts - healthAtStart.msg.ts) / 1000));
  }
  const errorsByKind = {};
  for (const i of hInstr) for (const [kind, n] of Object.entries(i.errors ?? {})) errorsByKind[kind] = (errorsByKind[kind] ?? 0) + n;
  const errors = Object.values(errorsByKind).reduce((a, b) => a + b, 0);
  const breakersOpen = hInstr.filter((i) => i.breaker !== undefined && i.breaker !== 'closed').length;
  const disconnected = hInstr.filter((i) => !i.connected).length;

  // ---- the gateway stops; then one connection against one simulated instrument, in this process
  log('stopping the gateway');
  const exits = {};
  exits.gateway = await children.stop('gateway');
  reader.end(true);
  // Alternating rounds (link, raw, link, raw, ...) so that a passing load on the machine hits both alike.
  const oneRounds = params.oneConnectionSeconds;
  const oneWarmupMs = 1000;
  const oneRoundMs = (params.oneConnectionSeconds * 1000) / oneRounds;
  const port = instruments[0].port;
  const measureRound = async (fn) => {
    const s0 = cpuTicks(pids.sim);
    const t0 = Date.now();
    const out = await children.guard(fn());
    const s1 = cpuTicks(pids.sim);
    return { ...out, simSeconds: s0 !== null && s1 !== null ? (s1 - s0) / clkTck : null, wallSeconds: (Date.now() - t0) / 1000 };
  };
  const sum = (rounds) => {
    const count = rounds.reduce((a, r) => a + r.count, 0);
    const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
    const clientCpu = rounds.reduce((a, r) => a + (r.clientCpuPercent / 100) * r.seconds, 0);
    const simCpu = rounds.every((r) => r.simSeconds !== null) ? rounds.reduce((a, r) => a + r.simSeconds, 0) : null;
    const wall = rounds.reduce((a, r) => a + r.wallSeconds, 0);
    return {
      count,
      seconds,
      requestsPerSecond: count / seconds,
      clientCpuPercent: (clientCpu / seconds) * 100,
      simCpuPercent: simCpu === null ? null : (simCpu / wall) * 100,
      perRound: rounds.map((r) => round1(r.count / r.seconds)),
    };
  };
  log(
    `one connection to ${instruments[0].id}: the gateway's ModbusLink and a raw socket client, ${oneRounds} alternating rounds of ${oneRoundMs} ms each`,
  );
  const linkRounds = [];
  const rawRounds = [];
  let linkCounters = null;
  for (let r = 0; r < oneRounds; r++) {
    const warm = r === 0 ? oneWarmupMs : 200;
    const l = await measureRound(() => linkRun(port, warm, oneRoundMs));
    linkRounds.push(l);
    linkCounters = linkCounters ?? { ...l.counters };
    if (r > 0) for (const [k, v] of Object.entries(l.counters)) linkCounters[k] += v;
    rawRounds.push(await measureRound(() => rawRun(port, warm, oneRoundMs)));
  }
  const linkOne = { ...sum(linkRounds), counters: linkCounters };
  const rawOne = sum(rawRounds);
  const linkRps = linkOne.requestsPerSecond;
  const rawRps = rawOne.requestsPerSecond;

  log('stopping the simulator and the server');
  children.stopping = true;
  exits.sim = await children.stop('sim');
  exits.server = await children.stop('server');
  // what the server stored (acknowledged): every sample the gateway published should be there, signed and verified
  let storedSamples = null;
  try {
    const db = new Database(path.join(serverData, 'labtrace.sqlite'), { readonly: true, fileMustExist: true });
    try {
      storedSamples = db.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM batch_headers').get().n;
    } finally {
      db.close();
    }
  } catch (err) {
    log(`cannot read the server's store: ${err.message}`);
  }

  // ---- results
  const processes = {};
  for (const n of PROCESS_NAMES) {
    const proc = children.get(n);
    processes[n] = {
      cpuPercent: round1(cpu.percent(n)),
      cpuPeakPercent: round1(cpu.peak(n)),
      peakRssMiB: round1(rss[n]),
      logWarnings: proc.warnings,
      logErrors: proc.errors,
    };
  }
  const selfCpuPercent = cpu.selfPercent();
  const machineDelta = (k) => cpu.machinePercent(k);
  const ours = Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0) + selfCpuPercent;
  // What other processes were charged with; interrupt time and steal are reported apart.
  const othersCpuPercent = machineDelta('proc') === null ? null : round1(Math.max(0, machineDelta('proc') - ours));
  const requestsPerSecond = round1((req1.total - req0.total) / ((req1.at - req0.at) / 1000));
  const gatewayCpu = processes.gateway.cpuPercent;
  const results = {
    requestsPerSecond,
    expectedRequestsPerSecond,
    gateway: processes.gateway,
    sim: processes.sim,
    server: processes.server,
    pollJitterMs: {
      p50: median(hInstr.map((i) => i.pollJitterMs?.p50)),
      p99: median(hInstr.map((i) => i.pollJitterMs?.p99)),
      p99Max: maxOf(hInstr.map((i) => i.pollJitterMs?.p99)),
    },
    latencyMs: {
      p50: median(hInstr.map((i) => i.latencyMs?.p50)),
      p99: median(hInstr.map((i) => i.latencyMs?.p99)),
      p99Max: maxOf(hInstr.map((i) => i.latencyMs?.p99)),
    },
    breakersOpen,
    disconnected,
    errors,
    uplinkSamplesPerSecond: round1(uplink.windowSamples / windowSeconds),
    uplink: { published: uplink.samples, stored: storedSamples, allStored: storedSamples !== null && storedSamples >= uplink.samples },
    oneConnection: {
      gatewayLinkRequestsPerSecond: round1(linkRps),
      rawSocketRequestsPerSecond: round1(rawRps),
      ratio: rawRps > 0 ? Math.round((linkRps / rawRps) * 1000) / 1000 : null,
      gatewayLinkClientCpuPercent: round1(linkOne.clientCpuPercent),
      rawSocketClientCpuPercent: round1(rawOne.clientCpuPercent),
      simCpuPercentDuringLink: round1(linkOne.simCpuPercent),
      simCpuPercentDuringRaw: round1(rawOne.simCpuPercent),
    },
    benchCpuPercent: round1(selfCpuPercent),
    othersCpuPercent,
    irqCpuPercent: round1(machineDelta('irq')),
    stealCpuPercent: round1(machineDelta('steal')),
    machineBusyPercent: round1(cpu.machineBusyShare()),
    meetsTarget:
      requestsPerSecond !== null &&
      gatewayCpu !== null &&
      requestsPerSecond >= 0.95 * expectedRequestsPerSecond &&
      gatewayCpu < 50 &&
      storedSamples !== null &&
      storedSamples >= uplink.samples &&
      processes.server.logWarnings === 0,
    stopExitCodes: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.code])),
  };

  const notes = [
    REPORTING.mode === 'both'
      ? `reporting is "both" with deadband ${REPORTING.deadband} and period ${REPORTING.periodMs} ms, and the simulated values are constant: each point ` +
        `is sent once per period, signed with the gateway's registered key; the server stored ${storedSamples ?? '?'} of the ${uplink.samples} samples published`
      : `reporting is "${REPORTING.mode}" with deadband ${REPORTING.deadband} and the simulated values are constant ('constant' model), so the uplink ` +
        'carries one sample per point at start and then nothing: the figures are those of the Modbus polling, not of the MQTT uplink',
    `pollJitterMs and latencyMs come from the gateway's last HEALTH message (${new Date(health.msg.ts).toISOString()}): per instrument its own p50/p99 over ` +
      `its last ${GATEWAY_PERCENTILE_WINDOW} polls (${round1((GATEWAY_PERCENTILE_WINDOW * params.pollIntervalMs) / 1000)} s at this interval), then ` +
      'p50 = median over instruments of their p50, p99 = median of their p99, p99Max = max of their p99' +
      ((Date.now() - gatewayStarted) / 1000 < (GATEWAY_PERCENTILE_WINDOW * params.pollIntervalMs) / 1000
        ? `; the gateway ran only ${round1((Date.now() - gatewayStarted) / 1000)} s, so its start-up polls are included`
        : ''),
    `requestsPerSecond: the simulator's request counters over the window; expected ${requestsPerPoll} request(s) per poll of the 20 contiguous registers` +
      (requestsPerPoll === 1
        ? ' (BENCH_REQUESTS_PER_POLL=2 splits them in two, as the 10,000 requests/s of the issue suppose)'
        : ' (limits.maxRegisters 10)'),
    `each simulated channel is pinned to a constant non-zero value (the float32 decoding takes its full path); uplinkSamplesPerSecond counts ` +
      `the samples the gateway published in the window (DATA, read as an MQTT reader; ${uplink.samples} in the whole run)`,
    `oneConnection: after the gateway stopped, in the bench process against ${instruments[0].id} of the running simulator, one request in ` +
      `flight, a new connection per round; ${oneRounds} alternating rounds of ${oneRoundMs} ms each (after ${oneWarmupMs} ms warm-up in the first, 200 ms in the others)`,
  ];
  if (params.cpuProfile) notes.push('the gateway ran with --cpu-prof: its CPU figures include the profiler overhead');
  if (othersCpuPercent !== null && othersCpuPercent > BUSY_OTHERS_PERCENT)
    notes.push(`the machine was busy: other processes used ${othersCpuPercent} % of a core during the window; re-run for clean figures`);
  if (gatewayPollsPerSecond !== null && Math.abs(gatewayPollsPerSecond * requestsPerPoll - requestsPerSecond) > 0.05 * requestsPerSecond)
    notes.push(`the gateway's poll counters (${gatewayPollsPerSecond}/s) disagree with the simulator's request counters (${requestsPerSecond}/s)`);
  if (badHealth > 0) notes.push(`${badHealth} HEALTH or DATA message(s) were not JSON`);
  const totalSimRequests = req1.list.map((i) => i.requests ?? 0);
  const idle = totalSimRequests.filter((n) => n === 0).length;
  if (idle > 0) notes.push(`${idle} simulated instrument(s) got no request at all`);
  for (const n of PROCESS_NAMES) for (const [msg, count] of children.get(n).notes) notes.push(`${n}: ${msg} (x${count})`);
  const unclean = [];
  for (const n of ['gateway', 'sim', 'server']) {
    const e = exits[n];
    if (e.killed || e.code !== 0)
      unclean.push(
        `${n} did not stop cleanly: ${e.killed ? 'SIGKILL after the timeout' : e.signal ? `ended by ${e.signal}` : `exit code ${e.code}`} after ${e.ms} ms`,
      );
  }
  notes.push(...unclean);
  if (linkOne.counters.timeouts > 0 || linkOne.counters.badReplies > 0 || linkOne.counters.staleReplies > 0)
    notes.push(`one-connection ModbusLink counters: ${JSON.stringify(linkOne.counters)}`);

  let profile = null;
  if (params.cpuProfile) {
    try {
      const file = readdirSync(cpuProfDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) profile = summarizeProfile(path.join(cpuProfDir, file), windowStartUs, windowEndUs, { root: ROOT });
      else notes.push('no .cpuprofile was written by the gateway');
    } catch (err) {
      notes.push(`cannot read the gateway's CPU profile: ${err.message}`);
    }
  }

  writeResult(NAME, {
    params: { ...params, windowSeconds: round1(windowSeconds), clockTicksPerSecond: clkTck },
    results,
    detail: {
      gatewayPollsPerSecond,
      errorsByKind,
      gatewayCpuPerSecond: perSecondGatewayCpu,
      simRequestsPerInstrument: { min: Math.min(...totalSimRequests), max: Math.max(...totalSimRequests) },
      oneConnection: { link: linkOne, raw: rawOne },
      stopMs: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.ms])),
      ...(profile ? { gatewayCpuProfile: profile } : {}),
      notes,
    },
  });
  log(
    `${requestsPerSecond} requests/s (expected ${expectedRequestsPerSecond}); gateway ${gatewayCpu} % of a core, peak RSS ${processes.gateway.peakRssMiB} MiB; ` +
      `sim ${processes.sim.cpuPercent} %, server ${processes.server.cpuPercent} %; jitter p50 ${results.pollJitterMs.p50} p99 ${results.pollJitterMs.p99} ms; ` +
      `latency p50 ${results.latencyMs.p50} p99 ${results.latencyMs.p99} ms; breakers open ${breakersOpen}, errors ${errors}`,
  );
  log(`one connection: ModbusLink ${round1(linkRps)} req/s, raw socket ${round1(rawRps)} req/s, ratio ${results.oneConnection.ratio}`);
  if (profile) {
    log(
      `gateway CPU profile (${profile.samples} samples${profile.windowed ? ' in the window' : ', whole run'}, ${profile.idlePercent} % idle), ` +
        'self time in % of the busy samples:',
    );
    for (const { fn, percent } of profile.selfTop.slice(0, 15)) log(`  ${String(percent).padStart(5)} %  ${fn}`);
  }
  for (const note of notes) log(`note: ${note}`);
  log(`wrote bench/results/${NAME}.json`);
  return { unclean };
}

// ---------------------------------------------------------------- main

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-gwmb-'));
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
    console.error(`${NAME}: FAILED: ${unclean.join('; ')}; configs and logs kept in ${tmp}`);
    process.exit(1);
  }
  if (!keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
  process.exit(0);
} catch (err) {
  children.stopping = true;
  console.error(`${NAME}: FAILED: ${err.message}`);
  children.printTails();
  await children.killAllGracefully();
  if (interrupted && !keep) rmSync(tmp, { recursive: true, force: true });
  else console.error(`${NAME}: configs and logs kept in ${tmp}`);
  process.exit(interrupted ? 130 : 1);
}
