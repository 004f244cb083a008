// Calibration records and intermediate checks of instruments (ISO/IEC 17025 6.4.7-6.4.10, 6.5), the
// calibration status computed from them, the run-start interlock on it, and the review list of the runs
// measured with an instrument since its last good check (6.4.9).
import { createHash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { LabtraceError } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import type { EquipmentStatus } from './equipment.js';
import {
  ATTACHMENT_MAX_BYTES,
  CALIBRATION_STATES,
  calibrationInput,
  checkInput,
  type Attachment,
  type CalibrationInput,
  type CheckInput,
  type InstrumentRegisterItem,
  type Page,
} from '@labtrace/protocols/api';
import { pageOfRows, pageSql, type PageRequest } from '../api/paging.js';

const DAY = 86_400_000;

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

interface AttachmentRow {
  calibration: number;
  instrument: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  data: Buffer;
  uploaded_by: string;
  uploaded_at: number;
}

interface RegisterRow {
  position: number;
  id: string;
  gateway: string;
  identity: string;
  channels: string;
  due: number | null;
  state: CalibrationState;
}

const toAttachment = (r: Omit<AttachmentRow, 'data'>): Attachment => ({
  filename: r.filename,
  contentType: r.content_type,
  size: r.size,
  sha256: r.sha256,
  uploadedBy: r.uploaded_by,
  uploadedAt: r.uploaded_at,
});

export { ATTACHMENT_MAX_BYTES };

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
  private readonly listeners = new Set<(instrument: string) => void>();

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly equipment: EquipmentStatus,
    private readonly options: CalibrationOptions,
    private readonly now: () => number = Date.now,
  ) {
    equipment.addCheck((instrument) => this.blocker(instrument));
  }

  /** Calls `listener` after a calibration record, check or certificate of an instrument was stored. */
  onChange(listener: (instrument: string) => void): void {
    this.listeners.add(listener);
  }

  private changed(instrument: string): void {
    for (const listener of this.listeners) listener(instrument);
  }

  record(actor: Actor, instrument: string, input: CalibrationInput): CalibrationRecord {
    const db = this.database.sqlite;
    const stored = db.transaction(() => {
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
    this.changed(instrument);
    return stored;
  }

  /**
   * Records an intermediate check. A failed one means the instrument can no longer be trusted: it is taken
   * out of service in the same transaction (6.4.9), and the runs to review come back with the check.
   */
  check(actor: Actor, instrument: string, input: CheckInput): { check: CheckRecord; review?: Review } {
    const db = this.database.sqlite;
    const answer = db.transaction((): { check: CheckRecord; review?: Review } => {
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
      if (this.equipment.statusSync(instrument)?.status !== 'out-of-service')
        this.equipment.setStatusSync(actor, instrument, 'out-of-service', `failed intermediate check ${check.id}: ${input.description}`);
      return { check, review: this.review(instrument) };
    })();
    this.changed(instrument);
    return answer;
  }

  /**
   * Attaches the calibrating lab's certificate (a PDF) to a calibration record of the instrument, once: the bytes are
   * kept with their SHA-256, and the audit trail records the digest.
   */
  attach(actor: Actor, instrument: string, record: number, file: { filename: string; contentType: string; data: Uint8Array }): Attachment {
    const db = this.database.sqlite;
    const stored = db.transaction(() => {
      this.mustExist(instrument);
      const row = db.prepare('SELECT id FROM calibrations WHERE id = ? AND instrument = ?').get(record, instrument);
      if (row === undefined)
        throw new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" has no calibration record ${record}`, {
          reason: 'record.not-found',
          params: { type: 'calibration', id: `${instrument}/${record}` },
        });
      if (db.prepare('SELECT 1 FROM calibration_attachments WHERE calibration = ?').get(record) !== undefined)
        throw new LabtraceError('E_CONFLICT', `calibration record ${record} has its certificate already`, {
          reason: 'calibration.certificate-exists',
          params: { id: record },
        });
      const attachment: Attachment = {
        filename: file.filename,
        contentType: file.contentType,
        size: file.data.byteLength,
        sha256: createHash('sha256').update(file.data).digest('hex'),
        uploadedBy: actor.username,
        uploadedAt: this.now(),
      };
      db.prepare(
        `INSERT INTO calibration_attachments (calibration, instrument, filename, content_type, size, sha256, data, uploaded_by, uploaded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        record,
        instrument,
        attachment.filename,
        attachment.contentType,
        attachment.size,
        attachment.sha256,
        Buffer.from(file.data.buffer, file.data.byteOffset, file.data.byteLength),
        attachment.uploadedBy,
        attachment.uploadedAt,
      );
      this.audit.record(actor, {
        action: 'create',
        recordType: 'calibration-certificate',
        recordId: `${instrument}/${record}`,
        newValue: { filename: attachment.filename, size: attachment.size, sha256: attachment.sha256 },
      });
      return attachment;
    })();
    this.changed(instrument);
    return stored;
  }

  /** The certificate attached to a calibration record, with its bytes; undefined when none is. */
  attachment(instrument: string, record: number): (Attachment & { data: Buffer }) | undefined {
    this.mustExist(instrument);
    const row = this.database.sqlite
      .prepare('SELECT * FROM calibration_attachments WHERE calibration = ? AND instrument = ?')
      .get(record, instrument) as AttachmentRow | undefined;
    return row === undefined ? undefined : { ...toAttachment(row), data: row.data };
  }

  /** The calibration records with their attached certificates (without the bytes), oldest first. */
  calibrationsWithAttachments(instrument: string): (CalibrationRecord & { attachment: Attachment | null })[] {
    const attachments = new Map(
      (
        this.database.sqlite
          .prepare(
            'SELECT calibration, instrument, filename, content_type, size, sha256, uploaded_by, uploaded_at FROM calibration_attachments WHERE instrument = ?',
          )
          .all(instrument) as Omit<AttachmentRow, 'data'>[]
      ).map((r) => [r.calibration, toAttachment(r)]),
    );
    return this.calibrations(instrument).map((c) => ({ ...c, attachment: attachments.get(c.id) ?? null }));
  }

  /**
   * The instrument register: a page of the lab's instruments, newest registered first (by row id), searched over
   * id, maker, model, serial number and location, filtered by the calibration status now (computed in SQL the way
   * status() computes it) and by whether the instrument's gateway is connected.
   */
  register(
    query: PageRequest & { q?: string | undefined; calibration?: CalibrationState | undefined; connected?: boolean | undefined },
    connectedGateways: ReadonlySet<string>,
    at = this.now(),
  ): Page<InstrumentRegisterItem> {
    const page = pageSql(query, 'position');
    const where: string[] = [page.where];
    const filters: unknown[] = [...page.params];
    if (query.q !== undefined && query.q !== '') {
      const like = `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push(
        `(id LIKE ? ESCAPE '\\' OR json_extract(identity, '$.maker') LIKE ? ESCAPE '\\' OR json_extract(identity, '$.model') LIKE ? ESCAPE '\\'
          OR json_extract(identity, '$.serialNumber') LIKE ? ESCAPE '\\' OR json_extract(identity, '$.location') LIKE ? ESCAPE '\\')`,
      );
      filters.push(like, like, like, like, like);
    }
    if (query.calibration !== undefined) {
      where.push('state = ?');
      filters.push(query.calibration);
    }
    if (query.connected !== undefined) {
      const gateways = [...connectedGateways];
      where.push(`gateway ${query.connected ? '' : 'NOT '}IN (${gateways.map(() => '?').join(', ')})`);
      filters.push(...gateways);
    }
    const rows = this.database.sqlite
      .prepare(
        `SELECT * FROM (
           SELECT i.position, i.id, i.gateway, i.identity, i.channels, due,
             CASE WHEN (SELECT status FROM instrument_status s WHERE s.instrument = i.id AND s.at <= ? ORDER BY s.id DESC LIMIT 1) = 'out-of-service'
                    THEN 'out-of-service'
                  WHEN due IS NULL THEN 'never-calibrated'
                  WHEN ? >= due THEN 'expired'
                  WHEN ? >= due - ? THEN 'due-soon'
                  ELSE 'valid' END AS state
           FROM (SELECT i.rowid AS position, i.*, (SELECT next_due_at FROM calibrations c WHERE c.instrument = i.id AND c.calibrated_at <= ?
                              ORDER BY c.calibrated_at DESC, c.id DESC LIMIT 1) AS due FROM instruments i) i
         ) WHERE ${where.join(' AND ')} ${page.orderLimit}`,
      )
      .all(at, at, at, this.options.dueSoonDays * DAY, at, ...filters) as RegisterRow[];
    return pageOfRows(
      rows,
      query,
      (r) => r.position,
      (r) => ({
        id: r.id,
        gateway: r.gateway,
        identity: JSON.parse(r.identity) as InstrumentRegisterItem['identity'],
        channels: JSON.parse(r.channels) as InstrumentRegisterItem['channels'],
        connected: connectedGateways.has(r.gateway),
        calibration: { status: r.state, dueAt: r.due },
      }),
    );
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
    return this.statusOf(instrument, at, row, checkRow, passed.at, service?.status);
  }

  /**
   * status(), read through Kysely on the store's database or a transaction (SQLite or PostgreSQL): for a module
   * that reads its figures in one transaction of its own (the overview). The same records, the same answer.
   */
  async statusIn(db: Kysely<Tables>, instrument: string, at = this.now()): Promise<CalibrationStatus> {
    if ((await db.selectFrom('instruments').select('id').where('id', '=', instrument).executeTakeFirst()) === undefined) throw notKnown(instrument);
    const row = await db
      .selectFrom('calibrations')
      .selectAll()
      .where('instrument', '=', instrument)
      .where('calibrated_at', '<=', at)
      .orderBy('calibrated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const checkRow = await db
      .selectFrom('instrument_checks')
      .selectAll()
      .where('instrument', '=', instrument)
      .where('checked_at', '<=', at)
      .orderBy('checked_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const passed = await db
      .selectFrom('instrument_checks')
      .select((eb) => eb.fn.max('checked_at').as('at'))
      .where('instrument', '=', instrument)
      .where('result', '=', 'pass')
      .where('checked_at', '<=', at)
      .executeTakeFirst();
    const service = await db
      .selectFrom('instrument_status')
      .select('status')
      .where('instrument', '=', instrument)
      .where('at', '<=', at)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return this.statusOf(instrument, at, row, checkRow as CheckRow | undefined, passed?.at ?? null, service?.status);
  }

  /** the status from the records read by status() or statusIn() */
  private statusOf(
    instrument: string,
    at: number,
    row: CalibrationRow | undefined,
    checkRow: CheckRow | undefined,
    passedAt: number | null,
    serviceStatus: string | undefined,
  ): CalibrationStatus {
    const lastGood = Math.max(row?.calibrated_at ?? -1, passedAt ?? -1);
    const dueAt = row?.next_due_at ?? null;
    let status: CalibrationState;
    if (serviceStatus === 'out-of-service') status = 'out-of-service';
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
    if (!this.statement('SELECT 1 FROM instruments WHERE id = ?').get(instrument)) throw notKnown(instrument);
  }
}

const notKnown = (instrument: string): LabtraceError =>
  new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" is not known`, {
    reason: 'record.not-found',
    params: { type: 'instrument', id: instrument },
  });
