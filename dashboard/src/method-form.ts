// A method as its form edits it: every field as typed (text), turned into the body the server takes with the same
// checks as the contract (protocols/src/api/methods.ts, inspection-rules.ts), each problem keyed by the path the
// server names in its 400 (`definition.rules[1].high`), so that a check here and a refusal there land beside the
// same field. The contract's schemas (zod) stay out of the page: the checks are written out here, and the server
// checks everything again.
import type { Method, MethodDefinition, Rule, RuleKind, Severity } from '@labtrace/protocols/api';

export const RULE_KIND_LIST = [
  'limits',
  'rate-of-change',
  'stuck',
  'drift',
  'missing-data',
  'quality',
  'instrument-status',
] as const satisfies readonly RuleKind[];
/** a compile error when the contract gains a rule kind this list lacks */
const _everyKind: Exclude<RuleKind, (typeof RULE_KIND_LIST)[number]> extends never ? true : never = true;
export const SEVERITY_LIST = ['info', 'warning', 'alarm', 'critical'] as const satisfies readonly Severity[];
export const STATISTIC_LIST = ['max', 'min', 'mean', 'first', 'last', 'range'] as const;
export const DECISION_RULES = ['simple-acceptance', 'guarded-acceptance'] as const;

/** the fields of a rule a kind takes, besides id, kind, severity, instrument and autoClear (inspection-rules.ts) */
export const RULE_FIELDS: Record<RuleKind, readonly RuleField[]> = {
  limits: ['channel', 'low', 'high', 'warnLow', 'warnHigh', 'warnSeverity'],
  'rate-of-change': ['channel', 'maxPerSecond'],
  stuck: ['channel', 'periodS', 'epsilon'],
  drift: ['channel', 'reference', 'referenceInstrument', 'maxDifference', 'windowS'],
  'missing-data': ['channel', 'maxGapS'],
  quality: ['channel', 'minimum'],
  'instrument-status': [],
};
export type RuleField =
  | 'channel'
  | 'low'
  | 'high'
  | 'warnLow'
  | 'warnHigh'
  | 'warnSeverity'
  | 'maxPerSecond'
  | 'periodS'
  | 'epsilon'
  | 'reference'
  | 'referenceInstrument'
  | 'maxDifference'
  | 'windowS'
  | 'maxGapS'
  | 'minimum';
/** the fields given in seconds on the form and in ms in the contract */
export const SECONDS_FIELDS: Partial<Record<RuleField, 'periodMs' | 'windowMs' | 'maxGapMs'>> = {
  periodS: 'periodMs',
  windowS: 'windowMs',
  maxGapS: 'maxGapMs',
};
/** the fields whose value is in the channel's unit */
export const IN_CHANNEL_UNIT: readonly RuleField[] = ['low', 'high', 'warnLow', 'warnHigh', 'epsilon', 'maxDifference'];

export interface RuleDraft {
  id: string;
  kind: RuleKind;
  severity: Severity;
  instrument: string;
  autoClear: boolean;
  channel: string;
  low: string;
  high: string;
  warnLow: string;
  warnHigh: string;
  warnSeverity: Severity | '';
  maxPerSecond: string;
  periodS: string;
  epsilon: string;
  reference: string;
  referenceInstrument: string;
  maxDifference: string;
  windowS: string;
  maxGapS: string;
  minimum: 'good' | 'uncertain';
}

export interface MeasurandDraft {
  name: string;
  unit: string;
  channel: string;
}
export interface LimitDraft {
  measurand: string;
  min: string;
  max: string;
}
/** a result: the fields the form edits; its window and scale are kept as they were (`kept`) */
export interface ResultDraft {
  name: string;
  title: string;
  measurand: string;
  statistic: (typeof STATISTIC_LIST)[number];
  resolution: string;
  repeatability: string;
  min: string;
  max: string;
  kept: Pick<MethodDefinition['results'][number], 'window' | 'scale'>;
}

export interface MethodDraft {
  id: string;
  standard: string;
  title: string;
  measurands: MeasurandDraft[];
  /** instrument types, one per line */
  instrumentTypes: string;
  limits: LimitDraft[];
  decisionRule: (typeof DECISION_RULES)[number];
  guardBandFactor: string;
  results: ResultDraft[];
  rules: RuleDraft[];
  /** why the method changes (a new version only) */
  reason: string;
}

const text = (n: number | undefined): string => (n === undefined ? '' : String(n));
const seconds = (ms: number | undefined): string => (ms === undefined ? '' : String(ms / 1000));

