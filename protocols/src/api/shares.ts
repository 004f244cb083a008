// Read-only links that share one test run (and its issued report) with a client without an account: created by the
// lab's staff for a limited time, revocable, and answered to anyone holding the link's token. Only the token's
// SHA-256 is stored; the token itself is shown once, when the link is created.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { idSchema, liveSampleSchema, msSchema, reasonSchema } from './common.js';
import { runResultsSchema, runStateSchema } from './runs.js';

/** the longest a link may live: 30 days */
export const SHARE_MAX_HOURS = 30 * 24;
/** a link's token: 32 random bytes, base64url without padding */
export const shareTokenSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected the 43-character token of a share link');

export const SHARE_STATES = ['active', 'expired', 'revoked'] as const;

export const shareInput = z.strictObject({
  /** how long the link works, in hours (1 hour to 30 days) */
  hours: z.number().int().min(1).max(SHARE_MAX_HOURS),
  /** who it is for, for the lab's own list ("Mr Li, purchasing") */
  note: z.string().trim().max(200).optional(),
});
export type ShareInput = z.output<typeof shareInput>;

export const revokeShareInput = z.strictObject({ reason: reasonSchema });

export const runShareSchema = z.strictObject({
  id: z.string(),
  run: z.string(),
  note: z.string().nullable(),
  state: z.enum(SHARE_STATES),
  createdBy: z.string(),
  createdAt: msSchema,
  expiresAt: msSchema,
  revokedBy: z.string().nullable(),
  revokedAt: msSchema.nullable(),
  revokeReason: z.string().nullable(),
  /** when the link was first opened, null until then; how many times it has been opened */
  firstUsedAt: msSchema.nullable(),
  uses: z.number().int(),
});
export type RunShare = z.output<typeof runShareSchema>;

/** the link as created: the share and its token (shown this once: only its hash is kept) */
export const createdShareSchema = runShareSchema.extend({ token: shareTokenSchema });
export type CreatedShare = z.output<typeof createdShareSchema>;

/** what the holder of a link sees: the run in short, its results once completed, its records and its issued report */
export const publicShareSchema = z.strictObject({
  expiresAt: msSchema,
  run: z.strictObject({
    id: z.string(),
    sample: z.string(),
    method: z.strictObject({ id: z.string(), version: z.number().int(), standard: z.string(), title: z.string() }),
    state: runStateSchema,
    accredited: z.boolean(),
    createdAt: msSchema,
    startedAt: msSchema.nullable(),
    endedAt: msSchema.nullable(),
  }),
  results: runResultsSchema.nullable(),
  /** the run's stored records so far (the newest when there are more than the limit), oldest first */
  samples: z.array(liveSampleSchema),
  truncated: z.boolean(),
  /** the run's issued report, downloadable through the link */
  report: z.strictObject({ id: z.string(), issuedAt: msSchema, pdf: z.string() }).nullable(),
});
export type PublicShare = z.output<typeof publicShareSchema>;

const shareParams = z.strictObject({ id: idSchema, shareId: z.string().regex(/^[0-9]{1,12}$/, 'expected a share id') });
const tokenParams = z.strictObject({ token: shareTokenSchema });

export const listShares = defineRoute({
  method: 'GET',
  path: '/api/runs/:id/shares',
  params: z.strictObject({ id: idSchema }),
  response: z.array(runShareSchema),
});
export const createShare = defineRoute({
  method: 'POST',
  path: '/api/runs/:id/shares',
  params: z.strictObject({ id: idSchema }),
  body: shareInput,
  response: createdShareSchema,
});
export const revokeShare = defineRoute({
  method: 'POST',
  path: '/api/runs/:id/shares/:shareId/revoke',
  params: shareParams,
  body: revokeShareInput,
  response: runShareSchema,
});
export const publicShare = defineRoute({ method: 'GET', path: '/api/public/shares/:token', params: tokenParams, response: publicShareSchema });
export const publicShareReport = defineRoute({ method: 'GET', path: '/api/public/shares/:token/report.pdf', params: tokenParams });
