// The overview's figures through Kysely, the same code on SQLite and on a real PostgreSQL 15: one data set written
// into both stores, and every figure checked against the figure computed here from the data set itself (the day
// boundaries written out as ISO dates with their offsets, across a daylight-saving change; utilisation by walking
// the period minute by minute; medians and the 90th percentile by sorting) — the same figures on both engines.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Kysely } from 'kysely';
import { OVERVIEW_DAYS, OVERVIEW_DUE_DAYS, type Overview } from '@labtrace/protocols/api';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Calibration } from '../../src/lab/calibration.js';
import { EquipmentStatus } from '../../src/lab/equipment.js';
import { LabOverview } from '../../src/lab/overview.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** the clock: 2026-03-15 18:00 in Shanghai, 06:00 in New York (summer time since 2026-03-08 02:00 there) */
const NOW = Date.parse('2026-03-15T10:00:00Z');

interface RunRow {
  id: string;
  state: 'planned' | 'running' | 'completed' | 'aborted';
  started: number | null;
  ended: number | null;
  instruments: string[];
  /** the results' verdict; null: results without a verdict; undefined: no results */
  verdict?: 'pass' | 'fail' | 'no-decision' | null | undefined;
  received: number;
}

// ---- the data set: runs over the last 50 days in whole minutes, every state, and the edges of the periods

const runs: RunRow[] = [];
for (let i = 0; i < 70; i++) {
  const started = NOW - 50 * DAY + i * 17 * HOUR + (i % 5) * 11 * MIN;
  const length = (20 + ((i * 53) % 500)) * MIN;
  const ended = started + length > NOW ? null : started + length;
  const state: RunRow['state'] = ended === null ? 'running' : i % 9 === 4 ? 'aborted' : 'completed';
  const instruments = i % 4 === 0 ? ['i-1', 'i-2'] : i % 4 === 1 ? ['i-1'] : i % 4 === 2 ? ['i-2', 'i-3'] : ['i-3'];
  const verdict = state === 'completed' ? (['pass', 'fail', 'pass', 'no-decision', null, undefined] as const)[i % 6] : undefined;
  runs.push({ id: `r-${String(i).padStart(3, '0')}`, state, started, ended, instruments, verdict, received: started - (1 + (i % 4)) * DAY });
}
const shanghaiToday = Date.parse('2026-03-15T00:00:00+08:00');
const shanghaiMonth = Date.parse('2026-03-01T00:00:00+08:00');
runs.push(
  // ended exactly as the day began in Shanghai (today), and a minute before (yesterday)
  {
    id: 'e-at',
    state: 'completed',
    started: shanghaiToday - 2 * HOUR,
    ended: shanghaiToday,
    instruments: ['i-4'],
    verdict: 'fail',
    received: NOW - 5 * DAY,
  },
  { id: 'e-before', state: 'aborted', started: shanghaiToday - 3 * HOUR, ended: shanghaiToday - MIN, instruments: ['i-4'], received: NOW - 5 * DAY },
  // ended as the month began (this month), and a minute before (last month)
  {
    id: 'm-at',
    state: 'completed',
    started: shanghaiMonth - HOUR,
    ended: shanghaiMonth,
    instruments: ['i-1'],
    verdict: 'pass',
    received: NOW - 20 * DAY,
  },
  {
    id: 'm-before',
    state: 'completed',
    started: shanghaiMonth - HOUR,
    ended: shanghaiMonth - MIN,
    instruments: ['i-1'],
    verdict: 'pass',
    received: NOW - 20 * DAY,
  },
  // overlapping runs on one instrument (counted once in its utilisation); one started before the 30 days, still running
  { id: 'o-1', state: 'completed', started: NOW - 6 * HOUR, ended: NOW - 2 * HOUR, instruments: ['i-4'], verdict: 'pass', received: NOW - DAY },
  { id: 'o-2', state: 'completed', started: NOW - 4 * HOUR, ended: NOW - HOUR, instruments: ['i-4', 'i-1'], verdict: 'fail', received: NOW - DAY },
  { id: 'long', state: 'running', started: NOW - 40 * DAY, ended: null, instruments: ['i-5'], received: NOW - 41 * DAY },
  { id: 'p-1', state: 'planned', started: null, ended: null, instruments: ['i-1'], received: NOW - DAY },
  { id: 'p-2', state: 'planned', started: null, ended: null, instruments: ['i-2'], received: NOW - DAY },
);
const completedRuns = runs.filter((r) => r.state === 'completed');

