// The rule engine on synthetic streams: each rule kind fires on the fault it is for, once per episode,
// and stays quiet on a clean stream; alarms are acknowledged and cleared with a reason. Fake time only.
import { describe, expect, test } from '@jest/globals';
import { isLabtraceError } from '@labtrace/protocols';
import { RuleEngine, type InstrumentStatus } from '../../src/inspection/engine.js';
import { parseRules, type Rule } from '../../src/inspection/rules.js';
import { T0, clean, feed, record, stream, uniform, type ChannelSpec } from './stream.js';

const UTM = 'utm-1';
const CHAMBER = 'cc-1';

/** Every rule kind at once, on a tensile machine (force, extension) and a climate chamber (temperature and its reference probe). */
const ALL_RULES: Rule[] = parseRules([
  { id: 'force-limits', kind: 'limits', severity: 'alarm', instrument: UTM, channel: 'force', low: -1, high: 50, warnHigh: 45 },
  { id: 'force-rate', kind: 'rate-of-change', severity: 'warning', instrument: UTM, channel: 'force', maxPerSecond: 10 },
  { id: 'force-stuck', kind: 'stuck', severity: 'alarm', instrument: UTM, channel: 'force', periodMs: 5000, epsilon: 0.001 },
  { id: 'force-gap', kind: 'missing-data', severity: 'alarm', instrument: UTM, channel: 'force', maxGapMs: 2000 },
  {
    id: 'temp-drift',
    kind: 'drift',
    severity: 'warning',
    instrument: CHAMBER,
    channel: 'temperature',
    reference: 'temperature-ref',
    maxDifference: 0.5,
    windowMs: 10_000,
  },
  { id: 'quality', kind: 'quality', severity: 'warning', minimum: 'good' },
  { id: 'utm-calibration', kind: 'instrument-status', severity: 'critical', instrument: UTM },
]);

interface Setup {
  force?: Partial<ChannelSpec>;
  temperature?: Partial<ChannelSpec>;
  reference?: Partial<ChannelSpec>;
  durationMs?: number;
  status?: InstrumentStatus;
}

function scenario(setup: Setup = {}, rules: Rule[] = ALL_RULES) {
  const clock = { now: T0 };
  const engine = new RuleEngine(rules, { clock: () => clock.now, instrumentStatus: () => setup.status ?? 'valid' });
  const rec = record(engine);
  const specs: ChannelSpec[] = [
    { instrument: UTM, channel: 'force', value: clean(1), ...setup.force },
    { instrument: CHAMBER, channel: 'temperature', unit: '°C', value: clean(2, 23, 2, 0.05), ...setup.temperature },
    { instrument: CHAMBER, channel: 'temperature-ref', unit: '°C', value: clean(3, 23, 2, 0.05), ...setup.reference },
  ];
  const samples = stream(specs, setup.durationMs ?? 60_000);
  const returned = feed(engine, samples, 1000, clock);
  return { engine, rec, returned, clock };
}

const ruleIds = (alarms: { ruleId: string }[]): string[] => [...new Set(alarms.map((a) => a.ruleId))].sort();

describe('a clean stream', () => {
  test('raises nothing with every rule kind active', () => {
    const { rec, returned, engine } = scenario();
    expect(rec.events).toEqual([]);
    expect(returned).toEqual([]);
    expect(engine.alarms()).toEqual([]);
  });
});

