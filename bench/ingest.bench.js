// Benchmark of ingest, end to end with real processes: a load gateway (bench/lib/load-gateway.js: the real
// Sequencer, durable Outbox signing every batch with the gateway's key, and MqttUplink) pushes synthetic samples
// (1,000 instruments x 10 channels, timestamp = now) at a target rate -> MQTT (the broker in the server) ->
// signature check -> SQLite -> ACK back to the gateway, which then forgets the batch.
//
// One phase per target rate, each with a fresh server and gateway (so peak RSS and the database are per phase):
//   10,000/s   latency from the sample's timestamp to its batch's ACK at the gateway, p50/p99 (target p99 < 250 ms)
//   100,000/s  sustained throughput over the window: samples acknowledged per second at the gateway (the
//   200,000/s  primary figure; target >= 95 % of the rate), rows stored per second (SQLite), backlog at the end
// and for each: CPU (% of one core) and peak RSS of the server and the gateway, the outbox backlog at the end of
// the window and how long it took to drain once the load stopped.
// When ingest does not keep up at 100,000/s (BENCH_CPU_PROF=auto, the default), that phase is run once more
// with the server and the gateway under --cpu-prof, and their top functions in the window (self and inclusive
// time) are added to the result (BENCH_CPU_PROF=1 profiles the 100,000/s phase itself, 0 never). The profiler
// samples wall-clock time: a function blocked in a system call (fsync of a SQLite commit) counts as busy.
//
// Environment: BENCH_RATES (10000,100000,200000), BENCH_INSTRUMENTS (1000), BENCH_CHANNELS (10, at most 10),
// BENCH_BATCH_SAMPLES (10000), BENCH_BATCH_DELAY_MS (100), BENCH_SECONDS (20, measured window),
// BENCH_WARMUP_SECONDS (5), BENCH_DRAIN_SECONDS (30), BENCH_CPU_PROF (auto), BENCH_KEEP=1 keeps the temporary
// directory (configs, logs, databases), TMPDIR chooses where it lives (both SQLite files use synchronous=FULL),
// BENCH_STORE (sqlite | postgres): the server's store; postgres starts a PostgreSQL 15 on loopback (durable: fsync
// and synchronous_commit on), a fresh database per phase, adds its CPU (all its processes) to each phase, and writes
// bench/results/ingest-postgres.json.
// BENCH_INDEX_WORKER (1 | 0, SQLite only): 1 (the default) runs the server with `store.indexWorker: true` (the
// per-sample index in a worker thread, on a file of its own; storedPerSecond then counts what that index took) and
// writes bench/results/ingest.json; 0 keeps the index on the main thread and writes ingest-main-thread-index.json.
// othersCpuPercent is what the rest of the machine used meanwhile (% of one core): a busy machine skews the figures.
// Writes bench/results/ingest.json. Exits non-zero when a process dies or a phase cannot complete; a figure that
// misses its target is reported, not an error.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startPostgres } from '../server/dist/test/helpers/postgres.js';
import { stringify } from 'yaml';
import { hashPassword, randomPassword } from '@labtrace/server';
import { createIdentity } from '../gateway/dist/src/identity/identity.js';
import { Children, sleep } from './lib/children.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { CpuWindow } from './lib/cpu-window.js';
import { clockTicks, freePorts, peakRssMiB } from './lib/proc.js';
import { BENCH_DIR, ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';
import { postgresTicks, storedSamples } from './lib/postgres.js';

const STORE = envReader('ingest').envChoice('BENCH_STORE', ['sqlite', 'postgres']);
// SQLite: the per-sample index in its worker thread unless BENCH_INDEX_WORKER=0 (PostgreSQL has no index worker)
const INDEX_WORKER = STORE === 'sqlite' && envReader('ingest').envChoice('BENCH_INDEX_WORKER', ['1', '0']) === '1';
const NAME = STORE === 'postgres' ? 'ingest-postgres' : INDEX_WORKER ? 'ingest' : 'ingest-main-thread-index';
const { envInt } = envReader(NAME);
/** the PostgreSQL cluster of BENCH_STORE=postgres (started in main) */
let cluster;
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const LOAD_GATEWAY = path.join(BENCH_DIR, 'lib', 'load-gateway.js');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-load';
const PROCESS_NAMES = ['server', 'gateway'];
const TARGETS = { latencyP99Ms: 250, throughputShare: 0.95 };
const LATENCY_RATE = 10_000;
const PROFILE_RATE = 100_000;

function envRates() {
  const raw = process.env['BENCH_RATES'];
  if (raw === undefined || raw === '') return [10_000, 100_000, 200_000];
  const rates = raw.split(',').map((r) => Number(r.trim()));
  if (rates.some((r) => !Number.isInteger(r) || r < 1 || r > 10_000_000)) {
    console.error(`${NAME}: BENCH_RATES: expected integers 1-10000000 separated by commas, got "${raw}"`);
    process.exit(2);
  }
  return rates;
}

const cpuProfEnv = process.env['BENCH_CPU_PROF'] ?? 'auto';
if (!['auto', '0', '1'].includes(cpuProfEnv)) {
  console.error(`${NAME}: BENCH_CPU_PROF: expected auto, 0 or 1, got "${cpuProfEnv}"`);
  process.exit(2);
}
const params = {
  rates: envRates(),
  instruments: envInt('BENCH_INSTRUMENTS', 1000, 1, 100_000),
  channels: envInt('BENCH_CHANNELS', 10, 1, 10),
  batch: { maxSamples: envInt('BENCH_BATCH_SAMPLES', 10_000, 1, 10_000), maxDelayMs: envInt('BENCH_BATCH_DELAY_MS', 100, 1, 60_000) },
  maxHeldSamples: 10_000_000,
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 5, 0, 600),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
  drainSeconds: envInt('BENCH_DRAIN_SECONDS', 30, 0, 3600),
  cpuProfile: cpuProfEnv,
  indexWorker: INDEX_WORKER,
  targets: { ...TARGETS, latencyAtRate: LATENCY_RATE },
};
const keep = process.env['BENCH_KEEP'] === '1';

