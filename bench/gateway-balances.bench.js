// Benchmark of the gateway's line-protocol source at scale, with real processes: N balances speaking MT-SICS on
// serial lines at 9,600 baud, polled by ONE gateway process (`labtrace gateway` with a generated gateway.yaml
// and one balance profile each) as fast as the line answers, the samples signed, batched and published to
// the server's MQTT broker. Target (issue): the gateway under half of one core for 50 balances.
//
// Each serial line is a socat pseudo-terminal pair: the gateway opens one end, the simulator (ONE
// `labtrace sim` process serving all the balances, each pinned to a constant, stable weight) the other.
// A pty does not throttle to its baud rate: the bytes cross at once. So that the exchange takes the time a
// real 9,600 baud line takes, every simulated balance answers after the line time of one exchange (the
// simulator's `slow` fault): request `SI` CR LF and reply `S S <weight> g` CR LF, at 10 bits a character
// (start, 8 data, stop), computed below (about 23 ms). The poll interval is the shortest a balance profile
// accepts (50 ms), so the gateway asks again as soon as the profile lets it; the line alone would allow
// a new exchange every line time.
//
// Measured over the window: the samples/s that reach an MQTT subscriber (in total and per balance), the CPU
// (% of one core) of the gateway, the simulator, the server and the socat processes, the gateway's peak RSS,
// the end-to-end latency (sample `ts`, taken by the gateway when the reply line arrived, to arrival at the
// subscriber: batching, signing, the durable outbox and MQTT; p50/p99/max over every sample of the window),
// the gateway's own request-to-reply latency per balance (from its HEALTH message), the qualities, the
// samples whose value is not the pinned one, duplicates, and the error counters.
//
// Environment: BENCH_BALANCES (50), BENCH_SECONDS (20, measured window), BENCH_WARMUP_SECONDS (5),
// BENCH_POLL_MS (50, the profile's floor), BENCH_LINE_DELAY_MS (the computed line time; 0: none, the pty's
// speed), BENCH_BATCH_DELAY_MS (200, the gateway's batch.maxDelayMs default), BENCH_KEEP=1 keeps the
// temporary directory (configs, logs).
// CPU is in % of one core; othersCpuPercent is what the rest of the machine used meanwhile (a busy machine
// skews the figures; re-run when it is high). machineBusyPercent is in % of all cores.
// Writes bench/results/gateway-balances.json. Exits non-zero when a process dies or the run cannot complete;
// every child (socat, simulator, gateway, server) is stopped by its PID, also on failure.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { isSealedBatch, openBatch } from '@labtrace/protocols';
import { hashPassword, randomPassword } from '@labtrace/server';
import { Children, cliEnv, sleep } from './lib/children.js';
import { CpuWindow } from './lib/cpu-window.js';
import { freePorts, peakRssMiB } from './lib/proc.js';
import { ROOT, percentile, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'gateway-balances';
const { envInt } = envReader(NAME);
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-balance-bench';
const READER = 'bench-reader';
const CHANNEL = 'mass';
const UNIT = 'g';
const BAUD = 9600;
/** 8N1: a start bit, 8 data bits, no parity, a stop bit */
const BITS_PER_CHARACTER = 10;
/** the simulator's readability (BalanceServer's default: 4 decimals) */
const DECIMALS = 4;
const TIMEOUT_MS = 1000;
const PROCESS_NAMES = ['server', 'sim', 'gateway'];
/** the gateway keeps its request-to-reply latencies over this many polls per instrument (LineInstrument's LATENCY_WINDOW) */
const GATEWAY_LATENCY_WINDOW = 256;
/** above this, the rest of the machine was busy enough to skew the figures */
const BUSY_OTHERS_PERCENT = 15;

/** The weight pinned on balance `i` (0-based): distinct, constant, with every decimal used. */
const weightOf = (i) => Number((100 + 0.0137 * (i + 1)).toFixed(DECIMALS));
/** What one MT-SICS `SI` exchange puts on the line for this weight: the request and the stable reply, in bytes. */
function exchangeBytes(weight) {
  const request = 'SI\r\n';
  const reply = `S S ${weight.toFixed(DECIMALS).padStart(10)} ${UNIT}\r\n`;
  return { request: request.length, reply: reply.length };
}
const EXCHANGE = exchangeBytes(weightOf(0));
const LINE_MS = ((EXCHANGE.request + EXCHANGE.reply) * BITS_PER_CHARACTER * 1000) / BAUD;

const params = {
  balances: envInt('BENCH_BALANCES', 50, 1, 500),
  dialect: 'mt-sics',
  baudRate: BAUD,
  exchangeBytes: EXCHANGE,
  lineTimeMs: Math.round(LINE_MS * 100) / 100,
  /** the reply delay of every simulated balance: the line time of one exchange (the pty itself does not throttle) */
  lineDelayMs: envInt('BENCH_LINE_DELAY_MS', Math.ceil(LINE_MS), 0, 10_000),
  /** 50 ms is the shortest interval a balance profile accepts */
  pollIntervalMs: envInt('BENCH_POLL_MS', 50, 50, 60_000),
  timeoutMs: TIMEOUT_MS,
  reporting: { mode: 'periodic' },
  batch: { maxSamples: 500, maxDelayMs: envInt('BENCH_BATCH_DELAY_MS', 200, 10, 60_000) },
  signed: true,
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 5, 0, 600),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
};
const keep = process.env['BENCH_KEEP'] === '1';

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

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

