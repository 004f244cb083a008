// The audit trail's export (GET /api/audit-trail/export: JSON Lines with a header and a trailer, or CSV) and its
// offline check, for `labtrace verify-audit` and for the auditor's browser alike: each entry's hash recomputed from
// its fields (SHA-256 over the previous entry's hash and the RFC 8785 canonical JSON of the fields), the chain from
// entry to entry, and the trailer. Pure TypeScript without Node globals; the server writes the files
// (server/src/audit/audit-export.ts) with the same field layout.
import { concatBytes, toHex, utf8 } from '../trust/bytes.js';
import { canonicalBytes } from '../trust/jcs.js';
import { sha256 } from '../trust/sha256.js';

/** the chain's start: the prevHash of entry 1 */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

export const AUDIT_EXPORT_FORMAT = 'labtrace-audit-trail';

/** an entry as exported: a value is left out when none was recorded (NULL), so a JSON null stays apart */
export interface ExportedAuditEntry {
  id: number;
  at: number;
  actor: string;
  actorRole: string;
  action: string;
  recordType: string;
  recordId: string;
  oldValue?: unknown;
  newValue?: unknown;
  reason: string | null;
  prevHash: string;
  hash: string;
  logIndex: number | null;
}

export interface AuditExportHeader {
  format: typeof AUDIT_EXPORT_FORMAT;
  version: 1;
  exportedAt: number;
  /** the selection; with no filter the file holds the whole trail from entry 1, and a gap is a failure */
  filter: Record<string, unknown>;
  complete: boolean;
}

export interface AuditExportTrailer {
  end: true;
  count: number;
  lastHash: string | null;
}

/** the fields an entry's hash covers, as stored (values as their canonical JSON text, NULL as null) */
export interface AuditHashFields {
  id: number;
  at: number;
  actor: string;
  actor_role: string;
  action: string;
  record_type: string;
  record_id: string;
  old_value: string | null;
  new_value: string | null;
  reason: string | null;
}

/** The hash of an entry: SHA-256 over the previous entry's hash (its hex text) and the canonical JSON of its fields. */
export function auditEntryHash(prevHash: string, fields: AuditHashFields): string {
  return toHex(sha256(concatBytes(utf8(prevHash), canonicalBytes(fields))));
}

const canonical = (value: unknown): string => new TextDecoder().decode(canonicalBytes(value));

/** the hash an exported entry should carry, recomputed from its fields and its prevHash */
export function recomputedAuditHash(e: ExportedAuditEntry): string {
  return auditEntryHash(e.prevHash, {
    id: e.id,
    at: e.at,
    actor: e.actor,
    actor_role: e.actorRole,
    action: e.action,
    record_type: e.recordType,
    record_id: e.recordId,
    old_value: 'oldValue' in e ? canonical(e.oldValue) : null,
    new_value: 'newValue' in e ? canonical(e.newValue) : null,
    reason: e.reason,
  });
}

export const AUDIT_CSV_COLUMNS = [
  'id',
  'at',
  'actor',
  'actorRole',
  'action',
  'recordType',
  'recordId',
  'oldValue',
  'newValue',
  'reason',
  'prevHash',
  'hash',
  'logIndex',
] as const;

/** RFC 4180 records; a field is null when it was empty and unquoted */
export function parseAuditCsv(input: string): (string | null)[][] {
  const records: (string | null)[][] = [];
  let record: (string | null)[] = [];
  let i = 0;
  while (i < input.length) {
    let field: string | null;
    if (input[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const quote = input.indexOf('"', i);
        if (quote < 0) throw new Error(`CSV: a quoted field that never ends (record ${records.length + 1})`);
        value += input.slice(i, quote);
        i = quote + 1;
        if (input[i] === '"') {
          value += '"';
          i++;
        } else break;
      }
      field = value;
    } else {
      let end = i;
      while (end < input.length && input[end] !== ',' && input[end] !== '\n' && input[end] !== '\r') end++;
      field = end === i ? null : input.slice(i, end);
      i = end;
    }
    record.push(field);
    if (input[i] === ',') i++;
    else {
      if (input[i] === '\r') i++;
      if (input[i] === '\n') i++;
      records.push(record);
      record = [];
    }
  }
  // a last record without its line end
  if (record.length > 0) records.push(input.endsWith(',') ? [...record, null] : record);
  return records;
}

export interface AuditVerifyReport {
  ok: boolean;
  entries: number;
  firstId: number | null;
  lastId: number | null;
  lastHash: string | null;
  /** the first problem, naming the entry (or line) */
  failure?: string;
  /** ranges of ids not in a filtered file (the entries on either side are still checked by their own hashes) */
  gaps: string[];
}

/** the file is not an audit export at all (exit 2), as opposed to one that does not verify (exit 1) */
export class UnusableAuditExport extends Error {}

