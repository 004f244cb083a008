// Benchmark of the simulator's Modbus TCP server, so that it never limits another benchmark: a
// Simulator runs in this process with one instrument; a client in a child process (minimal raw
// sockets, one request in flight per connection) reads 20 holding registers over and over, on (a) one
// connection and (b) several connections in parallel. This process's CPU is the server's.
// Baseline measured in the same run: the cheapest Node server there is (a fixed reply with the
// transaction id copied in), which shows what loopback TCP and the event loop allow on this machine.
//
// Environment: BENCH_SECONDS (5, measured window per scenario), BENCH_WARMUP_SECONDS (1),
// BENCH_CONNECTIONS (8), BENCH_REGISTERS (20).
// CPU is in % of one core; machineBusyPercent is the whole machine in % of all cores. Writes bench/results/sim-modbus.json. Exits non-zero when a run fails.
import { Buffer } from 'node:buffer';
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envReader } from './lib/env.js';

const NAME = 'sim-modbus';
const { envInt } = envReader(NAME);
const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = path.dirname(SELF);
const ROOT = path.dirname(BENCH_DIR);
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const HOST = '127.0.0.1';
const UNIT = 1;

const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// ---------------------------------------------------------------- the client (child process)

/** One connection: sends a request, waits for its reply, sends the next; counts replies in the window. */
function clientConnection(port, registers, state) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST);
    socket.setNoDelay(true);
    const request = Buffer.from([0, 0, 0, 0, 0, 6, UNIT, 3, 0, 0, registers >> 8, registers & 0xff]);
    const replyLength = 9 + 2 * registers;
    let tid = 0;
    let pending = Buffer.alloc(0);
    let sentAt = 0n;
    const send = () => {
      tid = (tid + 1) & 0xffff;
      request.writeUInt16BE(tid, 0);
      sentAt = process.hrtime.bigint();
      socket.write(request);
    };
    socket.on('connect', send);
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (pending.length < replyLength) return;
      const ok = pending.length === replyLength && pending.readUInt16BE(0) === tid && pending[7] === 3 && pending[8] === 2 * registers;
      pending = Buffer.alloc(0);
      if (!ok) state.errors++;
      if (state.measuring) {
        state.replies++;
        if (state.latencies.length < 200_000) state.latencies.push(Number(process.hrtime.bigint() - sentAt) / 1000);
      }
      if (state.stopping) {
        socket.end();
        return;
      }
      send();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

async function clientMain() {
  process.on('message', async (msg) => {
    if (msg.cmd !== 'run') return;
    const state = { measuring: false, stopping: false, replies: 0, errors: 0, latencies: [] };
    const conns = Array.from({ length: msg.connections }, () => clientConnection(msg.port, msg.registers, state));
    await new Promise((r) => setTimeout(r, msg.warmupMs));
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    state.measuring = true;
    process.send({ phase: 'measuring' });
    await new Promise((r) => setTimeout(r, msg.seconds * 1000));
    state.measuring = false;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    process.send({ phase: 'measured' });
    state.stopping = true;
    try {
      await Promise.all(conns);
    } catch (err) {
      process.send({ phase: 'failed', error: err.message });
      return;
    }
    const sorted = state.latencies.sort((a, b) => a - b);
    process.send({
      phase: 'done',
      result: {
        replies: state.replies,
        errors: state.errors,
        seconds,
        clientCpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
        latencyUs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? null },
      },
    });
  });
  process.send({ phase: 'ready' });
}

// ---------------------------------------------------------------- the server side (this process)

/** The floor: answers every MBAP request with one fixed reply of `registers` registers. */
async function startBaseline(registers) {
  const reply = Buffer.alloc(9 + 2 * registers);
  reply.writeUInt16BE(3 + 2 * registers, 4);
  reply[6] = UNIT;
  reply[7] = 3;
  reply[8] = 2 * registers;
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk) => {
      for (let at = 0; at + 12 <= chunk.length; at += 12) {
        const out = Buffer.from(reply);
        chunk.copy(out, 0, at, at + 2);
        socket.write(out);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  return {
    port: server.address().port,
    requests: () => null,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(resolve);
      }),
  };
}

async function startSimulator(registers) {
  const { Simulator } = await import('@labtrace/device-sim');
  const { parseModbusProfile } = await import('@labtrace/protocols');
  // registers/2 float32 points, so a read of `registers` registers from 0 is fully mapped.
  const points = Array.from({ length: Math.ceil(registers / 2) }, (_, i) => ({
    name: `ch${i}`,
    register: 'holding',
    address: 2 * i,
    type: 'float32',
    order: 'ABCD',
  }));
  const profile = parseModbusProfile({
    id: 'bench-1',
    identity: { maker: 'Bench', model: 'Sim', serialNumber: 'B-1' },
    connection: { transport: 'tcp', host: HOST, port: 1 },
    unitId: UNIT,
    points,
  });
  const sim = new Simulator({ config: { host: HOST, tickMs: 100 }, instruments: [{ profile, model: 'constant', port: 0 }] });
  await sim.start();
  const instrument = sim.instruments.get('bench-1');
  instrument.pin(Object.fromEntries(points.map((p, i) => [p.name, 1.5 * i])), Date.now());
  return { port: instrument.server.port, requests: () => instrument.requests, stop: () => sim.stop() };
}

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

