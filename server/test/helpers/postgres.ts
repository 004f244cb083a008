// A real PostgreSQL 15 for a test: a throw-away cluster (initdb) on a free loopback port, started with pg_ctl,
// stopped by pg_ctl (then by its PID if that hangs), its directory removed. PostgreSQL refuses to run as root:
// under root the cluster belongs to the user `postgres` and its commands run through runuser.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

export interface TestPostgres {
  /** a database created for the test: postgres://postgres@127.0.0.1:<port>/<database> (no password in the URL) */
  url: string;
  port: number;
  /** the cluster's directory (data, socket, server log), removed by stop() */
  dir: string;
  /** Creates one more (empty) database on the same cluster and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const CANDIDATE_BIN_DIRS = ['/usr/lib/postgresql/15/bin'];

/** The directory of initdb and pg_ctl: Debian's postgresql-15, or what pg_config names. */
export function postgresBinDir(): string {
  const dirs = [...CANDIDATE_BIN_DIRS];
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) dirs.push(pgConfig.stdout.trim());
  const found = dirs.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
  if (found === undefined)
    throw new Error(`PostgreSQL is not installed: no initdb and pg_ctl in ${dirs.join(' or ')} (Debian: apt-get install postgresql-15)`);
  return found;
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL command as the cluster's owner; throws with its output when it fails. */
function run(bin: string, args: string[], timeoutMs = 60_000): string {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    return execFileSync(file, argv, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${path.basename(bin)} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface PostgresOptions {
  /** the database created for the test */
  database?: string;
  /** with a password, connections over TCP must give it (scram-sha-256) as the user postgres; without, trust */
  password?: string;
  /**
   * commits flushed to disk as in production (benchmarks); tests run without fsync (a test's cluster is thrown
   * away, and a crash test kills the server, not the machine)
   */
  durable?: boolean;
  /** more server settings (-c name=value) */
  settings?: Record<string, string | number>;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const database = options.database ?? 'labtrace';
  const bin = postgresBinDir();
  // a fresh directory the cluster's owner can reach (mkdtemp's 0700 directory owned by root is not)
  const base = path.join(tmpdir(), `labtrace-pg-${randomBytes(6).toString('hex')}`);
  if (asRoot) execFileSync('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', base]);
  else execFileSync('install', ['-d', '-m', '700', base]);
  const dataDir = path.join(base, 'data');
  const port = await freePort();
  let started = false;
  const stop = async (): Promise<void> => {
    if (started) {
      started = false;
      const pidFile = path.join(dataDir, 'postmaster.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN;
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', dataDir, 'stop', '-m', 'fast', '-w', '-t', '20'], 30_000);
      } catch {
        // pg_ctl did not see it stop: end the postmaster by its PID (its children follow it)
        if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      for (let i = 0; i < 100 && Number.isInteger(pid) && pid > 0 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    }
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const auth = ['--auth=trust'];
    if (options.password !== undefined) {
      // the cluster's owner reads the password file once, at initdb; a private directory holds it meanwhile
      const pwfile = path.join(base, 'pwfile');
      writeFileSync(pwfile, `${options.password}\n`, { mode: 0o644 });
      auth.splice(0, 1, '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
    }
    run(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', ...auth, '--encoding=UTF8', '--locale=C', '--no-sync']);
    rmSync(path.join(base, 'pwfile'), { force: true });
    const settings = { ...(options.durable === true ? {} : { fsync: 'off', full_page_writes: 'off' }), ...options.settings };
    const serverOptions = [`-p ${port} -k ${base} -c listen_addresses=127.0.0.1`]
      .concat(Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`))
      .join(' ');
    run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-l', path.join(base, 'server.log'), '-o', serverOptions, '-w', '-t', '60', 'start'], 90_000);
    started = true;
    const urlOf = (name: string): string => `postgres://postgres@127.0.0.1:${port}/${name}`;
    const createDatabase = async (name: string): Promise<string> => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name "${name}": lower-case letters, digits and _ only`);
      // fields rather than a connection string, whose empty password would override the one given
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', password: options.password });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return urlOf(name);
    };
    const url = await createDatabase(database);
    return { url, port, dir: base, createDatabase, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
