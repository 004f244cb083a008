// Rule configurations: every kind parses, and a bad one is rejected with the path of the field at fault.
import { describe, expect, test } from '@jest/globals';
import { isLabtraceError } from '@labtrace/protocols';
import { RuleEngine } from '../../src/inspection/engine.js';
import { RULE_KINDS, parseRules } from '../../src/inspection/rules.js';

const GOOD = [
  { id: 'force-limits', kind: 'limits', severity: 'alarm', instrument: 'utm-1', channel: 'force', low: 0, warnLow: 1, warnHigh: 45, high: 50 },
  { id: 'force-rate', kind: 'rate-of-change', severity: 'warning', channel: 'force', maxPerSecond: 10 },
  { id: 'force-stuck', kind: 'stuck', severity: 'alarm', channel: 'force', periodMs: 5000, epsilon: 0.001 },
  {
    id: 'temp-drift',
    kind: 'drift',
    severity: 'warning',
    channel: 'temperature',
    reference: 'temperature-ref',
    maxDifference: 0.5,
    windowMs: 10_000,
  },
  { id: 'force-gap', kind: 'missing-data', severity: 'critical', channel: 'force', maxGapMs: 2000 },
  { id: 'quality', kind: 'quality', severity: 'info', minimum: 'uncertain' },
  { id: 'utm-calibration', kind: 'instrument-status', severity: 'critical', instrument: 'utm-1', autoClear: true },
];

/** The message of the E_CONFIG error parseRules throws for `input`. */
function rejection(input: unknown): string {
  try {
    parseRules(input, 'method ISO 6892-1 rules');
  } catch (err) {
    if (isLabtraceError(err) && err.code === 'E_CONFIG') return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('parseRules', () => {
  test('accepts one rule of every kind, unchanged', () => {
    const rules = parseRules(GOOD);
    expect(rules).toEqual(GOOD);
    expect(rules.map((r) => r.kind).sort()).toEqual([...RULE_KINDS].sort());
  });

  test.each([
    ['an unknown kind', { ...GOOD[0], kind: 'limit' }, 'method ISO 6892-1 rules: [0].kind: '],
    ['a missing parameter', { id: 'g', kind: 'missing-data', severity: 'alarm', channel: 'force' }, '[0].maxGapMs: '],
    ['a negative rate', { ...GOOD[1], maxPerSecond: -1 }, '[0].maxPerSecond: '],
    ['an unknown severity', { ...GOOD[2], severity: 'fatal' }, '[0].severity: '],
    ['a stray field', { ...GOOD[4], maxGap: 3 }, '[0]: Unrecognized key: "maxGap"'],
    ['a fractional period', { ...GOOD[2], periodMs: 1.5 }, '[0].periodMs: '],
    ['a bad id', { ...GOOD[5], id: 'has space' }, '[0].id: expected letters, digits'],
    [
      'limits without a bound',
      { id: 'l', kind: 'limits', severity: 'alarm', channel: 'force' },
      '[0].high: expected at least one of low, high, warnLow, warnHigh',
    ],
    ['low above high', { ...GOOD[0], low: 60 }, '[0].high: expected low < high (60 >= 50)'],
    ['a warning band outside the limits', { ...GOOD[0], warnHigh: 55 }, '[0].warnHigh: expected warnHigh < high (55 >= 50)'],
    ['instrument-status without its instrument', { id: 'c', kind: 'instrument-status', severity: 'critical' }, '[0].instrument: '],
    ['a quality minimum of bad', { ...GOOD[5], minimum: 'bad' }, '[0].minimum: '],
  ])('rejects %s, naming the field', (_what, rule, expected) => {
    expect(rejection([rule])).toContain(expected);
  });

  test('lists every problem, each with its path, and duplicate ids', () => {
    const message = rejection([GOOD[0], { ...GOOD[1], maxPerSecond: 'fast' }, { ...GOOD[2], id: 'force-limits', periodMs: 0 }]);
    const lines = message.split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^method ISO 6892-1 rules: \[1\]\.maxPerSecond: /),
      expect.stringMatching(/^method ISO 6892-1 rules: \[2\]\.periodMs: /),
    ]);
    expect(rejection([GOOD[0], { ...GOOD[2], id: 'force-limits' }])).toBe(
      'method ISO 6892-1 rules: [1].id: duplicate rule id "force-limits" (also [0])',
    );
  });

  test('an instrument-status rule needs a status provider', () => {
    expect(() => new RuleEngine(parseRules(GOOD))).toThrow('rule utm-calibration: instrument-status needs an instrument status provider');
  });
});
