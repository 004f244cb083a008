// Synthetic sample streams for the inspection tests: a clean signal, and the faults the issue names
// (stuck value, drift, gap, noise, disconnect), with deterministic noise and no clock but the samples'.
import type { LiveSample, Quality } from '@labtrace/protocols';
import type { Alarm, InspectionEvents, RuleEngine } from '../../src/inspection/engine.js';
import { noise } from '@labtrace/device-sim';

export const T0 = Date.UTC(2026, 10, 27, 9, 0, 0);

/** mulberry32 in [-0.5, 0.5), the simulator's models' own, so streams are the same on every run. */
export const uniform = noise;

export interface ChannelSpec {
  instrument: string;
  channel: string;
  unit?: string;
  /** value at t ms after T0; null for a sample without a value */
  value: (t: number) => number | null;
  quality?: (t: number) => Quality;
  /** no sample at these times (a gap, a disconnected instrument) */
  silent?: (t: number) => boolean;
}

/** Samples of every channel every `periodMs` from T0 for `durationMs`, in time order. */
export function stream(specs: ChannelSpec[], durationMs: number, periodMs = 100): LiveSample[] {
  const out: LiveSample[] = [];
  const seq = new Map<string, number>();
  for (let t = 0; t < durationMs; t += periodMs) {
    for (const spec of specs) {
      if (spec.silent?.(t) === true) continue;
      const n = (seq.get(spec.instrument) ?? 0) + 1;
      seq.set(spec.instrument, n);
      out.push({
        gateway: 'gw-test',
        seq: n,
        instrument: spec.instrument,
        channel: spec.channel,
        ts: T0 + t,
        value: spec.value(t),
        unit: spec.unit ?? 'kN',
        quality: spec.quality?.(t) ?? 'good',
      });
    }
  }
  return out;
}

/** A clean signal: a slow sine with a little noise. */
export function clean(seed: number, level = 20, amplitude = 5, noise = 0.02): (t: number) => number {
  const rand = uniform(seed);
  return (t) => level + amplitude * Math.sin((2 * Math.PI * t) / 60_000) + noise * rand();
}

export interface Recorded {
  events: { name: keyof InspectionEvents; alarm: Alarm }[];
  raised: Alarm[];
}

/** Records every event of the engine. */
export function record(engine: RuleEngine): Recorded {
  const rec: Recorded = { events: [], raised: [] };
  for (const name of ['raised', 'escalated', 'recurred', 'returned', 'acknowledged', 'cleared'] as const) {
    engine.on(name, (alarm: Alarm) => rec.events.push({ name, alarm }));
  }
  engine.on('raised', (alarm) => rec.raised.push(alarm));
  return rec;
}

/** Feeds samples in batches of `batchMs` of stream time, as ingest would, and ticks the fake clock after each batch. */
export function feed(engine: RuleEngine, samples: LiveSample[], batchMs = 1000, clock?: { now: number }): Alarm[] {
  const raised: Alarm[] = [];
  let i = 0;
  const end = samples.length === 0 ? T0 : (samples[samples.length - 1]?.ts ?? T0);
  for (let batchEnd = T0 + batchMs; i < samples.length || batchEnd <= end + batchMs; batchEnd += batchMs) {
    const batch: LiveSample[] = [];
    while (i < samples.length && (samples[i]?.ts ?? Infinity) < batchEnd) {
      const s = samples[i];
      if (s !== undefined) batch.push(s);
      i++;
    }
    raised.push(...engine.evaluate(batch));
    if (clock !== undefined) clock.now = batchEnd;
    raised.push(...engine.tick(batchEnd));
  }
  return raised;
}
