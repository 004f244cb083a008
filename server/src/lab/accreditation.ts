// The lab's accreditations (ISO/IEC 17025, CNAS-R01, A2LA P101, ILAC R7): who accredited the lab, under
// which number, for how long, and for what scope (methods with their measurands and ranges). The status
// and the scope at any time are computed from the records and their events, never stored, and decide
// whether a run or a result is accredited.
import { LabtraceError } from '@labtrace/protocols';
import { SYSTEM_ACTOR, type Actor, type AuditTrail } from '../audit/audit-trail.js';
import type { Logger } from '../log.js';
import type { LabDatabase } from '../store/database.js';
import { isoOrUndefined } from '../api/time.js';
import type { ScopeCheck, ScopeVerdict } from './contracts.js';
import {
  ACCREDITATION_EVENT_KINDS,
  ACCREDITATION_STATES,
  accreditationInput,
  eventInput,
  scopeEntrySchema,
  scopeInput,
  type AccreditationEventKind,
  type AccreditationInput,
  type AccreditationState,
  type EventInput,
  type ScopeEntry,
  type ScopeInput,
} from '@labtrace/protocols/api';

const DAY = 86_400_000;

// the input schemas are part of the API contract (@labtrace/protocols/api)
export { ACCREDITATION_STATES, accreditationInput, eventInput, scopeEntrySchema, scopeInput };
export type { AccreditationEventKind, AccreditationInput, AccreditationState, EventInput, ScopeEntry, ScopeInput };
export const EVENT_KINDS = ACCREDITATION_EVENT_KINDS;

// the config schema lives in its own file, so that the config reaches no workflow code
export { accreditationConfigSchema, type AccreditationConfig } from './accreditation-config.js';

export interface AccreditationEvent {
  id: number;
  kind: AccreditationEventKind;
  /** when it took effect: when it was recorded */
  at: number;
  reason: string;
  recordedBy: string;
}

export interface ScopeVersion {
  version: number;
  /** in force from: valid_from for version 1, the time it was recorded for later versions */
  effectiveFrom: number;
  /** why it changed; null for the scope as granted */
  reason: string | null;
  entries: ScopeEntry[];
  recordedBy: string;
  recordedAt: number;
}

export interface AccreditationWarning {
  code: 'expiring-soon';
  message: string;
  /** whole days (rounded up) until valid_to */
  daysLeft: number;
}

/** An accreditation as it stood at a time: its record, computed status, warnings, scope in force and events so far. */
export interface AccreditationView {
  id: string;
  body: string;
  number: string;
  standard: string;
  validFrom: number;
  validTo: number;
  /** the time the view is computed for */
  at: number;
  status: AccreditationState;
  /** when the status began (the event, valid_from or valid_to); null for not-yet-valid */
  statusSince: number | null;
  warnings: AccreditationWarning[];
  scope: ScopeVersion;
  events: AccreditationEvent[];
  recordedBy: string;
  recordedAt: number;
}

/** What the public may read: enough for a certificate's reader to check the accreditation mark. */
export interface PublicAccreditation {
  id: string;
  body: string;
  number: string;
  standard: string;
  status: AccreditationState;
  statusSince: number | null;
  validFrom: number;
  validTo: number;
}

/** The method-level scope check of runs and methods (value ranges aside). */
export interface MethodScopeCheck {
  methodInScope(standard: string, measurands: readonly { name: string; unit: string }[], at: number): boolean;
}

export interface AccreditationOptions {
  warnDays: number;
  /** recorded at start when not there yet */
  accreditations: AccreditationInput[];
  /** how often the expiry check logs its warnings (default a day) */
  checkIntervalMs?: number;
}

interface AccreditationRow {
  id: string;
  body: string;
  number: string;
  standard: string;
  valid_from: number;
  valid_to: number;
  recorded_by: string;
  recorded_at: number;
}

interface LoadedRecord {
  row: AccreditationRow;
  /** oldest first */
  scopes: ScopeVersion[];
  /** by time */
  events: AccreditationEvent[];
}

