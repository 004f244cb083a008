// Samples received for testing (ISO/IEC 17025 7.4).
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema, msSchema } from './common.js';
import { paragraph } from './text.js';
import { timeMs } from './time.js';

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

export const listSamples = defineRoute({ method: 'GET', path: '/api/lab-samples', response: z.array(labSampleSchema) });
export const getSample = defineRoute({ method: 'GET', path: '/api/lab-samples/:id', params: idParams, response: labSampleSchema });
export const createSample = defineRoute({ method: 'POST', path: '/api/lab-samples', body: labSampleInput, response: labSampleSchema });
