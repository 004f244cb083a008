// The compose lab end to end, run as docker-compose.yml runs it but without a Docker engine: the secrets made by
// deploy/compose/make-secrets.sh (into a temporary folder), the simulator, the server and the gateway started with
// the compose file's own commands, entrypoint scripts and environment, from deploy/compose/'s own configs, with the
// hosts, ports and paths rewritten to loopback, free ports and temporary folders. On the first start the gateway
// makes its key and enrolls with the enroll_token secret, and its signed batches are stored (none refused); the
// admin signs in with the admin_password secret; the server copies the batches to InfluxDB with the influxdb_token
// secret. A restart of the server and the gateway enrolls nothing again and goes on. No secret is ever printed.
//
// InfluxDB: the compose file provisions InfluxDB 2.7 and the server writes to it through the v2 API. Only InfluxDB
// 1.6 is installed here (no /api/v2), so a stand-in in front of a real influxd takes the v2 writes: it checks the
// org, the bucket and the token against what the compose file provisions and the secret holds, and hands the lines
// to influxd's /write for the database named as the bucket (what InfluxDB 1.8+ does with /api/v2/write, and what
// 2.7's virtual DBRP mapping serves to InfluxQL reads). Reads (InfluxQL /query with the token) pass through to it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { Influxd } from '@labtrace/protocols/test/influxd';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, signIn, waitFor } from '../helpers/lab-process.js';

const run = promisify(execFile);
const COMPOSE_DIR = path.join(REPO_ROOT, 'deploy', 'compose');
const SECRETS_IN_COMPOSE = './deploy/compose/secrets/';

interface Service {
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}
const compose = parse(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;
const service = (name: string): Service => {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-compose-lab-'));
const secretsDir = path.join(tmp, 'secrets');
const secret = (name: string): string => {
  const file = compose.secrets[name]?.file;
  if (file === undefined || !file.startsWith(SECRETS_IN_COMPOSE)) throw new Error(`secret ${name}: not a file made by make-secrets.sh`);
  return path.join(secretsDir, file.slice(SECRETS_IN_COMPOSE.length));
};
const secretValue = (name: string): string => readFileSync(secret(name), 'utf8').trim();

/** Where each service's named volume mounted at /data is, here. */
const dataDirOf = (name: string): string => {
  const mount = (service(name).volumes ?? []).find((v) => v.endsWith(':/data'));
  if (mount === undefined) throw new Error(`service ${name} has no volume at /data`);
  const dir = path.join(tmp, mount.split(':')[0] ?? name);
  mkdirSync(dir, { recursive: true });
  return dir;
};

interface Loopback {
  http: number;
  mqtt: number;
  influx: string;
  sim: Map<number, number>;
  control: number;
}

/**
 * A value of the compose setup as it is here: /run/secrets/<name> is the secret's file, /app/ the repository,
 * /data the service's volume, and the services' host names and ports are loopback ones.
 */
function localize(text: string, ports: Loopback, dataDir?: string): string {
  let out = text
    .replace(/\/run\/secrets\/([a-z_]+)/g, (_, name: string) => secret(name))
    .replace(/^\/app\//, REPO_ROOT)
    .replaceAll('http://server:8080', `http://127.0.0.1:${ports.http}`)
    .replaceAll('mqtt://server:1883', `mqtt://127.0.0.1:${ports.mqtt}`)
    .replaceAll('http://influxdb:8086', ports.influx);
  if (dataDir !== undefined) out = out.replace(/^\/data(?=\/|$)/, dataDir);
  return out;
}

/** Every string in a parsed config, localized. */
function localizeAll(value: unknown, ports: Loopback, dataDir?: string): unknown {
  if (typeof value === 'string') return localize(value, ports, dataDir);
  if (Array.isArray(value)) return value.map((v) => localizeAll(v, ports, dataDir));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, localizeAll(v, ports, dataDir)]));
  return value;
}

/** deploy/compose/<file> with loopback hosts and ports, written to the temporary folder; returns its path. */
function rewriteConfig(
  file: string,
  ports: Loopback,
  dataDir: string | undefined,
  edit: (config: Record<string, unknown>) => void,
  as = file,
): string {
  const config = localizeAll(parse(readFileSync(path.join(COMPOSE_DIR, file), 'utf8')), ports, dataDir) as Record<string, unknown>;
  edit(config);
  const out = path.join(tmp, 'config', as);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, stringify(config));
  return out;
}