// ---------------------------------------------------------------- the serial lines

/**
 * The socat processes, one per pty pair: started, watched (one that dies fails the run, as a pulled cable
 * would spoil the figures) and stopped by PID.
 */
class PtyPairs {
  constructor(dir, onDeath) {
    this.dir = dir;
    this.onDeath = onDeath;
    this.pairs = [];
    this.stopping = false;
    process.once('exit', () => this.killAll('SIGKILL'));
  }

  /** A new pair: `a` for the gateway, `b` for the simulator. */
  async start(index) {
    const a = path.join(this.dir, `bal-${index}-gw`);
    const b = path.join(this.dir, `bal-${index}-sim`);
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    const pair = { a, b, child, pid: child.pid, exited: false, log: '' };
    this.pairs.push(pair);
    child.stderr.on('data', (chunk) => (pair.log = (pair.log + chunk.toString()).slice(-2000)));
    child.once('error', (err) => {
      pair.exited = true;
      if (!this.stopping) this.onDeath(new Error(`socat ${index} could not be started: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      pair.exited = true;
      if (!this.stopping) this.onDeath(new Error(`socat ${index} (pid ${pair.pid}) died: ${signal ?? `exit code ${code}`}\n${pair.log}`));
    });
    const deadline = Date.now() + 10_000;
    while (!(existsSync(a) && existsSync(b) && pair.log.includes('starting data transfer loop'))) {
      if (pair.exited || Date.now() > deadline) throw new Error(`socat did not make pty pair ${index}:\n${pair.log}`);
      await sleep(20);
    }
    return pair;
  }

  pids() {
    return this.pairs.filter((p) => !p.exited).map((p) => p.pid);
  }

  killAll(signal) {
    for (const p of this.pairs) if (!p.exited) p.child.kill(signal);
  }

  /** SIGTERM to each by its PID, SIGKILL to what still runs after `graceMs`; resolves with how many needed it. */
  async stopAll(graceMs = 3000) {
    this.stopping = true;
    this.killAll('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (this.pairs.some((p) => !p.exited) && Date.now() < deadline) await sleep(50);
    const stubborn = this.pairs.filter((p) => !p.exited).length;
    this.killAll('SIGKILL');
    while (this.pairs.some((p) => !p.exited)) await sleep(20);
    return stubborn;
  }
}

// ---------------------------------------------------------------- the run

/** `children` (server, sim, gateway) keeps its logs in <tmp>/logs; `ptys` the socat pairs. */
async function run(tmp, children, ptys) {
  const confDir = path.join(tmp, 'conf');
  const profDir = path.join(tmp, 'profiles');
  for (const d of [confDir, profDir, children.logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });

  log(`making ${params.balances} pty pairs (socat)`);
  const pairs = [];
  for (let i = 0; i < params.balances; i += 10) {
    const batch = Array.from({ length: Math.min(10, params.balances - i) }, (_, k) => ptys.start(i + k + 1));
    pairs.push(...(await children.guard(Promise.all(batch))));
  }

  // One MT-SICS balance per line, read through the gateway's end; the simulator serves the other end.
  const balances = [];
  for (let i = 0; i < params.balances; i++) {
    const id = `bal-${String(i + 1).padStart(3, '0')}`;
    const profile = {
      protocol: 'balance',
      id,
      identity: { maker: 'Mettler Toledo', model: 'bench-xpr', serialNumber: `BAL-${i + 1}`, kind: 'balance' },
      dialect: params.dialect,
      connection: { transport: 'serial', path: pairs[i].a, baudRate: BAUD, dataBits: 8, parity: 'none', stopBits: 1 },
      mode: 'poll',
      pollIntervalMs: params.pollIntervalMs,
      timeoutMs: TIMEOUT_MS,
      reporting: params.reporting,
      points: [{ name: CHANNEL, unit: UNIT }],
    };
    const file = path.join(profDir, `${id}.yaml`);
    writeFileSync(file, stringify(profile));
    balances.push({ id, file, simPath: pairs[i].b, weight: weightOf(i) });
  }
  const byId = new Map(balances.map((b) => [b.id, b]));
  const expectedPerBalance = 1000 / Math.max(params.pollIntervalMs, params.lineDelayMs);
  const expectedSamplesPerSecond = round1(params.balances * expectedPerBalance);

  const [httpPort, mqttPort, controlPort] = await freePorts(3);
  const gatewayPassword = randomPassword();
  const readerPassword = randomPassword();
  const passwordFile = path.join(confDir, 'gateway.password');
  writeFileSync(passwordFile, `${gatewayPassword}\n`, { mode: 0o600 });
  const files = { server: path.join(confDir, 'server.yaml'), sim: path.join(confDir, 'sim.yaml'), gateway: path.join(confDir, 'gateway.yaml') };
  writeFileSync(
    files.gateway,
    stringify({
      gateway: { id: GATEWAY_ID, lab: LAB },
      dataDir: path.join(tmp, 'gateway-data'),
      mqtt: { url: `mqtt://${HOST}:${mqttPort}`, username: GATEWAY_ID, passwordFile },
      batch: params.batch,
      instruments: balances.map((b) => ({ profile: b.file })),
    }),
    { mode: 0o600 },
  );
  // The gateway signs its batches: its key is made by its own command and registered with the server.
  execFileSync(process.execPath, [BIN, 'gateway', 'init', '--config', files.gateway], { stdio: 'ignore', env: cliEnv() });
  const gatewayKey = readFileSync(path.join(tmp, 'gateway-data', 'gateway.pub'), 'utf8').trim();
  writeFileSync(
    files.server,
    stringify({
      lab: LAB,
      dataDir: path.join(tmp, 'server-data'),
      http: { host: HOST, port: httpPort },
      mqtt: { host: HOST, port: mqttPort },
      broker: {
        users: [
          { username: GATEWAY_ID, passwordHash: await hashPassword(gatewayPassword), role: 'gateway', gateway: GATEWAY_ID },
          { username: READER, passwordHash: await hashPassword(readerPassword), role: 'reader' },
        ],
      },
      gateways: [{ id: GATEWAY_ID, key: gatewayKey }],
    }),
    { mode: 0o600 },
  );
  writeFileSync(
    files.sim,
    stringify({
      host: HOST,
      tickMs: 100,
      control: { host: HOST, port: controlPort },
      instruments: balances.map((b) => ({ profile: b.file, model: 'constant', path: b.simPath, pin: { [CHANNEL]: b.weight } })),
    }),
  );

  log(
    `${params.balances} MT-SICS balances at ${BAUD} baud (line time of an SI exchange ${params.lineTimeMs} ms, simulated reply delay ` +
      `${params.lineDelayMs} ms), polled every ${params.pollIntervalMs} ms: ${expectedSamplesPerSecond} samples/s expected; starting the server`,
  );
  children.launch('server', BIN, ['server', '--config', files.server], { env: cliEnv() });
  const base = `http://${HOST}:${httpPort}`;
  await children.waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);

  // The reader subscribes before the gateway starts: HEALTH is QoS 0 and not retained.
  const healthTopic = `labtrace/v1/${LAB}/${GATEWAY_ID}/HEALTH`;
  const dataTopic = `labtrace/v1/${LAB}/${GATEWAY_ID}/DATA`;
  const healths = [];
  let badMessages = 0;
  const seen = new Set();
  const win = {
    on: false,
    samples: 0,
    perBalance: new Map(),
    latencies: [],
    quality: { good: 0, uncertain: 0, bad: 0 },
    badReasons: new Map(),
    wrongValues: 0,
    duplicates: 0,
    otherChannels: 0,
    batches: 0,
    unsignedBatches: 0,
  };
  let totalSamples = 0;
  const reader = mqtt.connect(`mqtt://${HOST}:${mqttPort}`, {
    username: READER,
    password: readerPassword,
    clientId: `bench-reader-${process.pid}`,
    reconnectPeriod: 1000,
  });
  reader.on('message', (topic, payload) => {
    const at = Date.now();
    if (topic === dataTopic) {
      let samples;
      let signed = false;
      try {
        const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
        if (isSealedBatch(bytes)) {
          samples = openBatch(bytes, { leaves: false }).samples;
          signed = true;
        } else samples = JSON.parse(payload.toString('utf8')).samples ?? [];
      } catch {
        badMessages++;
        return;
      }
      totalSamples += samples.length;
      if (!win.on) {
        for (const s of samples) seen.add(s.seq);
        return;
      }
      win.batches++;
      if (!signed) win.unsignedBatches++;
      for (const s of samples) {
        if (seen.has(s.seq)) {
          win.duplicates++;
          continue;
        }
        seen.add(s.seq);
        const b = byId.get(s.instrument);
        if (b === undefined || s.channel !== CHANNEL) {
          win.otherChannels++;
          continue;
        }
        win.samples++;
        win.perBalance.set(s.instrument, (win.perBalance.get(s.instrument) ?? 0) + 1);
        win.latencies.push(at - s.ts);
        win.quality[s.quality] = (win.quality[s.quality] ?? 0) + 1;
        if (s.quality === 'bad') win.badReasons.set(s.reason ?? '', (win.badReasons.get(s.reason ?? '') ?? 0) + 1);
        if (s.quality !== 'bad' && (s.value !== b.weight || s.unit !== UNIT)) win.wrongValues++;
      }
      return;
    }
    try {
      healths.push({ at, msg: JSON.parse(payload.toString('utf8')) });
      if (healths.length > 100) healths.shift();
    } catch {
      badMessages++;
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
  children.launch('sim', BIN, ['sim', '--config', files.sim], { env: cliEnv() });
  const simUrl = `http://${HOST}:${controlPort}/instruments`;
  await children.waitFor(
    'simulator control API',
    async () => {
      const list = await (await fetch(simUrl)).json();
      return (Array.isArray(list) && list.length === params.balances) || `${Array.isArray(list) ? list.length : '?'} instruments`;
    },
    60_000,
  );
  if (params.lineDelayMs > 0) {
    // the line time of one exchange, on every reply (the pty does not throttle)
    for (let i = 0; i < balances.length; i += 20) {
      await children.guard(
        Promise.all(
          balances.slice(i, i + 20).map(async (b) => {
            const res = await fetch(`${simUrl}/${b.id}/fault`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ kind: 'slow', ms: params.lineDelayMs }),
            });
            if (!res.ok) throw new Error(`setting the line delay of ${b.id}: HTTP ${res.status} ${await res.text()}`);
          }),
        ),
      );
    }
  }

  log('starting the gateway');
  const gatewayStarted = Date.now();
  children.launch('gateway', BIN, ['gateway', '--config', files.gateway], { env: cliEnv() });
  await children.waitFor(
    'every balance read (HEALTH)',
    () => {
      const last = healths.at(-1)?.msg;
      if (!last) return 'no HEALTH yet';
      const read = last.instruments.filter((i) => i.connected && i.lastGood !== null).length;
      return read === params.balances || `${read}/${params.balances} connected with a good weight`;
    },
    90_000,
  );
  log(`all ${params.balances} balances read after ${((Date.now() - gatewayStarted) / 1000).toFixed(1)} s; warm-up ${params.warmupSeconds} s`);
  await children.guard(sleep(params.warmupSeconds * 1000));

  // ---- the measured window
  const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, children.get(n).pid]));
  const socatPids = ptys.pids();
  const cpu = new CpuWindow({ ...pids, socat: socatPids });
  const healthAtStart = healths.at(-1) ?? null;
  win.on = true;
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
  win.on = false;
  const windowSeconds = cpu.seconds;
  const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));

  // The next HEALTH message (every 5 s) is the one that covers the window's end.
  const lastBefore = healths.at(-1);
  await children.waitFor('a HEALTH message after the window', () => healths.at(-1) !== lastBefore || 'waiting', 15_000);
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
  const disconnected = hInstr.filter((i) => !i.connected).length;

  // ---- stop, in order: the gateway, the simulator, the server, the lines
  log('stopping the gateway, the simulator, the server and the pty pairs');
  const exits = {};
  // a pty pair may end once its ends are closed: from here on that is no failure
  ptys.stopping = true;
  exits.gateway = await children.stop('gateway');
  reader.end(true);
  children.stopping = true;
  exits.sim = await children.stop('sim');
  exits.server = await children.stop('server');
  const socatKilled = await ptys.stopAll();

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
  const socatCpuPercent = round1(cpu.percent('socat'));
  const selfCpuPercent = cpu.selfPercent();
  const machineDelta = (k) => cpu.machinePercent(k);
  const ours = Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0) + (socatCpuPercent ?? 0) + selfCpuPercent;
  const othersCpuPercent = machineDelta('proc') === null ? null : round1(Math.max(0, machineDelta('proc') - ours));
  const perBalance = balances.map((b) => (win.perBalance.get(b.id) ?? 0) / windowSeconds);
  const latencies = win.latencies.sort((a, b) => a - b);
  const samplesPerSecond = round1(win.samples / windowSeconds);
  const gatewayCpu = processes.gateway.cpuPercent;
  const results = {
    samplesPerSecond,
    expectedSamplesPerSecond,
    samplesPerSecondPerBalance: { median: round1(median(perBalance)), min: round1(Math.min(...perBalance)), max: round1(Math.max(...perBalance)) },
    /** what the 9,600 baud line allows one balance: one SI exchange per line time */
    lineAllowsPerBalancePerSecond: round1(1000 / LINE_MS),
    gateway: processes.gateway,
    sim: processes.sim,
    server: processes.server,
    socatCpuPercent,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.length === 0 ? null : latencies[latencies.length - 1],
    },
    lineLatencyMs: {
      p50: median(hInstr.map((i) => i.latencyMs?.p50)),
      p99: median(hInstr.map((i) => i.latencyMs?.p99)),
      p99Max: maxOf(hInstr.map((i) => i.latencyMs?.p99)),
    },
    quality: win.quality,
    wrongValues: win.wrongValues,
    duplicates: win.duplicates,
    unsignedBatches: win.unsignedBatches,
    disconnected,
    errors,
    benchCpuPercent: round1(selfCpuPercent),
    othersCpuPercent,
    irqCpuPercent: round1(machineDelta('irq')),
    stealCpuPercent: round1(machineDelta('steal')),
    machineBusyPercent: round1(cpu.machineBusyShare()),
    meetsTarget:
      gatewayCpu !== null &&
      gatewayCpu < 50 &&
      samplesPerSecond >= 0.95 * expectedSamplesPerSecond &&
      disconnected === 0 &&
      win.wrongValues === 0 &&
      win.quality.bad === 0,
    stopExitCodes: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.code])),
  };

  const notes = [
    `each serial line is a socat pty pair: a pty does not throttle to the baud rate, so every simulated balance answers ${params.lineDelayMs} ms ` +
      `after the request (the simulator's 'slow' fault), the time one MT-SICS SI exchange takes at ${BAUD} baud 8N1: ` +
      `(${EXCHANGE.request} + ${EXCHANGE.reply} bytes) x ${BITS_PER_CHARACTER} bits / ${BAUD} = ${params.lineTimeMs} ms` +
      (params.lineDelayMs === 0 ? ' (BENCH_LINE_DELAY_MS=0: not applied in this run; the replies came at pty speed)' : ''),
    `the poll interval is ${params.pollIntervalMs} ms (50 ms is the shortest a balance profile accepts): ` +
      `${round1(expectedPerBalance)} polls/s per balance, where the line alone would allow ${round1(1000 / LINE_MS)}`,
    `latencyMs: from each sample's ts (taken by the gateway when the reply line arrived) to its arrival at an MQTT subscriber, over every ` +
      `sample of the window (${win.samples}); it includes the batching (batch.maxDelayMs ${params.batch.maxDelayMs}), the signing, the durable ` +
      'outbox and the broker',
    `lineLatencyMs: the gateway's request-to-reply time from its last HEALTH message (${new Date(health.msg.ts).toISOString()}), per balance over its ` +
      `last ${GATEWAY_LATENCY_WINDOW} polls; p50 = median over balances of their p50, p99 = median of their p99, p99Max = max of their p99`,
    `each balance is pinned to a constant weight (stable after the simulator's settling time): every sample should be good and carry exactly ` +
      `that weight in ${UNIT} (wrongValues counts the others); reporting is periodic, so every poll's weight goes up`,
    `the gateway signs its batches (key made by 'labtrace gateway init', registered with the server); ${win.batches} batches in the window, ` +
      `${totalSamples} samples in the whole run`,
    `socatCpuPercent: the ${socatPids.length} socat processes together (they carry the pty bytes; no real serial line needs them)`,
  ];
  if (othersCpuPercent !== null && othersCpuPercent > BUSY_OTHERS_PERCENT)
    notes.push(`the machine was busy: other processes used ${othersCpuPercent} % of a core during the window; re-run for clean figures`);
  if (gatewayPollsPerSecond !== null && Math.abs(gatewayPollsPerSecond - samplesPerSecond) > 0.05 * samplesPerSecond)
    notes.push(`the gateway's poll counters (${gatewayPollsPerSecond}/s) differ from the samples received (${samplesPerSecond}/s) by more than 5 %`);
  if (badMessages > 0) notes.push(`${badMessages} HEALTH or DATA message(s) could not be read`);
  if (win.otherChannels > 0) notes.push(`${win.otherChannels} sample(s) of other channels (command records, gateway records) in the window`);
  for (const [reason, n] of win.badReasons) notes.push(`bad samples: ${reason} (x${n})`);
  for (const n of PROCESS_NAMES)
    for (const [msg, count] of children.get(n).notes) {
      // a first start prints the admin's one-time password: no secret goes into a result file
      notes.push(/password/i.test(msg) ? `${n}: a line about a password, left out (x${count})` : `${n}: ${msg} (x${count})`);
    }
  const unclean = [];
  for (const n of ['gateway', 'sim', 'server']) {
    const e = exits[n];
    if (e.killed || e.code !== 0)
      unclean.push(
        `${n} did not stop cleanly: ${e.killed ? 'SIGKILL after the timeout' : e.signal ? `ended by ${e.signal}` : `exit code ${e.code}`} after ${e.ms} ms`,
      );
  }
  if (socatKilled > 0) unclean.push(`${socatKilled} socat process(es) needed SIGKILL`);
  notes.push(...unclean);

  writeResult(NAME, {
    params: { ...params, windowSeconds: round1(windowSeconds), clockTicksPerSecond: cpu.clkTck },
    results,
    detail: {
      gatewayPollsPerSecond,
      errorsByKind,
      gatewayCpuPerSecond: perSecondGatewayCpu,
      stopMs: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.ms])),
      notes,
    },
  });
  log(
    `${samplesPerSecond} samples/s (expected ${expectedSamplesPerSecond}; per balance median ${results.samplesPerSecondPerBalance.median}); ` +
      `gateway ${gatewayCpu} % of a core, peak RSS ${processes.gateway.peakRssMiB} MiB; sim ${processes.sim.cpuPercent} %, ` +
      `server ${processes.server.cpuPercent} %, socat ${socatCpuPercent} %; latency p50 ${results.latencyMs.p50} p99 ${results.latencyMs.p99} ms; ` +
      `line p50 ${results.lineLatencyMs.p50} p99 ${results.lineLatencyMs.p99} ms; errors ${errors}, disconnected ${disconnected}`,
  );
  for (const note of notes) log(`note: ${note}`);
  log(`wrote bench/results/${NAME}.json`);
  return { unclean };
}

// ---------------------------------------------------------------- main

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-bal-'));
const children = new Children({ cwd: ROOT, logDir: path.join(tmp, 'logs') });
const ptyDir = path.join(tmp, 'pty');
mkdirSync(ptyDir, { recursive: true, mode: 0o700 });
const ptys = new PtyPairs(ptyDir, (err) => children.fail(err));
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    children.fail(new Error(`interrupted by ${signal}`));
  });
}
try {
  const { unclean } = await run(tmp, children, ptys);
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
  await ptys.stopAll();
  if (interrupted && !keep) rmSync(tmp, { recursive: true, force: true });
  else console.error(`${NAME}: configs and logs kept in ${tmp}`);
  process.exit(interrupted ? 130 : 1);
}
