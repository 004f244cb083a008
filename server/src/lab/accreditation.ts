// The lab's accreditations (ISO/IEC 17025, CNAS-R01, A2LA P101, ILAC R7): who accredited the lab, under
// which number, for how long, and for what scope (methods with their measurands and ranges). The status
// and the scope at any time are computed from the records and their events, never stored, and decide
// whether a run or a result is accredited.
import { LabtraceError } from '@labtrace/protocols';
import { SYSTEM_ACTOR, type Actor, type AuditTrail } from '../audit/audit-trail.js';
import type { Logger } from '../log.js';
import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
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

/** whether every measurand of a method (its standard, name and unit) lies in the scope of one active accreditation */
export type MethodInScope = (standard: string, measurands: readonly { name: string; unit: string }[]) => boolean;

/**
 * The method-level scope check of runs and methods (value ranges aside): the accreditations as they stood at `at`,
 * read once on `db` (the caller's transaction, or the store), asked for as many methods as the caller has.
 */
export interface MethodScopeCheck {
  methodScopeIn(db: Kysely<Tables>, at: number): Promise<MethodInScope>;
}

/** a result to check against the scopes: the method's standard, the measurand in its unit, its value and time */
export type ScopeQuery = Parameters<ScopeCheck['covers']>[0];

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

/** what an accreditation is stored in: the store's Kysely (SQLite or PostgreSQL), or the embedded SQLite store itself */

/** the rows the records are made of, as read by the queries of `loadQueries` */
interface LoadedRows {
  counts: { n: number | string | bigint }[][];
  rows: AccreditationRow[];
  scopes: ScopeRow[];
  events: EventRow[];
}

/**
 * The lab's accreditations. Its queries run through Kysely on the store's database (SQLite or PostgreSQL), each
 * change in one transaction with its audit-trail entry (AuditTrail.recordIn); a change of one accreditation holds
 * its row on PostgreSQL, so that two nodes changing it at once cannot both see the status before the other's change.
 * A module asking inside its own transaction asks on it (`methodScopeIn`).
 */
