// The inspection rule engine: evaluates a method's rules on the live stream, sample by sample, and keeps
// the alarms they raise through their lifecycle. Pure and synchronous: time comes from the samples and from
// tick(now), driven by the caller's clock, so there is no timer to own and tests use fake time.
import { EventEmitter } from 'node:events';
import { LabtraceError, type LiveSample } from '@labtrace/protocols';
import { SEVERITY_RANK, type Rule, type RuleKind, type RuleOf, type Severity } from './rules.js';

/** An instrument's calibration status (ISO/IEC 17025 6.4.8); 'unknown' when it has no calibration record. */
export type InstrumentStatus = 'valid' | 'due-soon' | 'expired' | 'out-of-service' | 'unknown';
/** Called once per sample of an instrument that an instrument-status rule watches, so it must be cheap (a lookup). */
export type InstrumentStatusProvider = (instrument: string, ts: number) => InstrumentStatus;

export interface AlarmAction {
  readonly by: string;
  readonly reason: string;
  readonly at: number;
}

export interface Alarm {
  /** `<rule id>/<instrument>/<channel or *>#<n>`, unique in this engine */
  readonly id: string;
  readonly ruleId: string;
  readonly kind: RuleKind;
  /** the worst severity reached while the alarm has been open */
  readonly severity: Severity;
  readonly instrument: string;
  /** null for a rule about the whole instrument (instrument-status) */
  readonly channel: string | null;
  /** what raised it, for people */
  readonly message: string;
  /** time (ms) of the sample or tick that raised it */
  readonly raisedAt: number;
  /** the value that raised it (null when no sample did: a gap) */
  readonly value: LiveSample['value'];
  /** whether the condition is present now */
  readonly active: boolean;
  /** how many times the condition appeared while the alarm was open (1 when raised) */
  readonly occurrences: number;
  /** when the condition last went away, null while it is present */
  readonly returnedAt: number | null;
  readonly acknowledged: AlarmAction | null;
  /** auto: cleared by the engine because the rule has autoClear and the alarm was acknowledged and returned */
  readonly cleared: (AlarmAction & { readonly auto: boolean }) | null;
}

export interface InspectionEvents {
  /** a new episode: the condition appeared and no alarm of this rule and channel was open */
  raised: [alarm: Alarm];
  /** the condition got worse (limits: from a warning band past a limit) while the alarm was open */
  escalated: [alarm: Alarm];
  /** the condition appeared again after returning to normal, before anybody cleared the alarm */
  recurred: [alarm: Alarm];
  /** the condition went away; the alarm stays open until it is cleared */
  returned: [alarm: Alarm];
  acknowledged: [alarm: Alarm];
  cleared: [alarm: Alarm];
}

export interface RuleEngineOptions {
  /** the time of acknowledgements, clearances and of tick() without an argument (default Date.now) */
  clock?: () => number;
  /** required when a rule of kind instrument-status is configured */
  instrumentStatus?: InstrumentStatusProvider;
  /** the number of the last alarm an earlier engine of the same stream raised, so that ids stay unique across restarts (default 0) */
  lastAlarmNumber?: number;
  /**
   * the alarms an earlier engine of the same stream left open (raised, not cleared), as stored: this engine
   * continues them, so that the condition persisting or coming back is the same episode, not a new alarm
   */
  openAlarms?: readonly StoredAlarm[];
}

/** an alarm as stored outside the engine (kind and severity as plain strings) */
export type StoredAlarm = Omit<Alarm, 'kind' | 'severity'> & { readonly kind: string; readonly severity: string };

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One rule applied to one instrument and channel (or the whole instrument): at most one open alarm. */
interface Source {
  readonly rule: Rule;
  readonly instrument: string;
  readonly channel: string | null;
  alarm: Mutable<Alarm> | null;
}

interface Evaluator {
  sample(s: LiveSample): void;
}

interface TimedEvaluator {
  tick(now: number): void;
}

/** Keeps the open alarms and their lifecycle; the evaluators report conditions to it. */
class AlarmBook {
  private readonly open = new Map<string, { alarm: Mutable<Alarm>; source: Source }>();
  raisedNow: Alarm[] = [];

  constructor(
    private readonly emitter: EventEmitter<InspectionEvents>,
    private seq: number,
  ) {}

