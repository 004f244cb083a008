// Dates and times the ISO 8601 way in a time zone, through Intl with the formatters cached: for the lab's dashboard
// (composables/useFormat.ts, in the signed-in user's zone) and the supervisor's console (in the browser's).

const formatters = new Map<string, Intl.DateTimeFormat>();
export function formatter(locale: string, timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${timeZone}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat(locale, { ...options, timeZone })));
  return f;
}

export const DATE_TIME: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'shortOffset',
};
export const TIME: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };

/**
 * A date and time written the ISO 8601 way whatever the language (labs read "2026-12-06", never "12/06/2026", which
 * half the world reads as June), in the zone, with the zone's offset as the language names it ("GMT+8").
 */
export function isoStyle(locale: string, timeZone: string, ms: number, withDate: boolean, withTime: boolean): string {
  const parts = formatter(locale, timeZone, DATE_TIME).formatToParts(ms);
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  const date = `${part('year')}-${part('month')}-${part('day')}`;
  const time = `${part('hour')}:${part('minute')}:${part('second')}`;
  if (withDate && withTime) return `${date} ${time} ${part('timeZoneName')}`;
  return withDate ? date : time;
}
