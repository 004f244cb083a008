// A real InfluxDB 1.x server for the tests: its own config, data under a temporary directory, loopback only, on free
// ports; started and stopped by PID. restart() keeps the data and the ports; kill() is a crash (SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export class Influxd {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    private readonly dir: string,
    private readonly conf: string,
    /** the HTTP API */
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async create(): Promise<Influxd> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-influxd-'));
    const port = await freePort();
    let rpcPort = await freePort();
    while (rpcPort === port) rpcPort = await freePort();
    const conf = path.join(dir, 'influxdb.conf');
    writeFileSync(
      conf,
      [
        'reporting-enabled = false',
        `bind-address = "127.0.0.1:${rpcPort}"`,
        '[meta]',
        `  dir = "${path.join(dir, 'meta')}"`,
        '[data]',
        `  dir = "${path.join(dir, 'data')}"`,
        `  wal-dir = "${path.join(dir, 'wal')}"`,
        '  query-log-enabled = false',
        '[monitor]',
        '  store-enabled = false',
        '[http]',
        `  bind-address = "127.0.0.1:${port}"`,
        '  log-enabled = false',
        '[continuous_queries]',
        '  enabled = false',
        '[logging]',
        '  level = "warn"',
        '',
      ].join('\n'),
    );
    return new Influxd(dir, conf, port);
  }

  /** Starts the server and waits until /ping answers 204. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) return;
    const child = spawn('influxd', ['-config', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`influxd exited with ${child.exitCode ?? child.signalCode}:\n${this.log}`);
      const response = await fetch(`${this.url}/ping`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (response?.status === 204) return;
      if (Date.now() > deadline) throw new Error(`influxd does not answer /ping on port ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited in time. */
  async stop(timeoutMs = 10_000): Promise<void> {
    await this.signal('SIGTERM', timeoutMs);
  }

  /** A crash: SIGKILL, nothing flushed. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL', 10_000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs an InfluxQL statement that changes something (CREATE DATABASE ...); throws on an error. */
  async command(statement: string): Promise<void> {
    const response = await fetch(`${this.url}/query`, {
      method: 'POST',
      body: new URLSearchParams({ q: statement }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok || text.includes('"error"')) throw new Error(`${statement}: HTTP ${response.status} ${text}`);
  }

  async createDatabase(name: string): Promise<void> {
    await this.command(`CREATE DATABASE "${name}"`);
  }

  /** Runs a query over HTTP; timestamps in epoch milliseconds. Returns the rows of every series as objects. */
  async query(database: string, q: string): Promise<Record<string, unknown>[]> {
    const url = new URL('/query', this.url);
    url.search = new URLSearchParams({ db: database, epoch: 'ms', q }).toString();
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${q}: HTTP ${response.status} ${text}`);
    return rowsOf(JSON.parse(text) as QueryResponse, q);
  }

  private async signal(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    if ((await Promise.race([exited, late])) === 'late') {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    clearTimeout(timer);
  }
}

export interface QueryResponse {
  results?: { error?: string; series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[] }[];
  error?: string;
}

/** The rows of an InfluxQL answer (HTTP or the CLI's -format json) as objects, each with its series name in `name`. */
export function rowsOf(answer: QueryResponse, q = ''): Record<string, unknown>[] {
  if (answer.error) throw new Error(`${q}: ${answer.error}`);
  const rows: Record<string, unknown>[] = [];
  for (const result of answer.results ?? []) {
    if (result.error) throw new Error(`${q}: ${result.error}`);
    for (const series of result.series ?? []) {
      for (const values of series.values) {
        const row: Record<string, unknown> = { name: series.name, ...series.tags };
        series.columns.forEach((column, i) => (row[column] = values[i]));
        rows.push(row);
      }
    }
  }
  return rows;
}