/** The compose file's command line of a service, localized, with its config file replaced by the rewritten one. */
function commandOf(name: string, ports: Loopback, config: string): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const s = service(name);
  const command = (s.command ?? []).map((a) => (a.startsWith('/app/deploy/compose/') ? config : localize(a, ports)));
  // the image's ENTRYPOINT is `node bin/labtrace.js`; a service's own entrypoint replaces it
  const entrypoint = s.entrypoint?.map((a) => localize(a, ports)) ?? [process.execPath, path.join(REPO_ROOT, 'bin', 'labtrace.js')];
  const env: NodeJS.ProcessEnv = {};
  // nothing of this process's own labtrace settings leaks in: only what the compose file gives
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('LABTRACE_') && !key.startsWith('INFLUX')) env[key] = value;
  for (const [key, value] of Object.entries(s.environment ?? {})) env[key] = localize(value, ports);
  env['LOG_LEVEL'] = 'info';
  const [file, ...rest] = entrypoint;
  if (file === undefined) throw new Error(`service ${name}: no entrypoint`);
  return { file, args: [...rest, ...command], env };
}

interface Part {
  proc: ChildProcess;
  output(): string;
}
const parts: Part[] = [];
const outputs: (() => string)[] = [];

function start(name: string, ports: Loopback, config: string): Part {
  const { file, args, env } = commandOf(name, ports, config);
  const proc = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const part = { proc, output: () => out };
  parts.push(part);
  outputs.push(part.output);
  return part;
}

async function stop(part: Part): Promise<void> {
  const { proc } = part;
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  process.kill(proc.pid, 'SIGTERM');
  await exited;
}

/** The v2 stand-in: /api/v2/write checked and handed to influxd's /write; /query and /ping passed through. */
class InfluxV2StandIn {
  readonly writes: { status: number; lines: number }[] = [];
  readonly refused: string[] = [];
  private server: Server | undefined;
  url = '';

  constructor(
    private readonly influxd: Influxd,
    private readonly expected: { org: string; bucket: string; token: string },
  ) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ({ status, body, headers }) => res.writeHead(status, headers).end(body),
        (err: unknown) => res.writeHead(502).end(String(err)),
      );
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private refuse(why: string): { status: number; body: string; headers: Record<string, string> } {
    this.refused.push(why);
    return { status: 401, body: JSON.stringify({ code: 'unauthorized', message: why }), headers: { 'content-type': 'application/json' } };
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: Buffer | string; headers: Record<string, string> }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://stand-in');
    if (url.pathname === '/ping' || url.pathname === '/health') return { status: 204, body: '', headers: {} };
    if (req.headers.authorization !== `Token ${this.expected.token}`) return this.refuse(`${url.pathname}: not the operator token`);
    let target: URL;
    if (url.pathname === '/api/v2/write' && req.method === 'POST') {
      if (url.searchParams.get('org') !== this.expected.org) return this.refuse(`org ${url.searchParams.get('org')}`);
      const bucket = url.searchParams.get('bucket');
      if (bucket !== this.expected.bucket) return this.refuse(`bucket ${bucket}`);
      target = new URL('/write', this.influxd.url);
      target.search = new URLSearchParams({ db: bucket, precision: url.searchParams.get('precision') ?? 'ns' }).toString();
    } else if (url.pathname === '/query') {
      target = new URL(`/query${url.search}`, this.influxd.url);
    } else {
      return { status: 404, body: '', headers: {} };
    }
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'content-encoding']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const answer = await fetch(target, { method: req.method ?? 'GET', headers, ...(body.length > 0 ? { body } : {}) });
    const text = Buffer.from(await answer.arrayBuffer());
    if (url.pathname === '/api/v2/write') this.writes.push({ status: answer.status, lines: body.length });
    const type = answer.headers.get('content-type');
    return { status: answer.status, body: text, headers: type === null ? {} : { 'content-type': type } };
  }
}

const influxEnv = service('influxdb').environment ?? {};
const ORG = influxEnv['DOCKER_INFLUXDB_INIT_ORG'] ?? '';
const BUCKET = influxEnv['DOCKER_INFLUXDB_INIT_BUCKET'] ?? '';

let influxd: Influxd;
let standIn: InfluxV2StandIn;
let ports: Loopback;
let configs: { sim: string; server: string; gateway: string };
let server: Part;
let gateway: Part;
let base: string;

