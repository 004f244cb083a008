// The lab manager's overview (GET /api/overview): indexed queries through Kysely (the same on SQLite and PostgreSQL),
// read in one transaction so that the figures agree with each other. "Today" and "this month" are the calendar day
// and month in the time zone the caller names (the boundaries computed here, so that no engine's date functions are
// involved); the daily chart and the utilisation cover today and the 29 days before it.
//
// Definitions (docs/dashboard.md, "The overview, and charts"):
// - runs started / completed / aborted in a period: by the run's start, resp. end, time inside it;
// - verdicts: the overall verdict of the results of the runs completed this month (no decision: no result had limits);
// - turnaround: a report first issued this month (amendments left out), from its sample's receipt to the issue;
//   test duration: a run completed this month, from its start to its completion;
// - drafts: requested reports not issued yet;
// - calibrations: the instruments' calibration status now, due soon meaning due within OVERVIEW_DUE_DAYS days;
// - open alarms: alarms raised and not cleared (a cleared alarm never reopens: its condition raises a new one);
// - utilisation: the time in the period an instrument was part of a started, not yet ended (or ended later) run,
//   overlapping runs counted once, divided by the period's length.
import express from 'express';
import type { Kysely } from 'kysely';
import { wallClockParts, zoneOffsetAt } from '@labtrace/protocols';
import { api, OVERVIEW_DAYS, OVERVIEW_DUE_DAYS, type Overview } from '@labtrace/protocols/api';
import { routeOf } from '../auth/policy.js';
import type { Tables } from '../store/database.js';
import type { Calibration } from './calibration.js';

const DAY = 86_400_000;

// ---- calendar days in a time zone

/** The instant a calendar date begins in a zone (month and day may run over: 2026-13-01 is 2027-01-01). */
export function startOfDate(year: number, month: number, day: number, zone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  const first = guess - zoneOffsetAt(guess, zone);
  const second = guess - zoneOffsetAt(first, zone);
  return second;
}

/** the calendar date of an instant in a zone */
export function dateIn(ms: number, zone: string): { year: number; month: number; day: number } {
  const { year, month, day } = wallClockParts(ms, zone);
  return { year, month, day };
}

const pad = (n: number): string => String(n).padStart(2, '0');

// ---- figures