  /** The condition of `source` is present at `ts`. */
  raise(source: Source, severity: Severity, ts: number, value: LiveSample['value'], describe: () => string): void {
    const a = source.alarm;
    if (a === null) {
      const alarm: Mutable<Alarm> = {
        id: `${source.rule.id}/${source.instrument}/${source.channel ?? '*'}#${++this.seq}`,
        ruleId: source.rule.id,
        kind: source.rule.kind,
        severity,
        instrument: source.instrument,
        channel: source.channel,
        message: describe(),
        raisedAt: ts,
        value,
        active: true,
        occurrences: 1,
        returnedAt: null,
        acknowledged: null,
        cleared: null,
      };
      source.alarm = alarm;
      this.open.set(alarm.id, { alarm, source });
      const snapshot = freeze(alarm);
      this.raisedNow.push(snapshot);
      this.emitter.emit('raised', snapshot);
      return;
    }
    const worse = SEVERITY_RANK[severity] > SEVERITY_RANK[a.severity];
    if (worse) {
      // the message and value follow the escalation: "55 kN above the alarm limit 50", not the warning that raised it
      a.severity = severity;
      a.message = describe();
      a.value = value;
    }
    if (!a.active) {
      a.active = true;
      a.returnedAt = null;
      a.occurrences += 1;
      this.emitter.emit('recurred', freeze(a));
    } else if (worse) {
      this.emitter.emit('escalated', freeze(a));
    }
  }

  /** Takes over an open alarm of an earlier engine as the open alarm of `source`. */
  adopt(source: Source, alarm: Mutable<Alarm>): void {
    source.alarm = alarm;
    this.open.set(alarm.id, { alarm, source });
  }

  /** The condition of `source` is absent at `ts`. */
  normal(source: Source, ts: number): void {
    const a = source.alarm;
    if (a === null || !a.active) return;
    a.active = false;
    a.returnedAt = ts;
    this.emitter.emit('returned', freeze(a));
    if (source.rule.autoClear === true && a.acknowledged !== null) this.finish(a, source, 'system', 'returned to normal', ts, true);
  }

  acknowledge(id: string, by: string, reason: string, at: number): Alarm {
    const entry = this.find(id);
    checkAction(by, reason);
    const a = entry.alarm;
    if (a.acknowledged !== null) throw new LabtraceError('E_CONFLICT', `alarm ${id} is already acknowledged by ${a.acknowledged.by}`);
    a.acknowledged = Object.freeze({ by, reason, at });
    const snapshot = freeze(a);
    this.emitter.emit('acknowledged', snapshot);
    if (!a.active && entry.source.rule.autoClear === true) this.finish(a, entry.source, 'system', 'returned to normal', at, true);
    return snapshot;
  }

  clear(id: string, by: string, reason: string, at: number): Alarm {
    const entry = this.find(id);
    checkAction(by, reason);
    const a = entry.alarm;
    if (a.acknowledged === null) throw new LabtraceError('E_CONFLICT', `alarm ${id} must be acknowledged before it is cleared`);
    if (a.active) throw new LabtraceError('E_CONFLICT', `alarm ${id} cannot be cleared while its condition is present`);
    return this.finish(a, entry.source, by, reason, at, false);
  }

  list(): Alarm[] {
    return [...this.open.values()].map((e) => freeze(e.alarm));
  }

  get(id: string): Alarm | undefined {
    const entry = this.open.get(id);
    return entry === undefined ? undefined : freeze(entry.alarm);
  }

  private finish(a: Mutable<Alarm>, source: Source, by: string, reason: string, at: number, auto: boolean): Alarm {
    a.cleared = Object.freeze({ by, reason, at, auto });
    source.alarm = null;
    this.open.delete(a.id);
    const snapshot = freeze(a);
    this.emitter.emit('cleared', snapshot);
    return snapshot;
  }

  private find(id: string): { alarm: Mutable<Alarm>; source: Source } {
    const entry = this.open.get(id);
    if (entry === undefined) throw new LabtraceError('E_NOT_FOUND', `no open alarm ${id}`);
    return entry;
  }
}

function freeze(a: Mutable<Alarm>): Alarm {
  return Object.freeze({ ...a });
}

function checkAction(by: string, reason: string): void {
  if (by.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'who acts on an alarm is required');
  if (reason.trim() === '') throw new LabtraceError('E_BAD_REQUEST', 'a reason is required');
}

/** The sample's value when a numeric rule may judge it: a finite number of quality good or uncertain. */
function numeric(s: LiveSample): number | undefined {
  const v = s.value;
  return typeof v === 'number' && s.quality !== 'bad' && Number.isFinite(v) ? v : undefined;
}

