// `labtrace lab` (what `npm start` runs): the whole lab on embedded defaults. It writes the configs of
// the simulator, the gateway and the server under the data directory (with a fresh gateway password),
// runs each part as its own process, prints the URLs, starts again a part that dies (class Part), and stops
// them in order on SIGINT/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { LabtraceError } from '@labtrace/protocols';
import { AuditTrail, SYSTEM_ACTOR } from './audit/audit-trail.js';
import { Users, type Role } from './auth/users.js';
import { hashPassword, randomPassword } from './broker/passwords.js';
import { adminPasswordFrom } from './secret-env.js';
import { LabDatabase } from './store/database.js';
import { serverMigrations } from './migrations.js';

export const usage = `usage: labtrace lab
  Runs the simulator, gateway and server (with broker and dashboard) on embedded defaults.
  Environment: PORT (8080), MQTT_PORT (1883), LABTRACE_DATA_DIR (./data).`;

const PROFILES_DIR = fileURLToPath(new URL('../../../device-sim/profiles', import.meta.url));
const INSTRUMENTS = [
  { profile: 'climate-chamber.yaml', model: 'climate-chamber' },
  { profile: 'universal-testing-machine.yaml', model: 'universal-testing-machine' },
] as const;

/**
 * The demo lab's accreditation, recorded at the first start: a made-up body and number (so that no one takes
 * the demo's reports for accredited work), scoped to what the simulated instruments measure.
 */
const DEMO_ACCREDITATION = {
  id: 'demo-accreditation',
  body: 'DEMO (not an accreditation body)',
  number: 'DEMO-0001',
  standard: 'ISO/IEC 17025:2017',
  validFrom: '2026-01-01',
  validTo: '2030-12-31',
  scope: [
    {
      standard: 'ISO 6892-1:2019',
      measurand: 'force',
      unit: 'kN',
      min: 0,
      max: 100,
      description: 'metallic materials, tensile test at room temperature',
    },
    { standard: 'ISO 6892-1:2019', measurand: 'extension', unit: 'mm', min: 0, max: 50 },
    { standard: 'IEC 60068-2-1:2007', measurand: 'temperature', unit: '°C', min: -40, max: 23, description: 'environmental testing, cold' },
    {
      standard: 'IEC 60068-2-78:2012',
      measurand: 'temperature',
      unit: '°C',
      min: 23,
      max: 85,
      description: 'environmental testing, damp heat, steady state',
    },
    { standard: 'IEC 60068-2-78:2012', measurand: 'humidity', unit: '%RH', min: 10, max: 98 },
  ],
};

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const addr = probe.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new LabtraceError('E_CONFIG', `${name}: expected a port number 1-65535, got "${raw}"`);
  return port;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Prints a child's pino lines as short human lines; anything else passes through. */
function relay(child: ChildProcess, name: string): void {
  const print = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        const { level, time, msg, pid: _pid, hostname: _host, name: _name, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const fields = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        const clock = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 19);
        stream.write(
          `${clock} ${name.padEnd(7)} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${String(msg)}${fields ? `  ${fields}` : ''}\n`,
        );
      } catch {
        stream.write(`${name.padEnd(7)} ${line}\n`);
      }
    }
  };
  child.stdout?.on('data', print(process.stdout));
  child.stderr?.on('data', print(process.stderr));
}

/** Runs a one-shot labtrace command and fails with its output if it fails. */
function runOnce(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new LabtraceError('E_CONFIG', `labtrace ${args.join(' ')} failed:\n${output}`))));
  });
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number, name = 'server'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new LabtraceError('E_CONFIG', `the ${name} exited during start-up (see its message above)`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new LabtraceError('E_CONFIG', `the ${name} did not answer ${url} within ${timeoutMs / 1000} s`);
}

/**
 * The first start of the demo: one user per role (a client of the organization "demo-client", an auditor
 * granted 30 days), with one-time passwords returned to be shown once; `admin` gets LABTRACE_ADMIN_PASSWORD (or the content of LABTRACE_ADMIN_PASSWORD_FILE) if set.
 */