const median = (sorted: number[]): number | null => {
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : Math.round(((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2);
};
/** the nearest-rank percentile */
const percentile = (sorted: number[], p: number): number | null =>
  sorted.length === 0 ? null : (sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number);

/** Busy time of a set of intervals inside [from, to): their union's length. */
export function unionLength(intervals: [number, number][], from: number, to: number): number {
  const clipped = intervals
    .map(([a, b]): [number, number] => [Math.max(a, from), Math.min(b, to)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let start = -Infinity;
  let end = -Infinity;
  for (const [a, b] of clipped) {
    if (a > end) {
      if (end > start) total += end - start;
      start = a;
      end = b;
    } else if (b > end) end = b;
  }
  if (end > start) total += end - start;
  return total;
}

type RunTime = 'started_at' | 'ended_at';
/** the runs counted for a figure: by a time inside [from, to), by state, or both */
interface RunSpan {
  column?: RunTime;
  from?: number;
  to?: number;
  state?: string;
}

/** what the overview asks the calibration module: an instrument's status read in the overview's transaction */
export type CalibrationStatusReader = Pick<Calibration, 'statusIn'>;

/**
 * The overview's figures, read through Kysely on the store's database (SQLite or PostgreSQL) in one read-only
 * transaction: on PostgreSQL a REPEATABLE READ snapshot, on SQLite one transaction within one event-loop task.
 * Every query is written once for both; its figures are counted in SQL as integers or computed here from integers.
 */
export class LabOverview {
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly calibration: CalibrationStatusReader,
    private readonly connectedGateways: () => readonly string[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The figures as they stand now, "today" and "this month" in `zone` (an IANA zone the caller validated). */
  async read(zone: string): Promise<Overview> {
    const at = this.now();
    const today = dateIn(at, zone);
    const todayFrom = startOfDate(today.year, today.month, today.day, zone);
    const monthFrom = startOfDate(today.year, today.month, 1, zone);
    const days: { day: string; from: number; to: number }[] = [];
    for (let i = OVERVIEW_DAYS - 1; i >= 0; i--) {
      const from = startOfDate(today.year, today.month, today.day - i, zone);
      const next = startOfDate(today.year, today.month, today.day - i + 1, zone);
      const d = dateIn(from + DAY / 2, zone);
      days.push({ day: `${d.year}-${pad(d.month)}-${pad(d.day)}`, from, to: Math.min(next, at + 1) });
    }
    const daysFrom = days[0]?.from ?? todayFrom;
    const end = at + 1;
    const connected = new Set(this.connectedGateways());

    return this.store
      .transaction()
      .setIsolationLevel('repeatable read') // PostgreSQL: one snapshot for every figure (SQLite's transaction is one already)
      .setAccessMode('read only')
      .execute(async (db): Promise<Overview> => {
        /** COUNT(*) reads as a number on both (PostgreSQL's BIGINT through the store's parser) */
        const counted = (n: string | number | bigint | null | undefined): number => Number(n ?? 0);
        // every count of runs in one statement: one indexed count per period and kind (runs_by_start, runs_by_end,
        // runs_by_state), as scalar subqueries; the daily chart's counts among them
        const spans: Record<string, RunSpan> = {
          todayStarted: { column: 'started_at', from: todayFrom, to: end },
          todayCompleted: { column: 'ended_at', from: todayFrom, to: end, state: 'completed' },
          todayAborted: { column: 'ended_at', from: todayFrom, to: end, state: 'aborted' },
          monthStarted: { column: 'started_at', from: monthFrom, to: end },
          monthCompleted: { column: 'ended_at', from: monthFrom, to: end, state: 'completed' },
          monthAborted: { column: 'ended_at', from: monthFrom, to: end, state: 'aborted' },
          running: { state: 'running' },
          planned: { state: 'planned' },
        };
        days.forEach((d, i) => {
          spans[`started${i}`] = { column: 'started_at', from: d.from, to: d.to };
          spans[`completed${i}`] = { column: 'ended_at', from: d.from, to: d.to, state: 'completed' };
        });
        const countRow = (await db
          .selectNoFrom((eb) =>
            Object.entries(spans).map(([name, span]) =>
              eb
                .selectFrom('runs')
                .select(eb.fn.countAll().as('n'))
                .$if(span.column !== undefined, (q) =>
                  q.where(span.column as RunTime, '>=', span.from as number).where(span.column as RunTime, '<', span.to as number),
                )
                .$if(span.state !== undefined, (q) => q.where('state', '=', span.state as string))
                .as(name),
            ),
          )
          .executeTakeFirstOrThrow()) as Record<string, string | number | bigint | null>;
        const runCount = (name: string): number => counted(countRow[name]);
        const today = { started: runCount('todayStarted'), completed: runCount('todayCompleted'), aborted: runCount('todayAborted') };
        const month = { started: runCount('monthStarted'), completed: runCount('monthCompleted'), aborted: runCount('monthAborted') };

        // the verdicts of the runs completed this month (the results' verdict is a generated, indexed column)
        const verdictRows = await db
          .selectFrom('runs as r')
          .innerJoin('run_results as rr', 'rr.run', 'r.id')
          .select((eb) => ['rr.verdict', eb.fn.countAll().as('n')])
          .where('r.ended_at', '>=', monthFrom)
          .where('r.ended_at', '<', end)
          .where('r.state', '=', 'completed')
          // results without a verdict count in none: SQLite then reads the verdicts from the (run, verdict) index
          .where('rr.verdict', 'is not', null)
          .groupBy('rr.verdict')
          .execute();
        const verdict = (v: string): number => counted(verdictRows.find((r) => r.verdict === v)?.n);

        const turnarounds = (
          await db
            .selectFrom('certificates as c')
            .innerJoin('runs as r', 'r.id', 'c.run')
            .innerJoin('lab_samples as s', 's.id', 'r.sample')
            .select(['c.issued_at', 's.received_at'])
            .where('c.issued_at', '>=', monthFrom)
            .where('c.issued_at', '<', end)
            .where('c.amends', 'is', null)
            .execute()
        )
          .map((r) => r.issued_at - r.received_at)
          .sort((a, b) => a - b);
        const durations = (
          await db
            .selectFrom('runs')
            .select(['started_at', 'ended_at'])
            .where('ended_at', '>=', monthFrom)
            .where('ended_at', '<', end)
            .where('state', '=', 'completed')
            .where('started_at', 'is not', null)
            .execute()
        )
          .map((r) => (r.ended_at as number) - (r.started_at as number))
          .sort((a, b) => a - b);

        // every certificate has its request (same id): the drafts are the requests left over
        const requests = await db
          .selectFrom('certificate_requests')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow();
        const certificates = await db
          .selectFrom('certificates')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow();
        const draftCount = counted(requests.n) - counted(certificates.n);
        const oldestDraft =
          draftCount === 0
            ? undefined
            : await db
                .selectFrom('certificate_requests as q')
                .select('q.requested_at')
                .where((eb) => eb.not(eb.exists(eb.selectFrom('certificates as c').select('c.id').whereRef('c.id', '=', 'q.id'))))
                .orderBy('q.requested_at')
                .limit(1)
                .executeTakeFirst();

        const instruments = (await db.selectFrom('instruments').select('id').orderBy('id').execute()).map((r) => r.id);
        const calibrations = { dueSoon: 0, expired: 0, never: 0, days: OVERVIEW_DUE_DAYS };
        for (const id of instruments) {
          const s = await this.calibration.statusIn(db, id, at);
          if (s.status === 'out-of-service') continue;
          if (s.status === 'expired') calibrations.expired++;
          else if (s.status === 'never-calibrated') calibrations.never++;
          else if (s.dueAt !== null && s.dueAt - at <= OVERVIEW_DUE_DAYS * DAY) calibrations.dueSoon++;
        }

        // run_alarms is each alarm's history: open = raised and not cleared (clearing ends an alarm for good)
        const alarms = await db
          .selectFrom('run_alarms as a')
          .select((eb) => [
            eb.fn.countAll().as('open'),
            eb.fn.count('a.run').distinct().as('runs'),
            eb.fn
              .count(
                eb
                  .case()
                  .when(
                    eb.not(
                      eb.exists(
                        eb
                          .selectFrom('run_alarms as k')
                          .select('k.id')
                          .where('k.event', '=', 'acknowledged')
                          .whereRef('k.run', '=', 'a.run')
                          .whereRef('k.alarm', '=', 'a.alarm'),
                      ),
                    ),
                  )
                  .then(1)
                  .end(),
              )
              .as('unacknowledged'),
          ])
          .where('a.event', '=', 'raised')
          .where((eb) =>
            eb.not(
              eb.exists(
                eb
                  .selectFrom('run_alarms as c')
                  .select('c.id')
                  .where('c.event', '=', 'cleared')
                  .whereRef('c.run', '=', 'a.run')
                  .whereRef('c.alarm', '=', 'a.alarm'),
              ),
            ),
          )
          .executeTakeFirstOrThrow();

        // the runs that overlap the days: ended after its start (index on ended_at), or started and not ended yet;
        // each run's instruments (a JSON list) read here, the same on both engines
        const overlapping = await db
          .selectFrom('runs')
          .select(['instruments', 'started_at', 'ended_at'])
          .where('ended_at', '>', daysFrom)
          .where('started_at', '<', end)
          .unionAll(
            db
              .selectFrom('runs')
              .select(['instruments', 'started_at', 'ended_at'])
              .where('ended_at', 'is', null)
              .where('started_at', 'is not', null)
              .where('started_at', '<', end),
          )
          .execute();
        const busy = new Map<string, [number, number][]>(instruments.map((id) => [id, []]));
        // runs share a few instrument lists: each list parsed once
        const lists = new Map<string, string[]>();
        for (const run of overlapping) {
          let ids = lists.get(run.instruments);
          if (ids === undefined) lists.set(run.instruments, (ids = (JSON.parse(run.instruments) as { id: string }[]).map((i) => i.id)));
          for (const id of ids) {
            let list = busy.get(id);
            if (list === undefined) busy.set(id, (list = []));
            list.push([run.started_at as number, run.ended_at ?? end]);
          }
        }
        const length = end - daysFrom;
        const utilisation = [...busy.entries()]
          .map(([instrument, intervals]) => {
            const busyMs = unionLength(intervals, daysFrom, end);
            return { instrument, busyMs, share: length > 0 ? busyMs / length : 0 };
          })
          .sort((a, b) => a.instrument.localeCompare(b.instrument));

        const gateways = (await db.selectFrom('gateways').select(['id', 'last_seen']).orderBy('id').execute()).map((g) => ({
          id: g.id,
          connected: connected.has(g.id),
          lastSeen: g.last_seen,
        }));

        return {
          zone,
          at,
          periods: { today: { from: todayFrom, to: end }, month: { from: monthFrom, to: end }, days: { from: daysFrom, to: end } },
          runs: { today, month, running: runCount('running'), planned: runCount('planned') },
          verdicts: { pass: verdict('pass'), fail: verdict('fail'), noDecision: verdict('no-decision') },
          turnaround: {
            reports: turnarounds.length,
            medianMs: median(turnarounds),
            p90Ms: percentile(turnarounds, 90),
            runs: durations.length,
            testMedianMs: median(durations),
          },
          drafts: { count: draftCount, oldestAt: oldestDraft?.requested_at ?? null },
          calibrations,
          alarms: { open: counted(alarms.open), unacknowledged: counted(alarms.unacknowledged), runs: counted(alarms.runs) },
          utilisation,
          gateways: { total: gateways.length, connected: gateways.filter((g) => g.connected).length, items: gateways },
          daily: days.map((d, i) => ({ ...d, started: runCount(`started${i}`), completed: runCount(`completed${i}`) })),
        };
      });
  }
}

export function overviewRoutes(overview: LabOverview): express.Router {
  const router = express.Router();
  routeOf(router, api.getOverview, async (_req, res, { query }) => {
    res.json(await overview.read(query.zone));
  });
  return router;
}
