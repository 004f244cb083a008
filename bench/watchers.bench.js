// Benchmark of live witnessing: one running test run streamed to many socket.io watchers. A load gateway
// (bench/lib/load-gateway.js: the real Sequencer, durable Outbox signing every batch, MqttUplink) sends one
// instrument with 8 channels at 50 samples/s each (400 samples/s) into the server; the run's room pushes every
// stored record to 500 watchers (signed-in clients of the run's organization, socket.io-client over WebSocket,
// in child processes). Measured over the window:
//   latency per sample     from the sample's timestamp (set when the gateway makes it) to its receipt at each
//                          watcher: includes the gateway's batching (up to BENCH_BATCH_DELAY_MS)
//   latency per delivery   from the newest sample's timestamp of each delivery (the gateway seals a batch right
//                          after its newest sample: about the batch's send time) to its receipt; the target
//                          (p99 < 100 ms) is on this one
//   server CPU             from /proc/<pid>/stat over the window (% of one core; target < 100)
// and whether every watcher received every sample. One more watcher (the probe) runs alone in its own process: its
// latency is the server's push without the queue of a process that holds hundreds of sockets. The baseline is
// measured in the same run: windows with the crowd watching and windows where it has left the room (the probe
// alone) take turns (BENCH_ROUNDS of each, BENCH_SECONDS in all for each kind), so a busy moment of a shared
// machine falls on both; the difference is what the 500 watchers cost. The watchers' own CPU is reported too: on a 2-core machine
// they compete with the server, and a watcher process's queue is part of its receipt time.
//
// The server runs in a child process (`--serve`, the real LabtraceServer with its users made in-process); the
// watchers in BENCH_WATCHER_PROCS child processes (`--watch`).
// Environment: BENCH_WATCHERS (500), BENCH_WATCHER_PROCS (2), BENCH_CHANNELS (8, at most 10), BENCH_RATE_PER_CHANNEL
// (50), BENCH_BATCH_DELAY_MS (200, the gateway's default), BENCH_SECONDS (20), BENCH_WARMUP_SECONDS (10), BENCH_QUIET_WAIT_SECONDS (60: how long to wait
// at most for the machine to use less than half a core before starting), BENCH_KEEP=1 keeps the temporary
// directory, BENCH_CPU_PROF=1 profiles the server (its busiest functions in the last crowd window go into the
// result). Writes bench/results/watchers.json.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Children, sleep } from './lib/children.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { envReader } from './lib/env.js';
import { CpuWindow } from './lib/cpu-window.js';
import { clockTicks, peakRssMiB, waitForQuiet } from './lib/proc.js';
import { BENCH_DIR, ROOT, percentile, round1, writeResult } from './lib/result.js';

const NAME = 'watchers';
const SELF = fileURLToPath(import.meta.url);
const LOAD_GATEWAY = path.join(BENCH_DIR, 'lib', 'load-gateway.js');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-load';
const INSTRUMENT = 'load-0001';
const ORG = 'org-bench';
const CLIENT_USERS = 10;
/** latency histogram: 1 ms buckets up to this, then one overflow bucket */
const MAX_MS = 10_000;
const TARGETS = { deliveryP99Ms: 100, serverCpuPercent: 100 };

/** CLOCK_MONOTONIC in microseconds: the clock of V8's CPU profiles on Linux */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

// ---------------------------------------------------------------- the server (child process)

