// The inspection of running test runs: one rule engine per running run, built from its method's rules,
// fed the run's stored samples and ticked by one server-owned timer. Every alarm event is appended to
// `run_alarms` (so a restart keeps the history), in the order the engines raised them, and announced for the run's
// live room once stored; acknowledging and clearing are a person's acts, each with a reason and an audit-trail entry
// in one transaction. Its queries run through Kysely on SQLite or PostgreSQL.
import { EventEmitter } from 'node:events';
import { LabtraceError, type AlarmEventKind, type LiveSample, type RunAlarm, type RunAlarmEvent } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { EquipmentStatus } from '../lab/equipment.js';
import type { LabRecords, Method } from '../lab/lab-records.js';
import type { MethodDefinition } from '../lab/schemas.js';
import type { Run, Runs } from '../lab/runs.js';
import type { Logger } from '../log.js';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import { RuleEngine, type Alarm, type InstrumentStatus } from './engine.js';

const EVENTS: readonly AlarmEventKind[] = ['raised', 'escalated', 'recurred', 'returned', 'acknowledged', 'cleared'];

/** follow(): how far back (in event numbers) acts are read again, for those that committed after a higher number */
const ACT_MARGIN = 1000;

/** a run's alarms: each as it stands now (its newest event), and every event, oldest first */
export interface RunAlarms {
  run: string;
  alarms: RunAlarm[];
  events: RunAlarmEvent[];
}

interface RunInspectionEvents {
  alarm: [event: RunAlarmEvent];
}

export interface RunInspectionOptions {
  /** the time of ticks, acknowledgements and clearances (default Date.now); tests inject fake time */
  clock?: () => number;
  /** how often the time-based rules (missing data, stuck) are evaluated (default 1000 ms) */
  tickMs?: number;
  /** an instrument's calibration status for the instrument-status rules (default: only in or out of service) */
  instrumentStatus?: (instrument: string) => Promise<InstrumentStatus>;
}

interface EventRow {
  id: number;
  run: string;
  event: AlarmEventKind;
  at: number;
  detail: string;
}

/**
 * How the inspection writes when it runs as the job of one node among several (PostgreSQL): every alarm event the
 * engines raise is stored through the job's fence, in one transaction with the position of the feed (the log index of
 * the last stored batch whose samples were handed on before those events). A node that no longer holds the lease
 * therefore stores nothing (its transaction is refused as a whole), and the node that takes the job over resumes the
 * feed right after the stored position: the samples whose events were refused, or never evaluated, are evaluated
 * again there, and those whose events were stored are not.
 *
 * What the next holder rebuilds: each running run's engine from the stored events (its open alarms continue, with
 * their acknowledgements, and its alarm numbers go on: rebuild()), then the samples after the stored position. What it
 * does not rebuild is the engines' memory of samples before that position: a rule over several samples (rate of
 * change, stuck value, drift over a window) starts its window again at the handover, as after a restart
 * (reading earlier batches again would raise their events a second time). The time-based rules are ticked with the
 * clock as it is, so the samples of a long gap are evaluated after the ticks of the new holder's first seconds. And
 * the samples of a run that ended during the gap are not inspected (only running runs are handed samples).
 */
export interface InspectionFence {
  /** the job's fence (JobContext.fenced): commits only while this node's lease is current, else E_LEASE_LOST */
  fenced: <T>(write: (trx: Transaction<Tables>) => Promise<T>) => Promise<T>;
  /** stores the feed's position, in the fenced transaction of the events that came before it */
  savePosition: (trx: Transaction<Tables>, position: number) => Promise<void>;
  /**
   * a fenced write failed (E_LEASE_LOST: another node inspects now; or the store failed): nothing more is stored by
   * this node, whose inspection must stop (the next holder evaluates again from the stored position); called once
   */
  onLost: (error: unknown) => void;
}

const stateOf = (a: RunAlarm): string => (a.cleared !== null ? 'cleared' : a.acknowledged !== null ? 'acknowledged' : 'open');

/** an alarm event to store: the run, its kind and the alarm as it stood when the event happened */
interface PendingEvent {
  run: string;
  event: AlarmEventKind;
  at: number;
  alarm: RunAlarm;
}

