// Calibration records and intermediate checks of instruments (ISO/IEC 17025 6.4.7-6.4.10, 6.5), the
// calibration status computed from them, the run-start interlock on it, and the review list of the runs
// measured with an instrument since its last good check (6.4.9).
import type { Statement } from 'better-sqlite3';
import { sql, type Kysely, type Migration } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { LabDatabase } from '../store/database.js';
import type { EquipmentStatus } from './equipment.js';
import { CALIBRATION_STATES, calibrationInput, checkInput, type CalibrationInput, type CheckInput } from '@labtrace/protocols/api';

const DAY = 86_400_000;

/** Append-only: a wrong record is corrected by a newer one (with its reason), never edited or deleted. */
export const calibrationMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`CREATE TABLE calibrations (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, calibrated_at INTEGER NOT NULL,
      laboratory TEXT NOT NULL, certificate TEXT NOT NULL, results TEXT NOT NULL, uncertainty TEXT NOT NULL,
      adjustments TEXT, acceptance TEXT, next_due_at INTEGER NOT NULL, reason TEXT,
      recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL)`.execute(db);
    await sql`CREATE INDEX calibrations_by_instrument ON calibrations (instrument, calibrated_at)`.execute(db);
    await sql`CREATE TABLE instrument_checks (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, checked_at INTEGER NOT NULL,
      result TEXT NOT NULL CHECK (result IN ('pass', 'fail')), description TEXT NOT NULL,
      recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL)`.execute(db);
    await sql`CREATE INDEX instrument_checks_by_instrument ON instrument_checks (instrument, checked_at)`.execute(db);
    for (const table of ['calibrations', 'instrument_checks']) {
      await sql
        .raw(`CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`)
        .execute(db);
    }
  },
};

// the input schemas are part of the API contract (@labtrace/protocols/api)
export { CALIBRATION_STATES, calibrationInput, checkInput };
export type { CalibrationInput, CheckInput };
export type CalibrationState = (typeof CALIBRATION_STATES)[number];

export interface CalibrationRecord extends Omit<CalibrationInput, 'adjustments' | 'acceptance' | 'reason'> {
  id: number;
  instrument: string;
  adjustments: string | null;
  acceptance: string | null;
  reason: string | null;
  recordedBy: string;
  recordedAt: number;
}

export interface CheckRecord extends CheckInput {
  id: number;
  instrument: string;
  recordedBy: string;
  recordedAt: number;
}

export interface CalibrationStatus {
  instrument: string;
  status: CalibrationState;
  /** when the newest calibration falls due; null without one */
  dueAt: number | null;
  /** the newest calibration (by date performed) and the newest check */
  calibration: Pick<CalibrationRecord, 'id' | 'calibratedAt' | 'laboratory' | 'certificate' | 'nextDueAt'> | null;
  lastCheck: Pick<CheckRecord, 'id' | 'checkedAt' | 'result'> | null;
  /** the last calibration or passed check: where a review after a failure starts */
  lastGoodAt: number | null;
}

/** The runs that measured with an instrument since its last good check or calibration (6.4.9). */
export interface Review {
  instrument: string;
  /** the last good check or calibration; 0 when there was none, and every run is listed */
  since: number;
  runs: { id: string; sample: string; organization: string; state: string; startedAt: number; endedAt: number | null }[];
}

export interface CalibrationOptions {
  /** a run may not start with an instrument never calibrated */
  requireForRuns: boolean;
  /** how long before its due date a calibration shows as due soon */
  dueSoonDays: number;
}

interface CalibrationRow {
  id: number;
  instrument: string;
  calibrated_at: number;
  laboratory: string;
  certificate: string;
  results: string;
  uncertainty: string;
  adjustments: string | null;
  acceptance: string | null;
  next_due_at: number;
  reason: string | null;
  recorded_by: string;
  recorded_at: number;
}

interface CheckRow {
  id: number;
  instrument: string;
  checked_at: number;
  result: 'pass' | 'fail';
  description: string;
  recorded_by: string;
  recorded_at: number;
}

const toCalibration = (r: CalibrationRow): CalibrationRecord => ({
  id: r.id,
  instrument: r.instrument,
  calibratedAt: r.calibrated_at,
  laboratory: r.laboratory,
  certificate: r.certificate,
  results: JSON.parse(r.results) as CalibrationRecord['results'],
  uncertainty: JSON.parse(r.uncertainty) as CalibrationRecord['uncertainty'],
  adjustments: r.adjustments,
  acceptance: r.acceptance,
  nextDueAt: r.next_due_at,
  reason: r.reason,
  recordedBy: r.recorded_by,
  recordedAt: r.recorded_at,
});

