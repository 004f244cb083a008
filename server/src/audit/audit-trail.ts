// The user-action audit trail (ISO/IEC 17025 7.5 and 7.11, 21 CFR 11.10(e)): who created, changed or
// deleted which record, when, the old and new values and the reason. Append-only (the table refuses
// updates and deletions), each entry hashed over the previous one, and the chain anchored in the
// transparency log, so that a removed or rewritten entry shows.
import { createHash } from 'node:crypto';
import { AUDIT_GENESIS_HASH, canonicalBytes, LabtraceError } from '@labtrace/protocols';
import type { TransparencyLog } from '../log/transparency-log.js';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import { pageOfRows, pageSql, type PageRequest } from '../api/paging.js';

import { AUDIT_ACTIONS, type Page } from '@labtrace/protocols/api';

export { AUDIT_ACTIONS };
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** actions that change an existing record: they need a reason */
const CHANGES: ReadonlySet<AuditAction> = new Set(['update', 'delete', 'privilege-change']);

export interface Actor {
  username: string;
  role: string;
}

/** who acts when nobody signed in: the first start, the command line */
export const SYSTEM_ACTOR: Actor = { username: 'system', role: 'system' };

export interface AuditInput {
  action: AuditAction;
  recordType: string;
  recordId: string;
  oldValue?: unknown;
  newValue?: unknown;
  reason?: string | undefined;
}

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  actorRole: string;
  action: AuditAction;
  recordType: string;
  recordId: string;
  oldValue: unknown;
  newValue: unknown;
  reason: string | null;
  prevHash: string;
  hash: string;
  logIndex: number | null;
}

export interface AuditFilter {
  actor?: string;
  recordType?: string;
  recordId?: string;
  action?: AuditAction;
  since?: number;
  until?: number;
  /** paging: only entries after this id */
  after?: number;
  /** a viewer limited to these customer organizations (auth/visibility.ts): other organizations' records are left out */
  organizations?: readonly string[];
  limit: number;
}

/**
 * The customer organization an entry's record belongs to, as SQL over the entry's record_type and record_id;
 * 'lab' for the lab's own records. A record type missing here is shown only to viewers of every organization
 * (fail closed): a new kind of client record (certificates) adds its line.
 */
export const ORGANIZATION_OF_RECORD: Readonly<Record<string, string>> = {
  'lab-sample': '(SELECT organization FROM lab_samples WHERE id = record_id)',
  run: '(SELECT organization FROM runs WHERE id = record_id)',
  'run-results': '(SELECT organization FROM runs WHERE id = record_id)',
  'run-alarm': "(SELECT organization FROM runs WHERE id = substr(record_id, 1, instr(record_id, '/') - 1))",
  organization: 'record_id',
  // a client user is its organization's; the lab's staff and auditors have none
  user: "coalesce((SELECT organization FROM users WHERE username = record_id), 'lab')",
  session: "coalesce((SELECT organization FROM users WHERE username = record_id), 'lab')",
  method: "'lab'",
  'instrument-status': "'lab'",
  calibration: "'lab'",
  'instrument-check': "'lab'",
  accreditation: "'lab'",
  certificate: '(SELECT organization FROM certificate_requests WHERE id = record_id)',
};

/** the SQL of an entry's organization ('lab' for the lab's own records, NULL for a type not listed) */
const ORGANIZATION_SQL = `CASE record_type ${Object.entries(ORGANIZATION_OF_RECORD)
  .map(([type, expr]) => `WHEN '${type}' THEN ${expr}`)
  .join(' ')} ELSE NULL END`;

/** an entry as stored: the values as their canonical JSON text, NULL when none was given */
export interface AuditRow {
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
  prev_hash: string;
  hash: string;
  log_index: number | null;
}

export const GENESIS_HASH = AUDIT_GENESIS_HASH;

/** The hash of an entry: SHA-256 over the previous entry's hash and the canonical JSON (RFC 8785) of its fields. */
export function entryHash(prevHash: string, fields: Omit<AuditRow, 'hash' | 'log_index' | 'prev_hash'>): string {
  return createHash('sha256').update(prevHash).update(canonicalBytes(fields)).digest('hex');
}

