// deploy/cluster/compose.yaml: compose accepts it as it is, it runs haproxy in front of two nodes with the shared
// engines beside them, its haproxy.cfg names the compose file's nodes, and it has no default secret: every password
// is a file that deploy/cluster/make-secrets.sh makes. Each node's config as the node gets it (server.yaml with that
// node's environment) is the cluster: PostgreSQL, Mosquitto's shared subscription under the node's own user, Redis
// live updates and the lab's keys in the volume both nodes mount; every file it reads under /run/secrets is a
// secret its service mounts, and the second node starts once the first is healthy (the first creates the keys). haproxy accepts the
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
import type { ServerConfig } from '../../src/config.js';
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
  secrets?: ({ source: string; target?: string } | string)[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition?: string }> | string[];
  hostname?: string;
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
/** the service's secrets as mounted: /run/secrets/<target> → the compose secret's name */
const mountedSecrets = (s: Service): Map<string, string> =>
  new Map((s.secrets ?? []).map((x) => (typeof x === 'string' ? [`/run/secrets/${x}`, x] : [`/run/secrets/${x.target ?? x.source}`, x.source])));
/** the named volume mounted at `target` in the service */
const volumeAt = (s: Service, target: string): string | undefined =>
  mounts(s)
    .map((m) => m.split(':'))
    .find(([, t]) => t === target)?.[0];
