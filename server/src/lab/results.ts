// The results of a completed run: each result the method defines, derived from the run's signed records,
// with an expanded uncertainty from a GUM budget (the instrument's calibration, the resolution of its
// indication, repeatability) and, where the method sets limits, a statement of conformity by its decision
// rule (ILAC-G8). Results are computed once, when the run completes, and kept append-only with the digest
// of the records they come from: the RFC 6962 Merkle root of the records' leaf hashes, in the run's order,
// which anyone holding the run's export bundle can recompute.
import { LabtraceError, rootOf, roundResult, sha256, toHex } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Kysely } from 'kysely';
import type { Tables } from '../store/database.js';
import type { Calibration, CalibrationRecord } from './calibration.js';
import type { Conformity, ResultUncertainty, RunResult, RunResults, RunResultsSource, ScopeCheck, UncertaintyComponent } from './contracts.js';
import type { LabRecords } from './lab-records.js';
import type { Run, Runs } from './runs.js';
import type { MethodDefinition, ResultDefinition } from './schemas.js';

export const COVERAGE_FACTOR = 2;
export const COVERAGE_PROBABILITY = 0.95;
export const RECORDS_DIGEST_ALGORITHM = 'rfc6962-merkle-root-sha256';
const SYSTEM: Actor = { username: 'system', role: 'system' };

export const DECISION_RULE_TEXT = {
  'simple-acceptance':
    'ILAC-G8:09/2019 simple acceptance (shared risk): the measured value is compared with the specification limit; the expanded uncertainty is stated beside it and not subtracted',
  'guarded-acceptance': (factor: number) =>
    `ILAC-G8:09/2019 guarded acceptance: the acceptance zone lies inside the specification limits by a guard band w = ${factor} x U; a value inside the limits but within the guard band is not accepted`,
} as const;

/** One result as the method's data gives it, before uncertainty and decision. */
interface Observation {
  value: number;
  count: number;
  excluded: number;
  instruments: string[];
  /** standard deviation of the samples (for a mean) */
  stdDev: number;
}

/** The samples of one measurand that a result reads, grouped per instrument. */
interface Series {
  values: number[];
  ts: number[];
  instruments: string[];
  excluded: number;
}

/** The results with their reported strings from the one rounding, also those kept before it was the rule. */
function reportedOnce(results: RunResults): RunResults {
  return {
    ...results,
    results: results.results.map((r) => {
      const reported = roundResult(r.value, r.uncertainty.expanded);
      return { ...r, reported: reported.value, reportedUncertainty: reported.uncertainty };
    }),
  };
}

/** The statement of conformity of a value with expanded uncertainty U against limits, by the method's rule. */
export function decide(
  value: number,
  expanded: number,
  limits: { min?: number | undefined; max?: number | undefined },
  rule: MethodDefinition['decisionRule'],
): Conformity {
  const w = rule.kind === 'guarded-acceptance' ? rule.guardBandFactor * expanded : 0;
  const acceptance: { min?: number; max?: number } = {};
  if (limits.min !== undefined) acceptance.min = limits.min + w;
  if (limits.max !== undefined) acceptance.max = limits.max - w;
  const inside = (acceptance.min === undefined || value >= acceptance.min) && (acceptance.max === undefined || value <= acceptance.max);
  return {
    verdict: inside ? 'pass' : 'fail',
    rule: rule.kind,
    ruleText:
      rule.kind === 'guarded-acceptance' ? DECISION_RULE_TEXT['guarded-acceptance'](rule.guardBandFactor) : DECISION_RULE_TEXT['simple-acceptance'],
    limits: {
      ...(limits.min === undefined ? {} : { min: limits.min }),
      ...(limits.max === undefined ? {} : { max: limits.max }),
    },
    acceptance,
  };
}

/** Combines a budget: u_c = sqrt(sum u_i^2), U = k u_c. */
export function combine(budget: UncertaintyComponent[]): ResultUncertainty {
  const combined = Math.sqrt(budget.reduce((s, c) => s + c.standardUncertainty * c.standardUncertainty, 0));
  return { combined, expanded: COVERAGE_FACTOR * combined, coverageFactor: COVERAGE_FACTOR, coverageProbability: COVERAGE_PROBABILITY, budget };
}

