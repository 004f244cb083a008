// The inspection rules a method configures: what each kind checks on the live stream, parsed at the
// boundary so that a bad configuration is rejected with the path of the field at fault.
import { z } from 'zod';
import { wellFormed } from './text.js';

export const SEVERITIES = ['info', 'warning', 'alarm', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Higher is worse; used to escalate an open alarm and to compare with a threshold. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { info: 1, warning: 2, alarm: 3, critical: 4 };

const name = wellFormed(z.string().min(1).max(200), false);
const finite = z.number().finite();
const positiveMs = z
  .number()
  .int()
  .positive()
  .max(7 * 24 * 3_600_000);

const base = {
  id: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected letters, digits, ".", "_" or "-"'),
  severity: z.enum(SEVERITIES),
  /** only samples of this instrument; without it the rule applies to the channel of every instrument */
  instrument: name.optional(),
  /** when the condition returns to normal and the alarm has been acknowledged, clear it without a person */
  autoClear: z.boolean().optional(),
};

export const limitsRuleSchema = z
  .strictObject({
    ...base,
    kind: z.literal('limits'),
    channel: name,
    low: finite.optional(),
    high: finite.optional(),
    warnLow: finite.optional(),
    warnHigh: finite.optional(),
    /** severity of a value in a warning band (between warnHigh and high, or warnLow and low) */
    warnSeverity: z.enum(SEVERITIES).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.low === undefined && r.high === undefined && r.warnLow === undefined && r.warnHigh === undefined) {
      ctx.addIssue({ code: 'custom', path: ['high'], message: 'expected at least one of low, high, warnLow, warnHigh' });
    }
    const ordered = (lo: number | undefined, hi: number | undefined, loName: string, hiName: string, path: string): void => {
      if (lo !== undefined && hi !== undefined && lo >= hi) {
        ctx.addIssue({ code: 'custom', path: [path], message: `expected ${loName} < ${hiName} (${lo} >= ${hi})` });
      }
    };
    ordered(r.low, r.high, 'low', 'high', 'high');
    ordered(r.low, r.warnLow, 'low', 'warnLow', 'warnLow');
    ordered(r.warnHigh, r.high, 'warnHigh', 'high', 'warnHigh');
    ordered(r.warnLow, r.warnHigh, 'warnLow', 'warnHigh', 'warnHigh');
  });

export const rateOfChangeRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('rate-of-change'),
  channel: name,
  /** largest allowed |Δvalue| per second between consecutive samples, in the channel's unit */
  maxPerSecond: finite.positive(),
});

export const stuckRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('stuck'),
  channel: name,
  /** the value stays within ±epsilon of where it last moved for this long */
  periodMs: positiveMs,
  epsilon: finite.nonnegative().optional(),
});

export const driftRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('drift'),
  channel: name,
  /** the reference channel, on the same instrument unless referenceInstrument names another */
  reference: name,
  referenceInstrument: name.optional(),
  /** largest allowed mean of (value - reference) over the window, in the channel's unit */
  maxDifference: finite.positive(),
  windowMs: positiveMs,
});

export const missingDataRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('missing-data'),
  channel: name,
  maxGapMs: positiveMs,
});

export const qualityRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('quality'),
  /** without a channel: every channel (of the instrument, when one is named) */
  channel: name.optional(),
  /** the worst quality accepted: 'good' raises on uncertain and bad, 'uncertain' only on bad */
  minimum: z.enum(['uncertain', 'good']),
});

export const instrumentStatusRuleSchema = z.strictObject({
  ...base,
  kind: z.literal('instrument-status'),
  instrument: name,
});

export const ruleSchema = z.discriminatedUnion('kind', [
  limitsRuleSchema,
  rateOfChangeRuleSchema,
  stuckRuleSchema,
  driftRuleSchema,
  missingDataRuleSchema,
  qualityRuleSchema,
  instrumentStatusRuleSchema,
]);

/** The rules of one method: ids are unique, as alarms and audit entries name their rule by id. */
export const ruleSetSchema = z.array(ruleSchema).superRefine((rules, ctx) => {
  const seen = new Map<string, number>();
  rules.forEach((rule, i) => {
    const first = seen.get(rule.id);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate rule id "${rule.id}" (also [${first}])` });
    else seen.set(rule.id, i);
  });
});

export type Rule = z.output<typeof ruleSchema>;
export type RuleKind = Rule['kind'];
export type RuleOf<K extends RuleKind> = Extract<Rule, { kind: K }>;
export const RULE_KINDS = [
  'limits',
  'rate-of-change',
  'stuck',
  'drift',
  'missing-data',
  'quality',
  'instrument-status',
] as const satisfies readonly RuleKind[];
