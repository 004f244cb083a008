// Whether an instrument may be used in a test run (ISO/IEC 17025 6.4.8-6.4.9). Today one check: its
// service status, kept as a history (the newest row is in force). Calibration status comes with its own
// records: it plugs in as another EquipmentCheck, and every run start consults all of them.
import { LabtraceError } from '@labtrace/protocols';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Actor, AuditInput, AuditTrail } from '../audit/audit-trail.js';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

export type ServiceStatus = 'in-service' | 'out-of-service';

export interface InstrumentStatusRecord {
  instrument: string;
  status: ServiceStatus;
  reason: string;
  actor: string;
  at: number;
}

/**
 * Says why an instrument must not be used now, or undefined when nothing stands against it; it reads on `db` (the
 * caller's transaction, or the store).
 */
export type EquipmentCheck = (instrument: string, db: Kysely<Tables>) => string | undefined | Promise<string | undefined>;

/** Whether an instrument is known, asked of its owner (store/registry.ts, Registry.instrument). */
export interface InstrumentDirectory {
  instrument(id: string): Promise<unknown>;
}

/**
 * the advisory lock (two-key form) under which a PostgreSQL transaction reads an instrument's status in force and
 * writes the next, so that the audit trail's old value is always the status the change replaced ('lteq')
 */
const STATUS_LOCK = [0x6c74_6571, 1] as const;

const notFound = (instrument: string) =>
  new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" is not known`, {
    reason: 'record.not-found',
    params: { type: 'instrument', id: instrument },
  });

/**
 * The instruments' service status. Its queries run through Kysely on the store's database (SQLite or PostgreSQL), a
 * change in one transaction with its audit-trail entry (AuditTrail.recordIn). A module asking inside its own
 * transaction asks on it (`blockersIn`, `statusAtIn`, `setStatusIn`).
 */