async function serve(configFile) {
  const { LabtraceServer, serverConfigSchema } = await import('../server/dist/src/index.js');
  const pino = (await import('pino')).default;
  const options = JSON.parse(readFileSync(configFile, 'utf8'));
  const config = serverConfigSchema.parse(options.config);
  const server = new LabtraceServer(config, pino({ level: 'warn' }), { adminPassword: options.adminPassword, announce: () => undefined });
  await server.start();
  const system = { username: 'bench', role: 'system' };
  await server.users.createOrganization(system, ORG, 'Bench client');
  await server.users.create(system, { username: 'tech', role: 'technician', password: options.userPassword });
  const technician = (await server.users.createApiToken(system, 'tech', 'bench', 3_600_000)).token;
  const clients = [];
  for (let i = 1; i <= CLIENT_USERS; i++) {
    await server.users.create(system, { username: `client-${i}`, role: 'client', password: options.userPassword, organization: ORG });
    clients.push((await server.users.createApiToken(system, `client-${i}`, 'bench', 3_600_000)).token);
  }
  process.send({ type: 'ready', httpPort: server.httpPort, mqttPort: server.mqttPort, technician, clients });
  // how late the server's event loop runs: a push that waits behind other work shows here
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const loop = monitorEventLoopDelay({ resolution: 10 });
  process.on('message', (msg) => {
    if (msg.cmd === 'window') {
      if (msg.on) loop.reset();
      if (msg.on) loop.enable();
      else loop.disable();
    } else if (msg.cmd === 'stats')
      process.send({
        type: 'stats',
        id: msg.id,
        eventLoopDelayMs: { p50: round1(loop.percentile(50) / 1e6), p99: round1(loop.percentile(99) / 1e6), max: round1(loop.max / 1e6) },
      });
  });
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

// ---------------------------------------------------------------- the watchers (child process)

async function watch(optionsFile) {
  const { io } = await import('socket.io-client');
  const { unpackRunSamples } = await import('../protocols/dist/src/index.js');
  const options = JSON.parse(readFileSync(optionsFile, 'utf8'));
  const perSample = new Uint32Array(MAX_MS + 2);
  const perDelivery = new Uint32Array(MAX_MS + 2);
  const received = new Float64Array(options.count);
  let windowOn = false;
  let windowDeliveries = 0;
  /** the JSON size of what arrived (the probe only: measuring it costs a stringify per delivery) */
  let windowBytes = 0;
  const sockets = [];
  let joined = 0;
  const bucket = (ms) => Math.min(MAX_MS + 1, Math.max(0, Math.round(ms)));

  const connectOne = (i) =>
    new Promise((resolve, reject) => {
      const socket = io(options.base, {
        transports: ['websocket'],
        auth: { token: options.tokens[i % options.tokens.length] },
        reconnection: false,
        forceNew: true,
      });
      sockets.push(socket);
      socket.on('run:samples', (...payload) => {
        const now = Date.now();
        if (!windowOn) return;
        // what a viewer does with a delivery: the packed columns back to samples
        const samples = unpackRunSamples(payload[1]);
        let newest = -Infinity;
        for (let k = 0; k < samples.length; k++) {
          const ts = samples[k].ts;
          perSample[bucket(now - ts)]++;
          if (ts > newest) newest = ts;
        }
        perDelivery[bucket(now - newest)]++;
        received[i] += samples.length;
        windowDeliveries++;
        if (options.measureBytes) windowBytes += JSON.stringify(payload).length;
      });
      socket.once('connect_error', (err) => reject(new Error(`watcher ${i}: ${err.message}`)));
      socket.once('connect', () =>
        socket.emit('run:watch', options.run, (answer) => {
          if (!answer.ok) return reject(new Error(`watcher ${i}: ${answer.error}`));
          joined++;
          resolve();
        }),
      );
    });

  // in groups, so that 500 handshakes do not all land in the same instant
  for (let i = 0; i < options.count; i += 25) await Promise.all(Array.from({ length: Math.min(25, options.count - i) }, (_, k) => connectOne(i + k)));
  process.send({ type: 'ready', joined });

  process.on('message', (msg) => {
    if (msg.cmd === 'window') {
      if (msg.on) {
        perSample.fill(0);
        perDelivery.fill(0);
        received.fill(0);
        windowDeliveries = 0;
        windowBytes = 0;
      }
      windowOn = msg.on;
    } else if (msg.cmd === 'watch') {
      // the crowd leaves the run's room (or joins it again) for the baseline windows
      const all = sockets.map(
        (socket) =>
          new Promise((resolve) => {
            if (msg.on) socket.emit('run:watch', options.run, resolve);
            else {
              socket.emit('run:unwatch', options.run);
              resolve();
            }
          }),
      );
      void Promise.all(all).then(() => process.send({ type: 'stats', id: msg.id }));
    } else if (msg.cmd === 'stats') {
      process.send({
        type: 'stats',
        id: msg.id,
        perSample: Array.from(perSample),
        perDelivery: Array.from(perDelivery),
        received: Array.from(received),
        deliveries: windowDeliveries,
        bytes: windowBytes,
        connected: sockets.filter((s) => s.connected).length,
      });
    }
  });
  process.once('SIGTERM', () => {
    for (const s of sockets) s.close();
    process.exit(0);
  });
}

// ---------------------------------------------------------------- the harness

function ask(children, name, cmd) {
  const child = children.get(name).child;
  const id = Math.random();
  return children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error(`${name} did not answer ${cmd.cmd} within 20 s`));
      }, 20_000);
      const onMessage = (msg) => {
        if (msg?.type !== 'stats' || msg.id !== id) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      };
      child.on('message', onMessage);
      child.send({ ...cmd, id });
    }),
  );
}

