// The user-action audit trail (ISO/IEC 17025 7.5 and 7.11, 21 CFR 11.10(e)): who created, changed or
// deleted which record, when, the old and new values and the reason. Append-only (the table refuses
// updates and deletions), each entry hashed over the previous one, and the chain anchored in the
// transparency log, so that a removed or rewritten entry shows.
//
// Every query goes through Kysely, the same code on SQLite and PostgreSQL. The trail is one chain however many
// nodes append to it: on PostgreSQL an entry is appended under a transaction-scoped advisory lock (recordIn), and
// the anchoring holds the entries it anchors (FOR UPDATE) and appends them under the log's own lock, so that no
// entry is anchored twice.
import { createHash } from 'node:crypto';
import { AUDIT_GENESIS_HASH, canonicalBytes, LabtraceError } from '@labtrace/protocols';
import { TransparencyLog } from '../log/transparency-log.js';
import { Kysely, sql, type Expression, type SqlBool, type Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import { pageOfRows, type PageRequest } from '../api/paging.js';

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
 * (fail closed): a new kind of client record (certificates) adds its line. `slashAt` is the position of the first
 * '/' in record_id, in the dialect's words (SQLite's instr, PostgreSQL's strpos).
 */
function organizationOfRecord(slashAt: string): Readonly<Record<string, string>> {
  return {
    'lab-sample': '(SELECT organization FROM lab_samples WHERE id = record_id)',
    run: '(SELECT organization FROM runs WHERE id = record_id)',
    'run-results': '(SELECT organization FROM runs WHERE id = record_id)',
    'run-alarm': `(SELECT organization FROM runs WHERE id = substr(record_id, 1, ${slashAt} - 1))`,
    organization: 'record_id',
    // a client user is its organization's; the lab's staff and auditors have none
    user: "coalesce((SELECT organization FROM users WHERE username = record_id), 'lab')",
    session: "coalesce((SELECT organization FROM users WHERE username = record_id), 'lab')",
    method: "'lab'",
    'instrument-status': "'lab'",
    calibration: "'lab'",
    'instrument-check': "'lab'",
    accreditation: "'lab'",
    'supervision-response': "'lab'",
    retention: "'lab'",
    certificate: '(SELECT organization FROM certificate_requests WHERE id = record_id)',
  };
}

export const ORGANIZATION_OF_RECORD = organizationOfRecord("instr(record_id, '/')");

/** the SQL of an entry's organization ('lab' for the lab's own records, NULL for a type not listed), per dialect */
const ORGANIZATION_SQL = {
  sqlite: organizationCase(ORGANIZATION_OF_RECORD),
  postgres: organizationCase(organizationOfRecord("strpos(record_id, '/')")),
};

function organizationCase(of: Readonly<Record<string, string>>): string {
  return `CASE record_type ${Object.entries(of)
    .map(([type, expr]) => `WHEN '${type}' THEN ${expr}`)
    .join(' ')} ELSE NULL END`;
}

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

/**
 * Where the anchoring appends: the log store (log/log-store.ts, SQLite or PostgreSQL, inside the anchoring's
 * transaction), or the server's synchronous TransparencyLog on SQLite (its append joins the same connection's open
 * transaction as a savepoint: the trail must be on that log's database).
 */
export type AnchorLog =
  TransparencyLog | { append(trx: Transaction<Tables>, kind: 'audit-event', entries: readonly Uint8Array[], at: number): Promise<number> };

/** entries read per query when verifying, exporting or anchoring */
const ROWS_PER_READ = 1000;

type Db = Kysely<Tables>;

export class AuditTrail {
  /** told of every entry appended (the live hub announces the `audit` list's change) */
  private readonly listeners = new Set<(entry: AuditEntry) => void>();
  private readonly db: Db;
  /** the SQLite database the trail is on, when given as one (anchoring in the synchronous TransparencyLog needs it) */
  private readonly sqlite: LabDatabase | undefined;

  /** `store`: the store's Kysely (SQLite or PostgreSQL), or the SQLite LabDatabase (whose TransparencyLog it may anchor in) */
  constructor(
    store: Db | LabDatabase,
    private readonly now: () => number = Date.now,
  ) {
    if (store instanceof Kysely) {
      this.db = store;
      this.sqlite = undefined;
    } else {
      this.db = store.db;
      this.sqlite = store;
    }
  }

  /** Calls `listener` after each entry appended; returns the call that stops it. */
  onAppend(listener: (entry: AuditEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Appends an entry in the caller's transaction (`trx`, SQLite or PostgreSQL), so that neither the change nor its
   * entry exists without the other. The trail is one chain however many nodes write to it: on PostgreSQL a transaction-scoped advisory lock
   * holds other writers from reading the chain's end until this transaction ends; on SQLite the write transaction
   * does (one writer at a time).
   */
  async recordIn(trx: Transaction<Tables>, actor: Actor, input: AuditInput): Promise<AuditEntry> {
    const reason = checkedReason(input);
    if (dialectOf(trx as unknown as Kysely<unknown>) === 'postgres')
      await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK[0]}, ${AUDIT_LOCK[1]})`.execute(trx);
    const last = await trx.selectFrom('audit_trail').select(['id', 'hash']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    const row = this.nextRow(last === undefined ? undefined : { id: Number(last.id), hash: last.hash }, actor, input, reason);
    await trx.insertInto('audit_trail').values(row).execute();
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
  async page(filter: Omit<AuditFilter, 'limit' | 'after'>, page: PageRequest): Promise<Page<AuditEntry>> {
    const limit = Math.max(1, Math.floor(page.limit));
    const cursor = page.cursor === undefined ? undefined : Number(page.cursor);
    const rows = await this.db
      .selectFrom('audit_trail')
      .selectAll()
      .where((eb) => eb.and(this.conditions(filter)))
      .$if(cursor !== undefined, (q) => q.where('id', '<', cursor as number))
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    return pageOfRows(rows.map(rowOf), page, (row) => row.id, toEntry);
  }

  /** the selected entries, oldest first (up to `limit`) */
  async list(filter: AuditFilter): Promise<AuditEntry[]> {
    return (await this.rows(filter)).map(toEntry);
  }

  /** the selected entries as stored, oldest first (an export keeps a NULL value apart from a recorded JSON null) */
  async rows(filter: AuditFilter): Promise<AuditRow[]> {
    const rows = await this.db
      .selectFrom('audit_trail')
      .selectAll()
      .where((eb) => eb.and(this.conditions(filter)))
      .$if(filter.after !== undefined, (q) => q.where('id', '>', filter.after as number))
      .orderBy('id')
      .limit(filter.limit)
      .execute();
    return rows.map(rowOf);
  }

  /** the conditions (ANDed) of a filter, without paging */
  private conditions(filter: Omit<AuditFilter, 'limit' | 'after'>): Expression<SqlBool>[] {
    const where: Expression<SqlBool>[] = [];
    const eq = (column: 'actor' | 'record_type' | 'record_id' | 'action', value: string | undefined): void => {
      if (value !== undefined) where.push(sql<SqlBool>`${sql.ref(column)} = ${value}`);
    };
    eq('actor', filter.actor);
    eq('record_type', filter.recordType);
    eq('record_id', filter.recordId);
    eq('action', filter.action);
    if (filter.since !== undefined) where.push(sql<SqlBool>`at >= ${filter.since}`);
    if (filter.until !== undefined) where.push(sql<SqlBool>`at <= ${filter.until}`);
    if (filter.organizations !== undefined) {
      const organization = sql.raw(ORGANIZATION_SQL[dialectOf(this.db as unknown as Kysely<unknown>)]);
      where.push(sql<SqlBool>`${organization} IN (${sql.join(['lab', ...filter.organizations])})`);
    }
    return where;
  }

  /** The selected entries, read a page at a time (the connection is not held between pages, so writes go on). */
  async *pages(filter: Omit<AuditFilter, 'limit'>, pageSize = ROWS_PER_READ): AsyncGenerator<AuditRow[]> {
    let after = filter.after;
    for (;;) {
      const page = await this.rows({ ...filter, ...(after === undefined ? {} : { after }), limit: pageSize });
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]?.id;
      if (page.length < pageSize) return;
    }
  }

  /** Recomputes the chain; returns the id of the first entry that does not match, or undefined when all do. */
  async verify(): Promise<number | undefined> {
    let prev = GENESIS_HASH;
    for await (const page of this.pages({})) {
      for (const row of page) {
        const { hash, prev_hash, log_index: _logIndex, ...fields } = row;
        if (prev_hash !== prev || entryHash(prev, fields) !== hash) return row.id;
        prev = hash;
      }
    }
    return undefined;
  }

  /**
   * Anchors the entries not yet in the transparency log (also those written by the command line), in order; returns
   * how many. The log is public, so it gets only each entry's id, time and chain hash: it proves the trail was not
   * rewritten without telling the public who changed what. Each step is one transaction: the entries appended to
   * the log and marked with their index. On PostgreSQL the entries are held (FOR UPDATE): a node anchoring at the
   * same time waits, then finds them anchored, so that no entry enters the log twice.
   */
  async anchor(log: AnchorLog): Promise<number> {
    // the synchronous log writes on its own SQLite connection: it joins this trail's transactions only when the
    // trail is on that connection (the server's LabDatabase)
    if (log instanceof TransparencyLog && this.sqlite === undefined)
      throw new Error(
        "audit trail: anchoring in the synchronous TransparencyLog needs the trail on the log's LabDatabase; give a Kysely trail the log store",
      );
    let anchored = 0;
    for (;;) {
      const step = await this.db.transaction().execute(async (trx) => {
        await holdWriteLock(trx);
        const pending = await trx
          .selectFrom('audit_trail')
          .select(['id', 'at', 'hash'])
          .where('log_index', 'is', null)
          .orderBy('id')
          .limit(ROWS_PER_READ)
          .$if(dialectOf(trx as unknown as Kysely<unknown>) === 'postgres', (q) => q.forUpdate())
          .execute();
        const entries = pending.map((e) => ({ id: Number(e.id), at: Number(e.at), hash: e.hash }));
        for (const e of entries) {
          const leaf = canonicalBytes({ id: e.id, at: e.at, hash: e.hash });
          // one append per entry: each at the entry's own time
          const index = log instanceof TransparencyLog ? log.append('audit-event', [leaf], e.at) : await log.append(trx, 'audit-event', [leaf], e.at);
          await trx.updateTable('audit_trail').set({ log_index: index }).where('id', '=', e.id).execute();
        }
        return entries.length;
      });
      anchored += step;
      if (step < ROWS_PER_READ) return anchored;
    }
  }
}

/**
 * SQLite: takes the write lock first thing in the transaction (a write that changes no row), waiting busy_timeout
 * for another process's (the admin command line writing entries beside the running server), rather than failing at
 * the first write of a transaction that read first. PostgreSQL: nothing (FOR UPDATE and the log's lock order writers).
 */
async function holdWriteLock(trx: Transaction<Tables>): Promise<void> {
  if (dialectOf(trx as unknown as Kysely<unknown>) === 'sqlite') await sql`UPDATE audit_trail SET log_index = log_index WHERE id = -1`.execute(trx);
}

/** a row as read: numbers as numbers on both drivers */
function rowOf(row: { id: number; at: number; log_index: number | null } & Omit<AuditRow, 'id' | 'at' | 'log_index'>): AuditRow {
  return {
    id: Number(row.id),
    at: Number(row.at),
    actor: row.actor,
    actor_role: row.actor_role,
    action: row.action,
    record_type: row.record_type,
    record_id: row.record_id,
    old_value: row.old_value,
    new_value: row.new_value,
    reason: row.reason,
    prev_hash: row.prev_hash,
    hash: row.hash,
    log_index: row.log_index === null ? null : Number(row.log_index),
  };
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