// reports: the first report of every third completed run, issued some hours after its end; an amendment; drafts
const issued = completedRuns
  .filter((_, i) => i % 3 === 0)
  .map((r, i) => ({ id: `C-${i}`, run: r, at: (r.ended as number) + ((i % 7) + 1) * HOUR, amends: null as string | null }))
  .filter((c) => c.at <= NOW);
const amendment = { id: 'C-amend', run: (issued[issued.length - 1] as (typeof issued)[number]).run, at: NOW - 30 * MIN, amends: 'C-0' };
const certificates = [...issued, amendment];
const drafts = [
  { id: 'D-1', run: completedRuns[1] as RunRow, at: NOW - 4 * DAY - 7 * MIN },
  { id: 'D-2', run: completedRuns[2] as RunRow, at: NOW - 2 * DAY },
];

/** instruments and their calibration records: valid, due within the overview's days, expired, never, out of service */
const instruments = ['i-1', 'i-2', 'i-3', 'i-4', 'i-5', 'i-6'];
const calibrationRows = [
  { instrument: 'i-1', calibrated_at: NOW - 100 * DAY, next_due_at: NOW + 200 * DAY },
  { instrument: 'i-2', calibrated_at: NOW - 300 * DAY, next_due_at: NOW + 10 * DAY },
  { instrument: 'i-3', calibrated_at: NOW - 400 * DAY, next_due_at: NOW - DAY },
  // an expired instrument taken out of service: not counted
  { instrument: 'i-5', calibrated_at: NOW - 400 * DAY, next_due_at: NOW - 5 * DAY },
  // i-6: calibrated only after the clock's now, so never calibrated as it stands; i-4 never calibrated
  { instrument: 'i-6', calibrated_at: NOW + DAY, next_due_at: NOW + 300 * DAY },
];
const serviceRows = [{ instrument: 'i-5', status: 'out-of-service', at: NOW - 3 * DAY }];

/** alarm histories: [run, alarm, event, at] */
const alarmRows: [string, string, string, number][] = [
  ['r-060', 'a-1', 'raised', NOW - 5 * HOUR],
  ['r-060', 'a-1', 'acknowledged', NOW - 4 * HOUR],
  ['r-060', 'a-2', 'raised', NOW - 4 * HOUR],
  ['r-061', 'a-3', 'raised', NOW - 3 * HOUR],
  ['r-061', 'a-3', 'cleared', NOW - 2 * HOUR],
  ['r-062', 'a-4', 'raised', NOW - 2 * HOUR],
  ['r-062', 'a-4', 'acknowledged', NOW - HOUR],
  ['r-062', 'a-5', 'raised', NOW - HOUR],
];
const gatewayRows = [
  { id: 'gw-a', last_seen: NOW - MIN },
  { id: 'gw-b', last_seen: NOW - 3 * DAY },
  { id: 'gw-c', last_seen: NOW - 10 * DAY },
];
const CONNECTED = ['gw-a', 'gw-z'];

// ---- the stores

const fixture = new StoreFixture('overview');
/** the synchronous parts of AuditTrail need a LabDatabase; Calibration.statusIn reads only the db it is given */
let unused: LabDatabase;
let calibration: Calibration;
const figures: Record<string, Record<string, Overview>> = {};

async function store(engine: Engine): Promise<Kysely<Tables>> {
  const [db] = (await fixture.stores(engine)) as [Kysely<Tables>];
  await write(db);
  return db;
}

