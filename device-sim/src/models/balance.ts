// Analytical balance: a reference weight is placed, the reading rings down as a damped oscillation to
// the weight's mass, stays there (stable), then the weight is lifted and the reading rings down to zero.
import { noise, type ChannelValues, type SignalModel } from './model.js';

/** Reference weights placed in turn, as calibrated (g). */
export const BALANCE_LOADS_G = [200.0003, 99.9998, 50.0001, 20.0002] as const;
/** Readability: the displayed resolution (g). */
export const BALANCE_READABILITY_G = 0.0001;
export const BALANCE_EMPTY_MS = 7000;
export const BALANCE_LOADED_MS = 15_000;
// Damping and natural frequency of the cell: about 37 % overshoot, within 0.1 mg of 200 g in 5.5 s.
const ZETA = 0.3;
const OMEGA_N = 2 * Math.PI * 1.5;
const DECAY = ZETA * OMEGA_N;
const OMEGA_D = OMEGA_N * Math.sqrt(1 - ZETA * ZETA);
const NOISE_G = BALANCE_READABILITY_G * 0.6;

/** Unit step response of the weighing cell (an underdamped second-order system). */
function stepResponse(t: number): number {
  if (t <= 0) return 0;
  return 1 - Math.exp(-DECAY * t) * (Math.cos(OMEGA_D * t) + (ZETA / Math.sqrt(1 - ZETA * ZETA)) * Math.sin(OMEGA_D * t));
}

/** Upper bound of |response - 1| after t seconds, per unit step. */
function envelope(t: number): number {
  return Math.exp(-DECAY * Math.max(0, t)) / Math.sqrt(1 - ZETA * ZETA);
}

export class BalanceModel implements SignalModel {
  readonly kind = 'balance';
  private readonly start: number;
  private readonly rand: () => number;

  constructor(now: number, seed = 4) {
    this.start = now;
    this.rand = noise(seed);
  }

  step(now: number): ChannelValues {
    const cycleMs = BALANCE_EMPTY_MS + BALANCE_LOADED_MS;
    const elapsed = Math.max(0, now - this.start);
    const cycle = Math.floor(elapsed / cycleMs);
    const inCycle = elapsed - cycle * cycleMs;
    const load = BALANCE_LOADS_G[cycle % BALANCE_LOADS_G.length] ?? 0;
    const previous = cycle === 0 ? undefined : (BALANCE_LOADS_G[(cycle - 1) % BALANCE_LOADS_G.length] ?? 0);
    let target: number;
    let from: number;
    let since: number;
    if (inCycle < BALANCE_EMPTY_MS) {
      // The previous weight was lifted at the start of this cycle (none before the first one).
      target = 0;
      from = previous ?? 0;
      since = inCycle / 1000;
    } else {
      target = load;
      from = 0;
      since = (inCycle - BALANCE_EMPTY_MS) / 1000;
    }
    const raw = from + (target - from) * stepResponse(since) + this.rand() * NOISE_G;
    const stable = Math.abs(target - from) * envelope(since) < BALANCE_READABILITY_G / 2;
    return {
      mass: Math.round(raw / BALANCE_READABILITY_G) / Math.round(1 / BALANCE_READABILITY_G),
      unit: 'g',
      stable,
      weighings: inCycle < BALANCE_EMPTY_MS ? cycle : cycle + 1,
    };
  }
}
