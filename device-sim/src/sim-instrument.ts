// One simulated instrument: its signal model, pinned values, active faults and (for Modbus) register
// image. It does no I/O: the endpoint it is attached to (TCP, RTU, MQTT) carries it to clients.
import { channelOf, LabtraceError, type DeviceProfile } from '@labtrace/protocols';
import type { InstrumentEndpoint } from './endpoint.js';
import { FaultSet, LINE_ONLY_FAULTS, MODBUS_ONLY_FAULTS, SCPI_FAULTS, type ActiveFault, type Fault, type FaultKind } from './faults.js';
import { createModel, type ModelKind, type SignalModel } from './models/index.js';
import { noise } from './models/model.js';
import { ModbusUnit } from './modbus-unit.js';
import { RegisterImage } from './register-image.js';

export type SimValue = number | boolean | string;

export class SimInstrument {
  readonly image: RegisterImage | undefined;
  readonly unit: ModbusUnit | undefined;
  readonly faults: FaultSet;
  private readonly model: SignalModel;
  private readonly pinned = new Map<string, SimValue>();
  private readonly channels: ReadonlySet<string>;
  /** channels that noise and drift apply to: numbers, not bits, flags or text */
  private readonly numeric: ReadonlySet<string>;
  private current: Record<string, SimValue> = {};
  private frozen: Record<string, SimValue> | undefined;
  private endpoint: InstrumentEndpoint | undefined;

  constructor(
    readonly profile: DeviceProfile,
    readonly modelKind: ModelKind,
    now: number,
    seed?: number,
    clock: () => number = Date.now,
  ) {
    this.model = createModel(modelKind, now, seed);
    this.faults = new FaultSet(noise((seed ?? 1) ^ 0x5eed));
    this.channels = new Set(profile.points.map(channelOf));
    if (profile.protocol === 'modbus') {
      this.image = new RegisterImage(profile);
      this.unit = new ModbusUnit(profile.unitId, this.image, this.faults, clock);
      this.numeric = new Set(profile.points.filter((p) => p.type !== 'bool' && p.type !== 'bit' && p.type !== 'string').map(channelOf));
    } else {
      this.image = undefined;
      this.unit = undefined;
      this.numeric = this.channels;
    }
    this.tick(now);
  }

  get id(): string {
    return this.profile.id;
  }

  /** The endpoint that carries this instrument (set once by the simulator). */
  get server(): InstrumentEndpoint {
    if (this.endpoint === undefined) throw new LabtraceError('E_CONFIG', `instrument ${this.id} is not attached to a server`);
    return this.endpoint;
  }

  attach(endpoint: InstrumentEndpoint): void {
    if (this.endpoint !== undefined) throw new LabtraceError('E_CONFIG', `instrument ${this.id} is already attached to ${this.endpoint.address}`);
    this.endpoint = endpoint;
  }

  /** Requests received (Modbus); undefined for an MQTT instrument. */
  get requests(): number | undefined {
    return this.unit?.requests;
  }

  /** Advances the model and writes every channel into the register image. */
  tick(now: number): void {
    const values: Record<string, SimValue> = { ...this.model.step(now) };
    for (const [channel, value] of this.pinned) values[channel] = value;
    this.faults.perturb(values, this.numeric, now);
    if (this.faults.has('stuck', now)) {
      this.frozen ??= { ...this.current };
      this.current = { ...this.frozen };
    } else {
      this.frozen = undefined;
      this.current = values;
    }
    if (this.image) {
      const swap = this.faults.has('wrong-byte-order', now);
      for (const [channel, value] of Object.entries(this.current)) this.image.write(channel, value, swap);
    }
  }

  values(): Record<string, SimValue> {
    return { ...this.current };
  }

  /** Holds channels at fixed values until unpinned. Returns the channels the profile does not know. */
  pin(values: Record<string, SimValue>, now: number): string[] {
    const unknown = Object.keys(values).filter((c) => !this.channels.has(c));
    if (unknown.length > 0) return unknown;
    for (const [channel, value] of Object.entries(values)) this.pinned.set(channel, value);
    this.tick(now);
    return [];
  }

  unpin(now: number): void {
    this.pinned.clear();
    this.tick(now);
  }

  /**
   * Activates a fault (replacing one of the same kind) and applies it at once. Throws E_BAD_REQUEST
   * when the fault does not apply to this instrument.
   */
  setFault(fault: Fault, now: number): ActiveFault {
    if (this.profile.protocol === 'scpi' && !SCPI_FAULTS.has(fault.kind)) {
      throw new LabtraceError(
        'E_BAD_REQUEST',
        `fault "${fault.kind}" does not apply to ${this.id}, a SCPI instrument (it takes ${[...SCPI_FAULTS].join(', ')})`,
      );
    }
    if (this.profile.protocol !== 'scpi' && fault.kind === 'error-queue') {
      throw new LabtraceError(
        'E_BAD_REQUEST',
        `fault "error-queue" applies to SCPI instruments; ${this.id} is a ${this.profile.protocol} instrument`,
      );
    }
    if (this.profile.protocol === 'mqtt' && MODBUS_ONLY_FAULTS.has(fault.kind)) {
      throw new LabtraceError('E_BAD_REQUEST', `fault "${fault.kind}" applies to Modbus instruments; ${this.id} publishes over MQTT`);
    }
    if (this.profile.protocol === 'balance' && MODBUS_ONLY_FAULTS.has(fault.kind)) {
      throw new LabtraceError('E_BAD_REQUEST', `fault "${fault.kind}" applies to Modbus instruments; ${this.id} is a balance`);
    }
    if (this.profile.protocol !== 'balance' && this.profile.protocol !== 'scpi' && LINE_ONLY_FAULTS.has(fault.kind)) {
      throw new LabtraceError('E_BAD_REQUEST', `fault "${fault.kind}" applies to balances; ${this.id} is a ${this.profile.protocol} instrument`);
    }
    if ((fault.kind === 'noise' || fault.kind === 'drift') && fault.channels !== undefined) {
      const unknown = fault.channels.filter((c) => !this.numeric.has(c));
      if (unknown.length > 0) throw new LabtraceError('E_BAD_REQUEST', `no numeric channel(s) ${unknown.join(', ')} on ${this.id}`);
    }
    const active = this.faults.set(fault, now);
    if (fault.kind === 'disconnect') this.endpoint?.interrupt(fault.ms);
    this.tick(now);
    return active;
  }

  clearFault(now: number, kind?: FaultKind): boolean {
    const had = this.faults.clear(kind);
    this.tick(now);
    return had;
  }

  activeFaults(now: number): ActiveFault[] {
    return this.faults.list(now);
  }
}
