// Times and numbers as the user reads them: every time in the user's time zone with the zone named
// ("2026-12-06 17:31:05 GMT+8"), numbers and dates through Intl for the language. The server keeps UTC (ms since
// the epoch); `parseLocal` turns what a user types in a date-time field (wall time in their zone) back into UTC.
import { computed } from 'vue';
import { useI18n } from 'vue-i18n';
import { DATE_TIME, formatter, isoStyle, TIME } from '../format-time';
import { useSession } from './useSession';

/** The offset of a zone from UTC at an instant, in ms (Asia/Shanghai: +8 h). */
export function zoneOffsetMs(timeZone: string, at: number): number {
  // the wall time's parts as the dashboard shows times (the zone's name among them is not read)
  const parts = formatter('en-US', timeZone, DATE_TIME).formatToParts(at);
  const n = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return wall - Math.floor(at / 1000) * 1000;
}

/**
 * UTC ms of a wall time in a zone, as a `<input type="datetime-local">` gives it ("2026-12-06T17:30"); undefined
 * when the text is not such a time. In a gap (a spring-forward hour) the later offset is taken.
 */
export function parseLocal(value: string, timeZone: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) return undefined;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  if (Number.isNaN(wall)) return undefined;
  // two rounds settle the offset, also next to a change of offset
  let utc = wall - zoneOffsetMs(timeZone, wall);
  utc = wall - zoneOffsetMs(timeZone, utc);
  return utc;
}

/** The value for a `<input type="datetime-local">` showing a UTC instant as wall time in a zone. */
export function toLocalInput(ms: number, timeZone: string): string {
  const d = new Date(ms + zoneOffsetMs(timeZone, ms));
  return d.toISOString().slice(0, 16);
}

/** Formatting bound to the user's language and time zone (reactive: a switch re-renders every time shown). */
export function useFormat() {
  const { locale } = useI18n();
  const { timeZone } = useSession();
  const zone = computed(() => timeZone.value);
  return {
    /** the zone times are shown in, named: "Asia/Shanghai" */
    zone,
    /** date and time with the zone's offset: "2026-12-06 17:31:05 GMT+8" */
    dateTime: (ms: number | null | undefined): string => (ms === null || ms === undefined ? '—' : isoStyle(locale.value, zone.value, ms, true, true)),
    /** the time of day only (chart axes, live readings), in the zone */
    time: (ms: number | null | undefined): string => (ms === null || ms === undefined ? '—' : formatter(locale.value, zone.value, TIME).format(ms)),
    /** the date only, in the zone */
    date: (ms: number | null | undefined): string => (ms === null || ms === undefined ? '—' : isoStyle(locale.value, zone.value, ms, true, false)),
    /** a number in the language's way (grouping, decimal sign) */
    number: (n: number, options?: Intl.NumberFormatOptions): string => new Intl.NumberFormat(locale.value, options).format(n),
    /** user-typed wall time in the zone -> UTC ms */
    parseLocal: (value: string): number | undefined => parseLocal(value, zone.value),
    toLocalInput: (ms: number): string => toLocalInput(ms, zone.value),
  };
}
