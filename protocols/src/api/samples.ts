// Samples received for testing (ISO/IEC 17025 7.4).
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema, msSchema, pageOf, pageQuery } from './common.js';
import { optionalLine, paragraph } from './text.js';
import { timeMs, timeMsQuery } from './time.js';

export const labSampleInput = z.strictObject({
  /** the lab's identifier of the item, as written on its label */
  id: idSchema,
  organization: idSchema,
  description: paragraph(1000),
  /** condition on receipt (7.4.3), including any deviation from the specified condition */
  condition: paragraph(1000),
  /** ms since the epoch */
  receivedAt: timeMs,
});
export type LabSampleInput = z.output<typeof labSampleInput>;

export const labSampleSchema = z.strictObject({
  id: z.string(),
  organization: z.string(),
  description: z.string(),
  condition: z.string(),
  receivedAt: msSchema,
  createdBy: z.string(),
  createdAt: msSchema,
});
export type LabSample = z.output<typeof labSampleSchema>;

/**
 * The samples list: newest first (by the order they were registered), a page at a time. `q` finds a text in the
 * sample's id, item description or customer organization; the filters narrow to one customer and a time of receipt.
 */
export const sampleListQuery = z
  .strictObject({
    ...pageQuery,
    /** a text found in the id, the description or the customer organization (case-insensitive for Latin letters) */
    q: optionalLine(200).optional(),
    /** only this customer organization's samples */
    organization: idSchema.optional(),
    /** received at or after (ms since the epoch) */
    receivedFrom: timeMsQuery.optional(),
    /** received at or before (ms since the epoch) */
    receivedTo: timeMsQuery.optional(),
  })
  .refine((q) => q.receivedFrom === undefined || q.receivedTo === undefined || q.receivedFrom <= q.receivedTo, {
    message: 'receivedTo is before receivedFrom',
    path: ['receivedTo'],
  });
export type SampleListQuery = z.output<typeof sampleListQuery>;

export const listSamples = defineRoute({ method: 'GET', path: '/api/lab-samples', query: sampleListQuery, response: pageOf(labSampleSchema) });
export const getSample = defineRoute({ method: 'GET', path: '/api/lab-samples/:id', params: idParams, response: labSampleSchema });
export const createSample = defineRoute({ method: 'POST', path: '/api/lab-samples', body: labSampleInput, response: labSampleSchema });
