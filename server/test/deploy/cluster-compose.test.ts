// deploy/cluster/compose.yaml: compose accepts it as it is, it runs haproxy in front of two nodes with the shared
// engines beside them, its haproxy.cfg names the compose file's nodes, the nodes' server.yaml is a valid config, and
// it has no default secret: every password is a file that deploy/cluster/make-secrets.sh makes. haproxy accepts the
// shipped haproxy.cfg. The users that script makes log in to a real Mosquitto running the cluster's mosquitto.conf
// and ACL (and share the gateways' DATA through a shared subscription), and to a real Redis started with the
// compose file's command line; the Redis health check of the compose file passes with them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import { parse } from 'yaml';
import { Mosquitto, type MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { loadServerConfig } from '../../src/index.js';
import { collect, REPO_ROOT, waitFor } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const DIR = path.join(REPO_ROOT, 'deploy', 'cluster');
const COMPOSE_FILE = path.join(DIR, 'compose.yaml');
const NODES = ['server-1', 'server-2'];

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-cluster-compose-'));
// An empty env file, so that a `.env` an operator keeps next to the compose file cannot supply the variables.
const EMPTY_ENV_FILE = path.join(tmp, 'empty.env');
writeFileSync(EMPTY_ENV_FILE, '');
const secretsDir = path.join(tmp, 'secrets');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function compose(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('COMPOSE_')) env[key] = value;
  return new Promise((resolve, reject) => {
    execFile('docker-compose', ['--env-file', EMPTY_ENV_FILE, '-f', COMPOSE_FILE, ...args], { cwd: REPO_ROOT, env }, (err, stdout, stderr) => {
      if (err === null) resolve({ code: 0, stdout, stderr });
      else if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
      else reject(new Error(`docker-compose did not run: ${err.message}`));
    });
  });
}

interface Service {
  image?: string;
  build?: { context: string } | string;
  command?: string[];
  entrypoint?: string[] | string;
  ports?: ({ published?: number | string; target?: number | string } | string)[];
  volumes?: (string | { source?: string; target: string })[];
  secrets?: ({ source: string } | string)[];
  environment?: Record<string, string | null>;
  profiles?: string[];
  healthcheck?: { test?: string[] };
}
interface ComposeConfig {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

let config: ComposeConfig;
beforeAll(async () => {
  const out = await compose(['config']);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  config = parse(out.stdout) as ComposeConfig;
  await run(path.join(DIR, 'make-secrets.sh'), ['--dir', secretsDir]);
});

const service = (name: string): Service => {
  const s = config.services[name];
  if (s === undefined) throw new Error(`compose.yaml has no service ${name}`);
  return s;
};
const published = (s: Service): string[] => (s.ports ?? []).map((p) => (typeof p === 'string' ? (p.split(':').at(-2) ?? p) : String(p.published)));
const mounts = (s: Service): string[] => (s.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source ?? ''}:${v.target}`));
const secretValue = (file: string): string => readFileSync(path.join(secretsDir, file), 'utf8').trim();

describe('deploy/cluster/compose.yaml', () => {
  test('is valid as it is: no variable to set', async () => {
    const out = await compose(['config', '-q']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
  });

  test('runs haproxy, two nodes, PostgreSQL 15, Redis 7 and Mosquitto 2; only the proxy and the broker are published', () => {
    const always = Object.entries(config.services).filter(([, s]) => s.profiles === undefined);
    expect(always.map(([name]) => name).sort()).toEqual(['haproxy', 'mosquitto', 'postgres', 'redis', 'server-1', 'server-2']);
    expect(service('postgres').image).toBe('postgres:15');
    expect(service('redis').image).toBe('redis:7');
    expect(service('mosquitto').image).toBe('eclipse-mosquitto:2');
    expect(service('haproxy').image).toBe('haproxy:2.6');
    expect(published(service('haproxy'))).toEqual(['8080']);
    expect(published(service('mosquitto'))).toEqual(['1883']);
    for (const name of [...NODES, 'postgres', 'redis']) expect(published(service(name))).toEqual([]);
    // the runtime API tool is a one-off under a profile, sharing the proxy's socket folder
    expect(service('haproxy-admin').profiles).toEqual(['tools']);
    expect(mounts(service('haproxy-admin'))).toEqual(expect.arrayContaining([expect.stringMatching(/^haproxy-run:\/var\/lib\/haproxy(:|$)/)]));
    // each node its own volume (its SQLite store, until the PostgreSQL store)
    const data = NODES.map((n) => mounts(service(n)).find((m) => /:\/data(:|$)/.test(m)));
    expect(new Set(data).size).toBe(2);
  });

  test("haproxy runs deploy/cluster/haproxy.cfg, whose nodes are the compose file's nodes on the port they listen on", async () => {
    expect(mounts(service('haproxy'))).toContain(`${path.join(DIR, 'haproxy.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`);
    const servers = [...readFileSync(path.join(DIR, 'haproxy.cfg'), 'utf8').matchAll(/^\s*server\s+\S+\s+(\S+)/gm)].map((m) => m[1]);
    const serverYaml = path.join(DIR, 'server.yaml');
    for (const name of NODES) expect(service(name).command).toEqual(['server', '--config', '/app/deploy/cluster/server.yaml']);
    // the nodes' config is one the server accepts (the address it listens on is the one haproxy dials)
    const node = await loadServerConfig(serverYaml, {});
    expect(servers).toEqual(NODES.map((n) => `${n}:${node.http.port}`));
    expect(node.http.host).toBe('0.0.0.0');
    expect(node.http.trustProxy).toEqual(['uniquelocal']);
    // the stats socket is in the volume the tool mounts
    expect(readFileSync(path.join(DIR, 'haproxy.cfg'), 'utf8')).toMatch(/^\s*stats socket \/var\/lib\/haproxy\/admin\.sock mode 600 level admin$/m);
  });

