// The device simulator: serves every configured instrument and advances their signals on a tick.
import { ControlApi } from './control-api.js';
import type { ResolvedSimInstrument, SimConfig } from './config.js';
import type { Logger } from './log.js';
import { SimInstrument } from './sim-instrument.js';

export interface SimulatorOptions {
  config: Pick<SimConfig, 'host' | 'tickMs' | 'control'>;
  instruments: ResolvedSimInstrument[];
  logger?: Logger;
  now?: () => number;
}

export class Simulator {
  readonly instruments = new Map<string, SimInstrument>();
  readonly control: ControlApi | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: SimulatorOptions) {
    this.now = options.now ?? Date.now;
    const start = this.now();
    for (const entry of options.instruments) {
      const instrument = new SimInstrument(entry.profile, entry.model, options.config.host, entry.port, start, entry.seed);
      instrument.server.on('clientError', (err) => options.logger?.debug({ instrument: instrument.id, err: err.message }, 'client connection error'));
      this.instruments.set(instrument.id, instrument);
    }
    const control = options.config.control;
    this.control = control ? new ControlApi(this.instruments, control.host, control.port, this.now) : undefined;
  }

  async start(): Promise<void> {
    const started: SimInstrument[] = [];
    try {
      for (const instrument of this.instruments.values()) {
        await instrument.start();
        started.push(instrument);
        this.options.logger?.info({ instrument: instrument.id, model: instrument.modelKind, port: instrument.server.port }, 'instrument listening');
      }
      await this.control?.start();
    } catch (err) {
      await Promise.all(started.map((i) => i.stop()));
      throw err;
    }
    if (this.control) this.options.logger?.info({ port: this.control.port }, 'control API listening');
    this.timer = setInterval(() => {
      const now = this.now();
      for (const instrument of this.instruments.values()) instrument.tick(now);
    }, this.options.config.tickMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.control?.stop();
    await Promise.all([...this.instruments.values()].map((i) => i.stop()));
  }
}
