// The audit trail: who created, changed or deleted which record, when, the old and new values and the reason.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema, pageOf, pageQuery } from './common.js';
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

/**
 * The kinds of record the lab's services write to the trail (the dashboard offers them as a list; the filter
 * itself takes any text, so an entry of a kind added later is still found). A server test holds the services to it.
 */
export const AUDIT_RECORD_TYPES = [
  'accreditation',
  'api-token',
  'calibration',
  'calibration-certificate',
  'certificate',
  'enrollment-token',
  'gateway-key',
  'instrument-check',
  'instrument-command',
  'instrument-status',
  'lab-sample',
  'method',
  'notification-delivery',
  'notification-webhook',
  'organization',
  'retention',
  'run',
  'run-alarm',
  'run-results',
  'run-share',
  'session',
  'supervision-response',
  'user',
  'user-preferences',
] as const;
export type AuditRecordType = (typeof AUDIT_RECORD_TYPES)[number];

const auditFilter = {
  actor: optionalLine(100).optional(),
  recordType: optionalLine(100).optional(),
  recordId: optionalLine(200).optional(),
  action: auditActionSchema.optional(),
  since: timeMsQuery.optional(),
  until: timeMsQuery.optional(),
};
/** a page of the trail, newest first, by entry id (never by time: many entries share a millisecond) */
export const auditQuery = z.strictObject({ ...auditFilter, ...pageQuery });
export const auditExportQuery = z.strictObject({
  ...auditFilter,
  /** the entries after this id (an export continuing an earlier one) */
  after: z.coerce.number().int().min(0).optional(),
  format: z.enum(['jsonl', 'csv']).default('jsonl'),
});

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

export const listAudit = defineRoute({ method: 'GET', path: '/api/audit-trail', query: auditQuery, response: pageOf(auditEntrySchema) });
/** JSON lines (a header, the entries, a trailer) or CSV: a download */
export const exportAudit = defineRoute({ method: 'GET', path: '/api/audit-trail/export', query: auditExportQuery });