interface ScopeRow {
  accreditation: string;
  version: number;
  effective_from: number;
  entries: string;
  reason: string | null;
  recorded_by: string;
  recorded_at: number;
}

interface EventRow {
  id: number;
  accreditation: string;
  kind: AccreditationEventKind;
  at: number;
  reason: string;
  recorded_by: string;
}

// a time stored before times were bounded prints as its number rather than failing the request
const iso = (ms: number): string => isoOrUndefined(ms) ?? `${ms} (no date)`;
const day = (ms: number): string => isoOrUndefined(ms)?.slice(0, 10) ?? `${ms} (no date)`;
const nameOf = (a: { body: string; number: string }): string => `${a.body} ${a.number}`;
const withUnit = (value: number | string, unit: string): string => (unit === '' ? String(value) : `${value} ${unit}`);

function rangeText(e: ScopeEntry): string {
  if (e.min !== undefined && e.max !== undefined) return withUnit(`${e.min}–${e.max}`, e.unit);
  if (e.min !== undefined) return `≥ ${withUnit(e.min, e.unit)}`;
  if (e.max !== undefined) return `≤ ${withUnit(e.max, e.unit)}`;
  return 'unbounded';
}

const inRange = (e: ScopeEntry, value: number): boolean => (e.min === undefined || value >= e.min) && (e.max === undefined || value <= e.max);

/** why an accreditation that is not active covers nothing */
function inactiveReason(a: AccreditationView): string {
  const name = `accreditation ${nameOf(a)}`;
  switch (a.status) {
    case 'suspended':
      return `${name} is suspended since ${iso(a.statusSince ?? a.at)}`;
    case 'withdrawn':
      return `${name} was withdrawn on ${iso(a.statusSince ?? a.at)}`;
    case 'expired':
      return `${name} expired on ${iso(a.validTo)}`;
    case 'not-yet-valid':
      return `${name} is valid only from ${iso(a.validFrom)}`;
    case 'active':
      return `${name} is active`;
  }
}

