// Test runs: a sample tested by a method version on assigned instruments, planned -> running ->
// completed | aborted. A run binds data to evidence: at its start and at its end it records, per gateway
// of its instruments, where that gateway's stored sequence numbers stood, inside the same transaction as
// the state change. Batches are stored whole and their commits are serialized with ours (SQLite: one writer;
// PostgreSQL: the measurement store's lock of the gateway), so every stored batch lies wholly before or wholly
// after each boundary, and the run's records are exactly the signed, logged records of those sequence ranges
// (filtered to its instruments). Its queries run through Kysely on SQLite or PostgreSQL.
import { EventEmitter } from 'node:events';
import { LabtraceError, liveSampleOf, readRecords, type LiveSample } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { canSee, visibleOrganizations, type Viewer } from '../auth/visibility.js';
import { sql, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import type { Tables, Transact } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { EquipmentStatus } from './equipment.js';
import type { MethodScopeCheck } from './accreditation.js';
import type { LabRecords, Method } from './lab-records.js';
import type { RunInput } from './schemas.js';
import { RUN_STATES, type Page, type RunState, type RunsQuery, type RunTime } from '@labtrace/protocols/api';
import { pageOfRows } from '../api/paging.js';

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

/** a run as stored */
type RunRow = Selectable<Tables['runs']>;

/** the instruments a run may be planned on: the instrument register (store/registry.ts) */
export interface RunInstruments {
  instrument(id: string): Promise<{ gateway: string; identity: { kind?: string | undefined; model: string } } | undefined>;
}

/** who may be a run's technician: the users (auth/users.ts) */
export interface RunTechnicians {
  get(username: string): Promise<{ role: string; disabled: boolean } | undefined>;
}

/**
 * PostgreSQL: serializes a transaction with every node's commits of the gateways' batches (store/pg-measurement-store.ts,
 * lockGateways), so that a run's boundary lies wholly before or after each stored batch. SQLite has one writer.
 */
export interface BatchCommits {
  lockGateways(trx: Transaction<unknown>, gateways: Iterable<string>): Promise<void>;
}

/** what Runs asks of other modules besides the lab records */
export interface RunParts {
  instruments: RunInstruments;
  technicians: RunTechnicians;
  /** on PostgreSQL: the measurement store's batch serialization (required there) */
  batches?: BatchCommits | undefined;
}

/** the advisory lock (two-key form) under which a PostgreSQL transaction numbers a new run */
const RUN_NUMBER_LOCK = [0x6c74_726e, 1] as const; // 'ltrn'

/**
 * A run's place in the list, newest last: the number of its id (run-N, numbered in creation order; SQLite's row id,
 * which the list paged by before, is the same number). Both engines index this expression (migration
 * 0050_runs_by_number): the text must stay the index's, or a page sorts every run.
 */
const RUN_NUMBER = {
  sqlite: sql<number>`CAST(substr(id, 5) AS INTEGER)`,
  postgres: sql<number>`(CASE WHEN id ~ '^run-[0-9]{1,18}$' THEN CAST(substr(id, 5) AS BIGINT) ELSE 0 END)`,
} as const;

/** the column each `time` of the runs query bounds */
const TIME_COLUMNS: Record<RunTime, 'r.created_at' | 'r.started_at' | 'r.ended_at'> = {
  created: 'r.created_at',
  started: 'r.started_at',
  ended: 'r.ended_at',
};

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
  /** a run changed state; a run started comes with its method's version as the start read it */
  state: [run: Run, method?: Method];
}

export class Runs extends EventEmitter<RunsEvents> {
  /** running runs: per gateway, the run's instruments and the first sequence number that belongs to it */
  private readonly running = new Map<string, Map<string, { instruments: Set<string>; firstSeq: number }>>();
  /** the runs this node moved while a reload read the running ones: the reload's older answer does not undo them */
  private movedDuringReload: Set<string> | undefined;

  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly records: Pick<LabRecords, 'sample' | 'method' | 'methodIn'>,
    private readonly equipment: Pick<EquipmentStatus, 'blockersIn'>,
    /** the lab's accreditations: a run of a method outside their scope is flagged NOT_ACCREDITED */
    private readonly scope: MethodScopeCheck,
    private readonly parts: RunParts,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** the store's own transaction */
  private readonly transact: Transact = (work) => this.store.transaction().execute(work);

