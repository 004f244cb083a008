// The audit trail as an auditor takes it away: JSON Lines (a header, one entry a line, a trailer) or CSV,
// each entry with the fields its hash covers, and the offline check of such a file (`labtrace verify-audit`).
import { canonicalBytes } from '@labtrace/protocols';
import { entryHash, GENESIS_HASH, type AuditRow } from './audit-trail.js';

export const EXPORT_FORMAT = 'labtrace-audit-trail';

/** an entry as exported: a value is left out when none was recorded (NULL), so a JSON null stays apart */
export interface ExportedEntry {
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

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: 1;
  exportedAt: number;
  /** the selection; with no filter the file holds the whole trail from entry 1, and a gap is a failure */
  filter: Record<string, unknown>;
  complete: boolean;
}

export interface ExportTrailer {
  end: true;
  count: number;
  lastHash: string | null;
}

const text = (value: string | null): unknown => (value === null ? undefined : (JSON.parse(value) as unknown));
const canonical = (value: unknown): string => new TextDecoder().decode(canonicalBytes(value));

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

/** the hash an exported entry should carry, recomputed from its fields and its prevHash */
export function recomputedHash(e: ExportedEntry): string {
  return entryHash(e.prevHash, {
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

export const CSV_COLUMNS = [
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

/** RFC 4180 records; a field is null when it was empty and unquoted */
export function parseCsv(input: string): (string | null)[][] {
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

export interface VerifyReport {
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
export class UnusableExport extends Error {}

function fromCsv(records: (string | null)[][]): ExportedEntry[] {
  const [head, ...rows] = records;
  if (head?.join(',') !== CSV_COLUMNS.join(',')) throw new UnusableExport(`CSV: the first line must be the columns ${CSV_COLUMNS.join(',')}`);
  return rows
    .filter((r) => !(r.length === 1 && r[0] === null))
    .map((r, i) => {
      const line = i + 2;
      if (r.length !== CSV_COLUMNS.length) throw new EntryError(line, `${r.length} fields, expected ${CSV_COLUMNS.length}`);
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
export function verifyExport(content: string): VerifyReport {
  const report: VerifyReport = { ok: false, entries: 0, firstId: null, lastId: null, lastHash: null, gaps: [] };
  let entries: ExportedEntry[];
  let header: ExportHeader | undefined;
  let trailer: ExportTrailer | undefined;
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
      if (first?.['format'] !== EXPORT_FORMAT || first['version'] !== 1)
        throw new UnusableExport(`the first line is not a ${EXPORT_FORMAT} version 1 header`);
      header = first as unknown as ExportHeader;
      entries = [];
      for (let i = 1; i < parsed.length; i++) {
        const value = parsed[i] ?? {};
        if (value['end'] === true) {
          if (i !== parsed.length - 1) throw new EntryError(i + 1, 'lines after the trailer');
          trailer = value as unknown as ExportTrailer;
        } else if (isEntry(value)) entries.push(value as unknown as ExportedEntry);
        else
          throw new EntryError(
            i + 1,
            `not an audit entry${typeof value['id'] === 'number' ? ` (entry ${value['id']})` : ''}: a field is missing or of the wrong type`,
          );
      }
    } else entries = fromCsv(parseCsv(content));
  } catch (err) {
    if (err instanceof EntryError) return { ...report, failure: err.message };
    throw err;
  }
  let prev: ExportedEntry | undefined;
  for (const e of entries) {
    if (prev !== undefined && e.id <= prev.id) return { ...report, failure: `entry ${e.id}: out of order (after entry ${prev.id})` };
    if (recomputedHash(e) !== e.hash) return { ...report, failure: `entry ${e.id}: its hash does not match its fields (the entry was changed)` };
    const expectedPrev = prev === undefined ? (e.id === 1 ? GENESIS_HASH : undefined) : prev.id === e.id - 1 ? prev.hash : undefined;
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
