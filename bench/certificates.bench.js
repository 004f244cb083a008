// Certificates: how many a signatory can issue a second, and how many verification requests the public routes
// answer a second.
//   issue    request + approve + issue of a certificate of a real completed run (its records sent by a signing
//            gateway over MQTT), each one: content, PDF (pdfkit, with the QR code), DCC XML, canonical JSON,
//            Ed25519 signature, the certificate-event log entry and the rows, in the server's own process,
//            one after the other (as a signatory works). Target: at least 20 a second.
//   verify   autocannon against GET /verify/:id (the HTML page), GET /api/public/certificates/:id (JSON) and
//            POST /verify/:id (a PDF uploaded and compared byte for byte), 20 connections, the server in a
//            child process so that the load generator does not share its event loop. Target: at least 2,000 a second.
//            GET /api/public/keys (no store read) is measured the same way as the baseline: the ceiling of the HTTP
//            stack on this machine at that moment.
// Environment: BENCH_CERT_ISSUE_SECONDS (5), BENCH_CERT_VERIFY_SECONDS (8), BENCH_CERT_CONNECTIONS (20).
// Writes bench/results/certificates.json.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import mqtt from 'mqtt';
import pino from 'pino';
import { formatSignerKey, formatVerifierKey, parseSignerKey, publicKeyFromSeed, signBatch, topicFor } from '../protocols/dist/src/index.js';
import { hashPassword, LabtraceServer, serverConfigSchema } from '../server/dist/src/index.js';
import { useNodeCrypto } from '../protocols/dist/src/node/index.js';
import { percentile, round1, writeResult } from './lib/result.js';
import { envReader } from './lib/env.js';

const NAME = 'certificates';
const { envNumber, envInt } = envReader(NAME);
const params = {
  issueSeconds: envNumber('BENCH_CERT_ISSUE_SECONDS', 5, 1, 600),
  verifySeconds: envNumber('BENCH_CERT_VERIFY_SECONDS', 8, 1, 600),
  connections: envInt('BENCH_CERT_CONNECTIONS', 20, 1, 1000),
  samplesPerRun: 2000,
  targets: { issuePerSecond: 20, verifyPerSecond: 2000 },
};
const log = (msg) => console.log(`${new Date().toISOString().slice(11, 23)} ${NAME}: ${msg}`);
const DAY = 86_400_000;

async function serve() {
  useNodeCrypto();
  const lab = 'bench';
  const gateway = 'gw-bench';
  const seed = new Uint8Array(32).map((_, i) => (i * 13 + 7) % 256);
  const key = parseSignerKey(formatSignerKey(gateway, seed));
  const password = 'bench-gateway-password';
  const config = serverConfigSchema.parse({
    lab,
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'labtrace-bench-certs-')),
    // the per-address limit is not what is measured here (the load comes from one address)
    http: { host: '127.0.0.1', port: 0, rateLimit: false },
    mqtt: { host: '127.0.0.1', port: 0 },
    broker: { users: [{ username: gateway, passwordHash: await hashPassword(password), role: 'gateway', gateway }] },
    gateways: [{ id: gateway, key: formatVerifierKey(gateway, publicKeyFromSeed(seed)) }],
    laboratory: { name: 'labtrace bench laboratory', address: '1 Bench Street, Benchtown' },
  });
  const server = new LabtraceServer(config, pino({ level: 'silent' }), { adminPassword: 'bench-admin-password', announce: () => undefined });
  await server.start();
  const system = { username: 'bench', role: 'system' };
  await server.users.createOrganization(system, 'org-bench', 'Bench client', 'quality@bench.example');
  await server.users.create(system, { username: 'tech', role: 'technician', password: 'bench-tech-password' });
  await server.users.create(system, { username: 'sig', role: 'signatory', password: 'bench-signatory-password' });
  const tech = { username: 'tech', role: 'technician', organization: null };
  const sig = { username: 'sig', role: 'signatory', organization: null };

  // a gateway announces the testing machine and sends the run's records, signed, over MQTT
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: gateway,
    username: gateway,
    password,
    reconnectPeriod: 0,
  });
  const acked = new Promise((resolve) => client.on('message', resolve));
  await client.subscribeAsync(topicFor(lab, gateway, 'ACK'), { qos: 1 });
  await client.publishAsync(
    topicFor(lab, gateway, 'BIRTH'),
    JSON.stringify({
      v: 1,
      gateway,
      session: 1,
      version: 'bench',
      instruments: [{ id: 'utm-1', identity: { maker: 'Bench', model: 'UTM', serialNumber: '1' }, channels: [{ name: 'force', unit: 'kN' }] }],
    }),
    { qos: 1 },
  );
  for (let i = 0; i < 200 && server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'utm-1'").get() === undefined; i++)
    await new Promise((r) => setTimeout(r, 10));
  const now = Date.now();
  await server.calibration.record(system, 'utm-1', {
    calibratedAt: now - 10 * DAY,
    laboratory: 'Reference Lab',
    certificate: 'CAL-1',
    results: [{ point: '50 kN', reference: 50, indication: 50.01, unit: 'kN' }],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    nextDueAt: now + 300 * DAY,
  });
  await server.labRecords.createSample(system, {
    id: 'B-1',
    organization: 'org-bench',
    description: 'steel bar',
    condition: 'intact',
    receivedAt: now - DAY,
  });
  await server.labRecords.createMethod(system, {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
      instrumentTypes: [],
      limits: [],
      decisionRule: { kind: 'simple-acceptance' },
      results: [
        { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05, limits: { min: 40 } },
        { name: 'Fmean', title: 'mean force', measurand: 'force', statistic: 'mean', resolution: 0.01 },
      ],
    },
  });
  const run = await server.runs.create(tech, { sample: 'B-1', method: 'tensile', instruments: ['utm-1'] });
  await server.runs.start(tech, run.id);
  const samples = Array.from({ length: params.samplesPerRun }, (_, i) => ({
    seq: i,
    instrument: 'utm-1',
    channel: 'force',
    ts: now + i,
    value: 40 + 5 * Math.sin(i / 50),
    unit: 'kN',
    quality: 'good',
  }));
  await client.publishAsync(
    topicFor(lab, gateway, 'DATA'),
    JSON.stringify({ v: 1, gateway, batch: 0, samples, signed: signBatch(key, gateway, 0, samples, null) }),
    {
      qos: 1,
    },
  );
  await acked;
  await client.endAsync(true);
  await server.runs.stop(tech, run.id);
  if (!(await server.results.resultsOf(run.id))) throw new Error('the run has no results');

  // issue: one after the other for the measured time (after a warm-up of five)
  const issueOne = async () => server.certificates.issue(sig, (await server.certificates.request(tech, run.id)).id);
  for (let i = 0; i < 5; i++) await issueOne();
  const latencies = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let last;
  while (performance.now() - t0 < params.issueSeconds * 1000) {
    const s = performance.now();
    last = await issueOne();
    latencies.push(performance.now() - s);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const pdf = (await server.certificates.files(last.id)).pdf;
  const issue = {
    certificates: latencies.length,
    perSecond: round1(latencies.length / elapsed),
    latencyMs: { p50: round1(percentile(latencies, 50)), p99: round1(percentile(latencies, 99)), max: round1(latencies.at(-1)) },
    cpuPercent: round1(((cpu.user + cpu.system) / 1000 / (elapsed * 1000)) * 100),
    pdfBytes: pdf.length,
    logSize: server.log.size,
  };
  process.stdout.write(
    `${JSON.stringify({ base: `http://127.0.0.1:${server.httpPort}`, id: last.id, pdf: Buffer.from(pdf).toString('base64'), issue })}\n`,
  );
  process.once('SIGTERM', () => {
    void server.stop().then(() => process.exit(0));
  });
}