const where = (src: Source): string => (src.channel === null ? src.instrument : `${src.instrument}/${src.channel}`);

// ---------------------------------------------------------------- evaluators, one per rule kind

class LimitsEvaluator implements Evaluator {
  private readonly low: number;
  private readonly high: number;
  private readonly warnLow: number;
  private readonly warnHigh: number;
  private readonly warnSeverity: Severity;

  constructor(
    private readonly rule: RuleOf<'limits'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
  ) {
    this.low = rule.low ?? -Infinity;
    this.high = rule.high ?? Infinity;
    this.warnLow = rule.warnLow ?? this.low;
    this.warnHigh = rule.warnHigh ?? this.high;
    this.warnSeverity = rule.warnSeverity ?? 'warning';
  }

  sample(s: LiveSample): void {
    const v = numeric(s);
    if (v === undefined) return;
    if (v > this.high || v < this.low) {
      const limit = v > this.high ? `above the high limit ${this.high}` : `below the low limit ${this.low}`;
      this.book.raise(this.src, this.rule.severity, s.ts, v, () => `${where(this.src)} ${round(v)} ${s.unit} ${limit}`);
    } else if (v > this.warnHigh || v < this.warnLow) {
      const band = v > this.warnHigh ? `above the warning level ${this.warnHigh}` : `below the warning level ${this.warnLow}`;
      this.book.raise(this.src, this.warnSeverity, s.ts, v, () => `${where(this.src)} ${round(v)} ${s.unit} ${band}`);
    } else if (this.src.alarm !== null) {
      this.book.normal(this.src, s.ts);
    }
  }
}

class RateOfChangeEvaluator implements Evaluator {
  private prevValue = 0;
  private prevTs = NaN;

  constructor(
    private readonly rule: RuleOf<'rate-of-change'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
  ) {}

  sample(s: LiveSample): void {
    const v = numeric(s);
    if (v === undefined) return;
    if (Number.isNaN(this.prevTs)) {
      this.prevValue = v;
      this.prevTs = s.ts;
      return;
    }
    const dt = s.ts - this.prevTs;
    if (dt <= 0) return; // the same time or out of order: nothing to divide by
    const rate = (Math.abs(v - this.prevValue) * 1000) / dt;
    this.prevValue = v;
    this.prevTs = s.ts;
    if (rate > this.rule.maxPerSecond) {
      this.book.raise(
        this.src,
        this.rule.severity,
        s.ts,
        v,
        () => `${where(this.src)} changed by ${round(rate)} ${s.unit}/s, more than ${this.rule.maxPerSecond}`,
      );
    } else if (this.src.alarm !== null) {
      this.book.normal(this.src, s.ts);
    }
  }
}

class StuckEvaluator implements Evaluator, TimedEvaluator {
  private anchorValue = 0;
  private anchorTs = NaN;
  private lastTs = NaN;
  private readonly epsilon: number;

  constructor(
    private readonly rule: RuleOf<'stuck'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
  ) {
    this.epsilon = rule.epsilon ?? 0;
  }

  sample(s: LiveSample): void {
    const v = numeric(s);
    if (v === undefined || s.ts < this.lastTs) return;
    // a value that moved, or the first after a silence longer than the period (that was missing data, not a stuck sensor)
    if (Number.isNaN(this.anchorTs) || Math.abs(v - this.anchorValue) > this.epsilon || s.ts - this.lastTs > this.rule.periodMs) {
      this.anchorValue = v;
      this.anchorTs = s.ts;
      this.lastTs = s.ts;
      if (this.src.alarm !== null) this.book.normal(this.src, s.ts);
      return;
    }
    this.lastTs = s.ts;
    if (s.ts - this.anchorTs >= this.rule.periodMs) this.stuck(s.ts);
  }

  /** Between samples: samples came after the value last moved, and the period is over. */
  tick(now: number): void {
    if (this.lastTs > this.anchorTs && now - this.anchorTs >= this.rule.periodMs && now - this.lastTs <= this.rule.periodMs) this.stuck(now);
  }

  private stuck(at: number): void {
    if (this.src.alarm?.active === true) return;
    const since = this.anchorTs;
    const value = this.anchorValue;
    this.book.raise(
      this.src,
      this.rule.severity,
      at,
      value,
      () => `${where(this.src)} has not moved from ${round(value)} (±${this.epsilon}) for ${at - since} ms`,
    );
  }
}

/** The reference channel's latest value, written by a ReferenceTracker and read by the drift evaluators. */
interface ReferenceCell {
  value: number;
  ts: number;
}

