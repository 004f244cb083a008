// A real Mosquitto broker for the tests: its own config, password file and free port in a temporary
// directory, started and stopped by PID. mosquitto_pub is an independent publisher.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const USER = 'instrument';
export const PASSWORD = 'correct-horse-battery';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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
  private log = '';

  private constructor(
    private readonly dir: string,
    private readonly conf: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static async create(): Promise<Mosquitto> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-mosquitto-'));
    const passwords = path.join(dir, 'passwords');
    await run('mosquitto_passwd', ['-b', '-c', passwords, USER, PASSWORD]);
    chmodSync(passwords, 0o600);
    const port = await freePort();
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${passwords}`,
        'persistence false',
        // Started as root, Mosquitto would switch to its own user, which cannot read our password file.
        `user ${os.userInfo().username}`,
        '',
      ].join('\n'),
    );
    return new Mosquitto(dir, conf, port);
  }

  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-4000);
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`mosquitto does not accept on port ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGTERM');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Publishes with mosquitto_pub (QoS 1) and waits until it has been acknowledged. */
  async pub(topic: string, message: string, extra: string[] = []): Promise<void> {
    await run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-u',
      USER,
      '-P',
      PASSWORD,
      '-q',
      '1',
      '-t',
      topic,
      '-m',
      message,
      ...extra,
    ]);
  }
}
