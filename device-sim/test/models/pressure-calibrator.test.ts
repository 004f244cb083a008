// The pressure calibrator's signal, stepped through simulated time: setpoints in order, monotonic
// rate-limited ramps, settling within tolerance before each step ends, and status bits that agree.
import { describe, expect, test } from '@jest/globals';
import {
  PRESSURE_DWELL_MS,
  PRESSURE_RANGE_BAR,
  PRESSURE_STEPS,
  PRESSURE_TOLERANCE_BAR,
  PressureCalibratorModel,
} from '../../src/models/pressure-calibrator.js';

const DT = 100;
const T0 = 1_700_000_000_000;

interface Sample {
  t: number;
  pressure: number;
  setpoint: number;
  percent: number;
  stable: boolean;
  ramping: boolean;
  rising: boolean;
}

function run(steps: number, seed = 3): Sample[][] {
  const model = new PressureCalibratorModel(T0, seed);
  const out: Sample[][] = [];
  for (let k = 0; k < steps; k++) {
    const step: Sample[] = [];
    for (let t = k * PRESSURE_DWELL_MS; t < (k + 1) * PRESSURE_DWELL_MS; t += DT) {
      const v = model.step(T0 + t);
      step.push({
        t,
        pressure: v['pressure'] as number,
        setpoint: v['setpoint'] as number,
        percent: v['setpoint_percent'] as number,
        stable: v['stable'] as boolean,
        ramping: v['ramping'] as boolean,
        rising: v['rising'] as boolean,
      });
    }
    out.push(step);
  }
  return out;
}

const cycles = run(PRESSURE_STEPS.length * 2);

describe('pressure calibrator', () => {
  test('steps through 0, 25, 50, 75, 100 % of range and back, holding each setpoint for the dwell time', () => {
    const percents = cycles.map((s) => s[0]?.percent);
    expect(percents).toEqual([0, 25, 50, 75, 100, 75, 50, 25, 0, 25, 50, 75, 100, 75, 50, 25]);
    for (const step of cycles) {
      expect(new Set(step.map((s) => s.setpoint)).size).toBe(1);
      expect(step[0]?.setpoint).toBeCloseTo(((step[0]?.percent ?? 0) / 100) * PRESSURE_RANGE_BAR, 12);
    }
  });

  test('each change of setpoint is a monotonic ramp toward it, no faster than the slew rate', () => {
    for (const step of cycles.slice(1)) {
      const target = step[0]?.setpoint ?? 0;
      const up = (step[0]?.pressure ?? 0) < target;
      // far from the target the ramp dominates the 0.001 % noise
      const ramp = step.filter((s) => Math.abs(target - s.pressure) > 0.01 * PRESSURE_RANGE_BAR);
      expect(ramp.length).toBeGreaterThan(10);
      for (let i = 1; i < ramp.length; i++) {
        const d = (ramp[i]?.pressure ?? 0) - (ramp[i - 1]?.pressure ?? 0);
        if (up) expect(d).toBeGreaterThan(0);
        else expect(d).toBeLessThan(0);
        expect(Math.abs(d)).toBeLessThanOrEqual((2 * DT) / 1000 + 1e-3);
      }
      expect(ramp.every((s) => s.ramping && s.rising === up && !s.stable)).toBe(true);
    }
  });

  test('settles within 0.01 % of range well before the step ends, and says so', () => {
    for (const step of cycles) {
      const target = step[0]?.setpoint ?? 0;
      const last = step.at(-1);
      expect(Math.abs((last?.pressure ?? Infinity) - target)).toBeLessThanOrEqual(PRESSURE_TOLERANCE_BAR);
      expect(last).toMatchObject({ stable: true, ramping: false, rising: false });
      const settledAt = step.findIndex((s) => s.stable);
      expect(settledAt).toBeGreaterThanOrEqual(0);
      expect(settledAt * DT).toBeLessThan(0.75 * PRESSURE_DWELL_MS);
      // once stable, it stays within tolerance for the rest of the step
      for (const s of step.slice(settledAt)) expect(Math.abs(s.pressure - target)).toBeLessThanOrEqual(PRESSURE_TOLERANCE_BAR);
    }
  });

  test('the same seed gives the same signal; another seed other noise', () => {
    const a = run(2, 9).flat();
    const b = run(2, 9).flat();
    const c = run(2, 10).flat();
    expect(a.map((s) => s.pressure)).toEqual(b.map((s) => s.pressure));
    expect(a.map((s) => s.pressure)).not.toEqual(c.map((s) => s.pressure));
  });
});