export function emptyRule(kind: RuleKind = 'limits', id = ''): RuleDraft {
  return {
    id,
    kind,
    severity: 'alarm',
    instrument: '',
    autoClear: false,
    channel: '',
    low: '',
    high: '',
    warnLow: '',
    warnHigh: '',
    warnSeverity: '',
    maxPerSecond: '',
    periodS: '',
    epsilon: '',
    reference: '',
    referenceInstrument: '',
    maxDifference: '',
    windowS: '',
    maxGapS: '',
    minimum: 'good',
  };
}

export function ruleDraft(rule: Rule): RuleDraft {
  const d = emptyRule(rule.kind, rule.id);
  d.severity = rule.severity;
  d.instrument = rule.instrument ?? '';
  d.autoClear = rule.autoClear ?? false;
  switch (rule.kind) {
    case 'limits':
      Object.assign(d, {
        channel: rule.channel,
        low: text(rule.low),
        high: text(rule.high),
        warnLow: text(rule.warnLow),
        warnHigh: text(rule.warnHigh),
      });
      d.warnSeverity = rule.warnSeverity ?? '';
      break;
    case 'rate-of-change':
      Object.assign(d, { channel: rule.channel, maxPerSecond: text(rule.maxPerSecond) });
      break;
    case 'stuck':
      Object.assign(d, { channel: rule.channel, periodS: seconds(rule.periodMs), epsilon: text(rule.epsilon) });
      break;
    case 'drift':
      Object.assign(d, {
        channel: rule.channel,
        reference: rule.reference,
        referenceInstrument: rule.referenceInstrument ?? '',
        maxDifference: text(rule.maxDifference),
        windowS: seconds(rule.windowMs),
      });
      break;
    case 'missing-data':
      Object.assign(d, { channel: rule.channel, maxGapS: seconds(rule.maxGapMs) });
      break;
    case 'quality':
      Object.assign(d, { channel: rule.channel ?? '', minimum: rule.minimum });
      break;
    case 'instrument-status':
      break;
  }
  return d;
}

export function emptyMethod(): MethodDraft {
  return {
    id: '',
    standard: '',
    title: '',
    measurands: [{ name: '', unit: '', channel: '' }],
    instrumentTypes: '',
    limits: [],
    decisionRule: 'simple-acceptance',
    guardBandFactor: '',
    results: [],
    rules: [],
    reason: '',
  };
}

/** The form of a method's version: to change it (the next version), or to start a new method from it. */
export function methodDraft(m: Method): MethodDraft {
  const d = m.definition;
  return {
    id: m.id,
    standard: m.standard,
    title: m.title,
    measurands: d.measurands.map((x) => ({ name: x.name, unit: x.unit ?? '', channel: x.channel })),
    instrumentTypes: d.instrumentTypes.join('\n'),
    limits: d.limits.map((l) => ({ measurand: l.measurand, min: text(l.min), max: text(l.max) })),
    decisionRule: d.decisionRule.kind,
    guardBandFactor: d.decisionRule.kind === 'guarded-acceptance' ? String(d.decisionRule.guardBandFactor) : '',
    results: d.results.map((r) => ({
      name: r.name,
      title: r.title,
      measurand: r.measurand,
      statistic: r.statistic,
      resolution: text(r.resolution),
      repeatability: text(r.repeatability),
      min: text(r.limits?.min),
      max: text(r.limits?.max),
      kept: { ...(r.window === undefined ? {} : { window: r.window }), ...(r.scale === undefined ? {} : { scale: r.scale }) },
    })),
    rules: (d.rules ?? []).map(ruleDraft),
    reason: '',
  };
}

