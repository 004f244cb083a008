// Pieces every area of the API contract shares: identifiers, times, counts in queries, who acted.
import { z } from 'zod';
import { identitySchema, idSchema } from '../profile.js';
import { QUALITIES } from '../measurement.js';
import { paragraph } from './text.js';

export { idSchema };

/** a time in an answer: whole ms since the epoch (UTC) */
export const msSchema = z.number().int();
/** a reason a person gives for a change (required where a record changes) */
export const reasonSchema = paragraph(500);
/** the path parameter `:id` of most routes */
export const idParams = z.strictObject({ id: idSchema });

/** A whole number in a query string, between min and max, with a default when left out. */
export const queryInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** what a measured value may be */
export const sampleValueSchema = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export const qualitySchema = z.enum(QUALITIES);

/** one stored or live sample, as the API answers it */
export const liveSampleSchema = z.strictObject({
  gateway: z.string(),
  seq: z.number().int(),
  instrument: z.string(),
  channel: z.string(),
  ts: msSchema,
  value: sampleValueSchema,
  unit: z.string(),
  quality: qualitySchema,
});

export type LiveSample = z.output<typeof liveSampleSchema>;

/** the calibration status shown beside an instrument (ISO/IEC 17025 6.4.8) */
export const CALIBRATION_STATES = ['valid', 'due-soon', 'expired', 'out-of-service', 'never-calibrated'] as const;
export const calibrationBriefSchema = z.strictObject({ status: z.enum(CALIBRATION_STATES), dueAt: msSchema.nullable() });

/** an instrument's identity as its gateway announced it (maker, model, serial number, where it stands) */
export const instrumentIdentitySchema = identitySchema;
