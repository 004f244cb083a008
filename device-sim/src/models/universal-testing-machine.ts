// Universal testing machine: a tensile specimen pulled at constant crosshead speed to break, then the next one.
import { noise, type ChannelValues, type SignalModel } from './model.js';

const SPEED_MM_S = 0.5;
const YIELD_MM = 1.2;
const UTS_MM = 9;
const BREAK_MM = 12;
const E_KN_PER_MM = 25; // stiffness of a 10 mm steel bar over its gauge length
/** the peak (maximum) force of every specimen, kN: what a run's Fm should read */
export const UTS_KN = 42;
const PAUSE_MS = 3000;

export class UniversalTestingMachineModel implements SignalModel {
  readonly kind = 'universal-testing-machine';
  private readonly start: number;
  private readonly rand: () => number;

  constructor(now: number, seed = 2) {
    this.start = now;
    this.rand = noise(seed);
  }

  step(now: number): ChannelValues {
    const testMs = (BREAK_MM / SPEED_MM_S) * 1000 + PAUSE_MS;
    const elapsed = now - this.start;
    const specimen = Math.floor(elapsed / testMs) + 1;
    const t = (elapsed % testMs) / 1000;
    const extension = Math.min(BREAK_MM, t * SPEED_MM_S);
    let force: number;
    const yieldKn = E_KN_PER_MM * YIELD_MM;
    if (extension >= BREAK_MM) force = 0;
    else if (extension <= YIELD_MM) force = E_KN_PER_MM * extension;
    else if (extension <= UTS_MM) {
      const x = (extension - YIELD_MM) / (UTS_MM - YIELD_MM);
      force = yieldKn + (UTS_KN - yieldKn) * Math.sqrt(x);
    } else {
      const x = (extension - UTS_MM) / (BREAK_MM - UTS_MM);
      force = UTS_KN * (1 - 0.25 * x * x);
    }
    if (force > 0) force += this.rand() * 0.05;
    return {
      force: Math.round(force * 1000) / 1000,
      extension: Math.round(extension * 1000) / 1000,
      specimen,
    };
  }
}
