// The soak run's pure parts (no process, no clock, no file), unit-tested in server/test/bench/soak-figures.test.ts:
// its command line, the schedule of its faults, the slope of a resource over process lifetimes, and the check of a
// stored-measurements counter against the store over the server's lifetimes.

export const FAULT_KINDS = ['instrument-disconnect', 'influx-down', 'gateway-kill', 'server-restart', 'disk-nearly-full'];

export const USAGE = `usage: npm run soak -- [--minutes N] [--rate N] [--no-influx] [--faults LIST] [--result FILE]
  --minutes N   how long the load and the faults run, 1-1440 (default 60); the final checks come after
  --rate N      polls per second of each simulated instrument, 0.5-20 (default 5)
  --no-influx   without the gateway's InfluxDB historian (influxd), so without the InfluxDB fault
  --faults LIST the faults to inject, comma-separated (default all: ${FAULT_KINDS.join(',')}), or none;
                without server-restart and disk-nearly-full the server lives the whole run, so that its memory is
                followed over one long lifetime
  --result FILE where the report goes (default bench/results/soak.json)`;

/**
 * The options of `npm run soak`; throws an Error whose message names the option and what it takes (the caller prints
 * it with the usage and exits 2).
 */
export function parseSoakArgs(argv) {
  const out = { minutes: 60, rate: 5, influx: true, faults: [...FAULT_KINDS], result: null, help: false };
  const number = (name, raw, min, max) => {
    const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`${name}: expected a number from ${min} to ${max}, got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) return undefined;
      i++;
      return next;
    };
    switch (flag) {
      case '--minutes':
        out.minutes = number('--minutes', value(), 1, 1440);
        break;
      case '--rate':
        out.rate = number('--rate', value(), 0.5, 20);
        break;
      case '--no-influx':
        if (inline !== undefined) throw new Error('--no-influx takes no value');
        out.influx = false;
        break;
      case '--faults': {
        const list = value();
        if (list === undefined || list === '') throw new Error(`--faults: expected a comma-separated list of ${FAULT_KINDS.join(', ')}, or none`);
        const kinds = list === 'none' ? [] : list.split(',').map((k) => k.trim());
        for (const k of kinds)
          if (!FAULT_KINDS.includes(k)) throw new Error(`--faults: unknown fault ${JSON.stringify(k)} (known: ${FAULT_KINDS.join(', ')}, or none)`);
        out.faults = FAULT_KINDS.filter((k) => kinds.includes(k));
        break;
      }
      case '--result': {
        const file = value();
        if (file === undefined || file === '') throw new Error('--result: expected a file name');
        out.result = file;
        break;
      }
      case '--help':
      case '-h':
        out.help = true;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return out;
}

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

/**
 * When each fault is injected (ms from the start of the load) and how long it lasts: the run is cut into cycles of
 * about 10 minutes (one cycle when it is shorter), and each cycle injects every fault once, in the first 80 % of it,
 * so that the rest of the cycle runs without one. A fault whose time comes while the previous one is still under way
 * waits for it (the schedule gives the earliest time).
 */
export function faultSchedule(durationMs, { influx = true, faults = FAULT_KINDS } = {}) {
  const cycles = Math.max(1, Math.round(durationMs / 600_000));
  const cycleMs = durationMs / cycles;
  const plan = [
    { kind: 'instrument-disconnect', at: 0.05, holdMs: clamp(0.05 * cycleMs, 8000, 30_000) },
    { kind: 'influx-down', at: 0.18, holdMs: clamp(0.06 * cycleMs, 8000, 40_000) },
    { kind: 'gateway-kill', at: 0.34, holdMs: 3000 },
    { kind: 'server-restart', at: 0.5, holdMs: 0 },
    { kind: 'disk-nearly-full', at: 0.64, holdMs: clamp(0.06 * cycleMs, 10_000, 40_000) },
  ].filter((f) => (influx || f.kind !== 'influx-down') && faults.includes(f.kind));
  const out = [];
  for (let c = 0; c < cycles; c++)
    for (const f of plan) out.push({ kind: f.kind, atMs: Math.round(c * cycleMs + f.at * cycleMs), holdMs: Math.round(f.holdMs) });
  return out;
}

/**
 * The least-squares slope of `value` over `t` (per hour, t in ms) with one intercept per process lifetime: each
 * lifetime's points are centred on their own means, so a restart (a fresh process, lower memory) is no step in the
 * line. Points within `warmupMs` of a lifetime's first point are left out (a process grows while it warms up), and
 * lifetimes with fewer than 3 points left. Null when nothing is left to fit; else the slope, the points fitted and the
 * longest lifetime's fitted span.
 * @param {{ t: number, value: number }[][]} lifetimes
 */
export function pooledSlopePerHour(lifetimes, warmupMs = 0) {
  let sxy = 0;
  let sxx = 0;
  let points = 0;
  let spanMs = 0;
  for (const all of lifetimes) {
    if (all.length === 0) continue;
    const first = all[0].t;
    const pts = all.filter((p) => p.t - first >= warmupMs && Number.isFinite(p.value));
    if (pts.length < 3) continue;
    const mt = pts.reduce((s, p) => s + p.t, 0) / pts.length;
    const mv = pts.reduce((s, p) => s + p.value, 0) / pts.length;
    for (const p of pts) {
      sxy += (p.t - mt) * (p.value - mv);
      sxx += (p.t - mt) ** 2;
    }
    points += pts.length;
    spanMs = Math.max(spanMs, pts[pts.length - 1].t - pts[0].t);
  }
  if (sxx === 0) return null;
  return { perHour: (sxy / sxx) * 3_600_000, points, spanMs };
}

/**
 * Whether a fitted resource is flat: its slope at most `limitPerHour`, or else what that slope adds over the longest
 * fitted lifetime within `margin` (the noise of a short run: a garbage collection, a connection; a run of 10 minutes
 * sees only a leak that adds more than that in one lifetime). A fit that could not be made is not flat.
 */
export function isFlat(fit, limitPerHour, margin) {
  if (fit === null) return { ok: false, rise: null };
  const rise = (fit.perHour * fit.spanMs) / 3_600_000;
  return { ok: fit.perHour <= limitPerHour || rise <= margin, rise };
}

/**
 * The check of the stored-measurements counter against the store, per server lifetime. Each lifetime holds `counter`
 * (its last scraped value; a counter starts at 0 with the process), `before` (the store's count when it started: the
 * server was down, so exact) and `atScrape` (the store's count read just after that scrape). The counter can lag the
 * store only by the rows committed between the scrape and that read (`slack`); it may never be ahead. A lifetime
 * whose last scrape came after the load had stopped (`quiet`) must match exactly.
 */
export function checkCounter(lifetimes, slack) {
  const problems = [];
  let counted = 0;
  for (const [i, l] of lifetimes.entries()) {
    if (l.counter === null || l.atScrape === null) {
      problems.push(`server lifetime ${i + 1} (pid ${l.pid}): never scraped`);
      continue;
    }
    counted += l.counter;
    const stored = l.atScrape - l.before;
    const lag = stored - l.counter;
    if (lag < 0) problems.push(`server lifetime ${i + 1} (pid ${l.pid}): the counter says ${l.counter} stored, the store holds ${stored} more`);
    else if (l.quiet ? lag !== 0 : lag > slack)
      problems.push(
        `server lifetime ${i + 1} (pid ${l.pid}): the counter says ${l.counter} stored, the store holds ${stored} more (allowed lag ${l.quiet ? 0 : slack})`,
      );
  }
  return { counted, problems };
}
