// A real Mosquitto for the tests: users, ACL and configuration in a temporary directory, free
// loopback ports, persistence on disk, started and stopped by PID. restart() keeps the ports and the
// persistence directory, so persistent sessions survive it as they would in production.
// mosquitto_pub is an independent publisher.
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
  /** in the password file; none by default */
  users?: MosquittoUser[];
  /** the text of an acl_file; without it, no acl_file */
  acl?: string;
  /**
   * A mosquitto.conf to test, such as the shipped one; by default password authentication,
   * persistence and one listener. Each listener becomes a loopback listener on its own free port
   * (`ports` and `urls`, in order; the options after it still apply), and its file paths point into
   * the temporary directory. With `per_listener_settings true` (before the first listener), every
   * listener gets the password file and the ACL.
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
    /** one per listener, in the order of the configuration */
    readonly ports: readonly number[],
  ) {}

  /** the first listener's */
  get port(): number {
    return this.ports[0] ?? 0;
  }

  /** the first listener's */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** one per listener, in the order of the configuration */
  get urls(): string[] {
    return this.ports.map((port) => `mqtt://127.0.0.1:${port}`);
  }

  /** the broker's process id while it runs (to sample its CPU and memory) */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The broker's recent stderr (with the default log types, connections name their username). */
  get output(): string {
    return this.log;
  }

  static async create(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-mosquitto-'));
    try {
      const passwords = path.join(dir, 'passwords');
      writeFileSync(passwords, '');
      for (const user of options.users ?? []) await run('mosquitto_passwd', ['-b', passwords, user.username, user.password]);
      chmodSync(passwords, 0o600);
      const security = [`password_file ${passwords}`];
      if (options.acl !== undefined) {
        const acl = path.join(dir, 'acl');
        writeFileSync(acl, options.acl);
        chmodSync(acl, 0o600);
        security.push(`acl_file ${acl}`);
      }
      const data = path.join(dir, 'data');
      mkdirSync(data);

      const lines: string[] = [];
      const ports: number[] = [];
      let perListener = false;
      for (const raw of (options.conf ?? DEFAULT_CONF).split('\n')) {
        const line = raw.trim();
        if (line === '' || line.startsWith('#')) continue;
        const [key = '', value] = line.split(/\s+/, 2);
        if (LOCAL.has(key)) continue;
        if (key === 'per_listener_settings') perListener = value === 'true';
        if (key === 'listener') {
          let port = await freePort();
          while (ports.includes(port)) port = await freePort();
          ports.push(port);
          lines.push(`listener ${port} 127.0.0.1`);
          // per listener, the security options belong after the listener they apply to
          if (perListener) lines.push(...security);
        } else lines.push(line);
      }
      if (ports.length === 0) throw new Error('the configuration has no listener');
      // Ours are general options; they go first, before any listener.
      const general = [
        ...(perListener ? [] : security),
        `persistence_location ${data}${path.sep}`,
        'log_dest stderr',
        // Started as root, Mosquitto would switch to its own user, which cannot read our files.
        `user ${os.userInfo().username}`,
      ];
      const confPath = path.join(dir, 'mosquitto.conf');
      writeFileSync(confPath, [...general, ...lines, ''].join('\n'));
      return new Mosquitto(dir, confPath, ports);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Starts the broker and waits until every listener accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn('mosquitto', ['-c', this.confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    });
    const deadline = Date.now() + 15_000;
    const allAccept = async (): Promise<boolean> => (await Promise.all(this.ports.map(accepts))).every(Boolean);
    while (!(await allAccept())) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        child.stderr?.destroy();
        throw new Error(`mosquitto exited with ${child.exitCode ?? child.signalCode}:\n${this.log}`);
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`mosquitto does not accept on ports ${this.ports.join(', ')}:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM: Mosquitto writes its persistence database and exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    child?.stderr?.destroy();
  }

  /** Stops and starts again on the same ports with the same persistence directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the broker and removes its temporary directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Publishes with mosquitto_pub at QoS 1 to the first listener and waits until it is acknowledged;
   * an independent client. `extra` are more mosquitto_pub arguments, such as `-r` for retained.
   */
  async pub(user: MosquittoUser, topic: string, message: string, extra: string[] = []): Promise<void> {
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
      ...extra,
    ]);
  }
}
