// What authentication and authorization cost a request: the same route (GET /api/instruments, 5 instruments)
// of the same server code at a fixed 2,000 requests/s, with and without them, measured in one run.
//   auth       the server as shipped: a bearer token, hashed and looked up in the sessions table, then the policy
//   baseline   the same server (a second one: same app, routers, middleware) whose users module takes every
//              request for an admin's without looking anything up; the policy check still runs (a role in a short list)
//   minimal    a minimal Express 5 app (helmet with the server's options, express.json) answering the same route with
//              the same list (read from the server, serialized by res.json on each request): the floor the server's
//              per-request CPU is held to (issue 20: within 2 x the minimal app's, measured in the same run)
// After a warm-up the three are interleaved, in alternating order, so that a noisy neighbour hurts both alike. Both
// servers run in a child process (`--serve`), so that the load generator does not share their event loop. Besides
// latency, each round reads the child's CPU time: server CPU per request does not depend on what else the machine
// runs, so it says what auth costs even when the load generator and its neighbours hold the rate below the target.
// Environment: BENCH_AUTH_RATE (2000 requests/s), BENCH_AUTH_SECONDS (8 per round), BENCH_AUTH_ROUNDS (2),
// BENCH_AUTH_PATH (/api/instruments; /api/gateways is a light route, whose own work does not hold the rate down).
// Writes bench/results/auth.json (auth-<rate>.json for another rate, auth-<route>.json for another path).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import express from 'express';
import helmet from 'helmet';
import pino from 'pino';
import { LabtraceServer, serverConfigSchema } from '../server/dist/src/index.js';
import { round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'auth';
const { envNumber } = envReader(NAME);
const params = {
  rate: envNumber('BENCH_AUTH_RATE', 2000, 10, 100_000),
  seconds: envNumber('BENCH_AUTH_SECONDS', 8, 1, 600),
  rounds: envNumber('BENCH_AUTH_ROUNDS', 2, 1, 20),
  connections: 20,
  instruments: 5,
  route: `GET ${benchPath()}`,
  target: 'auth adds less than 10% to the mean and p99 latency; server CPU per request within 2 x the minimal Express app',
};
/** the server's CPU per request against the minimal Express app's, at most (issue 20) */
const FLOOR_RATIO = 2;
/** BENCH_AUTH_PATH: a GET route of the API that an admin may read, without a query */
function benchPath() {
  const raw = process.env.BENCH_AUTH_PATH;
  if (raw === undefined || raw === '') return '/api/instruments';
  if (!/^\/api\/[a-z0-9/-]+$/.test(raw)) {
    console.error(`${NAME}: BENCH_AUTH_PATH: expected a path such as /api/gateways, got "${raw}"`);
    process.exit(2);
  }
  return raw;
}
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);

