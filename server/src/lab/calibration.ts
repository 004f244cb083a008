// Calibration records and intermediate checks of instruments (ISO/IEC 17025 6.4.7-6.4.10, 6.5), the
// calibration status computed from them, the run-start interlock on it, and the review list of the runs
// measured with an instrument since its last good check (6.4.9).
import { createHash } from 'node:crypto';
import { LabtraceError } from '@labtrace/protocols';
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Actor, AuditInput, AuditTrail } from '../audit/audit-trail.js';
import type { Tables, Transact } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import { Registry } from '../store/registry.js';
import type { EquipmentStatus, ServiceStatus } from './equipment.js';
import { runsUsingInstrument } from './runs.js';
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
import { pageOfRows, type PageRequest } from '../api/paging.js';

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

/**
 * What calibration asks the modules that own the tables it reads but does not own (issue 17: each module owns its
 * tables), in the caller's transaction or on the store, SQLite or PostgreSQL: the registry (is the instrument
 * known), the equipment's service history (the status at a time; out of service after a failed check) and the runs
 * (those that measured with the instrument, for the review). By default, the owners' own methods.
 */
export interface CalibrationNeighbours {
  instrumentKnown(db: Kysely<Tables>, instrument: string): Promise<boolean>;
  /** every instrument the registry knows, by id */
  instrumentIds(db: Kysely<Tables>): Promise<string[]>;
  serviceStatusAt(db: Kysely<Tables>, instrument: string, at: number): Promise<ServiceStatus | undefined>;
  takeOutOfService(trx: Transaction<Tables>, actor: Actor, instrument: string, reason: string): Promise<void>;
  runsWith(db: Kysely<Tables>, instrument: string, since: number): Promise<Review['runs']>;
}

/** the advisory lock (two-key form, the second the instrument's hash) under which a PostgreSQL transaction records an instrument's calibration or check ('ltca') */
const CALIBRATION_LOCK = 0x6c74_6361;

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

/** the identity fields the register searches, besides the id */
const IDENTITY_SEARCHED = ['maker', 'model', 'serialNumber', 'location'] as const;

/** a LIKE pattern finding `text` anywhere, with % _ and the escape character itself taken literally (ESCAPE '\') */
const likeAnywhere = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

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

/**
 * The calibration records, checks and attached certificates of the lab's instruments. Its queries run through Kysely
 * on the store's database (SQLite or PostgreSQL), each record in one transaction with its audit-trail entry
 * (AuditTrail.recordIn). The records of one instrument are made one at a time across nodes (on PostgreSQL an advisory
 * lock per instrument): a new calibration record supersedes the one in force when it is made, and its audit entry
 * names it, so that two records made at once on two nodes cannot both claim to supersede the same one.
 * A module asking inside its own transaction asks on it (`statusIn`).
 */
export class Calibration {
  private readonly listeners = new Set<(instrument: string) => void>();
  private readonly postgres: boolean;
  /** the owners of the instruments, the service history and the runs */
  private readonly sources: CalibrationNeighbours;

  constructor(
    /** the store's Kysely, SQLite or PostgreSQL */
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    equipment: EquipmentStatus,
    private readonly options: CalibrationOptions,
    private readonly now: () => number = Date.now,
    neighbours?: CalibrationNeighbours,
  ) {
    const registry = new Registry({ db: this.store });
    this.sources = neighbours ?? {
      instrumentKnown: (db, id) => registry.known(id, db),
      instrumentIds: (db) => registry.instrumentIds(db),
      serviceStatusAt: (db, id, at) => equipment.statusAtIn(db, id, at),
      takeOutOfService: async (trx, actor, id, reason) => {
        await equipment.setStatusIn(trx, actor, id, 'out-of-service', reason);
      },
      runsWith: runsUsingInstrument,
    };
    this.postgres = dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
    equipment.addCheck((instrument, db) => this.blockerIn(db, instrument));
  }

  /** Calls `listener` after a calibration record, check or certificate of an instrument was stored. */
  onChange(listener: (instrument: string) => void): void {
    this.listeners.add(listener);
  }

  private changed(instrument: string): void {
    for (const listener of this.listeners) listener(instrument);
  }

