// The CPU a benchmark's processes, the benchmark itself and the whole machine use over a measured window, from /proc
// (% of one core): read at the window's start, once a second within it for each process's peak, and at its end.
import { clockTicks, cpuTicks, machineTicks } from './proc.js';

/** the CPU ticks of a process, or of a group of processes summed (null when one of them cannot be read) */
function ticksOf(pids) {
  if (!Array.isArray(pids)) return cpuTicks(pids);
  let sum = 0;
  for (const pid of pids) {
    const t = cpuTicks(pid);
    if (t === null) return null;
    sum += t;
  }
  return sum;
}

const readAll = (pids) => Object.fromEntries(Object.entries(pids).map(([name, p]) => [name, ticksOf(p)]));

export class CpuWindow {
  /** `pids`: the measured processes by name (a pid, or an array of pids counted as one); the window starts now */
  constructor(pids, clkTck = clockTicks()) {
    this.pids = pids;
    this.clkTck = clkTck;
    this.ticks0 = readAll(pids);
    this.machine0 = machineTicks();
    this.self0 = process.cpuUsage();
    this.startedAt = Date.now();
    this.prev = { ...this.ticks0 };
    this.prevAt = this.startedAt;
    this.peaks = Object.fromEntries(Object.keys(pids).map((name) => [name, 0]));
    this.ticks1 = null;
  }

  /**
   * Each process's % of one core since the previous sample (or the start), null where unknown; the largest kept as
   * its peak. A sample less than `minSeconds` after the previous one counts for no peak.
   */
  sample(minSeconds = 0) {
    const now = Date.now();
    const dt = (now - this.prevAt) / 1000;
    const out = {};
    for (const name of Object.keys(this.pids)) {
      const t = ticksOf(this.pids[name]);
      const prev = this.prev[name];
      out[name] = t !== null && prev !== null && dt > 0 ? ((t - prev) / this.clkTck / dt) * 100 : null;
      if (out[name] !== null && dt > minSeconds) this.peaks[name] = Math.max(this.peaks[name], out[name]);
      this.prev[name] = t;
    }
    this.prevAt = now;
    return out;
  }

  /** Ends the window: the readings the figures below are computed from. */
  end() {
    this.ticks1 = readAll(this.pids);
    this.machine1 = machineTicks();
    this.self = process.cpuUsage(this.self0);
    this.seconds = (Date.now() - this.startedAt) / 1000;
    return this;
  }

  /** the CPU ticks the process used over the window; null when a reading is missing */
  ticks(name) {
    const t0 = this.ticks0[name];
    const t1 = this.ticks1?.[name];
    return t0 === null || t1 === null || t1 === undefined ? null : t1 - t0;
  }

  /** the process's % of one core over the window; null when a reading is missing */
  percent(name) {
    const ticks = this.ticks(name);
    return ticks === null ? null : (ticks / this.clkTck / this.seconds) * 100;
  }

  /** the process's largest % of one core between two samples */
  peak(name) {
    return this.peaks[name];
  }

  /** the benchmark's own CPU seconds over the window */
  selfSeconds() {
    return (this.self.user + this.self.system) / 1e6;
  }

  /** the benchmark's own % of one core over the window */
  selfPercent() {
    return (this.selfSeconds() / this.seconds) * 100;
  }

  /** the ticks of one of the machine's figures (proc, irq, steal, busy: proc.js machineTicks); null without /proc/stat */
  machineTicks(key) {
    return this.machine0 && this.machine1 ? this.machine1[key] - this.machine0[key] : null;
  }

  /** one of the machine's figures in % of one core; null without /proc/stat */
  machinePercent(key) {
    const ticks = this.machineTicks(key);
    return ticks === null ? null : (ticks / this.clkTck / this.seconds) * 100;
  }

  /** how busy the machine was, in % of all its cores' time; null without /proc/stat */
  machineBusyShare() {
    const m0 = this.machine0;
    const m1 = this.machine1;
    return m0 && m1 ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 : null;
  }
}
