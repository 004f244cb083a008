// Benchmark of the gateway's OPC UA source: 2,000 monitored items changing at 10 Hz through ONE
// subscription (target in the issue: the gateway under half a core). The simulated testing machine
// (device-sim's OPC UA server, node-opcua) runs in a child process and writes a new value to every
// item every 100 ms; this process runs the gateway's OpcuaInstrument (session, subscription, monitored
// items, quality, de-duplication) and counts the samples it emits. Measured over the window: this
// process's CPU (% of one core) and peak RSS, the samples/s received against the values/s written, the
// duplicates dropped, and the latency from the server's source timestamp to arrival (p50/p99 from the
// source's health). It measures the OPC UA side only: numbering, signing and the MQTT uplink are what
// bench/gateway-modbus measures for the whole gateway.
//
// Environment: BENCH_ITEMS (2000), BENCH_RATE_HZ (10), BENCH_SECONDS (20, measured window),
// BENCH_WARMUP_SECONDS (5). samplesPerSecond below valuesWrittenPerSecond with simulatorCpuPercent near 100
// means the simulator, not the gateway, was the limit. othersCpuPercent is what the rest of the machine used meanwhile: a busy
// machine skews the figures; re-run when it is high.
// Writes bench/results/gateway-opcua.json. Exits non-zero when the run cannot complete.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { OpcuaInstrument } from '@labtrace/gateway';
import { parseOpcuaProfile } from '@labtrace/protocols';
import { clockTicks, cpuTicks, freePorts, othersCpu, peakRssMiB } from './lib/proc.js';
import { ROOT, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'gateway-opcua';
const { envInt } = envReader(NAME);
const ITEMS = envInt('BENCH_ITEMS', 2000, 1, 50_000);
const RATE_HZ = envInt('BENCH_RATE_HZ', 10, 1, 100);
const SECONDS = envInt('BENCH_SECONDS', 20, 1, 3600);
const WARMUP = envInt('BENCH_WARMUP_SECONDS', 5, 0, 600);

const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-opcua-'));
const [port] = await freePorts(1);
const points = Array.from({ length: ITEMS }, (_, i) => ({ name: `p${i}`, nodeId: `ns=2;s=bench.p${i}`, unit: 'N' }));
const profileInput = {
  id: 'utm-bench',
  identity: { maker: 'Bench', model: 'UTM', serialNumber: 'B-1' },
  connection: { transport: 'opcua', endpointUrl: `opc.tcp://127.0.0.1:${port}`, timeoutMs: 30_000 },
  subscription: { publishingIntervalMs: 1000 / RATE_HZ, samplingIntervalMs: 1000 / RATE_HZ, queueSize: 4 },
  points,
};
const profileFile = path.join(dir, 'profile.json');
writeFileSync(profileFile, JSON.stringify(profileInput));

// the simulator: every point gets a new value RATE_HZ times a second
const simScript = `
import { readFileSync } from 'node:fs';
import { Simulator } from '@labtrace/device-sim';
import { parseOpcuaProfile } from '@labtrace/protocols';
const input = JSON.parse(readFileSync(process.env.PROFILE, 'utf8'));
const profile = parseOpcuaProfile(input);
const sim = new Simulator({ config: { host: '127.0.0.1', tickMs: 1000 }, instruments: [{ profile, model: 'constant', port: Number(process.env.PORT), opcua: { pkiDir: process.env.PKI, secure: false, trustAllClients: true, users: [], tickMs: 20 } }] });
await sim.start();
const instrument = sim.instruments.get(profile.id);
let n = 0;
setInterval(() => {
  n++;
  const values = {};
  for (let i = 0; i < profile.points.length; i++) values['p' + i] = i + n / 1000;
  instrument.pin(values, Date.now());
}, 1000 / Number(process.env.RATE));
process.stdout.write('ready\\n');
process.on('SIGTERM', () => sim.stop().then(() => process.exit(0)));
`;
const sim = spawn(process.execPath, ['--input-type=module', '-e', simScript], {
  cwd: path.join(ROOT, 'gateway'),
  env: { ...process.env, PROFILE: profileFile, PORT: String(port), PKI: path.join(dir, 'sim-pki'), RATE: String(RATE_HZ) },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise((resolve, reject) => {
  sim.stdout.on('data', (d) => {
    if (String(d).includes('ready')) resolve();
  });
  sim.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
});

const source = new OpcuaInstrument(parseOpcuaProfile(profileInput), { logger: pino({ level: 'warn' }), dataDir: path.join(dir, 'gw') });
let samples = 0;
let bad = 0;
source.on('samples', (batch) => {
  samples += batch.length;
  for (const s of batch) if (s.quality !== 'good') bad++;
});
await source.start();
const deadline = Date.now() + 60_000;
while (!source.getHealth().connected) {
  if (Date.now() > deadline) throw new Error(`not connected: ${source.getHealth().reason ?? ''}`);
  await new Promise((r) => setTimeout(r, 100));
}
await new Promise((r) => setTimeout(r, WARMUP * 1000));

const others = othersCpu([sim.pid]);
const simTicks0 = cpuTicks(sim.pid);
const cpu0 = process.cpuUsage();
const samples0 = samples;
const dup0 = source.getHealth().errors['duplicate'] ?? 0;
const t0 = Date.now();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const seconds = (Date.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const othersPercent = others();
const simTicks1 = cpuTicks(sim.pid);
const health = source.getHealth();
const results = {
  gatewayCpuPercent: round1(((cpu.user + cpu.system) / 1e6 / seconds) * 100),
  gatewayPeakRssMiB: round1(peakRssMiB(process.pid)),
  valuesWrittenPerSecond: ITEMS * RATE_HZ,
  samplesPerSecond: round1((samples - samples0) / seconds),
  badSamples: bad,
  duplicatesDropped: (health.errors['duplicate'] ?? 0) - dup0,
  latencyMs: health.latencyMs,
  othersCpuPercent: othersPercent,
  /** the simulator is the limit when it is near 100: it then writes fewer values than asked */
  simulatorCpuPercent: simTicks0 === null || simTicks1 === null ? null : round1(((simTicks1 - simTicks0) / clockTicks() / seconds) * 100),
};
await source.stop();
sim.kill('SIGTERM');
await new Promise((r) => sim.once('exit', r));
rmSync(dir, { recursive: true, force: true });
writeResult(NAME, { params: { items: ITEMS, rateHz: RATE_HZ, seconds: SECONDS, warmupSeconds: WARMUP }, results });
console.log(JSON.stringify(results, null, 2));