  /**
   * Records a calibration. It supersedes the record in force (the newest performed) unless it was performed before
   * that one; its audit entry names the record it supersedes. The instrument's records are made one at a time.
   * `transact`: the transaction it is recorded in (a job's fenced one; the store's by default).
   */
  async record(actor: Actor, instrument: string, input: CalibrationInput, transact?: Transact): Promise<CalibrationRecord> {
    const stored = await (transact ?? ((work) => this.store.transaction().execute(work)))(async (trx) => {
      await this.mustExistIn(trx, instrument);
      const at = this.now();
      if (input.calibratedAt > at) throw new LabtraceError('E_BAD_REQUEST', 'body: calibratedAt: is in the future');
      await this.hold(trx, instrument);
      const last = await this.newestQuery(trx, instrument, Number.MAX_SAFE_INTEGER).executeTakeFirst();
      const row = await trx
        .insertInto('calibrations')
        .values(calibrationValues(actor, instrument, input, at))
        .returningAll()
        .executeTakeFirstOrThrow();
      const record = toCalibration(row);
      await this.audit.recordIn(trx, actor, calibrationAudit(instrument, record.id, input, last));
      return record;
    });
    this.changed(instrument);
    return stored;
  }

  /**
   * Records an intermediate check. A failed one means the instrument can no longer be trusted: it is taken
   * out of service in the same transaction (6.4.9), and the runs to review come back with the check.
   */
  async check(actor: Actor, instrument: string, input: CheckInput): Promise<{ check: CheckRecord; review?: Review }> {
    const answer = await this.store.transaction().execute(async (trx): Promise<{ check: CheckRecord; review?: Review }> => {
      await this.mustExistIn(trx, instrument);
      const at = this.now();
      if (input.checkedAt > at) throw new LabtraceError('E_BAD_REQUEST', 'body: checkedAt: is in the future');
      // one at a time per instrument: two failed checks at once take it out of service once
      await this.hold(trx, instrument);
      const row = await trx
        .insertInto('instrument_checks')
        .values({
          instrument,
          checked_at: input.checkedAt,
          result: input.result,
          description: input.description,
          recorded_by: actor.username,
          recorded_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const check = toCheck(row as CheckRow);
      await this.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'instrument-check',
        recordId: `${instrument}/${check.id}`,
        newValue: { instrument, ...input },
        reason: input.description,
      });
      if (input.result === 'pass') return { check };
      if ((await this.sources.serviceStatusAt(trx, instrument, Number.MAX_SAFE_INTEGER)) !== 'out-of-service')
        await this.sources.takeOutOfService(trx, actor, instrument, `failed intermediate check ${check.id}: ${input.description}`);
      return { check, review: await this.reviewIn(trx, instrument) };
    });
    this.changed(instrument);
    return answer;
  }

