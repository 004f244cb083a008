// What every chart shares besides drawing: whether a channel is a measurement (a line) or a state (a counter, a
// flag, an enumeration: steps), the statistics of the window it shows (current, min, max, mean), and the CSV of
// exactly its points (time in ISO 8601 with the offset of the user's zone, value, unit, quality).
import { zoneOffsetMs } from './composables/useFormat';

export interface ChartPoint {
  x: number;
  y: number;
  /** the sample's quality (good, uncertain, bad) */
  q?: string;
}

/**
 * How a channel is drawn. Instruments announce a channel's name and unit only, so the decision reads both and the
 * values: a flag (boolean values) or a unitless channel whose every value is a whole number (a specimen counter,
 * a step number, a mode) is a state, drawn as steps; anything with a unit, or with fractions, is a measurement.
 */
export type ChannelKind = 'measurement' | 'state';

/** units that count things rather than measure them */
const COUNT_UNITS = new Set(['', '1', 'count', 'counts', 'n', 'pcs', 'pc', 'ea', '#', '个', '次', '件']);

export function channelKind(unit: string, points: readonly ChartPoint[], booleans = false): ChannelKind {
  if (booleans) return 'state';
  if (!COUNT_UNITS.has(unit.trim().toLowerCase())) return 'measurement';
  if (points.length === 0) return 'measurement';
  return points.every((p) => Number.isInteger(p.y)) ? 'state' : 'measurement';
}

export interface WindowStats {
  n: number;
  current: number;
  currentAt: number;
  min: number;
  max: number;
  mean: number;
}

/** The statistics of the points a chart shows; undefined without points. */
export function statsOf(points: readonly ChartPoint[]): WindowStats | undefined {
  const last = points[points.length - 1];
  if (!last) return undefined;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const p of points) {
    if (p.y < min) min = p.y;
    if (p.y > max) max = p.y;
    sum += p.y;
  }
  return { n: points.length, current: last.y, currentAt: last.x, min, max, mean: sum / points.length };
}

/** An instant as ISO 8601 in a zone, with its offset: 2026-12-06T17:31:05.123+08:00. */
export function isoInZone(ms: number, zone: string): string {
  const offset = zoneOffsetMs(zone, ms);
  const local = new Date(ms + offset).toISOString().slice(0, 23);
  const minutes = Math.round(offset / 60_000);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

export interface CsvSeries {
  instrument: string;
  channel: string;
  unit: string;
  points: readonly ChartPoint[];
}

const cell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** The CSV of the points charted: one row per point, oldest first per series; numbers as JavaScript writes them. */
export function csvOf(series: readonly CsvSeries[], zone: string): string {
  const rows = ['time,instrument,channel,value,unit,quality'];
  for (const s of series)
    for (const p of s.points) rows.push([isoInZone(p.x, zone), s.instrument, s.channel, String(p.y), s.unit, p.q ?? ''].map(cell).join(','));
  return `${rows.join('\r\n')}\r\n`;
}

/** Offers a text as a file download (a CSV of a chart). */
export function download(name: string, text: string, type = 'text/csv;charset=utf-8'): void {
  // a byte order mark: spreadsheet programs then read the file as UTF-8 (Chinese channel names, °C)
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** a file name part made safe: letters, digits, dot, dash, underscore */
export const fileSafe = (s: string): string => s.replace(/[^\p{L}\p{N}._-]+/gu, '_');
