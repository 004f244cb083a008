// The audit trail: who created, changed or deleted which record, when, the old and new values and the reason.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema } from './common.js';
import { optionalLine } from './text.js';
import { timeMsQuery } from './time.js';

// 'state-change': a record moved along its state machine (a test run started or stopped); the record
// that needs a reason for it (an abort) enforces that itself
// 'privilege-change': a user's role, organization or grant changed; 'login', 'login-failed', 'logout' and
// 'lockout' are sign-in events (record type 'session', or 'user' for a lockout), never with a secret
export const AUDIT_ACTIONS = [
  'create',
  'update',
  'delete',
  'password-set',
  'token-created',
  'state-change',
  'privilege-change',
  'login',
  'login-failed',
  'logout',
  'lockout',
] as const;
export const auditActionSchema = z.enum(AUDIT_ACTIONS);

const auditFilter = {
  actor: optionalLine(100).optional(),
  recordType: optionalLine(100).optional(),
  recordId: optionalLine(200).optional(),
  action: auditActionSchema.optional(),
  since: timeMsQuery.optional(),
  until: timeMsQuery.optional(),
  /** paging: the entries after this id (the last id of the page before) */
  after: z.coerce.number().int().min(0).optional(),
};
export const auditQuery = z.strictObject({ ...auditFilter, limit: z.coerce.number().int().min(1).max(10_000).default(1000) });
export const auditExportQuery = z.strictObject({ ...auditFilter, format: z.enum(['jsonl', 'csv']).default('jsonl') });

/** an entry of the audit trail */
export const auditEntrySchema = z.strictObject({
  id: z.number().int(),
  at: msSchema,
  actor: z.string(),
  actorRole: z.string(),
  action: auditActionSchema,
  recordType: z.string(),
  recordId: z.string(),
  oldValue: z.unknown(),
  newValue: z.unknown(),
  reason: z.string().nullable(),
  prevHash: z.string(),
  hash: z.string(),
  logIndex: z.number().int().nullable(),
});
export type AuditEntry = z.output<typeof auditEntrySchema>;

export const listAudit = defineRoute({ method: 'GET', path: '/api/audit-trail', query: auditQuery, response: z.array(auditEntrySchema) });
/** JSON lines (a header, the entries, a trailer) or CSV: a download */
export const exportAudit = defineRoute({ method: 'GET', path: '/api/audit-trail/export', query: auditExportQuery });
