// docker-compose.yml: compose accepts it, it runs the four services with the server's ports published, and it
// has no default secret: every password and token is a file that deploy/compose/make-secrets.sh makes.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';

// server/dist/test/deploy/docker-compose.test.js -> the repository root
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

// An empty env file, so that a `.env` an operator keeps next to the compose file cannot supply the variables.
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-compose-'));
const EMPTY_ENV_FILE = path.join(tmp, 'empty.env');
writeFileSync(EMPTY_ENV_FILE, '');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function compose(args: string[], vars: Record<string, string>): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('COMPOSE_') || key.startsWith('INFLUXDB_')) continue;
    env[key] = value;
  }
  Object.assign(env, vars);
  return new Promise((resolve, reject) => {
    execFile('docker-compose', ['--env-file', EMPTY_ENV_FILE, '-f', COMPOSE_FILE, ...args], { cwd: ROOT, env }, (err, stdout, stderr) => {
      if (err === null) resolve({ code: 0, stdout, stderr });
      else if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
      else reject(new Error(`docker-compose did not run: ${err.message}`)); // e.g. ENOENT: not installed
    });
  });
}

interface Port {
  published?: number | string;
  target?: number | string;
}
interface ComposeConfig {
  services: Record<string, { ports?: (Port | string)[]; secrets?: ({ source: string } | string)[]; environment?: Record<string, string | null> }>;
  secrets: Record<string, { file: string }>;
}

function publishedPorts(ports: (Port | string)[] = []): string[] {
  return ports.map((p) => (typeof p === 'string' ? (p.split(':').at(-2) ?? p) : String(p.published)));
}

async function config(): Promise<ComposeConfig> {
  const run = await compose(['config'], {});
  expect(run.code).toBe(0);
  return parse(run.stdout) as ComposeConfig;
}

describe('docker-compose.yml', () => {
  test('is valid as it is: no variable to set', async () => {
    const run = await compose(['config', '-q'], {});
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  test('runs the four services; the server publishes HTTP 8080 and MQTT 1883', async () => {
    const c = await config();
    expect(Object.keys(c.services).sort()).toEqual(['device-sim', 'gateway', 'influxdb', 'server']);
    expect(publishedPorts(c.services['server']?.ports)).toEqual(expect.arrayContaining(['8080', '1883']));
    const secretsOf = (service: string) => (c.services[service]?.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source)).sort();
    expect(secretsOf('server')).toEqual(['admin_password', 'enroll_token', 'influxdb_token']);
    expect(secretsOf('gateway')).toEqual(['enroll_token']);
    expect(secretsOf('influxdb')).toEqual(['influxdb_password', 'influxdb_token']);
    expect(secretsOf('device-sim')).toEqual([]);
  });

  test('has no default secret: every secret is a file make-secrets.sh writes (git ignores them), none is in the environment', async () => {
    const c = await config();
    const dir = path.join(ROOT, 'deploy', 'compose', 'secrets');
    const files = Object.values(c.secrets).map((s) => s.file);
    for (const f of files) expect(path.dirname(f)).toBe(dir);
    const made = path.join(tmp, 'made');
    await promisify(execFile)(path.join(ROOT, 'deploy', 'compose', 'make-secrets.sh'), ['--dir', made]);
    expect(readdirSync(made).sort()).toEqual(files.map((f) => path.basename(f)).sort());
    expect(readFileSync(path.join(dir, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')).toMatch(/^deploy\/compose\/secrets$/m);
    // a password or token is only ever named by a *_FILE variable pointing at a mounted secret
    for (const [name, service] of Object.entries(c.services))
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD|TOKEN/.test(key)) {
          expect(`${name}: ${key}`).toMatch(/_FILE$/);
          expect(value).toMatch(/^\/run\/secrets\/[a-z_]+$/);
        }
      }
  });

  test('make-secrets.sh --new-token replaces the enrollment token alone, in the same file (a mounted secret sees it)', async () => {
    const dir = path.join(tmp, 'new-token');
    const script = path.join(ROOT, 'deploy', 'compose', 'make-secrets.sh');
    await promisify(execFile)(script, ['--dir', dir]);
    const read = () => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]));
    const before = read();
    const inode = statSync(path.join(dir, 'enroll.token')).ino;
    await promisify(execFile)(script, ['--new-token', '--dir', dir]);
    const after = read();
    expect(after['enroll.token']).toMatch(/^lt-enroll-[A-Za-z0-9_-]{43}\n$/);
    expect(after['enroll.token']).not.toBe(before['enroll.token']);
    expect({ ...after, 'enroll.token': '' }).toEqual({ ...before, 'enroll.token': '' });
    expect(statSync(path.join(dir, 'enroll.token')).ino).toBe(inode);
  });
});