const readyOf = (children, name, timeoutMs) =>
  children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs / 1000} s`)), timeoutMs);
      children.get(name).child.on('message', (msg) => {
        if (msg?.type !== 'ready') return;
        clearTimeout(timer);
        resolve(msg);
      });
    }),
  );

function summarize(histogram) {
  let count = 0;
  for (const n of histogram) count += n;
  const at = (p) => {
    if (count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * count));
    let seen = 0;
    for (let i = 0; i < histogram.length; i++) {
      seen += histogram[i];
      if (seen >= rank) return i > MAX_MS ? `>${MAX_MS}` : i;
    }
    return null;
  };
  let max = null;
  for (let i = histogram.length - 1; i >= 0; i--)
    if (histogram[i] > 0) {
      max = i > MAX_MS ? `>${MAX_MS}` : i;
      break;
    }
  return { count, p50: at(50), p90: at(90), p99: at(99), max };
}

async function call(base, token, method, route, body) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function run(tmp, params) {
  const { hashPassword, randomPassword } = await import('../server/dist/src/index.js');
  const { createIdentity } = await import('../gateway/dist/src/identity/identity.js');
  const confDir = path.join(tmp, 'conf');
  const logDir = path.join(tmp, 'logs');
  for (const d of [confDir, logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const children = new Children({ cwd: ROOT, logDir });
  const clkTck = clockTicks();
  try {
    const gatewayData = path.join(tmp, 'gateway-data');
    const { verifierKey } = createIdentity(GATEWAY_ID, gatewayData);
    const password = randomPassword();
    const serverOptions = path.join(confDir, 'server.json');
    writeFileSync(
      serverOptions,
      JSON.stringify({
        adminPassword: randomPassword(),
        userPassword: randomPassword(),
        config: {
          lab: LAB,
          dataDir: path.join(tmp, 'server-data'),
          http: { host: HOST, port: 0, rateLimit: false },
          mqtt: { host: HOST, port: 0 },
          broker: { users: [{ username: GATEWAY_ID, passwordHash: await hashPassword(password), role: 'gateway', gateway: GATEWAY_ID }] },
          gateways: [{ id: GATEWAY_ID, key: verifierKey }],
          // the bench's instrument has no calibration record; the interlock is not what is measured
          calibration: { requireForRuns: false },
        },
      }),
      { mode: 0o600 },
    );
    // a machine shared with other work skews every latency here: wait a while for it to calm down, and say how busy it was
    const busyBefore = await waitForQuiet(params.quietWaitSeconds * 1000, 50);
    log(`the machine uses ${busyBefore ?? '?'} % of one core before the start`);
    log('starting the server');
    const profDir = path.join(tmp, 'cpu-prof');
    children.launch('server', SELF, ['--serve', serverOptions], {
      ipc: true,
      nodeArgs: params.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    });
    const server = await readyOf(children, 'server', 60_000);
    const base = `http://${HOST}:${server.httpPort}`;

    const gatewayOptions = path.join(confDir, 'load-gateway.json');
    writeFileSync(
      gatewayOptions,
      JSON.stringify({
        url: `mqtt://${HOST}:${server.mqttPort}`,
        username: GATEWAY_ID,
        password,
        gateway: GATEWAY_ID,
        lab: LAB,
        dataDir: gatewayData,
        instruments: 1,
        channels: params.channels,
        maxBatchSamples: 500,
        maxBatchDelayMs: params.batchDelayMs,
        maxHeldSamples: 1_000_000,
      }),
      { mode: 0o600 },
    );
    log('starting the load gateway');
    const gw = children.launch('gateway', LOAD_GATEWAY, [gatewayOptions], { ipc: true });
    await readyOf(children, 'gateway', 30_000);
    let instrument;
    await children.waitFor(
      'the BIRTH of the instrument',
      async () => {
        instrument = (await call(base, server.technician, 'GET', '/api/instruments')).find((i) => i.id === INSTRUMENT);
        return instrument !== undefined || 'not yet';
      },
      30_000,
    );

    // a method over the instrument's channels, with one inspection rule per channel, as a real method would carry
    const channels = instrument.channels.map((c) => c.name);
    await call(base, server.technician, 'POST', '/api/methods', {
      id: 'bench-method',
      standard: 'BENCH 1:2026',
      title: 'Live witnessing benchmark',
      definition: {
        measurands: instrument.channels.map((c) => ({ name: c.name, unit: c.unit, channel: c.name })),
        limits: [{ measurand: channels[0], max: 1e12 }],
        decisionRule: { kind: 'simple-acceptance' },
        rules: channels.map((c) => ({ id: `${c}-limits`, kind: 'limits', severity: 'alarm', channel: c, high: 1e12 })),
      },
    });
    await call(base, server.technician, 'POST', '/api/lab-samples', {
      id: 'S-BENCH',
      organization: ORG,
      description: 'bench specimen',
      condition: 'intact',
      receivedAt: Date.now(),
    });
    const created = await call(base, server.technician, 'POST', '/api/runs', {
      sample: 'S-BENCH',
      method: 'bench-method',
      instruments: [INSTRUMENT],
    });
    await call(base, server.technician, 'POST', `/api/runs/${created.id}/start`, {});

    log(`connecting ${params.watchers} watchers in ${params.watcherProcs} processes`);
    const watcherNames = [];
    for (let p = 0; p < params.watcherProcs; p++) {
      const count = Math.floor(params.watchers / params.watcherProcs) + (p < params.watchers % params.watcherProcs ? 1 : 0);
      const file = path.join(confDir, `watchers-${p}.json`);
      writeFileSync(file, JSON.stringify({ base, run: created.id, count, tokens: server.clients }), { mode: 0o600 });
      const name = `watchers-${p}`;
      children.launch(name, SELF, ['--watch', file], { ipc: true });
      watcherNames.push(name);
    }
    const joined = (await Promise.all(watcherNames.map((n) => readyOf(children, n, 120_000)))).reduce((sum, r) => sum + r.joined, 0);
    // one more watcher alone in its process: its receipt time is the server's push, not a crowded client's queue
    const probeFile = path.join(confDir, 'probe.json');
    writeFileSync(probeFile, JSON.stringify({ base, run: created.id, count: 1, tokens: server.clients, measureBytes: true }), { mode: 0o600 });
    children.launch('probe', SELF, ['--watch', probeFile], { ipc: true });
    await readyOf(children, 'probe', 30_000);
    log(`${joined} watchers joined run ${created.id}; load on: ${params.channels} channels x ${params.ratePerChannel}/s`);

    const rate = params.channels * params.ratePerChannel;
    gw.child.send({ cmd: 'rate', rate });
    await children.guard(sleep(params.warmupSeconds * 1000));

    // ---- the measured windows: with the crowd watching, and with the probe alone (the crowd leaves the room), in
    // turns, so that a busy moment of the machine falls on both alike
    const names = ['server', 'gateway', ...watcherNames, 'probe'];
    const pids = Object.fromEntries(names.map((n) => [n, children.get(n).pid]));
    const merge = (into, from) => from.forEach((v, i) => (into[i] += v));
    const blank = () => ({
      seconds: 0,
      cpuTicks: Object.fromEntries(names.map((n) => [n, 0])),
      machineProc: 0,
      machineBusy: 0,
      self: 0,
      perSample: new Array(MAX_MS + 2).fill(0),
      perDelivery: new Array(MAX_MS + 2).fill(0),
      probePerSample: new Array(MAX_MS + 2).fill(0),
      probePerDelivery: new Array(MAX_MS + 2).fill(0),
      probeBytes: 0,
      received: new Array(params.watchers).fill(0),
      serverPerSecond: [],
      windows: [],
    });
    const modes = { crowd: blank(), alone: blank() };
    const order = [];
    for (let r = 0; r < params.rounds; r++) order.push(...(r % 2 === 0 ? ['crowd', 'alone'] : ['alone', 'crowd']));
    const windowSeconds = params.seconds / params.rounds;
    let crowdWatching = true;
    let lastCrowdUs = [0, 0];
    let connected = 0;
    for (const mode of order) {
      const crowd = mode === 'crowd';
      if (crowd !== crowdWatching) {
        await Promise.all(watcherNames.map((n) => ask(children, n, { cmd: 'watch', on: crowd })));
        crowdWatching = crowd;
        // what was already on its way to the crowd settles first
        await children.guard(sleep(1000));
      }
      const m = modes[mode];
      for (const n of [...watcherNames, 'probe', 'gateway', 'server']) children.get(n).child.send({ cmd: 'window', on: true });
      const cpu = new CpuWindow(pids, clkTck);
      const start = cpu.startedAt;
      const startUs = monoUs();
      log(`measuring ${windowSeconds} s, ${crowd ? `${joined} watchers and the probe` : 'the probe alone'}`);
      while (Date.now() - start < windowSeconds * 1000) {
        await children.guard(sleep(Math.min(1000, windowSeconds * 1000 - (Date.now() - start))));
        const { server } = cpu.sample();
        if (server !== null) m.serverPerSecond.push(round1(server));
      }
      for (const n of [...watcherNames, 'probe', 'gateway', 'server']) children.get(n).child.send({ cmd: 'window', on: false });
      const seconds = cpu.end().seconds;
      if (crowd) lastCrowdUs = [startUs, monoUs()];
      m.seconds += seconds;
      for (const n of names) m.cpuTicks[n] += cpu.ticks(n) ?? 0;
      if (cpu.machineTicks('proc') !== null) {
        m.machineProc += cpu.machineTicks('proc');
        m.machineBusy += cpu.machineTicks('busy');
      }
      m.self += cpu.selfSeconds();
      const gatewayStats = await ask(children, 'gateway', { cmd: 'stats' });
      const serverStats = await ask(children, 'server', { cmd: 'stats' });
      let offset = 0;
      connected = 0;
      for (const n of watcherNames) {
        const w = await ask(children, n, { cmd: 'stats' });
        merge(m.perSample, w.perSample);
        merge(m.perDelivery, w.perDelivery);
        w.received.forEach((v, i) => (m.received[offset + i] += v));
        offset += w.received.length;
        connected += w.connected;
      }
      const probeStats = await ask(children, 'probe', { cmd: 'stats' });
      merge(m.probePerSample, probeStats.perSample);
      merge(m.probePerDelivery, probeStats.perDelivery);
      m.probeBytes += probeStats.bytes;
      m.windows.push({
        seconds: round1(seconds),
        samplesPerSecondIn: round1(gatewayStats.window.generated / gatewayStats.window.seconds),
        probeDeliveryMs: summarize(probeStats.perDelivery),
        gatewayAckMs: gatewayStats.latencyMs,
        serverEventLoopDelayMs: serverStats.eventLoopDelayMs,
        serverCpuPercent: round1(cpu.percent('server') ?? 0),
        othersCpuPercent:
          cpu.machinePercent('proc') === null
            ? null
            : round1(Math.max(0, cpu.machinePercent('proc') - cpu.selfPercent() - names.reduce((sum, n) => sum + (cpu.percent(n) ?? 0), 0))),
      });
    }
    const rss = Object.fromEntries(names.map((n) => [n, peakRssMiB(pids[n])]));

    log('stopping');
    children.stopping = true;
    for (const n of [...watcherNames, 'probe']) await children.stop(n);
    await children.stop('gateway');
    await children.stop('server');

    const figures = (m) => {
      const cpu = Object.fromEntries(names.map((n) => [n, round1((m.cpuTicks[n] / clkTck / m.seconds) * 100)]));
      const ours = names.reduce((sum, n) => sum + (cpu[n] ?? 0), 0);
      const probeSample = summarize(m.probePerSample);
      const probeDelivery = summarize(m.probePerDelivery);
      return {
        seconds: round1(m.seconds),
        probeLatencyPerDeliveryMs: { p50: probeDelivery.p50, p99: probeDelivery.p99, max: probeDelivery.max },
        probeLatencyPerSampleMs: { p50: probeSample.p50, p99: probeSample.p99 },
        serverCpuPercent: cpu.server,
        serverCpuPeakPercent: m.serverPerSecond.length > 0 ? Math.max(...m.serverPerSecond) : null,
        watchersCpuPercent: round1(watcherNames.reduce((sum, n) => sum + (cpu[n] ?? 0), 0)),
        gatewayCpuPercent: cpu.gateway,
        machineBusyPercent: round1((m.machineBusy / clkTck / m.seconds) * 100),
        /** what processes other than this benchmark's used meanwhile (% of one core) */
        othersCpuPercent: round1(Math.max(0, (m.machineProc / clkTck / m.seconds) * 100 - (m.self / m.seconds) * 100 - ours)),
        /** JSON bytes pushed to each watcher per second (socket.io's framing aside), and per sample */
        bytesPerWatcherPerSecond: round1(m.probeBytes / m.seconds),
        bytesPerSample: probeSample.count > 0 ? round1(m.probeBytes / probeSample.count) : null,
        cpu,
      };
    };
    const crowd = { ...figures(modes.crowd) };
    const alone = { ...figures(modes.alone) };
    const sample = summarize(modes.crowd.perSample);
    const delivery = summarize(modes.crowd.perDelivery);
    const received = [...modes.crowd.received].sort((a, b) => a - b);
    const results = {
      watchers: joined,
      watchersConnectedAtEnd: connected,
      samplesPerSecondIn: round1(modes.crowd.windows.reduce((sum, w) => sum + w.samplesPerSecondIn, 0) / modes.crowd.windows.length),
      deliveriesPerWatcherPerSecond: round1(delivery.count / joined / crowd.seconds),
      samplesPerWatcherPerSecond: { min: round1(received[0] / crowd.seconds), median: round1(percentile(received, 50) / crowd.seconds) },
      latencyPerSampleMs: { p50: sample.p50, p99: sample.p99, max: sample.max },
      latencyPerDeliveryMs: { p50: delivery.p50, p99: delivery.p99, max: delivery.max, target: TARGETS.deliveryP99Ms },
      serverCpuPercent: crowd.serverCpuPercent,
      serverPeakRssMiB: round1(rss.server),
      /** the crowd's windows: every figure */
      crowd: { ...crowd, cpu: undefined },
      /** the baseline, in turns with the crowd's windows: the probe alone in the room */
      alone: { ...alone, cpu: undefined },
      machineBusyBeforePercent: busyBefore,
      pass:
        typeof delivery.p99 === 'number' &&
        delivery.p99 < TARGETS.deliveryP99Ms &&
        crowd.serverCpuPercent !== null &&
        crowd.serverCpuPercent < TARGETS.serverCpuPercent,
    };
    if (params.cpuProfile) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) {
        const profile = summarizeProfile(path.join(profDir, file), lastCrowdUs[0], lastCrowdUs[1], {
          root: ROOT,
          ours: /(server|protocols)\/dist\/src\//,
        });
        results.serverProfile = {
          window: 'the last crowd window',
          areas: profile.areas,
          selfTop: profile.selfTop.slice(0, 15),
          idlePercent: profile.idlePercent,
        };
      }
    }
    const notes = [];
    for (const n of names) for (const [msg, count] of children.get(n).notes) notes.push(`${n}: ${msg} (x${count})`);
    return {
      results,
      detail: {
        order,
        cpu: { crowd: crowd.cpu, alone: alone.cpu },
        windows: { crowd: modes.crowd.windows, alone: modes.alone.windows },
        serverCpuPerSecond: { crowd: modes.crowd.serverPerSecond, alone: modes.alone.serverPerSecond },
        perSample: sample,
        perDelivery: delivery,
        notes,
      },
    };
  } catch (err) {
    await children.killAllGracefully();
    children.printTails();
    throw err;
  }
}