async function measure() {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    log(`issuing certificates for ${params.issueSeconds} s`);
    const first = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    });
    const { base, id, pdf, issue } = JSON.parse(first);
    log(`issue: ${issue.perSecond} certificates/s (p50 ${issue.latencyMs.p50} ms, p99 ${issue.latencyMs.p99} ms)`);
    const pdfBytes = Buffer.from(pdf, 'base64');
    const targets = {
      // the ceiling of the HTTP stack here and now: a small public JSON answer with no store read
      baseline: { url: `${base}/api/public/keys` },
      page: { url: `${base}/verify/${id}` },
      status: { url: `${base}/api/public/certificates/${id}` },
      upload: { url: `${base}/verify/${id}`, method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: pdfBytes },
    };
    // every target answers as it should before it is measured
    const page = await fetch(targets.page.url);
    if (page.status !== 200 || !(await page.text()).includes('Valid')) throw new Error(`the page answers ${page.status}`);
    const match = await (await fetch(targets.upload.url, { method: 'POST', headers: targets.upload.headers, body: pdfBytes })).json();
    if (match.match !== true) throw new Error(`the upload does not match: ${JSON.stringify(match)}`);
    const verify = {};
    for (const [name, t] of Object.entries(targets)) {
      await autocannon({ ...t, connections: params.connections, duration: 1 }); // warm-up
      log(`verify ${name} for ${params.verifySeconds} s`);
      const r = await autocannon({ ...t, connections: params.connections, duration: params.verifySeconds });
      verify[name] = {
        perSecond: round1(r.requests.average),
        latencyMs: { p50: r.latency.p50, p99: r.latency.p99 },
        non2xx: r.non2xx,
        errors: r.errors,
      };
      log(`verify ${name}: ${verify[name].perSecond} requests/s (p99 ${r.latency.p99} ms, non-2xx ${r.non2xx})`);
    }
    const results = {
      issuePerSecond: issue.perSecond,
      issueLatencyP99Ms: issue.latencyMs.p99,
      verifyPagePerSecond: verify.page.perSecond,
      verifyStatusPerSecond: verify.status.perSecond,
      verifyUploadPerSecond: verify.upload.perSecond,
      baselinePerSecond: verify.baseline.perSecond,
      issueTargetMet: issue.perSecond >= params.targets.issuePerSecond,
      verifyTargetMet: verify.page.perSecond >= params.targets.verifyPerSecond && verify.status.perSecond >= params.targets.verifyPerSecond,
    };
    const file = writeResult(NAME, { params, results, detail: { issue, verify, pdfBytes: pdfBytes.length } });
    log(`wrote ${file}`);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

if (process.argv[2] === '--serve') await serve();
else await measure();
