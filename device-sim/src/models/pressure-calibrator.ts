// Pressure calibrator (a controller such as a Druck PACE): steps its setpoint through 0, 25, 50, 75 and
// 100 % of range and back down, slewing at a limited rate and settling exponentially on each setpoint.
import { noise, type ChannelValues, type SignalModel } from './model.js';

export const PRESSURE_RANGE_BAR = 20;
/** Setpoints in % of range, one cycle. */
export const PRESSURE_STEPS = [0, 25, 50, 75, 100, 75, 50, 25] as const;
export const PRESSURE_DWELL_MS = 15_000;
/** Within this distance of the setpoint (0.01 % of range) the controller counts as on target. */
export const PRESSURE_TOLERANCE_BAR = PRESSURE_RANGE_BAR * 1e-4;
const SLEW_BAR_PER_S = 2;
const SETTLE_TAU_S = 0.8;
const STABLE_AFTER_MS = 1000;
const NOISE_BAR = PRESSURE_RANGE_BAR * 1e-5;
const SUBSTEP_S = 0.05;
const MAX_SUBSTEPS = 2000;

export class PressureCalibratorModel implements SignalModel {
  readonly kind = 'pressure-calibrator';
  private pressure = 0;
  private last: number | undefined;
  private onTargetSince: number | undefined;
  private readonly start: number;
  private readonly rand: () => number;

  constructor(now: number, seed = 3) {
    this.start = now;
    this.rand = noise(seed);
  }

  step(now: number): ChannelValues {
    const elapsed = Math.max(0, now - this.start);
    const stepIndex = Math.floor(elapsed / PRESSURE_DWELL_MS) % PRESSURE_STEPS.length;
    const percent = PRESSURE_STEPS[stepIndex] ?? 0;
    const setpoint = (percent / 100) * PRESSURE_RANGE_BAR;

    // A rate-limited first-order loop: a straight ramp far from the setpoint, an exponential approach near it.
    const dt = this.last === undefined ? 0 : Math.max(0, now - this.last) / 1000;
    this.last = now;
    const substeps = Math.ceil(dt / SUBSTEP_S);
    if (substeps > MAX_SUBSTEPS) {
      this.pressure = setpoint; // a long gap between steps: the controller got there meanwhile
    } else {
      const h = dt / Math.max(1, substeps);
      const limit = SLEW_BAR_PER_S * h;
      for (let i = 0; i < substeps; i++) {
        const approach = (setpoint - this.pressure) * (1 - Math.exp(-h / SETTLE_TAU_S));
        this.pressure += Math.max(-limit, Math.min(limit, approach));
      }
    }

    const error = setpoint - this.pressure;
    const onTarget = Math.abs(error) <= PRESSURE_TOLERANCE_BAR;
    if (!onTarget) this.onTargetSince = undefined;
    else this.onTargetSince ??= now;
    const stable = onTarget && this.onTargetSince !== undefined && now - this.onTargetSince >= STABLE_AFTER_MS;
    return {
      pressure: this.pressure + this.rand() * NOISE_BAR,
      setpoint,
      setpoint_percent: percent,
      stable,
      ramping: !onTarget,
      rising: error > PRESSURE_TOLERANCE_BAR,
    };
  }
}