class ReferenceTracker implements Evaluator {
  constructor(private readonly cell: ReferenceCell) {}

  sample(s: LiveSample): void {
    const v = numeric(s);
    if (v === undefined || s.ts < this.cell.ts) return;
    this.cell.value = v;
    this.cell.ts = s.ts;
  }
}

/** Exponentially weighted mean of (value - reference) with time constant windowMs, judged once a window is covered. */
class DriftEvaluator implements Evaluator {
  private mean = 0;
  private since = NaN;
  private lastTs = NaN;

  constructor(
    private readonly rule: RuleOf<'drift'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
    private readonly ref: ReferenceCell,
  ) {}

  sample(s: LiveSample): void {
    const v = numeric(s);
    if (v === undefined) return;
    const w = this.rule.windowMs;
    if (Number.isNaN(this.ref.ts) || Math.abs(s.ts - this.ref.ts) > w) {
      this.since = NaN; // no fresh reference: start again when it comes back
      return;
    }
    const diff = v - this.ref.value;
    if (Number.isNaN(this.since)) {
      this.mean = diff;
      this.since = s.ts;
      this.lastTs = s.ts;
      return;
    }
    const dt = s.ts - this.lastTs;
    if (dt > 0) {
      this.mean += (1 - Math.exp(-dt / w)) * (diff - this.mean);
      this.lastTs = s.ts;
    }
    if (s.ts - this.since < w) return;
    if (Math.abs(this.mean) > this.rule.maxDifference) {
      const mean = this.mean;
      this.book.raise(
        this.src,
        this.rule.severity,
        s.ts,
        v,
        () =>
          `${where(this.src)} differs from ${this.rule.referenceInstrument ?? this.src.instrument}/${this.rule.reference} by ${round(mean)} ${s.unit} on average, more than ${this.rule.maxDifference}`,
      );
    } else if (this.src.alarm !== null) {
      this.book.normal(this.src, s.ts);
    }
  }
}

/** Data: a sample with a value and a quality other than bad. A gap is raised by tick() while it lasts, or when a late sample shows one. */
class MissingDataEvaluator implements Evaluator, TimedEvaluator {
  private lastTs = NaN;

  constructor(
    private readonly rule: RuleOf<'missing-data'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
  ) {}

  sample(s: LiveSample): void {
    if (s.value === null || s.quality === 'bad') return;
    const last = this.lastTs;
    if (s.ts - last > this.rule.maxGapMs) this.gap(s.ts, last);
    if (!(s.ts <= last)) this.lastTs = s.ts;
    if (this.src.alarm !== null) this.book.normal(this.src, s.ts);
  }

  tick(now: number): void {
    // a channel named in the configuration and never heard from: the gap starts at the first tick
    if (Number.isNaN(this.lastTs)) this.lastTs = now;
    else if (now - this.lastTs > this.rule.maxGapMs && this.src.alarm?.active !== true) this.gap(now, this.lastTs);
  }

  private gap(at: number, last: number): void {
    this.book.raise(
      this.src,
      this.rule.severity,
      at,
      null,
      () => `${where(this.src)} sent no data for ${at - last} ms (allowed ${this.rule.maxGapMs})`,
    );
  }
}

class QualityEvaluator implements Evaluator {
  private readonly acceptUncertain: boolean;

  constructor(
    private readonly rule: RuleOf<'quality'>,
    private readonly src: Source,
    private readonly book: AlarmBook,
  ) {
    this.acceptUncertain = rule.minimum === 'uncertain';
  }

  sample(s: LiveSample): void {
    const q = s.quality;
    if (q === 'bad' || (q === 'uncertain' && !this.acceptUncertain)) {
      this.book.raise(this.src, this.rule.severity, s.ts, s.value, () => `${where(this.src)} sample quality ${q} (minimum ${this.rule.minimum})`);
    } else if (this.src.alarm !== null) {
      this.book.normal(this.src, s.ts);
    }
  }
}

class InstrumentStatusEvaluator implements Evaluator, TimedEvaluator {
  constructor(
    private readonly rule: RuleOf<'instrument-status'>,
    readonly src: Source,
    private readonly book: AlarmBook,
    private readonly status: InstrumentStatusProvider,
  ) {}

  get instrument(): string {
    return this.rule.instrument;
  }

