// Whether an instrument may be used in a test run (ISO/IEC 17025 6.4.8-6.4.9). Today one check: its
// service status, kept as a history (the newest row is in force). Calibration status comes with its own
// records: it plugs in as another EquipmentCheck, and every run start consults all of them.
import { LabtraceError } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Kysely, Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';

export type ServiceStatus = 'in-service' | 'out-of-service';

export interface InstrumentStatusRecord {
  instrument: string;
  status: ServiceStatus;
  reason: string;
  actor: string;
  at: number;
}

/** Says why an instrument must not be used now, or undefined when nothing stands against it. */
export type EquipmentCheck = (instrument: string) => string | undefined;

export class EquipmentStatus {
  private readonly checks: EquipmentCheck[] = [(instrument) => this.serviceCheck(instrument)];
  private readonly listeners = new Set<(instrument: string) => void>();

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly now: () => number = Date.now,
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
  blockers(instrument: string): string[] {
    return this.checks.map((check) => check(instrument)).filter((why): why is string => why !== undefined);
  }

  status(instrument: string): InstrumentStatusRecord | undefined {
    const row = this.database.sqlite
      .prepare('SELECT instrument, status, reason, actor, at FROM instrument_status WHERE instrument = ? ORDER BY id DESC LIMIT 1')
      .get(instrument) as InstrumentStatusRecord | undefined;
    return row === undefined ? undefined : { ...row };
  }

  history(instrument: string): InstrumentStatusRecord[] {
    return (
      this.database.sqlite
        .prepare('SELECT instrument, status, reason, actor, at FROM instrument_status WHERE instrument = ? ORDER BY id')
        .all(instrument) as InstrumentStatusRecord[]
    ).map((r) => ({ ...r }));
  }

  /** Takes an instrument out of service or returns it; the reason is required and goes to the audit trail. */
  setStatus(actor: Actor, instrument: string, status: ServiceStatus, reason: string): InstrumentStatusRecord {
    const db = this.database.sqlite;
    if (!db.prepare('SELECT 1 FROM instruments WHERE id = ?').get(instrument))
      throw new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" is not known`, {
        reason: 'record.not-found',
        params: { type: 'instrument', id: instrument },
      });
    const record = db.transaction(() => {
      const before = this.status(instrument);
      const record: InstrumentStatusRecord = { instrument, status, reason, actor: actor.username, at: this.now() };
      db.prepare('INSERT INTO instrument_status (instrument, status, reason, actor, at) VALUES (?, ?, ?, ?, ?)').run(
        instrument,
        status,
        reason,
        record.actor,
        record.at,
      );
      this.audit.record(actor, {
        action: 'update',
        recordType: 'instrument-status',
        recordId: instrument,
        oldValue: { status: before?.status ?? 'in-service' },
        newValue: { status },
        reason,
      });
      return record;
    })();
    // after the commit (a failed check calls this inside its own transaction: its listeners hear it a moment early)
    for (const listener of this.listeners) listener(instrument);
    return record;
  }

  /**
   * The service status in force at a time, read through Kysely in the caller's transaction or on the store (SQLite
   * or PostgreSQL): what the calibration status asks of the service history. Undefined when none was ever set.
   */
  async statusAtIn(db: Kysely<Tables>, instrument: string, at: number): Promise<ServiceStatus | undefined> {
    const row = await db
      .selectFrom('instrument_status')
      .select('status')
      .where('instrument', '=', instrument)
      .where('at', '<=', at)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.status as ServiceStatus | undefined;
  }

  /**
   * setStatus() in the caller's Kysely transaction (SQLite or PostgreSQL), with its audit entry in it: a failed
   * intermediate check takes the instrument out of service in the check's own transaction. The listeners hear it
   * before the caller commits, as they did with the synchronous form inside a caller's transaction.
   */
  async setStatusIn(
    trx: Transaction<Tables>,
    actor: Actor,
    instrument: string,
    status: ServiceStatus,
    reason: string,
  ): Promise<InstrumentStatusRecord> {
    const before = await this.statusAtIn(trx, instrument, Number.MAX_SAFE_INTEGER);
    const record: InstrumentStatusRecord = { instrument, status, reason, actor: actor.username, at: this.now() };
    await trx.insertInto('instrument_status').values(record).execute();
    await this.audit.recordIn(trx, actor, {
      action: 'update',
      recordType: 'instrument-status',
      recordId: instrument,
      oldValue: { status: before ?? 'in-service' },
      newValue: { status },
      reason,
    });
    for (const listener of this.listeners) listener(instrument);
    return record;
  }

  private serviceCheck(instrument: string): string | undefined {
    const status = this.status(instrument);
    if (status?.status === 'out-of-service')
      return `instrument "${instrument}" is out of service since ${new Date(status.at).toISOString()} (${status.reason})`;
    return undefined;
  }
}