const toCheck = (r: CheckRow): CheckRecord => ({
  id: r.id,
  instrument: r.instrument,
  checkedAt: r.checked_at,
  result: r.result,
  description: r.description,
  recordedBy: r.recorded_by,
  recordedAt: r.recorded_at,
});

export class Calibration {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly equipment: EquipmentStatus,
    private readonly options: CalibrationOptions,
    private readonly now: () => number = Date.now,
  ) {
    equipment.addCheck((instrument) => this.blocker(instrument));
  }

  record(actor: Actor, instrument: string, input: CalibrationInput): CalibrationRecord {
    const db = this.database.sqlite;
    return db.transaction(() => {
      this.mustExist(instrument);
      const at = this.now();
      if (input.calibratedAt > at) throw new LabtraceError('E_BAD_REQUEST', 'body: calibratedAt: is in the future');
      const { lastInsertRowid } = db
        .prepare(
          `INSERT INTO calibrations (instrument, calibrated_at, laboratory, certificate, results, uncertainty, adjustments, acceptance,
           next_due_at, reason, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          instrument,
          input.calibratedAt,
          input.laboratory,
          input.certificate,
          JSON.stringify(input.results),
          JSON.stringify(input.uncertainty),
          input.adjustments ?? null,
          input.acceptance ?? null,
          input.nextDueAt,
          input.reason ?? null,
          actor.username,
          at,
        );
      const record = this.calibrationById(Number(lastInsertRowid));
      this.audit.record(actor, {
        action: 'create',
        recordType: 'calibration',
        recordId: `${instrument}/${record.id}`,
        newValue: { instrument, ...input },
        reason: input.reason,
      });
      return record;
    })();
  }

  /**
   * Records an intermediate check. A failed one means the instrument can no longer be trusted: it is taken
   * out of service in the same transaction (6.4.9), and the runs to review come back with the check.
   */
  check(actor: Actor, instrument: string, input: CheckInput): { check: CheckRecord; review?: Review } {
    const db = this.database.sqlite;
    return db.transaction(() => {
      this.mustExist(instrument);
      const at = this.now();
      if (input.checkedAt > at) throw new LabtraceError('E_BAD_REQUEST', 'body: checkedAt: is in the future');
      const { lastInsertRowid } = db
        .prepare('INSERT INTO instrument_checks (instrument, checked_at, result, description, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(instrument, input.checkedAt, input.result, input.description, actor.username, at);
      const check = toCheck(db.prepare('SELECT * FROM instrument_checks WHERE id = ?').get(Number(lastInsertRowid)) as CheckRow);
      this.audit.record(actor, {
        action: 'create',
        recordType: 'instrument-check',
        recordId: `${instrument}/${check.id}`,
        newValue: { instrument, ...input },
        reason: input.description,
      });
      if (input.result === 'pass') return { check };
      if (this.equipment.status(instrument)?.status !== 'out-of-service')
        this.equipment.setStatus(actor, instrument, 'out-of-service', `failed intermediate check ${check.id}: ${input.description}`);
      return { check, review: this.review(instrument) };
    })();
  }

  calibrations(instrument: string): CalibrationRecord[] {
    this.mustExist(instrument);
    return (
      this.database.sqlite.prepare('SELECT * FROM calibrations WHERE instrument = ? ORDER BY calibrated_at, id').all(instrument) as CalibrationRow[]
    ).map(toCalibration);
  }

  checks(instrument: string): CheckRecord[] {
    this.mustExist(instrument);
    return (
      this.database.sqlite.prepare('SELECT * FROM instrument_checks WHERE instrument = ? ORDER BY checked_at, id').all(instrument) as CheckRow[]
    ).map(toCheck);
  }

  /**
   * The status at a time (now unless told), from the records as they stood then: out of service (from the
   * service history) first, then the due date of the newest calibration performed by then. Asked with a
   * sample's time, it says whether the instrument could be trusted when the sample was taken.
   */
  status(instrument: string, at = this.now()): CalibrationStatus {
    this.mustExist(instrument);
    const row = this.statement(
      'SELECT * FROM calibrations WHERE instrument = ? AND calibrated_at <= ? ORDER BY calibrated_at DESC, id DESC LIMIT 1',
    ).get(instrument, at) as CalibrationRow | undefined;
    const checkRow = this.statement(
      'SELECT * FROM instrument_checks WHERE instrument = ? AND checked_at <= ? ORDER BY checked_at DESC, id DESC LIMIT 1',
    ).get(instrument, at) as CheckRow | undefined;
    const passed = this.statement(
      "SELECT MAX(checked_at) AS at FROM instrument_checks WHERE instrument = ? AND result = 'pass' AND checked_at <= ?",
    ).get(instrument, at) as { at: number | null };
    const service = this.statement('SELECT status FROM instrument_status WHERE instrument = ? AND at <= ? ORDER BY id DESC LIMIT 1').get(
      instrument,
      at,
    ) as { status: string } | undefined;
    const lastGood = Math.max(row?.calibrated_at ?? -1, passed.at ?? -1);
    const dueAt = row?.next_due_at ?? null;
    let status: CalibrationState;
    if (service?.status === 'out-of-service') status = 'out-of-service';
    else if (dueAt === null) status = 'never-calibrated';
    else if (at >= dueAt) status = 'expired';
    else if (at >= dueAt - this.options.dueSoonDays * DAY) status = 'due-soon';
    else status = 'valid';
    return {
      instrument,
      status,
      dueAt,
      calibration:
        row === undefined
          ? null
          : { id: row.id, calibratedAt: row.calibrated_at, laboratory: row.laboratory, certificate: row.certificate, nextDueAt: row.next_due_at },
      lastCheck: checkRow === undefined ? null : { id: checkRow.id, checkedAt: checkRow.checked_at, result: checkRow.result },
      lastGoodAt: lastGood < 0 ? null : lastGood,
    };
  }

  /**
   * The reminders at a time: every instrument whose calibration is due soon or expired, or that was never
   * calibrated or is out of service, soonest due first (never calibrated and out of service last).
   */
  reminders(at = this.now()): CalibrationStatus[] {
    const ids = this.database.sqlite.prepare('SELECT id FROM instruments ORDER BY id').all() as { id: string }[];
    return ids
      .map(({ id }) => this.status(id, at))
      .filter((s) => s.status !== 'valid')
      .sort((a, b) => (a.dueAt ?? Infinity) - (b.dueAt ?? Infinity) || a.instrument.localeCompare(b.instrument));
  }

  /** The runs that measured with the instrument (started, and not ended before) since its last good check or calibration. */
  review(instrument: string): Review {
    const since = this.status(instrument).lastGoodAt ?? 0;
    const rows = this.database.sqlite
      .prepare(
        `SELECT id, sample, organization, state, started_at AS startedAt, ended_at AS endedAt FROM runs r
         WHERE started_at IS NOT NULL AND (ended_at IS NULL OR ended_at >= ?)
           AND EXISTS (SELECT 1 FROM json_each(r.instruments) j WHERE json_extract(j.value, '$.id') = ?)
         ORDER BY started_at, id`,
      )
      .all(since, instrument) as Review['runs'];
    return { instrument, since, runs: rows.map((r) => ({ ...r })) };
  }

  /** Why a run may not start with the instrument, as far as calibration goes (out of service has its own check). */
  private blocker(instrument: string): string | undefined {
    const s = this.status(instrument);
    if (s.status === 'expired' && s.dueAt !== null)
      return `instrument "${instrument}" is out of calibration: certificate ${s.calibration?.certificate ?? '?'} expired on ${new Date(s.dueAt).toISOString()}`;
    if (s.status === 'never-calibrated' && this.options.requireForRuns) return `instrument "${instrument}" has no calibration record`;
    if (
      s.status !== 'out-of-service' &&
      s.lastCheck?.result === 'fail' &&
      (s.calibration === null || s.lastCheck.checkedAt >= s.calibration.calibratedAt)
    )
      return `instrument "${instrument}" failed its intermediate check ${s.lastCheck.id} and has not been calibrated since`;
    return undefined;
  }

  private calibrationById(id: number): CalibrationRecord {
    return toCalibration(this.database.sqlite.prepare('SELECT * FROM calibrations WHERE id = ?').get(id) as CalibrationRow);
  }

  /** a statement prepared once: status() runs per instrument of every instrument list a dashboard reads */
  private statement(text: string): Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.database.sqlite.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  private mustExist(instrument: string): void {
    if (!this.statement('SELECT 1 FROM instruments WHERE id = ?').get(instrument))
      throw new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" is not known`, {
        reason: 'record.not-found',
        params: { type: 'instrument', id: instrument },
      });
  }
}
