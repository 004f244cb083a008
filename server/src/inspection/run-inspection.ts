// The inspection of running test runs: one rule engine per running run, built from its method's rules,
// fed the run's stored samples and ticked by one server-owned timer. Every alarm event is appended to
// `run_alarms` (so a restart keeps the history) and announced for the run's live room; acknowledging
// and clearing are a person's acts, each with a reason and an audit-trail entry.
import { EventEmitter } from 'node:events';
import { LabtraceError, type AlarmEventKind, type LiveSample, type RunAlarm, type RunAlarmEvent } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { EquipmentStatus } from '../lab/equipment.js';
import type { LabRecords } from '../lab/lab-records.js';
import type { Run, Runs } from '../lab/runs.js';
import type { Logger } from '../log.js';
import type { LabDatabase } from '../store/database.js';
import { RuleEngine, type Alarm, type InstrumentStatus } from './engine.js';

const EVENTS: readonly AlarmEventKind[] = ['raised', 'escalated', 'recurred', 'returned', 'acknowledged', 'cleared'];

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
  instrumentStatus?: (instrument: string) => InstrumentStatus;
}

interface EventRow {
  id: number;
  run: string;
  event: AlarmEventKind;
  at: number;
  detail: string;
}

const stateOf = (a: RunAlarm): string => (a.cleared !== null ? 'cleared' : a.acknowledged !== null ? 'acknowledged' : 'open');

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
  /** events appended inside a person's act: announced only once its transaction has committed */
  private pending: RunAlarmEvent[] | undefined;

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly runs: Runs,
    private readonly records: LabRecords,
    private readonly equipment: EquipmentStatus,
    private readonly logger: Logger,
    options: RunInspectionOptions = {},
  ) {
    super();
    this.clock = options.clock ?? Date.now;
    this.tickMs = options.tickMs ?? 1000;
    this.lookupStatus = options.instrumentStatus;
  }

  private readonly lookupStatus: ((instrument: string) => InstrumentStatus) | undefined;

  /** Builds the engines of the runs that are running (after a restart too) and starts the one tick timer; call after runs.open(). */
  async start(): Promise<void> {
    this.runs.on('state', this.onState);
    this.runs.on('samples', this.onSamples);
    for (const run of await this.runs.list({ role: 'admin', organization: null }, { state: 'running' })) this.build(run);
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.runs.off('state', this.onState);
    this.runs.off('samples', this.onSamples);
    for (const engine of this.engines.values()) engine.removeAllListeners();
    this.engines.clear();
    return Promise.resolve();
  }

  /** Evaluates the time-based rules of every running run at `now`. */
  tick(now: number = this.clock()): void {
    for (const [run, engine] of this.engines) {
      this.statusMemo = new Map();
      this.guard(run, () => engine.tick(now));
    }
  }

  /** the ids of the runs being inspected now */
  inspected(): string[] {
    return [...this.engines.keys()];
  }

  alarmsOf(run: string): RunAlarms {
    const rows = this.database.sqlite.prepare('SELECT id, run, event, at, detail FROM run_alarms WHERE run = ? ORDER BY id').all(run) as EventRow[];
    const events = rows.map(toEvent);
    const latest = new Map<string, RunAlarm>();
    for (const e of events) latest.set(e.alarm.id, e.alarm);
    return { run, alarms: [...latest.values()], events };
  }

  /** A person acknowledges an alarm of the run, with a reason; one audit entry. */
  acknowledge(actor: Actor, run: string, alarmId: string, reason: string): RunAlarm {
    return this.act(actor, run, alarmId, reason, 'acknowledged');
  }

  /** A person clears an acknowledged alarm whose condition is gone, with a reason; one audit entry. */
  clear(actor: Actor, run: string, alarmId: string, reason: string): RunAlarm {
    return this.act(actor, run, alarmId, reason, 'cleared');
  }

  private act(actor: Actor, run: string, alarmId: string, reason: string, to: 'acknowledged' | 'cleared'): RunAlarm {
    if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'body: reason: required');
    this.pending = [];
    let committed: RunAlarmEvent[];
    let result: RunAlarm;
    try {
      result = this.actInTransaction(actor, run, alarmId, reason, to);
      committed = this.pending;
    } finally {
      // the events of an act that threw were rolled back with it: nobody hears of them
      this.pending = undefined;
    }
    for (const e of committed) this.emit('alarm', e);
    return result;
  }

  private actInTransaction(actor: Actor, run: string, alarmId: string, reason: string, to: 'acknowledged' | 'cleared'): RunAlarm {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const before = this.alarmsOf(run).alarms.find((a) => a.id === alarmId);
      if (before === undefined)
        throw new LabtraceError('E_NOT_FOUND', `run ${run} has no alarm "${alarmId}"`, {
          reason: 'record.not-found',
          params: { type: 'alarm', id: alarmId },
        });
      const engine = this.engines.get(run);
      let after: RunAlarm;
      if (engine?.alarm(alarmId) !== undefined) {
        // the engine's listener appends the event (and an automatic clearance that follows) in this transaction
        after = to === 'acknowledged' ? engine.acknowledge(alarmId, actor.username, reason) : engine.clear(alarmId, actor.username, reason);
      } else {
        // an alarm the current engine does not hold: raised before a restart, or its run has ended. Nothing
        // evaluates its condition any more, so its stored state is all there is to act on.
        if (before.cleared !== null)
          throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} is already cleared`, { reason: 'alarm.already-cleared', params: { id: alarmId } });
        const at = this.clock();
        if (to === 'acknowledged') {
          if (before.acknowledged !== null)
            throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} is already acknowledged by ${before.acknowledged.by}`, {
              reason: 'alarm.already-acknowledged',
              params: { id: alarmId, by: before.acknowledged.by },
            });
          after = { ...before, acknowledged: { by: actor.username, reason, at } };
        } else {
          if (before.acknowledged === null)
            throw new LabtraceError('E_CONFLICT', `alarm ${alarmId} must be acknowledged before it is cleared`, {
              reason: 'alarm.not-acknowledged',
              params: { id: alarmId },
            });
          after = { ...before, active: false, cleared: { by: actor.username, reason, at, auto: false } };
        }
        this.append(run, to, after);
      }
      this.audit.record(actor, {
        action: 'update',
        recordType: 'run-alarm',
        recordId: `${run}/${alarmId}`,
        oldValue: { state: stateOf(before) },
        newValue: { state: stateOf(after) },
        reason,
      });
      return after;
    })();
  }

  private readonly onState = (run: Run): void => {
    if (run.state === 'running') this.build(run);
    else this.drop(run.id);
  };

  private readonly onSamples = (run: string, samples: LiveSample[]): void => {
    const engine = this.engines.get(run);
    if (engine === undefined) return;
    this.statusMemo = new Map();
    this.guard(run, () => engine.evaluate(samples));
  };

  private build(run: Run): void {
    if (this.engines.has(run.id)) return;
    const method = this.records.method(run.method.id, run.method.version);
    const rules = method?.definition.rules ?? [];
    if (rules.length === 0) return;
    const last = this.database.sqlite.prepare("SELECT alarm FROM run_alarms WHERE run = ? AND event = 'raised'").all(run.id) as { alarm: string }[];
    const lastAlarmNumber = Math.max(0, ...last.map((r) => Number(/#(\d+)$/.exec(r.alarm)?.[1] ?? 0)));
    // the alarms left open by the engine before (a restart): continued, so that their condition persisting or
    // coming back is the same episode rather than a new alarm
    const openAlarms = this.alarmsOf(run.id).alarms.filter((a) => a.cleared === null);
    const engine = new RuleEngine(rules, {
      clock: this.clock,
      instrumentStatus: (instrument) => this.statusOf(instrument),
      lastAlarmNumber,
      openAlarms,
    });
    for (const kind of EVENTS) engine.on(kind, (alarm) => this.append(run.id, kind, alarm));
    this.engines.set(run.id, engine);
    const continued = engine.alarms().length;
    this.logger.info({ run: run.id, method: run.method.id, rules: rules.length, continued, open: openAlarms.length }, 'run inspection started');
  }

  private drop(run: string): void {
    const engine = this.engines.get(run);
    if (engine === undefined) return;
    engine.removeAllListeners();
    this.engines.delete(run);
    this.logger.info({ run, open: engine.alarms().length }, 'run inspection ended');
  }

  /** the calibration status when a lookup is given, otherwise only in or out of service */
  private statusOf(instrument: string): InstrumentStatus {
    let status = this.statusMemo.get(instrument);
    if (status === undefined) {
      status = this.lookupStatus?.(instrument) ?? (this.equipment.status(instrument)?.status === 'out-of-service' ? 'out-of-service' : 'valid');
      this.statusMemo.set(instrument, status);
    }
    return status;
  }

  private append(run: string, event: AlarmEventKind, alarm: Alarm | RunAlarm): void {
    const snapshot: RunAlarm = {
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
    const action = event === 'acknowledged' ? snapshot.acknowledged : event === 'cleared' ? snapshot.cleared : null;
    const at = action?.at ?? (event === 'returned' ? (snapshot.returnedAt ?? this.clock()) : event === 'raised' ? snapshot.raisedAt : this.clock());
    const { lastInsertRowid } = this.database.sqlite
      .prepare(
        `INSERT INTO run_alarms (run, alarm, event, at, rule_id, severity, instrument, channel, detail, person, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        run,
        snapshot.id,
        event,
        at,
        snapshot.ruleId,
        snapshot.severity,
        snapshot.instrument,
        snapshot.channel,
        JSON.stringify(snapshot),
        action?.by ?? null,
        action?.reason ?? null,
      );
    const stored: RunAlarmEvent = { run, seq: Number(lastInsertRowid), event, at, alarm: snapshot };
    if (event === 'raised' || event === 'escalated')
      this.logger.warn(
        { run, alarm: snapshot.id, severity: snapshot.severity, instrument: snapshot.instrument, channel: snapshot.channel },
        snapshot.message,
      );
    if (this.pending !== undefined) this.pending.push(stored);
    else this.emit('alarm', stored);
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

function toEvent(row: EventRow): RunAlarmEvent {
  return { run: row.run, seq: row.id, event: row.event, at: row.at, alarm: JSON.parse(row.detail) as RunAlarm };
}