export class Accreditations {
  private timer: NodeJS.Timeout | undefined;
  private loaded: { key: string; records: LoadedRecord[] } | undefined;
  private readonly postgres: boolean;

  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly logger: Logger,
    private readonly options: AccreditationOptions,
    /** the clock status is computed by when no time is given (injectable for tests) */
    readonly now: () => number = Date.now,
  ) {
    this.postgres = dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
  }

  /** Records the configured accreditations that are not there yet, logs the expiry warnings, and checks again daily. */
  async start(): Promise<void> {
    await this.seed();
    await this.checkExpiry();
    this.timer = setInterval(() => {
      this.checkExpiry().catch((err: unknown) => {
        this.logger.error({ err: (err as Error).message }, 'the accreditation expiry check failed');
      });
    }, this.options.checkIntervalMs ?? DAY);
    this.timer.unref();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }

  async create(actor: Actor, input: AccreditationInput, why?: string): Promise<AccreditationView> {
    return this.write(async (trx) => {
      const at = this.now();
      // one statement: two nodes recording the same id at once give one record and one conflict
      const created = await trx
        .insertInto('accreditations')
        .values({
          id: input.id,
          body: input.body,
          number: input.number,
          standard: input.standard,
          valid_from: input.validFrom,
          valid_to: input.validTo,
          recorded_by: actor.username,
          recorded_at: at,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (created === undefined)
        throw new LabtraceError('E_CONFLICT', `body: id: accreditation "${input.id}" exists; change its scope or status instead`);
      await trx
        .insertInto('accreditation_scopes')
        .values({
          accreditation: input.id,
          version: 1,
          effective_from: input.validFrom,
          entries: JSON.stringify(input.scope),
          reason: null,
          recorded_by: actor.username,
          recorded_at: at,
        })
        .execute();
      await this.audit.recordIn(trx, actor, { action: 'create', recordType: 'accreditation', recordId: input.id, newValue: input, reason: why });
      return this.mustViewIn(trx, input.id, at);
    });
  }

  /** Suspends, reinstates or withdraws an accreditation, from now on; withdrawal is final. */
  async event(actor: Actor, id: string, input: EventInput): Promise<AccreditationView> {
    const after = await this.write(async (trx) => {
      await this.hold(trx, id);
      const at = this.now();
      const before = await this.mustViewIn(trx, id, at);
      const refuse = (allowed: string): never => {
        throw new LabtraceError(
          'E_CONFLICT',
          `body: kind: accreditation ${nameOf(before)} is ${before.status}: it cannot be ${input.kind === 'suspend' ? 'suspended' : input.kind === 'reinstate' ? 'reinstated' : 'withdrawn'} (${allowed})`,
        );
      };
      if (input.kind === 'suspend' && before.status !== 'active') refuse('only an active accreditation can be suspended');
      if (input.kind === 'reinstate' && before.status !== 'suspended') refuse('only a suspended accreditation can be reinstated');
      if (input.kind === 'withdraw' && before.status === 'withdrawn') refuse('a withdrawal is final');
      await trx
        .insertInto('accreditation_events')
        .values({ accreditation: id, kind: input.kind, at, reason: input.reason, recorded_by: actor.username })
        .execute();
      const after = await this.mustViewIn(trx, id, at);
      await this.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'accreditation',
        recordId: id,
        oldValue: { status: before.status },
        newValue: { status: after.status, event: input.kind },
        reason: input.reason,
      });
      return after;
    });
    this.logger.warn(
      { accreditation: id, body: after.body, number: after.number, event: input.kind, status: after.status },
      'accreditation status changed',
    );
    return after;
  }

  /** A new version of the scope, in force from now: an extension, a reduction, or both. */
  async changeScope(actor: Actor, id: string, input: ScopeInput): Promise<AccreditationView> {
    return this.write(async (trx) => {
      await this.hold(trx, id);
      const at = this.now();
      const before = await this.mustViewIn(trx, id, at);
      if (before.status === 'withdrawn' || before.status === 'expired')
        throw new LabtraceError(
          'E_CONFLICT',
          `accreditation ${nameOf(before)} is ${before.status}: its scope can no longer change (record a new accreditation instead)`,
        );
      const latest = (await this.loadIn(trx, id))[0]?.scopes.at(-1);
      const version = (latest?.version ?? 0) + 1;
      await trx
        .insertInto('accreditation_scopes')
        .values({
          accreditation: id,
          version,
          effective_from: at,
          entries: JSON.stringify(input.scope),
          reason: input.reason,
          recorded_by: actor.username,
          recorded_at: at,
        })
        .execute();
      await this.audit.recordIn(trx, actor, {
        action: 'update',
        recordType: 'accreditation',
        recordId: id,
        oldValue: { scopeVersion: latest?.version, scope: latest?.entries },
        newValue: { scopeVersion: version, scope: input.scope },
        reason: input.reason,
      });
      return this.mustViewIn(trx, id, at);
    });
  }

  /** Every accreditation as it stood at a time (now unless told), in the order of their ids. */
  async list(at = this.now()): Promise<AccreditationView[]> {
    return this.listIn(this.store, at);
  }

  /** list() read on `db`: the caller's transaction, or the store */
  private async listIn(db: Kysely<Tables>, at: number): Promise<AccreditationView[]> {
    // also those recorded after the time: an accreditation recorded late was in force all the same
    return (await this.records(db)).map((r) => this.toView(r, at));
  }

  async view(id: string, at = this.now()): Promise<AccreditationView | undefined> {
    const record = (await this.records()).find((r) => r.row.id === id);
    return record === undefined ? undefined : this.toView(record, at);
  }

  /** every version of an accreditation's scope, oldest first */
  async scopeVersions(id: string): Promise<ScopeVersion[]> {
    return (await this.records()).find((r) => r.row.id === id)?.scopes ?? [];
  }

  /** What the public may know of the lab's accreditations at a time. */
  async publicList(at = this.now()): Promise<PublicAccreditation[]> {
    return (await this.list(at)).map((a) => ({
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
  async covers(query: ScopeQuery): Promise<ScopeVerdict> {
    return coversIn(await this.list(query.at), query);
  }

  /**
   * Whether one accreditation active at the time has every measurand of a method (standard, measurand and
   * unit) in its scope, value ranges aside: one accreditation, because a report carries one mark.
   */
  async methodInScope(standard: string, measurands: readonly { name: string; unit: string }[], at: number): Promise<boolean> {
    return methodIn(await this.list(at), standard, measurands);
  }

  /** methodInScope() for as many methods as the caller has, the accreditations read once on `db` (a transaction, or the store) */
  async methodScopeIn(db: Kysely<Tables>, at: number): Promise<MethodInScope> {
    const list = await this.listIn(db, at);
    return (standard, measurands) => methodIn(list, standard, measurands);
  }

  /** Logs one warning line per accreditation that expires within warnDays; returns them. */
  async checkExpiry(at = this.now()): Promise<AccreditationView[]> {
    const expiring = (await this.list(at)).filter((a) => a.warnings.length > 0);
    for (const a of expiring)
      this.logger.warn(
        { accreditation: a.id, body: a.body, number: a.number, validTo: iso(a.validTo), daysLeft: a.warnings[0]?.daysLeft },
        `accreditation ${nameOf(a)} expires on ${day(a.validTo)}`,
      );
    return expiring;
  }

  /**
   * Records the configured accreditations not recorded yet; a stored one that differs stands, with a warning. Two
   * nodes starting at once record each one once: the second's create is refused and it compares instead.
   */
  private async seed(): Promise<void> {
    for (const input of this.options.accreditations) {
      if ((await this.view(input.id)) === undefined) {
        try {
          await this.create(SYSTEM_ACTOR, input, 'recorded from the server configuration (accreditation.accreditations)');
          this.logger.info({ accreditation: input.id, body: input.body, number: input.number }, 'recorded the configured accreditation');
          continue;
        } catch (err) {
          if (!(err instanceof LabtraceError && err.code === 'E_CONFLICT')) throw err;
        }
      }
      const stored = await this.view(input.id);
      const first = (await this.scopeVersions(input.id))[0];
      const same =
        stored !== undefined &&
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

  /** PostgreSQL: the accreditation's row held until the transaction ends, so that changes of it queue (SQLite has one writer) */
  private async hold(trx: Transaction<Tables>, id: string): Promise<void> {
    if (this.postgres) await trx.selectFrom('accreditations').select('id').where('id', '=', id).forUpdate().execute();
  }

  /** the view read in the caller's transaction (never from the cache: it may hold what is not committed) */
  private async mustViewIn(trx: Transaction<Tables>, id: string, at: number): Promise<AccreditationView> {
    const record = (await this.loadIn(trx, id))[0];
    if (record === undefined) throw new LabtraceError('E_NOT_FOUND', `accreditation "${id}" is not known`);
    return this.toView(record, at);
  }

  /** the queries the records are read with (the whole set, or one accreditation's), written once for both engines */
  private loadQueries(db: Kysely<Tables>, id?: string) {
    const count = (table: 'accreditations' | 'accreditation_scopes' | 'accreditation_events') =>
      db.selectFrom(table).select((eb) => eb.fn.countAll().as('n'));
    return {
      counts: [count('accreditations'), count('accreditation_scopes'), count('accreditation_events')] as const,
      rows: db
        .selectFrom('accreditations')
        .selectAll()
        .$if(id !== undefined, (q) => q.where('id', '=', id as string))
        .orderBy('id'),
      scopes: db
        .selectFrom('accreditation_scopes')
        .selectAll()
        .$if(id !== undefined, (q) => q.where('accreditation', '=', id as string))
        .orderBy('accreditation')
        .orderBy('version'),
      events: db
        .selectFrom('accreditation_events')
        .selectAll()
        .$if(id !== undefined, (q) => q.where('accreditation', '=', id as string))
        .orderBy('at')
        .orderBy('id'),
    };
  }

  /** one accreditation's record (or none) as it stands in the transaction */
  private async loadIn(trx: Transaction<Tables>, id: string): Promise<LoadedRecord[]> {
    const q = this.loadQueries(trx, id);
    return assemble({ counts: [], rows: await q.rows.execute(), scopes: await q.scopes.execute(), events: (await q.events.execute()) as EventRow[] });
  }

  /**
   * The records, read again only when a table has grown: they are append-only, so their row counts change
   * with every write, whoever makes it (on any node). The scope check runs for every result and every listed run.
   */
  private async records(db: Kysely<Tables> = this.store): Promise<LoadedRecord[]> {
    const q = this.loadQueries(db);
    const key = keyOf(await Promise.all(q.counts.map((c) => c.execute())));
    if (this.loaded?.key === key) return this.loaded.records;
    const records = assemble({
      counts: [],
      rows: await q.rows.execute(),
      scopes: await q.scopes.execute(),
      events: (await q.events.execute()) as EventRow[],
    });
    this.loaded = { key, records };
    return records;
  }

  /** runs a change in one transaction; the cache is dropped whether it commits or rolls back */
  private async write<T>(change: (trx: Transaction<Tables>) => Promise<T>): Promise<T> {
    try {
      return await this.store.transaction().execute(change);
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

/** the cache's key: the row counts of the three append-only tables */
const keyOf = (counts: { n: number | string | bigint }[][]): string => counts.map((c) => String(c[0]?.n ?? 0)).join('/');

/** the records from their rows (rows by id, scopes by version, events by time) */
function assemble({ rows, scopes: scopeRows, events: eventRows }: LoadedRows): LoadedRecord[] {
  const scopes = new Map<string, ScopeVersion[]>();
  for (const r of scopeRows) scopes.set(r.accreditation, [...(scopes.get(r.accreditation) ?? []), toScope(r)]);
  const events = new Map<string, AccreditationEvent[]>();
  for (const e of eventRows)
    events.set(e.accreditation, [
      ...(events.get(e.accreditation) ?? []),
      { id: e.id, kind: e.kind, at: e.at, reason: e.reason, recordedBy: e.recorded_by },
    ]);
  return rows.map((row) => ({ row, scopes: scopes.get(row.id) ?? [], events: events.get(row.id) ?? [] }));
}

/** covers() over the accreditations as they stood at the query's time */
function coversIn(views: AccreditationView[], query: ScopeQuery): ScopeVerdict {
  const { standard, measurand, unit, value } = query;
  if (!Number.isFinite(value)) return { accredited: false, reason: `${measurand} = ${value} is not a finite value` };
  // the reasons by how much they tell: a range missed beats an inactive accreditation that would cover the
  // measurand, which beats a measurand missing from an active scope, which beats an inactive one with the standard
  let best: { rank: number; reason: string } | undefined;
  const consider = (rank: number, reason: string): void => {
    if (best === undefined || rank > best.rank) best = { rank, reason };
  };
  for (const a of views) {
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

/** methodInScope() over the accreditations as they stood at its time */
function methodIn(views: AccreditationView[], standard: string, measurands: readonly { name: string; unit: string }[]): boolean {
  if (measurands.length === 0) return false;
  return views.some(
    (a) =>
      a.status === 'active' &&
      measurands.every((m) => a.scope.entries.some((e) => e.standard === standard && e.measurand === m.name && e.unit === m.unit)),
  );
}
