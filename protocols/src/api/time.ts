// The one place where times from outside (API bodies and queries, config files, the command line) are read:
// ms since the epoch or ISO 8601 text, parsed strictly (2026-02-31 is refused, not rolled over to March) and
// bounded to dates a lab can mean, so that a stored time always prints as a date (a certificate, a DCC, a PDF).
import { z } from 'zod';

/** the earliest time a lab record may carry: 2000-01-01T00:00:00Z */
export const EARLIEST_TIME = Date.UTC(2000, 0, 1);
/** the latest: 2200-01-01T00:00:00Z (a calibration due in 170 years is already a typing error) */
export const LATEST_TIME = Date.UTC(2200, 0, 1);
export const TIME_RANGE = '2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z';

/** Whether `ms` is a whole ms time inside the range (what a stored time is checked with before it is printed). */
export function isLabTime(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= EARLIEST_TIME && ms <= LATEST_TIME;
}

const outOfRange = `must be a time between ${TIME_RANGE}`;

/** a time in a JSON body: whole ms since the epoch, inside the range */
export const timeMs = z.number().int('expected whole ms since the epoch').min(EARLIEST_TIME, outOfRange).max(LATEST_TIME, outOfRange);

/**
 * a time in a query string (ms since the epoch, digits only), inside the range; 0 is taken too, for filters
 * that mean "from the beginning"
 */
export const timeMsQuery = z
  .string()
  .regex(/^\d{1,16}$/, 'expected ms since the epoch (digits)')
  .transform(Number)
  .refine((ms) => ms === 0 || isLabTime(ms), outOfRange);

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

/** The ms of a calendar date (UTC midnight), or why it is not one. */
export function parseCalendarDate(text: string): number | string {
  const m = DATE.exec(text);
  if (!m) return 'expected a date YYYY-MM-DD';
  return fromParts(Number(m[1]), Number(m[2]), Number(m[3]), 0, 0, 0, 0, 0);
}

/** The ms of an ISO 8601 date-time with its offset (Z or +hh:mm), or why it is not one. */
export function parseInstant(text: string): number | string {
  const m = INSTANT.exec(text);
  if (!m) return 'expected an ISO 8601 date-time with its offset, e.g. 2026-11-27T10:00:00Z';
  let offset = 0;
  if (m[8] !== 'Z') {
    const hours = Number(m[10]);
    const minutes = Number(m[11]);
    if (hours > 23 || minutes > 59) return `${text.slice(19)} is not a UTC offset`;
    offset = (m[9] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
  }
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  return fromParts(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), ms, offset);
}

function fromParts(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number, offset: number) {
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  date.setUTCFullYear(year); // Date.UTC reads years 0..99 as 1900..1999
  // Date.UTC rolls 2026-02-31 over to 2026-03-03 and 24:00 to the next day: a date is one only if it reads back the same
  const same =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (!same)
    return `${year}-${pad(month)}-${pad(day)}${hour || minute || second ? ` ${pad(hour)}:${pad(minute)}:${pad(second)}` : ''} is not a date of the calendar`;
  const at = date.getTime() - offset;
  return isLabTime(at) ? at : outOfRange;
}

const parsed = (parse: (text: string) => number | string) =>
  z.string().transform((text, ctx): number => {
    const at = parse(text);
    if (typeof at === 'number') return at;
    ctx.addIssue({ code: 'custom', message: at });
    return z.NEVER;
  });

/** a calendar date YYYY-MM-DD, as its UTC midnight in ms */
export const calendarDate = parsed(parseCalendarDate);
/** an ISO 8601 date-time with its offset, in ms */
export const isoInstant = parsed(parseInstant);

/** a time in a config file: ms since the epoch, a date (UTC midnight) or a date-time with its offset */
export const configTime = z.unknown().transform((v, ctx): number => {
  let at: number | string;
  if (typeof v === 'number') at = isLabTime(v) ? v : outOfRange;
  else if (typeof v === 'string') at = DATE.test(v) ? parseCalendarDate(v) : parseInstant(v);
  else at = 'expected an ISO 8601 date such as 2026-01-31 (UTC), a date-time with its offset, or ms since the epoch';
  if (typeof at === 'number') return at;
  ctx.addIssue({ code: 'custom', message: at });
  return z.NEVER;
});

/** A stored time as ISO 8601 text; `undefined` when it is none a lab can mean (the caller says why). */
export function isoOrUndefined(ms: number): string | undefined {
  return isLabTime(ms) ? new Date(ms).toISOString() : undefined;
}
