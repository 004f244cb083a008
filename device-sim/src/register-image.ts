// The register and bit tables of one simulated instrument, written from engineering values by its profile.
import { channelOf, encodeRegisters, formatOf, pointWidth, protocolAddress, type ModbusProfile, type ProfilePoint } from '@labtrace/protocols';

export type RegisterSet = ProfilePoint['register'];

export class RegisterImage {
  readonly holding = new Uint16Array(0x10000);
  readonly input = new Uint16Array(0x10000);
  readonly coil = new Uint8Array(0x10000);
  readonly discrete = new Uint8Array(0x10000);
  private readonly mapped: Record<RegisterSet, Uint8Array> = {
    holding: new Uint8Array(0x10000),
    input: new Uint8Array(0x10000),
    coil: new Uint8Array(0x10000),
    discrete: new Uint8Array(0x10000),
  };
  private readonly byChannel = new Map<string, ProfilePoint>();

  constructor(private readonly profile: ModbusProfile) {
    for (const point of profile.points) {
      this.byChannel.set(channelOf(point), point);
      const at = protocolAddress(profile, point);
      const n = pointWidth(point);
      this.mapped[point.register].fill(1, at, Math.min(0x10000, at + n));
    }
  }

  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  /** True when every address of [address, address + quantity) belongs to some point. */
  isMapped(set: RegisterSet, address: number, quantity: number): boolean {
    const table = this.mapped[set];
    for (let a = address; a < address + quantity; a++) if (table[a] !== 1) return false;
    return true;
  }

  /**
   * Writes an engineering value (after scale and offset) into the tables. Returns false for an unknown
   * channel. `swapWords` serves 32- and 64-bit values with their words reversed (a "wrong-byte-order" fault).
   */
  write(channel: string, value: number | boolean | string, swapWords = false): boolean {
    const point = this.byChannel.get(channel);
    if (point === undefined) return false;
    const at = protocolAddress(this.profile, point);
    const format = formatOf(point);
    if (format === undefined) {
      const table = point.register === 'coil' ? this.coil : this.discrete;
      table[at] = value === true || value === 1 ? 1 : 0;
      return true;
    }
    const table = point.register === 'input' ? this.input : this.holding;
    let raw: number | string;
    if (point.type === 'string') raw = String(value);
    else {
      const num = typeof value === 'boolean' ? Number(value) : Number(value);
      raw = (num - point.offset) / point.scale;
      if (!point.type.startsWith('float')) raw = saturate(Math.round(raw), point.type);
    }
    const regs = encodeRegisters(raw, format, table[at] ?? 0);
    if (swapWords && regs.length > 1 && point.type !== 'string') regs.reverse();
    table.set(regs, at);
    return true;
  }
}

const INTEGER_RANGE: Partial<Record<ProfilePoint['type'], [number, number]>> = {
  int8h: [-128, 127],
  int8l: [-128, 127],
  uint8h: [0, 255],
  uint8l: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** An integer register holds the nearest value it can, as an instrument's display saturates (noise on 0 is not 65535). */
function saturate(value: number, type: ProfilePoint['type']): number {
  const range = INTEGER_RANGE[type];
  if (range === undefined || Number.isNaN(value)) return Number.isNaN(value) ? 0 : value;
  return Math.min(range[1], Math.max(range[0], value));
}
