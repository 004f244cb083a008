// A pair of connected pseudo-terminals made by socat: a real serial line for RTU tests. The simulator
// opens one end, the test (mbpoll, or a serial port of its own) the other. Started and stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class PtyPair {
  private constructor(
    private readonly dir: string,
    private readonly child: ChildProcess,
    /** the end the simulator opens */
    readonly a: string,
    /** the end the master opens */
    readonly b: string,
  ) {}

  static async start(): Promise<PtyPair> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-pty-'));
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-2000)));
    const pair = new PtyPair(dir, child, a, b);
    const deadline = Date.now() + 5000;
    // socat logs "starting data transfer loop" once both ends exist.
    while (!(existsSync(a) && existsSync(b) && log.includes('starting data transfer loop'))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await pair.stop();
        throw new Error(`socat did not make the pty pair:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return pair;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    child.stderr?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
