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

// ---- Paging (every list of records: runs, certificates, samples, methods, instruments, users, audit trail,
// security events). Newest first; the cursor is the opaque position of the last item shown (the store's row id,
// never a timestamp: many entries may share a millisecond), and the next page starts just after it.

/** the largest page a list route answers */
export const PAGE_MAX = 500;
/** an opaque cursor: the position (a whole number in decimal) a previous page answered as `next` */
export const cursorSchema = z.string().regex(/^[0-9]{1,16}$/, 'expected the `next` cursor of a previous page');
/** the query fields of a paged list: merge them into the route's query object (`{ ...pageQuery, state: ... }`) */
export const pageQuery = {
  limit: queryInt(1, PAGE_MAX).default(50),
  cursor: cursorSchema.optional(),
};
/** A page of a list: its items, newest first, and the cursor of the next page (null on the last page). */
export const pageOf = <T extends z.ZodTypeAny>(item: T) => z.strictObject({ items: z.array(item), next: cursorSchema.nullable() });
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** the lists that announce changes over socket.io (`changed`), so that views re-read them instead of polling */
export const LIST_NAMES = [
  'runs',
  'certificates',
  'samples',
  'methods',
  'instruments',
  'users',
  'audit',
  'security-events',
  'alarms',
  'gateways',
  'accreditations',
  'calibrations',
  'shares',
] as const;
export type ListName = (typeof LIST_NAMES)[number];
