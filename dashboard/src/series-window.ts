// The points a run's charts draw, kept outside Vue's reactivity (thousands of points per second) and bounded:
// each series keeps at most `maxPoints`, dropping the oldest, so a long run cannot grow the page without limit.
import type { LiveSample } from '@labtrace/protocols/api';

export interface Point {
  x: number;
  y: number;
  /** the sample's quality (for the chart's CSV) */
  q?: string;
}

export interface Series {
  /** "instrument/channel" */
  key: string;
  instrument: string;
  channel: string;
  points: Point[];
  /** the channel sends true/false (charted as 1/0 steps) */
  flag?: boolean;
}

export class SeriesWindow {
  private readonly series = new Map<string, Series>();
  /** samples taken in since the last reset, numeric or not */
  received = 0;

  /** x of a point is its sample's time (ms since the epoch): the chart's time axis formats it in the user's zone */
  constructor(readonly maxPoints: number) {}

  add(samples: readonly LiveSample[]): void {
    for (const s of samples) {
      this.received++;
      // a flag is a state: charted as 1 and 0 (steps); text and missing values are not charted
      const flag = typeof s.value === 'boolean';
      const value = flag ? (s.value ? 1 : 0) : s.value;
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const key = `${s.instrument}/${s.channel}`;
      let series = this.series.get(key);
      if (!series) this.series.set(key, (series = { key, instrument: s.instrument, channel: s.channel, points: [] }));
      if (flag) series.flag = true;
      const points = series.points;
      const x = s.ts;
      // the chart's decimation wants x in order; a late sample goes to its place
      if (points.length > 0 && (points[points.length - 1]?.x ?? x) > x) {
        let i = points.length - 1;
        while (i > 0 && (points[i - 1]?.x ?? x) > x) i--;
        points.splice(i, 0, { x, y: value, q: s.quality });
      } else points.push({ x, y: value, q: s.quality });
      // trimmed in steps of a tenth, so the cost of the shift is spread over many samples
      if (points.length > this.maxPoints) points.splice(0, points.length - this.maxPoints + Math.ceil(this.maxPoints / 10));
    }
  }

  /** the series of one channel (one per instrument that has it) */
  ofChannel(channel: string): Series[] {
    return [...this.series.values()].filter((s) => s.channel === channel);
  }

  channels(): string[] {
    return [...new Set([...this.series.values()].map((s) => s.channel))];
  }

  /** points held over all series */
  get size(): number {
    let n = 0;
    for (const s of this.series.values()) n += s.points.length;
    return n;
  }

  reset(): void {
    this.series.clear();
    this.received = 0;
  }
}