/** a problem of the form: the field's path as the server names it, and the message's key with its parameters */
export interface Problem {
  path: string;
  key:
    | 'required'
    | 'badId'
    | 'badRuleId'
    | 'tooLong'
    | 'notNumber'
    | 'notPositive'
    | 'notWhole'
    | 'minAboveMax'
    | 'lowNotBelow'
    | 'oneLimit'
    | 'twice'
    | 'unknownMeasurand'
    | 'tooMany'
    | 'range'
    | 'control';
  params?: Record<string, string | number>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const WEEK_MS = 7 * 24 * 3_600_000;

/** The body of a method (or of its next version) from the form, or the problems that stop it, per field. */
export function methodBody(draft: MethodDraft, mode: 'create' | 'version'): { body?: Record<string, unknown>; problems: Problem[] } {
  const problems: Problem[] = [];
  const add = (path: string, key: Problem['key'], params?: Problem['params']): void => {
    problems.push(params === undefined ? { path, key } : { path, key, params });
  };
  /** a required line of text */
  const line = (path: string, value: string, max: number): string => {
    const v = value.trim();
    if (v === '') add(path, 'required');
    else if (v.length > max) add(path, 'tooLong', { max });
    else if (CONTROL.test(v)) add(path, 'control');
    return v;
  };
  const anId = (path: string, value: string): string => {
    const v = value.trim();
    if (v === '') add(path, 'required');
    else if (!ID.test(v)) add(path, 'badId');
    return v;
  };
  /** an optional finite number; undefined when empty or not a number (the problem noted) */
  const num = (path: string, value: string, check?: 'positive' | 'nonnegative'): number | undefined => {
    const v = value.trim();
    if (v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) {
      add(path, 'notNumber');
      return undefined;
    }
    if (check === 'positive' && !(n > 0)) add(path, 'notPositive');
    if (check === 'nonnegative' && n < 0) add(path, 'notPositive');
    return n;
  };
  const need = (path: string, value: string, check?: 'positive'): number | undefined => {
    if (value.trim() === '') {
      add(path, 'required');
      return undefined;
    }
    return num(path, value, check);
  };
  /** a duration typed in seconds, sent in whole ms (at most a week) */
  const ms = (path: string, value: string, required: boolean): number | undefined => {
    if (value.trim() === '') {
      if (required) add(path, 'required');
      return undefined;
    }
    const s = num(path, value, 'positive');
    if (s === undefined || !(s > 0)) return undefined;
    const n = Math.round(s * 1000);
    if (n < 1 || n > WEEK_MS) add(path, 'range', { min: 0.001, max: WEEK_MS / 1000 });
    return n;
  };

  const body: Record<string, unknown> = {};
  if (mode === 'create') body['id'] = anId('id', draft.id);
  body['standard'] = line('standard', draft.standard, 100);
  body['title'] = line('title', draft.title, 200);
  if (mode === 'version') body['reason'] = line('reason', draft.reason, 500);

  const D = 'definition';
  const names = new Set<string>();
  if (draft.measurands.length === 0) add(`${D}.measurands`, 'required');
  if (draft.measurands.length > 64) add(`${D}.measurands`, 'tooMany', { max: 64 });
  const measurands = draft.measurands.map((m, i) => {
    const at = `${D}.measurands[${i}]`;
    const name = anId(`${at}.name`, m.name);
    if (name !== '' && names.has(name)) add(`${at}.name`, 'twice', { name });
    names.add(name);
    const unit = m.unit.trim();
    if (unit.length > 32) add(`${at}.unit`, 'tooLong', { max: 32 });
    // the contract takes an empty unit (a count, a ratio), but not a missing one
    return { name, unit, channel: anId(`${at}.channel`, m.channel) };
  });
  const instrumentTypes = draft.instrumentTypes
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  instrumentTypes.forEach((s) => {
    if (s.length > 64) add(`${D}.instrumentTypes`, 'tooLong', { max: 64 });
  });
  if (instrumentTypes.length > 16) add(`${D}.instrumentTypes`, 'tooMany', { max: 16 });
  const known = (path: string, name: string): void => {
    if (name !== '' && !names.has(name)) add(path, 'unknownMeasurand', { name });
  };
  const limits = draft.limits.map((l, i) => {
    const at = `${D}.limits[${i}]`;
    const measurand = anId(`${at}.measurand`, l.measurand);
    known(`${at}.measurand`, measurand);
    const min = num(`${at}.min`, l.min);
    const max = num(`${at}.max`, l.max);
    if (l.min.trim() === '' && l.max.trim() === '') add(at, 'oneLimit');
    if (min !== undefined && max !== undefined && min > max) add(`${at}.min`, 'minAboveMax');
    return { measurand, ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) };
  });
  let decisionRule: Record<string, unknown> = { kind: 'simple-acceptance' };
  if (draft.decisionRule === 'guarded-acceptance') {
    const factor = need(`${D}.decisionRule.guardBandFactor`, draft.guardBandFactor, 'positive');
    if (factor !== undefined && factor > 10) add(`${D}.decisionRule.guardBandFactor`, 'range', { min: 0, max: 10 });
    decisionRule = { kind: 'guarded-acceptance', guardBandFactor: factor };
  }
  const resultNames = new Set<string>();
  if (draft.results.length > 32) add(`${D}.results`, 'tooMany', { max: 32 });
  const results = draft.results.map((r, i) => {
    const at = `${D}.results[${i}]`;
    const name = anId(`${at}.name`, r.name);
    if (name !== '' && resultNames.has(name)) add(`${at}.name`, 'twice', { name });
    resultNames.add(name);
    const measurand = anId(`${at}.measurand`, r.measurand);
    known(`${at}.measurand`, measurand);
    const resolution = num(`${at}.resolution`, r.resolution, 'positive');
    const repeatability = num(`${at}.repeatability`, r.repeatability, 'positive');
    const min = num(`${at}.limits.min`, r.min);
    const max = num(`${at}.limits.max`, r.max);
    if (min !== undefined && max !== undefined && min > max) add(`${at}.limits.min`, 'minAboveMax');
    return {
      name,
      title: line(`${at}.title`, r.title, 200),
      measurand,
      statistic: r.statistic,
      ...r.kept,
      ...(resolution === undefined ? {} : { resolution }),
      ...(repeatability === undefined ? {} : { repeatability }),
      ...(min === undefined && max === undefined ? {} : { limits: { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) } }),
    };
  });
  const ruleIds = new Map<string, number>();
  if (draft.rules.length > 64) add(`${D}.rules`, 'tooMany', { max: 64 });
  const rules = draft.rules.map((r, i) => {
    const at = `${D}.rules[${i}]`;
    const id = r.id.trim();
    if (id === '') add(`${at}.id`, 'required');
    else if (id.length > 100 || !RULE_ID.test(id)) add(`${at}.id`, 'badRuleId');
    else if (ruleIds.has(id)) add(`${at}.id`, 'twice', { name: id });
    else ruleIds.set(id, i);
    const rule: Record<string, unknown> = { id, kind: r.kind, severity: r.severity };
    const instrument = r.instrument.trim();
    if (r.kind === 'instrument-status') rule['instrument'] = line(`${at}.instrument`, r.instrument, 200);
    else if (instrument !== '') rule['instrument'] = line(`${at}.instrument`, r.instrument, 200);
    if (r.autoClear) rule['autoClear'] = true;
    const name = (field: 'channel' | 'reference' | 'referenceInstrument', required: boolean): void => {
      const v = r[field].trim();
      if (v === '' && !required) return;
      rule[field] = line(`${at}.${field}`, r[field], 200);
    };
    const put = (field: string, value: number | undefined): void => {
      if (value !== undefined) rule[field] = value;
    };
    switch (r.kind) {
      case 'limits': {
        name('channel', true);
        const low = num(`${at}.low`, r.low);
        const high = num(`${at}.high`, r.high);
        const warnLow = num(`${at}.warnLow`, r.warnLow);
        const warnHigh = num(`${at}.warnHigh`, r.warnHigh);
        if ([r.low, r.high, r.warnLow, r.warnHigh].every((v) => v.trim() === '')) add(`${at}.high`, 'oneLimit');
        const ordered = (lo: number | undefined, hi: number | undefined, loName: string, hiName: string, path: string): void => {
          if (lo !== undefined && hi !== undefined && lo >= hi) add(`${at}.${path}`, 'lowNotBelow', { low: loName, high: hiName });
        };
        ordered(low, high, 'low', 'high', 'high');
        ordered(low, warnLow, 'low', 'warnLow', 'warnLow');
        ordered(warnHigh, high, 'warnHigh', 'high', 'warnHigh');
        ordered(warnLow, warnHigh, 'warnLow', 'warnHigh', 'warnHigh');
        put('low', low);
        put('high', high);
        put('warnLow', warnLow);
        put('warnHigh', warnHigh);
        if (r.warnSeverity !== '') rule['warnSeverity'] = r.warnSeverity;
        break;
      }
      case 'rate-of-change':
        name('channel', true);
        put('maxPerSecond', need(`${at}.maxPerSecond`, r.maxPerSecond, 'positive'));
        break;
      case 'stuck':
        name('channel', true);
        put('periodMs', ms(`${at}.periodMs`, r.periodS, true));
        put('epsilon', num(`${at}.epsilon`, r.epsilon, 'nonnegative'));
        break;
      case 'drift':
        name('channel', true);
        name('reference', true);
        name('referenceInstrument', false);
        put('maxDifference', need(`${at}.maxDifference`, r.maxDifference, 'positive'));
        put('windowMs', ms(`${at}.windowMs`, r.windowS, true));
        break;
      case 'missing-data':
        name('channel', true);
        put('maxGapMs', ms(`${at}.maxGapMs`, r.maxGapS, true));
        break;
      case 'quality':
        name('channel', false);
        rule['minimum'] = r.minimum;
        break;
      case 'instrument-status':
        break;
    }
    return rule;
  });
  body['definition'] = {
    measurands,
    instrumentTypes,
    limits,
    decisionRule,
    results,
    ...(rules.length === 0 ? {} : { rules }),
  };
  return problems.length === 0 ? { body, problems } : { problems };
}

/** the form's path of a rule field the contract names in ms (`periodMs`) or directly */
export const rulePath = (index: number, field: RuleField): string => `definition.rules[${index}].${SECONDS_FIELDS[field] ?? field}`;
