// The lab's parts as separate real processes (server, simulator, gateway), each started, stopped or
// killed by the test, with the gateway's MQTT connection through a proxy the test can cut. The
// gateway is enrolled the way a lab does it: an admin token from the server, `gateway init`,
// `gateway enroll`. And an auditor's check of the server's database: every stored batch verifies
// against the gateway's keys from the stored rows, and the sequence numbers are complete.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { openBatch, parseVerifierKey, verifyBatch, type BatchHeader, type Sample, type SignedBatch } from '@labtrace/protocols';
import { BIN, collect, exitOf, REPO_ROOT, runLabtrace } from './lab-process.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
export const LAB = 'fault-lab';
export const GATEWAY = 'gw-f';
/** the password of the user "admin" the server creates at its first start */
export const ADMIN_PASSWORD = 'admin-secret-for-tests';
const PROFILES = path.join(REPO_ROOT, 'device-sim', 'profiles');

export async function labtrace(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } });
  return stdout;
}

/** A TCP proxy between the gateway and the broker; `cut()` drops every connection, `cutInData()` drops one inside a DATA message. */
export class Proxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private cutNextData = false;
  cuts = 0;
  port = 0;

  constructor(private readonly target: () => number) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target(), '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      upstream.on('data', (d: Buffer) => client.write(d));
      client.on('data', (d: Buffer) => {
        const at = this.cutNextData ? d.indexOf('/DATA') : -1;
        if (at >= 0 && d.length > at + 200) {
          // forward the topic and part of the batch, then drop the connection
          this.cutNextData = false;
          this.cuts++;
          upstream.write(d.subarray(0, at + 100), () => close());
          return;
        }
        upstream.write(d);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  cutInData(): void {
    this.cutNextData = true;
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

type Part = 'server' | 'sim' | 'gateway';

export class Parts {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'labtrace-parts-'));
  readonly files = { server: '', sim: '', gateway: '' };
  readonly procs = new Map<Part, { proc: ChildProcess; output: () => string }>();
  httpPort = 0;
  mqttPort = 0;
  controlPort = 0;
  proxy = new Proxy(() => this.mqttPort);

  get base(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get serverDb(): string {
    return path.join(this.dir, 'server', 'labtrace.sqlite');
  }

  get outboxDb(): string {
    return path.join(this.dir, 'gateway', 'outbox.sqlite');
  }

  /** Writes the configs, starts the server and the simulator, and enrolls the gateway. */
  async setUp(options: { outboxMaxSamples?: number; server?: Record<string, unknown> } = {}): Promise<void> {
    this.httpPort = await freePort();
    this.mqttPort = await freePort();
    this.controlPort = await freePort();
    await this.proxy.start();
    const simPort = await freePort();
    const utmPort = await freePort();
    mkdirSync(path.join(this.dir, 'gateway'), { recursive: true, mode: 0o700 });
    this.files.server = path.join(this.dir, 'server.yaml');
    this.files.sim = path.join(this.dir, 'sim.yaml');
    this.files.gateway = path.join(this.dir, 'gateway.yaml');
    writeFileSync(
      this.files.server,
      stringify({
        lab: LAB,
        dataDir: path.join(this.dir, 'server'),
        http: { host: '127.0.0.1', port: this.httpPort },
        mqtt: { host: '127.0.0.1', port: this.mqttPort },
        ...options.server,
      }),
    );
    writeFileSync(
      this.files.sim,
      stringify({
        host: '127.0.0.1',
        tickMs: 100,
        control: { host: '127.0.0.1', port: this.controlPort },
        instruments: [
          { profile: path.join(PROFILES, 'climate-chamber.yaml'), model: 'climate-chamber', port: simPort },
          { profile: path.join(PROFILES, 'universal-testing-machine.yaml'), model: 'universal-testing-machine', port: utmPort },
        ],
      }),
    );
    writeFileSync(
      this.files.gateway,
      stringify({
        gateway: { id: GATEWAY, lab: LAB },
        dataDir: path.join(this.dir, 'gateway'),
        mqtt: {
          url: `mqtt://127.0.0.1:${this.proxy.port}`,
          username: GATEWAY,
          passwordFile: path.join(this.dir, 'gateway', 'mqtt.password'),
          keepaliveSeconds: 5,
        },
        batch: { maxSamples: 200, maxDelayMs: 100 },
        outbox: { maxSamples: options.outboxMaxSamples ?? 200_000 },
        instruments: [
          { profile: path.join(PROFILES, 'climate-chamber.yaml'), host: '127.0.0.1', port: simPort },
          { profile: path.join(PROFILES, 'universal-testing-machine.yaml'), host: '127.0.0.1', port: utmPort },
        ],
      }),
    );
    await this.start('server');
    await this.start('sim');
    const token = (await labtrace('server', 'enroll-token', '--gateway', GATEWAY, '--config', this.files.server)).trim();
    await labtrace('gateway', 'init', '--config', this.files.gateway);
    await labtrace('gateway', 'enroll', '--server', this.base, '--token', token, '--config', this.files.gateway);
  }

  private token: string | undefined;

  /** fetch on the server as its admin (signed in once, with a bearer token) */
  async fetch(p: string, init: RequestInit = {}): Promise<Response> {
    if (this.token === undefined) {
      const res = await fetch(`${this.base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
      });
      if (!res.ok) throw new Error(`admin sign-in failed: ${res.status} ${await res.text()}`);
      this.token = ((await res.json()) as { token: string }).token;
    }
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.token}`);
    return fetch(`${this.base}${p}`, { ...init, headers });
  }

  async start(part: Part): Promise<void> {
    const proc = runLabtrace([part, '--config', this.files[part]], part === 'server' ? { LABTRACE_ADMIN_PASSWORD: ADMIN_PASSWORD } : {});
    const output = collect(proc);
    this.procs.set(part, { proc, output });
    const url = part === 'server' ? `${this.base}/api/health` : part === 'sim' ? `http://127.0.0.1:${this.controlPort}/instruments` : undefined;
    if (url === undefined) {
      await this.waitFor(`${part} started`, () => /gateway started/.test(output()), 30_000);
      return;
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${part} exited during start-up:\n${output()}`);
      try {
        if ((await fetch(url)).ok) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${part} did not answer within 60 s:\n${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(part: Part, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const entry = this.procs.get(part);
    if (!entry || entry.proc.exitCode !== null || entry.proc.signalCode !== null) return entry?.proc.exitCode ?? null;
    entry.proc.kill(signal);
    return exitOf(entry.proc);
  }

  output(part: Part): string {
    return this.procs.get(part)?.output() ?? '';
  }

  async tearDown(): Promise<void> {
    for (const part of ['gateway', 'sim', 'server'] as const) await this.stop(part, 'SIGKILL');
    await this.proxy.stop();
  }

  /**
   * GET of a JSON document from the server. A request that fails on the way (a kept-alive connection the
   * server closed as it was reused, which a loaded machine makes likelier) is made again, at most 3 times.
   */
  async getJson<T = unknown>(pathAndQuery: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.fetch(pathAndQuery);
        if (!response.ok) throw new Error(`GET ${pathAndQuery}: HTTP ${response.status}`);
        return (await response.json()) as T;
      } catch (err) {
        if (attempt >= 3 || !(err instanceof TypeError)) throw err; // fetch's network failures are TypeErrors
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    let lastError = '';
    for (;;) {
      try {
        if (await check()) return;
      } catch (err) {
        lastError = `\n(last check failed: ${(err as Error).message})`; // not yet: tried again until the deadline
      }
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}${lastError}\n--- gateway ---\n${this.output('gateway').slice(-3000)}\n--- server ---\n${this.output('server').slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The gateway's outbox: batches still held and the last sequence number it stored. */
  outbox(): { held: number; lastSeq: number | undefined } {
    const db = new Database(this.outboxDb, { readonly: true, fileMustExist: true });
    try {
      const held = (db.prepare('SELECT COUNT(*) AS n FROM batches').get() as { n: number }).n;
      const last = db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get() as { value: number } | undefined;
      return { held, lastSeq: last?.value };
    } finally {
      db.close();
    }
  }

  /** The last sequence number up to which everything the gateway produced has been acknowledged. */
  ackedThrough(): number {
    const db = new Database(this.outboxDb, { readonly: true, fileMustExist: true });
    try {
      const first = db.prepare('SELECT payload FROM batches ORDER BY batch LIMIT 1').get() as { payload: Buffer | string } | undefined;
      if (first) {
        if (typeof first.payload === 'string') return (JSON.parse(first.payload) as { samples: { seq: number }[] }).samples[0]!.seq - 1;
        return openBatch(first.payload).signed.header.firstSeq - 1;
      }
      return (db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get() as { value: number } | undefined)?.value ?? -1;
    } finally {
      db.close();
    }
  }

  /** Number of measurements the server stored for the gateway. */
  stored(): number {
    const db = new Database(this.serverDb, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ?').get(GATEWAY) as { n: number }).n;
    } finally {
      db.close();
    }
  }

  /** Waits until the gateway holds nothing unacknowledged (everything it produced is stored). */
  async drained(ms = 90_000): Promise<void> {
    await this.waitFor('the outbox to drain', () => this.outbox().held === 0, ms);
  }
}

export interface Audit {
  batches: number;
  records: number;
  /** numbers never used, each declared by a signed sequence-jump record */
  declaredJumps: { from: number; to: number }[];
  /** samples refused while the outbox was full, as declared */
  refusedDeclared: number;
  missing: number[];
  failures: string[];
  events: Record<string, number>;
}

/**
 * An auditor's check of the server's database: each stored batch is rebuilt from the stored rows and
 * verified against the gateway's registered keys (signature, Merkle root, ranges); the sequence
 * numbers run from 0 to `lastSeq` with only declared jumps; and no record is stored twice.
 */
export function audit(dbFile: string, gateway: string, lastSeq: number): Audit {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const keys = new Map(
      (db.prepare('SELECT key_id, verifier_key FROM gateway_keys WHERE gateway = ?').all(gateway) as { key_id: string; verifier_key: string }[]).map(
        (k) => [k.key_id, parseVerifierKey(k.verifier_key)],
      ),
    );
    const failures: string[] = [];
    const rows = db.prepare('SELECT * FROM measurements WHERE gateway = ? AND seq >= ? AND seq < ? ORDER BY seq');
    const headers = db.prepare('SELECT header, signature FROM batch_headers WHERE gateway = ? ORDER BY batch').all(gateway) as {
      header: string;
      signature: string;
    }[];
    let records = 0;
    const declaredJumps: { from: number; to: number }[] = [];
    let refusedDeclared = 0;
    for (const h of headers) {
      const header = JSON.parse(h.header) as BatchHeader;
      const signed: SignedBatch = { header, signature: h.signature };
      const samples = (rows.all(gateway, header.firstSeq, header.firstSeq + header.count) as Record<string, unknown>[]).map((r): Sample => {
        const kind = r['value_kind'];
        const value =
          kind === 'number'
            ? (r['value_num'] as number)
            : kind === 'boolean'
              ? r['value_num'] === 1
              : kind === 'string'
                ? (r['value_text'] as string)
                : null;
        const s: Sample = {
          seq: r['seq'] as number,
          instrument: r['instrument'] as string,
          channel: r['channel'] as string,
          ts: r['ts'] as number,
          value,
          unit: r['unit'] as string,
          quality: r['quality'] as Sample['quality'],
        };
        if (r['reason'] !== null) s.reason = r['reason'] as string;
        return s;
      });
      const key = keys.get(header.keyId);
      try {
        if (!key) throw new Error(`key ${header.keyId} is not registered`);
        verifyBatch(signed, samples, key, gateway);
      } catch (err) {
        failures.push(`batch ${header.batch}: ${(err as Error).message}`);
      }
      records += samples.length;
      for (const s of samples) {
        if (s.instrument === gateway && s.channel === 'sequence-jump') declaredJumps.push({ from: s.value as number, to: s.seq - 1 });
        if (s.instrument === gateway && s.channel === 'samples-refused') refusedDeclared += s.value as number;
      }
    }
    const stored = new Set((db.prepare('SELECT seq FROM measurements WHERE gateway = ?').all(gateway) as { seq: number }[]).map((r) => r.seq));
    const missing: number[] = [];
    for (let seq = 0; seq <= lastSeq; seq++) {
      if (stored.has(seq)) continue;
      const jump = declaredJumps.find((j) => seq >= j.from && seq <= j.to);
      if (jump) {
        seq = jump.to;
        continue;
      }
      missing.push(seq);
      if (missing.length > 20) break;
    }
    const total = (db.prepare('SELECT COUNT(*) AS n FROM measurements WHERE gateway = ?').get(gateway) as { n: number }).n;
    if (total !== records) failures.push(`${total} records stored, ${records} covered by signed batches`);
    const events = Object.fromEntries(
      (
        db.prepare('SELECT kind, COUNT(*) AS n FROM security_events WHERE gateway = ? GROUP BY kind').all(gateway) as { kind: string; n: number }[]
      ).map((e) => [e.kind, e.n]),
    );
    return { batches: headers.length, records, declaredJumps, refusedDeclared, missing, failures, events };
  } finally {
    db.close();
  }
}
