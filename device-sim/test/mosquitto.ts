// A real Mosquitto broker for the tests, started and stopped by PID, on free loopback ports: one
// listener for anonymous clients (tests only) and one that checks a password file.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep } from './helpers.js';

const run = promisify(execFile);

export const USER = 'sim-instrument';
export const PASSWORD = 'broker-secret-for-tests';

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export class Mosquitto {
  private child: ChildProcess | undefined;
  /** what the broker logged (connections name their username) */
  log = '';

  private constructor(
    readonly dir: string,
    private readonly conf: string,
    readonly port: number,
    readonly authPort: number,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get authUrl(): string {
    return `mqtt://127.0.0.1:${this.authPort}`;
  }

  static async start(): Promise<Mosquitto> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-mosquitto-'));
    const passwords = path.join(dir, 'passwords');
    await run('mosquitto_passwd', ['-b', '-c', passwords, USER, PASSWORD]);
    chmodSync(passwords, 0o600);
    const port = await freePort();
    let authPort = await freePort();
    while (authPort === port) authPort = await freePort();
    const conf = path.join(dir, 'm.conf');
    writeFileSync(
      conf,
      [
        'per_listener_settings true',
        'persistence false',
        'log_dest stderr',
        'log_type all',
        'connection_messages true',
        // Started as root, Mosquitto would switch to its own user, which cannot read our password file.
        `user ${os.userInfo().username}`,
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        `listener ${authPort} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${passwords}`,
        '',
      ].join('\n'),
    );
    const broker = new Mosquitto(dir, conf, port, authPort);
    await broker.run();
    return broker;
  }

  private async run(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-20_000)));
    const deadline = Date.now() + 10_000;
    while (!((await accepts(this.port)) && (await accepts(this.authPort)))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.stop();
        throw new Error(`mosquitto did not start:\n${this.log}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    child?.stderr?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
