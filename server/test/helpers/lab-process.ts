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
  const proc = runLabtrace(['lab'], { PORT: String(httpPort), MQTT_PORT: String(mqttPort), LABTRACE_DATA_DIR: dataDir });
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