const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
/** CLOCK_MONOTONIC in microseconds: the clock of V8's CPU profiles on Linux */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
const clkTck = clockTicks();

// ---------------------------------------------------------------- one phase

/** Samples in the server's per-sample index, read while the server runs: `where` is its SQLite file or PostgreSQL URL. */
async function storedRows(where, all = false) {
  if (STORE === 'postgres')
    return storedSamples(where).then(
      (r) => r.samples,
      () => null,
    );
  const dbFile = where;
  let db;
  try {
    db = new Database(dbFile, { readonly: true, fileMustExist: true });
    // (after the stop, the index worker may not have indexed the last batches yet: it does at the next start)
    if (all && INDEX_WORKER) return db.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM batch_headers').get().n;
    if (!INDEX_WORKER) return db.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM batch_headers WHERE indexed = 1').get().n;
    // the index worker's file beside the store: the records of the batches up to its cursor
    const index = new Database(dbFile.replace(/\.sqlite$/, '.index.sqlite'), { readonly: true, fileMustExist: true });
    let cursor;
    try {
      cursor = index.prepare('SELECT position FROM index_cursor WHERE id = 1').pluck().get() ?? 0;
    } finally {
      index.close();
    }
    return db.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM batch_headers WHERE rowid <= ?').get(cursor).n;
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/** Asks the load gateway for its counters. */
function gatewayStats(children) {
  const child = children.get('gateway').child;
  const id = Math.random();
  return children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error('the load gateway did not answer a stats request within 10 s'));
      }, 10_000);
      const onMessage = (msg) => {
        if (msg?.type !== 'stats' || msg.id !== id) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      };
      child.on('message', onMessage);
      child.send({ cmd: 'stats', id });
    }),
  );
}