/** The statistic of a series; the instruments are those of the sample that gives it (all, for a mean or range). */
export function observe(series: Series, statistic: ResultDefinition['statistic']): Observation | undefined {
  const n = series.values.length;
  if (n === 0) return undefined;
  let index = -1;
  let value: number;
  switch (statistic) {
    case 'max':
      index = series.values.reduce((best, v, i) => (v > (series.values[best] as number) ? i : best), 0);
      value = series.values[index] as number;
      break;
    case 'min':
      index = series.values.reduce((best, v, i) => (v < (series.values[best] as number) ? i : best), 0);
      value = series.values[index] as number;
      break;
    case 'first':
      index = 0;
      value = series.values[0] as number;
      break;
    case 'last':
      index = n - 1;
      value = series.values[n - 1] as number;
      break;
    case 'mean':
      value = series.values.reduce((s, v) => s + v, 0) / n;
      break;
    case 'range': {
      // a loop, not Math.max(...values): a long run has more samples than a call takes arguments
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of series.values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      value = hi - lo;
      break;
    }
  }
  const mean = series.values.reduce((s, v) => s + v, 0) / n;
  const stdDev = n > 1 ? Math.sqrt(series.values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const instruments = index >= 0 ? [series.instruments[index] as string] : [...new Set(series.instruments)].sort();
  return { value, count: n, excluded: series.excluded, instruments, stdDev };
}

export class RunResultsService implements RunResultsSource {
  private readonly computing = new Map<string, Promise<RunResults | undefined>>();

  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly runs: Pick<Runs, 'get' | 'eachRecord'>,
    private readonly records: Pick<LabRecords, 'method'>,
    private readonly calibration: Pick<Calibration, 'status' | 'calibrations'>,
    private readonly scope: ScopeCheck,
    private readonly now: () => number = Date.now,
  ) {}

  /** Computes and keeps the results of a run that has just completed; a second call returns the kept ones. */
  async onCompleted(run: Run): Promise<RunResults | undefined> {
    if (run.state !== 'completed') return undefined;
    return this.resultsOf(run.id);
  }

  /**
   * The results of a completed run: the kept ones, or computed now and kept. Nodes computing them at once keep
   * one: the first insert wins (the run is the key), the others find it and answer it; one audit entry.
   */
  async resultsOf(runId: string): Promise<RunResults | undefined> {
    // this node computes a run's results once at a time: the completion's listener and a reader share the work
    let pending = this.computing.get(runId);
    if (pending === undefined) {
      pending = this.keep(runId).finally(() => this.computing.delete(runId));
      this.computing.set(runId, pending);
    }
    return pending;
  }

  private async keep(runId: string): Promise<RunResults | undefined> {
    const kept = await this.kept(this.store, runId);
    if (kept) return kept;
    const run = await this.runs.get({ role: 'admin', organization: null }, runId);
    if (!run || run.state !== 'completed') return undefined;
    const results = await this.compute(run);
    return this.store.transaction().execute(async (trx) => {
      // PostgreSQL: an insert that meets another node's uncommitted one waits for it, then inserts nothing
      const inserted = await trx
        .insertInto('run_results')
        .values({ run: runId, computed_at: results.computedAt, results: JSON.stringify(results) })
        .onConflict((oc) => oc.column('run').doNothing())
        .returning('run')
        .executeTakeFirst();
      if (inserted === undefined) return (await this.kept(trx, runId)) as RunResults;
      await this.audit.recordIn(trx, SYSTEM, {
        action: 'create',
        recordType: 'run-results',
        recordId: runId,
        newValue: {
          verdict: results.verdict,
          accredited: results.accredited,
          records: results.records,
          results: results.results.map((r) => ({
            name: r.name,
            value: r.value,
            unit: r.unit,
            expanded: r.uncertainty.expanded,
            verdict: r.conformity?.verdict ?? null,
          })),
        },
      });
      return results;
    });
  }

  private async kept(db: Kysely<Tables>, runId: string): Promise<RunResults | undefined> {
    const row = await db.selectFrom('run_results').select('results').where('run', '=', runId).executeTakeFirst();
    return row === undefined ? undefined : reportedOnce(JSON.parse(row.results) as RunResults);
  }

  /** The results of a completed run, from its records as stored (not kept: see resultsOf). */
  async compute(run: Run): Promise<RunResults> {
    const method = await this.records.method(run.method.id, run.method.version);
    if (!method) throw new LabtraceError('E_STORE', `run ${run.id}: method ${run.method.id} v${run.method.version} is not stored`);
    const definition = method.definition;
    const channelOf = new Map(definition.measurands.map((m) => [m.name, m]));
    const wanted = new Map<string, ResultDefinition[]>();
    for (const r of definition.results) {
      const channel = channelOf.get(r.measurand)?.channel as string;
      wanted.set(channel, [...(wanted.get(channel) ?? []), r]);
    }
    const series = new Map<ResultDefinition, Series>(definition.results.map((r) => [r, { values: [], ts: [], instruments: [], excluded: 0 }]));
    const leaves: Uint8Array[] = [];
    const startedAt = run.startedAt ?? 0;
    await this.runs.eachRecord(run, (sample, leaf) => {
      leaves.push(sha256(leaf));
      const defs = wanted.get(sample.channel);
      if (defs === undefined) return true;
      for (const def of defs) {
        const s = series.get(def) as Series;
        const offset = sample.ts - startedAt;
        if (def.window && (offset < def.window.fromMs || (def.window.toMs !== undefined && offset > def.window.toMs))) continue;
        if (typeof sample.value !== 'number' || !Number.isFinite(sample.value) || sample.quality === 'bad') {
          s.excluded++;
          continue;
        }
        s.values.push(sample.value);
        s.ts.push(sample.ts);
        s.instruments.push(sample.instrument);
      }
      return true;
    });
    const results: RunResult[] = [];
    for (const def of definition.results) {
      const measurand = channelOf.get(def.measurand) as MethodDefinition['measurands'][number];
      const obs = observe(series.get(def) as Series, def.statistic);
      if (!obs) continue;
      results.push(await this.result(run, def, measurand, obs, definition.decisionRule));
    }
    const decided = results.filter((r) => r.conformity !== null);
    const accreditations = new Set(results.map((r) => (r.accreditation ? `${r.accreditation.body}\u0000${r.accreditation.number}` : '')));
    const accredited = results.length > 0 && results.every((r) => r.accredited) && accreditations.size === 1;
    const out: RunResults = {
      run: run.id,
      method: { ...run.method },
      computedAt: this.now(),
      records: { count: leaves.length, digest: toHex(rootOf(leaves)), digestAlgorithm: RECORDS_DIGEST_ALGORITHM },
      results,
      verdict: decided.length === 0 ? 'no-decision' : decided.every((r) => r.conformity?.verdict === 'pass') ? 'pass' : 'fail',
      accredited,
    };
    if (accredited && results[0]?.accreditation) out.accreditation = { ...results[0].accreditation };
    const missing = definition.results.filter((d) => !results.some((r) => r.name === d.name)).map((d) => d.name);
    if (missing.length > 0) out.missing = missing;
    return out;
  }

  private async result(
    run: Run,
    def: ResultDefinition,
    measurand: MethodDefinition['measurands'][number],
    obs: Observation,
    rule: MethodDefinition['decisionRule'],
  ): Promise<RunResult> {
    const factor = def.scale?.factor ?? 1;
    const unit = def.scale?.unit ?? measurand.unit;
    const value = obs.value * factor;
    const notes: string[] = [];
    const budget: UncertaintyComponent[] = [];
    // calibration: the largest contribution among the instruments the result comes from, as calibrated when the run started
    let calibration: UncertaintyComponent | undefined;
    for (const instrument of obs.instruments) {
      const c = await this.calibrationComponent(instrument, run.startedAt ?? 0, measurand.unit, obs.value, factor, notes);
      if (c && (!calibration || c.standardUncertainty > calibration.standardUncertainty)) calibration = c;
    }
    if (calibration) budget.push(calibration);
    if (def.resolution !== undefined)
      budget.push({
        source: 'resolution',
        description: `resolution of the indication ${def.resolution} ${measurand.unit}, rectangular over +/- half of it`,
        distribution: 'rectangular',
        standardUncertainty: (def.resolution / (2 * Math.sqrt(3))) * Math.abs(factor),
      });
    if (def.statistic === 'mean' && obs.count > 1)
      budget.push({
        source: 'repeatability',
        description: `standard deviation of the mean of ${obs.count} samples (s = ${round(obs.stdDev)} ${measurand.unit})`,
        distribution: 'statistical',
        standardUncertainty: (obs.stdDev / Math.sqrt(obs.count)) * Math.abs(factor),
      });
    else if (def.repeatability !== undefined)
      budget.push({
        source: 'repeatability',
        description: `repeatability standard deviation from the method's validation, ${def.repeatability} ${measurand.unit}`,
        distribution: 'statistical',
        standardUncertainty: def.repeatability * Math.abs(factor),
      });
    if (def.scale && def.scale.relativeUncertainty > 0)
      budget.push({
        source: 'conversion',
        description: `${def.scale.description}: relative standard uncertainty ${def.scale.relativeUncertainty}`,
        distribution: 'normal',
        standardUncertainty: def.scale.relativeUncertainty * Math.abs(value),
      });
    const uncertainty = combine(budget);
    const reported = roundResult(value, uncertainty.expanded);
    if (obs.excluded > 0) notes.push(`${obs.excluded} sample(s) of bad quality or without a numeric value were left out`);
    const scope = await this.scope.covers({
      standard: run.method.standard,
      measurand: measurand.name,
      unit: measurand.unit,
      value: obs.value,
      at: run.startedAt ?? 0,
    });
    const result: RunResult = {
      name: def.name,
      title: def.title,
      measurand: measurand.name,
      unit,
      statistic: def.statistic,
      value,
      reported: reported.value,
      reportedUncertainty: reported.uncertainty,
      uncertainty,
      conformity: def.limits ? decide(value, uncertainty.expanded, def.limits, rule) : null,
      instruments: obs.instruments,
      sampleCount: obs.count,
      accredited: scope.accredited,
    };
    if (scope.accredited) result.accreditation = { ...scope.accreditation };
    else result.scopeNote = scope.reason;
    if (notes.length > 0) result.notes = notes;
    return result;
  }

  /** The instrument's calibration as a normal contribution U/k, from the calibration in force at `at`. */
  private async calibrationComponent(
    instrument: string,
    at: number,
    unit: string,
    reading: number,
    factor: number,
    notes: string[],
  ): Promise<UncertaintyComponent | undefined> {
    const status = await this.calibration.status(instrument, at);
    if (!status.calibration) {
      notes.push(`instrument ${instrument} had no calibration record: no calibration contribution`);
      return undefined;
    }
    const record = (await this.calibration.calibrations(instrument)).find((c) => c.id === status.calibration?.id) as CalibrationRecord;
    const { value: U, unit: uUnit, k } = record.uncertainty;
    let u: number;
    if (uUnit === unit) u = U / k;
    else if (uUnit === '%') u = ((U / 100) * Math.abs(reading)) / k;
    else {
      notes.push(
        `calibration certificate ${record.certificate} of ${instrument} states its uncertainty in ${uUnit}, not ${unit}: no calibration contribution`,
      );
      return undefined;
    }
    return {
      source: 'calibration',
      description: `calibration of ${instrument}: certificate ${record.certificate} (${record.laboratory}), U = ${U} ${uUnit} (k = ${k})`,
      distribution: 'normal',
      standardUncertainty: u * Math.abs(factor),
    };
  }
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}