/** the data set, as the lab's modules write it */
async function write(db: Kysely<Tables>): Promise<void> {
  const bytes = Buffer.from('-');
  await db.insertInto('organizations').values({ id: 'acme', name: 'ACME', created_at: 0, contact: null }).execute();
  await db
    .insertInto('methods')
    .values({ id: 'm', version: 1, standard: 'ISO 1', title: 'M', definition: '{}', created_by: 'ada', created_at: 0 })
    .execute();
  await db
    .insertInto('gateways')
    .values(gatewayRows.map((g) => ({ id: g.id, lab: 'lab-t', version: '1', session: 1, first_seen: NOW - 60 * DAY, last_seen: g.last_seen })))
    .execute();
  await db
    .insertInto('instruments')
    .values(instruments.map((id) => ({ id, gateway: 'gw-a', identity: '{}', channels: '[]', updated_at: NOW - 60 * DAY })))
    .execute();
  for (const r of runs) {
    await db
      .insertInto('lab_samples')
      .values({
        id: `s-${r.id}`,
        organization: 'acme',
        description: 'item',
        condition: 'ok',
        received_at: r.received,
        created_by: 'ada',
        created_at: r.received,
      })
      .execute();
    await db
      .insertInto('runs')
      .values({
        id: r.id,
        sample: `s-${r.id}`,
        organization: 'acme',
        method_id: 'm',
        method_version: 1,
        instruments: JSON.stringify(r.instruments.map((id) => ({ id, gateway: 'gw-a' }))),
        technician: 'ada',
        state: r.state,
        accredited: 0,
        created_by: 'ada',
        created_at: r.received,
        started_at: r.started,
        ended_at: r.ended,
      })
      .execute();
    if (r.verdict !== undefined)
      await db
        .insertInto('run_results')
        .values({
          run: r.id,
          computed_at: r.ended as number,
          results: JSON.stringify(r.verdict === null ? { run: r.id } : { run: r.id, verdict: r.verdict }),
        })
        .execute();
  }
  for (const c of [...certificates, ...drafts.map((d) => ({ ...d, amends: null }))])
    await db
      .insertInto('certificate_requests')
      .values({
        id: c.id,
        run: c.run.id,
        organization: 'acme',
        amends: c.amends,
        reason: null,
        requested_by: 'ada',
        requested_at: c.at - MIN,
        language: null,
      })
      .execute();
  let logIndex = 0;
  for (const c of certificates)
    await db
      .insertInto('certificates')
      .values({
        id: c.id,
        run: c.run.id,
        organization: 'acme',
        amends: c.amends,
        issued_by: 'sig',
        issued_at: c.at,
        content: bytes,
        json: bytes,
        pdf: bytes,
        dcc: bytes,
        statement: '-',
        signature: '-',
        key_id: 'k',
        json_file_digest: '-',
        log_index: logIndex++,
      })
      .execute();
  for (const [i, c] of calibrationRows.entries())
    await db
      .insertInto('calibrations')
      .values({
        ...c,
        laboratory: 'cal-lab',
        certificate: `CAL-${i}`,
        results: '[]',
        uncertainty: '-',
        adjustments: null,
        acceptance: null,
        reason: null,
        recorded_by: 'ada',
        recorded_at: c.calibrated_at,
      })
      .execute();
  for (const s of serviceRows)
    await db
      .insertInto('instrument_status')
      .values({ ...s, reason: 'broken', actor: 'ada' })
      .execute();
  for (const [run, alarm, event, at] of alarmRows)
    await db
      .insertInto('run_alarms')
      .values({
        run,
        alarm,
        event,
        at,
        rule_id: 'rule',
        severity: 'warning',
        instrument: 'i-1',
        channel: null,
        detail: '{}',
        person: null,
        reason: null,
      })
      .execute();
}

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
  const audit = new AuditTrail(unused);
  calibration = new Calibration(unused.db, audit, new EquipmentStatus(unused.db, audit), { requireForRuns: false, dueSoonDays: 30 });
  for (const engine of ['sqlite', 'postgres'] as const) {
    const overview = new LabOverview(
      await store(engine),
      calibration,
      () => CONNECTED,
      () => NOW,
    );
    figures[engine] = {};
    for (const zone of ['Asia/Shanghai', 'America/New_York']) figures[engine][zone] = await overview.read(zone);
  }
}, 180_000);
afterAll(() => fixture.close());

// ---- the figures computed here from the data set