/** the reason, trimmed; refused when missing for an action that changes a record */
function checkedReason(input: AuditInput): string | undefined {
  const reason = input.reason?.trim();
  if (CHANGES.has(input.action) && (reason === undefined || reason === ''))
    throw new LabtraceError('E_BAD_REQUEST', `body: reason: required to ${input.action} a ${input.recordType} record`);
  return reason;
}

/** the advisory lock (two-key form) under which a PostgreSQL transaction appends to the trail */
const AUDIT_LOCK = [0x6c74_6175, 1] as const; // 'ltau'

const toJson = (value: unknown): string | null => (value === undefined ? null : new TextDecoder().decode(canonicalBytes(value)));
const fromJson = (text: string | null): unknown => (text === null ? null : (JSON.parse(text) as unknown));

export class AuditTrail {
  /** told of every entry appended (the live hub announces the `audit` list's change) */
  private readonly listeners = new Set<(entry: AuditEntry) => void>();

  constructor(
    private readonly database: LabDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  /** Calls `listener` after each entry appended; returns the call that stops it. */
  onAppend(listener: (entry: AuditEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Appends an entry; call it inside the transaction that makes the change, so that neither exists without the other. */
  record(actor: Actor, input: AuditInput): AuditEntry {
    const reason = checkedReason(input);
    const db = this.database.sqlite;
    const last = db.prepare('SELECT id, hash FROM audit_trail ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
    const row = this.nextRow(last, actor, input, reason);
    db.prepare(
      `INSERT INTO audit_trail (id, at, actor, actor_role, action, record_type, record_id, old_value, new_value, reason, prev_hash, hash)
       VALUES (@id, @at, @actor, @actor_role, @action, @record_type, @record_id, @old_value, @new_value, @reason, @prev_hash, @hash)`,
    ).run(row);
    return this.appended(row);
  }

  /**
   * Appends an entry in the caller's transaction (`trx`, SQLite or PostgreSQL), so that neither the change nor its
   * entry exists without the other: the asynchronous form of `record`, for the modules whose queries run through
   * Kysely. The trail is one chain however many nodes write to it: on PostgreSQL a transaction-scoped advisory lock
   * holds other writers from reading the chain's end until this transaction ends; on SQLite the write transaction
   * does (one writer at a time).
   */
  async recordIn(trx: Transaction<Tables>, actor: Actor, input: AuditInput): Promise<AuditEntry> {
    const reason = checkedReason(input);
    const db = trx;
    if (dialectOf(trx as unknown as Kysely<unknown>) === 'postgres')
      await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK[0]}, ${AUDIT_LOCK[1]})`.execute(db);
    const last = await db.selectFrom('audit_trail').select(['id', 'hash']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    const row = this.nextRow(last === undefined ? undefined : last, actor, input, reason);
    await db.insertInto('audit_trail').values(row).execute();
    return this.appended(row);
  }

  /** The next entry of the chain after `last` (undefined: the first entry). */
  private nextRow(
    last: { id: number; hash: string } | undefined,
    actor: Actor,
    input: AuditInput,
    reason: string | undefined,
  ): Omit<AuditRow, 'log_index'> {
    const fields = {
      id: (last?.id ?? 0) + 1,
      at: this.now(),
      actor: actor.username,
      actor_role: actor.role,
      action: input.action,
      record_type: input.recordType,
      record_id: input.recordId,
      old_value: toJson(input.oldValue),
      new_value: toJson(input.newValue),
      reason: reason === undefined || reason === '' ? null : reason,
    };
    const prevHash = last?.hash ?? GENESIS_HASH;
    return { ...fields, prev_hash: prevHash, hash: entryHash(prevHash, fields) };
  }

  /** Tells the listeners of an entry written; returns it. */
  private appended(row: Omit<AuditRow, 'log_index'>): AuditEntry {
    const entry = toEntry({ ...row, log_index: null });
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch {
        // a listener's failure (the live hub) never undoes nor fails the change it is told of
      }
    }
    return entry;
  }

  /**
   * A page of the selected entries, newest first by id (never by time: a page that ended inside a millisecond
   * shared by many entries would skip or repeat the rest); the cursor is the id of the last entry shown.
   */
  page(filter: Omit<AuditFilter, 'limit' | 'after'>, page: PageRequest): Page<AuditEntry> {
    const sql = pageSql(page, 'id');
    const { where, params } = this.where(filter);
    const rows = this.database.sqlite
      .prepare(`SELECT * FROM audit_trail WHERE ${[...where, sql.where].join(' AND ')} ${sql.orderLimit}`)
      .all(params, ...sql.params) as AuditRow[];
    return pageOfRows(rows, page, (row) => row.id, toEntry);
  }

  /** the selected entries, oldest first (up to `limit`) */
  list(filter: AuditFilter): AuditEntry[] {
    return this.rows(filter).map(toEntry);
  }

  /** the selected entries as stored, oldest first (an export keeps a NULL value apart from a recorded JSON null) */
  rows(filter: AuditFilter): AuditRow[] {
    const { where, params } = this.where(filter);
    addCondition(where, params, 'id > @after', 'after', filter.after);
    const rows = this.database.sqlite
      .prepare(`SELECT * FROM audit_trail ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`)
      .all({ ...params, limit: filter.limit }) as AuditRow[];
    return rows;
  }

  /** the WHERE conditions (ANDed) and named parameters of a filter, without paging */
  private where(filter: Omit<AuditFilter, 'limit' | 'after'>): { where: string[]; params: Record<string, string | number> } {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    const add = (clause: string, name: string, value: string | number | undefined): void => addCondition(where, params, clause, name, value);
    add('actor = @actor', 'actor', filter.actor);
    add('record_type = @recordType', 'recordType', filter.recordType);
    add('record_id = @recordId', 'recordId', filter.recordId);
    add('action = @action', 'action', filter.action);
    add('at >= @since', 'since', filter.since);
    add('at <= @until', 'until', filter.until);
    if (filter.organizations !== undefined) {
      const names = filter.organizations.map((o, i) => {
        params[`org${i}`] = o;
        return `@org${i}`;
      });
      where.push(`${ORGANIZATION_SQL} IN ('lab'${names.map((n) => `, ${n}`).join('')})`);
    }
    return { where, params };
  }

  /** The selected entries, read a page at a time (the connection is not held between pages, so writes go on). */
  *pages(filter: Omit<AuditFilter, 'limit'>, pageSize = 1000): Generator<AuditRow[]> {
    let after = filter.after;
    for (;;) {
      const page = this.rows({ ...filter, ...(after === undefined ? {} : { after }), limit: pageSize });
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]?.id;
      if (page.length < pageSize) return;
    }
  }

  /** Recomputes the chain; returns the id of the first entry that does not match, or undefined when all do. */
  verify(): number | undefined {
    let prev = GENESIS_HASH;
    for (const row of this.database.sqlite.prepare('SELECT * FROM audit_trail ORDER BY id').iterate() as IterableIterator<AuditRow>) {
      const { hash, prev_hash, log_index: _logIndex, ...fields } = row;
      if (prev_hash !== prev || entryHash(prev, fields) !== hash) return row.id;
      prev = hash;
    }
    return undefined;
  }

  /**
   * Anchors the entries not yet in the transparency log (also those written by the command line). The log
   * is public, so it gets only each entry's id, time and chain hash: it proves the trail was not rewritten
   * without telling the public who changed what.
   */
  anchor(log: TransparencyLog): number {
    const db = this.database.sqlite;
    const pending = db.prepare('SELECT id, at, hash FROM audit_trail WHERE log_index IS NULL ORDER BY id').all() as {
      id: number;
      at: number;
      hash: string;
    }[];
    if (pending.length === 0) return 0;
    const mark = db.prepare('UPDATE audit_trail SET log_index = ? WHERE id = ?');
    db.transaction(() => {
      for (const e of pending) mark.run(log.append('audit-event', [canonicalBytes({ id: e.id, at: e.at, hash: e.hash })], e.at), e.id);
    })();
    return pending.length;
  }
}

function addCondition(
  where: string[],
  params: Record<string, string | number>,
  clause: string,
  name: string,
  value: string | number | undefined,
): void {
  if (value === undefined) return;
  where.push(clause);
  params[name] = value;
}
function toEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    actorRole: row.actor_role,
    action: row.action as AuditAction,
    recordType: row.record_type,
    recordId: row.record_id,
    oldValue: fromJson(row.old_value),
    newValue: fromJson(row.new_value),
    reason: row.reason,
    prevHash: row.prev_hash,
    hash: row.hash,
    logIndex: row.log_index,
  };
}
