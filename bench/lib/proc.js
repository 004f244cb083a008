// What every benchmark measures about processes and ports (Linux /proc).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export async function freePorts(count, host = '127.0.0.1') {
  const probes = [];
  try {
    for (let i = 0; i < count; i++) {
      const probe = net.createServer();
      await new Promise((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(0, host, resolve);
      });
      probes.push(probe);
    }
    return probes.map((p) => p.address().port);
  } finally {
    await Promise.all(probes.map((p) => new Promise((resolve) => p.close(resolve))));
  }
}

export function clockTicks() {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // fall through
  }
  return 100;
}

/** /proc/<pid>/stat: the command name, the parent and the CPU ticks (user + system) of a process; null when it is gone */
function statOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return {
      pid: Number(pid),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return null;
  }
}

export const cpuTicks = (pid) => statOf(pid)?.ticks ?? null;

/** every process of the machine now ({ pid, comm, ppid, ticks }), those that end meanwhile left out */
export function processTable() {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statOf(entry);
    if (stat !== null) out.push(stat);
  }
  return out;
}

/** the processes below `root` (its children, theirs, ...) */
export function descendants(root, table = processTable()) {
  const children = new Map();
  for (const { pid, ppid } of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out = [];
  for (const stack = [root]; stack.length > 0;) for (const c of children.get(stack.pop()) ?? []) (out.push(c), stack.push(c));
  return out;
}

export function peakRssMiB(pid) {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Jiffies of the whole machine (first line of /proc/stat): `proc` is user + nice + system (what processes
 * are charged with), `irq` is irq + softirq (loopback TCP is largely processed there, charged to no
 * process), `steal` is time the hypervisor gave to someone else, `busy` is all but idle and iowait.
 */
export function machineTicks() {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = user + nice + system + idle + (iowait ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    return { proc: user + nice + system, irq: (irq ?? 0) + (softirq ?? 0), steal: steal ?? 0, busy: total - idle - (iowait ?? 0), total };
  } catch {
    return null;
  }
}

/**
 * Waits until the machine uses less than `belowPercent` of one core (measured over 300 ms, minus `ownPercent`,
 * what the caller itself uses meanwhile), at most `maxWaitMs`. Resolves with the last reading (null if unknown).
 */
export async function waitForQuiet(maxWaitMs, belowPercent, ownPercent = 0) {
  const ticks = clockTicks();
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const m0 = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const m1 = machineTicks();
    if (m0 === null || m1 === null) return null;
    const busy = Math.max(0, ((m1.busy - m0.busy) / ticks / 0.3) * 100 - ownPercent);
    if (busy < belowPercent || Date.now() >= deadline) return Math.round(busy);
  }
}

/**
 * What the rest of the machine uses meanwhile, in % of one core: start() before a window, then call the result at
 * its end with the pids measured apart (this process is always left out). Null when /proc cannot be read.
 */
export function othersCpu(pids) {
  const ticks = clockTicks();
  const m0 = machineTicks();
  const p0 = pids.map(cpuTicks);
  const self0 = process.cpuUsage();
  const t0 = Date.now();
  return () => {
    const m1 = machineTicks();
    const p1 = pids.map(cpuTicks);
    const self = process.cpuUsage(self0);
    const seconds = (Date.now() - t0) / 1000;
    if (m0 === null || m1 === null || seconds <= 0 || p0.some((t, i) => t === null || p1[i] === null)) return null;
    const ours = p1.reduce((sum, t, i) => sum + (t - p0[i]), 0) / ticks + (self.user + self.system) / 1e6;
    return Math.max(0, Math.round((((m1.proc - m0.proc) / ticks - ours) / seconds) * 1000) / 10);
  };
}