  /**
   * Attaches the calibrating lab's certificate (a PDF) to a calibration record of the instrument, once: the bytes are
   * kept with their SHA-256, and the audit trail records the digest.
   */
  async attach(
    actor: Actor,
    instrument: string,
    record: number,
    file: { filename: string; contentType: string; data: Uint8Array },
  ): Promise<Attachment> {
    const stored = await this.store.transaction().execute(async (trx) => {
      await this.mustExistIn(trx, instrument);
      const row = await trx.selectFrom('calibrations').select('id').where('id', '=', record).where('instrument', '=', instrument).executeTakeFirst();
      if (row === undefined)
        throw new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" has no calibration record ${record}`, {
          reason: 'record.not-found',
          params: { type: 'calibration', id: `${instrument}/${record}` },
        });
      const attachment: Attachment = {
        filename: file.filename,
        contentType: file.contentType,
        size: file.data.byteLength,
        sha256: createHash('sha256').update(file.data).digest('hex'),
        uploadedBy: actor.username,
        uploadedAt: this.now(),
      };
      // one statement: two uploads at once (two nodes) keep one certificate and refuse the other
      const inserted = await trx
        .insertInto('calibration_attachments')
        .values({
          calibration: record,
          instrument,
          filename: attachment.filename,
          content_type: attachment.contentType,
          size: attachment.size,
          sha256: attachment.sha256,
          data: file.data,
          uploaded_by: attachment.uploadedBy,
          uploaded_at: attachment.uploadedAt,
        })
        .onConflict((oc) => oc.column('calibration').doNothing())
        .returning('calibration')
        .executeTakeFirst();
      if (inserted === undefined)
        throw new LabtraceError('E_CONFLICT', `calibration record ${record} has its certificate already`, {
          reason: 'calibration.certificate-exists',
          params: { id: record },
        });
      await this.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'calibration-certificate',
        recordId: `${instrument}/${record}`,
        newValue: { filename: attachment.filename, size: attachment.size, sha256: attachment.sha256 },
      });
      return attachment;
    });
    this.changed(instrument);
    return stored;
  }

  /** The certificate attached to a calibration record, with its bytes; undefined when none is. */
  async attachment(instrument: string, record: number): Promise<(Attachment & { data: Buffer }) | undefined> {
    await this.mustExistIn(this.store, instrument);
    const row = await this.store
      .selectFrom('calibration_attachments')
      .selectAll()
      .where('calibration', '=', record)
      .where('instrument', '=', instrument)
      .executeTakeFirst();
    return row === undefined ? undefined : { ...toAttachment(row), data: row.data };
  }

  /** The calibration records with their attached certificates (without the bytes), oldest first. */
  async calibrationsWithAttachments(instrument: string): Promise<(CalibrationRecord & { attachment: Attachment | null })[]> {
    const records = await this.calibrations(instrument);
    const rows = await this.store
      .selectFrom('calibration_attachments')
      .select(['calibration', 'instrument', 'filename', 'content_type', 'size', 'sha256', 'uploaded_by', 'uploaded_at'])
      .where('instrument', '=', instrument)
      .execute();
    const attachments = new Map(rows.map((r) => [r.calibration, toAttachment(r)]));
    return records.map((c) => ({ ...c, attachment: attachments.get(c.id) ?? null }));
  }

  /**
   * The instrument register: a page of the lab's instruments, newest registered first (by their place in the register,
   * store migration 0063), searched over id, maker, model, serial number and location (ASCII letters in either case;
   * % and _ taken literally), filtered by the calibration status at `at` (computed in SQL the way status() computes
   * it) and by whether the instrument's gateway is connected. One query, the same on SQLite and PostgreSQL.
   */
  async register(
    query: PageRequest & { q?: string | undefined; calibration?: CalibrationState | undefined; connected?: boolean | undefined },
    connectedGateways: ReadonlySet<string>,
    at = this.now(),
  ): Promise<Page<InstrumentRegisterItem>> {
    const gateways = [...connectedGateways];
    // connected, and no gateway is: none (an empty IN list is no SQL on PostgreSQL)
    if (query.connected === true && gateways.length === 0) return { items: [], next: null };
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const q = query.q ?? '';
    const pattern = likeAnywhere(q);
    const matches = (value: RawBuilder<unknown>) => sql<boolean>`lower(${value}) LIKE lower(${pattern}) ESCAPE '\\'`;
    // the identity is JSON in a text column (store/tables.ts): read with each engine's JSON function
    const identityField = (field: (typeof IDENTITY_SEARCHED)[number]): RawBuilder<unknown> =>
      this.postgres ? sql.raw(`(i.identity::json ->> '${field}')`) : sql.raw(`json_extract(i.identity, '$.${field}')`);
    // each instrument with the due date of the calibration in force at `at` and its service status then
    const instruments = this.store
      .selectFrom('instruments as i')
      .select((eb) => [
        'i.position',
        'i.id',
        'i.gateway',
        'i.identity',
        'i.channels',
        eb
          .selectFrom('calibrations as c')
          .select('c.next_due_at')
          .whereRef('c.instrument', '=', 'i.id')
          .where('c.calibrated_at', '<=', at)
          .orderBy('c.calibrated_at', 'desc')
          .orderBy('c.id', 'desc')
          .limit(1)
          .as('due'),
        eb
          .selectFrom('instrument_status as s')
          .select('s.status')
          .whereRef('s.instrument', '=', 'i.id')
          .where('s.at', '<=', at)
          .orderBy('s.id', 'desc')
          .limit(1)
          .as('service'),
      ])
      .$if(cursor !== undefined, (b) => b.where('i.position', '<', cursor as number))
      .$if(q !== '', (b) => b.where((eb) => eb.or([matches(sql.ref('i.id')), ...IDENTITY_SEARCHED.map((f) => matches(identityField(f)))])))
      .$if(query.connected === true, (b) => b.where('i.gateway', 'in', gateways))
      .$if(query.connected === false && gateways.length > 0, (b) => b.where('i.gateway', 'not in', gateways));
    // the status as statusOf() decides it: out of service first, then the due date
    const withState = this.store.selectFrom(instruments.as('r')).select([
      'r.position',
      'r.id',
      'r.gateway',
      'r.identity',
      'r.channels',
      'r.due',
      sql<CalibrationState>`CASE WHEN r.service = 'out-of-service' THEN 'out-of-service'
          WHEN r.due IS NULL THEN 'never-calibrated'
          WHEN ${at} >= r.due THEN 'expired'
          WHEN ${at} >= r.due - ${this.options.dueSoonDays * DAY} THEN 'due-soon'
          ELSE 'valid' END`.as('state'),
    ]);
    const rows = await this.store
      .selectFrom(withState.as('x'))
      .selectAll()
      .$if(query.calibration !== undefined, (b) => b.where('x.state', '=', query.calibration as CalibrationState))
      .orderBy('x.position', 'desc')
      .limit(Math.max(1, Math.floor(query.limit)) + 1)
      .execute();
    return pageOfRows(
      rows,
      query,
      (r) => r.position ?? 0,
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

  async calibrations(instrument: string): Promise<CalibrationRecord[]> {
    await this.mustExistIn(this.store, instrument);
    return (await this.calibrationsQuery(this.store, instrument).execute()).map((r) => toCalibration(r));
  }

  async checks(instrument: string): Promise<CheckRecord[]> {
    await this.mustExistIn(this.store, instrument);
    const rows = await this.store
      .selectFrom('instrument_checks')
      .selectAll()
      .where('instrument', '=', instrument)
      .orderBy('checked_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => toCheck(r as CheckRow));
  }

  /**
   * The status at a time (now unless told), from the records as they stood then: out of service (from the
   * service history) first, then the due date of the newest calibration performed by then. Asked with a
   * sample's time, it says whether the instrument could be trusted when the sample was taken.
   */
  async status(instrument: string, at = this.now()): Promise<CalibrationStatus> {
    return this.statusIn(this.store, instrument, at);
  }

  /**
   * status(), read through Kysely on the store's database or a transaction (SQLite or PostgreSQL): for a module
   * that reads its figures in one transaction of its own (the overview). The same records, the same answer.
   */
  async statusIn(db: Kysely<Tables>, instrument: string, at = this.now()): Promise<CalibrationStatus> {
    await this.mustExistIn(db, instrument);
    const row = await this.newestQuery(db, instrument, at).executeTakeFirst();
    const checkRow = await this.lastCheckQuery(db, instrument, at).executeTakeFirst();
    const passed = await this.lastPassQuery(db, instrument, at).executeTakeFirst();
    const service = await this.sources.serviceStatusAt(db, instrument, at);
    return this.statusOf(instrument, at, row, checkRow as CheckRow | undefined, passed?.at ?? null, service);
  }

  /** the newest calibration performed by a time (the one in force then) */
  private newestQuery(db: Kysely<Tables>, instrument: string, at: number) {
    return db
      .selectFrom('calibrations')
      .selectAll()
      .where('instrument', '=', instrument)
      .where('calibrated_at', '<=', at)
      .orderBy('calibrated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1);
  }

  private lastCheckQuery(db: Kysely<Tables>, instrument: string, at: number) {
    return db
      .selectFrom('instrument_checks')
      .selectAll()
      .where('instrument', '=', instrument)
      .where('checked_at', '<=', at)
      .orderBy('checked_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1);
  }

  private lastPassQuery(db: Kysely<Tables>, instrument: string, at: number) {
    return db
      .selectFrom('instrument_checks')
      .select((eb) => eb.fn.max('checked_at').as('at'))
      .where('instrument', '=', instrument)
      .where('result', '=', 'pass')
      .where('checked_at', '<=', at);
  }

  private calibrationsQuery(db: Kysely<Tables>, instrument: string) {
    return db.selectFrom('calibrations').selectAll().where('instrument', '=', instrument).orderBy('calibrated_at').orderBy('id');
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
    const status = this.stateOf(at, dueAt, serviceStatus);
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

  /** the state at `at` from the due date of the calibration in force then and the service status then */
  private stateOf(at: number, dueAt: number | null, serviceStatus: string | undefined): CalibrationState {
    if (serviceStatus === 'out-of-service') return 'out-of-service';
    if (dueAt === null) return 'never-calibrated';
    if (at >= dueAt) return 'expired';
    if (at >= dueAt - this.options.dueSoonDays * DAY) return 'due-soon';
    return 'valid';
  }

  /**
   * The status and due date of every instrument the registry knows, at a time (now unless told): status()'s
   * `status` and `dueAt` for all of them in one query (the instrument list reads them on every request; five
   * queries an instrument cost more than the rest of the request).
   */
  async states(at = this.now()): Promise<Map<string, { status: CalibrationState; dueAt: number | null }>> {
    const { rows } = await sql<{ id: string; due: number | null; service: string | null }>`
      SELECT i.id,
        (SELECT c.next_due_at FROM calibrations c WHERE c.instrument = i.id AND c.calibrated_at <= ${at}
          ORDER BY c.calibrated_at DESC, c.id DESC LIMIT 1) AS due,
        (SELECT s.status FROM instrument_status s WHERE s.instrument = i.id AND s.at <= ${at}
          ORDER BY s.id DESC LIMIT 1) AS service
      FROM instruments i`.execute(this.store);
    const states = new Map<string, { status: CalibrationState; dueAt: number | null }>();
    for (const r of rows) {
      states.set(r.id, { status: this.stateOf(at, r.due, r.service ?? undefined), dueAt: r.due });
    }
    return states;
  }

  /**
   * The reminders at a time: every instrument whose calibration is due soon or expired, or that was never
   * calibrated or is out of service, soonest due first (never calibrated and out of service last).
   * Every instrument the registry knows, read in one transaction, so that the statuses agree with each other.
   */
  async reminders(at = this.now()): Promise<CalibrationStatus[]> {
    const statuses = await this.store.transaction().execute(async (trx) => {
      const ids = await this.sources.instrumentIds(trx);
      const all: CalibrationStatus[] = [];
      for (const id of ids) all.push(await this.statusIn(trx, id, at));
      return all;
    });
    return statuses
      .filter((s) => s.status !== 'valid')
      .sort((a, b) => (a.dueAt ?? Infinity) - (b.dueAt ?? Infinity) || a.instrument.localeCompare(b.instrument));
  }

  /** The runs that measured with the instrument (started, and not ended before) since its last good check or calibration. */
  async review(instrument: string): Promise<Review> {
    return this.reviewIn(this.store, instrument);
  }

  private async reviewIn(db: Kysely<Tables>, instrument: string): Promise<Review> {
    const since = (await this.statusIn(db, instrument)).lastGoodAt ?? 0;
    return { instrument, since, runs: await this.sources.runsWith(db, instrument, since) };
  }

  /** Why a run may not start with the instrument, as far as calibration goes (out of service has its own check). */
  private async blockerIn(db: Kysely<Tables>, instrument: string): Promise<string | undefined> {
    const s = await this.statusIn(db, instrument);
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

  /** PostgreSQL: the instrument's records made one at a time across nodes, until the transaction ends (SQLite has one writer) */
  private async hold(trx: Transaction<Tables>, instrument: string): Promise<void> {
    if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${CALIBRATION_LOCK}, hashtext(${instrument}))`.execute(trx);
  }

  private async mustExistIn(db: Kysely<Tables>, instrument: string): Promise<void> {
    if (!(await this.sources.instrumentKnown(db, instrument))) throw notKnown(instrument);
  }
}

/** the row of a calibration record */
function calibrationValues(actor: Actor, instrument: string, input: CalibrationInput, at: number) {
  return {
    instrument,
    calibrated_at: input.calibratedAt,
    laboratory: input.laboratory,
    certificate: input.certificate,
    results: JSON.stringify(input.results),
    uncertainty: JSON.stringify(input.uncertainty),
    adjustments: input.adjustments ?? null,
    acceptance: input.acceptance ?? null,
    next_due_at: input.nextDueAt,
    reason: input.reason ?? null,
    recorded_by: actor.username,
    recorded_at: at,
  };
}

/** the audit entry of a calibration record: the record in force before it, when it supersedes that one */
function calibrationAudit(instrument: string, id: number, input: CalibrationInput, last: CalibrationRow | undefined): AuditInput {
  const supersedes = last !== undefined && input.calibratedAt >= last.calibrated_at ? last : undefined;
  return {
    action: 'create',
    recordType: 'calibration',
    recordId: `${instrument}/${id}`,
    ...(supersedes === undefined
      ? {}
      : { oldValue: { supersedes: supersedes.id, certificate: supersedes.certificate, nextDueAt: supersedes.next_due_at } }),
    newValue: { instrument, ...input },
    reason: input.reason,
  };
}

const notKnown = (instrument: string): LabtraceError =>
  new LabtraceError('E_NOT_FOUND', `instrument "${instrument}" is not known`, {
    reason: 'record.not-found',
    params: { type: 'instrument', id: instrument },
  });