export class Accreditations implements ScopeCheck, MethodScopeCheck {
  private timer: NodeJS.Timeout | undefined;
  private loaded: { key: string; records: LoadedRecord[] } | undefined;

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly logger: Logger,
    private readonly options: AccreditationOptions,
    /** the clock status is computed by when no time is given (injectable for tests) */
    readonly now: () => number = Date.now,
  ) {}

  /** Records the configured accreditations that are not there yet, logs the expiry warnings, and checks again daily. */
  start(): Promise<void> {
    this.seed();
    this.checkExpiry();
    this.timer = setInterval(() => {
      try {
        this.checkExpiry();
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'the accreditation expiry check failed');
      }
    }, this.options.checkIntervalMs ?? DAY);
    this.timer.unref();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }

  create(actor: Actor, input: AccreditationInput, why?: string): AccreditationView {
    const db = this.database.sqlite;
    return this.write(() => {
      if (db.prepare('SELECT 1 FROM accreditations WHERE id = ?').get(input.id))
        throw new LabtraceError('E_CONFLICT', `body: id: accreditation "${input.id}" exists; change its scope or status instead`);
      const at = this.now();
      db.prepare(
        'INSERT INTO accreditations (id, body, number, standard, valid_from, valid_to, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(input.id, input.body, input.number, input.standard, input.validFrom, input.validTo, actor.username, at);
      db.prepare(
        'INSERT INTO accreditation_scopes (accreditation, version, effective_from, entries, reason, recorded_by, recorded_at) VALUES (?, 1, ?, ?, NULL, ?, ?)',
      ).run(input.id, input.validFrom, JSON.stringify(input.scope), actor.username, at);
      this.audit.record(actor, { action: 'create', recordType: 'accreditation', recordId: input.id, newValue: input, reason: why });
      return this.mustView(input.id, at);
    });
  }

  /** Suspends, reinstates or withdraws an accreditation, from now on; withdrawal is final. */
  event(actor: Actor, id: string, input: EventInput): AccreditationView {
    const db = this.database.sqlite;
    return this.write(() => {
      const at = this.now();
      const before = this.mustView(id, at);
      const refuse = (allowed: string): never => {
        throw new LabtraceError(
          'E_CONFLICT',
          `body: kind: accreditation ${nameOf(before)} is ${before.status}: it cannot be ${input.kind === 'suspend' ? 'suspended' : input.kind === 'reinstate' ? 'reinstated' : 'withdrawn'} (${allowed})`,
        );
      };
      if (input.kind === 'suspend' && before.status !== 'active') refuse('only an active accreditation can be suspended');
      if (input.kind === 'reinstate' && before.status !== 'suspended') refuse('only a suspended accreditation can be reinstated');
      if (input.kind === 'withdraw' && before.status === 'withdrawn') refuse('a withdrawal is final');
      db.prepare('INSERT INTO accreditation_events (accreditation, kind, at, reason, recorded_by) VALUES (?, ?, ?, ?, ?)').run(
        id,
        input.kind,
        at,
        input.reason,
        actor.username,
      );
      const after = this.mustView(id, at);
      this.audit.record(actor, {
        action: 'state-change',
        recordType: 'accreditation',
        recordId: id,
        oldValue: { status: before.status },
        newValue: { status: after.status, event: input.kind },
        reason: input.reason,
      });
      this.logger.warn(
        { accreditation: id, body: after.body, number: after.number, event: input.kind, status: after.status },
        'accreditation status changed',
      );
      return after;
    });
  }

  /** A new version of the scope, in force from now: an extension, a reduction, or both. */
  changeScope(actor: Actor, id: string, input: ScopeInput): AccreditationView {
    const db = this.database.sqlite;
    return this.write(() => {
      const at = this.now();
      const before = this.mustView(id, at);
      if (before.status === 'withdrawn' || before.status === 'expired')
        throw new LabtraceError(
          'E_CONFLICT',
          `accreditation ${nameOf(before)} is ${before.status}: its scope can no longer change (record a new accreditation instead)`,
        );
      const latest = this.scopeVersions(id).at(-1);
      const version = (latest?.version ?? 0) + 1;
      db.prepare(
        'INSERT INTO accreditation_scopes (accreditation, version, effective_from, entries, reason, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(id, version, at, JSON.stringify(input.scope), input.reason, actor.username, at);
      this.audit.record(actor, {
        action: 'update',
        recordType: 'accreditation',
        recordId: id,
        oldValue: { scopeVersion: latest?.version, scope: latest?.entries },
        newValue: { scopeVersion: version, scope: input.scope },
        reason: input.reason,
      });
      return this.mustView(id, at);
    });
  }

  /** Every accreditation as it stood at a time (now unless told), in the order of their ids. */
  list(at = this.now()): AccreditationView[] {
    // also those recorded after the time: an accreditation recorded late was in force all the same
    return this.records().map((r) => this.toView(r, at));
  }

  view(id: string, at = this.now()): AccreditationView | undefined {
    const record = this.records().find((r) => r.row.id === id);
    return record === undefined ? undefined : this.toView(record, at);
  }

  /** every version of an accreditation's scope, oldest first */
  scopeVersions(id: string): ScopeVersion[] {
    return this.records().find((r) => r.row.id === id)?.scopes ?? [];
  }

  /** What the public may know of the lab's accreditations at a time. */
  publicList(at = this.now()): PublicAccreditation[] {
    return this.list(at).map((a) => ({
      id: a.id,
      body: a.body,
      number: a.number,
      standard: a.standard,
      status: a.status,
      statusSince: a.statusSince,
      validFrom: a.validFrom,
      validTo: a.validTo,
    }));
  }

  /**
   * Whether a result lies in the scope of an accreditation active at its time: the method's standard, the
   * measurand in its unit, and the value inside the accredited range. Otherwise the most telling reason.
   */
  covers(query: { standard: string; measurand: string; unit: string; value: number; at: number }): ScopeVerdict {
    const { standard, measurand, unit, value, at } = query;
    if (!Number.isFinite(value)) return { accredited: false, reason: `${measurand} = ${value} is not a finite value` };
    // the reasons by how much they tell: a range missed beats an inactive accreditation that would cover the
    // measurand, which beats a measurand missing from an active scope, which beats an inactive one with the standard
    let best: { rank: number; reason: string } | undefined;
    const consider = (rank: number, reason: string): void => {
      if (best === undefined || rank > best.rank) best = { rank, reason };
    };
    for (const a of this.list(at)) {
      const ofStandard = a.scope.entries.filter((e) => e.standard === standard);
      if (ofStandard.length === 0) continue;
      const entries = ofStandard.filter((e) => e.measurand === measurand && e.unit === unit);
      if (a.status !== 'active') {
        consider(entries.length > 0 ? 3 : 1, inactiveReason(a));
        continue;
      }
      if (entries.length === 0) {
        consider(2, `${measurand} [${unit === '' ? 'no unit' : unit}] of ${standard} is not in the scope of ${nameOf(a)}`);
        continue;
      }
      if (entries.some((e) => inRange(e, value))) return { accredited: true, accreditation: { body: a.body, number: a.number } };
      consider(4, `${measurand} = ${withUnit(value, unit)} lies outside the accredited range ${entries.map(rangeText).join(' or ')} of ${nameOf(a)}`);
    }
    return { accredited: false, reason: best?.reason ?? `${standard} is not in the scope of any active accreditation` };
  }

  /**
   * Whether one accreditation active at the time has every measurand of a method (standard, measurand and
   * unit) in its scope, value ranges aside: one accreditation, because a report carries one mark.
   */
  methodInScope(standard: string, measurands: readonly { name: string; unit: string }[], at: number): boolean {
    if (measurands.length === 0) return false;
    return this.list(at).some(
      (a) =>
        a.status === 'active' &&
        measurands.every((m) => a.scope.entries.some((e) => e.standard === standard && e.measurand === m.name && e.unit === m.unit)),
    );
  }

  /** Logs one warning line per accreditation that expires within warnDays; returns them. */
  checkExpiry(at = this.now()): AccreditationView[] {
    const expiring = this.list(at).filter((a) => a.warnings.length > 0);
    for (const a of expiring)
      this.logger.warn(
        { accreditation: a.id, body: a.body, number: a.number, validTo: iso(a.validTo), daysLeft: a.warnings[0]?.daysLeft },
        `accreditation ${nameOf(a)} expires on ${day(a.validTo)}`,
      );
    return expiring;
  }

  /** Records the configured accreditations not recorded yet; a stored one that differs stands, with a warning. */
  private seed(): void {
    for (const input of this.options.accreditations) {
      const stored = this.view(input.id);
      if (stored === undefined) {
        this.create(SYSTEM_ACTOR, input, 'recorded from the server configuration (accreditation.accreditations)');
        this.logger.info({ accreditation: input.id, body: input.body, number: input.number }, 'recorded the configured accreditation');
        continue;
      }
      const first = this.scopeVersions(input.id)[0];
      const same =
        stored.body === input.body &&
        stored.number === input.number &&
        stored.standard === input.standard &&
        stored.validFrom === input.validFrom &&
        stored.validTo === input.validTo &&
        first !== undefined &&
        sameJson(first.entries, input.scope);
      if (!same)
        this.logger.warn(
          { accreditation: input.id },
          'the configured accreditation differs from the recorded one, which stands: records are never edited; change the scope or status through the API, or record a new accreditation',
        );
    }
  }

  private mustView(id: string, at: number): AccreditationView {
    const view = this.view(id, at);
    if (!view) throw new LabtraceError('E_NOT_FOUND', `accreditation "${id}" is not known`);
    return view;
  }

  /**
   * The records, read again only when a table has grown: they are append-only, so their row counts change
   * with every write, whoever makes it. The scope check runs for every result and every listed run.
   */
  private records(): LoadedRecord[] {
    const db = this.database.sqlite;
    const { key } = db
      .prepare(
        "SELECT (SELECT COUNT(*) FROM accreditations) || '/' || (SELECT COUNT(*) FROM accreditation_scopes) || '/' || (SELECT COUNT(*) FROM accreditation_events) AS key",
      )
      .get() as { key: string };
    if (this.loaded?.key === key) return this.loaded.records;
    const scopes = new Map<string, ScopeVersion[]>();
    for (const r of db.prepare('SELECT * FROM accreditation_scopes ORDER BY accreditation, version').all() as ScopeRow[])
      scopes.set(r.accreditation, [...(scopes.get(r.accreditation) ?? []), toScope(r)]);
    const events = new Map<string, AccreditationEvent[]>();
    for (const e of db.prepare('SELECT * FROM accreditation_events ORDER BY at, id').all() as EventRow[])
      events.set(e.accreditation, [
        ...(events.get(e.accreditation) ?? []),
        { id: e.id, kind: e.kind, at: e.at, reason: e.reason, recordedBy: e.recorded_by },
      ]);
    const records = (db.prepare('SELECT * FROM accreditations ORDER BY id').all() as AccreditationRow[]).map((row) => ({
      row,
      scopes: scopes.get(row.id) ?? [],
      events: events.get(row.id) ?? [],
    }));
    this.loaded = { key, records };
    return records;
  }

  /** runs a write; the cache is dropped whether it commits or rolls back */
  private write<T>(change: () => T): T {
    try {
      return this.database.sqlite.transaction(change)();
    } finally {
      this.loaded = undefined;
    }
  }

  private toView({ row, scopes, events: all }: LoadedRecord, at: number): AccreditationView {
    const events = all.filter((e) => e.at <= at);
    // the version in force; before valid_from, the one that will be (version 1 is in force from valid_from)
    const from = Math.max(at, row.valid_from);
    const scope = scopes.filter((v) => v.effectiveFrom <= from).at(-1);
    if (!scope) throw new LabtraceError('E_STORE', `accreditation ${row.id} has no scope`);
    const withdrawal = events.find((e) => e.kind === 'withdraw');
    const standing = events.filter((e) => e.kind !== 'withdraw').at(-1);
    let status: AccreditationState;
    let statusSince: number | null;
    if (withdrawal !== undefined) [status, statusSince] = ['withdrawn', withdrawal.at];
    else if (at < row.valid_from) [status, statusSince] = ['not-yet-valid', null];
    else if (at >= row.valid_to) [status, statusSince] = ['expired', row.valid_to];
    else if (standing?.kind === 'suspend') [status, statusSince] = ['suspended', standing.at];
    else [status, statusSince] = ['active', Math.max(row.valid_from, standing?.at ?? 0)];
    const warnings: AccreditationWarning[] = [];
    const left = row.valid_to - at;
    if ((status === 'active' || status === 'suspended') && left <= this.options.warnDays * DAY) {
      const daysLeft = Math.ceil(left / DAY);
      warnings.push({
        code: 'expiring-soon',
        daysLeft,
        message: `accreditation ${nameOf(row)} expires on ${day(row.valid_to)}, in ${daysLeft} day${daysLeft === 1 ? '' : 's'}`,
      });
    }
    return {
      id: row.id,
      body: row.body,
      number: row.number,
      standard: row.standard,
      validFrom: row.valid_from,
      validTo: row.valid_to,
      at,
      status,
      statusSince,
      warnings,
      scope,
      events,
      recordedBy: row.recorded_by,
      recordedAt: row.recorded_at,
    };
  }
}

function toScope(r: ScopeRow): ScopeVersion {
  return {
    version: r.version,
    effectiveFrom: r.effective_from,
    reason: r.reason,
    entries: JSON.parse(r.entries) as ScopeEntry[],
    recordedBy: r.recorded_by,
    recordedAt: r.recorded_at,
  };
}

// both sides come from the same schema, so their keys are in the same order
const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