  sample(s: LiveSample): void {
    const status = this.status(s.instrument, s.ts);
    if (failing(status)) {
      const what = status === 'unknown' ? 'has no calibration record' : status === 'expired' ? 'is out of calibration' : 'is out of service';
      this.book.raise(this.src, this.rule.severity, s.ts, s.value, () => `${s.instrument} ${what} and produced data`);
    } else if (this.src.alarm !== null) {
      this.book.normal(this.src, s.ts);
    }
  }

  /**
   * Between samples: an instrument whose status has become good again (calibrated, back in service) ends the
   * condition without waiting for its next sample, so that a silent instrument's alarm can be cleared.
   */
  tick(now: number): void {
    if (this.src.alarm?.active !== true) return;
    if (!failing(this.status(this.rule.instrument, now))) this.book.normal(this.src, now);
  }
}

const failing = (status: InstrumentStatus): boolean => status === 'expired' || status === 'out-of-service' || status === 'unknown';

const round = (x: number): number => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------- the engine

const matches = (rule: Rule, instrument: string): boolean => rule.instrument === undefined || rule.instrument === instrument;

export class RuleEngine extends EventEmitter<InspectionEvents> {
  readonly rules: readonly Rule[];
  private readonly clock: () => number;
  private readonly status: InstrumentStatusProvider | undefined;
  private readonly book: AlarmBook;
  /** rules that name a channel, by channel */
  private readonly byChannel = new Map<string, Rule[]>();
  /** quality rules without a channel */
  private readonly anyChannel: RuleOf<'quality'>[] = [];
  /** drift rules by their reference channel */
  private readonly byReference = new Map<string, RuleOf<'drift'>[]>();
  private readonly statusEvaluators = new Map<string, InstrumentStatusEvaluator>();
  private readonly referenceCells = new Map<string, ReferenceCell>();
  /** instrument -> channel -> the evaluators a sample of that channel visits, built on its first sample */
  private readonly bindings = new Map<string, Map<string, Evaluator[]>>();
  private readonly timed: TimedEvaluator[] = [];
  /** every source by rule, instrument and channel, to find the one an earlier engine's open alarm belongs to */
  private readonly sources = new Map<string, Source>();

  /** `rules` are parsed ones (parseRules); the engine trusts them. */
  constructor(rules: readonly Rule[], options: RuleEngineOptions = {}) {
    super();
    this.rules = rules;
    this.clock = options.clock ?? Date.now;
    this.status = options.instrumentStatus;
    this.book = new AlarmBook(this, options.lastAlarmNumber ?? 0);
    for (const rule of rules) {
      if (rule.kind === 'instrument-status') {
        if (this.status === undefined) throw new LabtraceError('E_CONFIG', `rule ${rule.id}: instrument-status needs an instrument status provider`);
        const src: Source = { rule, instrument: rule.instrument, channel: null, alarm: null };
        const evaluator = new InstrumentStatusEvaluator(rule, src, this.book, this.status);
        this.statusEvaluators.set(rule.id, evaluator);
        this.sources.set(sourceKey(rule.id, rule.instrument, null), src);
        this.timed.push(evaluator);
      } else if (rule.kind === 'quality' && rule.channel === undefined) {
        this.anyChannel.push(rule);
      } else {
        const channel = rule.channel;
        if (channel !== undefined) push(this.byChannel, channel, rule);
        if (rule.kind === 'drift') push(this.byReference, rule.reference, rule);
      }
    }
    // a channel the configuration names with its instrument is watched for missing data before its first sample
    for (const rule of rules) if (rule.kind === 'missing-data' && rule.instrument !== undefined) this.evaluatorsOf(rule.instrument, rule.channel);
    for (const stored of options.openAlarms ?? []) this.adopt(stored);
  }

  /**
   * Continues an earlier engine's open alarm, when its rule (same id and kind) still applies to its instrument
   * and channel; otherwise it stays with its owner's stored state. Returns whether it was taken over.
   */
  private adopt(stored: StoredAlarm): boolean {
    if (stored.cleared !== null || !isSeverity(stored.severity)) return false;
    const rule = this.rules.find((r) => r.id === stored.ruleId);
    if (rule === undefined || rule.kind !== stored.kind || !matches(rule, stored.instrument)) return false;
    if (stored.channel !== null) this.evaluatorsOf(stored.instrument, stored.channel);
    const source = this.sources.get(sourceKey(rule.id, stored.instrument, stored.channel));
    if (source === undefined || source.alarm !== null) return false;
    this.book.adopt(source, {
      ...stored,
      kind: rule.kind,
      severity: stored.severity,
      acknowledged: stored.acknowledged === null ? null : Object.freeze({ ...stored.acknowledged }),
      cleared: null,
    });
    return true;
  }