describe('each rule kind fires on its fault, once per episode', () => {
  test('limits: a value past the warning level, then past the limit, is one alarm that escalates', () => {
    const { rec } = scenario({ force: { value: (t) => (t >= 20_000 && t < 30_000 ? 40 + (t - 20_000) / 1000 : 20) } });
    // 40 -> 49.9 kN in 10 s: warning above 45, never past 50; the rate (1 kN/s) stays allowed; the jumps at 20 s and 30 s are rate alarms
    const limits = rec.events.filter((e) => e.alarm.ruleId === 'force-limits');
    expect(limits.map((e) => e.name)).toEqual(['raised', 'returned']);
    expect(limits[0]?.alarm.severity).toBe('warning');
    expect(limits[0]?.alarm.value).toBeGreaterThan(45);

    const { rec: rec2 } = scenario({ force: { value: (t) => (t >= 20_000 && t < 30_000 ? 44 + (t - 20_000) / 1000 : 20) } });
    const escalating = rec2.events.filter((e) => e.alarm.ruleId === 'force-limits');
    expect(escalating.map((e) => [e.name, e.alarm.severity])).toEqual([
      ['raised', 'warning'],
      ['escalated', 'alarm'],
      ['returned', 'alarm'],
    ]);
    expect(escalating[0]?.alarm.message).toMatch(/utm-1\/force 45\.\d+ kN above the warning level 45/);
  });

  test('stuck: a frozen sensor raises after the period, and returns when the value moves again', () => {
    const { rec, engine } = scenario({ force: { value: (t) => (t >= 10_000 && t < 30_000 ? 21.5 : 20 + t / 10_000) } });
    const stuck = rec.events.filter((e) => e.alarm.ruleId === 'force-stuck');
    expect(stuck.map((e) => e.name)).toEqual(['raised', 'returned']);
    expect(stuck[0]?.alarm.raisedAt).toBe(T0 + 15_000);
    expect(stuck[0]?.alarm.message).toContain('has not moved from 21.5');
    expect(stuck[1]?.alarm.returnedAt).toBe(T0 + 30_000);
    expect(ruleIds(engine.alarms())).toEqual(['force-rate', 'force-stuck']); // the step out of the frozen value (1.5 kN in 0.1 s) is too fast as well
  });

  test('stuck: a slow channel is caught by tick() between its samples', () => {
    const rules = parseRules([{ id: 'stuck', kind: 'stuck', severity: 'alarm', channel: 'force', periodMs: 5000 }]);
    const engine = new RuleEngine(rules);
    const samples = stream([{ instrument: UTM, channel: 'force', value: () => 7 }], 8000, 4000); // samples at 0 and 4 s
    expect(engine.evaluate(samples)).toEqual([]);
    expect(engine.tick(T0 + 4999)).toEqual([]);
    const raised = engine.tick(T0 + 5000);
    expect(raised.map((a) => [a.ruleId, a.raisedAt])).toEqual([['stuck', T0 + 5000]]);
    expect(engine.tick(T0 + 6000)).toEqual([]); // once per episode
  });

  test('drift: a channel walking away from its reference', () => {
    const base = clean(4, 23, 2, 0.05);
    const { rec } = scenario({ temperature: { value: (t) => base(t) + (t > 20_000 ? (t - 20_000) / 10_000 : 0) }, reference: { value: base } });
    const drift = rec.events.filter((e) => e.alarm.ruleId === 'temp-drift');
    expect(drift.map((e) => e.name)).toEqual(['raised']);
    const at = (drift[0]?.alarm.raisedAt ?? 0) - T0;
    // 0.1 °C/s from 20 s: the difference passes 0.5 at 25 s; the mean over a 10 s time constant lags about 10 s behind
    expect(at).toBeGreaterThan(25_000);
    expect(at).toBeLessThan(40_000);
    expect(drift[0]?.alarm.message).toMatch(/cc-1\/temperature differs from cc-1\/temperature-ref by 0\.5\d* °C on average/);
  });

  test('drift: no judgement without a fresh reference', () => {
    const { rec } = scenario({
      // the reference stops at 15 s and is stale from 25 s; the channel jumps at 26 s
      temperature: { value: (t) => 23 + (t > 26_000 ? 5 : 0) },
      reference: { value: () => 23, silent: (t) => t > 15_000 },
    });
    expect(rec.events.filter((e) => e.alarm.ruleId === 'temp-drift')).toEqual([]);
    expect(ruleIds(rec.raised)).toEqual([]); // the reference has no missing-data rule here
  });

  test('drift: against a reference on another instrument, each instrument its own alarm', () => {
    const rules = parseRules([
      {
        id: 'vs-ref',
        kind: 'drift',
        severity: 'warning',
        channel: 'temperature',
        reference: 'temperature',
        referenceInstrument: 'ref-probe',
        maxDifference: 0.5,
        windowMs: 5000,
      },
    ]);
    const engine = new RuleEngine(rules);
    const raised = engine.evaluate(
      stream(
        [
          { instrument: 'ref-probe', channel: 'temperature', unit: '°C', value: () => 23 },
          { instrument: 'cc-1', channel: 'temperature', unit: '°C', value: () => 23.1 },
          { instrument: 'cc-2', channel: 'temperature', unit: '°C', value: (t) => (t < 10_000 ? 23 : 25) },
        ],
        30_000,
      ),
    );
    // the reference's own channel is compared with itself: never a drift
    expect(raised.map((a) => [a.instrument, a.message])).toEqual([
      ['cc-2', expect.stringMatching(/^cc-2\/temperature differs from ref-probe\/temperature by 0\.5\d* °C on average/)],
    ]);
  });

  test('missing data: a gap is raised by tick() while it lasts, once, and returns when data comes back', () => {
    const { rec } = scenario({ force: { silent: (t) => t >= 20_000 && t < 30_000 } });
    const gap = rec.events.filter((e) => e.alarm.ruleId === 'force-gap');
    expect(gap.map((e) => e.name)).toEqual(['raised', 'returned']);
    // the last sample at 19.9 s; allowed 2 s; the first tick after 21.9 s is at 22 s
    expect(gap[0]?.alarm.raisedAt).toBe(T0 + 22_000);
    expect(gap[0]?.alarm.value).toBeNull();
    expect(gap[1]?.alarm.returnedAt).toBe(T0 + 30_000);
  });

  test('missing data: a gap seen only in the timestamps (a late batch) is raised and returned at once', () => {
    const rules = parseRules([{ id: 'gap', kind: 'missing-data', severity: 'alarm', channel: 'force', maxGapMs: 2000 }]);
    const engine = new RuleEngine(rules);
    const rec = record(engine);
    const samples = stream([{ instrument: UTM, channel: 'force', value: clean(5), silent: (t) => t >= 3000 && t < 9000 }], 12_000);
    engine.evaluate(samples);
    expect(rec.events.map((e) => e.name)).toEqual(['raised', 'returned']);
    expect(rec.events[0]?.alarm.message).toBe('utm-1/force sent no data for 6100 ms (allowed 2000)');
  });

  test('missing data: an instrument named in the rules that never sends anything', () => {
    const { rec } = scenario({ force: { silent: () => true }, durationMs: 10_000 });
    const gap = rec.raised.filter((a) => a.ruleId === 'force-gap');
    expect(gap.map((a) => a.raisedAt - T0)).toEqual([4000]); // the first tick (1 s) starts the clock
  });

  test('noise: spikes raise one rate-of-change alarm that recurs, not one per spike', () => {
    const rand = uniform(9);
    const base = clean(6);
    const { rec, engine } = scenario({ force: { value: (t) => base(t) + (t >= 20_000 && t < 30_000 ? 8 * rand() : 0) } });
    const rate = rec.events.filter((e) => e.alarm.ruleId === 'force-rate');
    expect(rate.filter((e) => e.name === 'raised')).toHaveLength(1);
    expect(rate.filter((e) => e.name === 'recurred').length).toBeGreaterThan(3);
    const open = engine.alarms().find((a) => a.ruleId === 'force-rate');
    expect(open?.active).toBe(false);
    expect(open?.occurrences).toBeGreaterThan(3);
    // back to normal at the first slow step after the noise stops at 30 s
    expect(open?.returnedAt).toBeGreaterThanOrEqual(T0 + 29_000);
    expect(open?.returnedAt).toBeLessThanOrEqual(T0 + 30_100);
    expect(rec.raised.filter((a) => a.ruleId !== 'force-rate')).toEqual([]);
  });

  test('disconnect: bad-quality samples without a value, then nothing: quality and missing data', () => {
    const force = clean(7);
    const { rec } = scenario({
      force: {
        value: (t) => (t >= 20_000 ? null : force(t)),
        quality: (t) => (t >= 20_000 ? 'bad' : 'good'),
        silent: (t) => t >= 21_000,
      },
    });
    expect(rec.raised.map((a) => [a.ruleId, a.raisedAt - T0, a.severity])).toEqual([
      ['quality', 20_000, 'warning'],
      ['force-gap', 22_000, 'alarm'],
    ]);
    expect(rec.raised[0]?.channel).toBe('force');
    expect(rec.raised[0]?.message).toBe('utm-1/force sample quality bad (minimum good)');
  });

  test('quality: uncertain is accepted with minimum uncertain, and raises with minimum good', () => {
    const quality: ChannelSpec['quality'] = (t) => (t >= 5000 && t < 6000 ? 'uncertain' : 'good');
    const strict = scenario({ force: { quality }, durationMs: 10_000 });
    expect(strict.rec.raised.map((a) => a.ruleId)).toEqual(['quality']);
    const lenient = parseRules([{ id: 'q', kind: 'quality', severity: 'info', channel: 'force', minimum: 'uncertain' }]);
    expect(scenario({ force: { quality }, durationMs: 10_000 }, lenient).rec.events).toEqual([]);
  });

  test('instrument status: out of calibration or out of service raises one alarm for the instrument', () => {
    for (const status of ['expired', 'out-of-service', 'unknown'] as const) {
      const { rec } = scenario({ status, durationMs: 5000 });
      expect(rec.raised.map((a) => [a.ruleId, a.instrument, a.channel, a.severity])).toEqual([['utm-calibration', UTM, null, 'critical']]);
    }
    expect(scenario({ status: 'due-soon', durationMs: 5000 }).rec.events).toEqual([]);
  });

  test('instrument status: asks the provider with the sample time, and returns when the status is valid again', () => {
    const rules = parseRules([{ id: 'cal', kind: 'instrument-status', severity: 'critical', instrument: UTM }]);
    const asked: number[] = [];
    const engine = new RuleEngine(rules, {
      instrumentStatus: (instrument, ts) => {
        asked.push(ts);
        return instrument === UTM && ts < T0 + 3000 ? 'expired' : 'valid';
      },
    });
    const rec = record(engine);
    engine.evaluate(
      stream(
        [
          { instrument: UTM, channel: 'force', value: () => 1 },
          { instrument: 'other', channel: 'force', value: () => 1 },
        ],
        5000,
        1000,
      ),
    );
    expect(asked).toEqual([0, 1000, 2000, 3000, 4000].map((t) => T0 + t));
    expect(rec.events.map((e) => [e.name, e.alarm.message])).toEqual([
      ['raised', 'utm-1 is out of calibration and produced data'],
      ['returned', 'utm-1 is out of calibration and produced data'],
    ]);
  });
});