  test('has no default secret: every secret is a file make-secrets.sh writes (git ignores them), none is in the environment', () => {
    const files = Object.values(config.secrets).map((s) => s.file);
    for (const f of files) expect(path.dirname(f)).toBe(path.join(DIR, 'secrets'));
    const made = readdirSync(secretsDir);
    for (const f of files) expect(made).toContain(path.basename(f));
    for (const f of made) expect(secretValue(f).length).toBeGreaterThanOrEqual(43);
    expect(readFileSync(path.join(DIR, 'secrets', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect(readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')).toMatch(/^deploy\/cluster\/secrets$/m);
    for (const [name, s] of Object.entries(config.services))
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD|TOKEN/.test(key)) {
          expect(`${name}: ${key}`).toMatch(/_FILE$/);
          expect(value).toMatch(/^\/run\/secrets\/[a-z_]+$/);
        }
      }
    // Redis: the default user is off, `labtrace` has the password of redis.password
    expect(secretValue('redis.acl').split('\n')).toEqual(['user default off', `user labtrace on >${secretValue('redis.password')} ~* &* +@all`]);
  });

  test('make-secrets.sh keeps existing secrets, and makes a new set only with --force', async () => {
    const before = secretValue('admin.password');
    await run(path.join(DIR, 'make-secrets.sh'), ['--dir', secretsDir]);
    expect(secretValue('admin.password')).toBe(before);
    await run(path.join(DIR, 'make-secrets.sh'), ['--force', '--dir', secretsDir]);
    expect(secretValue('admin.password')).not.toBe(before);
  });
});

const GATEWAY: MosquittoUser = { username: 'gw-1', password: 'gw-1-secret-for-tests' };

describe("the cluster's Mosquitto with the users make-secrets.sh made", () => {
  let broker: Mosquitto;
  let users: MosquittoUser[];

  beforeAll(async () => {
    users = secretValue('mosquitto.users')
      .split('\n')
      .map((line) => {
        const [username = '', password = ''] = line.split(':');
        return { username, password };
      });
    broker = await Mosquitto.create({
      users: [...users, GATEWAY],
      acl: readFileSync(path.join(DIR, 'mosquitto.acl'), 'utf8'),
      conf: readFileSync(path.join(DIR, 'mosquitto.conf'), 'utf8'),
    });
    await broker.start();
  }, 30_000);
  afterAll(async () => {
    await broker?.dispose();
  });

  test('mosquitto_passwd -U hashes the users file as the service does at its start: no password stays in clear', async () => {
    const file = path.join(tmp, 'labtrace.passwd');
    copyFileSync(path.join(secretsDir, 'mosquitto.users'), file);
    await run('mosquitto_passwd', ['-U', file]);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(':')[0])).toEqual(['labtrace-node-1', 'labtrace-node-2']);
    for (const line of lines) expect(line).toMatch(/^labtrace-node-[12]:\$[67]\$/);
    for (const u of users) expect(readFileSync(file, 'utf8').includes(u.password)).toBe(false);
  });

