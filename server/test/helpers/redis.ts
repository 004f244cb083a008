// A real Redis 7 for a test: the Debian package's redis-server on a free loopback port, with a password (Redis must
// not take anonymous clients), no persistence; stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface TestRedis {
  url: string;
  password: string;
  /** a file holding the password, as live.redis.passwordFile takes it */
  passwordFile: string;
  output: () => string;
  stop: () => Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-redis-'));
  const password = randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const conf = path.join(dir, 'redis.conf');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(
      conf,
      [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `requirepass ${password}`, 'save ""', 'appendonly no', 'protected-mode yes', ''].join('\n'),
      { mode: 0o600 },
    );
    let out = '';
    const child: ChildProcess = spawn('redis-server', [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const ready = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`redis-server could not start (is the Debian package redis-server installed?): ${err.message}`));
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      const check = (): void => {
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout?.on('data', check);
    });
    if (ready) {
      let stopped = false;
      return {
        url: `redis://127.0.0.1:${port}`,
        password,
        passwordFile,
        output: () => out,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    // a port taken between choosing and binding: another one
    if (attempt >= 3 || !/Address already in use/i.test(out)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start:\n${out}`);
    }
  }
}