describe('rules without an instrument apply to the channel of every instrument, each with its own alarm', () => {
  test('two machines over the limit: two alarms', () => {
    const rules = parseRules([{ id: 'hi', kind: 'limits', severity: 'alarm', channel: 'force', high: 10 }]);
    const engine = new RuleEngine(rules);
    const raised = engine.evaluate(
      stream(
        [
          { instrument: 'utm-1', channel: 'force', value: (t) => t / 100 },
          { instrument: 'utm-2', channel: 'force', value: (t) => t / 200 },
          { instrument: 'utm-2', channel: 'extension', value: () => 99 },
        ],
        5000,
      ),
    );
    expect(raised.map((a) => [a.id, a.raisedAt - T0])).toEqual([
      ['hi/utm-1/force#1', 1100],
      ['hi/utm-2/force#2', 2100],
    ]);
  });
});

describe('the alarm lifecycle', () => {
  function raisedLimitAlarm() {
    const clock = { now: T0 };
    const rules = parseRules([{ id: 'hi', kind: 'limits', severity: 'alarm', instrument: UTM, channel: 'force', high: 10 }]);
    const engine = new RuleEngine(rules, { clock: () => clock.now });
    const rec = record(engine);
    const over = stream([{ instrument: UTM, channel: 'force', value: () => 12 }], 1000);
    const normal = stream([{ instrument: UTM, channel: 'force', value: () => 5 }], 1000).map((s) => ({ ...s, ts: s.ts + 1000 }));
    const [alarm] = engine.evaluate(over);
    if (alarm === undefined) throw new Error('no alarm raised');
    return { engine, rec, alarm, clock, over, normal };
  }

  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      return isLabtraceError(err) ? err.code : 'not a LabtraceError';
    }
    return undefined;
  };

  test('raised -> acknowledged (who, reason) -> returned -> cleared (who, reason)', () => {
    const { engine, rec, alarm, clock, normal } = raisedLimitAlarm();
    expect(alarm).toMatchObject({ ruleId: 'hi', severity: 'alarm', active: true, acknowledged: null, cleared: null, occurrences: 1 });
    clock.now = T0 + 1500;
    const acked = engine.acknowledge(alarm.id, 'tech.wang', 'specimen slipped in the grips');
    expect(acked.acknowledged).toEqual({ by: 'tech.wang', reason: 'specimen slipped in the grips', at: T0 + 1500 });
    expect(codeOf(() => engine.clear(alarm.id, 'tech.wang', 'done'))).toBe('E_CONFLICT'); // still over the limit
    engine.evaluate(normal);
    clock.now = T0 + 5000;
    const cleared = engine.clear(alarm.id, 'tech.wang', 'grips replaced, specimen re-tested');
    expect(cleared.cleared).toEqual({ by: 'tech.wang', reason: 'grips replaced, specimen re-tested', at: T0 + 5000, auto: false });
    expect(engine.alarms()).toEqual([]);
    expect(rec.events.map((e) => e.name)).toEqual(['raised', 'acknowledged', 'returned', 'cleared']);
    // the snapshots handed out do not change afterwards
    expect(alarm.active).toBe(true);
    expect(Object.isFrozen(cleared)).toBe(true);
  });

  test('a reason and a person are required; an unknown alarm is not found; clearing needs an acknowledgement first', () => {
    const { engine, alarm, normal } = raisedLimitAlarm();
    expect(codeOf(() => engine.acknowledge(alarm.id, 'tech.wang', '  '))).toBe('E_BAD_REQUEST');
    expect(codeOf(() => engine.acknowledge(alarm.id, '', 'seen'))).toBe('E_BAD_REQUEST');
    expect(codeOf(() => engine.acknowledge('hi/utm-1/force#99', 'tech.wang', 'seen'))).toBe('E_NOT_FOUND');
    engine.evaluate(normal);
    expect(codeOf(() => engine.clear(alarm.id, 'tech.wang', 'fine'))).toBe('E_CONFLICT');
    engine.acknowledge(alarm.id, 'tech.wang', 'seen');
    expect(codeOf(() => engine.acknowledge(alarm.id, 'tech.li', 'seen too'))).toBe('E_CONFLICT');
    expect(codeOf(() => engine.clear(alarm.id, 'tech.wang', ''))).toBe('E_BAD_REQUEST');
    engine.clear(alarm.id, 'tech.wang', 'fine');
    expect(codeOf(() => engine.clear(alarm.id, 'tech.wang', 'again'))).toBe('E_NOT_FOUND');
  });

  test('the condition coming back while the alarm is open is a recurrence; after clearing it is a new alarm', () => {
    const { engine, rec, alarm, over, normal } = raisedLimitAlarm();
    engine.evaluate(normal);
    const later = (ms: number) => over.map((s) => ({ ...s, ts: s.ts + ms }));
    expect(engine.evaluate(later(2000))).toEqual([]);
    expect(engine.alarm(alarm.id)).toMatchObject({ occurrences: 2, active: true, returnedAt: null });
    engine.acknowledge(alarm.id, 'tech.wang', 'seen');
    engine.evaluate(normal.map((s) => ({ ...s, ts: s.ts + 2000 })));
    engine.clear(alarm.id, 'tech.wang', 'load cell re-zeroed');
    const again = engine.evaluate(later(4000));
    expect(again.map((a) => a.id)).toEqual(['hi/utm-1/force#2']);
    expect(rec.events.map((e) => e.name)).toEqual(['raised', 'returned', 'recurred', 'acknowledged', 'returned', 'cleared', 'raised']);
  });

  test('autoClear: an acknowledged alarm is cleared by the engine when its condition returns to normal, and says so', () => {
    const clock = { now: T0 };
    const rules = parseRules([{ id: 'hi', kind: 'limits', severity: 'alarm', channel: 'force', high: 10, autoClear: true }]);
    const engine = new RuleEngine(rules, { clock: () => clock.now });
    const rec = record(engine);
    const [alarm] = engine.evaluate(stream([{ instrument: UTM, channel: 'force', value: (t) => (t < 500 ? 12 : 5) }], 1000));
    // it returned before anybody saw it: acknowledging it clears it
    expect(alarm?.active).toBe(true);
    clock.now = T0 + 2000;
    engine.acknowledge(alarm?.id ?? '', 'tech.wang', 'overshoot at start, expected');
    expect(rec.events.map((e) => e.name)).toEqual(['raised', 'returned', 'acknowledged', 'cleared']);
    expect(rec.events[3]?.alarm.cleared).toEqual({ by: 'system', reason: 'returned to normal', at: T0 + 2000, auto: true });
    expect(engine.alarms()).toEqual([]);
  });
});