export class EquipmentStatus {
  private readonly checks: EquipmentCheck[] = [];
  private readonly listeners = new Set<(instrument: string) => void>();
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly now: () => number = Date.now,
    /** whether an instrument is known (a status is set only for a known one); without it, every instrument is */
    private readonly instruments?: InstrumentDirectory,
  ) {}

  /** Adds a check run before every run start (the calibration status, when it exists). */
  addCheck(check: EquipmentCheck): void {
    this.checks.push(check);
  }

  /** Calls `listener` after an instrument's service status changed (the dashboards' live lists). */
  onChange(listener: (instrument: string) => void): void {
    this.listeners.add(listener);
  }

  /** The reasons an instrument must not be used; empty when it may. */
  async blockers(instrument: string): Promise<string[]> {
    return this.blockersIn(this.store, instrument);
  }

  /** blockers() read on `db`: the caller's transaction (a run's start), or the store */
  async blockersIn(db: Kysely<Tables> | Transaction<Tables>, instrument: string): Promise<string[]> {
    const found = [serviceBlocker(instrument, await this.status(instrument, { db }))];
    // one after another: on a transaction, its queries go one at a time anyway
    for (const check of this.checks) found.push(await check(instrument, db));
    return found.filter((why): why is string => why !== undefined);
  }

  /**
   * The status in force: now, or at a time `at` (a calibration status of then asks it); `db`: a transaction of the
   * caller's to read in (the owner's answer for a module that must not read the table itself).
   */
  async status(instrument: string, options: { at?: number; db?: Kysely<Tables> } = {}): Promise<InstrumentStatusRecord | undefined> {
    return toRecord(await this.statusQuery(options.db ?? this.store, instrument, options.at).executeTakeFirst());
  }

  async history(instrument: string): Promise<InstrumentStatusRecord[]> {
    const rows = await this.store
      .selectFrom('instrument_status')
      .select(['instrument', 'status', 'reason', 'actor', 'at'])
      .where('instrument', '=', instrument)
      .orderBy('id')
      .execute();
    return rows.map((r) => toRecord(r) as InstrumentStatusRecord);
  }

  /** Takes an instrument out of service or returns it; the reason is required and goes to the audit trail. */
  async setStatus(actor: Actor, instrument: string, status: ServiceStatus, reason: string): Promise<InstrumentStatusRecord> {
    if (this.instruments !== undefined && (await this.instruments.instrument(instrument)) === undefined) throw notFound(instrument);
    const record: InstrumentStatusRecord = { instrument, status, reason, actor: actor.username, at: this.now() };
    await this.store.transaction().execute(async (trx) => {
      // the status in force read and the next written under one lock: two changes at once each replace the other's
      if (dialectOf(trx as unknown as Kysely<unknown>) === 'postgres')
        await sql`SELECT pg_advisory_xact_lock(${STATUS_LOCK[0]}, ${STATUS_LOCK[1]})`.execute(trx);
      const before = await this.status(instrument, { db: trx });
      await this.insertStatus(trx, record).execute();
      await this.audit.recordIn(trx, actor, statusAudit(record, before));
    });
    this.changed(instrument);
    return record;
  }

  /**
   * The service status in force at a time, read in the caller's transaction or on the store (SQLite or PostgreSQL):
   * what the calibration status asks of the service history. Undefined when none was ever set.
   */
  async statusAtIn(db: Kysely<Tables> | Transaction<Tables>, instrument: string, at: number): Promise<ServiceStatus | undefined> {
    return (await this.statusQuery(db, instrument, at).executeTakeFirst())?.status as ServiceStatus | undefined;
  }

  /**
   * setStatus() in the caller's transaction (SQLite or PostgreSQL), with its audit entry in it: a failed intermediate
   * check takes the instrument out of service in the check's own transaction. The listeners hear it before the caller
   * commits, as they did with the synchronous form inside a caller's transaction.
   */
  async setStatusIn(
    trx: Transaction<Tables>,
    actor: Actor,
    instrument: string,
    status: ServiceStatus,
    reason: string,
  ): Promise<InstrumentStatusRecord> {
    const before = toRecord(await this.statusQuery(trx, instrument).executeTakeFirst());
    const record: InstrumentStatusRecord = { instrument, status, reason, actor: actor.username, at: this.now() };
    await trx.insertInto('instrument_status').values(record).execute();
    await this.audit.recordIn(trx, actor, statusAudit(record, before));
    this.changed(instrument);
    return record;
  }

  private statusQuery(db: Kysely<Tables> | Transaction<Tables>, instrument: string, at?: number) {
    return db
      .selectFrom('instrument_status')
      .select(['instrument', 'status', 'reason', 'actor', 'at'])
      .where('instrument', '=', instrument)
      .$if(at !== undefined, (q) => q.where('at', '<=', at as number))
      .orderBy('id', 'desc')
      .limit(1);
  }

  private insertStatus(db: Kysely<Tables>, record: InstrumentStatusRecord) {
    return db
      .insertInto('instrument_status')
      .values({ instrument: record.instrument, status: record.status, reason: record.reason, actor: record.actor, at: record.at });
  }

  private changed(instrument: string): void {
    for (const listener of this.listeners) listener(instrument);
  }
}

function toRecord(
  row: { instrument: string; status: string; reason: string; actor: string; at: number } | undefined,
): InstrumentStatusRecord | undefined {
  return row === undefined
    ? undefined
    : { instrument: row.instrument, status: row.status as ServiceStatus, reason: row.reason, actor: row.actor, at: row.at };
}

function statusAudit(record: InstrumentStatusRecord, before: InstrumentStatusRecord | undefined): AuditInput {
  return {
    action: 'update',
    recordType: 'instrument-status',
    recordId: record.instrument,
    oldValue: { status: before?.status ?? 'in-service' },
    newValue: { status: record.status },
    reason: record.reason,
  };
}

function serviceBlocker(instrument: string, status: InstrumentStatusRecord | undefined): string | undefined {
  if (status?.status === 'out-of-service')
    return `instrument "${instrument}" is out of service since ${new Date(status.at).toISOString()} (${status.reason})`;
  return undefined;
}
