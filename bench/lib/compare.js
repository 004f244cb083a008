// The regression guard of `npm run bench -- --compare`: a run's result files against the stored ones.
//
// A figure is compared when its direction is known: declared by its benchmark (the result file's `better`: figure
// path, or a path ending in `.*` for every figure under it, to 'higher', 'lower' or 'none'), or else evident from its
// name's unit (…PerSecond is higher-is-better; …Ms, …CpuPercent, …MiB, …UsPerRequest lower-is-better). A figure whose
// direction is neither is listed as not compared, never guessed. Worse by more than the tolerance (15 %): a
// higher-is-better figure below 0.85 x the stored one, a lower-is-better figure above 1.15 x.
// Pure functions (no file, no clock), so that they are unit-tested (server/test/bench/compare.test.ts).

export const TOLERANCE = 0.15;

/** Flattens nested objects into "a.b.c" keys; arrays are left out (series belong in the file, not the table). */
export function flatten(value, prefix = '', out = new Map()) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (!Array.isArray(value)) {
    out.set(prefix, value);
  }
  return out;
}

/** what the machine or the load generator did, not the code under test: never compared by its unit */
const ENVIRONMENT = /^(?:steal|irq|others|machine|bench|client|load)|Client/;

/** units whose direction is evident, tried in order on the figure's last name */
const UNITS = [
  // rates and throughput: more is better (before the times: "…PerSecond" is no duration)
  { test: /(?:^p|P)erSecond|PerServerCpuSecond|^fps$|VsCurl$|^oneCoreCeiling$/, better: 'higher' },
  // costs: a duration, CPU, time a call, memory, bytes
  {
    test: /Ms$|^ms$|MsWhileRead$|[cC]pu(?:Peak)?Percent(?:Max)?$|[uU]sPerRequest$|[nN]sPerSample$|(?:MiB|MB|KB)$|Bytes$|^bytesPer|Seconds$/,
    better: 'lower',
  },
];

/**
 * 'higher', 'lower' or null (not known) for the figure at `key` ("a.b.c"): the benchmark's declaration (`better`,
 * exact path first, then the longest `prefix.*`), else the unit of its last name.
 */
export function directionOf(key, better = {}) {
  if (Object.hasOwn(better, key)) return better[key] === 'none' ? null : better[key];
  let best = null;
  for (const [pattern, direction] of Object.entries(better)) {
    if (!pattern.endsWith('.*')) continue;
    const prefix = pattern.slice(0, -1);
    if (key.startsWith(prefix) && (best === null || prefix.length > best.prefix.length)) best = { prefix, direction };
  }
  if (best !== null) return best.direction === 'none' ? null : best.direction;
  const last = key.split('.').pop() ?? '';
  if (ENVIRONMENT.test(last)) return null;
  for (const unit of UNITS) if (unit.test.test(last)) return unit.better;
  return null;
}

/** what says where a result was taken: the commit and the machine (cpu model, cores, node) */
export function provenance(result) {
  const m = result?.machine ?? {};
  return {
    commit: typeof result?.commit === 'string' ? result.commit.slice(0, 10) : null,
    dirty: result?.dirty ?? null,
    date: result?.date ?? null,
    machine: `${m.cpuModel ?? '?'}, ${m.cpus ?? '?'} cores, node ${m.node ?? '?'}, ${m.platform ?? '?'}`,
  };
}

/**
 * One benchmark's run (`now`, a result file's content) against its stored result (`stored`). Returns every compared
 * figure, those worse by more than `tolerance`, those not compared (direction unknown, not a number, or missing from
 * one side), and whether the two were taken on the same kind of machine.
 */
export function compareResult(stored, now, tolerance = TOLERANCE) {
  const better = { ...(stored?.better ?? {}), ...(now?.better ?? {}) };
  const before = flatten(stored?.results ?? {});
  const after = flatten(now?.results ?? {});
  const compared = [];
  const notCompared = [];
  for (const [key, was] of before) {
    const is = after.get(key);
    if (typeof was !== 'number' || !Number.isFinite(was)) continue;
    if (typeof is !== 'number' || !Number.isFinite(is)) {
      notCompared.push({ key, reason: is === undefined ? 'not in this run' : 'not a number in this run' });
      continue;
    }
    const direction = directionOf(key, better);
    if (direction === null) {
      notCompared.push({ key, reason: 'direction unknown' });
      continue;
    }
    // the change as the share by which the figure got worse (negative: better)
    let worse;
    if (was === 0) worse = is === 0 ? 0 : direction === 'lower' ? (is > 0 ? Infinity : -Infinity) : is < 0 ? Infinity : -Infinity;
    else worse = direction === 'higher' ? (was - is) / Math.abs(was) : (is - was) / Math.abs(was);
    compared.push({ key, direction, stored: was, now: is, worsePercent: Math.round(worse * 1000) / 10, regressed: worse > tolerance });
  }
  const a = provenance(stored);
  const b = provenance(now);
  // the machine is shared: its load says how far to trust a difference (benchmarks that record it)
  const loadOf = (r) => {
    const x = r?.results?.loadAverage1m;
    return typeof x === 'number' ? x : null;
  };
  return {
    name: now?.name ?? stored?.name ?? null,
    load: loadOf(stored) === null || loadOf(now) === null ? null : { stored: loadOf(stored), now: loadOf(now) },
    stored: a,
    now: b,
    sameMachine: a.machine === b.machine,
    compared,
    regressions: compared.filter((c) => c.regressed),
    notCompared,
  };
}

/** The report's lines for the comparisons of a run (compareResult's answers), regressions named one by one. */
export function formatComparison(comparisons, tolerance = TOLERANCE) {
  const lines = [];
  const pct = (x) => (Number.isFinite(x) ? `${x > 0 ? '+' : ''}${x}%` : x > 0 ? 'from 0' : 'to 0');
  for (const c of comparisons) {
    lines.push(
      `${c.name}: stored ${c.stored.commit ?? '?'}${c.stored.dirty ? ' (dirty)' : ''} on ${c.stored.machine}; now ${c.now.commit ?? '?'}${c.now.dirty ? ' (dirty)' : ''} on ${c.now.machine}`,
    );
    if (!c.sameMachine) lines.push(`  not the same machine: the figures may differ for that alone`);
    if (c.load !== null) lines.push(`  the machine's load average (1 min) at the end of each: stored ${c.load.stored}, now ${c.load.now}`);
    for (const r of c.regressions) lines.push(`  WORSE ${r.key}: ${r.stored} -> ${r.now} (${pct(r.worsePercent)} worse, ${r.direction} is better)`);
    lines.push(
      `  ${c.compared.length} figures compared, ${c.regressions.length} worse by more than ${Math.round(tolerance * 100)}%, ${c.notCompared.length} not compared`,
    );
  }
  return lines;
}