async function runPhase(tmp, rate, { cpuProfile }) {
  const label = `${rate.toLocaleString('en-US')}/s${cpuProfile ? ' (profiled: --cpu-prof)' : ''}`;
  const dir = path.join(tmp, `rate-${rate}${cpuProfile ? '-prof' : ''}`);
  const confDir = path.join(dir, 'conf');
  const logDir = path.join(dir, 'logs');
  const profDir = path.join(dir, 'cpu-prof');
  const gatewayData = path.join(dir, 'gateway-data');
  const serverData = path.join(dir, 'server-data');
  for (const d of [confDir, logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const children = new Children({ cwd: ROOT, logDir });

  try {
    // the gateway's key, made as 'labtrace gateway init' makes it, registered with the server
    const { verifierKey } = createIdentity(GATEWAY_ID, gatewayData);
    const password = randomPassword();
    const [httpPort, mqttPort] = await freePorts(2);
    const serverConfig = path.join(confDir, 'server.yaml');
    const databaseUrl = STORE === 'postgres' ? await cluster.createDatabase(`ingest_${rate}${cpuProfile ? '_prof' : ''}`) : undefined;
    writeFileSync(
      serverConfig,
      stringify({
        lab: LAB,
        dataDir: serverData,
        http: { host: HOST, port: httpPort },
        mqtt: { host: HOST, port: mqttPort },
        broker: { users: [{ username: GATEWAY_ID, passwordHash: await hashPassword(password), role: 'gateway', gateway: GATEWAY_ID }] },
        gateways: [{ id: GATEWAY_ID, key: verifierKey }],
        ...(databaseUrl === undefined ? {} : { database: { url: databaseUrl } }),
        ...(INDEX_WORKER ? { store: { indexWorker: true } } : {}),
      }),
      { mode: 0o600 },
    );
    const gatewayOptions = path.join(confDir, 'load-gateway.json');
    writeFileSync(
      gatewayOptions,
      JSON.stringify({
        url: `mqtt://${HOST}:${mqttPort}`,
        username: GATEWAY_ID,
        password,
        gateway: GATEWAY_ID,
        lab: LAB,
        dataDir: gatewayData,
        instruments: params.instruments,
        channels: params.channels,
        maxBatchSamples: params.batch.maxSamples,
        maxBatchDelayMs: params.batch.maxDelayMs,
        maxHeldSamples: params.maxHeldSamples,
      }),
      { mode: 0o600 },
    );

    const env = { ...process.env, PORT: '', MQTT_PORT: '', LABTRACE_DATA_DIR: '' };
    // the bench signs in as the server's first admin, whose password it sets (read routes need a signed-in user)
    const adminPassword = randomPassword();
    log(`${label}: starting the server`);
    children.launch('server', BIN, ['server', '--config', serverConfig], {
      env: { ...env, LABTRACE_ADMIN_PASSWORD: adminPassword },
      nodeArgs: cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, 'server')}`] : [],
    });
    const base = `http://${HOST}:${httpPort}`;
    await children.waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);
    const login = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: adminPassword }),
    });
    if (!login.ok) throw new Error(`sign-in as admin failed: ${login.status} ${await login.text()}`);
    const authorization = `Bearer ${(await login.json()).token}`;

    log(`${label}: starting the load gateway`);
    const gw = children.launch('gateway', LOAD_GATEWAY, [gatewayOptions], {
      env,
      ipc: true,
      nodeArgs: cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, 'gateway')}`] : [],
    });
    await children.guard(
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the load gateway did not connect within 30 s')), 30_000);
        gw.child.on('message', (msg) => {
          if (msg?.type !== 'ready') return;
          clearTimeout(timer);
          resolve();
        });
      }),
    );
    // DATA of instruments not announced in a BIRTH would be refused: wait until the server has them all
    await children.waitFor(
      'the BIRTH of every instrument',
      async () => {
        const list = await (await fetch(`${base}/api/instruments`, { headers: { authorization } })).json();
        return (Array.isArray(list) && list.length === params.instruments) || `${Array.isArray(list) ? list.length : '?'} instruments`;
      },
      60_000,
    );

    log(`${label}: load on; warm-up ${params.warmupSeconds} s`);
    gw.child.send({ cmd: 'rate', rate });
    await children.guard(sleep(params.warmupSeconds * 1000));

    // ---- the measured window
    const dbFile = databaseUrl ?? path.join(serverData, 'labtrace.sqlite');
    const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, children.get(n).pid]));
    const rows0 = await storedRows(dbFile);
    const pg0 = cluster === undefined ? null : postgresTicks(cluster.dir);
    const cpu = new CpuWindow(pids, clkTck);
    const windowStart = cpu.startedAt;
    const windowStartUs = monoUs();
    gw.child.send({ cmd: 'window', on: true });
    log(`${label}: measuring ${params.seconds} s`);
    // the parent only watches CPU meanwhile: a loaded gateway answers late, and its counters keep its own time
    while (Date.now() - windowStart < params.seconds * 1000) {
      await children.guard(sleep(Math.min(1000, params.seconds * 1000 - (Date.now() - windowStart))));
      cpu.sample(0.2);
    }
    gw.child.send({ cmd: 'window', on: false });
    const windowEndUs = monoUs();
    const windowSeconds = cpu.end().seconds;
    const rows1 = await storedRows(dbFile);
    const pg1 = cluster === undefined ? null : postgresTicks(cluster.dir);
    const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));
    const atEnd = await gatewayStats(children);
    const gwSeconds = atEnd.window.seconds;
    const perSecond = atEnd.window.series.map(({ ackedPerSecond, generatedPerSecond, held }) => ({ ackedPerSecond, generatedPerSecond, held }));

    // ---- drain: the load stops; how long until every batch is acknowledged
    gw.child.send({ cmd: 'rate', rate: 0 });
    const drainStart = Date.now();
    let drained = atEnd.held === 0 ? atEnd : null;
    let last = atEnd;
    while (drained === null && Date.now() - drainStart < params.drainSeconds * 1000) {
      await children.guard(sleep(250));
      last = await gatewayStats(children);
      if (last.held === 0 && last.inflightBatches === 0) drained = last;
    }
    const drainSeconds = drained === null ? null : round1((Date.now() - drainStart) / 1000);
    const final = drained ?? last;

    // ---- stop: the gateway first (it flushes and waits for its last ACKs), then the server
    log(`${label}: stopping the gateway and the server`);
    children.stopping = true;
    const exits = { gateway: await children.stop('gateway'), server: await children.stop('server') };
    const rowsTotal = await storedRows(dbFile, true);

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
    const benchCpu = cpu.selfPercent();
    const machineProcCpu = cpu.machinePercent('proc');
    const postgresCpu = pg0 === null || pg1 === null ? null : ((pg1 - pg0) / clkTck / windowSeconds) * 100;
    const others =
      machineProcCpu === null
        ? null
        : Math.max(0, machineProcCpu - benchCpu - (postgresCpu ?? 0) - Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0));
    const acked = atEnd.window.ackedSamples / gwSeconds;
    const phase = {
      rate,
      generatedPerSecond: round1(atEnd.window.generated / gwSeconds),
      ackedPerSecond: round1(acked),
      storedPerSecond: rows0 !== null && rows1 !== null ? round1((rows1 - rows0) / windowSeconds) : null,
      ackedShare: round1((acked / rate) * 100) / 100,
      latencyMs: final.latencyMs,
      backlogAtEnd: atEnd.held,
      backlogMax: atEnd.window.maxHeld,
      drainSeconds,
      refused: final.refused,
      processes,
      ...(postgresCpu === null ? {} : { postgresCpuPercent: round1(postgresCpu) }),
      benchCpuPercent: round1(benchCpu),
      othersCpuPercent: round1(others),
      irqCpuPercent: round1(cpu.machinePercent('irq')),
      stored: rowsTotal,
      generated: final.generated,
      // only meaningful once the backlog drained; otherwise the rest waits in the gateway's outbox
      lost: rowsTotal === null || drained === null ? null : final.generated - final.refused - rowsTotal,
      inOutboxAtStop: drained === null ? final.outboxHeld : 0,
      stopExitCodes: { gateway: exits.gateway.code, server: exits.server.code },
    };
    const notes = [];
    for (const n of PROCESS_NAMES) for (const [msg, count] of children.get(n).notes) notes.push(`${n}: ${msg} (x${count})`);
    for (const [n, e] of Object.entries(exits))
      if (e.killed || e.code !== 0)
        notes.push(
          `${n} did not stop cleanly: ${e.killed ? 'SIGKILL after the timeout' : e.signal ? `ended by ${e.signal}` : `exit code ${e.code}`}`,
        );
    if (drainSeconds === null) notes.push(`the backlog (${final.held} samples) did not drain within ${params.drainSeconds} s of the load stopping`);
    if (rows0 === null || rows1 === null) notes.push('the store could not be read while the server ran: storedPerSecond is missing');

    const profiles = {};
    if (cpuProfile) {
      for (const [n, ours] of [
        ['server', /(server|protocols)\/dist\/src\//],
        ['gateway', /(gateway|protocols)\/dist\/src\/|bench\/lib\//],
      ]) {
        try {
          const file = readdirSync(path.join(profDir, n)).find((f) => f.endsWith('.cpuprofile'));
          if (file) profiles[n] = summarizeProfile(path.join(profDir, n, file), windowStartUs, windowEndUs, { root: ROOT, ours });
          else notes.push(`the ${n} wrote no .cpuprofile`);
        } catch (err) {
          notes.push(`cannot read the ${n}'s CPU profile: ${err.message}`);
        }
      }
    }
    log(
      `${label}: generated ${phase.generatedPerSecond}/s, acked ${phase.ackedPerSecond}/s, stored ${phase.storedPerSecond}/s; ` +
        `latency p50 ${phase.latencyMs.p50} p99 ${phase.latencyMs.p99} ms; backlog at end ${phase.backlogAtEnd}, drained in ${drainSeconds ?? '-'} s; ` +
        `CPU server ${processes.server.cpuPercent} % gateway ${processes.gateway.cpuPercent} % others ${phase.othersCpuPercent} %; ` +
        `peak RSS server ${processes.server.peakRssMiB} MiB gateway ${processes.gateway.peakRssMiB} MiB`,
    );
    for (const note of notes) log(`  note: ${note}`);
    const unclean = Object.values(exits).some((e) => e.killed || e.code !== 0);
    return { phase, perSecond, notes, profiles, unclean };
  } catch (err) {
    await children.killAllGracefully();
    children.printTails();
    throw err;
  }
}

