// The server under fuzzing: `labtrace server` as a real child process on free loopback ports, with one
// test gateway in its broker users and key registry. A crash is seen as the process exiting; the server
// is then started again on the same data directory (users, sessions and records survive), so that one
// crash does not hide what the rest of the run would find.
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { stringify } from 'yaml';
import { formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { hashPassword } from '../../src/index.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
import { LAB, seedOf } from '../helpers/server.js';

export { LAB as FUZZ_LAB } from '../helpers/server.js';
/** the gateway the suite speaks MQTT as (configured with its key and broker password) */
export const FUZZ_GATEWAY = 'gw-fz';
/** a second configured gateway: its topics are another gateway's to FUZZ_GATEWAY */
export const OTHER_GATEWAY = 'gw-other';
export const GATEWAY_PASSWORD = 'fuzz-gateway-secret';
export const ADMIN_PASSWORD = 'fuzz-admin-secret-for-tests';

/** what a request to the server ended with */
export type Outcome = { kind: 'answer'; status: number; body: string } | { kind: 'error'; message: string } | { kind: 'timeout' };

export class ServerProcess {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'labtrace-fuzz-'));
  httpPort = 0;
  mqttPort = 0;
  private proc: ChildProcess | undefined;
  private out: () => string = () => '';
  /** output of the processes that died, for the report */
  readonly deaths: string[] = [];
  private file = '';

  get base(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  async start(): Promise<void> {
    this.httpPort = await freePort();
    this.mqttPort = await freePort();
    const gatewayHash = await hashPassword(GATEWAY_PASSWORD);
    this.file = path.join(this.dir, 'server.yaml');
    writeFileSync(
      this.file,
      stringify({
        lab: LAB,
        dataDir: path.join(this.dir, 'data'),
        // every request is a case: the per-address budget would answer most of them 429
        http: { host: '127.0.0.1', port: this.httpPort, rateLimit: false },
        mqtt: { host: '127.0.0.1', port: this.mqttPort },
        broker: {
          users: [FUZZ_GATEWAY, OTHER_GATEWAY].map((id) => ({ username: id, passwordHash: gatewayHash, role: 'gateway', gateway: id })),
        },
        gateways: [FUZZ_GATEWAY, OTHER_GATEWAY].map((id) => ({ id, key: formatVerifierKey(id, publicKeyFromSeed(seedOf(id))) })),
        calibration: { requireForRuns: false },
        laboratory: { name: 'labtrace fuzz laboratory', address: '1 Test Street, 12345 Testtown' },
      }),
    );
    await this.spawn();
  }

  private async spawn(): Promise<void> {
    const proc = runLabtrace(['server', '--config', this.file], { LABTRACE_ADMIN_PASSWORD: ADMIN_PASSWORD, LOG_LEVEL: 'warn' });
    this.proc = proc;
    this.out = collect(proc);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!this.alive()) throw new Error(`the server exited during start-up:\n${this.out()}`);
      if ((await this.health()) === 200) return;
      if (Date.now() > deadline) throw new Error(`the server did not answer within 60 s:\n${this.out()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** resolves when the current process exits */
  exited(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || !this.alive()) return Promise.resolve();
    return new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  /** the error a dead process died of: its last "…Error: …" line and the first frame under it */
  static causeOfDeath(output: string): string {
    const lines = output.split('\n');
    const at = lines.findLastIndex((l) => /^\w*Error\b.*:/.test(l) || /^\s*\w*Error \[/.test(l));
    if (at < 0) return 'no error printed';
    const frame =
      lines
        .slice(at + 1)
        .find((l) => /^\s+at /.test(l))
        ?.trim() ?? '';
    return `${lines[at]!.trim()} ${frame.replace(/\(file:.*\/dist\//, '(').replace(/:\d+:\d+\)/, ')')}`;
  }

  alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** everything the current process wrote so far */
  output(): string {
    return this.out();
  }

  /** The status of GET /api/health, 0 when it does not answer within 10 s. */
  async health(): Promise<number> {
    const outcome = await this.request({ method: 'GET', path: '/api/health', headers: {} }, 10_000);
    return outcome.kind === 'answer' ? outcome.status : 0;
  }

  /** Starts the server again when it died; returns the dead process's output, if it had died. */
  async revive(): Promise<string | undefined> {
    if (this.alive()) return undefined;
    const last = this.out();
    this.deaths.push(last);
    await this.spawn();
    return last;
  }

  /** One HTTP request with the path sent as given (no normalisation), the body as given, and a deadline. */
  request(
    req: { method: string; path: string; headers: Record<string, string>; body?: string | Buffer; abortAfterBytes?: number },
    timeoutMs: number,
  ): Promise<Outcome> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      let r: http.ClientRequest;
      try {
        r = http.request({ host: '127.0.0.1', port: this.httpPort, method: req.method, path: req.path, headers: req.headers, agent: false });
      } catch (err) {
        // a request Node itself refuses to send (an invalid header): nothing reached the server
        resolve({ kind: 'error', message: `not sent: ${(err as Error).message}` });
        return;
      }
      const timer = setTimeout(() => {
        r.destroy();
        done({ kind: 'timeout' });
      }, timeoutMs);
      r.on('error', (err) => done({ kind: 'error', message: err.message }));
      r.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (chunks.length < 4) chunks.push(c);
          // a client that goes away in the middle of the answer (a cancelled download)
          if (req.abortAfterBytes !== undefined && size >= req.abortAfterBytes) {
            res.destroy();
            done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8', 0, 2000) });
          }
        });
        res.on('end', () => done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8', 0, 2000) }));
        res.on('error', (err) => done({ kind: 'error', message: err.message }));
        res.on('close', () => done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8', 0, 2000) }));
      });
      r.end(req.body);
    });
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || !this.alive()) return;
    proc.kill('SIGTERM');
    const exited = exitOf(proc);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
