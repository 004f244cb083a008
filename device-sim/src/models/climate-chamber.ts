// Climate chamber: ramps between setpoints and soaks, with a first-order thermal lag.
import { noise, type ChannelValues, type SignalModel } from './model.js';

const PROGRAM = [
  { setpoint: 23, humidity: 50, holdMs: 60_000 },
  { setpoint: 40, humidity: 75, holdMs: 120_000 },
  { setpoint: -10, humidity: 20, holdMs: 120_000 },
];

export class ClimateChamberModel implements SignalModel {
  readonly kind = 'climate-chamber';
  private temperature = 22.4;
  private humidity = 48;
  private last: number | undefined;
  private readonly start: number;
  private readonly rand: () => number;

  constructor(now: number, seed = 1) {
    this.start = now;
    this.rand = noise(seed);
  }

  step(now: number): ChannelValues {
    const dt = this.last === undefined ? 0 : Math.max(0, now - this.last) / 1000;
    this.last = now;
    const cycle = PROGRAM.reduce((s, p) => s + p.holdMs, 0);
    let t = (now - this.start) % cycle;
    let stage = PROGRAM[0];
    for (const p of PROGRAM) {
      stage = p;
      if (t < p.holdMs) break;
      t -= p.holdMs;
    }
    const target = stage ?? { setpoint: 23, humidity: 50 };
    // Time constants of a small chamber: ~40 s for air temperature, ~25 s for humidity.
    this.temperature += (target.setpoint - this.temperature) * (1 - Math.exp(-dt / 40)) + this.rand() * 0.04;
    this.humidity += (target.humidity - this.humidity) * (1 - Math.exp(-dt / 25)) + this.rand() * 0.2;
    this.humidity = Math.min(98, Math.max(5, this.humidity));
    return {
      temperature: Math.round(this.temperature * 1000) / 1000,
      humidity: Math.round(this.humidity * 100) / 100,
      setpoint: target.setpoint,
      door_open: false,
    };
  }
}