// ---------------------------------------------------------------- the run

async function run(tmp) {
  log(
    `${params.instruments} instruments x ${params.channels} channels; batches of ${params.batch.maxSamples} or ${params.batch.maxDelayMs} ms; ` +
      `rates ${params.rates.join(', ')}/s; window ${params.seconds} s after ${params.warmupSeconds} s`,
  );
  const phases = {};
  const series = {};
  const notes = {};
  let cpuProfiles = null;
  let unclean = false;
  for (const rate of params.rates) {
    const profiled = cpuProfEnv === '1' && rate === PROFILE_RATE;
    const r = await runPhase(tmp, rate, { cpuProfile: profiled });
    phases[rate] = r.phase;
    series[rate] = r.perSecond;
    notes[rate] = r.notes;
    if (profiled) cpuProfiles = { rate, profiledPhase: "this one (BENCH_CPU_PROF=1): its figures include the profilers' cost", ...r.profiles };
    unclean ||= r.unclean;
  }
  const atProfileRate = phases[PROFILE_RATE];
  if (cpuProfEnv === 'auto' && atProfileRate && atProfileRate.ackedShare < TARGETS.throughputShare) {
    log(`ingest did not keep up at ${PROFILE_RATE}/s: that rate once more with the server and the gateway under --cpu-prof`);
    const r = await runPhase(tmp, PROFILE_RATE, { cpuProfile: true });
    cpuProfiles = { rate: PROFILE_RATE, profiledPhase: r.phase, ...r.profiles };
    notes[`${PROFILE_RATE}-profiled`] = r.notes;
    unclean ||= r.unclean;
  }

  const latency = phases[LATENCY_RATE];
  const results = {};
  if (latency)
    results.latency = {
      rate: LATENCY_RATE,
      p50Ms: latency.latencyMs.p50,
      p99Ms: latency.latencyMs.p99,
      targetP99Ms: TARGETS.latencyP99Ms,
      pass: typeof latency.latencyMs.p99 === 'number' && latency.latencyMs.p99 < TARGETS.latencyP99Ms,
    };
  for (const rate of params.rates) {
    const p = phases[rate];
    results[`at${rate}`] = {
      ackedPerSecond: p.ackedPerSecond,
      storedPerSecond: p.storedPerSecond,
      generatedPerSecond: p.generatedPerSecond,
      target: rate,
      pass: p.ackedShare >= TARGETS.throughputShare,
      latencyP99Ms: p.latencyMs.p99,
      backlogAtEnd: p.backlogAtEnd,
      drainSeconds: p.drainSeconds,
      serverCpuPercent: p.processes.server.cpuPercent,
      ...(p.postgresCpuPercent === undefined ? {} : { postgresCpuPercent: p.postgresCpuPercent }),
      gatewayCpuPercent: p.processes.gateway.cpuPercent,
      serverPeakRssMiB: p.processes.server.peakRssMiB,
      gatewayPeakRssMiB: p.processes.gateway.peakRssMiB,
      othersCpuPercent: p.othersCpuPercent,
      lost: p.lost,
    };
  }
  results.meetsTarget = Object.values(results).every((r) => typeof r !== 'object' || r.pass !== false);

  const file = writeResult(NAME, {
    params: { ...params, clockTicksPerSecond: clkTck },
    results,
    detail: {
      units: {
        PerSecond: 'samples per second over the measured window',
        Ms: 'milliseconds from a sample timestamp to the ACK of its batch at the gateway',
        CpuPercent: '% of one core',
        backlogAtEnd: 'samples held by the gateway (outbox and pending) when the window ended',
      },
      phases,
      perSecond: series,
      ...(cpuProfiles ? { cpuProfiles } : {}),
      notes,
    },
  });
  printTable(results);
  for (const n of ['server', 'gateway']) {
    const profile = cpuProfiles?.[n];
    if (!profile) continue;
    log(
      `${n} CPU profile at ${cpuProfiles.rate}/s (${profile.samples} samples${profile.windowed ? ' in the window' : ', whole run'}, ` +
        `${profile.idlePercent} % idle); self time in % of the busy samples:`,
    );
    for (const { fn, percent } of profile.selfTop.slice(0, 15)) log(`  ${String(percent).padStart(5)} %  ${fn}`);
    log(`${n}, by area: ${profile.areas.map(({ fn, percent }) => `${fn} ${percent} %`).join(', ')}`);
  }
  log(`wrote ${path.relative(ROOT, file)}`);
  return { unclean };
}