  test('each node logs in as its own user with its own password file; no one else does', async () => {
    expect(users.map((u) => u.username)).toEqual(['labtrace-node-1', 'labtrace-node-2']);
    for (const [i, u] of users.entries()) {
      expect(u.password).toBe(secretValue(`mqtt-node-${i + 1}.password`));
      const client = await mqtt.connectAsync(broker.url, { username: u.username, password: u.password, reconnectPeriod: 0 });
      await client.endAsync();
    }
    await expect(mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username or password/);
    const first = users[0] ?? { username: '', password: '' };
    await expect(mqtt.connectAsync(broker.url, { username: first.username, password: `${first.password}x`, reconnectPeriod: 0 })).rejects.toThrow(
      /Not authorized|Bad username or password/,
    );
  });

  test("the nodes share the gateways' DATA through a shared subscription: each batch reaches one node, both get some", async () => {
    const received = new Map<string, string[]>();
    const nodes = await Promise.all(
      users.map(async (u) => {
        const client = await mqtt.connectAsync(broker.url, {
          clientId: u.username,
          username: u.username,
          password: u.password,
          clean: false,
          reconnectPeriod: 0,
        });
        received.set(u.username, []);
        client.on('message', (_topic, payload) => received.get(u.username)?.push(payload.toString()));
        const granted = await client.subscribeAsync('$share/labtrace/labtrace/v1/+/+/DATA', { qos: 1 });
        expect(granted.map((g) => g.qos)).toEqual([1]);
        return client;
      }),
    );
    const gateway = await mqtt.connectAsync(broker.url, { username: GATEWAY.username, password: GATEWAY.password, reconnectPeriod: 0 });
    try {
      const sent = Array.from({ length: 10 }, (_, i) => `batch-${i}`);
      for (const m of sent) await gateway.publishAsync('labtrace/v1/lab-c/gw-1/DATA', m, { qos: 1 });
      const all = (): string[] => [...received.values()].flat();
      await waitFor('every batch at a node', () => (all().length >= sent.length ? true : undefined));
      expect(all().sort()).toEqual([...sent].sort());
      for (const got of received.values()) expect(got.length).toBeGreaterThan(0);
    } finally {
      await gateway.endAsync();
      await Promise.all(nodes.map((c) => c.endAsync()));
    }
  });
});

describe("the cluster's haproxy.cfg and Redis as shipped", () => {
  test('haproxy accepts haproxy.cfg unchanged', async () => {
    const out = await run('haproxy', ['-c', '-f', path.join(DIR, 'haproxy.cfg')]);
    expect(out.stdout).toMatch(/Configuration file is valid/);
  });

  test("Redis with the compose file's command and the redis_acl secret: the default user is refused, the health check passes", async () => {
    const port = await freePort();
    const secretFile = (name: string): string => {
      const file = config.secrets[name]?.file;
      if (file === undefined) throw new Error(`no secret ${name}`);
      return path.join(secretsDir, path.basename(file));
    };
    const command = (service('redis').command ?? []).map((a) => a.replace(/^\/run\/secrets\/([a-z_]+)$/, (_, name: string) => secretFile(name)));
    expect(command[0]).toBe('redis-server');
    const redis: ChildProcess = spawn(
      'redis-server',
      [...command.slice(1), '--port', String(port), '--bind', '127.0.0.1', '--dir', tmp, '--save', ''],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = collect(redis);
    try {
      const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> =>
        run('redis-cli', ['-p', String(port), ...args], { env: { ...process.env, ...env } }).then((r) => r.stdout.trim());
      await waitFor('redis to answer', async () => {
        if (redis.exitCode !== null) throw new Error(`redis-server exited:\n${output()}`);
        return (await cli(['ping']).catch(() => undefined)) ?? undefined;
      });
      // without a password: the default user is off
      expect(await cli(['ping'])).toMatch(/NOAUTH|WRONGPASS/);
      // the compose file's health check, with its secret path and port made local
      const check = service('redis').healthcheck?.test ?? [];
      expect(check[0]).toBe('CMD-SHELL');
      // `$$` is compose's escape of `$` (the container's shell gets one)
      const shell = (check[1] ?? '')
        .replaceAll('$$', '$')
        .replace(/\/run\/secrets\/([a-z_]+)/g, (_, name: string) => secretFile(name))
        .replace('redis-cli', `redis-cli -p ${port}`);
      await run('sh', ['-c', shell]);
      // and a wrong password fails it
      const wrong = shell.replace(/\$\(cat [^)]+\)/, 'not-the-password');
      await expect(run('sh', ['-c', wrong])).rejects.toThrow();
      expect(output().includes(secretValue('redis.password'))).toBe(false);
    } finally {
      const exited = new Promise<void>((resolve) => redis.once('exit', () => resolve()));
      if (redis.pid !== undefined && redis.exitCode === null) process.kill(redis.pid, 'SIGTERM');
      await exited;
    }
  }, 30_000);
});