describe('an engine rebuilt after a restart', () => {
  const rules = parseRules([
    { id: 'hi', kind: 'limits', severity: 'alarm', instrument: UTM, channel: 'force', high: 10 },
    { id: 'gap', kind: 'missing-data', severity: 'warning', instrument: UTM, channel: 'force', maxGapMs: 2000 },
  ]);
  const over = (from: number) => stream([{ instrument: UTM, channel: 'force', value: () => 12 }], 1000).map((s) => ({ ...s, ts: s.ts + from }));
  const normal = (from: number) => stream([{ instrument: UTM, channel: 'force', value: () => 5 }], 1000).map((s) => ({ ...s, ts: s.ts + from }));

  test('continues the open alarms it is given: the condition coming back recurs on the same alarm, acknowledgement kept', () => {
    const before = new RuleEngine(rules, { clock: () => T0 });
    const [alarm] = before.evaluate(over(0));
    if (alarm === undefined) throw new Error('no alarm raised');
    before.evaluate(normal(1000));
    before.acknowledge(alarm.id, 'tech.wang', 'specimen slipped');
    const stored = before.alarms();

    const after = new RuleEngine(rules, { clock: () => T0 + 5000, lastAlarmNumber: 1, openAlarms: stored });
    const rec = record(after);
    expect(after.alarms()).toEqual(stored);
    expect(after.evaluate(over(3000))).toEqual([]);
    expect(rec.events.map((e) => [e.name, e.alarm.id])).toEqual([['recurred', alarm.id]]);
    expect(after.alarm(alarm.id)).toMatchObject({ occurrences: 2, active: true, acknowledged: { by: 'tech.wang', reason: 'specimen slipped' } });
    after.evaluate(normal(4000));
    expect(after.clear(alarm.id, 'tech.wang', 'grips replaced').cleared).toMatchObject({ by: 'tech.wang', auto: false });
    expect(after.evaluate(over(5000)).map((a) => a.id)).toEqual(['hi/utm-1/force#2']);
  });

  test('an active alarm continued stays one alarm; one whose rule is gone, or already cleared, is left out', () => {
    const before = new RuleEngine(rules, { clock: () => T0 });
    const [alarm] = before.evaluate(over(0));
    if (alarm === undefined) throw new Error('no alarm raised');
    const after = new RuleEngine(rules, {
      lastAlarmNumber: 3,
      openAlarms: [
        ...before.alarms(),
        { ...alarm, id: 'gone/utm-1/force#2', ruleId: 'gone' },
        { ...alarm, id: 'hi/utm-1/other#3', kind: 'stuck' },
        { ...alarm, id: 'hi/utm-1/force#3', cleared: { by: 'x', reason: 'y', at: T0, auto: false } },
      ],
    });
    const rec = record(after);
    expect(after.alarms().map((a) => a.id)).toEqual([alarm.id]);
    expect(after.evaluate(over(1000))).toEqual([]);
    expect(rec.events).toEqual([]);
  });

  test('instrument status: at tick(), a status good again ends the alarm without a sample; the provider is asked at that time', () => {
    const statusRules = parseRules([{ id: 'cal', kind: 'instrument-status', severity: 'critical', instrument: UTM }]);
    let status: InstrumentStatus = 'unknown';
    const asked: number[] = [];
    const engine = new RuleEngine(statusRules, {
      instrumentStatus: (_instrument, ts) => {
        asked.push(ts);
        return status;
      },
    });
    const rec = record(engine);
    engine.evaluate(over(0));
    engine.tick(T0 + 2000);
    expect(rec.events.map((e) => e.name)).toEqual(['raised']);
    status = 'valid';
    engine.tick(T0 + 3000);
    expect(rec.events.map((e) => [e.name, e.alarm.returnedAt])).toEqual([
      ['raised', null],
      ['returned', T0 + 3000],
    ]);
    expect(asked.slice(-2)).toEqual([T0 + 2000, T0 + 3000]);
    // no alarm present: tick() asks nothing
    const count = asked.length;
    engine.tick(T0 + 4000);
    expect(asked.length).toBe(count);
  });
});
