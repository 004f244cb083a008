// Wall clocks in time zones, from the platform's own zone data (Intl): the fields of an instant in a zone, and a zone's
// offset from UTC at an instant. One formatter per zone; offsets are kept per minute since the epoch, since a zone's
// offset changes on a whole minute (a result file's rows, a report's calendar days, ask for the same few minutes).

export interface WallClockParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

interface Zone {
  format: Intl.DateTimeFormat;
  offsetsByMinute: Map<number, number>;
}

const zones = new Map<string, Zone>();
/** offsets kept per zone; more than this starts the zone's memory again */
const MINUTES_KEPT = 100_000;

function zoneOf(name: string): Zone {
  let zone = zones.get(name);
  if (zone === undefined) {
    // throws RangeError for a zone the platform does not know (nothing is kept then)
    zone = {
      format: new Intl.DateTimeFormat('en-US', {
        timeZone: name,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
      offsetsByMinute: new Map(),
    };
    zones.set(name, zone);
  }
  return zone;
}

/** The wall-clock fields of an instant (ms since the epoch) in a named zone (IANA, or UTC). */
export function wallClockParts(ms: number, zone: string): WallClockParts {
  const out: Record<string, number> = {};
  for (const p of zoneOf(zone).format.formatToParts(ms)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return {
    year: out['year'] ?? 0,
    month: out['month'] ?? 0,
    day: out['day'] ?? 0,
    hour: out['hour'] ?? 0,
    minute: out['minute'] ?? 0,
    second: out['second'] ?? 0,
  };
}

/** The offset of a zone from UTC at an instant, in ms: `UTC`, a fixed offset `±HH:MM`, or a named zone. */
export function zoneOffsetAt(ms: number, zone: string): number {
  if (zone === 'UTC') return 0;
  const fixed = /^([+-])(\d{2}):(\d{2})$/.exec(zone);
  if (fixed) return (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * 60_000;
  const { offsetsByMinute } = zoneOf(zone);
  const minute = Math.floor(ms / 60_000);
  const known = offsetsByMinute.get(minute);
  if (known !== undefined) return known;
  const p = wallClockParts(minute * 60_000, zone);
  const offset = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - minute * 60_000;
  if (offsetsByMinute.size >= MINUTES_KEPT) offsetsByMinute.clear();
  offsetsByMinute.set(minute, offset);
  return offset;
}
