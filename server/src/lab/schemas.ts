// The shapes of lab records as they arrive over the API: samples received, test methods, test runs.
import { z } from 'zod';
import { idSchema } from '@labtrace/protocols';
import { ruleSetSchema } from '../inspection/rules.js';

const text = (max: number) => z.string().trim().min(1, 'required').max(max, `at most ${max} characters`);
const reason = text(500);

export const labSampleInput = z.strictObject({
  /** the lab's identifier of the item, as written on its label */
  id: idSchema,
  organization: idSchema,
  description: text(1000),
  /** condition on receipt (7.4.3), including any deviation from the specified condition */
  condition: text(1000),
  /** ms since the epoch */
  receivedAt: z.number().int().min(0),
});
export type LabSampleInput = z.output<typeof labSampleInput>;

const measurand = z.strictObject({
  name: idSchema,
  unit: z.string().max(32),
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

/** what a method version defines; stored as JSON and validated again whenever it is read back */
export const methodDefinition = z
  .strictObject({
    measurands: z.array(measurand).min(1).max(64),
    /** instrument types the method needs: each must be met by an assigned instrument (its identity's kind, else its model) */
    instrumentTypes: z.array(z.string().trim().min(1).max(64)).max(16).default([]),
    limits: z.array(limit).max(64).default([]),
    decisionRule,
    /** inspection rules checked on the live stream while a run of the method is running (docs/inspection.md) */
    rules: ruleSetSchema.max(64, 'at most 64 rules').optional(),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.measurands.forEach((x, i) => {
      if (names.has(x.name)) ctx.addIssue({ code: 'custom', path: ['measurands', i, 'name'], message: `"${x.name}" appears twice` });
      names.add(x.name);
    });
    m.limits.forEach((l, i) => {
      if (!names.has(l.measurand))
        ctx.addIssue({ code: 'custom', path: ['limits', i, 'measurand'], message: `"${l.measurand}" is not a measurand of the method` });
    });
  });
export type MethodDefinition = z.output<typeof methodDefinition>;

const methodFields = {
  /** the standard with its edition, as the report names it: "ISO 6892-1:2019", "ASTM E8/E8M-22" */
  standard: text(100),
  title: text(200),
  definition: methodDefinition,
};

export const methodInput = z.strictObject({ id: idSchema, ...methodFields });
export const methodVersionInput = z.strictObject({ ...methodFields, reason });

export const runInput = z.strictObject({
  sample: idSchema,
  method: idSchema,
  /** the method version; the newest when absent */
  methodVersion: z.number().int().min(1).optional(),
  instruments: z
    .array(idSchema)
    .min(1)
    .max(16)
    .refine((a) => new Set(a).size === a.length, { message: 'an instrument appears twice' }),
  /** the technician who performs the run; the caller when absent */
  technician: idSchema.optional(),
});
export type RunInput = z.output<typeof runInput>;

export const startInput = z.strictObject({ reason: reason.optional() });
export const abortInput = z.strictObject({ reason });
/** acknowledging or clearing an inspection alarm: the reason is required */
export const alarmActionInput = z.strictObject({ reason });

export const instrumentStatusInput = z.strictObject({ status: z.enum(['in-service', 'out-of-service']), reason });
