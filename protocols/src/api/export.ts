// Export bundles: whole signed batches with their proofs, as one tar archive, by gateway and span or by run.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idParams, idSchema } from './common.js';
import { isoInstant } from './time.js';

// strict: 2026-02-31 is refused, not rolled over; the offset (Z or +hh:mm) is required
export const exportQuery = z.strictObject({ gateway: idSchema, from: isoInstant, to: isoInstant }).refine((q) => q.from <= q.to, {
  message: 'from is later than to',
  path: ['from'],
});

/** application/x-tar: a download */
export const exportBundle = defineRoute({ method: 'GET', path: '/api/export', query: exportQuery });
/** application/x-tar: a download */
export const exportRun = defineRoute({ method: 'GET', path: '/api/runs/:id/export', params: idParams });
/** application/json: a client's selective-disclosure bundle of one run (labtrace-disclosure/v1), a download */
export const exportDisclosure = defineRoute({ method: 'GET', path: '/api/runs/:id/disclosure', params: idParams });
