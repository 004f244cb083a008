// Turns an MQTT instrument's payload into a value and a timestamp: dotted JSON paths, plain numbers,
// instrument timestamps, scale and offset. Pure functions; every failure is a reason, never a throw.
export { compilePath, readPath, type PathResult, type PathSegment } from '@labtrace/protocols';

/** Larger payloads are refused unparsed: JSON.parse of many megabytes would stall every instrument. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Instrument timestamps further ahead than this are refused (a wrong clock, or microseconds). */
export const MAX_FUTURE_MS = 86_400_000;
/** Instrument timestamps before 2000-01-01 are refused: almost always seconds sent where milliseconds are expected. */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);

const PLAIN_NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
// ISO 8601 date and time with an explicit zone: without one, the same text means different instants on different gateways.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$/;

/** A payload that is nothing but a decimal number ("21.5", " -3e2\n"); undefined for anything else. */
export function parsePlainNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!PLAIN_NUMBER.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

export type TimestampResult = { ok: true; ts: number } | { ok: false; reason: string };

/** An instrument timestamp: ms since the epoch, or an ISO 8601 string with a zone; `now` bounds how far ahead it may be. */
export function parseTimestamp(raw: unknown, now: number): TimestampResult {
  let ts: number;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { ok: false, reason: 'timestamp is not a finite number' };
    ts = Math.round(raw);
  } else if (typeof raw === 'string') {
    if (!ISO_8601.test(raw)) return { ok: false, reason: `timestamp "${clip(raw, 40)}" is not ISO 8601 with a zone (Z or +hh:mm)` };
    ts = Date.parse(raw.replace(',', '.'));
    // Date.parse rolls 2025-02-30 over to March; a day past the month's end is a broken clock, not a date.
    const [year, month, day] = raw.slice(0, 10).split('-').map(Number);
    if (year !== undefined && month !== undefined && day !== undefined && day > new Date(Date.UTC(year, month, 0)).getUTCDate()) ts = NaN;
    if (!Number.isFinite(ts)) return { ok: false, reason: `timestamp "${clip(raw, 40)}" is not a valid date` };
  } else {
    return { ok: false, reason: `timestamp is ${describe(raw)}, expected ms since the epoch or an ISO 8601 string` };
  }
  if (ts < MIN_TIMESTAMP_MS) return { ok: false, reason: `timestamp ${ts} is before 2000-01-01 (seconds instead of milliseconds?)` };
  if (ts - now > MAX_FUTURE_MS) return { ok: false, reason: `timestamp ${new Date(ts).toISOString()} is more than 1 day in the future` };
  return { ok: true, ts };
}

/** Digits after the decimal point of a number as JavaScript prints it (0.1 -> 1, 2.5e-7 -> 8). */
function decimalsOf(x: number): number {
  if (Number.isInteger(x)) return 0;
  const s = String(x);
  const e = s.indexOf('e-');
  if (e >= 0) return Number(s.slice(e + 2)) + (s.slice(0, e).split('.')[1]?.length ?? 0);
  return s.split('.')[1]?.length ?? 0;
}

/**
 * raw * scale + offset, rounded to the decimals the exact decimal result can have, so that
 * 21.37 * 0.1 reads 2.137 and not 2.1370000000000005. Not finite when the result overflows.
 */
export function engineeringValue(raw: number, scale: number, offset: number): number {
  if (scale === 1 && offset === 0) return raw;
  const value = raw * scale + offset;
  if (!Number.isFinite(value)) return value;
  const digits = Math.max(decimalsOf(raw) + decimalsOf(scale), decimalsOf(offset));
  return digits > 15 ? value : Number(value.toFixed(digits));
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string ("${clip(value, 24)}")`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