const SERVER_YAML = path.join(DIR, 'server.yaml');
/** the node's config as the node gets it: server.yaml with the environment of its service */
const nodeConfig = (name: string): Promise<ServerConfig> => {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(service(name).environment ?? {})) if (value !== null) env[key] = value;
  return loadServerConfig(SERVER_YAML, env);
};
const dependsOn = (s: Service): Record<string, string | undefined> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((d) => [d, undefined]))
    : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition]));

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
    // each node its own data folder (its free-space reserve); the records are in PostgreSQL
    const data = NODES.map((n) => volumeAt(service(n), '/data'));
    expect(data.every((v) => v !== undefined)).toBe(true);
    expect(new Set(data).size).toBe(2);
  });

  test("haproxy runs deploy/cluster/haproxy.cfg, whose nodes are the compose file's nodes on the port they listen on", async () => {
    expect(mounts(service('haproxy'))).toContain(`${path.join(DIR, 'haproxy.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`);
    const servers = [...readFileSync(path.join(DIR, 'haproxy.cfg'), 'utf8').matchAll(/^\s*server\s+\S+\s+(\S+)/gm)].map((m) => m[1]);
    for (const name of NODES) expect(service(name).command).toEqual(['server', '--config', '/app/deploy/cluster/server.yaml']);
    // the nodes' config is one the server accepts (the address it listens on is the one haproxy dials)
    for (const name of NODES) {
      const node = await nodeConfig(name);
      expect(servers).toEqual(NODES.map((n) => `${n}:${node.http.port}`));
      expect(node.http.host).toBe('0.0.0.0');
      expect(node.http.trustProxy).toEqual(['uniquelocal']);
    }
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

describe("each node's config as the node gets it (server.yaml and its service's environment)", () => {
  test('names the shared PostgreSQL, the shared broker under its own user, Redis live updates and the shared keys', async () => {
    const nodes = await Promise.all(NODES.map((n) => nodeConfig(n)));
    const usernames = nodes.map((c) => c.mqtt.external?.username);
    expect(usernames).toEqual(['labtrace-node-1', 'labtrace-node-2']);
    for (const [i, c] of nodes.entries()) {
      expect(c.database).toEqual({ url: 'postgres://labtrace@postgres:5432/labtrace', passwordFile: '/run/secrets/postgres_password' });
      // the same user and database as the postgres service
      expect(service('postgres').environment).toMatchObject({ POSTGRES_USER: 'labtrace', POSTGRES_DB: 'labtrace' });
      expect(c.mqtt.external).toMatchObject({ url: 'mqtt://mosquitto:1883', username: `labtrace-node-${i + 1}`, sharedGroup: expect.any(String) });
      expect(c.mqtt.external?.passwordFile).toMatch(/^\/run\/secrets\//);
      expect(c.mqtt.cluster).toBeUndefined();
      expect(c.live.redis).toMatchObject({ url: 'redis://redis:6379', username: 'labtrace', passwordFile: '/run/secrets/redis_password' });
      // the lab's one log key and certificate key, in the volume both nodes mount (not in a node's own /data)
      const keysDir = path.posix.dirname(c.log.keyFile ?? '');
      expect(path.posix.dirname(c.certificates.keyFile ?? '')).toBe(keysDir);
      expect(keysDir).not.toMatch(/^\/data(\/|$)/);
      expect(volumeAt(service(NODES[i] ?? ''), keysDir)).toBe('keys');
      expect(c.demo.enabled).toBe(false);
    }
    // one shared group and one stream for the lab
    expect(new Set(nodes.map((c) => c.mqtt.external?.sharedGroup)).size).toBe(1);
    expect(new Set(nodes.map((c) => c.live.redis?.stream)).size).toBe(1);
    // each node's user is a user of the broker (its ACL and the users make-secrets.sh writes)
    const acl = readFileSync(path.join(DIR, 'mosquitto.acl'), 'utf8');
    const brokerUsers = secretValue('mosquitto.users')
      .split('\n')
      .map((line) => line.split(':')[0]);
    for (const u of usernames) {
      expect(acl).toMatch(new RegExp(`^user ${u}$`, 'm'));
      expect(brokerUsers).toContain(u);
    }
  });

  test("every file the node reads under /run/secrets is a secret its service mounts; its broker password is its own user's", async () => {
    const brokerPasswords = new Map(
      secretValue('mosquitto.users')
        .split('\n')
        .map((line) => [line.split(':')[0] ?? '', line.split(':')[1] ?? ''] as const),
    );
    for (const name of NODES) {
      const c = await nodeConfig(name);
      const mounted = mountedSecrets(service(name));
      const files = [
        c.database.passwordFile,
        c.mqtt.external?.passwordFile,
        c.live.redis?.passwordFile,
        ...Object.entries(service(name).environment ?? {})
          .filter(([key]) => key.endsWith('_FILE'))
          .map(([, value]) => value ?? undefined),
      ];
      for (const f of files) {
        expect(f).toMatch(/^\/run\/secrets\//);
        expect([name, f, mounted.has(f ?? '')]).toEqual([name, f, true]);
      }
      // the broker password mounted for this node is the one of the node's own Mosquitto user
      const source = mounted.get(c.mqtt.external?.passwordFile ?? '') ?? '';
      const file = config.secrets[source]?.file ?? '';
      expect(secretValue(path.basename(file))).toBe(brokerPasswords.get(c.mqtt.external?.username ?? ''));
      // the Redis password is the one of Redis's user `labtrace` (redis.acl), the database's the postgres service's
      expect(mounted.get(c.live.redis?.passwordFile ?? '')).toBe('redis_password');
      expect(service('redis').secrets).toEqual(expect.arrayContaining([expect.objectContaining({ source: 'redis_acl' })]));
      expect(mounted.get(c.database.passwordFile ?? '')).toBe('postgres_password');
      expect(service('postgres').environment?.['POSTGRES_PASSWORD_FILE']).toBe('/run/secrets/postgres_password');
      expect(mountedSecrets(service('postgres')).get('/run/secrets/postgres_password')).toBe('postgres_password');
    }
  });

  test('server-2 starts once server-1 is healthy (server-1 creates the keys); both after PostgreSQL and Redis are healthy', () => {
    expect(dependsOn(service('server-2'))).toMatchObject({ 'server-1': 'service_healthy' });
    expect(dependsOn(service('server-1'))['server-2']).toBeUndefined();
    expect(service('server-1').healthcheck?.test?.join(' ')).toMatch(/\/api\/health/);
    for (const name of NODES) expect(dependsOn(service(name))).toMatchObject({ postgres: 'service_healthy', redis: 'service_healthy' });
  });

  test('the keys volume is one named volume, mounted by both nodes and by nothing else', () => {
    const keys = NODES.map((n) => volumeAt(service(n), '/keys'));
    expect(keys).toEqual(['keys', 'keys']);
    expect(Object.keys((parse(readFileSync(COMPOSE_FILE, 'utf8')) as { volumes: Record<string, unknown> }).volumes)).toContain('keys');
    const others = Object.entries(config.services).filter(([name, s]) => !NODES.includes(name) && mounts(s).some((m) => m.startsWith('keys:')));
    expect(others).toEqual([]);
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
