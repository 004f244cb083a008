// Benchmark of result files through one gateway, with real processes: this process writes CSV result files
// (BENCH_ROWS rows of BENCH_POINTS values each; written under a temporary name, then renamed, so a file is
// complete at its rename) into a watched folder at BENCH_FILES_PER_SECOND; the gateway (`labtrace gateway`)
// takes each once stable (stableMs BENCH_STABLE_MS), hashes, parses, signs and sends it with its raw bytes;
// the server (`labtrace server`) verifies, stores and acknowledges. Target (issue): 10 files/s of 10,000 rows
// parsed, signed and sent without falling behind.
//
// Measured over the window: the CPU of the gateway and of the server (% of one core), their peak RSS, and per
// file the latency from its rename to the moment both the server's ACK of the file's raw bytes and the ACK of
// the last batch holding its samples have arrived (read by an MQTT reader that decodes the DATA batches to see
// which batch holds which file's samples). Falling behind shows as files not acknowledged at the end of the
// drain, and as a latency that grows from the window's first half to its second.
//
// BENCH_PEER=acker measures the gateway alone, as the floor is stated ("one gateway process"): the
// gateway sends to a Mosquitto broker, and this process, in place of the server, verifies each batch's
// signature (the check the server makes first), checks each raw file's SHA-256, and acknowledges both; it
// stores nothing. The gateway's figures then do not wait on the server's ingest (whose own floor, 200,000
// measurements/s, is another issue's); written to bench/results/result-files-gateway.json.
//
// Environment: BENCH_PEER (server | acker), BENCH_FILES_PER_SECOND (10), BENCH_ROWS (10000), BENCH_POINTS (2), BENCH_SECONDS (20),
// BENCH_WARMUP_SECONDS (3), BENCH_DRAIN_SECONDS (30), BENCH_STABLE_MS (200), BENCH_BATCH (5000, gateway batch.maxSamples),
// BENCH_INDEX_WORKER (0 | 1: the server with store.indexWorker),
// BENCH_KEEP=1 keeps the temporary directory. Writes bench/results/result-files.json. Run it on a quiet machine:
// othersCpuPercent says how busy the rest of the machine was.
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import {
  decodeRawFile,
  formatSignerKey,
  formatVerifierKey,
  isRawFileMessage,
  isSealedBatch,
  openBatch,
  parseVerifierKey,
  publicKeyFromSeed,
  verifyBatch,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { hashPassword, randomPassword } from '@labtrace/server';
import { Children, cliEnv, sleep } from './lib/children.js';
import { CpuWindow } from './lib/cpu-window.js';
import { freePorts, peakRssMiB } from './lib/proc.js';
import { ROOT, percentile, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const { envInt, envChoice } = envReader('result-files');
const PEER = envChoice('BENCH_PEER', ['server', 'acker']);
const NAME = PEER === 'acker' ? 'result-files-gateway' : 'result-files';
const BIN = path.join(ROOT, 'bin', 'labtrace.js');
const HOST = '127.0.0.1';
const LAB = 'bench-lab';
const GATEWAY_ID = 'gw-files-bench';
const READER = 'bench-reader';
const INSTRUMENT = 'bench-files';
const PROCESS_NAMES = PEER === 'acker' ? ['gateway', 'broker'] : ['server', 'gateway'];

const params = {
  peer: PEER,
  filesPerSecond: envInt('BENCH_FILES_PER_SECOND', 10, 1, 1000),
  rows: envInt('BENCH_ROWS', 10_000, 1, 1_000_000),
  points: envInt('BENCH_POINTS', 2, 1, 20),
  seconds: envInt('BENCH_SECONDS', 20, 1, 3600),
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 3, 0, 600),
  drainSeconds: envInt('BENCH_DRAIN_SECONDS', 30, 1, 3600),
  stableMs: envInt('BENCH_STABLE_MS', 200, 50, 60_000),
  batchMaxSamples: envInt('BENCH_BATCH', 5000, 1, 10_000),
  /** BENCH_INDEX_WORKER=1: the server keeps its per-sample index in a worker thread (store.indexWorker) */
  indexWorker: envChoice('BENCH_INDEX_WORKER', ['0', '1']) === '1',
};
const keep = process.env['BENCH_KEEP'] === '1';
// the acker hashes as the server does (Node's crypto): with the pure-JavaScript default it could not keep up itself
useNodeCrypto();
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

/** One file's text: a header and `rows` lines of a time and `points` values (distinct per file, so hashes differ). */
function fileText(index) {
  const head = ['time', ...Array.from({ length: params.points }, (_, k) => `p${k}`)].join(',');
  const base = 1_800_000_000_000 + index * params.rows * 10;
  const lines = [head];
  for (let r = 0; r < params.rows; r++) {
    const values = Array.from({ length: params.points }, (_, k) => ((index * 7 + r * 3 + k) % 100_000) / 8);
    lines.push(`${base + r * 10},${values.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

async function run(tmp, children, peers) {
  const confDir = path.join(tmp, 'conf');
  const folder = path.join(tmp, 'incoming');
  for (const d of [confDir, folder, children.logDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const [httpPort, serverMqttPort] = await freePorts(2);
  const gatewayPassword = randomPassword();
  const readerPassword = randomPassword();
  const passwordFile = path.join(confDir, 'gateway.password');
  writeFileSync(passwordFile, `${gatewayPassword}\n`, { mode: 0o600 });
  const seed = new Uint8Array(randomBytes(32));
  const gatewayData = path.join(tmp, 'gateway-data');
  mkdirSync(gatewayData, { mode: 0o700 });
  writeFileSync(path.join(gatewayData, 'gateway.key'), `${formatSignerKey(GATEWAY_ID, seed)}\n`, { mode: 0o600 });
  const files = { server: path.join(confDir, 'server.yaml'), gateway: path.join(confDir, 'gateway.yaml'), profile: path.join(confDir, 'files.yaml') };
  let mqttUrl = `mqtt://${HOST}:${serverMqttPort}`;
  if (PEER === 'acker') {
    const broker = await Mosquitto.create({
      users: [
        { username: GATEWAY_ID, password: gatewayPassword },
        { username: READER, password: readerPassword },
      ],
    });
    peers.broker = broker;
    await broker.start();
    mqttUrl = broker.url;
  }
  writeFileSync(
    files.server,
    stringify({
      lab: LAB,
      dataDir: path.join(tmp, 'server-data'),
      http: { host: HOST, port: httpPort },
      mqtt: { host: HOST, port: serverMqttPort },
      broker: {
        users: [
          { username: GATEWAY_ID, passwordHash: await hashPassword(gatewayPassword), role: 'gateway', gateway: GATEWAY_ID },
          { username: READER, passwordHash: await hashPassword(readerPassword), role: 'reader' },
        ],
      },
      gateways: [{ id: GATEWAY_ID, key: formatVerifierKey(GATEWAY_ID, publicKeyFromSeed(seed)) }],
      // the rows are dated in 2027: no clock-skew events for them
      ingest: { maxClockSkewMs: 5 * 365 * 86_400_000, maxAgeMs: 5 * 365 * 86_400_000 },
      ...(params.indexWorker ? { store: { indexWorker: true } } : {}),
    }),
    { mode: 0o600 },
  );
  writeFileSync(
    files.profile,
    stringify({
      protocol: 'file',
      id: INSTRUMENT,
      identity: { maker: 'labtrace', model: 'bench result files', serialNumber: 'BENCH-F' },
      folder,
      include: ['*.csv'],
      stableMs: params.stableMs,
      parser: { format: 'csv' },
      timestamp: { from: 'time', format: 'epoch-ms' },
      points: Array.from({ length: params.points }, (_, k) => ({ name: `p${k}`, from: `p${k}`, unit: 'V' })),
    }),
  );
  writeFileSync(
    files.gateway,
    stringify({
      gateway: { id: GATEWAY_ID, lab: LAB },
      dataDir: gatewayData,
      mqtt: { url: mqttUrl, username: GATEWAY_ID, passwordFile },
      batch: { maxSamples: params.batchMaxSamples, maxDelayMs: 50 },
      instruments: [{ profile: files.profile }],
    }),
    { mode: 0o600 },
  );

  if (PEER === 'server') {
    log('starting the server');
    children.launch('server', BIN, ['server', '--config', files.server], { env: cliEnv() });
    const base = `http://${HOST}:${httpPort}`;
    await children.waitFor('server /api/health', async () => (await fetch(`${base}/api/health`)).ok || 'not ok yet', 30_000);
  } else log(`the gateway sends to Mosquitto (${mqttUrl}); this process verifies and acknowledges`);

  // which batch holds each file's samples, and which ACKs came back
  const lastBatchOf = new Map(); // file hash -> highest batch with its samples
  const ackedBatches = new Set();
  const ackedFiles = new Map(); // hash -> time
  const done = new Map(); // hash -> latency ms
  const renamedAt = new Map(); // hash -> time of rename
  /** files acknowledged whose samples are not all acknowledged yet (looked at on each batch ACK) */
  const waiting = new Set();
  const settle = (hash, now) => {
    if (done.has(hash) || !ackedFiles.has(hash) || !renamedAt.has(hash)) return;
    const last = lastBatchOf.get(hash);
    if (last === undefined || !ackedBatches.has(last)) {
      waiting.add(hash);
      return;
    }
    waiting.delete(hash);
    done.set(hash, now - (renamedAt.get(hash) ?? now));
  };
  const verifier = parseVerifierKey(formatVerifierKey(GATEWAY_ID, publicKeyFromSeed(seed)));
  const topic = (kind) => `labtrace/v1/${LAB}/${GATEWAY_ID}/${kind}`;
  const refused = { batches: 0, files: 0 };
  const reader = mqtt.connect(mqttUrl, { username: READER, password: readerPassword, clientId: `bench-reader-${process.pid}` });
  reader.on('message', (topic_, payload) => {
    const now = Date.now();
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    if (topic_.endsWith('/DATA') && isSealedBatch(payload)) {
      const { signed, samples, leaves } = openBatch(bytes, { leaves: PEER === 'acker' });
      for (const s of samples) if (s.file !== undefined) lastBatchOf.set(s.file, Math.max(lastBatchOf.get(s.file) ?? -1, signed.header.batch));
      if (PEER === 'acker') {
        try {
          verifyBatch(signed, samples, verifier, GATEWAY_ID, leaves);
        } catch (err) {
          refused.batches++;
          if (refused.batches === 1) log(`refused a batch: ${err.message}`);
          return;
        }
        reader.publish(topic('ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
        ackedBatches.add(signed.header.batch);
        for (const hash of [...waiting]) settle(hash, now);
      }
      return;
    }
    if (PEER === 'acker' && topic_.endsWith('/FILE') && isRawFileMessage(bytes)) {
      const { header, bytes: raw } = decodeRawFile(bytes);
      if (createHash('sha256').update(raw).digest('hex') !== header.sha256) {
        refused.files++;
        return;
      }
      reader.publish(topic('ACK'), JSON.stringify({ v: 1, file: header.sha256 }), { qos: 1 });
      ackedFiles.set(header.sha256, now);
      settle(header.sha256, now);
      return;
    }
    if (!topic_.endsWith('/ACK') || PEER === 'acker') return;
    const ack = JSON.parse(payload.toString('utf8'));
    if (typeof ack.file === 'string') {
      ackedFiles.set(ack.file, now);
      settle(ack.file, now);
    } else if (typeof ack.batch === 'number') {
      ackedBatches.add(ack.batch);
      for (const hash of [...waiting]) settle(hash, now);
    }
  });
  await children.guard(
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('MQTT reader could not connect within 10 s')), 10_000);
      reader.once('connect', () =>
        reader.subscribe(PEER === 'acker' ? [topic('DATA'), topic('FILE')] : [topic('DATA'), topic('ACK')], { qos: 1 }, (err) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        }),
      );
    }),
  );

  log('starting the gateway');
  children.launch('gateway', BIN, ['gateway', '--config', files.gateway], { env: cliEnv() });
  await sleep(2000);

  // The files are prepared before they are written, so that writing costs the bench little.
  const total = params.filesPerSecond * (params.warmupSeconds + params.seconds);
  log(`preparing ${total} files of ${params.rows} rows x ${params.points} points`);
  const prepared = Array.from({ length: total }, (_, i) => {
    const bytes = Buffer.from(fileText(i), 'utf8');
    return { name: `r-${String(i).padStart(6, '0')}.csv`, bytes, hash: createHash('sha256').update(bytes).digest('hex') };
  });

  const pids = Object.fromEntries(PROCESS_NAMES.map((n) => [n, n === 'broker' ? peers.broker?.pid : children.get(n).pid]));
  /** the measured window, from the first file after the warm-up */
  let cpu = null;
  const inWindow = new Set();
  const started = Date.now();
  const every = 1000 / params.filesPerSecond;
  log(`writing ${params.filesPerSecond} files/s: warm-up ${params.warmupSeconds} s, then ${params.seconds} s measured`);
  for (let i = 0; i < total; i++) {
    if (i === params.filesPerSecond * params.warmupSeconds) cpu = new CpuWindow(pids);
    const file = prepared[i];
    const tmpName = path.join(folder, `${file.name}.part`);
    writeFileSync(tmpName, file.bytes);
    renameSync(tmpName, path.join(folder, file.name));
    renamedAt.set(file.hash, Date.now());
    if (cpu !== null) inWindow.add(file.hash);
    const wait = started + (i + 1) * every - Date.now();
    if (wait > 0) await children.guard(sleep(wait));
  }
  cpu.end();
  const rss = Object.fromEntries(PROCESS_NAMES.map((n) => [n, peakRssMiB(pids[n])]));
  log(`written; draining up to ${params.drainSeconds} s`);
  const drainEnd = Date.now() + params.drainSeconds * 1000;
  while (Date.now() < drainEnd && [...inWindow].some((h) => !done.has(h))) await children.guard(sleep(200));
  reader.end(true);

  children.stopping = true;
  const exits = { gateway: await children.stop('gateway') };
  if (PEER === 'server') exits.server = await children.stop('server');

  const processes = {};
  for (const n of PROCESS_NAMES) {
    const proc = n === 'broker' ? undefined : children.get(n);
    processes[n] = {
      cpuPercent: round1(cpu.percent(n)),
      peakRssMiB: round1(rss[n]),
      ...(proc === undefined ? {} : { logWarnings: proc.warnings, logErrors: proc.errors }),
    };
  }
  const selfCpuPercent = cpu.selfPercent();
  const ours = Object.values(processes).reduce((sum, p) => sum + (p.cpuPercent ?? 0), 0) + selfCpuPercent;
  const machineProc = cpu.machinePercent('proc');
  const windowFiles = prepared.filter((f) => inWindow.has(f.hash));
  const latencies = windowFiles.map((f) => done.get(f.hash)).filter((v) => v !== undefined);
  const sorted = [...latencies].sort((a, b) => a - b);
  const half = Math.floor(windowFiles.length / 2);
  const med = (list) => {
    const s = list.filter((v) => v !== undefined).sort((a, b) => a - b);
    return s.length === 0 ? null : percentile(s, 50);
  };
  const firstHalf = med(windowFiles.slice(0, half).map((f) => done.get(f.hash)));
  const secondHalf = med(windowFiles.slice(half).map((f) => done.get(f.hash)));
  const results = {
    filesPerSecond: params.filesPerSecond,
    samplesPerSecond: params.filesPerSecond * params.rows * params.points,
    filesInWindow: windowFiles.length,
    filesAcknowledged: latencies.length,
    fileToAckMs: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? null },
    fileToAckMedianMs: { firstHalf, secondHalf },
    ...processes,
    ...(PEER === 'acker' ? { refusedByAcker: refused } : {}),
    benchCpuPercent: round1(selfCpuPercent),
    othersCpuPercent: machineProc === null ? null : round1(Math.max(0, machineProc - ours)),
    keptUp: latencies.length === windowFiles.length && firstHalf !== null && secondHalf !== null && secondHalf < firstHalf * 2 + 1000,
    stopExitCodes: Object.fromEntries(Object.entries(exits).map(([n, e]) => [n, e.code])),
  };
  const notes = [
    `latency includes stableMs (${params.stableMs} ms), the time a file must stay unchanged before it is taken, and the check interval (stableMs/4)`,
    'keptUp: every file of the window acknowledged (raw bytes and last batch) before the drain ended, and the median latency of the second half under twice the first half plus 1 s',
    PEER === 'acker'
      ? 'peer: acker: the gateway sends to Mosquitto; the bench process verifies every batch signature and raw-file hash and acknowledges (benchCpuPercent is that work); nothing is stored past the gateway'
      : 'peer: server: the real server verifies, stores and acknowledges; its ingest is the bound when it is the busier process',
  ];
  return { results, detail: { notes } };
}

const tmp = mkdtempSync(path.join(os.tmpdir(), `labtrace-bench-${NAME}-`));
const children = new Children({ cwd: ROOT, logDir: path.join(tmp, 'logs') });
const peers = { broker: undefined };
let code = 0;
try {
  const { results, detail } = await run(tmp, children, peers);
  const file = writeResult(NAME, { params, results, detail });
  console.log(JSON.stringify(results, null, 2));
  log(`written ${file}`);
} catch (err) {
  code = 1;
  console.error(`${NAME}: FAILED: ${err.message}`);
  children.printTails();
} finally {
  await children.killAllGracefully();
  await peers.broker?.dispose();
  if (!keep && code === 0) rmSync(tmp, { recursive: true, force: true });
  else log(`configs and logs kept in ${tmp}`);
}
process.exit(code);
