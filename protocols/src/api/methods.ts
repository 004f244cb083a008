// Test methods in versions (ISO/IEC 17025 7.2): what a run measures, the results it reports with their
// uncertainty, the limits and decision rule of a statement of conformity, and the live inspection rules.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema, msSchema, pageOf, pageQuery, reasonSchema } from './common.js';
import { ruleSetSchema } from './inspection-rules.js';
import { line, optionalLine } from './text.js';

const measurand = z.strictObject({
  name: idSchema,
  unit: optionalLine(32),
  /** the instrument channel the measurand is read from */
  channel: idSchema,
});

const limit = z
  .strictObject({ measurand: idSchema, min: z.number().finite().optional(), max: z.number().finite().optional() })
  .refine((l) => l.min !== undefined || l.max !== undefined, { message: 'give min, max or both' })
  .refine((l) => l.min === undefined || l.max === undefined || l.min <= l.max, { message: 'min is above max', path: ['min'] });

const decisionRule = z.discriminatedUnion('kind', [
  // ILAC-G8 simple acceptance: the measured value against the limit, uncertainty stated beside it
  z.strictObject({ kind: z.literal('simple-acceptance') }),
  // guarded acceptance: the acceptance zone shrinks by w = factor x U (ILAC-G8 4.2.3)
  z.strictObject({ kind: z.literal('guarded-acceptance'), guardBandFactor: z.number().positive().max(10) }),
]);

export const RESULT_STATISTICS = ['max', 'min', 'mean', 'first', 'last', 'range'] as const;

/** a result the method derives from a measurand's samples, with what its uncertainty budget needs */
const resultDefinition = z.strictObject({
  /** the result's symbol or name as the report prints it: "Fm", "Rm", "mean-soak-temperature" */
  name: idSchema,
  title: line(200),
  measurand: idSchema,
  statistic: z.enum(RESULT_STATISTICS),
  /** only the samples taken inside this window, in ms after the run started (a soak, a hold) */
  window: z
    .strictObject({ fromMs: z.number().int().min(0).default(0), toMs: z.number().int().min(1).optional() })
    .refine((w) => w.toMs === undefined || w.toMs > w.fromMs, { message: 'toMs must be after fromMs', path: ['toMs'] })
    .optional(),
  /** a conversion of the statistic into the result: y = factor x statistic, in `unit` (Rm = Fm / S0) */
  scale: z
    .strictObject({
      factor: z
        .number()
        .finite()
        .refine((f) => f !== 0, 'must not be 0'),
      unit: optionalLine(32),
      /** what the factor is: "1 / S0, S0 = 78.54 mm2 measured with calliper C-7" */
      description: line(200),
      /** the relative standard uncertainty of the factor (0.002 for 0.2 %) */
      relativeUncertainty: z.number().min(0).max(1).default(0),
    })
    .optional(),
  /** the resolution of the indication, in the measurand's unit: a rectangular contribution of resolution / (2 sqrt 3) */
  resolution: z.number().finite().positive().optional(),
  /** the repeatability standard deviation from the method's validation, in the measurand's unit */
  repeatability: z.number().finite().positive().optional(),
  /** the specification limits of the result, in its unit: what the decision rule judges */
  limits: z
    .strictObject({ min: z.number().finite().optional(), max: z.number().finite().optional() })
    .refine((l) => l.min !== undefined || l.max !== undefined, { message: 'give min, max or both' })
    .refine((l) => l.min === undefined || l.max === undefined || l.min <= l.max, { message: 'min is above max', path: ['min'] })
    .optional(),
});
export type ResultDefinition = z.output<typeof resultDefinition>;

/** what a method version defines; stored as JSON and validated again whenever it is read back */
export const methodDefinition = z
  .strictObject({
    measurands: z.array(measurand).min(1).max(64),
    /** instrument types the method needs: each must be met by an assigned instrument (its identity's kind, else its model) */
    instrumentTypes: z.array(line(64)).max(16).default([]),
    limits: z.array(limit).max(64).default([]),
    decisionRule,
    /** the results a run of the method reports, each with its uncertainty and, with limits, a statement of conformity */
    results: z.array(resultDefinition).max(32, 'at most 32 results').default([]),
    /** inspection rules checked on the live stream while a run of the method is running (docs/inspection.md) */
    rules: ruleSetSchema.max(64, 'at most 64 rules').optional(),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.measurands.forEach((x, i) => {
      if (names.has(x.name)) ctx.addIssue({ code: 'custom', path: ['measurands', i, 'name'], message: `"${x.name}" appears twice` });
      names.add(x.name);
    });
    const results = new Set<string>();
    m.results.forEach((r, i) => {
      if (!names.has(r.measurand))
        ctx.addIssue({ code: 'custom', path: ['results', i, 'measurand'], message: `"${r.measurand}" is not a measurand of the method` });
      if (results.has(r.name)) ctx.addIssue({ code: 'custom', path: ['results', i, 'name'], message: `"${r.name}" appears twice` });
      results.add(r.name);
    });
    m.limits.forEach((l, i) => {
      if (!names.has(l.measurand))
        ctx.addIssue({ code: 'custom', path: ['limits', i, 'measurand'], message: `"${l.measurand}" is not a measurand of the method` });
    });
  });
export type MethodDefinition = z.output<typeof methodDefinition>;

const methodFields = {
  /** the standard with its edition, as the report names it: "ISO 6892-1:2019", "ASTM E8/E8M-22" */
  standard: line(100),
  title: line(200),
  definition: methodDefinition,
};

export const methodInput = z.strictObject({ id: idSchema, ...methodFields });
export const methodVersionInput = z.strictObject({ ...methodFields, reason: reasonSchema });

export const methodSchema = z.strictObject({
  id: z.string(),
  version: z.number().int(),
  standard: z.string(),
  title: z.string(),
  definition: methodDefinition,
  createdBy: z.string(),
  createdAt: msSchema,
  /** whether every measurand of the method lies in the scope of one active accreditation now (docs/accreditation.md) */
  accredited: z.boolean(),
});
export type Method = z.output<typeof methodSchema>;
export type MethodLimit = MethodDefinition['limits'][number];
export type MethodRule = NonNullable<MethodDefinition['rules']>[number];

/** The methods list: one item per method in its newest version, newest method first, a page at a time. */
export const methodListQuery = z.strictObject({
  ...pageQuery,
  /** a text found in the method's id, standard or title (of its newest version) */
  q: optionalLine(200).optional(),
});
export type MethodListQuery = z.output<typeof methodListQuery>;

/** every method, each in its newest version (its versions: GET /api/methods/:id) */
export const listMethods = defineRoute({ method: 'GET', path: '/api/methods', query: methodListQuery, response: pageOf(methodSchema) });
/** every version of a method, oldest first */
export const getMethod = defineRoute({ method: 'GET', path: '/api/methods/:id', params: idParams, response: z.array(methodSchema) });
export const createMethod = defineRoute({ method: 'POST', path: '/api/methods', body: methodInput, response: methodSchema });
export const addMethodVersion = defineRoute({
  method: 'POST',
  path: '/api/methods/:id/versions',
  params: idParams,
  body: methodVersionInput,
  response: methodSchema,
});