async function seedDemoUsers(dataDir: string): Promise<{ username: string; role: Role; password: string | undefined }[]> {
  const database = new LabDatabase(dataDir, serverMigrations);
  try {
    await database.migrate();
    const users = new Users(database, new AuditTrail(database));
    if ((await users.count()) > 0) return [];
    await users.createOrganization(SYSTEM_ACTOR, 'demo-client', 'Demo client', 'quality@demo-client.example');
    const adminPassword = adminPasswordFrom(process.env);
    const seeded: { username: string; role: Role; password: string | undefined }[] = [];
    for (const role of ['admin', 'technician', 'signatory', 'client', 'auditor'] as const) {
      const { password } = await users.create(SYSTEM_ACTOR, {
        username: role,
        role,
        ...(role === 'admin' && adminPassword !== undefined && adminPassword !== '' ? { password: adminPassword } : {}),
        ...(role === 'client' ? { organization: 'demo-client' } : {}),
        ...(role === 'auditor' ? { grantUntil: Date.now() + 30 * 86_400_000 } : {}),
      });
      seeded.push({ username: role, role, password });
    }
    return seeded;
  } finally {
    await database.close();
  }
}

type PartName = 'sim' | 'gateway' | 'server';

/** A part that exits unexpectedly is started again after RESTART_BACKOFF_MS, doubled for each recent restart. */
export const RESTART_BACKOFF_MS = { first: 1_000, max: 30_000 };
/** More restarts of one part than this within a minute and it is left stopped (the server's case stops the lab). */
export const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * One part of the lab as a child process, started again when it dies unexpectedly (a crash, an OOM kill, kill -9):
 * with a backoff, and with a bound on restarts per minute so that a part that cannot start does not spin.
 */
export class Part {
  private child: ChildProcess | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  /** when the recent restarts happened (the last minute's) */
  private restarts: number[] = [];

  constructor(
    readonly name: string,
    private readonly spawnChild: () => ChildProcess,
    private readonly say: (line: string) => void,
    private readonly onGiveUp: () => void,
  ) {}