/** Busy and total jiffies of the whole machine (first line of /proc/stat); null where there is none. */
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

/** Runs one scenario against a server on `port`; this process's CPU over the client's window is the server's. */
function runScenario(client, port, connections, params) {
  return new Promise((resolve, reject) => {
    let cpu0;
    let t0;
    let machine0;
    let server = null;
    const onMessage = (msg) => {
      if (msg.phase === 'measuring') {
        cpu0 = process.cpuUsage();
        t0 = process.hrtime.bigint();
        machine0 = machineTicks();
      } else if (msg.phase === 'measured') {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpu0);
        const machine1 = machineTicks();
        server = {
          cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
          // the whole machine, in % of all its cores: a busy machine skews the figures
          machineBusyPercent: machine0 && machine1 ? ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100 : null,
        };
      } else if (msg.phase === 'done') {
        client.off('message', onMessage);
        const r = msg.result;
        if (r.errors > 0) return reject(new Error(`${r.errors} bad replies with ${connections} connection(s)`));
        const rps = r.replies / r.seconds;
        resolve({
          connections,
          requestsPerSecond: Math.round(rps),
          serverCpuPercent: round1(server?.cpuPercent),
          requestsPerServerCpuSecond: server && server.cpuPercent > 0 ? Math.round(rps / (server.cpuPercent / 100)) : null,
          clientCpuPercent: round1(r.clientCpuPercent),
          machineBusyPercent: round1(server?.machineBusyPercent),
          latencyUs: Object.fromEntries(Object.entries(r.latencyUs).map(([k, v]) => [k, v === null ? null : Math.round(v)])),
        });
      } else if (msg.phase === 'failed') {
        client.off('message', onMessage);
        reject(new Error(`client failed with ${connections} connection(s): ${msg.error}`));
      }
    };
    client.on('message', onMessage);
    client.send({ cmd: 'run', port, connections, registers: params.registers, seconds: params.seconds, warmupMs: params.warmupSeconds * 1000 });
  });
}

async function serverMain() {
  const params = {
    seconds: envInt('BENCH_SECONDS', 5, 1, 600),
    warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 1, 0, 60),
    connections: envInt('BENCH_CONNECTIONS', 8, 2, 256),
    registers: envInt('BENCH_REGISTERS', 20, 2, 124),
  };
  const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
  const client = fork(SELF, ['--client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let clientExit = null;
  client.once('exit', (code, signal) => (clientExit = { code, signal }));
  const cleanup = [];
  try {
    await new Promise((resolve, reject) => {
      client.once('message', (msg) => (msg.phase === 'ready' ? resolve() : reject(new Error('client did not start'))));
      client.once('exit', () => reject(new Error('client exited before it started')));
    });
    const results = {};
    for (const [key, start] of [
      ['simulator', startSimulator],
      ['baseline', startBaseline],
    ]) {
      const server = await start(params.registers);
      cleanup.push(server.stop);
      results[key] = {};
      for (const connections of [1, params.connections]) {
        const before = server.requests();
        log(`${key}: ${connections} connection(s), ${params.registers} registers per request, ${params.seconds} s`);
        const r = await runScenario(client, server.port, connections, params);
        const served = server.requests();
        if (before !== null && served !== null && served - before < r.requestsPerSecond * params.seconds * 0.9) {
          throw new Error(`${key}: the server counted ${served - before} requests, fewer than the client's replies`);
        }
        results[key][connections === 1 ? 'oneConnection' : `connections${connections}`] = r;
        log(
          `  ${r.requestsPerSecond} requests/s, server CPU ${r.serverCpuPercent} %, client CPU ${r.clientCpuPercent} %, ` +
            `machine ${r.machineBusyPercent} % busy, p50 ${r.latencyUs.p50} us`,
        );
      }
      await server.stop();
      cleanup.pop();
    }
    const sim = results.simulator;
    const base = results.baseline;
    const many = `connections${params.connections}`;
    results.simulatorVsBaselinePercent = {
      oneConnection: round1((sim.oneConnection.requestsPerSecond / base.oneConnection.requestsPerSecond) * 100),
      [many]: round1((sim[many].requestsPerSecond / base[many].requestsPerSecond) * 100),
    };
    results.meetsTarget10k = sim.oneConnection.requestsPerSecond >= 10_000 && sim[many].requestsPerSecond >= 10_000;

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
      params,
      results,
      detail: { peakRssMiB: round1(process.resourceUsage().maxRSS / 1024) },
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(path.join(RESULTS_DIR, `${NAME}.json`), `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote bench/results/${NAME}.json`);
  } finally {
    for (const stop of cleanup.reverse()) await stop();
    if (clientExit === null) {
      // Closing the IPC channel lets the client end by itself; a stuck one is killed.
      const exited = new Promise((resolve) => client.once('exit', resolve));
      const timer = setTimeout(() => client.kill('SIGKILL'), 5000);
      client.disconnect();
      await exited;
      clearTimeout(timer);
    }
  }
}

if (process.argv[2] === '--client') {
  await clientMain();
} else {
  try {
    await serverMain();
  } catch (err) {
    console.error(`${NAME}: FAILED: ${err.message}`);
    process.exit(1);
  }
}
