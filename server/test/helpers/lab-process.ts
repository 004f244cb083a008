// Runs `labtrace lab` (what `npm start` runs) as a real process on free loopback ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const BIN = path.join(REPO_ROOT, 'bin', 'labtrace.js');

export interface LabProcess {
  proc: ChildProcess;
  httpPort: number;
  mqttPort: number;
  dataDir: string;
  controlUrl: string;
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** the password `labtrace lab` gives the user "admin" in tests (LABTRACE_ADMIN_PASSWORD) */
export const LAB_ADMIN_PASSWORD = 'admin-secret-for-tests';

/** Signs in to a server as a user; returns the bearer token. */
export async function signIn(base: string, username = 'admin', password = LAB_ADMIN_PASSWORD): Promise<string> {
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`sign-in as ${username} failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

export function runLabtrace(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function collect(proc: ChildProcess): () => string {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

export function exitOf(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

export async function startLab(dataDir = mkdtempSync(path.join(tmpdir(), 'labtrace-lab-'))): Promise<LabProcess> {
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const proc = runLabtrace(['lab'], {
    PORT: String(httpPort),
    MQTT_PORT: String(mqttPort),
    LABTRACE_DATA_DIR: dataDir,
    LABTRACE_ADMIN_PASSWORD: LAB_ADMIN_PASSWORD,
  });
  const output = collect(proc);
  const deadline = Date.now() + 60_000;
  let controlUrl: string | undefined;
  while (Date.now() < deadline && controlUrl === undefined) {
    if (proc.exitCode !== null) throw new Error(`lab exited early:\n${output()}`);
    controlUrl = /simulator API\s+(http:\/\/\S+)\/instruments/.exec(output())?.[1];
    if (controlUrl === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  if (controlUrl === undefined) {
    proc.kill('SIGKILL');
    throw new Error(`lab did not start within 60 s:\n${output()}`);
  }
  return {
    proc,
    httpPort,
    mqttPort,
    dataDir,
    controlUrl,
    output,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exitOf(proc);
    },
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