  start(): ChildProcess {
    const child = this.spawnChild();
    this.child = child;
    this.say(`${this.name} started (pid ${child.pid ?? '?'})`);
    child.once('exit', (code, signal) => this.exited(child, code, signal));
    return child;
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || child !== this.child) return;
    const now = Date.now();
    this.restarts = this.restarts.filter((at) => now - at < 60_000);
    if (this.restarts.length >= MAX_RESTARTS_PER_MINUTE) {
      this.say(`${this.name} exited (${signal ?? `code ${code}`}) after ${this.restarts.length} restarts within a minute; not restarting it`);
      this.onGiveUp();
      return;
    }
    const delay = Math.min(RESTART_BACKOFF_MS.max, RESTART_BACKOFF_MS.first * 2 ** this.restarts.length);
    this.restarts.push(now);
    this.say(`${this.name} exited unexpectedly (${signal ?? `code ${code}`}); restarting it in ${delay / 1000} s`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopping) this.start();
    }, delay);
  }

  /** Stops the part (SIGTERM; SIGKILL after 20 s, so that Ctrl-C always ends the lab) and any restart pending. */
  stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.say(`${this.name} did not stop within 20 s; killing it`);
        child.kill('SIGKILL');
      }, 20_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  /** Kills the part at once (the lab process is exiting). */
  kill(): void {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.child?.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export async function main(argv: string[]): Promise<{ stop(): Promise<void>; done: Promise<number> }> {
  parseArgs({ args: argv, options: {}, strict: true });
  const host = '127.0.0.1';
  const httpPort = envPort('PORT', 8080);
  const mqttPort = envPort('MQTT_PORT', 1883);
  const dataDir = path.resolve(process.env['LABTRACE_DATA_DIR'] || 'data');
  if (!(await portFree(httpPort, host)))
    throw new LabtraceError('E_PORT_IN_USE', `HTTP port ${httpPort} is already in use; set PORT to another port`);
  if (!(await portFree(mqttPort, host)))
    throw new LabtraceError('E_PORT_IN_USE', `MQTT port ${mqttPort} is already in use; set MQTT_PORT to another port`);

  const confDir = path.join(dataDir, 'lab');
  mkdirSync(confDir, { recursive: true, mode: 0o700 });
  const lab = 'demo-lab';
  const gatewayId = 'gw-1';
  const password = randomPassword();
  const passwordFile = path.join(confDir, 'gateway.password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });

  const simPorts = await Promise.all(INSTRUMENTS.map(() => freePort(host)));
  const controlPort = await freePort(host);
  const files = {
    sim: path.join(confDir, 'sim.yaml'),
    gateway: path.join(confDir, 'gateway.yaml'),
    server: path.join(confDir, 'server.yaml'),
  };
  const header = '# Written by `labtrace lab` at every start; edit a copy to run the parts yourself.\n';
  writeFileSync(
    files.sim,
    header +
      stringify({
        host,
        tickMs: 100,
        control: { host, port: controlPort },
        instruments: INSTRUMENTS.map((i, n) => ({ profile: path.join(PROFILES_DIR, i.profile), model: i.model, port: simPorts[n] })),
      }),
  );
  writeFileSync(
    files.gateway,
    header +
      stringify({
        gateway: { id: gatewayId, lab },
        dataDir: path.join(dataDir, 'gateway'),
        mqtt: { url: `mqtt://${host}:${mqttPort}`, username: gatewayId, passwordFile },
        batch: { maxSamples: 500, maxDelayMs: 100 },
        instruments: INSTRUMENTS.map((i, n) => ({ profile: path.join(PROFILES_DIR, i.profile), host, port: simPorts[n] })),
      }),
    { mode: 0o600 },
  );
  // The gateway's signing key: made once (by the gateway's own command), then registered with the server.
  const bin = process.argv[1] ?? 'labtrace';
  const gatewayKey = path.join(dataDir, 'gateway', 'gateway.key');
  if (!existsSync(gatewayKey)) await runOnce(bin, ['gateway', 'init', '--config', files.gateway]);
  const gatewayPublicKey = readFileSync(path.join(dataDir, 'gateway', 'gateway.pub'), 'utf8').trim();
  writeFileSync(
    files.server,
    header +
      stringify({
        lab,
        laboratory: { name: 'labtrace demo laboratory', address: '1 Example Street, 00000 Demo City' },
        dataDir: path.join(dataDir, 'server'),
        http: { host, port: httpPort },
        mqtt: { host, port: mqttPort },
        broker: { users: [{ username: gatewayId, passwordHash: await hashPassword(password), role: 'gateway', gateway: gatewayId }] },
        gateways: [{ id: gatewayId, key: gatewayPublicKey }],
        accreditation: { warnDays: 90, accreditations: [DEMO_ACCREDITATION] },
        demo: { enabled: true },
      }),
    { mode: 0o600 },
  );

  const seeded = await seedDemoUsers(path.join(dataDir, 'server'));
  const childEnv = { ...process.env, PORT: '', MQTT_PORT: '', LABTRACE_DATA_DIR: '', LABTRACE_PARENT_PID: String(process.pid) };
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  const parts = new Map<PartName, Part>();
  const say = (line: string): boolean => process.stderr.write(`lab: ${line}\n`);
  const part = (name: PartName): Part => {
    const p = new Part(
      name,
      () => {
        // Own process group: a Ctrl-C reaches only this process, which then stops the parts in order.
        const child = spawn(process.execPath, [bin, name, '--config', files[name]], {
          env: childEnv,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
        relay(child, name);
        return child;
      },
      say,
      // nothing works without the server: when it keeps dying, the lab stops
      () => {
        if (name === 'server') void stop(1);
      },
    );
    parts.set(name, p);
    return p;
  };
  const killAll = (): void => {
    for (const p of parts.values()) p.kill();
  };
  process.once('exit', killAll);

  const server = part('server').start();
  try {
    await waitForHealth(`http://${host}:${httpPort}/api/health`, server, 60_000);
  } catch (err) {
    killAll();
    throw err;
  }
  const sim = part('sim').start();
  // The gateway starts once the instruments answer, so that the first samples are not "not connected".
  try {
    await waitForHealth(`http://${host}:${controlPort}/instruments`, sim, 20_000, 'simulator');
  } catch (err) {
    say(`the simulator is not answering (${(err as Error).message}); starting the gateway anyway`);
  }
  part('gateway').start();

  let stopping = false;
  // The gateway goes first (it flushes and waits for acknowledgements), the server last.
  const stop = async (code = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const name of ['gateway', 'sim', 'server'] as const) await parts.get(name)?.stop();
    process.off('exit', killAll);
    resolveDone(code);
  };

  process.stdout.write(
    [
      '',
      'labtrace is running',
      `  dashboard      http://${host}:${httpPort}/`,
      `  health         http://${host}:${httpPort}/api/health`,
      `  MQTT           mqtt://${host}:${mqttPort}  (WebSocket: ws://${host}:${httpPort}/mqtt; no anonymous access)`,
      `  simulator API  http://${host}:${controlPort}/instruments`,
      `  data           ${dataDir}`,
      ...(seeded.length === 0
        ? ['  sign in        with the users made at the first start (`labtrace server user list --config <server.yaml>`)']
        : [
            '  sign in        one user per role, created now; the one-time passwords are shown only this once:',
            ...seeded.map((u) => `                 ${u.username.padEnd(11)} ${u.password ?? '(LABTRACE_ADMIN_PASSWORD)'}`),
          ]),
      '  Ctrl-C stops everything.',
      '',
    ].join('\n') + '\n',
  );
  return { stop, done };
}
