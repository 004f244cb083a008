// Test runs: a sample tested by a method version on assigned instruments, planned -> running ->
// completed | aborted. A run binds data to evidence: at its start and at its end it records, per gateway
// of its instruments, where that gateway's stored sequence numbers stood, inside the same SQLite
// transaction as the state change. Batches are stored whole and their commits are serialized with ours,
// so every stored batch lies wholly before or wholly after each boundary, and the run's records are
// exactly the signed, logged records of those sequence ranges (filtered to its instruments).
import { EventEmitter } from 'node:events';
import { LabtraceError, readRecords, type LiveSample } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { canSee, visibleOrganizations, type Viewer } from '../auth/visibility.js';
import { sql, type Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import type { EquipmentStatus } from './equipment.js';
import type { MethodScopeCheck } from './accreditation.js';
import type { LabRecords } from './lab-records.js';
import type { RunInput } from './schemas.js';
import { RUN_STATES, type Page, type RunState, type RunsQuery, type RunTime } from '@labtrace/protocols/api';
import { pageOfRows, pageSql } from '../api/paging.js';

export { RUN_STATES };
export type { RunState };
export type RunCommand = 'start' | 'stop' | 'abort';

/** the state machine: what each command does from each state; anything else is refused */
const TRANSITIONS: Record<RunState, Partial<Record<RunCommand, RunState>>> = {
  planned: { start: 'running', abort: 'aborted' },
  running: { stop: 'completed', abort: 'aborted' },
  completed: {},
  aborted: {},
};

/** the flag on a run (and, later, on its results) whose method lies outside the lab's accreditation scope */
export const NOT_ACCREDITED = 'not accredited';

export interface RunRange {
  gateway: string;
  /** the first sequence number of the gateway stored after the run started */
  firstSeq: number;
  /** the last one stored before it ended; null while it runs */
  lastSeq: number | null;
}

export interface Run {
  id: string;
  sample: string;
  organization: string;
  method: { id: string; version: number; standard: string };
  instruments: { id: string; gateway: string }[];
  technician: string;
  state: RunState;
  accredited: boolean;
  flags: string[];
  createdBy: string;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  ranges: RunRange[];
}

/** an instrument of a run as its view shows it: identity (null when unknown) and calibration status */
export interface RunEquipment {
  id: string;
  identity: {
    maker: string;
    model: string;
    serialNumber: string;
    firmware?: string | undefined;
    kind?: string | undefined;
    location?: string | undefined;
  } | null;
  calibration: { status: 'valid' | 'due-soon' | 'expired' | 'out-of-service' | 'never-calibrated'; dueAt: number | null };
}

export interface RunRecords {
  run: string;
  /** the stored batches the records come from, each with its place in the transparency log */
  batches: { gateway: string; batch: number; firstSeq: number; count: number; logIndex: number | null }[];
  samples: LiveSample[];
  /** more records exist than the limit let through */
  truncated: boolean;
}

interface RunRow {
  id: string;
  sample: string;
  organization: string;
  method_id: string;
  method_version: number;
  instruments: string;
  technician: string;
  state: RunState;
  accredited: number;
  created_by: string;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
}

/** the column each `time` of the runs query bounds */
const TIME_COLUMNS: Record<RunTime, string> = { created: 'r.created_at', started: 'r.started_at', ended: 'r.ended_at' };

/** a run of the list, with the number of its open alarms (raised, not cleared) */
export type RunListItem = Run & { openAlarms: number };

/**
 * The open alarms of run `r`: alarms whose newest event is not a clearance (run_alarms keeps every event; the index
 * on (run, alarm, id) answers the newest per alarm).
 */
export const OPEN_ALARMS_SQL = `SELECT COUNT(*) FROM run_alarms a WHERE a.run = r.id AND a.event <> 'cleared'
  AND a.id = (SELECT MAX(b.id) FROM run_alarms b WHERE b.run = a.run AND b.alarm = a.alarm)`;

/** `%`, `_` and the escape character itself taken literally in a LIKE pattern (ESCAPE '\\') */
const likePattern = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

interface RunsEvents {
  /** a run was planned */
  created: [run: Run];
  /** stored samples of a running run's instruments, as they arrive */
  samples: [run: string, samples: LiveSample[]];
  state: [run: Run];
}

export class Runs extends EventEmitter<RunsEvents> {
  /** running runs: per gateway, the run's instruments and the first sequence number that belongs to it */
  private readonly running = new Map<string, Map<string, { instruments: Set<string>; firstSeq: number }>>();

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly records: LabRecords,
    private readonly equipment: EquipmentStatus,
    /** the lab's accreditations: a run of a method outside their scope is flagged NOT_ACCREDITED */
    private readonly scope: MethodScopeCheck,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** Loads the runs that were running when the server stopped; call after the schema is migrated. */
  open(): void {
    const rows = this.database.sqlite.prepare("SELECT id FROM runs WHERE state = 'running'").all() as { id: string }[];
    for (const { id } of rows) {
      const run = this.find(id);
      if (run) this.track(run);
    }
  }

  create(actor: Actor, input: RunInput): Run {
    const db = this.database.sqlite;
    const run = db.transaction(() => {
      const sample = this.records.sampleSync(input.sample);
      if (!sample) throw new LabtraceError('E_BAD_REQUEST', `body: sample: "${input.sample}" is not known`);
      const method = this.records.methodSync(input.method, input.methodVersion);
      if (!method)
        throw new LabtraceError(
          'E_BAD_REQUEST',
          `body: method: "${input.method}"${input.methodVersion === undefined ? '' : ` version ${input.methodVersion}`} is not known`,
        );
      const instruments: { id: string; gateway: string; type: string }[] = input.instruments.map((id, i) => {
        const row = db.prepare('SELECT id, gateway, identity FROM instruments WHERE id = ?').get(id) as
          { id: string; gateway: string; identity: string } | undefined;
        if (!row) throw new LabtraceError('E_BAD_REQUEST', `body: instruments[${i}]: instrument "${id}" is not known`);
        const identity = JSON.parse(row.identity) as { kind?: string; model: string };
        return { id: row.id, gateway: row.gateway, type: identity.kind ?? identity.model };
      });
      const missing = method.definition.instrumentTypes.filter((type) => !instruments.some((i) => i.type === type));
      if (missing.length > 0)
        throw new LabtraceError(
          'E_BAD_REQUEST',
          `body: instruments: method ${method.id} v${method.version} needs an instrument of type ${missing.map((m) => `"${m}"`).join(', ')}`,
        );
      const technician = input.technician ?? actor.username;
      const user = db.prepare('SELECT role, disabled FROM users WHERE username = ?').get(technician) as
        { role: string; disabled: number } | undefined;
      if (!user || user.role !== 'technician' || user.disabled !== 0)
        throw new LabtraceError('E_BAD_REQUEST', `body: technician: "${technician}" is not an active technician`);
      const count = (db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
      const id = `run-${count + 1}`;
      const createdAt = this.now();
      const inScope = this.scope.methodInScope(method.standard, method.definition.measurands, createdAt);
      const accredited = inScope ? 1 : 0;
      const bound = instruments.map((i) => ({ id: i.id, gateway: i.gateway }));
      db.prepare(
        `INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?)`,
      ).run(id, sample.id, sample.organization, method.id, method.version, JSON.stringify(bound), technician, accredited, actor.username, createdAt);
      this.audit.record(actor, {
        action: 'create',
        recordType: 'run',
        recordId: id,
        newValue: {
          sample: sample.id,
          method: { id: method.id, version: method.version },
          instruments: bound,
          technician,
          state: 'planned',
          accredited: inScope,
        },
      });
      return this.mustFind(id);
    })();
    this.emit('created', run);
    return run;
  }

  /**
   * Starts a planned run: every assigned instrument must pass the equipment checks (service status now,
   * calibration later). The accreditation scope is checked again, as it stands at the start (an accreditation
   * may have been suspended or its scope reduced since the run was planned).
   */
  start(actor: Actor, id: string, reason?: string): Run {
    return this.transition(actor, id, 'start', reason, (run, at) => {
      const blockers = run.instruments.flatMap((i) => this.equipment.blockersSync(i.id));
      if (blockers.length > 0)
        throw new LabtraceError('E_CONFLICT', `run ${id} cannot start: ${blockers.join('; ')}`, {
          reason: 'run.cannot-start',
          params: { id, blockers: blockers.join('; ') },
        });
      const db = this.database.sqlite;
      for (const gateway of new Set(run.instruments.map((i) => i.gateway)))
        db.prepare('INSERT INTO run_ranges (run, gateway, first_seq) VALUES (?, ?, ?)').run(id, gateway, this.nextSeq(gateway));
      const method = this.records.methodSync(run.method.id, run.method.version);
      const accredited = method !== undefined && this.scope.methodInScope(method.standard, method.definition.measurands, at);
      db.prepare("UPDATE runs SET state = 'running', started_at = ?, accredited = ? WHERE id = ?").run(at, accredited ? 1 : 0, id);
    });
  }

  stop(actor: Actor, id: string, reason?: string): Run {
    return this.transition(actor, id, 'stop', reason, (run, at) => this.end(run, 'completed', at, reason ?? null));
  }

  /** Aborts a planned or running run; the reason is required and stays with the run. */
  abort(actor: Actor, id: string, reason: string): Run {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required to abort a run');
    return this.transition(actor, id, 'abort', reason, (run, at) => this.end(run, 'aborted', at, reason));
  }

  /** A run the principal may see; undefined for an unknown run and for another organization's, alike. */
  get(principal: Viewer, id: string): Run | undefined {
    const run = this.find(id);
    return run !== undefined && visibleTo(principal, run) ? run : undefined;
  }

  list(principal: Viewer, filter: { state?: RunState | undefined; sample?: string | undefined } = {}): Run[] {
    const where: string[] = [];
    const params: unknown[] = [];
    const organizations = visibleOrganizations(principal);
    if (organizations !== undefined) {
      where.push(`organization IN (${organizations.map(() => '?').join(', ')})`);
      params.push(...organizations);
    }
    if (filter.state !== undefined) {
      where.push('state = ?');
      params.push(filter.state);
    }
    if (filter.sample !== undefined) {
      where.push('sample = ?');
      params.push(filter.sample);
    }
    const rows = this.database.sqlite
      .prepare(`SELECT * FROM runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`)
      .all(...params) as RunRow[];
    return rows.map((r) => this.toRun(r));
  }

  /**
   * A page of the runs the viewer may see, newest first (by row id), searched and filtered on the server; each
   * with the number of its open alarms.
   */
  page(principal: Viewer, query: RunsQuery): Page<RunListItem> {
    const where: string[] = [];
    const params: unknown[] = [];
    const organizations = visibleOrganizations(principal);
    if (organizations !== undefined) {
      where.push(`r.organization IN (${organizations.map(() => '?').join(', ')})`);
      params.push(...organizations);
    }
    const equal = (column: string, value: unknown): void => {
      if (value === undefined) return;
      where.push(`${column} = ?`);
      params.push(value);
    };
    equal('r.state', query.state);
    equal('r.sample', query.sample);
    equal('r.method_id', query.method);
    equal('r.organization', query.organization);
    const time = TIME_COLUMNS[query.time ?? 'created'];
    if (query.from !== undefined) {
      where.push(`${time} >= ?`);
      params.push(query.from);
    }
    if (query.to !== undefined) {
      where.push(`${time} <= ?`);
      params.push(query.to);
    }
    // the results' verdict is a generated, indexed column (migration 0040): the overview counts by it too
    if (query.verdict !== undefined) {
      where.push('EXISTS (SELECT 1 FROM run_results rr WHERE rr.run = r.id AND rr.verdict = ?)');
      params.push(query.verdict);
    }
    if (query.q !== undefined) {
      const like = likePattern(query.q);
      // the small tables are searched once (IN over a list), the runs row by row: a per-row EXISTS costs 4 times more
      where.push(`(r.id LIKE ? ESCAPE '\\' OR r.sample LIKE ? ESCAPE '\\' OR r.method_id LIKE ? ESCAPE '\\'
        OR r.sample IN (SELECT s.id FROM lab_samples s WHERE s.description LIKE ? ESCAPE '\\')
        OR r.organization IN (SELECT o.id FROM organizations o WHERE o.name LIKE ? ESCAPE '\\')
        OR r.method_id IN (SELECT m.id FROM methods m WHERE m.title LIKE ? ESCAPE '\\'))`);
      params.push(like, like, like, like, like, like);
    }
    if (query.alarms === 'open') where.push(`(${OPEN_ALARMS_SQL}) > 0`);
    const paged = pageSql(query, 'r.rowid');
    where.push(paged.where);
    params.push(...paged.params);
    const rows = this.database.sqlite
      .prepare(`SELECT r.*, r.rowid AS position, (${OPEN_ALARMS_SQL}) AS open_alarms FROM runs r WHERE ${where.join(' AND ')} ${paged.orderLimit}`)
      .all(...params) as (RunRow & { position: number; open_alarms: number })[];
    // a page's runs share few method versions and read their ranges at once: 3 statements, not 2 per run
    const standards = new Map<string, string>();
    const standardOf = (id: string, version: number): string => {
      const key = `${id}@${version}`;
      let standard = standards.get(key);
      if (standard === undefined) standards.set(key, (standard = this.records.methodSync(id, version)?.standard ?? ''));
      return standard;
    };
    const shown = rows.slice(0, query.limit);
    const ranges = new Map<string, RunRange[]>();
    if (shown.length > 0)
      for (const r of this.database.sqlite
        .prepare(
          `SELECT run, gateway, first_seq AS firstSeq, last_seq AS lastSeq FROM run_ranges WHERE run IN (${shown.map(() => '?').join(', ')}) ORDER BY run, gateway`,
        )
        .all(...shown.map((row) => row.id)) as (RunRange & { run: string })[]) {
        const list = ranges.get(r.run) ?? [];
        list.push({ gateway: r.gateway, firstSeq: r.firstSeq, lastSeq: r.lastSeq });
        ranges.set(r.run, list);
      }
    return pageOfRows(
      rows,
      query,
      (r) => r.position,
      (r) => ({
        ...this.toRun(r, { standard: standardOf(r.method_id, r.method_version), ranges: ranges.get(r.id) ?? [] }),
        openAlarms: r.open_alarms,
      }),
    );
  }

  /** The open alarms (raised, not cleared) of the runs the viewer may see, and how many runs have one. */
  openAlarms(principal: Viewer): { open: number; runs: number } {
    const organizations = visibleOrganizations(principal);
    const scope = organizations === undefined ? '1' : `r.organization IN (${organizations.map(() => '?').join(', ')})`;
    // from the alarms' side: most runs never raise one
    const row = this.database.sqlite
      .prepare(
        `SELECT COUNT(*) AS open, COUNT(DISTINCT a.run) AS runs FROM run_alarms a JOIN runs r ON r.id = a.run
         WHERE ${scope} AND a.event <> 'cleared' AND a.id = (SELECT MAX(b.id) FROM run_alarms b WHERE b.run = a.run AND b.alarm = a.alarm)`,
      )
      .get(...(organizations ?? [])) as { open: number; runs: number };
    return { open: row.open, runs: row.runs };
  }

  /**
   * The run's records, read from the stored batches (the signed bytes, not the derived index) of its
   * ranges and filtered to its instruments; a running run's open range ends at the newest stored record.
   */
  recordsOf(run: Run, limit: number): RunRecords {
    const out: RunRecords = { run: run.id, batches: [], samples: [], truncated: false };
    this.eachRecord(
      run,
      (sample) => {
        if (out.samples.length >= limit) {
          out.truncated = true;
          return false;
        }
        out.samples.push(sample);
        return true;
      },
      (batch) => void out.batches.push(batch),
    );
    return out;
  }

  /**
   * Visits the run's records in order (by gateway, then sequence number), each with its stored bytes
   * (the 0x00 leaf prefix and the record's canonical bytes: their SHA-256 is its Merkle leaf hash); `visit` returns false to stop.
   */
  eachRecord(run: Run, visit: (sample: LiveSample, leaf: Uint8Array) => boolean, onBatch?: (batch: RunRecords['batches'][number]) => void): void {
    const db = this.database.sqlite;
    for (const range of run.ranges) {
      const last = range.lastSeq ?? this.nextSeq(range.gateway) - 1;
      if (last < range.firstSeq) continue;
      const mine = new Set(run.instruments.filter((i) => i.gateway === range.gateway).map((i) => i.id));
      const batches = db
        .prepare(
          `SELECT batch, first_seq AS firstSeq, count, records, log_index AS logIndex FROM batch_headers
           WHERE gateway = ? AND first_seq <= ? AND first_seq + count > ? ORDER BY first_seq`,
        )
        .all(range.gateway, last, range.firstSeq) as {
        batch: number;
        firstSeq: number;
        count: number;
        records: Buffer | null;
        logIndex: number | null;
      }[];
      for (const b of batches) {
        onBatch?.({ gateway: range.gateway, batch: b.batch, firstSeq: b.firstSeq, count: b.count, logIndex: b.logIndex });
        if (b.records === null) continue;
        const bytes = b.records;
        let go = true;
        readRecords(bytes, ({ sample: s }, start, end) => {
          if (s.seq < range.firstSeq || s.seq > last || !mine.has(s.instrument)) return true;
          go = visit(
            {
              gateway: range.gateway,
              seq: s.seq,
              instrument: s.instrument,
              channel: s.channel,
              ts: s.ts,
              value: s.value,
              unit: s.unit,
              quality: s.quality,
            },
            bytes.subarray(start, end),
          );
          return go;
        });
        if (!go) return;
      }
    }
  }

  /** Passes stored samples on to the running runs of their instruments (for the runs' live rooms). */
  onSamples(samples: LiveSample[]): void {
    for (const [run, gateways] of this.running) {
      const mine = samples.filter((s) => {
        const g = gateways.get(s.gateway);
        return g !== undefined && s.seq >= g.firstSeq && g.instruments.has(s.instrument);
      });
      if (mine.length > 0) this.emit('samples', run, mine);
    }
  }

  private transition(actor: Actor, id: string, command: RunCommand, reason: string | undefined, apply: (run: Run, at: number) => void): Run {
    const db = this.database.sqlite;
    const after = db.transaction(() => {
      const before = this.find(id);
      if (!before) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`, { reason: 'record.not-found', params: { type: 'run', id } });
      const next = TRANSITIONS[before.state][command];
      if (next === undefined)
        throw new LabtraceError(
          'E_CONFLICT',
          `run ${id} is ${before.state}: it cannot ${command === 'stop' ? 'be stopped' : command === 'start' ? 'be started' : 'be aborted'} (a run goes planned -> running -> completed, or is aborted while planned or running)`,
          { reason: 'run.transition-refused', params: { id, state: before.state, command } },
        );
      const at = this.now();
      apply(before, at);
      const run = this.mustFind(id);
      this.audit.record(actor, {
        action: 'state-change',
        recordType: 'run',
        recordId: id,
        oldValue: { state: before.state },
        newValue: { state: run.state, startedAt: run.startedAt, endedAt: run.endedAt, ranges: run.ranges, accredited: run.accredited },
        reason,
      });
      return run;
    })();
    if (after.state === 'running') this.track(after);
    else this.running.delete(after.id);
    this.emit('state', after);
    return after;
  }

  private end(run: Run, state: 'completed' | 'aborted', at: number, reason: string | null): void {
    const db = this.database.sqlite;
    for (const range of run.ranges)
      db.prepare('UPDATE run_ranges SET last_seq = ? WHERE run = ? AND gateway = ?').run(this.nextSeq(range.gateway) - 1, run.id, range.gateway);
    db.prepare('UPDATE runs SET state = ?, ended_at = ?, end_reason = ? WHERE id = ?').run(state, at, reason, run.id);
  }

  /** the gateway's next sequence number: one past the highest stored (batches are stored whole) */
  private nextSeq(gateway: string): number {
    const row = this.database.sqlite
      .prepare('SELECT first_seq + count AS next FROM batch_headers WHERE gateway = ? ORDER BY first_seq DESC LIMIT 1')
      .get(gateway) as { next: number } | undefined;
    return row?.next ?? 0;
  }

  private track(run: Run): void {
    const gateways = new Map<string, { instruments: Set<string>; firstSeq: number }>();
    for (const range of run.ranges)
      gateways.set(range.gateway, {
        firstSeq: range.firstSeq,
        instruments: new Set(run.instruments.filter((i) => i.gateway === range.gateway).map((i) => i.id)),
      });
    this.running.set(run.id, gateways);
  }

  private find(id: string): Run | undefined {
    const row = this.database.sqlite.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return row === undefined ? undefined : this.toRun(row);
  }

  private mustFind(id: string): Run {
    const run = this.find(id);
    if (!run) throw new LabtraceError('E_STORE', `run ${id} vanished`);
    return run;
  }

  /** `known`: the method's standard and the run's ranges when the caller read them already (a page of runs) */
  private toRun(row: RunRow, known?: { standard: string; ranges: RunRange[] }): Run {
    const ranges =
      known?.ranges ??
      (
        this.database.sqlite
          .prepare('SELECT gateway, first_seq AS firstSeq, last_seq AS lastSeq FROM run_ranges WHERE run = ? ORDER BY gateway')
          .all(row.id) as RunRange[]
      ).map((r) => ({ gateway: r.gateway, firstSeq: r.firstSeq, lastSeq: r.lastSeq }));
    const standard = known?.standard ?? this.records.methodSync(row.method_id, row.method_version)?.standard ?? '';
    const accredited = row.accredited === 1;
    return {
      id: row.id,
      sample: row.sample,
      organization: row.organization,
      method: { id: row.method_id, version: row.method_version, standard },
      instruments: JSON.parse(row.instruments) as Run['instruments'],
      technician: row.technician,
      state: row.state,
      accredited,
      flags: accredited ? [] : [NOT_ACCREDITED],
      createdBy: row.created_by,
      createdAt: row.created_at,
      startedAt: row.started_at,
      endedAt: row.ended_at,
      endReason: row.end_reason,
      ranges,
    };
  }
}

/** A client sees its own organization's runs, an auditor those its grant covers; the lab's staff see all (auth/visibility.ts). */
export function visibleTo(viewer: Viewer, run: Pick<Run, 'organization'>): boolean {
  return canSee(viewer, run.organization);
}

/**
 * The runs that measured with an instrument (started, and not ended before `since`), oldest started first, read
 * through Kysely in the caller's transaction or on the store (SQLite or PostgreSQL): what calibration asks of the
 * runs for the review after a failed check (6.4.9). The instrument lists are JSON text: a LIKE on the id as JSON
 * writes it narrows the rows, the parsed list decides.
 */
export async function runsUsingInstrument(
  db: Kysely<Tables>,
  instrument: string,
  since: number,
): Promise<{ id: string; sample: string; organization: string; state: string; startedAt: number; endedAt: number | null }[]> {
  const like = `%${JSON.stringify(instrument).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await db
    .selectFrom('runs')
    .select(['id', 'sample', 'organization', 'state', 'started_at', 'ended_at', 'instruments'])
    .where('started_at', 'is not', null)
    .where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>=', since)]))
    .where(sql<boolean>`instruments LIKE ${like} ESCAPE '\\'`)
    .orderBy('started_at')
    .orderBy('id')
    .execute();
  return rows
    .filter((r) => (JSON.parse(r.instruments) as { id: string }[]).some((i) => i.id === instrument))
    .map((r) => ({
      id: r.id,
      sample: r.sample,
      organization: r.organization,
      state: r.state,
      startedAt: r.started_at as number,
      endedAt: r.ended_at,
    }));
}
