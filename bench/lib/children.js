// The processes of an end-to-end benchmark: started with their output in log files (pino JSON lines are
// counted by level), watched (one that dies while it should run fails the benchmark at once), and stopped in
// order with SIGTERM, then SIGKILL after a timeout.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';

const LEVELS = { 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The environment for a `labtrace` CLI process (server, sim, gateway) started with a config file: the file
 * decides the ports, the data directory and the gateway's password, not the caller's environment.
 */
export function cliEnv(env = process.env) {
  const out = { ...env, PORT: '', MQTT_PORT: '', LABTRACE_DATA_DIR: '' };
  delete out['LABTRACE_GATEWAY_PASSWORD'];
  return out;
}

export class Children {
  /** @param {{ cwd: string, logDir: string, stopTimeoutMs?: number }} options */
  constructor({ cwd, logDir, stopTimeoutMs = 20_000 }) {
    this.cwd = cwd;
    this.logDir = logDir;
    this.stopTimeoutMs = stopTimeoutMs;
    this.procs = new Map();
    this.stopping = false;
    this.died = new Promise((_, reject) => {
      this.failWith = reject;
    });
    this.died.catch(() => undefined);
    process.once('exit', () => this.killAll('SIGKILL'));
  }

  /** Waits for `promise`, unless a process dies first. */
  guard(promise) {
    return Promise.race([promise, this.died]);
  }

  /** Fails the run (what `guard` waits for rejects), as a process that died would. */
  fail(err) {
    this.failWith(err);
  }

  /**
   * Starts `node [nodeArgs] script [args]`. With `ipc`, the child has an IPC channel (child.send, 'message').
   * Lines that are not JSON are kept as notes; JSON lines at level warn and above are counted.
   * BENCH_PROFILE_DIR=<dir>: each child writes a V8 CPU profile, <dir>/<name>.cpuprofile, when it exits (to find
   * where a figure's time goes; a profiled run's figures are slower and are not the benchmark's).
   */
  launch(name, script, args = [], { nodeArgs = [], env = process.env, ipc = false } = {}) {
    const stdio = ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
    const profileDir = process.env['BENCH_PROFILE_DIR'];
    const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir), '--cpu-prof-name', `${name}.cpuprofile`] : [];
    const child = spawn(process.execPath, [...profile, ...nodeArgs, script, ...args], { cwd: this.cwd, env, stdio });
    const proc = { name, child, pid: child.pid, tail: [], warnings: 0, errors: 0, notes: new Map(), exit: null, expectExit: false };
    const file = createWriteStream(path.join(this.logDir, `${name}.log`));
    const onData = () => {
      let rest = '';
      return (chunk) => {
        file.write(chunk);
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === '') continue;
          proc.tail.push(line);
          if (proc.tail.length > 40) proc.tail.shift();
          let entry;
          try {
            entry = JSON.parse(line);
          } catch {
            const key = line.trim().slice(0, 200);
            proc.notes.set(key, (proc.notes.get(key) ?? 0) + 1);
            continue;
          }
          const level = Number(entry.level);
          if (level >= 40) {
            if (level >= 50) proc.errors++;
            else proc.warnings++;
            const key = `${LEVELS[level] ?? level} ${entry.msg}${entry.reason ? `: ${String(entry.reason).slice(0, 160)}` : ''}`;
            proc.notes.set(key, (proc.notes.get(key) ?? 0) + 1);
          }
        }
      };
    };
    child.stdout.on('data', onData());
    child.stderr.on('data', onData());
    child.once('error', (err) => {
      proc.exit = { code: null, signal: null, error: err.message };
      if (!this.stopping) this.failWith(new Error(`${name} could not be started: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      proc.exit = { code, signal };
      file.end();
      if (!proc.expectExit && !this.stopping) this.failWith(new Error(`${name} (pid ${proc.pid}) died: ${signal ?? `exit code ${code}`}`));
    });
    this.procs.set(name, proc);
    return proc;
  }

  get(name) {
    return this.procs.get(name);
  }

  /** SIGTERM, then waits for the exit; SIGKILL after the timeout. Resolves with how it ended. */
  async stop(name) {
    const proc = this.procs.get(name);
    if (!proc) return null;
    proc.expectExit = true;
    const started = Date.now();
    if (proc.exit === null) {
      const exited = new Promise((resolve) => proc.child.once('exit', resolve));
      proc.child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(true), this.stopTimeoutMs)));
      const timedOut = await Promise.race([exited.then(() => false), timeout]);
      clearTimeout(timer);
      if (timedOut) {
        proc.child.kill('SIGKILL');
        await exited;
        return { ...proc.exit, killed: true, ms: Date.now() - started };
      }
    }
    return { ...proc.exit, killed: false, ms: Date.now() - started };
  }

  killAll(signal) {
    for (const proc of this.procs.values()) if (proc.exit === null) proc.child.kill(signal);
  }

  /** After a failure: SIGTERM to all, SIGKILL to what still runs after `graceMs`. */
  async killAllGracefully(graceMs = 5000) {
    this.stopping = true;
    this.killAll('SIGTERM');
    const deadline = Date.now() + graceMs;
    while ([...this.procs.values()].some((p) => p.exit === null) && Date.now() < deadline) await sleep(100);
    this.killAll('SIGKILL');
  }

  /** Polls `check` (true: ready; a string: why not yet) every 200 ms until it is ready or the time is up. */
  async waitFor(what, check, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const result = await check();
        if (result === true) return;
        if (typeof result === 'string') last = result;
      } catch (err) {
        last = err.message;
      }
      await this.guard(sleep(200));
    }
    throw new Error(`${what} not ready within ${timeoutMs / 1000} s (${last})`);
  }

  /** The last lines of every process, for an error report (more of the one that ended). */
  printTails(write = console.error) {
    for (const proc of this.procs.values()) {
      if (proc.tail.length === 0) continue;
      write(`--- last lines of ${proc.name} (pid ${proc.pid}, ${proc.exit ? `exited ${proc.exit.signal ?? `code ${proc.exit.code}`}` : 'running'}):`);
      for (const line of proc.tail.slice(proc.exit ? -20 : -5)) write(`  ${line}`);
    }
  }
}
