// The lab's accreditations (docs/accreditation.md): body, number, validity, status and scope, as the admin
// records them; the public's short view, which a certificate reader checks the mark with.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema, msSchema, reasonSchema } from './common.js';
import { line, optionalLine } from './text.js';
import { timeMs, timeMsQuery } from './time.js';

const text = line;
const instant = timeMs;
const reason = reasonSchema;

/** one line of an accreditation's scope: a measurand of a method (standard with edition), in a unit, over a range */
export const scopeEntrySchema = z
  .strictObject({
    /** the method's standard with its edition, spelled as methods name it: "ISO 6892-1:2019" */
    standard: text(100),
    /** the measurand as the method names it: "force", "Rm" */
    measurand: text(64),
    unit: optionalLine(32).transform((u) => u.trim()),
    /** the accredited range; either bound may be open */
    min: z.number().finite().optional(),
    max: z.number().finite().optional(),
    /** what the schedule of accreditation says in words: the material or product, the test */
    description: text(300).optional(),
  })
  .refine((e) => e.min === undefined || e.max === undefined || e.min <= e.max, { message: 'is above max', path: ['min'] });
export type ScopeEntry = z.output<typeof scopeEntrySchema>;

const scopeSchema = z
  .array(scopeEntrySchema)
  .min(1, 'at least one entry')
  .max(1000, 'at most 1000 entries')
  .superRefine((entries, ctx) => {
    const seen = new Set<string>();
    entries.forEach((e, i) => {
      const key = JSON.stringify([e.standard, e.measurand, e.unit]);
      if (seen.has(key))
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `${e.standard} ${e.measurand} [${e.unit}] appears twice; give one entry per measurand and unit`,
        });
      seen.add(key);
    });
  });

export const accreditationFields = {
  id: idSchema,
  /** the accreditation body: CNAS, A2LA, UKAS, DAkkS, ... */
  body: text(100),
  /** the lab's accreditation number with that body: "CNAS L1234" reads body CNAS, number L1234 */
  number: text(64),
  /** the standard the lab is accredited to */
  standard: text(100).default('ISO/IEC 17025:2017'),
  scope: scopeSchema,
};
export const validAfterFrom = (a: { validFrom: number; validTo: number }): boolean => a.validTo > a.validFrom;
export const validToIssue = { message: 'must be after validFrom', path: ['validTo'] };

export const accreditationInput = z
  .strictObject({ ...accreditationFields, validFrom: instant, validTo: instant })
  .refine(validAfterFrom, validToIssue);
export type AccreditationInput = z.output<typeof accreditationInput>;

export const ACCREDITATION_EVENT_KINDS = ['suspend', 'reinstate', 'withdraw'] as const;
export type AccreditationEventKind = (typeof ACCREDITATION_EVENT_KINDS)[number];

export const eventInput = z.strictObject({ kind: z.enum(ACCREDITATION_EVENT_KINDS), reason });
export type EventInput = z.output<typeof eventInput>;

/** a new version of the scope (an extension, a reduction, or both): the whole scope as it stands after the change */
export const scopeInput = z.strictObject({ scope: scopeSchema, reason });
export type ScopeInput = z.output<typeof scopeInput>;

export const ACCREDITATION_STATES = ['active', 'suspended', 'withdrawn', 'expired', 'not-yet-valid'] as const;
export type AccreditationState = (typeof ACCREDITATION_STATES)[number];

export const accreditationStateSchema = z.enum(ACCREDITATION_STATES);

/** `?at=` asks how things stood at an earlier (or later) time, in ms since the epoch */
export const atQuery = z.strictObject({ at: timeMsQuery.optional() });

const scopeEntryOut = z.strictObject({
  standard: z.string(),
  measurand: z.string(),
  unit: z.string(),
  min: z.number().optional(),
  max: z.number().optional(),
  description: z.string().optional(),
});

export const scopeVersionSchema = z.strictObject({
  version: z.number().int(),
  /** in force from: valid_from for version 1, the time it was recorded for later versions */
  effectiveFrom: msSchema,
  /** why it changed; null for the scope as granted */
  reason: z.string().nullable(),
  entries: z.array(scopeEntryOut),
  recordedBy: z.string(),
  recordedAt: msSchema,
});
export type ScopeVersion = z.output<typeof scopeVersionSchema>;

export const accreditationEventSchema = z.strictObject({
  id: z.number().int(),
  kind: z.enum(ACCREDITATION_EVENT_KINDS),
  at: msSchema,
  reason: z.string(),
  recordedBy: z.string(),
});

export const accreditationWarningSchema = z.strictObject({
  code: z.literal('expiring-soon'),
  message: z.string(),
  /** whole days (rounded up) until valid_to */
  daysLeft: z.number().int(),
});

/** an accreditation as it stood at a time: its record, computed status, warnings, scope in force and events so far */
export const accreditationSchema = z.strictObject({
  id: z.string(),
  body: z.string(),
  number: z.string(),
  standard: z.string(),
  validFrom: msSchema,
  validTo: msSchema,
  /** the time the view is computed for */
  at: msSchema,
  status: accreditationStateSchema,
  /** when the status began; null for not-yet-valid */
  statusSince: msSchema.nullable(),
  warnings: z.array(accreditationWarningSchema),
  scope: scopeVersionSchema,
  events: z.array(accreditationEventSchema),
  recordedBy: z.string(),
  recordedAt: msSchema,
});
export type Accreditation = z.output<typeof accreditationSchema>;

export const publicAccreditationSchema = z.strictObject({
  id: z.string(),
  body: z.string(),
  number: z.string(),
  standard: z.string(),
  status: accreditationStateSchema,
  statusSince: msSchema.nullable(),
  validFrom: msSchema,
  validTo: msSchema,
});
export type PublicAccreditation = z.output<typeof publicAccreditationSchema>;

export const publicAccreditation = defineRoute({
  method: 'GET',
  path: '/api/public/accreditation',
  query: atQuery,
  response: z.strictObject({ lab: z.string(), at: msSchema, accreditations: z.array(publicAccreditationSchema) }),
});
export const listAccreditations = defineRoute({
  method: 'GET',
  path: '/api/accreditations',
  query: atQuery,
  response: z.array(accreditationSchema),
});
export const getAccreditation = defineRoute({
  method: 'GET',
  path: '/api/accreditations/:id',
  params: idParams,
  query: atQuery,
  response: accreditationSchema.extend({ scopeVersions: z.array(scopeVersionSchema) }),
});
export const createAccreditation = defineRoute({
  method: 'POST',
  path: '/api/accreditations',
  body: accreditationInput,
  response: accreditationSchema,
});
export const accreditationEvent = defineRoute({
  method: 'POST',
  path: '/api/accreditations/:id/events',
  params: idParams,
  body: eventInput,
  response: accreditationSchema,
});
export const changeAccreditationScope = defineRoute({
  method: 'POST',
  path: '/api/accreditations/:id/scope',
  params: idParams,
  body: scopeInput,
  response: accreditationSchema,
});
