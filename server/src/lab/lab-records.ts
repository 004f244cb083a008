// Samples received for testing (ISO/IEC 17025 7.4) and test methods in versions (7.2). Each is written
// once with an audit-trail entry; a method changes by a new version with a reason, never in place. Their lists are
// read a page at a time, newest first by row id (api/paging.ts), and every change is announced (`changed`) so that
// the dashboards showing a list read it again.
import { EventEmitter } from 'node:events';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import type { ListChange } from '@labtrace/protocols';
import type { MethodListQuery, Page, SampleListQuery } from '@labtrace/protocols/api';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { pageOfRows } from '../api/paging.js';
import type { Actor, AuditInput, AuditTrail } from '../audit/audit-trail.js';
import type { Tables, Transact } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { MethodInScope, MethodScopeCheck } from './accreditation.js';
import { methodDefinition, type LabSampleInput, type MethodDefinition } from './schemas.js';

export interface LabSample {
  id: string;
  organization: string;
  description: string;
  condition: string;
  receivedAt: number;
  createdBy: string;
  createdAt: number;
}

export interface Method {
  id: string;
  version: number;
  standard: string;
  title: string;
  definition: MethodDefinition;
  createdBy: string;
  createdAt: number;
  /** whether every measurand of the method lies in the scope of one active accreditation now (docs/accreditation.md) */
  accredited: boolean;
}

type SampleRow = Selectable<Tables['lab_samples']>;
type MethodRow = Selectable<Tables['methods']>;