/** The start of each of the 30 days up to 2026-03-15 in a zone, written as ISO dates with the zone's offset that day. */
function dayStarts(zone: string): { day: string; from: number }[] {
  const out: { day: string; from: number }[] = [];
  for (let i = OVERVIEW_DAYS - 1; i >= -1; i--) {
    const d = new Date(Date.UTC(2026, 2, 15 - i));
    const day = d.toISOString().slice(0, 10);
    // New York: EST (-05:00) until 2026-03-08 02:00, EDT (-04:00) after; midnight of the 8th is still EST
    const offset = zone === 'Asia/Shanghai' ? '+08:00' : day <= '2026-03-08' ? '-05:00' : '-04:00';
    out.push({ day, from: Date.parse(`${day}T00:00:00${offset}`) });
  }
  return out;
}

const inRange = (t: number | null, from: number, to: number): boolean => t !== null && t >= from && t < to;
const sortedNumbers = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
function medianOf(xs: number[]): number | null {
  const s = sortedNumbers(xs);
  if (s.length === 0) return null;
  return s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : Math.round(((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2);
}
/** nearest rank: the smallest value with at least 90% of the values at or below it */
function p90Of(xs: number[]): number | null {
  const s = sortedNumbers(xs);
  return s.find((v) => s.filter((w) => w <= v).length * 10 >= s.length * 9) ?? null;
}

function expected(zone: string): Omit<Overview, 'utilisation'> & { busy: Record<string, number> } {
  const starts = dayStarts(zone);
  const end = NOW + 1;
  const todayEntry = starts[OVERVIEW_DAYS - 1] as { day: string; from: number };
  const todayFrom = todayEntry.from;
  const monthFrom = Date.parse(zone === 'Asia/Shanghai' ? '2026-03-01T00:00:00+08:00' : '2026-03-01T00:00:00-05:00');
  const daysFrom = (starts[0] as { from: number }).from;
  const counts = (from: number) => ({
    started: runs.filter((r) => inRange(r.started, from, end)).length,
    completed: runs.filter((r) => r.state === 'completed' && inRange(r.ended, from, end)).length,
    aborted: runs.filter((r) => r.state === 'aborted' && inRange(r.ended, from, end)).length,
  });
  const monthCompleted = runs.filter((r) => r.state === 'completed' && inRange(r.ended, monthFrom, end));
  const turnarounds = certificates.filter((c) => c.amends === null && inRange(c.at, monthFrom, end)).map((c) => c.at - c.run.received);
  const durations = monthCompleted.map((r) => (r.ended as number) - (r.started as number));
  // open alarms: raised and never cleared
  const raised = alarmRows.filter(([, , e]) => e === 'raised');
  const has = (run: string, alarm: string, event: string): boolean => alarmRows.some(([r, a, e]) => r === run && a === alarm && e === event);
  const open = raised.filter(([r, a]) => !has(r, a, 'cleared'));
  // utilisation: each minute of the 30 days is busy for an instrument if one of its runs covers it (plus the last
  // millisecond, now, if a run is still going); runs' times are whole minutes
  const busy: Record<string, number> = {};
  for (const id of instruments) {
    const mine = runs.filter((r) => r.started !== null && r.instruments.includes(id));
    let ms = 0;
    for (let t = daysFrom; t < NOW; t += MIN) if (mine.some((r) => (r.started as number) <= t && (r.ended === null || r.ended > t))) ms += MIN;
    if (mine.some((r) => (r.started as number) <= NOW && (r.ended === null || r.ended > NOW))) ms += 1;
    busy[id] = ms;
  }
  return {
    zone,
    at: NOW,
    periods: { today: { from: todayFrom, to: end }, month: { from: monthFrom, to: end }, days: { from: daysFrom, to: end } },
    runs: {
      today: counts(todayFrom),
      month: counts(monthFrom),
      running: runs.filter((r) => r.state === 'running').length,
      planned: runs.filter((r) => r.state === 'planned').length,
    },
    verdicts: {
      pass: monthCompleted.filter((r) => r.verdict === 'pass').length,
      fail: monthCompleted.filter((r) => r.verdict === 'fail').length,
      noDecision: monthCompleted.filter((r) => r.verdict === 'no-decision').length,
    },
    turnaround: {
      reports: turnarounds.length,
      medianMs: medianOf(turnarounds),
      p90Ms: p90Of(turnarounds),
      runs: durations.length,
      testMedianMs: medianOf(durations),
    },
    drafts: { count: drafts.length, oldestAt: Math.min(...drafts.map((d) => d.at - MIN)) },
    // i-2 due in 10 days; i-3 expired; i-4 and i-6 never (i-6's calibration is after now); i-5 out of service
    calibrations: { dueSoon: 1, expired: 1, never: 2, days: OVERVIEW_DUE_DAYS },
    alarms: {
      open: open.length,
      unacknowledged: open.filter(([r, a]) => !has(r, a, 'acknowledged')).length,
      runs: new Set(open.map(([r]) => r)).size,
    },
    gateways: {
      total: gatewayRows.length,
      connected: gatewayRows.filter((g) => CONNECTED.includes(g.id)).length,
      items: gatewayRows.map((g) => ({ id: g.id, connected: CONNECTED.includes(g.id), lastSeen: g.last_seen })),
    },
    daily: starts.slice(0, OVERVIEW_DAYS).map((s, i) => {
      const to = Math.min((starts[i + 1] as { from: number }).from, end);
      return {
        day: s.day,
        from: s.from,
        to,
        started: runs.filter((r) => inRange(r.started, s.from, to)).length,
        completed: runs.filter((r) => r.state === 'completed' && inRange(r.ended, s.from, to)).length,
      };
    }),
    busy,
  };
}

describe.each(['Asia/Shanghai', 'America/New_York'])('in %s', (zone) => {
  test('SQLite and PostgreSQL give the same figures', () => {
    expect(figures['postgres']?.[zone]).toEqual(figures['sqlite']?.[zone]);
  });

  describe.each(['sqlite', 'postgres'])('on %s', (engine) => {
    test('every figure is the one computed from the data set', () => {
      const got = figures[engine]?.[zone] as Overview;
      const { busy, ...want } = expected(zone);
      const { utilisation, ...rest } = got;
      expect(rest).toStrictEqual(want);
      const length = NOW + 1 - want.periods.days.from;
      expect(utilisation).toStrictEqual(
        [...instruments].sort().map((instrument) => ({ instrument, busyMs: busy[instrument], share: (busy[instrument] as number) / length })),
      );
    });

    test('the data set reaches the edges it is meant to', () => {
      const got = figures[engine]?.[zone] as Overview;
      // every figure has something to count, so that a figure stuck at 0 fails above
      expect(got.runs.today.started).toBeGreaterThan(0);
      expect(got.runs.month.aborted).toBeGreaterThan(0);
      expect(Object.values(got.verdicts).every((n) => n > 0)).toBe(true);
      expect(got.turnaround.reports).toBeGreaterThan(1);
      expect(got.alarms.open).toBeGreaterThan(got.alarms.unacknowledged);
      expect(got.daily.filter((d) => d.completed > 0).length).toBeGreaterThan(10);
      // the days are calendar days of the zone: in New York, 2026-03-08 has 23 hours
      const short = got.daily.find((d) => d.day === '2026-03-08');
      expect(short && short.to - short.from).toBe(zone === 'America/New_York' ? 23 * HOUR : DAY);
    });
  });
});

test('the edges of today and of the month: an end at midnight is in the day it begins, a minute before is not', () => {
  const shanghai = figures['sqlite']?.['Asia/Shanghai'] as Overview;
  const ny = figures['sqlite']?.['America/New_York'] as Overview;
  // e-at ended at Shanghai's midnight (today there), e-before a minute earlier: both on the 14th in New York
  const runsEndedToday = (from: number) => runs.filter((r) => r.ended !== null && r.ended >= from && r.ended <= NOW).map((r) => r.id);
  expect(runsEndedToday(shanghai.periods.today.from)).toContain('e-at');
  expect(runsEndedToday(shanghai.periods.today.from)).not.toContain('e-before');
  expect(runsEndedToday(ny.periods.today.from)).not.toContain('e-at');
  expect(shanghai.periods.today.from).toBe(Date.parse('2026-03-15T00:00:00+08:00'));
  expect(ny.periods.today.from).toBe(Date.parse('2026-03-15T00:00:00-04:00'));
});
