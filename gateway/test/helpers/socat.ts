// A pair of connected pseudo-terminals made by socat: a real serial line. Started and stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface PtyPair {
  a: string;
  b: string;
  stop(keepDir?: boolean): Promise<void>;
}

/** A new pair; or, given the links of a pair that was stopped, the same device names again (a cable plugged back in). */
export async function startPtyPair(again?: { a: string; b: string }): Promise<PtyPair> {
  const dir = again === undefined ? mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-pty-')) : path.dirname(again.a);
  const a = again?.a ?? path.join(dir, 'a');
  const b = again?.b ?? path.join(dir, 'b');
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-2000)));
  /** stops socat; `keepDir`: leave the folder so that the pair can be started again at the same names */
  const stop = async (keepDir = false): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    child.stderr?.destroy();
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b) && log.includes('starting data transfer loop'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`socat did not make the pty pair:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { a, b, stop };
}

/** This process's open descriptors on the device behind `link` (a port closed by the gateway holds none). */
export function descriptorsOn(link: string): number {
  const device = realpathSync(link);
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === device;
    } catch {
      return false; // closed while listing
    }
  }).length;
}
