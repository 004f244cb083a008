// Samples received for testing (ISO/IEC 17025 7.4) and test methods in versions (7.2). Each is written
// once with an audit-trail entry; a method changes by a new version with a reason, never in place. Their lists are
// read a page at a time, newest first by row id (api/paging.ts), and every change is announced (`changed`) so that
// the dashboards showing a list read it again.
import { EventEmitter } from 'node:events';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import type { ListChange } from '@labtrace/protocols';
import type { MethodListQuery, Page, SampleListQuery } from '@labtrace/protocols/api';
import { pageOfRows, pageSql } from '../api/paging.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { LabDatabase } from '../store/database.js';
import type { MethodScopeCheck } from './accreditation.js';
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

interface SampleRow {
  id: string;
  organization: string;
  description: string;
  condition: string;
  received_at: number;
  created_by: string;
  created_at: number;
}

/** a LIKE pattern finding `text` anywhere, with % _ and the escape character itself taken literally (ESCAPE '\') */
export function likeAnywhere(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export interface LabRecordsEvents {
  /** a sample or a method was created or changed; `organization` is the sample's customer (its people hear of it) */
  changed: [change: ListChange, organization: string | null];
}

interface MethodRow {
  id: string;
  version: number;
  standard: string;
  title: string;
  definition: string;
  created_by: string;
  created_at: number;
}

export class LabRecords extends EventEmitter<LabRecordsEvents> {
  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    /** the lab's accreditations: whether a method lies in the scope of an active one */
    private readonly scope: MethodScopeCheck,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  createSample(actor: Actor, input: LabSampleInput): LabSample {
    const db = this.database.sqlite;
    const created = db.transaction(() => {
      if (!db.prepare('SELECT 1 FROM organizations WHERE id = ?').get(input.organization))
        throw new LabtraceError('E_BAD_REQUEST', `body: organization: "${input.organization}" is not known`);
      if (db.prepare('SELECT 1 FROM lab_samples WHERE id = ?').get(input.id))
        throw new LabtraceError('E_CONFLICT', `body: id: sample "${input.id}" exists`, {
          reason: 'record.exists',
          params: { type: 'sample', id: input.id },
        });
      const sample: LabSample = { ...input, createdBy: actor.username, createdAt: this.now() };
      db.prepare(
        'INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(sample.id, sample.organization, sample.description, sample.condition, sample.receivedAt, sample.createdBy, sample.createdAt);
      this.audit.record(actor, { action: 'create', recordType: 'lab-sample', recordId: sample.id, newValue: input });
      return sample;
    })();
    this.emit('changed', { list: 'samples', id: created.id }, created.organization);
    return created;
  }

  /**
   * A page of samples, newest registered first: those of `organizations` (undefined: every organization's), found by
   * `q` in the id, description or customer (its id or name), received between receivedFrom and receivedTo.
   */
  samplesPage(query: SampleListQuery, organizations: readonly string[] | undefined): Page<LabSample> {
    if (organizations !== undefined && organizations.length === 0) return { items: [], next: null };
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (organizations !== undefined) {
      where.push(`s.organization IN (${organizations.map(() => '?').join(', ')})`);
      params.push(...organizations);
    }
    if (query.organization !== undefined) {
      where.push('s.organization = ?');
      params.push(query.organization);
    }
    const q = query.q?.trim() ?? '';
    if (q !== '') {
      const like = likeAnywhere(q);
      where.push("(s.id LIKE ? ESCAPE '\\' OR s.description LIKE ? ESCAPE '\\' OR s.organization LIKE ? ESCAPE '\\' OR o.name LIKE ? ESCAPE '\\')");
      params.push(like, like, like, like);
    }
    if (query.receivedFrom !== undefined) {
      where.push('s.received_at >= ?');
      params.push(query.receivedFrom);
    }
    if (query.receivedTo !== undefined) {
      where.push('s.received_at <= ?');
      params.push(query.receivedTo);
    }
    const page = pageSql(query, 's.rowid');
    const rows = this.database.sqlite
      .prepare(
        `SELECT s.rowid AS position, s.* FROM lab_samples s LEFT JOIN organizations o ON o.id = s.organization
         WHERE ${[...where, page.where].join(' AND ')} ${page.orderLimit}`,
      )
      .all(...params, ...page.params) as (SampleRow & { position: number })[];
    return pageOfRows(rows, query, (r) => r.position, toSample);
  }

  sample(id: string): LabSample | undefined {
    const row = this.database.sqlite.prepare('SELECT * FROM lab_samples WHERE id = ?').get(id) as SampleRow | undefined;
    return row === undefined ? undefined : toSample(row);
  }

  /** Creates version 1 of a method. */
  createMethod(actor: Actor, input: { id: string; standard: string; title: string; definition: MethodDefinition }): Method {
    const db = this.database.sqlite;
    const created = db.transaction(() => {
      if (db.prepare('SELECT 1 FROM methods WHERE id = ?').get(input.id))
        throw new LabtraceError(
          'E_CONFLICT',
          `body: id: method "${input.id}" exists; add a version instead (POST /api/methods/${input.id}/versions)`,
          { reason: 'record.exists', params: { type: 'method', id: input.id } },
        );
      return this.insertMethod(actor, { ...input, version: 1 }, undefined);
    })();
    this.emit('changed', { list: 'methods', id: created.id }, null);
    return created;
  }

  /** Adds the next version of a method; the reason is required and goes to the audit trail with both versions. */
  addMethodVersion(actor: Actor, id: string, input: { standard: string; title: string; definition: MethodDefinition; reason: string }): Method {
    const db = this.database.sqlite;
    const added = db.transaction(() => {
      const before = this.method(id);
      if (!before)
        throw new LabtraceError('E_NOT_FOUND', `method "${id}" is not known`, { reason: 'record.not-found', params: { type: 'method', id } });
      const { reason, ...fields } = input;
      return this.insertMethod(actor, { ...fields, id, version: before.version + 1 }, { before, reason });
    })();
    this.emit('changed', { list: 'methods', id: added.id }, null);
    return added;
  }

  /**
   * A page of methods, each in its newest version, the newest method first. A method keeps its place (its first
   * version's row id) when a version is added, so that paging through the list shows every method once.
   */
  methodsPage(query: MethodListQuery): Page<Method> {
    const where: string[] = [];
    const params: string[] = [];
    const q = query.q?.trim() ?? '';
    if (q !== '') {
      const like = likeAnywhere(q);
      where.push("(m.id LIKE ? ESCAPE '\\' OR m.standard LIKE ? ESCAPE '\\' OR m.title LIKE ? ESCAPE '\\')");
      params.push(like, like, like);
    }
    const page = pageSql(query, 'f.first');
    const rows = this.database.sqlite
      .prepare(
        `SELECT f.first AS position, m.* FROM methods m
         JOIN (SELECT id, MIN(rowid) AS first, MAX(version) AS latest FROM methods GROUP BY id) f ON f.id = m.id AND m.version = f.latest
         WHERE ${[...where, page.where].join(' AND ')} ${page.orderLimit}`,
      )
      .all(...params, ...page.params) as (MethodRow & { position: number })[];
    return pageOfRows(
      rows,
      query,
      (r) => r.position,
      (r) => this.toMethod(r),
    );
  }

  /** A method's version, the newest when none is given. */
  method(id: string, version?: number): Method | undefined {
    const row = (
      version === undefined
        ? this.database.sqlite.prepare('SELECT * FROM methods WHERE id = ? ORDER BY version DESC LIMIT 1').get(id)
        : this.database.sqlite.prepare('SELECT * FROM methods WHERE id = ? AND version = ?').get(id, version)
    ) as MethodRow | undefined;
    return row === undefined ? undefined : this.toMethod(row);
  }

  /** Every version of a method, oldest first. */
  methods(id: string): Method[] {
    const rows = this.database.sqlite.prepare('SELECT * FROM methods WHERE id = ? ORDER BY version').all(id) as MethodRow[];
    return rows.map((r) => this.toMethod(r));
  }

  private insertMethod(
    actor: Actor,
    method: { id: string; version: number; standard: string; title: string; definition: MethodDefinition },
    change: { before: Method; reason: string } | undefined,
  ): Method {
    const createdAt = this.now();
    this.database.sqlite
      .prepare('INSERT INTO methods (id, version, standard, title, definition, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(method.id, method.version, method.standard, method.title, JSON.stringify(method.definition), actor.username, createdAt);
    const value = { version: method.version, standard: method.standard, title: method.title, definition: method.definition };
    if (change === undefined) this.audit.record(actor, { action: 'create', recordType: 'method', recordId: method.id, newValue: value });
    else
      this.audit.record(actor, {
        action: 'update',
        recordType: 'method',
        recordId: method.id,
        oldValue: {
          version: change.before.version,
          standard: change.before.standard,
          title: change.before.title,
          definition: change.before.definition,
        },
        newValue: value,
        reason: change.reason,
      });
    return {
      ...method,
      createdBy: actor.username,
      createdAt,
      accredited: this.scope.methodInScope(method.standard, method.definition.measurands, createdAt),
    };
  }

  private toMethod(row: MethodRow): Method {
    const definition = parseWith(methodDefinition, JSON.parse(row.definition), `method ${row.id} v${row.version}`, 'E_STORE');
    return {
      id: row.id,
      version: row.version,
      standard: row.standard,
      title: row.title,
      definition,
      createdBy: row.created_by,
      createdAt: row.created_at,
      accredited: this.scope.methodInScope(row.standard, definition.measurands, this.now()),
    };
  }
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
