// docker-compose.yml: compose accepts it, it runs the four services with the server's ports published,
// and it has no default secret (compose refuses to interpolate it without the InfluxDB variables).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

const secret = (): string => randomBytes(18).toString('base64url');
const influx = { INFLUXDB_ADMIN_PASSWORD: secret(), INFLUXDB_TOKEN: secret() };

interface Port {
  published?: number | string;
  target?: number | string;
}
interface ComposeConfig {
  services: Record<string, { ports?: (Port | string)[]; secrets?: ({ source: string } | string)[] }>;
}

function publishedPorts(ports: (Port | string)[] = []): string[] {
  return ports.map((p) => (typeof p === 'string' ? (p.split(':').at(-2) ?? p) : String(p.published)));
}

describe('docker-compose.yml', () => {
  test('is valid when the InfluxDB secrets are given', async () => {
    const run = await compose(['config', '-q'], influx);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  test('runs the four services; the server publishes HTTP 8080 and MQTT 1883', async () => {
    const run = await compose(['config'], influx);
    expect(run.code).toBe(0);
    const config = parse(run.stdout) as ComposeConfig;
    expect(Object.keys(config.services).sort()).toEqual(['device-sim', 'gateway', 'influxdb', 'server']);
    expect(publishedPorts(config.services['server']?.ports)).toEqual(expect.arrayContaining(['8080', '1883']));
    const secretsOf = (service: string) => (config.services[service]?.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
    expect(secretsOf('server')).toEqual(['server_config']);
    expect(secretsOf('gateway')).toEqual(['gateway_password']);
  });

  test('has no default InfluxDB admin password: compose fails without INFLUXDB_ADMIN_PASSWORD', async () => {
    const run = await compose(['config', '-q'], { INFLUXDB_TOKEN: influx.INFLUXDB_TOKEN });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('INFLUXDB_ADMIN_PASSWORD');
  });

  test('has no default InfluxDB token: compose fails without INFLUXDB_TOKEN', async () => {
    const run = await compose(['config', '-q'], { INFLUXDB_ADMIN_PASSWORD: influx.INFLUXDB_ADMIN_PASSWORD });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('INFLUXDB_TOKEN');
  });
});
