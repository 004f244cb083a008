// The lab manager's overview (GET /api/overview): one indexed query per figure, read in one transaction so that the
// figures agree with each other. "Today" and "this month" are the calendar day and month in the time zone the
// caller names; the daily chart and the utilisation cover today and the 29 days before it.
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
import type { Statement } from 'better-sqlite3';
import express from 'express';
import { api, OVERVIEW_DAYS, OVERVIEW_DUE_DAYS, type Overview } from '@labtrace/protocols/api';
import { routeOf } from '../auth/policy.js';
import type { LabDatabase } from '../store/database.js';
import type { Calibration } from './calibration.js';

const DAY = 86_400_000;

// ---- calendar days in a time zone

const formatters = new Map<string, Intl.DateTimeFormat>();
function partsIn(ms: number, zone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const out: Record<string, number> = {};
  for (const p of f.formatToParts(ms)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return {
    year: out['year'] ?? 0,
    month: out['month'] ?? 0,
    day: out['day'] ?? 0,
    hour: out['hour'] ?? 0,
    minute: out['minute'] ?? 0,
    second: out['second'] ?? 0,
  };
}

/** the zone's offset from UTC at an instant, ms */
function offsetAt(ms: number, zone: string): number {
  const p = partsIn(ms, zone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant a calendar date begins in a zone (month and day may run over: 2026-13-01 is 2027-01-01). */
export function startOfDate(year: number, month: number, day: number, zone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  const first = guess - offsetAt(guess, zone);
  const second = guess - offsetAt(first, zone);
  return second;
}

/** the calendar date of an instant in a zone */
export function dateIn(ms: number, zone: string): { year: number; month: number; day: number } {
  const { year, month, day } = partsIn(ms, zone);
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

export class LabOverview {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly database: LabDatabase,
    private readonly calibration: Pick<Calibration, 'status'>,
    private readonly connectedGateways: () => readonly string[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The figures as they stand now, "today" and "this month" in `zone` (an IANA zone the caller validated). */
  read(zone: string): Overview {
    const sqlite = this.database.sqlite;
    // statements prepared once (the daily one has the same number of days every time)
    const db = {
      prepare: (text: string): Statement => {
        let st = this.statements.get(text);
        if (st === undefined) this.statements.set(text, (st = sqlite.prepare(text)));
        return st;
      },
    };
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

    return sqlite.transaction((): Overview => {
      const count = (text: string, ...params: unknown[]): number => (db.prepare(text).get(...params) as { n: number }).n;
      const runCounts = (from: number) => ({
        started: count('SELECT COUNT(*) AS n FROM runs WHERE started_at >= ? AND started_at < ?', from, end),
        completed: count("SELECT COUNT(*) AS n FROM runs WHERE ended_at >= ? AND ended_at < ? AND state = 'completed'", from, end),
        aborted: count("SELECT COUNT(*) AS n FROM runs WHERE ended_at >= ? AND ended_at < ? AND state = 'aborted'", from, end),
      });

      const verdictRows = db
        .prepare(
          `SELECT rr.verdict AS verdict, COUNT(*) AS n FROM runs r JOIN run_results rr INDEXED BY run_results_verdict ON rr.run = r.id
           WHERE r.ended_at >= ? AND r.ended_at < ? AND r.state = 'completed' GROUP BY 1`,
        )
        .all(monthFrom, end) as { verdict: string | null; n: number }[];
      const verdict = (v: string): number => verdictRows.find((r) => r.verdict === v)?.n ?? 0;

      const turnarounds = (
        db
          .prepare(
            `SELECT c.issued_at - s.received_at AS ms FROM certificates c JOIN runs r ON r.id = c.run JOIN lab_samples s ON s.id = r.sample
             WHERE c.issued_at >= ? AND c.issued_at < ? AND c.amends IS NULL ORDER BY 1`,
          )
          .all(monthFrom, end) as { ms: number }[]
      ).map((r) => r.ms);
      const durations = (
        db
          .prepare(
            `SELECT ended_at - started_at AS ms FROM runs WHERE ended_at >= ? AND ended_at < ? AND state = 'completed' AND started_at IS NOT NULL ORDER BY 1`,
          )
          .all(monthFrom, end) as { ms: number }[]
      ).map((r) => r.ms);

      // every certificate has its request (same id): the drafts are the requests left over
      const draftCount = count('SELECT (SELECT COUNT(*) FROM certificate_requests) - (SELECT COUNT(*) FROM certificates) AS n');
      const oldestDraft =
        draftCount === 0
          ? undefined
          : (db
              .prepare(
                `SELECT q.requested_at AS at FROM certificate_requests q INDEXED BY certificate_requests_by_time
                 WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.id = q.id) ORDER BY q.requested_at LIMIT 1`,
              )
              .get() as { at: number } | undefined);
      const drafts = { n: draftCount, oldest: oldestDraft?.at ?? null };

      const instruments = (db.prepare('SELECT id FROM instruments ORDER BY id').all() as { id: string }[]).map((r) => r.id);
      const calibrations = { dueSoon: 0, expired: 0, never: 0, days: OVERVIEW_DUE_DAYS };
      for (const id of instruments) {
        const s = this.calibration.status(id, at);
        if (s.status === 'out-of-service') continue;
        if (s.status === 'expired') calibrations.expired++;
        else if (s.status === 'never-calibrated') calibrations.never++;
        else if (s.dueAt !== null && s.dueAt - at <= OVERVIEW_DUE_DAYS * DAY) calibrations.dueSoon++;
      }

      // run_alarms is each alarm's history: open = raised and not cleared (clearing ends an alarm for good)
      const alarms = db
        .prepare(
          `SELECT COUNT(*) AS open, COUNT(DISTINCT a.run) AS runs,
             SUM(NOT EXISTS (SELECT 1 FROM run_alarms k WHERE k.event = 'acknowledged' AND k.run = a.run AND k.alarm = a.alarm)) AS unacknowledged
           FROM run_alarms a WHERE a.event = 'raised'
             AND NOT EXISTS (SELECT 1 FROM run_alarms c WHERE c.event = 'cleared' AND c.run = a.run AND c.alarm = a.alarm)`,
        )
        .get() as { open: number; unacknowledged: number | null; runs: number };

      // the runs that overlap the days: ended after its start (index on ended_at), or not ended yet
      const overlapping = db
        .prepare(
          `SELECT json_extract(j.value, '$.id') AS i, r.s, r.e FROM
             (SELECT instruments, started_at AS s, ended_at AS e FROM runs WHERE ended_at > ? AND started_at < ?
              UNION ALL SELECT instruments, started_at, NULL FROM runs WHERE ended_at IS NULL AND started_at IS NOT NULL AND started_at < ?) r,
             json_each(r.instruments) j ORDER BY 1, 2`,
        )
        .raw()
        .all(daysFrom, end, end) as [string, number, number | null][];
      const busy = new Map<string, [number, number][]>(instruments.map((id) => [id, []]));
      for (const [i, from, to] of overlapping) {
        let list = busy.get(i);
        if (list === undefined) busy.set(i, (list = []));
        list.push([from, to ?? end]);
      }
      const length = end - daysFrom;
      const utilisation = [...busy.entries()]
        .map(([instrument, intervals]) => {
          const busyMs = unionLength(intervals, daysFrom, end);
          return { instrument, busyMs, share: length > 0 ? busyMs / length : 0 };
        })
        .sort((a, b) => a.instrument.localeCompare(b.instrument));

      const connected = new Set(this.connectedGateways());
      const gateways = (db.prepare('SELECT id, last_seen AS lastSeen FROM gateways ORDER BY id').all() as { id: string; lastSeen: number }[]).map(
        (g) => ({ id: g.id, connected: connected.has(g.id), lastSeen: g.lastSeen }),
      );

      // runs per day: one indexed count per day and kind, in one statement
      const values = days.map(() => '(?, ?, ?)').join(', ');
      const daily = db
        .prepare(
          `WITH b(i, s, e) AS (VALUES ${values})
           SELECT i, (SELECT COUNT(*) FROM runs WHERE started_at >= b.s AND started_at < b.e) AS started,
             (SELECT COUNT(*) FROM runs WHERE ended_at >= b.s AND ended_at < b.e AND state = 'completed') AS completed
           FROM b ORDER BY i`,
        )
        .all(...days.flatMap((d, i) => [i, d.from, d.to])) as { i: number; started: number; completed: number }[];

      return {
        zone,
        at,
        periods: { today: { from: todayFrom, to: end }, month: { from: monthFrom, to: end }, days: { from: daysFrom, to: end } },
        runs: {
          today: runCounts(todayFrom),
          month: runCounts(monthFrom),
          running: count("SELECT COUNT(*) AS n FROM runs WHERE state = 'running'"),
          planned: count("SELECT COUNT(*) AS n FROM runs WHERE state = 'planned'"),
        },
        verdicts: { pass: verdict('pass'), fail: verdict('fail'), noDecision: verdict('no-decision') },
        turnaround: {
          reports: turnarounds.length,
          medianMs: median(turnarounds),
          p90Ms: percentile(turnarounds, 90),
          runs: durations.length,
          testMedianMs: median(durations),
        },
        drafts: { count: drafts.n, oldestAt: drafts.oldest },
        calibrations,
        alarms: { open: alarms.open, unacknowledged: alarms.unacknowledged ?? 0, runs: alarms.runs },
        utilisation,
        gateways: { total: gateways.length, connected: gateways.filter((g) => g.connected).length, items: gateways },
        daily: days.map((d, i) => ({ ...d, started: daily[i]?.started ?? 0, completed: daily[i]?.completed ?? 0 })),
      };
    })();
  }
}

export function overviewRoutes(overview: LabOverview): express.Router {
  const router = express.Router();
  routeOf(router, api.getOverview, (_req, res, { query }) => {
    res.json(overview.read(query.zone));
  });
  return router;
}