export class RunInspection extends EventEmitter<RunInspectionEvents> {
  private readonly engines = new Map<string, RuleEngine>();
  private readonly clock: () => number;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  /**
   * status per instrument, looked up once per pass (a batch of samples, or a tick: the engine asks once per
   * sample) and forgotten after it, so that every pass reads the status as it is now
   */
  private statusMemo = new Map<string, InstrumentStatus>();
  /** events of a person's act, taken from the engine to be stored in the act's transaction */
  private captured: PendingEvent[] | undefined;
  /**
   * the store's writes, one after another in the order the engines' events happened (an event's number is its
   * place in that order); a person's act is one of them
   */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly runs: Pick<Runs, 'on' | 'off' | 'list'>,
    private readonly records: Pick<LabRecords, 'method'>,
    private readonly equipment: Pick<EquipmentStatus, 'status'>,
    private readonly logger: Logger,
    options: RunInspectionOptions = {},
  ) {
    super();
    this.clock = options.clock ?? Date.now;
    this.tickMs = options.tickMs ?? 1000;
    this.lookupStatus = options.instrumentStatus;
  }

  private readonly lookupStatus: ((instrument: string) => Promise<InstrumentStatus>) | undefined;
  /** per run inspected: the instruments its instrument-status rules watch (their status is read before each pass) */
  private readonly watched = new Map<string, string[]>();
  /** the passes that read statuses first, one after another in the order their samples or ticks came */
  private passes: Promise<void> = Promise.resolve();
  private pendingPasses = 0;
  /** follow(): the newest act stored (by event number) it has seen, and the acts this node stored since */
  private following = false;
  private actsSeen = 0;
  private readonly ownActs = new Set<number>();
  /** runs whose engine refused an act another node had made: built again from the store at the next follow() */
  private readonly resync = new Set<string>();
  /** the acts follow() has handled among the newest ACT_MARGIN event numbers */
  private readonly handledActs = new Set<number>();
  private started = false;
  /** as a job of one node among several: the fence of its writes (undefined: the writes go to the store at once) */
  private fence: InspectionFence | undefined;
  /** with a fence: the engines' events not yet given to a fenced transaction, in the order they were raised */
  private unflushed: PendingEvent[] = [];
  /** with a fence: the feed's position that the events raised so far follow from, and the last one stored */
  private reached: number | undefined;
  private savedPosition: number | undefined;
  /** with a fence: a fenced write failed, nothing more is written */
  private fenceLost = false;

  /**
   * Builds the engines of the runs that are running (after a restart too) and starts the one tick timer; call after
   * runs.open(). `follow`: this node inspects for several nodes on one store (call follow() every second or so); the
   * acts stored from here on are followed. `fence`: the inspection runs as a lease job, its alarm events are stored
   * through the job's fence with the feed's position (InspectionFence; the feed calls delivered()). A start that fails
   * leaves nothing running.
   */
  async start(options: { follow?: boolean; fence?: InspectionFence } = {}): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.fence = options.fence;
    try {
      if (options.follow === true) {
        // read before the engines are built: an act stored meanwhile is followed at the first follow()
        this.actsSeen = await this.newestAct();
        this.following = true;
      }
      this.runs.on('state', this.onState);
      this.runs.on('samples', this.onSamples);
      for (const run of await this.runs.list({ role: 'admin', organization: null }, { state: 'running' })) await this.rebuild(run);
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async newestAct(): Promise<number> {
    const newest = await this.store
      .selectFrom('run_alarms')
      .select(sql<number | string | null>`MAX(id)`.as('id'))
      .executeTakeFirst();
    return newest?.id === null || newest?.id === undefined ? 0 : Number(newest.id);
  }

  /** Stops the timer and the engines; the events they raised are stored before it returns. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.runs.off('state', this.onState);
    this.runs.off('samples', this.onSamples);
    // the passes already given their samples or ticks run first
    await this.passes;
    for (const engine of this.engines.values()) engine.removeAllListeners();
    this.engines.clear();
    this.watched.clear();
    await this.writes;
    // events raised after the last position was handed on, or after a refused write: the next holder raises them again
    this.fence = undefined;
    this.unflushed = [];
    this.reached = undefined;
    this.savedPosition = undefined;
    this.fenceLost = false;
    // another node may inspect from now on: what this one followed starts again with its next start
    this.following = false;
    this.actsSeen = 0;
    this.handledActs.clear();
    this.resync.clear();
  }

  /** Evaluates the time-based rules of every running run at `now`. */
  tick(now: number = this.clock()): void {
    for (const run of this.engines.keys()) this.pass(run, (engine) => engine.tick(now));
    this.mark();
  }

  /**
   * With a fence: the samples of the stored batches up to log index `position` have been handed on (runs.onSamples);
   * the events they lead to are stored with that position, in one fenced transaction. Call it in the same turn of the
   * event loop as the delivery (SampleFeed's `delivered`), so that no other samples come between.
   */
  delivered(position: number): void {
    this.mark(position);
  }

  /**
   * With a fence: once the passes before it have run (their events are then in `unflushed`), stores those events and
   * the position they follow from in one fenced transaction. Every pass that raises events is followed by one (a
   * feed's delivery, a tick, an act), so the events never wait for long.
   */
  private mark(position?: number): void {
    if (this.fence === undefined) return;
    this.pendingPasses++;
    this.passes = this.passes
      .then(() => this.flush(position))
      .catch((err: unknown) => this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'ALARM: run inspection failed'))
      .finally(() => this.pendingPasses--);
  }

  private flush(position: number | undefined): void {
    const fence = this.fence;
    if (fence === undefined) return;
    const events = this.unflushed;
    this.unflushed = [];
    if (this.fenceLost) return;
    if (position !== undefined) this.reached = position;
    const at = this.reached;
    if (events.length === 0 && at === this.savedPosition) return;
    this.savedPosition = at;
    this.queue(async () => {
      if (this.fenceLost) return [];
      return fence.fenced(async (trx) => {
        const rows: RunAlarmEvent[] = [];
        for (const e of events) rows.push(await this.insert(trx, e));
        if (at !== undefined) await fence.savePosition(trx, at);
        return rows;
      });
    }).then(
      // announced once committed
      (rows) => {
        for (const row of rows) this.announce(row);
      },
      (err: unknown) => {
        if (this.fenceLost) return;
        // no retry: what was not stored (these events, and any after them) is evaluated again by the next holder,
        // from the position stored last
        this.fenceLost = true;
        this.unflushed = [];
        const lost = err instanceof LabtraceError && err.code === 'E_LEASE_LOST';
        const log = { events: events.length, position: at, err: err instanceof Error ? err.message : String(err) };
        if (lost) this.logger.warn(log, 'run inspection: the lease moved to another node; this node stops inspecting, nothing more is stored');
        else this.logger.error(log, 'ALARM: run inspection: alarm events could not be stored; the inspection starts again from the stored position');
        fence.onLost(err);
      },
    );
  }

  /** the ids of the runs being inspected now */
  inspected(): string[] {
    return [...this.engines.keys()];
  }

  /**
   * On a store shared by several nodes (PostgreSQL), the one node that inspects follows what the others changed
   * (call it every second or so): the runs started and ended through them, and alarms acknowledged or cleared through
   * them (those nodes act on the stored alarm; this node builds the run's engine again from the store, as after a
   * restart, so that its open alarms carry the act). It runs as a pass of its own: the samples and ticks that come
   * meanwhile wait for it, and then go to the engines as it left them.
   */
  async follow(): Promise<void> {
    if (!this.started || !this.following) return;
    this.pendingPasses++;
    const done = this.passes.then(async () => {
      const running = await this.runs.list({ role: 'admin', organization: null }, { state: 'running' });
      const byId = new Map(running.map((r) => [r.id, r]));
      for (const id of [...this.engines.keys()]) if (!byId.has(id)) this.drop(id);
      const stale = new Set<string>();
      // event numbers come from a sequence: an act may commit after a higher number did, so the newest ACT_MARGIN
      // numbers already seen are read again (each act is handled once)
      const acts = await this.store
        .selectFrom('run_alarms')
        .select(['id', 'run'])
        .where('id', '>', this.actsSeen - ACT_MARGIN)
        .where('event', 'in', ['acknowledged', 'cleared'])
        .orderBy('id')
        .execute();
      for (const act of acts) {
        const id = Number(act.id);
        this.actsSeen = Math.max(this.actsSeen, id);
        if (this.handledActs.has(id)) continue;
        this.handledActs.add(id);
        if (this.ownActs.delete(id)) continue;
        if (this.engines.has(act.run)) stale.add(act.run);
      }
      for (const id of this.handledActs) if (id <= this.actsSeen - ACT_MARGIN) this.handledActs.delete(id);
      for (const id of this.ownActs) if (id <= this.actsSeen - ACT_MARGIN) this.ownActs.delete(id);
      for (const run of this.resync) if (this.engines.has(run)) stale.add(run);
      this.resync.clear();
      for (const run of stale) this.drop(run);
      for (const run of running) if (!this.engines.has(run.id)) await this.rebuild(run);
    });
    this.passes = done
      .catch((err: unknown) => this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'ALARM: run inspection failed'))
      .finally(() => this.pendingPasses--);
    await done;
  }

  /** The run's alarms as stored (the events raised before the call included). */
  async alarmsOf(run: string): Promise<RunAlarms> {
    await this.passes;
    await this.writes;
    return this.storedAlarms(this.store, run);
  }

  /** A person acknowledges an alarm of the run, with a reason; one audit entry. */
  async acknowledge(actor: Actor, run: string, alarmId: string, reason: string): Promise<RunAlarm> {
    return this.act(actor, run, alarmId, reason, 'acknowledged');
  }

  /** A person clears an acknowledged alarm whose condition is gone, with a reason; one audit entry. */
  async clear(actor: Actor, run: string, alarmId: string, reason: string): Promise<RunAlarm> {
    return this.act(actor, run, alarmId, reason, 'cleared');
  }

  private async act(actor: Actor, run: string, alarmId: string, reason: string, to: 'acknowledged' | 'cleared'): Promise<RunAlarm> {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required');
    // several nodes: what was done through the others first (and, in the act's transaction, what they did meanwhile)
    await this.follow();
    // the person acts on the alarm as the samples and ticks that came before made it (with a fence: and after their
    // events were given to a fenced transaction, so that the act's events are stored after them)
    this.mark();
    await this.passes;
    const engine = this.engines.get(run);
    const held = engine?.alarm(alarmId);
    let act: (trx: Transaction<Tables>) => Promise<{ before: RunAlarm; after: RunAlarm; events: PendingEvent[] }>;
    if (engine !== undefined && held !== undefined) {
      // the engine holds the alarm: it acts now (in the order of its events), and its events (an automatic
      // clearance may follow) are stored with the audit entry
      const before = snapshotOf(held);
      this.captured = [];
      let after: RunAlarm;
      let events: PendingEvent[];
      try {
        after = snapshotOf(
          to === 'acknowledged' ? engine.acknowledge(alarmId, actor.username, reason) : engine.clear(alarmId, actor.username, reason),
        );
        events = this.captured;
      } finally {
        this.captured = undefined;
      }
      act = async (trx) => {
        if (this.following) {
          // another node may have acted on the stored alarm since follow(): the run's row is held as theirs was, and
          // an act the engine did not know of refuses this one (the engine is built again from the store)
          const stored = (await this.storedAlarms(trx, run, true)).alarms.find((a) => a.id === alarmId);
          if (stored !== undefined && (stored.acknowledged?.at !== before.acknowledged?.at || stored.cleared?.at !== before.cleared?.at)) {
            this.resync.add(run);
            refuseAct(stored, alarmId, to);
          }
        }
        return { before, after, events };
      };
    } else
      // an alarm the current engine does not hold: raised before a restart, or its run has ended. Nothing
      // evaluates its condition any more, so its stored state is all there is to act on.
      act = async (trx) => {
        const before = (await this.storedAlarms(trx, run, true)).alarms.find((a) => a.id === alarmId);
        if (before === undefined)
          throw new LabtraceError('E_NOT_FOUND', `run ${run} has no alarm "${alarmId}"`, {
            reason: 'record.not-found',
            params: { type: 'alarm', id: alarmId },
          });
        refuseAct(before, alarmId, to);
        // inspected elsewhere (another node of several): its condition is present while the stored alarm is active
        if (to === 'cleared' && before.active && (await this.isRunning(trx, run)))
          throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} cannot be cleared while its condition is present`, {
            reason: 'alarm.condition-present',
            params: { id: alarmId },
          });
        const at = this.clock();
        const after: RunAlarm =
          to === 'acknowledged'
            ? { ...before, acknowledged: { by: actor.username, reason, at } }
            : { ...before, active: false, cleared: { by: actor.username, reason, at, auto: false } };
        return { before, after, events: [this.pendingOf(run, to, after)] };
      };
    const stored = await this.queue(() =>
      this.store.transaction().execute(async (trx) => {
        const { before, after, events } = await act(trx);
        const rows: RunAlarmEvent[] = [];
        for (const e of events) rows.push(await this.insert(trx, e));
        await this.audit.recordIn(trx, actor, {
          action: 'update',
          recordType: 'run-alarm',
          recordId: `${run}/${alarmId}`,
          oldValue: { state: stateOf(before) },
          newValue: { state: stateOf(after) },
          reason,
        });
        return { after, rows };
      }),
    );
    // announced once committed: the events of an act that failed were rolled back with it, nobody hears of them
    for (const e of stored.rows) this.announce(e);
    return stored.after;
  }

  private readonly onState = (run: Run, method?: Method): void => {
    // a run starts once (planned -> running): it has no alarms yet, and its engine is there before its first sample,
    // built from the method version the start read (Runs gives it with the event)
    if (run.state !== 'running') this.drop(run.id);
    else if (method !== undefined && method.id === run.method.id && method.version === run.method.version)
      this.guard(run.id, () => this.build(run, 0, [], method.definition.rules ?? []));
    else
      // not given (no such start here): asked, then built unless the run ended meanwhile
      this.rulesOf(run).then(
        (rules) => this.guard(run.id, () => this.build(run, 0, [], rules)),
        (err: unknown) => this.logger.error({ run: run.id, err: String(err) }, 'ALARM: run inspection failed'),
      );
  };

  private readonly onSamples = (run: string, samples: LiveSample[]): void => {
    this.pass(run, (engine) => engine.evaluate(samples));
  };

  /** the engine of a run that was running before (a restart, a stop and start of the inspection): its alarms continue */
  private async rebuild(run: Run): Promise<void> {
    if (this.engines.has(run.id)) return;
    const rules = await this.rulesOf(run);
    if (rules.length === 0) return;
    await this.writes;
    const raised = await this.store.selectFrom('run_alarms').select('alarm').where('run', '=', run.id).where('event', '=', 'raised').execute();
    const lastAlarmNumber = Math.max(0, ...raised.map((r) => Number(/#(\d+)$/.exec(r.alarm)?.[1] ?? 0)));
    // the alarms left open by the engine before: continued, so that their condition persisting or coming back is
    // the same episode rather than a new alarm
    const openAlarms = (await this.storedAlarms(this.store, run.id)).alarms.filter((a) => a.cleared === null);
    this.build(run, lastAlarmNumber, openAlarms, rules);
  }

  private async rulesOf(run: Run): Promise<NonNullable<MethodDefinition['rules']>> {
    return (await this.records.method(run.method.id, run.method.version))?.definition.rules ?? [];
  }

  private build(run: Run, lastAlarmNumber: number, openAlarms: RunAlarm[], rules: NonNullable<MethodDefinition['rules']>): void {
    if (this.engines.has(run.id) || rules.length === 0) return;
    const engine = new RuleEngine(rules, {
      clock: this.clock,
      instrumentStatus: (instrument) => this.statusOf(instrument),
      lastAlarmNumber,
      openAlarms,
    });
    for (const kind of EVENTS) engine.on(kind, (alarm) => this.append(run.id, kind, alarm));
    this.engines.set(run.id, engine);
    this.watched.set(run.id, [...new Set(rules.flatMap((r) => (r.kind === 'instrument-status' ? [r.instrument] : [])))]);
    const continued = engine.alarms().length;
    this.logger.info({ run: run.id, method: run.method.id, rules: rules.length, continued, open: openAlarms.length }, 'run inspection started');
  }

  private drop(run: string): void {
    const engine = this.engines.get(run);
    if (engine === undefined) return;
    engine.removeAllListeners();
    this.engines.delete(run);
    this.watched.delete(run);
    this.logger.info({ run, open: engine.alarms().length }, 'run inspection ended');
  }

  /**
   * `work` on the run's engine, with the status of the instruments its rules watch read just before (the engine asks
   * for them synchronously): at once when it watches none and no pass is waiting, otherwise after the passes before it.
   */
  private pass(run: string, work: (engine: RuleEngine) => void): void {
    const engine = this.engines.get(run);
    if (engine === undefined) return;
    const watched = this.watched.get(run) ?? [];
    if (watched.length === 0 && this.pendingPasses === 0) {
      this.statusMemo = new Map();
      this.guard(run, () => work(engine));
      return;
    }
    this.pendingPasses++;
    this.passes = this.passes
      .then(async () => {
        // the run's engine as it is when this pass runs (follow() may have built it again from the store meanwhile)
        const current = this.engines.get(run);
        if (current === undefined) return;
        const memo = new Map<string, InstrumentStatus>();
        for (const instrument of this.watched.get(run) ?? watched) memo.set(instrument, await this.lookup(instrument));
        this.statusMemo = memo;
        this.guard(run, () => work(current));
      })
      .catch((err: unknown) => this.logger.error({ run, err: err instanceof Error ? err.message : String(err) }, 'ALARM: run inspection failed'))
      .finally(() => this.pendingPasses--);
  }

  /** the calibration status when a lookup is given, otherwise only in or out of service */
  private async lookup(instrument: string): Promise<InstrumentStatus> {
    if (this.lookupStatus !== undefined) return this.lookupStatus(instrument);
    return (await this.equipment.status(instrument))?.status === 'out-of-service' ? 'out-of-service' : 'valid';
  }

  /** the status read for this pass (every instrument a rule watches is read before it) */
  private statusOf(instrument: string): InstrumentStatus {
    return this.statusMemo.get(instrument) ?? 'unknown';
  }

  /** an engine's event: taken by a person's act, or stored in its turn and then announced */
  private append(run: string, event: AlarmEventKind, alarm: Alarm | RunAlarm): void {
    const pending = this.pendingOf(run, event, snapshotOf(alarm));
    if (this.captured !== undefined) {
      this.captured.push(pending);
      return;
    }
    if (this.fence !== undefined) {
      // stored with the feed's position at the next mark (after the pass that raised it)
      if (!this.fenceLost) this.unflushed.push(pending);
      return;
    }
    this.queue(() => this.insert(this.store, pending)).then(
      (stored) => this.announce(stored),
      (err: unknown) => this.logger.error({ run, alarm: pending.alarm.id, event, err: String(err) }, 'ALARM: an alarm event could not be stored'),
    );
  }

  private pendingOf(run: string, event: AlarmEventKind, snapshot: RunAlarm): PendingEvent {
    const action = event === 'acknowledged' ? snapshot.acknowledged : event === 'cleared' ? snapshot.cleared : null;
    const at = action?.at ?? (event === 'returned' ? (snapshot.returnedAt ?? this.clock()) : event === 'raised' ? snapshot.raisedAt : this.clock());
    return { run, event, at, alarm: snapshot };
  }

  /** `work` after every write queued before it; its failure does not stop those after it */
  private queue<T>(work: () => Promise<T>): Promise<T> {
    const done = this.writes.then(work);
    this.writes = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  private async insert(db: Kysely<Tables>, e: PendingEvent): Promise<RunAlarmEvent> {
    const { alarm: snapshot, event } = e;
    const action = event === 'acknowledged' ? snapshot.acknowledged : event === 'cleared' ? snapshot.cleared : null;
    const { id } = await db
      .insertInto('run_alarms')
      .values({
        run: e.run,
        alarm: snapshot.id,
        event,
        at: e.at,
        rule_id: snapshot.ruleId,
        severity: snapshot.severity,
        instrument: snapshot.instrument,
        channel: snapshot.channel,
        detail: JSON.stringify(snapshot),
        person: action?.by ?? null,
        reason: action?.reason ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (this.following && (event === 'acknowledged' || event === 'cleared')) this.ownActs.add(Number(id));
    return { run: e.run, seq: Number(id), event, at: e.at, alarm: snapshot };
  }

  private announce(stored: RunAlarmEvent): void {
    const { run, alarm } = stored;
    if (stored.event === 'raised' || stored.event === 'escalated')
      this.logger.warn({ run, alarm: alarm.id, severity: alarm.severity, instrument: alarm.instrument, channel: alarm.channel }, alarm.message);
    this.emit('alarm', stored);
  }

  private async isRunning(db: Kysely<Tables>, run: string): Promise<boolean> {
    return (await db.selectFrom('runs').select('state').where('id', '=', run).executeTakeFirst())?.state === 'running';
  }

  /** the run's events as stored; `forUpdate`: on PostgreSQL the run's row is held, so that two acts at once take turns */
  private async storedAlarms(db: Kysely<Tables>, run: string, forUpdate = false): Promise<RunAlarms> {
    if (forUpdate && dialectOf(db as unknown as Kysely<unknown>) === 'postgres')
      await db.selectFrom('runs').select('id').where('id', '=', run).forUpdate().execute();
    const rows = await db.selectFrom('run_alarms').select(['id', 'run', 'event', 'at', 'detail']).where('run', '=', run).orderBy('id').execute();
    const events = rows.map((r) => toEvent(r as EventRow));
    // an alarm as its newest event left it; an acknowledgement or clearance, once stored, stays (with several nodes an
    // engine's event written beside another node's act does not carry that act)
    const latest = new Map<string, RunAlarm>();
    for (const e of events) {
      const before = latest.get(e.alarm.id);
      latest.set(
        e.alarm.id,
        before === undefined
          ? e.alarm
          : { ...e.alarm, acknowledged: e.alarm.acknowledged ?? before.acknowledged, cleared: e.alarm.cleared ?? before.cleared },
      );
    }
    return { run, alarms: [...latest.values()], events };
  }

  /** An engine or store failure must not stop ingest (which feeds us) nor the timer: it is logged as an alarm of its own. */
  private guard(run: string, work: () => unknown): void {
    try {
      work();
    } catch (err) {
      this.logger.error({ run, err: (err as Error).message }, 'ALARM: run inspection failed');
    }
  }
}

/** Refuses an act the stored alarm does not allow: cleared already, acknowledged twice, cleared unacknowledged. */
function refuseAct(stored: RunAlarm, alarmId: string, to: 'acknowledged' | 'cleared'): void {
  if (stored.cleared !== null)
    throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} is already cleared`, { reason: 'alarm.already-cleared', params: { id: alarmId } });
  if (to === 'acknowledged' && stored.acknowledged !== null)
    throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} is already acknowledged by ${stored.acknowledged.by}`, {
      reason: 'alarm.already-acknowledged',
      params: { id: alarmId, by: stored.acknowledged.by },
    });
  if (to === 'cleared' && stored.acknowledged === null)
    throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} must be acknowledged before it is cleared`, {
      reason: 'alarm.not-acknowledged',
      params: { id: alarmId },
    });
}

/** the alarm as it stands, detached from the engine's object */
function snapshotOf(alarm: Alarm | RunAlarm): RunAlarm {
  return {
    id: alarm.id,
    ruleId: alarm.ruleId,
    kind: alarm.kind,
    severity: alarm.severity,
    instrument: alarm.instrument,
    channel: alarm.channel,
    message: alarm.message,
    raisedAt: alarm.raisedAt,
    value: alarm.value,
    active: alarm.active,
    occurrences: alarm.occurrences,
    returnedAt: alarm.returnedAt,
    acknowledged: alarm.acknowledged === null ? null : { ...alarm.acknowledged },
    cleared: alarm.cleared === null ? null : { ...alarm.cleared },
  };
}

function toEvent(row: EventRow): RunAlarmEvent {
  return { run: row.run, seq: row.id, event: row.event, at: row.at, alarm: JSON.parse(row.detail) as RunAlarm };
}
