// The shapes that join the lab's features: a run's results (computed from its records), the
// accreditation scope check they are flagged by, and what certificates read of both. Each feature
// implements or consumes these; none reaches into another's tables.

/** one contribution to a result's uncertainty budget (GUM): a standard uncertainty in the result's unit */
export interface UncertaintyComponent {
  /** calibration (the instrument's calibration certificate), resolution, repeatability, or a method-defined source */
  source: string;
  /** what it is, in words a report can print: "calibration certificate C-123 of instrument utm-1, U = 0.5 N (k = 2)" */
  description: string;
  /** the distribution the value was divided by to get u: normal (U/k), rectangular (a/sqrt 3) */
  distribution: 'normal' | 'rectangular' | 'statistical';
  /** the standard uncertainty u(x), in the result's unit */
  standardUncertainty: number;
}

export interface ResultUncertainty {
  /** combined standard uncertainty u_c (root sum of squares of the budget) */
  combined: number;
  /** expanded uncertainty U = k x u_c */
  expanded: number;
  coverageFactor: number;
  /** about 0.95 for k = 2 */
  coverageProbability: number;
  budget: UncertaintyComponent[];
}

export type DecisionRuleKind = 'simple-acceptance' | 'guarded-acceptance';

/** the statement of conformity of one result, with the rule it was decided by (ILAC-G8) */
export interface Conformity {
  verdict: 'pass' | 'fail';
  rule: DecisionRuleKind;
  /** the rule in words, as the certificate prints it */
  ruleText: string;
  /** the specification limits of the method */
  limits: { min?: number; max?: number };
  /** the acceptance zone after any guard band (equal to the limits under simple acceptance) */
  acceptance: { min?: number; max?: number };
}

/** the verdict of the accreditation scope on one result */
export type ScopeVerdict = { accredited: true; accreditation: { body: string; number: string } } | { accredited: false; reason: string };

/** Whether a result lies inside the lab's accreditation scope at a time: method and range, computed. */
export interface ScopeCheck {
  covers(query: { standard: string; measurand: string; unit: string; value: number; at: number }): Promise<ScopeVerdict>;
}

export interface RunResult {
  /** the result's name in the method: "Fm", "Rm", "mean-soak-temperature" */
  name: string;
  /** what it is in words: "maximum force" */
  title: string;
  measurand: string;
  unit: string;
  /** how it is derived from the measurand's samples: max, min, mean, ... */
  statistic: string;
  value: number;
  /** the value as reported: rounded to the decimal place of `reportedUncertainty` (protocols' roundResult) */
  reported: string;
  /** U as reported: rounded up to two significant digits; every view and the report show these two strings */
  reportedUncertainty: string;
  uncertainty: ResultUncertainty;
  /** null when the method sets no limit on the result */
  conformity: Conformity | null;
  /** the instruments whose samples the result comes from */
  instruments: string[];
  /** how many samples it is computed from */
  sampleCount: number;
  accredited: boolean;
  /** the accreditation that covers it; absent when it is not accredited */
  accreditation?: { body: string; number: string };
  /** why it is not accredited; absent when it is */
  scopeNote?: string;
  /** what the report should say about how it was computed: samples left out, a contribution missing */
  notes?: string[];
}

export interface RunResults {
  run: string;
  method: { id: string; version: number; standard: string };
  computedAt: number;
  /** the records the results are derived from: their count and a digest binding them (docs/test-runs.md) */
  records: { count: number; digest: string; digestAlgorithm: string };
  results: RunResult[];
  /** pass when every result with a conformity statement passes, fail when any fails, no-decision without any */
  verdict: 'pass' | 'fail' | 'no-decision';
  /** true only when every result is accredited (by one and the same accreditation) */
  accredited: boolean;
  /** the accreditation whose mark and number a certificate of these results may carry; absent unless accredited */
  accreditation?: { body: string; number: string };
  /** results the method defines that the run's records could not give (no sample of the measurand) */
  missing?: string[];
}

/** Where certificates and the API read a run's results from. */
export interface RunResultsSource {
  /** the results of a completed run; undefined when the run is unknown or not completed */
  resultsOf(runId: string): Promise<RunResults | undefined>;
}
