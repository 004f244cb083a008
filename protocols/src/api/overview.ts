// The lab manager's overview: the day's and the month's runs, verdicts, turnaround, reports waiting for a signature,
// calibrations falling due, open alarms, instrument utilisation and the gateways, in one answer. "Today" and "this
// month" are the calendar day and month in the time zone the caller names (`zone`), so that a lab in Shanghai and
// its manager travelling in Berlin each read their own day.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema } from './common.js';
import { timeZoneSchema } from './auth.js';

/** how far ahead a calibration counts as falling due */
export const OVERVIEW_DUE_DAYS = 30;
/** the days of the daily chart and of the utilisation (today and the 29 days before it) */
export const OVERVIEW_DAYS = 30;

export const overviewQuery = z.strictObject({
  /** the IANA time zone that defines "today" and "this month" (Asia/Shanghai, Europe/Berlin, UTC) */
  zone: timeZoneSchema,
});

/** a period: from (inclusive) to (exclusive), ms */
const periodSchema = z.strictObject({ from: msSchema, to: msSchema });

/** runs of a period: started in it, completed in it, aborted in it */
const runCountsSchema = z.strictObject({ started: z.number().int(), completed: z.number().int(), aborted: z.number().int() });

export const overviewSchema = z.strictObject({
  /** the zone the periods are in (canonical spelling) */
  zone: z.string(),
  /** when the figures were read */
  at: msSchema,
  periods: z.strictObject({
    /** today in the zone: midnight to now */
    today: periodSchema,
    /** this calendar month in the zone: the 1st at midnight to now */
    month: periodSchema,
    /** the daily chart and the utilisation: midnight 29 days ago to now */
    days: periodSchema,
  }),
  runs: z.strictObject({
    today: runCountsSchema,
    month: runCountsSchema,
    /** now, whatever their age */
    running: z.number().int(),
    planned: z.number().int(),
  }),
  /** the verdicts of the runs completed this month (their results' overall verdict) */
  verdicts: z.strictObject({ pass: z.number().int(), fail: z.number().int(), noDecision: z.number().int() }),
  /**
   * Turnaround of the reports first issued this month (amendments left out): from the sample's receipt to the
   * report's issue. Test duration of the runs completed this month: from the run's start to its completion.
   */
  turnaround: z.strictObject({
    reports: z.number().int(),
    medianMs: z.number().int().nullable(),
    p90Ms: z.number().int().nullable(),
    runs: z.number().int(),
    testMedianMs: z.number().int().nullable(),
  }),
  /** reports requested and not yet issued (waiting for a signatory), and when the oldest was requested */
  drafts: z.strictObject({ count: z.number().int(), oldestAt: msSchema.nullable() }),
  /** instruments whose calibration falls due within OVERVIEW_DUE_DAYS (and is not yet expired), expired, never calibrated */
  calibrations: z.strictObject({ dueSoon: z.number().int(), expired: z.number().int(), never: z.number().int(), days: z.number().int() }),
  /** alarms not cleared, and the runs they belong to */
  alarms: z.strictObject({ open: z.number().int(), unacknowledged: z.number().int(), runs: z.number().int() }),
  /** each instrument's share of the `days` period spent in runs (overlapping runs counted once) */
  utilisation: z.array(z.strictObject({ instrument: z.string(), busyMs: z.number().int(), share: z.number() })),
  gateways: z.strictObject({
    total: z.number().int(),
    connected: z.number().int(),
    items: z.array(z.strictObject({ id: z.string(), connected: z.boolean(), lastSeen: msSchema })),
  }),
  /** runs started and completed on each day of the `days` period, oldest first; day is the date in the zone */
  daily: z.array(z.strictObject({ day: z.string(), from: msSchema, to: msSchema, started: z.number().int(), completed: z.number().int() })),
});
export type Overview = z.output<typeof overviewSchema>;

export const getOverview = defineRoute({ method: 'GET', path: '/api/overview', query: overviewQuery, response: overviewSchema });