function printTable(results) {
  const fmt = (x) => (x === null || x === undefined ? '-' : typeof x === 'number' ? x.toLocaleString('en-US') : String(x));
  const rows = [
    ['rate/s', 'acked/s', 'stored/s', 'p50 ms', 'p99 ms', 'backlog', 'drain s', 'server %', 'gw %', 'srv MiB', 'gw MiB', 'others %', 'pass'],
  ];
  for (const rate of params.rates) {
    const r = results[`at${rate}`];
    const lat = rate === LATENCY_RATE ? results.latency : null;
    rows.push(
      [
        rate,
        r.ackedPerSecond,
        r.storedPerSecond,
        lat?.p50Ms ?? null,
        r.latencyP99Ms,
        r.backlogAtEnd,
        r.drainSeconds,
        r.serverCpuPercent,
        r.gatewayCpuPercent,
        r.serverPeakRssMiB,
        r.gatewayPeakRssMiB,
        r.othersCpuPercent,
        r.pass && (lat === null || lat.pass) ? 'yes' : 'NO',
      ].map(fmt),
    );
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log(
    `\npass: acked >= ${TARGETS.throughputShare * 100} % of the rate` +
      (results.latency ? `, and at ${LATENCY_RATE}/s p99 < ${TARGETS.latencyP99Ms} ms (sample timestamp to ACK at the gateway)` : '') +
      '\n',
  );
}

// ---------------------------------------------------------------- main

const tmp = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-ingest-'));
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => (interrupted = true));
try {
  if (STORE === 'postgres') cluster = await startPostgres();
  const { unclean } = await run(tmp);
  await cluster?.stop();
  if (unclean) {
    console.error(`${NAME}: FAILED: a process did not stop cleanly (see the notes); configs, logs and data kept in ${tmp}`);
    process.exit(1);
  }
  if (!keep) rmSync(tmp, { recursive: true, force: true });
  else log(`kept ${tmp}`);
} catch (err) {
  await cluster?.stop().catch(() => undefined);
  console.error(`${NAME}: FAILED: ${err.message}`);
  if (interrupted && !keep) rmSync(tmp, { recursive: true, force: true });
  else console.error(`${NAME}: configs, logs and data kept in ${tmp}`);
  process.exit(interrupted ? 130 : 1);
}