  /** Evaluates samples in order; returns the alarms this call raised (new episodes). */
  evaluate(samples: readonly LiveSample[]): Alarm[] {
    const book = this.book;
    book.raisedNow = [];
    let lastInstrument = '';
    let channels: Map<string, Evaluator[]> | undefined;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      if (s === undefined) continue;
      if (channels === undefined || s.instrument !== lastInstrument) {
        channels = this.bindings.get(s.instrument);
        lastInstrument = s.instrument;
      }
      const evaluators = channels?.get(s.channel) ?? this.evaluatorsOf(s.instrument, s.channel);
      for (let j = 0; j < evaluators.length; j++) evaluators[j]?.sample(s);
      if (channels === undefined) channels = this.bindings.get(s.instrument);
    }
    return book.raisedNow;
  }

  /** Evaluates the time-based rules (missing data, stuck) at `now`; returns the alarms it raised. */
  tick(now: number = this.clock()): Alarm[] {
    this.book.raisedNow = [];
    for (const t of this.timed) t.tick(now);
    return this.book.raisedNow;
  }

  /** The open alarms (raised and not yet cleared). */
  alarms(): Alarm[] {
    return this.book.list();
  }

  alarm(id: string): Alarm | undefined {
    return this.book.get(id);
  }

  acknowledge(id: string, by: string, reason: string): Alarm {
    return this.book.acknowledge(id, by, reason, this.clock());
  }

  /** Ends the episode; refused before acknowledgement and while the condition is present. */
  clear(id: string, by: string, reason: string): Alarm {
    return this.book.clear(id, by, reason, this.clock());
  }

  private evaluatorsOf(instrument: string, channel: string): Evaluator[] {
    let channels = this.bindings.get(instrument);
    if (channels === undefined) {
      channels = new Map();
      this.bindings.set(instrument, channels);
    }
    const existing = channels.get(channel);
    if (existing !== undefined) return existing;
    const list: Evaluator[] = [];
    const book = this.book;
    const source = (rule: Rule): Source => {
      const src: Source = { rule, instrument, channel, alarm: null };
      this.sources.set(sourceKey(rule.id, instrument, channel), src);
      return src;
    };
    for (const rule of this.byReference.get(channel) ?? []) {
      const watched = rule.referenceInstrument === undefined ? matches(rule, instrument) : rule.referenceInstrument === instrument;
      if (watched) list.push(new ReferenceTracker(this.cell(rule, instrument)));
    }
    for (const rule of this.byChannel.get(channel) ?? []) {
      if (!matches(rule, instrument)) continue;
      switch (rule.kind) {
        case 'limits':
          list.push(new LimitsEvaluator(rule, source(rule), book));
          break;
        case 'rate-of-change':
          list.push(new RateOfChangeEvaluator(rule, source(rule), book));
          break;
        case 'stuck': {
          const e = new StuckEvaluator(rule, source(rule), book);
          list.push(e);
          this.timed.push(e);
          break;
        }
        case 'drift':
          list.push(new DriftEvaluator(rule, source(rule), book, this.cell(rule, rule.referenceInstrument ?? instrument)));
          break;
        case 'missing-data': {
          const e = new MissingDataEvaluator(rule, source(rule), book);
          list.push(e);
          this.timed.push(e);
          break;
        }
        case 'quality':
          list.push(new QualityEvaluator(rule, source(rule), book));
          break;
        case 'instrument-status':
          break; // indexed by instrument below
      }
    }
    for (const rule of this.anyChannel) if (matches(rule, instrument)) list.push(new QualityEvaluator(rule, source(rule), book));
    for (const e of this.statusEvaluators.values()) if (e.instrument === instrument) list.push(e);
    channels.set(channel, list);
    return list;
  }

  private cell(rule: RuleOf<'drift'>, refInstrument: string): ReferenceCell {
    const key = `${rule.id}\u0000${refInstrument}`;
    let cell = this.referenceCells.get(key);
    if (cell === undefined) {
      cell = { value: 0, ts: NaN };
      this.referenceCells.set(key, cell);
    }
    return cell;
  }
}

const sourceKey = (ruleId: string, instrument: string, channel: string | null): string => `${ruleId}\u0000${instrument}\u0000${channel ?? ''}`;

const isSeverity = (s: string): s is Severity => Object.hasOwn(SEVERITY_RANK, s);

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