// ---------------------------------------------------------------- main

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]);
} else if (process.argv[2] === '--watch') {
  await watch(process.argv[3]);
} else {
  const { envInt } = envReader(NAME);
  const params = {
    watchers: envInt('BENCH_WATCHERS', 500, 1, 10_000),
    watcherProcs: envInt('BENCH_WATCHER_PROCS', 2, 1, 16),
    channels: envInt('BENCH_CHANNELS', 8, 1, 10),
    ratePerChannel: envInt('BENCH_RATE_PER_CHANNEL', 50, 1, 10_000),
    batchDelayMs: envInt('BENCH_BATCH_DELAY_MS', 200, 10, 60_000),
    seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
    warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 10, 0, 600),
    quietWaitSeconds: envInt('BENCH_QUIET_WAIT_SECONDS', 60, 0, 3600),
    rounds: envInt('BENCH_ROUNDS', 2, 1, 20),
    /** 1: the server runs under --cpu-prof, and its busiest functions in the last crowd window are added */
    cpuProfile: envInt('BENCH_CPU_PROF', 0, 0, 1) === 1,
    targets: TARGETS,
  };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-watchers-'));
  try {
    const { results, detail } = await run(tmp, params);
    const file = writeResult(NAME, {
      params,
      results,
      detail: {
        ...detail,
        units: {
          latencyPerSampleMs: "ms from a sample's timestamp at the gateway to its receipt at a watcher (includes the gateway's batching)",
          latencyPerDeliveryMs: "ms from the newest sample's timestamp of a delivery (about the batch's send time) to its receipt",
          CpuPercent: '% of one core over the window',
        },
      },
    });
    log(
      `${results.watchers} watchers, ${results.samplesPerSecondIn} samples/s in; per delivery p50 ${results.latencyPerDeliveryMs.p50} ms, ` +
        `p99 ${results.latencyPerDeliveryMs.p99} ms; per sample p50 ${results.latencyPerSampleMs.p50} ms, p99 ${results.latencyPerSampleMs.p99} ms; ` +
        `server CPU ${results.serverCpuPercent} %; samples per watcher per second: min ${results.samplesPerWatcherPerSecond.min}; ` +
        `${results.pass ? 'meets' : 'MISSES'} the target (p99 < ${TARGETS.deliveryP99Ms} ms, server < ${TARGETS.serverCpuPercent} %)`,
    );
    for (const mode of ['crowd', 'alone'])
      log(
        `  ${mode}: probe per delivery p50 ${results[mode].probeLatencyPerDeliveryMs.p50} ms, p99 ${results[mode].probeLatencyPerDeliveryMs.p99} ms; ` +
          `server CPU ${results[mode].serverCpuPercent} %, watchers ${results[mode].watchersCpuPercent} %, others ${results[mode].othersCpuPercent} %`,
      );
    for (const note of detail.notes) log(`  note: ${note}`);
    log(`wrote ${path.relative(ROOT, file)}`);
    if (process.env['BENCH_KEEP'] !== '1') rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  } catch (err) {
    console.error(`${NAME}: FAILED: ${err.message}; configs and logs kept in ${tmp}`);
    process.exit(1);
  }
}
