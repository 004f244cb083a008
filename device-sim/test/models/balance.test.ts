// The balance's signal, stepped through simulated time: a weight placed rings down as a damped
// oscillation to its mass, is reported stable within the readability, and the reading returns to zero.
import { describe, expect, test } from '@jest/globals';
import { BALANCE_EMPTY_MS, BALANCE_LOADED_MS, BALANCE_LOADS_G, BALANCE_READABILITY_G, BalanceModel } from '../../src/models/balance.js';

const DT = 20;
const T0 = 1_700_000_000_000;
const CYCLE = BALANCE_EMPTY_MS + BALANCE_LOADED_MS;
const TOLERANCE = 2 * BALANCE_READABILITY_G;

interface Sample {
  t: number;
  mass: number;
  stable: boolean;
  unit: string;
  weighings: number;
}

const model = new BalanceModel(T0);
const samples: Sample[] = [];
for (let t = 0; t < CYCLE * BALANCE_LOADS_G.length + BALANCE_EMPTY_MS; t += DT) {
  const v = model.step(T0 + t);
  samples.push({ t, mass: v['mass'] as number, stable: v['stable'] as boolean, unit: v['unit'] as string, weighings: v['weighings'] as number });
}
const between = (from: number, to: number): Sample[] => samples.filter((s) => s.t >= from && s.t < to);

describe('balance', () => {
  test('reads zero, stable, before the first weight', () => {
    for (const s of between(0, BALANCE_EMPTY_MS)) {
      expect(Math.abs(s.mass)).toBeLessThanOrEqual(TOLERANCE);
      expect(s.stable).toBe(true);
    }
  });

  test.each(BALANCE_LOADS_G.map((load, i) => [load, i] as const))('a %s g weight rings down to its mass and is reported stable', (load, i) => {
    const placed = i * CYCLE + BALANCE_EMPTY_MS;
    const loaded = between(placed, placed + BALANCE_LOADED_MS);
    // damped oscillation: it overshoots, crosses the load several times, and each swing is smaller
    expect(Math.max(...loaded.map((s) => s.mass))).toBeGreaterThan(load * 1.1);
    const swings = loaded.filter((s) => Math.abs(s.mass - load) > 0.001 * load);
    const crossings = swings.filter((s, k) => k > 0 && Math.sign(s.mass - load) !== Math.sign((swings[k - 1]?.mass ?? 0) - load)).length;
    expect(crossings).toBeGreaterThanOrEqual(4);
    const peaks = loaded
      .filter((s, k) => k > 0 && k < loaded.length - 1 && Math.abs(s.mass - load) > 0.01 * load)
      .filter((s, k, all) => {
        const prev = all[k - 1];
        const next = all[k + 1];
        return (
          prev !== undefined &&
          next !== undefined &&
          Math.abs(s.mass - load) >= Math.abs(prev.mass - load) &&
          Math.abs(s.mass - load) >= Math.abs(next.mass - load)
        );
      })
      .map((s) => Math.abs(s.mass - load));
    for (let k = 1; k < peaks.length; k++) expect(peaks[k]).toBeLessThan(peaks[k - 1] ?? Infinity);
    // not stable at first; stable within 10 s, and from then on within the readability
    expect(loaded[1]?.stable).toBe(false);
    const settled = loaded.findIndex((s) => s.stable);
    expect(settled).toBeGreaterThan(0);
    expect((loaded[settled]?.t ?? Infinity) - placed).toBeLessThan(10_000);
    for (const s of loaded.slice(settled)) {
      expect(s.stable).toBe(true);
      expect(Math.abs(s.mass - load)).toBeLessThanOrEqual(TOLERANCE);
    }
    expect(loaded.every((s) => s.weighings === i + 1 && s.unit === 'g')).toBe(true);
  });

  test('after a weight is lifted the reading returns to zero before the next one', () => {
    for (let i = 1; i <= BALANCE_LOADS_G.length; i++) {
      const lifted = i * CYCLE;
      const empty = between(lifted, lifted + BALANCE_EMPTY_MS);
      expect(empty[0]?.stable).toBe(false);
      const last = empty.at(-1);
      expect(Math.abs(last?.mass ?? Infinity)).toBeLessThanOrEqual(TOLERANCE);
      expect(last?.stable).toBe(true);
    }
  });

  test('readings are rounded to the readability', () => {
    for (const s of samples) expect(Math.abs(s.mass / BALANCE_READABILITY_G - Math.round(s.mass / BALANCE_READABILITY_G))).toBeLessThan(1e-6);
  });
});