async function get<T>(token: string, route: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

interface SecurityEvent {
  gateway: string;
  kind: string;
  severity: string;
}
interface HistoryPoint {
  ts: number;
  value: unknown;
}

async function healthy(): Promise<boolean> {
  const res = await fetch(`${base}/api/health`).catch(() => undefined);
  return res?.status === 200;
}

async function startServer(): Promise<void> {
  server = start('server', ports, configs.server);
  await waitFor(
    'the server to be healthy',
    async () => {
      if (server.proc.exitCode !== null) throw new Error(`the server exited:\n${server.output()}`);
      return (await healthy()) ? true : undefined;
    },
    120_000,
  );
}

/** Starts the server and the gateway the way compose does: the server first, the gateway once the server is healthy. */
async function startServerAndGateway(): Promise<void> {
  await startServer();
  gateway = start('gateway', ports, configs.gateway);
}

/** The number of temperature samples of climate-1 the server serves now. */
async function temperatures(token: string): Promise<number> {
  const { status, body } = await get<HistoryPoint[]>(token, '/api/instruments/climate-1/history?channel=temperature&limit=1000');
  return status === 200 ? body.length : 0;
}

beforeAll(async () => {
  // the secrets, made by the script the README tells a newcomer to run
  await run(path.join(COMPOSE_DIR, 'make-secrets.sh'), ['--dir', secretsDir]);

  influxd = await Influxd.create();
  await influxd.start();
  await influxd.createDatabase(BUCKET); // what DOCKER_INFLUXDB_INIT_BUCKET makes
  standIn = new InfluxV2StandIn(influxd, { org: ORG, bucket: BUCKET, token: secretValue('influxdb_token') });
  await standIn.start();

  ports = { http: await freePort(), mqtt: await freePort(), influx: standIn.url, sim: new Map(), control: await freePort() };
  const simConfig = parse(readFileSync(path.join(COMPOSE_DIR, 'sim.yaml'), 'utf8')) as { instruments: { port: number }[] };
  for (const i of simConfig.instruments) ports.sim.set(i.port, await freePort());

  configs = {
    sim: rewriteConfig('sim.yaml', ports, undefined, (c) => {
      c['host'] = '127.0.0.1';
      c['control'] = { ...(c['control'] as object), host: '127.0.0.1', port: ports.control };
      for (const i of c['instruments'] as { port: number }[]) i.port = ports.sim.get(i.port) ?? 0;
    }),
    server: rewriteConfig('server.yaml', ports, dataDirOf('server'), (c) => {
      c['http'] = { ...(c['http'] as object), host: '127.0.0.1', port: ports.http };
      c['mqtt'] = { ...(c['mqtt'] as object), host: '127.0.0.1', port: ports.mqtt };
    }),
    gateway: rewriteConfig('gateway.yaml', ports, dataDirOf('gateway'), (c) => {
      for (const i of c['instruments'] as { host: string; port: number }[]) {
        expect(i.host).toBe('device-sim');
        i.host = '127.0.0.1';
        i.port = ports.sim.get(i.port) ?? 0;
      }
    }),
  };
  base = `http://127.0.0.1:${ports.http}`;

  start('device-sim', ports, configs.sim);
  await startServerAndGateway();
}, 240_000);

afterAll(async () => {
  for (const part of parts.reverse()) await stop(part);
  await standIn?.stop();
  await influxd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('the compose lab on its first start', () => {
  test('the admin signs in with the admin_password secret', async () => {
    const token = await signIn(base, 'admin', secretValue('admin_password'));
    const me = await get<{ username: string; role: string; mustChangePassword?: boolean }>(token, '/api/auth/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: 'admin', role: 'admin' });
  });

  test('the gateway made its key and enrolled it with the enroll_token secret; its signed batches are stored, none refused', async () => {
    const token = await signIn(base, 'admin', secretValue('admin_password'));
    // served from InfluxDB, where the server copies what it stored
    await waitFor('samples of climate-1', async () => ((await temperatures(token)) >= 5 ? true : undefined), 120_000);

    // the key the gateway made in its volume is the one registered, and the broker password it was given is in its volume
    const gatewayData = dataDirOf('gateway');
    const publicKey = readFileSync(path.join(gatewayData, 'gateway.pub'), 'utf8').trim();
    const keys = await get<{ verifierKey: string; status: string }[]>(token, '/api/gateways/gw-1/keys');
    expect(keys.body).toEqual([expect.objectContaining({ verifierKey: publicKey, status: 'active' })]);
    expect(existsSync(path.join(gatewayData, 'mqtt.password'))).toBe(true);

    // a stored sample is in the transparency log, under the gateway's signed batch
    const proof = await fetch(`${base}/api/log/measurement/gw-1/0`, { headers: { authorization: `Bearer ${token}` } });
    expect(proof.status).toBe(200);

    // nothing refused: the only security event is the enrollment
    const events = await get<{ items: SecurityEvent[] }>(token, '/api/security-events?gateway=gw-1');
    expect(events.body.items.map((e) => e.kind)).toEqual(['enrolled']);
    const health = await (await fetch(`${base}/api/health`)).json();
    expect(health).toMatchObject({ status: 'ok', gateways: [expect.objectContaining({ id: 'gw-1', connected: true })] });
  }, 180_000);

  test('the server writes the batches to the InfluxDB the compose file provisions, with the influxdb_token secret', async () => {
    const rows = await waitFor(
      'samples in InfluxDB',
      async () => {
        const r = await influxd.query(BUCKET, 'SELECT count("value") FROM "measurement" WHERE "instrument" = \'climate-1\'');
        return r.length > 0 && Number(r[0]?.['count']) > 0 ? r : undefined;
      },
      120_000,
    );
    expect(Number(rows[0]?.['count'])).toBeGreaterThan(0);
    expect(standIn.refused).toEqual([]);
    expect(standIn.writes.length).toBeGreaterThan(0);
    expect(standIn.writes.every((w) => w.status === 204)).toBe(true);
    const health = (await (await fetch(`${base}/api/health`)).json()) as { measurements: { kind: string; status: string } };
    expect(health.measurements).toMatchObject({ kind: 'influxdb', status: 'ok' });
  }, 180_000);
});

describe('the compose lab restarted', () => {
  test('the server and the gateway start again without enrolling again, and the data goes on', async () => {
    const token = await signIn(base, 'admin', secretValue('admin_password'));
    const before = await temperatures(token);
    await stop(gateway);
    await stop(server);
    await startServerAndGateway();
    const again = await signIn(base, 'admin', secretValue('admin_password'));
    await waitFor('new samples after the restart', async () => ((await temperatures(again)) > before ? true : undefined), 120_000);
    await waitFor('the gateway to run', () => (/enrolled already/.test(gateway.output()) ? true : undefined), 60_000);
    expect(server.output()).toMatch(/registered for gateway gw-1 before \(used\)/);
    const keys = await get<unknown[]>(again, '/api/gateways/gw-1/keys');
    expect(keys.body).toHaveLength(1);
    // one enrollment, no alarm (the numbers the restart skipped are declared: an informational sequence-jump)
    const events = await get<{ items: SecurityEvent[] }>(again, '/api/security-events?gateway=gw-1');
    expect(events.body.items.filter((e) => e.kind === 'enrolled')).toHaveLength(1);
    expect(events.body.items.filter((e) => e.severity === 'alarm')).toEqual([]);
  }, 300_000);

  test('a gateway whose volume was lost is told that its token was used, and where to read on', async () => {
    const lost = rewriteConfig('gateway.yaml', ports, path.join(tmp, 'gateway-data-lost'), () => undefined, 'gateway-lost.yaml');
    const { file, args, env } = commandOf('gateway', ports, lost);
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const proc = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
      outputs.push(() => output);
      proc.once('exit', (code) => resolve({ code, output }));
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain('this enrollment token was already used');
    expect(result.output).toContain('deploy/compose/README.md');
    // nothing was registered for it
    const token = await signIn(base, 'admin', secretValue('admin_password'));
    expect((await get<unknown[]>(token, '/api/gateways/gw-1/keys')).body).toHaveLength(1);
  }, 120_000);

  test('no secret appears in the output of any part', () => {
    const secrets = ['admin_password', 'enroll_token', 'influxdb_token', 'influxdb_password'].map(secretValue);
    secrets.push(readFileSync(path.join(dataDirOf('gateway'), 'mqtt.password'), 'utf8').trim());
    expect(secrets.every((x) => x.length >= 20)).toBe(true);
    const all = outputs.map((o) => o()).join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const s of secrets) expect(all.includes(s)).toBe(false);
  });
});
