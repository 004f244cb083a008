// One simulated instrument: its signal model, register image and Modbus TCP server.
import type { DeviceProfile } from '@labtrace/protocols';
import { createModel, type ModelKind, type SignalModel } from './models/index.js';
import { ModbusTcpServer } from './modbus-tcp-server.js';
import { RegisterImage } from './register-image.js';

export type SimValue = number | boolean | string;

export class SimInstrument {
  readonly image: RegisterImage;
  readonly server: ModbusTcpServer;
  private readonly model: SignalModel;
  private readonly pinned = new Map<string, SimValue>();
  private current: Record<string, SimValue> = {};

  constructor(
    readonly profile: DeviceProfile,
    readonly modelKind: ModelKind,
    host: string,
    port: number,
    now: number,
    seed?: number,
  ) {
    this.image = new RegisterImage(profile);
    this.model = createModel(modelKind, now, seed);
    this.server = new ModbusTcpServer({ host, port, unitId: profile.unitId, image: this.image });
    this.tick(now);
  }

  get id(): string {
    return this.profile.id;
  }

  async start(): Promise<void> {
    await this.server.start();
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  /** Advances the model and writes every channel into the register image. */
  tick(now: number): void {
    const values: Record<string, SimValue> = { ...this.model.step(now) };
    for (const [channel, value] of this.pinned) values[channel] = value;
    for (const [channel, value] of Object.entries(values)) this.image.write(channel, value);
    this.current = values;
  }

  values(): Record<string, SimValue> {
    return { ...this.current };
  }

  /** Holds channels at fixed values until unpinned. Returns the channels the profile does not know. */
  pin(values: Record<string, SimValue>, now: number): string[] {
    const known = new Set(this.image.channels());
    const unknown = Object.keys(values).filter((c) => !known.has(c));
    if (unknown.length > 0) return unknown;
    for (const [channel, value] of Object.entries(values)) this.pinned.set(channel, value);
    this.tick(now);
    return [];
  }

  unpin(now: number): void {
    this.pinned.clear();
    this.tick(now);
  }
}