if (process.argv[2] === '--serve') {
  const logger = pino({ level: 'silent' });
  /** A server on its own data directory, with the gateway and instruments the route shows. */
  const now = Date.now();
  const startServer = async () => {
    const config = serverConfigSchema.parse({
      lab: 'bench',
      dataDir: mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-auth-')),
      // the per-address rate limit is not what is measured here (the load comes from one address)
      http: { host: '127.0.0.1', port: 0, rateLimit: false },
      mqtt: { host: '127.0.0.1', port: 0 },
    });
    const s = new LabtraceServer(config, logger, { adminPassword: 'bench-admin-password', announce: () => undefined });
    await s.start();
    const db = s.database.sqlite;
    db.prepare('INSERT INTO gateways (id, lab, version, session, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)').run(
      'gw-b',
      'bench',
      't',
      1,
      now,
      now,
    );
    for (let i = 0; i < params.instruments; i++)
      db.prepare('INSERT INTO instruments (id, gateway, identity, channels, updated_at) VALUES (?, ?, ?, ?, ?)').run(
        `inst-${i}`,
        'gw-b',
        JSON.stringify({ maker: 'm', model: 'x', serialNumber: String(i) }),
        JSON.stringify([
          { name: 'force', unit: 'kN' },
          { name: 'extension', unit: 'mm' },
        ]),
        now,
      );
    return s;
  };
  const server = await startServer();
  await server.users.create({ username: 'bench', role: 'system' }, { username: 'tech', role: 'technician', password: 'bench-tech-password' });
  const { token } = await server.users.createApiToken({ username: 'bench', role: 'system' }, 'tech', 'bench', 3_600_000);

  // the same server (same app, routers, middleware and policy check), whose users module takes every
  // request for an admin's without looking anything up
  const plain = await startServer();
  plain.users.authenticate = async () => ({
    userId: 1,
    username: 'admin',
    role: 'admin',
    organization: null,
    via: 'bearer',
    mustChange: false,
    csrf: '',
    grantOrganizations: null,
  });
  const baseline = { address: () => ({ port: plain.httpPort }), close: (done) => void plain.stop().then(done) };

  // authentication alone, in the same process: a valid token (hashed, then its session and user read from the store)
  // and an unknown one (hashed, nothing found); microseconds a call, one after another (each awaited), over 20,000
  // calls after 2,000 to warm up
  const perCall = async (fn) => {
    for (let i = 0; i < 2000; i++) await fn();
    const start = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++) await fn();
    return Number(process.hrtime.bigint() - start) / 20_000 / 1000;
  };
  const authenticateUs = {
    valid: await perCall(() => server.users.authenticate(token, 'bearer')),
    unknown: await perCall(() => server.users.authenticate('lta_not-a-token', 'bearer')),
  };
  // the minimal Express app: the same security headers and body parser, the same list as the server answers it
  const list = await (
    await fetch(`http://127.0.0.1:${server.httpPort}${params.route.slice(4)}`, { headers: { authorization: `Bearer ${token}` } })
  ).json();
  const minimalApp = express();
  minimalApp.disable('x-powered-by');
  minimalApp.use(helmet({ contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } }));
  minimalApp.use(express.json({ limit: '100kb' }));
  minimalApp.get(params.route.slice(4), (_req, res) => {
    res.json(list);
  });
  const minimal = await new Promise((resolve) => {
    const listening = minimalApp.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const targets = {
    authenticateUs,
    minimal: { url: `http://127.0.0.1:${minimal.address().port}${params.route.slice(4)}`, headers: { authorization: 'Bearer anything' } },
    baseline: { url: `http://127.0.0.1:${baseline.address().port}${params.route.slice(4)}`, headers: { authorization: 'Bearer anything' } },
    auth: { url: `http://127.0.0.1:${server.httpPort}${params.route.slice(4)}`, headers: { authorization: `Bearer ${token}` } },
  };
  process.stdout.write(`${JSON.stringify(targets)}\n`);
  // the servers' CPU time on request: what a request costs, whatever else the machine is doing
  createInterface({ input: process.stdin })
    .on('line', () => process.stdout.write(`${JSON.stringify(process.cpuUsage())}\n`))
    // the bench is gone (finished or failed): stop with it
    .on('close', () => void stop());
  const stop = async () => {
    await new Promise((resolve) => baseline.close(resolve));
    await new Promise((resolve) => minimal.close(resolve));
    await server.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
} else {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = [];
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (line) => (waiting.length > 0 ? waiting.shift()(line) : answers.push(line)));
  const nextLine = () => new Promise((resolve) => (answers.length > 0 ? resolve(answers.shift()) : waiting.push(resolve)));
  const first = await new Promise((resolve, reject) => {
    void nextLine().then(resolve);
    child.once('exit', (code) => reject(new Error(`the servers exited (${code})`)));
  });
  /** the servers' CPU time so far, in ms (user + system) */
  const serverCpuMs = async () => {
    child.stdin.write('cpu\n');
    const { user, system } = JSON.parse(await nextLine());
    return (user + system) / 1000;
  };
  const { authenticateUs, ...targets } = JSON.parse(first);
  // both answer the same (the instruments route: each of them)
  const answers200 = [];
  for (const [name, t] of Object.entries(targets)) {
    const res = await fetch(t.url, { headers: t.headers });
    const body = await res.json();
    const wrong = res.status !== 200 || (params.route === 'GET /api/instruments' && body.length !== params.instruments);
    if (wrong) throw new Error(`${name}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    answers200.push(JSON.stringify(body));
  }
  if (answers200.some((a) => a !== answers200[0]))
    throw new Error(`the servers answer differently: ${answers200.map((a) => a.slice(0, 200)).join(' / ')}`);
  const anonymous = await fetch(targets.auth.url);
  if (anonymous.status !== 401) throw new Error(`the auth target answers ${anonymous.status} without a token`);

  const rounds = { minimal: [], baseline: [], auth: [] };
  // warm-up (not counted): both servers' code paths compiled before the first timed round
  for (const t of Object.values(targets)) await autocannon({ url: t.url, headers: t.headers, connections: params.connections, duration: 2 });
  for (let r = 0; r < params.rounds; r++) {
    // the order alternates, so that neither variant always runs first
    for (const name of r % 2 === 0 ? ['minimal', 'baseline', 'auth'] : ['auth', 'baseline', 'minimal']) {
      const t = targets[name];
      const cpuBefore = await serverCpuMs();
      const result = await autocannon({
        url: t.url,
        headers: t.headers,
        connections: params.connections,
        duration: params.seconds,
        overallRate: params.rate,
      });
      const cpuMs = (await serverCpuMs()) - cpuBefore;
      const figures = {
        requestsPerSecond: round1(result.requests.average),
        meanMs: round1(result.latency.average),
        p50Ms: result.latency.p50,
        p90Ms: result.latency.p90,
        p99Ms: result.latency.p99,
        maxMs: result.latency.max,
        non2xx: result.non2xx,
        errors: result.errors,
        // microseconds of server CPU per request: robust to a busy machine, unlike latency
        serverCpuUsPerRequest: round1((cpuMs * 1000) / Math.max(1, result.requests.total)),
      };
      rounds[name].push(figures);
      log(
        `round ${r + 1} ${name.padEnd(8)} ${figures.requestsPerSecond} req/s  mean ${figures.meanMs} ms  p50 ${figures.p50Ms}  p99 ${figures.p99Ms}  server CPU ${figures.serverCpuUsPerRequest} µs/request  non-2xx ${figures.non2xx}`,
      );
    }
  }
  child.kill('SIGTERM');

  const mean = (list, key) => round1(list.reduce((a, f) => a + f[key], 0) / list.length);
  const summary = (name) => ({
    requestsPerSecond: mean(rounds[name], 'requestsPerSecond'),
    meanMs: mean(rounds[name], 'meanMs'),
    p50Ms: mean(rounds[name], 'p50Ms'),
    p99Ms: mean(rounds[name], 'p99Ms'),
    serverCpuUsPerRequest: mean(rounds[name], 'serverCpuUsPerRequest'),
    non2xx: rounds[name].reduce((a, f) => a + f.non2xx, 0),
    errors: rounds[name].reduce((a, f) => a + f.errors, 0),
  });
  const results = { minimal: summary('minimal'), baseline: summary('baseline'), auth: summary('auth') };
  const pct = (a, b) => (b === 0 ? null : round1(((a - b) / b) * 100));
  results.overheadPercent = {
    mean: pct(results.auth.meanMs, results.baseline.meanMs),
    p50: pct(results.auth.p50Ms, results.baseline.p50Ms),
    p99: pct(results.auth.p99Ms, results.baseline.p99Ms),
  };
  // latencies of a millisecond or two are coarse (autocannon's resolution is 1 ms): the absolute difference says more there
  results.overheadCpu = {
    usPerRequest: round1(results.auth.serverCpuUsPerRequest - results.baseline.serverCpuUsPerRequest),
    percent: pct(results.auth.serverCpuUsPerRequest, results.baseline.serverCpuUsPerRequest),
    // one core's worth of requests/s at the auth route's CPU cost, the load generator elsewhere
    oneCoreCeiling: results.auth.serverCpuUsPerRequest > 0 ? Math.round(1e6 / results.auth.serverCpuUsPerRequest) : null,
  };
  // the server's CPU per request against the minimal Express app's, in this run
  const ratio = (a) => (results.minimal.serverCpuUsPerRequest > 0 ? Math.round((a / results.minimal.serverCpuUsPerRequest) * 100) / 100 : null);
  results.vsMinimal = {
    ratio: ratio(results.auth.serverCpuUsPerRequest),
    baselineRatio: ratio(results.baseline.serverCpuUsPerRequest),
    floor: FLOOR_RATIO,
    withinFloor: ratio(results.auth.serverCpuUsPerRequest) !== null && ratio(results.auth.serverCpuUsPerRequest) <= FLOOR_RATIO,
  };
  const round2 = (x) => Math.round(x * 100) / 100;
  results.authenticateUsPerCall = { valid: round2(authenticateUs.valid), unknown: round2(authenticateUs.unknown) };
  results.overheadMs = { mean: round1(results.auth.meanMs - results.baseline.meanMs), p99: round1(results.auth.p99Ms - results.baseline.p99Ms) };
  results.sustainedRate = results.auth.requestsPerSecond >= params.rate * 0.95 && results.baseline.requestsPerSecond >= params.rate * 0.95;
  // the machine is shared: its load during the run says how much to trust the figures
  results.loadAverage1m = round1(os.loadavg()[0]);
  // another rate is stored beside the 2,000 requests/s figures, not over them
  const routeName = params.route === 'GET /api/instruments' ? '' : `-${params.route.slice(9).replace(/[^a-z0-9]+/g, '-')}`;
  const better = {
    // differences of two noisy figures, near zero and of either sign: not compared as a ratio
    'overheadPercent.*': 'none',
    'overheadMs.*': 'none',
    'overheadCpu.usPerRequest': 'none',
    'overheadCpu.percent': 'none',
    'authenticateUsPerCall.*': 'lower',
    'vsMinimal.ratio': 'lower',
    'vsMinimal.baselineRatio': 'lower',
    'vsMinimal.floor': 'none',
    // the load generator holds the rate: the minimal app's figures say what the machine did, not the server
    'minimal.*': 'none',
  };
  const file = writeResult(`${NAME}${routeName}${params.rate === 2000 ? '' : `-${params.rate}`}`, { params, results, better, detail: rounds });
  log(
    `overhead: mean ${results.overheadPercent.mean}% (${results.overheadMs.mean} ms), p99 ${results.overheadPercent.p99}% (${results.overheadMs.p99} ms), server CPU ${results.overheadCpu.percent}% (${results.overheadCpu.usPerRequest} µs/request; one core serves ${results.overheadCpu.oneCoreCeiling} req/s); authenticate() ${results.authenticateUsPerCall.valid} µs a valid token, ${results.authenticateUsPerCall.unknown} µs an unknown one; wrote ${file}`,
  );
  log(
    `vs a minimal Express app in the same run: ${results.auth.serverCpuUsPerRequest} µs / ${results.minimal.serverCpuUsPerRequest} µs server CPU per request = ${results.vsMinimal.ratio} x (without auth ${results.vsMinimal.baselineRatio} x; floor ${FLOOR_RATIO} x: ${results.vsMinimal.withinFloor ? 'met' : 'NOT met'})`,
  );
  if (Object.values(rounds).some((list) => list.some((f) => f.errors + f.non2xx > 0))) process.exit(1);
}