  private get postgres(): boolean {
    return dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
  }

  /** Loads the runs that were running when the server stopped; call after the schema is migrated. */
  async open(): Promise<void> {
    for (const run of await this.list(LAB, { state: 'running' })) this.track(run);
  }

  /**
   * Follows the runs running in the store now, whichever node started them, and lets go of those ended meanwhile
   * (on PostgreSQL the node that inspects the runs calls it before it passes on the stored samples).
   */
  async reloadRunning(): Promise<void> {
    const moved = new Set<string>();
    this.movedDuringReload = moved;
    try {
      const running = await this.list(LAB, { state: 'running' });
      const ids = new Set(running.map((r) => r.id));
      for (const run of running) if (!moved.has(run.id) && !this.running.has(run.id)) this.track(run);
      for (const id of [...this.running.keys()]) if (!moved.has(id) && !ids.has(id)) this.running.delete(id);
    } finally {
      if (this.movedDuringReload === moved) this.movedDuringReload = undefined;
    }
  }

  /** `transact`: the transaction the run is created in (a job's fenced one; the store's by default) */
  async create(actor: Actor, input: RunInput, transact: Transact = this.transact): Promise<Run> {
    // the lab records and the other modules' answers first: a transaction awaits only its own queries
    const sample = await this.records.sample(input.sample);
    if (!sample) throw new LabtraceError('E_BAD_REQUEST', `body: sample: "${input.sample}" is not known`);
    const method = await this.records.method(input.method, input.methodVersion);
    if (!method)
      throw new LabtraceError(
        'E_BAD_REQUEST',
        `body: method: "${input.method}"${input.methodVersion === undefined ? '' : ` version ${input.methodVersion}`} is not known`,
      );
    const instruments: { id: string; gateway: string; type: string }[] = [];
    for (const [i, id] of input.instruments.entries()) {
      const found = await this.parts.instruments.instrument(id);
      if (!found) throw new LabtraceError('E_BAD_REQUEST', `body: instruments[${i}]: instrument "${id}" is not known`);
      instruments.push({ id, gateway: found.gateway, type: found.identity.kind ?? found.identity.model });
    }
    const missing = method.definition.instrumentTypes.filter((type) => !instruments.some((i) => i.type === type));
    if (missing.length > 0)
      throw new LabtraceError(
        'E_BAD_REQUEST',
        `body: instruments: method ${method.id} v${method.version} needs an instrument of type ${missing.map((m) => `"${m}"`).join(', ')}`,
      );
    const technician = input.technician ?? actor.username;
    const user = await this.parts.technicians.get(technician);
    if (!user || user.role !== 'technician' || user.disabled)
      throw new LabtraceError('E_BAD_REQUEST', `body: technician: "${technician}" is not an active technician`);
    const createdAt = this.now();
    // read before the transaction, as the method was: the flag says what the scope was when the run was planned
    const inScope = (await this.scope.methodScopeIn(this.store, createdAt))(method.standard, method.definition.measurands);
    const bound = instruments.map((i) => ({ id: i.id, gateway: i.gateway }));
    const run = await transact(async (trx) => {
      // PostgreSQL: runs are numbered one at a time across nodes (SQLite has one writer)
      if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${RUN_NUMBER_LOCK[0]}, ${RUN_NUMBER_LOCK[1]})`.execute(trx);
      const { n } = await trx
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      const id = `run-${Number(n) + 1}`;
      const row = await trx
        .insertInto('runs')
        .values({
          id,
          sample: sample.id,
          organization: sample.organization,
          method_id: method.id,
          method_version: method.version,
          instruments: JSON.stringify(bound),
          technician,
          state: 'planned',
          accredited: inScope ? 1 : 0,
          created_by: actor.username,
          created_at: createdAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, {
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
      return toRun(row, method.standard, []);
    });
    this.emit('created', run);
    return run;
  }

  /**
   * Starts a planned run: every assigned instrument must pass the equipment checks (service status now,
   * calibration later). The accreditation scope is checked again, as it stands at the start (an accreditation
   * may have been suspended or its scope reduced since the run was planned).
   */
  async start(actor: Actor, id: string, reason?: string, transact?: Transact): Promise<Run> {
    return this.transition(actor, id, 'start', reason, transact, async (trx, run, at) => {
      const blockers: string[] = [];
      for (const i of run.instruments) blockers.push(...(await this.equipment.blockersIn(trx, i.id)));
      if (blockers.length > 0)
        throw new LabtraceError('E_CONFLICT', `run ${id} cannot start: ${blockers.join('; ')}`, {
          reason: 'run.cannot-start',
          params: { id, blockers: blockers.join('; ') },
        });
      const gateways = [...new Set(run.instruments.map((i) => i.gateway))];
      await this.serializeWithBatches(trx, gateways);
      for (const gateway of gateways)
        await trx
          .insertInto('run_ranges')
          .values({ run: id, gateway, first_seq: await this.nextSeq(trx, gateway) })
          .execute();
      const method = await this.records.methodIn(trx, run.method.id, run.method.version);
      const accredited = method !== undefined && (await this.scope.methodScopeIn(trx, at))(method.standard, method.definition.measurands);
      await trx
        .updateTable('runs')
        .set({ state: 'running', started_at: at, accredited: accredited ? 1 : 0 })
        .where('id', '=', id)
        .execute();
      return method;
    });
  }

  async stop(actor: Actor, id: string, reason?: string, transact?: Transact): Promise<Run> {
    return this.transition(actor, id, 'stop', reason, transact, (trx, run, at) => this.end(trx, run, 'completed', at, reason ?? null));
  }

  /** Aborts a planned or running run; the reason is required and stays with the run. */
  async abort(actor: Actor, id: string, reason: string, transact?: Transact): Promise<Run> {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required to abort a run');
    return this.transition(actor, id, 'abort', reason, transact, (trx, run, at) => this.end(trx, run, 'aborted', at, reason));
  }

  /** A run the principal may see; undefined for an unknown run and for another organization's, alike. */
  async get(principal: Viewer, id: string): Promise<Run | undefined> {
    return this.getIn(this.store, principal, id);
  }

  /** get() read on `db`: the caller's transaction (a module asking inside its own), or the store */
  async getIn(db: Kysely<Tables>, principal: Viewer, id: string): Promise<Run | undefined> {
    const run = await this.find(db, id);
    return run !== undefined && visibleTo(principal, run) ? run : undefined;
  }

  async list(principal: Viewer, filter: { state?: RunState | undefined; sample?: string | undefined } = {}): Promise<Run[]> {
    const organizations = visibleOrganizations(principal);
    const rows = await this.store
      .selectFrom('runs')
      .selectAll()
      .$if(organizations !== undefined, (q) => q.where('organization', 'in', orNone(organizations)))
      .$if(filter.state !== undefined, (q) => q.where('state', '=', filter.state as RunState))
      .$if(filter.sample !== undefined, (q) => q.where('sample', '=', filter.sample as string))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const ranges = await this.rangesOf(
      this.store,
      rows.map((r) => r.id),
    );
    const standards = await this.standardsOf(rows);
    return rows.map((r) => toRun(r, standards.get(r.id) ?? '', ranges.get(r.id) ?? []));
  }

  /**
   * A page of the runs the viewer may see, newest first (by the run's number), searched and filtered on the server;
   * each with the number of its open alarms.
   */
  async page(principal: Viewer, query: RunsQuery): Promise<Page<RunListItem>> {
    const organizations = visibleOrganizations(principal);
    const limit = Math.max(1, Math.floor(query.limit));
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const time = TIME_COLUMNS[query.time ?? 'created'];
    const like = query.q === undefined ? undefined : likePattern(query.q);
    // without regard to case on both: SQLite's LIKE ignores the case of ASCII letters, PostgreSQL's ILIKE that of all
    const operator = sql.raw(this.postgres ? 'ILIKE' : 'LIKE');
    const matches = (column: string): RawBuilder<boolean> => sql<boolean>`${sql.ref(column)} ${operator} ${like} ESCAPE '\\'`;
    const position = RUN_NUMBER[this.postgres ? 'postgres' : 'sqlite'];
    const rows = await this.store
      .selectFrom('runs as r')
      .selectAll('r')
      .select(position.as('position'))
      .$if(organizations !== undefined, (q) => q.where('r.organization', 'in', orNone(organizations)))
      .$if(query.state !== undefined, (q) => q.where('r.state', '=', query.state as RunState))
      .$if(query.sample !== undefined, (q) => q.where('r.sample', '=', query.sample as string))
      .$if(query.method !== undefined, (q) => q.where('r.method_id', '=', query.method as string))
      .$if(query.organization !== undefined, (q) => q.where('r.organization', '=', query.organization as string))
      .$if(query.from !== undefined, (q) => q.where(time, '>=', query.from as number))
      .$if(query.to !== undefined, (q) => q.where(time, '<=', query.to as number))
      // the results' verdict is a generated, indexed column (migration 0040): the overview counts by it too
      .$if(query.verdict !== undefined, (q) =>
        q.where((eb) =>
          eb.exists(
            eb
              .selectFrom('run_results as rr')
              .select(sql`1`.as('one'))
              .whereRef('rr.run', '=', 'r.id')
              .where('rr.verdict', '=', query.verdict as string),
          ),
        ),
      )
      .$if(like !== undefined, (q) =>
        // the small tables are searched once (IN over a list), the runs row by row: a per-row EXISTS costs 4 times more
        q.where((eb) =>
          eb.or([
            matches('r.id'),
            matches('r.sample'),
            matches('r.method_id'),
            eb('r.sample', 'in', eb.selectFrom('lab_samples as s').select('s.id').where(matches('s.description'))),
            eb('r.organization', 'in', eb.selectFrom('organizations as o').select('o.id').where(matches('o.name'))),
            eb('r.method_id', 'in', eb.selectFrom('methods as m').select('m.id').where(matches('m.title'))),
          ]),
        ),
      )
      .$if(query.alarms === 'open', (q) => q.where(sql<boolean>`(${sql.raw(OPEN_ALARMS_SQL)}) > 0`))
      .$if(cursor !== undefined, (q) => q.where(position, '<', cursor as number))
      .orderBy(position, 'desc')
      .limit(limit + 1)
      .execute();
    // a page's runs share few method versions and read their ranges and open alarms at once: 3 statements, not 3 per run
    const shown = rows.slice(0, limit).map((r) => r.id);
    const ranges = await this.rangesOf(this.store, shown);
    const open = new Map<string, number>();
    if (shown.length > 0)
      for (const r of await this.store
        .selectFrom('run_alarms as a')
        .select(['a.run', (eb) => eb.fn.countAll<number>().as('n')])
        .where('a.run', 'in', shown)
        .where('a.event', '<>', 'cleared')
        .where((eb) =>
          eb(
            'a.id',
            '=',
            eb
              .selectFrom('run_alarms as b')
              .select((b) => b.fn.max('b.id').as('newest'))
              .whereRef('b.run', '=', 'a.run')
              .whereRef('b.alarm', '=', 'a.alarm'),
          ),
        )
        .groupBy('a.run')
        .execute())
        open.set(r.run, Number(r.n));
    const standards = await this.standardsOf(rows);
    return pageOfRows(
      rows,
      query,
      (r) => Number(r.position),
      (r) => ({ ...toRun(r, standards.get(r.id) ?? '', ranges.get(r.id) ?? []), openAlarms: open.get(r.id) ?? 0 }),
    );
  }

  /**
   * The runs that measured with the instrument since `since` (started, and not ended before), oldest first: what a
   * review after the instrument failed a check looks at (ISO/IEC 17025 6.4.9; lab/calibration.ts asks here rather
   * than read the runs itself).
   */
  async measuredWith(
    instrument: string,
    since: number,
  ): Promise<{ id: string; sample: string; organization: string; state: RunState; startedAt: number; endedAt: number | null }[]> {
    // one query for both callers: calibration asks it on its own transaction (runsUsingInstrument below)
    return (await runsUsingInstrument(this.store, instrument, since)).map((r) => ({ ...r, state: r.state as RunState }));
  }

  /** The open alarms (raised, not cleared) of the runs the viewer may see, and how many runs have one. */
  async openAlarms(principal: Viewer): Promise<{ open: number; runs: number }> {
    const organizations = visibleOrganizations(principal);
    // from the alarms' side: most runs never raise one
    const row = await this.store
      .selectFrom('run_alarms as a')
      .innerJoin('runs as r', 'r.id', 'a.run')
      .select((eb) => [eb.fn.countAll<number>().as('open'), eb.fn.count<number>('a.run').distinct().as('runs')])
      .$if(organizations !== undefined, (q) => q.where('r.organization', 'in', orNone(organizations)))
      .where('a.event', '<>', 'cleared')
      .where((eb) =>
        eb(
          'a.id',
          '=',
          eb
            .selectFrom('run_alarms as b')
            .select((b) => b.fn.max('b.id').as('newest'))
            .whereRef('b.run', '=', 'a.run')
            .whereRef('b.alarm', '=', 'a.alarm'),
        ),
      )
      .executeTakeFirstOrThrow();
    return { open: Number(row.open), runs: Number(row.runs) };
  }

  /**
   * The run's records, read from the stored batches (the signed bytes, not the derived index) of its
   * ranges and filtered to its instruments; a running run's open range ends at the newest stored record.
   */
  async recordsOf(run: Run, limit: number): Promise<RunRecords> {
    const out: RunRecords = { run: run.id, batches: [], samples: [], truncated: false };
    await this.eachRecord(
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
  async eachRecord(
    run: Run,
    visit: (sample: LiveSample, leaf: Uint8Array) => boolean,
    onBatch?: (batch: RunRecords['batches'][number]) => void,
  ): Promise<void> {
    for (const range of run.ranges) {
      const last = range.lastSeq ?? (await this.nextSeq(this.store, range.gateway)) - 1;
      if (last < range.firstSeq) continue;
      const mine = new Set(run.instruments.filter((i) => i.gateway === range.gateway).map((i) => i.id));
      const batches = await this.store
        .selectFrom('batch_headers')
        .select(['batch', 'first_seq', 'count', 'records', 'log_index'])
        .where('gateway', '=', range.gateway)
        .where('first_seq', '<=', last)
        .where((eb) => eb(eb('first_seq', '+', eb.ref('count')), '>', range.firstSeq))
        .orderBy('first_seq')
        .execute();
      for (const b of batches) {
        onBatch?.({ gateway: range.gateway, batch: b.batch, firstSeq: b.first_seq, count: b.count, logIndex: b.log_index });
        if (b.records === null) continue;
        const bytes = b.records;
        let go = true;
        readRecords(bytes, ({ sample: s }, start, end) => {
          if (s.seq < range.firstSeq || s.seq > last || !mine.has(s.instrument)) return true;
          go = visit(liveSampleOf(range.gateway, s), bytes.subarray(start, end));
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

  /**
   * A command of the state machine in one transaction with its audit entry. On PostgreSQL the run's row is held
   * (FOR UPDATE) from the read of its state to the commit, so that two nodes given commands for one run at once
   * apply one and refuse the other as the state machine says; SQLite has one writer. `transact`: the transaction
   * the command runs in (a job's fenced one; the store's by default).
   */
  private async transition(
    actor: Actor,
    id: string,
    command: RunCommand,
    reason: string | undefined,
    transact: Transact = this.transact,
    apply: (trx: Transaction<Tables>, run: Run, at: number) => Promise<Method | void>,
  ): Promise<Run> {
    let method: Method | undefined;
    const after = await transact(async (trx) => {
      const before = await this.find(trx, id, true);
      if (!before) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`, { reason: 'record.not-found', params: { type: 'run', id } });
      const next = TRANSITIONS[before.state][command];
      if (next === undefined)
        throw new LabtraceError(
          'E_CONFLICT',
          `run ${id} is ${before.state}: it cannot ${command === 'stop' ? 'be stopped' : command === 'start' ? 'be started' : 'be aborted'} (a run goes planned -> running -> completed, or is aborted while planned or running)`,
          { reason: 'run.transition-refused', params: { id, state: before.state, command } },
        );
      const at = this.now();
      method = (await apply(trx, before, at)) ?? undefined;
      const run = await this.find(trx, id);
      if (!run) throw new LabtraceError('E_STORE', `run ${id} vanished`);
      await this.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'run',
        recordId: id,
        oldValue: { state: before.state },
        newValue: { state: run.state, startedAt: run.startedAt, endedAt: run.endedAt, ranges: run.ranges, accredited: run.accredited },
        reason,
      });
      return run;
    });
    this.movedDuringReload?.add(after.id);
    if (after.state === 'running') this.track(after);
    else this.running.delete(after.id);
    this.emit('state', after, method);
    return after;
  }

  private async end(trx: Transaction<Tables>, run: Run, state: 'completed' | 'aborted', at: number, reason: string | null): Promise<void> {
    await this.serializeWithBatches(
      trx,
      run.ranges.map((r) => r.gateway),
    );
    for (const range of run.ranges)
      await trx
        .updateTable('run_ranges')
        .set({ last_seq: (await this.nextSeq(trx, range.gateway)) - 1 })
        .where('run', '=', run.id)
        .where('gateway', '=', range.gateway)
        .execute();
    await trx.updateTable('runs').set({ state, ended_at: at, end_reason: reason }).where('id', '=', run.id).execute();
  }

  /** PostgreSQL: the gateways' batches committed before this point are seen, those after it commit after ours */
  private async serializeWithBatches(trx: Transaction<Tables>, gateways: string[]): Promise<void> {
    if (!this.postgres || gateways.length === 0) return;
    if (this.parts.batches === undefined)
      throw new LabtraceError('E_CONFIG', 'runs: on PostgreSQL the measurement store must serialize run boundaries');
    await this.parts.batches.lockGateways(trx as unknown as Transaction<unknown>, gateways);
  }

  /** the gateway's next sequence number: one past the highest stored (batches are stored whole) */
  private async nextSeq(db: Kysely<Tables>, gateway: string): Promise<number> {
    const row = await db
      .selectFrom('batch_headers')
      .select((eb) => eb('first_seq', '+', eb.ref('count')).as('next'))
      .where('gateway', '=', gateway)
      .orderBy('first_seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? 0 : Number(row.next);
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

  /** `forUpdate`: on PostgreSQL the row is held to the end of the transaction `db` */
  private async find(db: Kysely<Tables>, id: string, forUpdate = false): Promise<Run | undefined> {
    const row = await db
      .selectFrom('runs')
      .selectAll()
      .where('id', '=', id)
      .$if(forUpdate && this.postgres, (q) => q.forUpdate())
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const ranges = await this.rangesOf(db, [id]);
    return toRun(row, await this.standardOf(db, row), ranges.get(id) ?? []);
  }

  /** the ranges of the runs, by run */
  private async rangesOf(db: Kysely<Tables>, runs: readonly string[]): Promise<Map<string, RunRange[]>> {
    const out = new Map<string, RunRange[]>();
    if (runs.length === 0) return out;
    const rows = await db.selectFrom('run_ranges').selectAll().where('run', 'in', runs).orderBy('run').orderBy('gateway').execute();
    for (const r of rows) {
      const list = out.get(r.run) ?? [];
      list.push(toRange(r));
      out.set(r.run, list);
    }
    return out;
  }

  /** the standard of each run's method version, by run (each version looked up once) */
  private async standardsOf(rows: readonly Pick<RunRow, 'id' | 'method_id' | 'method_version'>[]): Promise<Map<string, string>> {
    const seen = new Map<string, string>();
    const out = new Map<string, string>();
    for (const r of rows) out.set(r.id, await this.standardOf(this.store, r, seen));
    return out;
  }

  /** the standard of the run's method version (lab records); `seen`: those looked up already for a list */
  private async standardOf(db: Kysely<Tables>, row: Pick<RunRow, 'method_id' | 'method_version'>, seen?: Map<string, string>): Promise<string> {
    const key = `${row.method_id}@${row.method_version}`;
    let standard = seen?.get(key);
    if (standard === undefined) {
      standard = (await this.records.methodIn(db, row.method_id, row.method_version))?.standard ?? '';
      seen?.set(key, standard);
    }
    return standard;
  }
}

/** the server itself reading every run */
const LAB: Viewer = { role: 'admin', organization: null };

/** an IN list that may be empty (a viewer of no organization sees nothing) */
const orNone = (list: readonly string[] | undefined): string[] => (list === undefined || list.length === 0 ? [''] : [...list]);

function toRange(r: Selectable<Tables['run_ranges']>): RunRange {
  return { gateway: r.gateway, firstSeq: r.first_seq, lastSeq: r.last_seq };
}

/** a stored run with its method's standard and its ranges */
function toRun(row: RunRow, standard: string, ranges: RunRange[]): Run {
  const accredited = row.accredited === 1;
  return {
    id: row.id,
    sample: row.sample,
    organization: row.organization,
    method: { id: row.method_id, version: row.method_version, standard },
    instruments: JSON.parse(row.instruments) as Run['instruments'],
    technician: row.technician,
    state: row.state as RunState,
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