function fromCsv(records: (string | null)[][]): ExportedAuditEntry[] {
  const [head, ...rows] = records;
  if (head?.join(',') !== AUDIT_CSV_COLUMNS.join(','))
    throw new UnusableAuditExport(`CSV: the first line must be the columns ${AUDIT_CSV_COLUMNS.join(',')}`);
  return rows
    .filter((r) => !(r.length === 1 && r[0] === null))
    .map((r, i) => {
      const line = i + 2;
      if (r.length !== AUDIT_CSV_COLUMNS.length) throw new EntryError(line, `${r.length} fields, expected ${AUDIT_CSV_COLUMNS.length}`);
      const [id, at, actor, actorRole, action, recordType, recordId, oldValue, newValue, reason, prevHash, hash, logIndex] = r;
      const num = (v: string | null, name: string): number => {
        if (v === null || !/^\d+$/.test(v)) throw new EntryError(line, `${name}: expected a whole number`);
        return Number(v);
      };
      const str = (v: string | null, name: string): string => {
        if (v === null) throw new EntryError(line, `${name}: missing`);
        return v;
      };
      const json = (v: string | null, name: string): unknown => {
        try {
          return v === null ? undefined : (JSON.parse(v) as unknown);
        } catch {
          throw new EntryError(line, `${name}: not JSON`);
        }
      };
      const o = json(oldValue ?? null, 'oldValue');
      const n = json(newValue ?? null, 'newValue');
      return {
        id: num(id ?? null, 'id'),
        at: num(at ?? null, 'at'),
        actor: str(actor ?? null, 'actor'),
        actorRole: str(actorRole ?? null, 'actorRole'),
        action: str(action ?? null, 'action'),
        recordType: str(recordType ?? null, 'recordType'),
        recordId: str(recordId ?? null, 'recordId'),
        ...(o === undefined ? {} : { oldValue: o }),
        ...(n === undefined ? {} : { newValue: n }),
        reason: reason ?? null,
        prevHash: str(prevHash ?? null, 'prevHash'),
        hash: str(hash ?? null, 'hash'),
        logIndex: logIndex === null || logIndex === undefined ? null : num(logIndex, 'logIndex'),
      };
    });
}

class EntryError extends Error {
  constructor(line: number, problem: string) {
    super(`line ${line}: ${problem}`);
  }
}

const isEntry = (v: Record<string, unknown>): boolean =>
  typeof v['id'] === 'number' &&
  typeof v['at'] === 'number' &&
  typeof v['actor'] === 'string' &&
  typeof v['actorRole'] === 'string' &&
  typeof v['action'] === 'string' &&
  typeof v['recordType'] === 'string' &&
  typeof v['recordId'] === 'string' &&
  (v['reason'] === null || typeof v['reason'] === 'string') &&
  typeof v['prevHash'] === 'string' &&
  typeof v['hash'] === 'string';

/**
 * Checks an exported trail: each entry's hash recomputed from its fields, each entry's prevHash against
 * the entry before it (when that one is in the file), ids in order, and, in a JSON Lines file, the
 * trailer's count and last hash (a cut file has none). Stops at the first problem.
 */
export function verifyAuditExport(content: string): AuditVerifyReport {
  const report: AuditVerifyReport = { ok: false, entries: 0, firstId: null, lastId: null, lastHash: null, gaps: [] };
  let entries: ExportedAuditEntry[];
  let header: AuditExportHeader | undefined;
  let trailer: AuditExportTrailer | undefined;
  try {
    if (content.startsWith('{')) {
      const lines = content.split('\n');
      if (lines.at(-1) === '') lines.pop();
      const parsed = lines.map((line, i) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new EntryError(i + 1, 'not JSON');
        }
      });
      const first = parsed[0];
      if (first?.['format'] !== AUDIT_EXPORT_FORMAT || first['version'] !== 1)
        throw new UnusableAuditExport(`the first line is not a ${AUDIT_EXPORT_FORMAT} version 1 header`);
      header = first as unknown as AuditExportHeader;
      entries = [];
      for (let i = 1; i < parsed.length; i++) {
        const value = parsed[i] ?? {};
        if (value['end'] === true) {
          if (i !== parsed.length - 1) throw new EntryError(i + 1, 'lines after the trailer');
          trailer = value as unknown as AuditExportTrailer;
        } else if (isEntry(value)) entries.push(value as unknown as ExportedAuditEntry);
        else
          throw new EntryError(
            i + 1,
            `not an audit entry${typeof value['id'] === 'number' ? ` (entry ${value['id']})` : ''}: a field is missing or of the wrong type`,
          );
      }
    } else entries = fromCsv(parseAuditCsv(content));
  } catch (err) {
    if (err instanceof EntryError) return { ...report, failure: err.message };
    throw err;
  }
  let prev: ExportedAuditEntry | undefined;
  for (const e of entries) {
    if (prev !== undefined && e.id <= prev.id) return { ...report, failure: `entry ${e.id}: out of order (after entry ${prev.id})` };
    if (recomputedAuditHash(e) !== e.hash) return { ...report, failure: `entry ${e.id}: its hash does not match its fields (the entry was changed)` };
    const expectedPrev = prev === undefined ? (e.id === 1 ? AUDIT_GENESIS_HASH : undefined) : prev.id === e.id - 1 ? prev.hash : undefined;
    if (expectedPrev !== undefined && e.prevHash !== expectedPrev)
      return { ...report, failure: `entry ${e.id}: prevHash is not the hash of entry ${e.id - 1} (the chain is broken here)` };
    const missingFrom = (prev?.id ?? 0) + 1;
    if (e.id > missingFrom) {
      const gap = missingFrom === e.id - 1 ? `${missingFrom}` : `${missingFrom}..${e.id - 1}`;
      if (header?.complete === true) return { ...report, failure: `entries ${gap}: missing from a complete export (before entry ${e.id})` };
      report.gaps.push(gap);
    }
    prev = e;
    report.entries++;
    report.firstId ??= e.id;
    report.lastId = e.id;
    report.lastHash = e.hash;
  }
  if (header !== undefined) {
    if (trailer === undefined) return { ...report, failure: `the file ends without its trailer after ${report.entries} entries (it was cut)` };
    if (trailer.count !== report.entries)
      return { ...report, failure: `the trailer counts ${trailer.count} entries, the file holds ${report.entries}` };
    if (trailer.lastHash !== report.lastHash) return { ...report, failure: `the trailer's lastHash is not the hash of entry ${report.lastId}` };
  }
  return { ...report, ok: true };
}
