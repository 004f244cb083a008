// A real NTP server for the tests: Debian's chronyd on a free loopback UDP port, serving its own clock (`local
// stratum 8`), never touching the system clock (-x), with its files in a temporary directory and no command socket;
// started and stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { querySntp } from '../../src/node/sntp-client.js';

const CHRONYD = process.env['LABTRACE_CHRONYD'] ?? '/usr/sbin/chronyd';

/** A loopback UDP port nothing is bound to now, below the ephemeral range where outgoing sockets take theirs. */
export async function freeUdpPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 20_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = dgram.createSocket('udp4');
      probe.once('error', () => {
        probe.close();
        resolve(false);
      });
      probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free UDP port found');
}

export class Chrony {
  private log = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  /** `host:port` as a config names it */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Chrony> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-chrony-'));
    const port = await freeUdpPort();
    const conf = path.join(dir, 'chrony.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bindaddress 127.0.0.1',
        'allow 127.0.0.1',
        'local stratum 8',
        // no command port and no command socket: several of these run at once
        'cmdport 0',
        'bindcmdaddress /',
        `driftfile ${path.join(dir, 'drift')}`,
        `pidfile ${path.join(dir, 'chronyd.pid')}`,
        '',
      ].join('\n'),
    );
    // -x: never the system clock; -d: in the foreground, logging to stderr; as root, it stays root (its files are ours)
    const args = ['-x', '-d', '-f', conf, ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])];
    const child = spawn(CHRONYD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chrony = new Chrony(child, dir, port);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let ended = false;
    void exited.then(() => (ended = true));
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (err) => resolve(err));
    });
    if (spawned !== undefined) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`chronyd could not be started (${CHRONYD}; Debian: apt-get install chrony): ${spawned.message}`);
    }
    // ready once it answers
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await querySntp('127.0.0.1', port, { timeoutMs: 200 });
        return chrony;
      } catch (err) {
        if (ended || Date.now() > deadline) {
          await chrony.stop();
          throw new Error(`chronyd did not serve on 127.0.0.1:${port}: ${(err as Error).message}\n${chrony.log}`, { cause: err });
        }
      }
    }
  }

  /** Stops it by its PID and removes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