/** a LIKE pattern finding `text` anywhere, with % _ and the escape character itself taken literally (ESCAPE '\') */
export function likeAnywhere(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export interface LabRecordsEvents {
  /** a sample or a method was created or changed; `organization` is the sample's customer (its people hear of it) */
  changed: [change: ListChange, organization: string | null];
}

/**
 * The customer organizations, asked of their owner (auth/users.ts, Users.organizations): a sample's customer must be
 * one, and the samples' search finds a customer by its name. Organizations are never deleted.
 */
export interface OrganizationDirectory {
  organizations(): Promise<readonly { id: string; name: string }[]>;
}

/**
 * the advisory locks (two-key form) under which a PostgreSQL transaction numbers a new sample or method version, so
 * that two nodes never give one number twice nor both create the same record ('ltlr')
 */
const SAMPLES_LOCK = [0x6c74_6c72, 1] as const;
const METHODS_LOCK = [0x6c74_6c72, 2] as const;

/** ASCII letters in lower case, the others as they are: what SQLite's LIKE ignores the case of */
const asciiLower = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** `column` contains `text` (ASCII letters in either case; % _ and the backslash taken literally), on both engines */
function likeAnywhereIn(column: string, text: string) {
  return sql<boolean>`lower(${sql.ref(column)}) LIKE lower(${likeAnywhere(text)}) ESCAPE '\\'`;
}

const sampleExists = (id: string) =>
  new LabtraceError('E_CONFLICT', `body: id: sample "${id}" exists`, { reason: 'record.exists', params: { type: 'sample', id } });
const unknownOrganization = (organization: string) => new LabtraceError('E_BAD_REQUEST', `body: organization: "${organization}" is not known`);
const methodExists = (id: string) =>
  new LabtraceError('E_CONFLICT', `body: id: method "${id}" exists; add a version instead (POST /api/methods/${id}/versions)`, {
    reason: 'record.exists',
    params: { type: 'method', id },
  });
const methodNotFound = (id: string) =>
  new LabtraceError('E_NOT_FOUND', `method "${id}" is not known`, { reason: 'record.not-found', params: { type: 'method', id } });

type MethodFields = { id: string; version: number; standard: string; title: string; definition: MethodDefinition };

/**
 * The samples received and the methods. Its queries run through Kysely on the store's database (SQLite or
 * PostgreSQL), each change in one transaction with its audit-trail entry (AuditTrail.recordIn). A module asking
 * inside its own transaction asks on it (`methodIn`).
 */
export class LabRecords extends EventEmitter<LabRecordsEvents> {
  private readonly postgres: boolean;

  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    /** the lab's accreditations: whether a method lies in the scope of an active one */
    private readonly scope: MethodScopeCheck,
    private readonly directory: OrganizationDirectory,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.postgres = dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
  }

  /** On PostgreSQL, holds `lock` until the transaction ends (SQLite has one writer at a time). */
  private async hold(trx: Transaction<Tables>, lock: readonly [number, number]): Promise<void> {
    if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${lock[0]}, ${lock[1]})`.execute(trx);
  }

  /** `transact`: the transaction the sample is recorded in (a job's fenced one; the store's by default) */
  async createSample(actor: Actor, input: LabSampleInput, transact?: Transact): Promise<LabSample> {
    // asked first, outside the transaction: an organization is never deleted (and the foreign key holds it)
    if (!(await this.directory.organizations()).some((o) => o.id === input.organization)) throw unknownOrganization(input.organization);
    const sample: LabSample = { ...input, createdBy: actor.username, createdAt: this.now() };
    await (transact ?? ((work) => this.store.transaction().execute(work)))(async (trx) => {
      await this.hold(trx, SAMPLES_LOCK);
      if ((await this.sampleQuery(trx, input.id).executeTakeFirst()) !== undefined) throw sampleExists(input.id);
      await this.insertSample(trx, sample).execute();
      await this.audit.recordIn(trx, actor, sampleAudit(input));
    });
    this.emit('changed', { list: 'samples', id: sample.id }, sample.organization);
    return sample;
  }

  private sampleQuery(db: Kysely<Tables>, id: string) {
    return db.selectFrom('lab_samples').selectAll().where('id', '=', id);
  }

  /** the sample's insert, numbered after the newest */
  private insertSample(db: Kysely<Tables>, sample: LabSample) {
    return db.insertInto('lab_samples').values({
      id: sample.id,
      organization: sample.organization,
      description: sample.description,
      condition: sample.condition,
      received_at: sample.receivedAt,
      created_by: sample.createdBy,
      created_at: sample.createdAt,
      position: sql<number>`(SELECT COALESCE(MAX(position), 0) + 1 FROM lab_samples)`,
    });
  }

  /**
   * A page of samples, newest registered first: those of `organizations` (undefined: every organization's), found by
   * `q` in the id, description or customer (its id or name), received between receivedFrom and receivedTo.
   */
  async samplesPage(query: SampleListQuery, organizations: readonly string[] | undefined): Promise<Page<LabSample>> {
    if (organizations !== undefined && organizations.length === 0) return { items: [], next: null };
    const q = query.q?.trim() ?? '';
    // the customers whose name has the text, as the owner of the organizations tells
    const named = q === '' ? [] : (await this.directory.organizations()).filter((o) => asciiLower(o.name).includes(asciiLower(q))).map((o) => o.id);
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const rows = await this.store
      .selectFrom('lab_samples')
      .selectAll()
      .$if(organizations !== undefined, (b) => b.where('organization', 'in', organizations as readonly string[]))
      .$if(query.organization !== undefined, (b) => b.where('organization', '=', query.organization as string))
      .$if(q !== '', (b) =>
        b.where((eb) =>
          eb.or([
            likeAnywhereIn('id', q),
            likeAnywhereIn('description', q),
            likeAnywhereIn('organization', q),
            ...(named.length === 0 ? [] : [eb('organization', 'in', named)]),
          ]),
        ),
      )
      .$if(query.receivedFrom !== undefined, (b) => b.where('received_at', '>=', query.receivedFrom as number))
      .$if(query.receivedTo !== undefined, (b) => b.where('received_at', '<=', query.receivedTo as number))
      .$if(cursor !== undefined, (b) => b.where('position', '<', cursor as number))
      .orderBy('position', 'desc')
      .limit(pageLimit(query) + 1)
      .execute();
    return pageOfRows(rows, query, (r) => r.position ?? 0, toSample);
  }

  async sample(id: string): Promise<LabSample | undefined> {
    const row = await this.sampleQuery(this.store, id).executeTakeFirst();
    return row === undefined ? undefined : toSample(row);
  }

  /** Creates version 1 of a method. */
  async createMethod(actor: Actor, input: Omit<MethodFields, 'version'>): Promise<Method> {
    const createdAt = this.now();
    const method: MethodFields = { ...input, version: 1 };
    await this.store.transaction().execute(async (trx) => {
      await this.hold(trx, METHODS_LOCK);
      if ((await this.methodQuery(trx, input.id).executeTakeFirst()) !== undefined) throw methodExists(input.id);
      await this.insertMethod(trx, actor, method, createdAt).execute();
      await this.audit.recordIn(trx, actor, methodAudit(method, undefined));
    });
    return this.created(actor, method, createdAt);
  }

  /** Adds the next version of a method; the reason is required and goes to the audit trail with both versions. */
  async addMethodVersion(
    actor: Actor,
    id: string,
    input: { standard: string; title: string; definition: MethodDefinition; reason: string },
  ): Promise<Method> {
    const createdAt = this.now();
    const { reason, ...fields } = input;
    const method = await this.store.transaction().execute(async (trx) => {
      // the newest version read and the next written under one lock: two nodes adding at once make two versions
      await this.hold(trx, METHODS_LOCK);
      const before = await this.methodQuery(trx, id).executeTakeFirst();
      if (before === undefined) throw methodNotFound(id);
      const next: MethodFields = { ...fields, id, version: before.version + 1 };
      await this.insertMethod(trx, actor, next, createdAt).execute();
      await this.audit.recordIn(trx, actor, methodAudit(next, { before: fieldsOf(before), reason }));
      return next;
    });
    return this.created(actor, method, createdAt);
  }

  /**
   * A page of methods, each in its newest version, the newest method first. A method keeps its place (its first
   * version's position) when a version is added, so that paging through the list shows every method once.
   */
  async methodsPage(query: MethodListQuery): Promise<Page<Method>> {
    const q = query.q?.trim() ?? '';
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const rows = await this.store
      .selectFrom('methods as m')
      .innerJoin(
        (eb) =>
          eb
            .selectFrom('methods')
            .select((f) => ['id', f.fn.min<number>('position').as('first'), f.fn.max<number>('version').as('latest')])
            .groupBy('id')
            .as('f'),
        (join) => join.onRef('f.id', '=', 'm.id').onRef('m.version', '=', 'f.latest'),
      )
      .selectAll('m')
      .select('f.first')
      .$if(q !== '', (b) => b.where((eb) => eb.or([likeAnywhereIn('m.id', q), likeAnywhereIn('m.standard', q), likeAnywhereIn('m.title', q)])))
      .$if(cursor !== undefined, (b) => b.where('f.first', '<', cursor as number))
      .orderBy('f.first', 'desc')
      .limit(pageLimit(query) + 1)
      .execute();
    const inScope = await this.scope.methodScopeIn(this.store, this.now());
    return pageOfRows(
      rows,
      query,
      (r) => r.first,
      (r) => this.toMethod(r, inScope),
    );
  }

  /** A method's version, the newest when none is given. */
  async method(id: string, version?: number): Promise<Method | undefined> {
    return this.methodIn(this.store, id, version);
  }

  /**
   * method() on the executor the caller gives: the caller's transaction (a module asking inside its own), or the
   * store. A method version never changes once written.
   */
  async methodIn(db: Kysely<Tables> | Transaction<Tables>, id: string, version?: number): Promise<Method | undefined> {
    const row = await this.methodQuery(db, id, version).executeTakeFirst();
    return row === undefined ? undefined : this.toMethod(row, await this.scope.methodScopeIn(db, this.now()));
  }

  /** Every version of a method, oldest first. */
  async methods(id: string): Promise<Method[]> {
    const rows = await this.store.selectFrom('methods').selectAll().where('id', '=', id).orderBy('version').execute();
    const inScope = await this.scope.methodScopeIn(this.store, this.now());
    return rows.map((r) => this.toMethod(r, inScope));
  }

  /** the method's version, the newest when none is given */
  private methodQuery(db: Kysely<Tables>, id: string, version?: number) {
    return db
      .selectFrom('methods')
      .selectAll()
      .where('id', '=', id)
      .$if(version !== undefined, (b) => b.where('version', '=', version as number))
      .orderBy('version', 'desc')
      .limit(1);
  }

  /** the version's insert, numbered after the newest */
  private insertMethod(db: Kysely<Tables>, actor: Actor, method: MethodFields, createdAt: number) {
    return db.insertInto('methods').values({
      id: method.id,
      version: method.version,
      standard: method.standard,
      title: method.title,
      definition: JSON.stringify(method.definition),
      created_by: actor.username,
      created_at: createdAt,
      position: sql<number>`(SELECT COALESCE(MAX(position), 0) + 1 FROM methods)`,
    });
  }

  /** a version just stored, announced */
  private async created(actor: Actor, method: MethodFields, createdAt: number): Promise<Method> {
    const inScope = await this.scope.methodScopeIn(this.store, createdAt);
    this.emit('changed', { list: 'methods', id: method.id }, null);
    return {
      ...method,
      createdBy: actor.username,
      createdAt,
      accredited: inScope(method.standard, method.definition.measurands),
    };
  }

  /** a stored version; `inScope`: the accreditations as they stand now */
  private toMethod(row: MethodRow, inScope: MethodInScope): Method {
    const fields = fieldsOf(row);
    return {
      ...fields,
      createdBy: row.created_by,
      createdAt: row.created_at,
      accredited: inScope(row.standard, fields.definition.measurands),
    };
  }
}

/** a stored version's fields, its definition read */
function fieldsOf(row: MethodRow): MethodFields {
  const definition = parseWith(methodDefinition, JSON.parse(row.definition), `method ${row.id} v${row.version}`, 'E_STORE');
  return { id: row.id, version: row.version, standard: row.standard, title: row.title, definition };
}

const pageLimit = (page: { limit: number }): number => Math.max(1, Math.floor(page.limit));

function sampleAudit(input: LabSampleInput): AuditInput {
  return { action: 'create', recordType: 'lab-sample', recordId: input.id, newValue: input };
}

/** a method version's audit entry: its creation, or a new version with the one before and the reason */
function methodAudit(method: MethodFields, change: { before: MethodFields; reason: string } | undefined): AuditInput {
  const value = { version: method.version, standard: method.standard, title: method.title, definition: method.definition };
  if (change === undefined) return { action: 'create', recordType: 'method', recordId: method.id, newValue: value };
  const { before } = change;
  return {
    action: 'update',
    recordType: 'method',
    recordId: method.id,
    oldValue: { version: before.version, standard: before.standard, title: before.title, definition: before.definition },
    newValue: value,
    reason: change.reason,
  };
}

function toSample(row: SampleRow): LabSample {
  return {
    id: row.id,
    organization: row.organization,
    description: row.description,
    condition: row.condition,
    receivedAt: row.received_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}
