// The audit trail as an auditor takes it away: JSON Lines (a header, one entry a line, a trailer) or CSV,
// each entry with the fields its hash covers, and the offline check of such a file (`labtrace verify-audit`).
// The check itself lives in protocols (verify/audit-export.ts): the browser runs the same code as the command line.
import {
  AUDIT_CSV_COLUMNS as CSV_COLUMNS,
  AUDIT_EXPORT_FORMAT as EXPORT_FORMAT,
  parseAuditCsv as parseCsv,
  recomputedAuditHash as recomputedHash,
  UnusableAuditExport as UnusableExport,
  verifyAuditExport as verifyExport,
  type AuditExportHeader as ExportHeader,
  type AuditExportTrailer as ExportTrailer,
  type AuditVerifyReport as VerifyReport,
  type ExportedAuditEntry as ExportedEntry,
} from '@labtrace/protocols';
import type { AuditRow } from './audit-trail.js';

export { CSV_COLUMNS, EXPORT_FORMAT, parseCsv, recomputedHash, UnusableExport, verifyExport };
export type { ExportHeader, ExportTrailer, ExportedEntry, VerifyReport };

const text = (value: string | null): unknown => (value === null ? undefined : (JSON.parse(value) as unknown));

export function exportedOf(row: AuditRow): ExportedEntry {
  const oldValue = text(row.old_value);
  const newValue = text(row.new_value);
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    actorRole: row.actor_role,
    action: row.action,
    recordType: row.record_type,
    recordId: row.record_id,
    ...(oldValue === undefined ? {} : { oldValue }),
    ...(newValue === undefined ? {} : { newValue }),
    reason: row.reason,
    prevHash: row.prev_hash,
    hash: row.hash,
    logIndex: row.log_index,
  };
}

const csvField = (value: string | number | null): string => {
  if (value === null) return '';
  const s = String(value);
  return /[",\r\n]/.test(s) || s === '' ? `"${s.replaceAll('"', '""')}"` : s;
};

/**
 * One CSV line: values as their canonical JSON text; an empty unquoted field is NULL, a quoted empty one
 * ("") the empty string, so the file says exactly what was hashed.
 */
export function csvLine(row: AuditRow): string {
  return [
    row.id,
    row.at,
    row.actor,
    row.actor_role,
    row.action,
    row.record_type,
    row.record_id,
    row.old_value,
    row.new_value,
    row.reason,
    row.prev_hash,
    row.hash,
    row.log_index,
  ]
    .map(csvField)
    .join(',');
}
