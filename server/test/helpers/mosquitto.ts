// A real Mosquitto for the tests: users, ACL and configuration in a temporary directory, a free
// loopback port, persistence on disk, started and stopped by PID. restart() keeps the port and the
// persistence directory, so persistent sessions survive it as they would in production.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface MosquittoUser {
  username: string;
  password: string;
}

export interface MosquittoOptions {
  users: MosquittoUser[];
  /** the text of an acl_file */
  acl: string;
  /**
   * A mosquitto.conf to test, such as the shipped one. Its listener becomes a loopback listener on a
   * free port (the options after it still apply), and its file paths point into the temporary directory.
   * It may have one listener.
   */
  conf?: string;
}

/** Directives that name files or addresses of the machine; the helper sets its own. */
const LOCAL = new Set(['password_file', 'acl_file', 'persistence_location', 'persistence_file', 'log_dest', 'pid_file', 'include_dir', 'user']);

const DEFAULT_CONF = ['allow_anonymous false', 'persistence true', 'listener 1883'].join('\n');

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
    private readonly confPath: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  /** The broker's recent stderr, for failure messages. */
  get output(): string {
    return this.log;
  }

  static async create(options: MosquittoOptions): Promise<Mosquitto> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-mosquitto-'));
    try {
      const passwords = path.join(dir, 'passwords');
      writeFileSync(passwords, '');
      for (const user of options.users) await run('mosquitto_passwd', ['-b', passwords, user.username, user.password]);
      chmodSync(passwords, 0o600);
      const acl = path.join(dir, 'acl');
      writeFileSync(acl, options.acl);
      chmodSync(acl, 0o600);
      const data = path.join(dir, 'data');
      mkdirSync(data);
      const port = await freePort();

      const lines: string[] = [];
      let listeners = 0;
      for (const raw of (options.conf ?? DEFAULT_CONF).split('\n')) {
        const line = raw.trim();
        if (line === '' || line.startsWith('#')) continue;
        const key = line.split(/\s+/, 1)[0] ?? '';
        if (LOCAL.has(key)) continue;
        if (key === 'listener') {
          if (++listeners > 1) throw new Error('the test broker supports a configuration with one listener');
          lines.push(`listener ${port} 127.0.0.1`);
        } else lines.push(line);
      }
      if (listeners === 0) throw new Error('the configuration has no listener');
      // Ours are general options; they go first, before any listener.
      const general = [
        `password_file ${passwords}`,
        `acl_file ${acl}`,
        `persistence_location ${data}${path.sep}`,
        'log_dest stderr',
        // Started as root, Mosquitto would switch to its own user, which cannot read our files.
        `user ${os.userInfo().username}`,
      ];
      const confPath = path.join(dir, 'mosquitto.conf');
      writeFileSync(confPath, [...general, ...lines, ''].join('\n'));
      return new Mosquitto(dir, confPath, port);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn('mosquitto', ['-c', this.confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-8000);
    });
    const deadline = Date.now() + 15_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`mosquitto does not accept on port ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM: Mosquitto writes its persistence database and exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGTERM');
    await exited;
  }

  /** Stops and starts again on the same port with the same persistence directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Publishes with mosquitto_pub at QoS 1 and waits until it is acknowledged; an independent client. */
  async pub(user: MosquittoUser, topic: string, message: string): Promise<void> {
    await run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-u',
      user.username,
      '-P',
      user.password,
      '-q',
      '1',
      '-t',
      topic,
      '-m',
      message,
    ]);
  }
}
