// Decoding and encoding of Modbus register values for every data type and byte/word order.
// Registers are 16-bit big-endian words on the wire; an order names where each byte of the value
// sits in transmission order, A being the most significant byte (as in Telegraf and Neuron).
import { LabtraceError } from '../errors.js';

export const REGISTER_TYPES = [
  'bit',
  'int8h',
  'int8l',
  'uint8h',
  'uint8l',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'float16',
  'float32',
  'float64',
  'string',
] as const;
export type RegisterType = (typeof REGISTER_TYPES)[number];

export const BYTE_ORDERS_16 = ['AB', 'BA'] as const;
export const BYTE_ORDERS_32 = ['ABCD', 'DCBA', 'BADC', 'CDAB'] as const;
export const BYTE_ORDERS_64 = ['ABCDEFGH', 'HGFEDCBA', 'BADCFEHG', 'GHEFCDAB'] as const;
export const BYTE_ORDERS = [...BYTE_ORDERS_16, ...BYTE_ORDERS_32, ...BYTE_ORDERS_64] as const;
export type ByteOrder = (typeof BYTE_ORDERS)[number];

export type RegisterValue = number | string;

export interface RegisterFormat {
  type: RegisterType;
  /** Byte order; for 64-bit types a 32-bit order name is widened (ABCD -> ABCDEFGH, CDAB -> GHEFCDAB). */
  order?: ByteOrder | undefined;
  /** bit index 0..15 for type 'bit' */
  bit?: number | undefined;
  /** string length in registers */
  length?: number | undefined;
}

/** Number of 16-bit registers a value of this format occupies. */
export function registerCount(format: RegisterFormat): number {
  switch (format.type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return format.length ?? 1;
    default:
      return 1;
  }
}

function widen(order: ByteOrder | undefined, bytes: number): string {
  if (bytes === 2) {
    if (order === undefined || order === 'AB' || order === 'ABCD') return 'AB';
    if (order === 'BA' || order === 'BADC' || order === 'DCBA') return 'BA';
    return 'AB';
  }
  if (bytes === 4) {
    const o = order ?? 'ABCD';
    if (o.length === 4) return o;
    throw new LabtraceError('E_CODEC', `byte order ${o} does not fit a 32-bit value`);
  }
  const o = order ?? 'ABCDEFGH';
  if (o.length === 8) return o;
  const map: Record<string, string> = { ABCD: 'ABCDEFGH', DCBA: 'HGFEDCBA', BADC: 'BADCFEHG', CDAB: 'GHEFCDAB' };
  const wide = map[o];
  if (wide === undefined) throw new LabtraceError('E_CODEC', `byte order ${o} does not fit a 64-bit value`);
  return wide;
}

const WIRE = [new Uint8Array(2), new Uint8Array(4), undefined, new Uint8Array(8)];

function wireBytes(registers: ArrayLike<number>, offset: number, count: number): Uint8Array {
  if (registers.length < offset + count) {
    throw new LabtraceError('E_CODEC', `need ${count} registers at offset ${offset}, have ${registers.length - offset}`);
  }
  // numbers reuse a scratch buffer of their width; strings get their own
  const out = (count <= 4 ? WIRE[count - 1] : undefined) ?? new Uint8Array(count * 2);
  for (let i = 0; i < count; i++) {
    const r = registers[offset + i] ?? 0;
    out[2 * i] = (r >> 8) & 0xff;
    out[2 * i + 1] = r & 0xff;
  }
  return out;
}

function fromBigEndian(be: Uint8Array, order: string): Uint8Array {
  const out = new Uint8Array(be.length);
  for (let i = 0; i < be.length; i++) out[i] = be[order.charCodeAt(i) - 65] ?? 0;
  return out;
}

function toRegisters(wire: Uint8Array): number[] {
  const regs: number[] = [];
  for (let i = 0; i < wire.length; i += 2) regs.push(((wire[i] ?? 0) << 8) | (wire[i + 1] ?? 0));
  return regs;
}

function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function numberToFloat16(value: number): number {
  const f32 = new DataView(new ArrayBuffer(4));
  f32.setFloat32(0, value);
  const x = f32.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant = (mant | 0x800000) >> (1 - e);
    return sign | ((mant + 0x1000) >> 13);
  }
  const rounded = mant + 0x1000;
  if (rounded & 0x800000) {
    e += 1;
    if (e >= 0x1f) return sign | 0x7c00;
    return sign | (e << 10);
  }
  return sign | (e << 10) | (rounded >> 13);
}

/**
 * The shortest decimal that reads back as the same float32: an instrument that holds 48.39 sends
 * 0x4241 8F5C, which widens to 48.38999938964844; labtrace reports 48.39, which is the same float32.
 */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  // If p digits read back as x, so do p + 1: search the smallest p (at most 9 for a float32).
  let lo = 1;
  let hi = 9;
  let best = x;
  while (lo <= hi) {
    const p = (lo + hi) >> 1;
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === x) {
      best = candidate;
      hi = p - 1;
    } else lo = p + 1;
  }
  return best;
}

/** Decodes one value from `registers` starting at `offset`. */
export function decodeRegisters(registers: ArrayLike<number>, format: RegisterFormat, offset = 0): RegisterValue {
  const count = registerCount(format);
  const wire = wireBytes(registers, offset, count);
  switch (format.type) {
    case 'bit': {
      const bit = format.bit ?? 0;
      return ((((wire[0] ?? 0) << 8) | (wire[1] ?? 0)) >> bit) & 1;
    }
    case 'int8h':
      return ((wire[0] ?? 0) << 24) >> 24;
    case 'int8l':
      return ((wire[1] ?? 0) << 24) >> 24;
    case 'uint8h':
      return wire[0] ?? 0;
    case 'uint8l':
      return wire[1] ?? 0;
    case 'string': {
      // Characters in transmission order (high byte first) unless the order says BA; cut at the first NUL.
      const bytes = widen(format.order, 2) === 'BA' ? fromBigEndianPairs(wire) : wire;
      let end = bytes.indexOf(0);
      if (end < 0) end = bytes.length;
      return new TextDecoder().decode(bytes.subarray(0, end)).trimEnd();
    }
    default:
      break;
  }
  // Numbers: place each wire byte at its big-endian position in a shared scratch buffer (no allocation
  // per value; this runs for every point of every poll).
  const order = widen(format.order, wire.length);
  for (let i = 0; i < wire.length; i++) SCRATCH[order.charCodeAt(i) - 65] = wire[i] ?? 0;
  const view = SCRATCH_VIEW;
  switch (format.type) {
    case 'int16':
      return view.getInt16(0);
    case 'uint16':
      return view.getUint16(0);
    case 'float16':
      return float16ToNumber(view.getUint16(0));
    case 'int32':
      return view.getInt32(0);
    case 'uint32':
      return view.getUint32(0);
    case 'float32':
      return shortestFloat32(view.getFloat32(0));
    case 'int64':
      return Number(view.getBigInt64(0));
    case 'uint64':
      return Number(view.getBigUint64(0));
    case 'float64':
      return view.getFloat64(0);
  }
}

const SCRATCH = new Uint8Array(8);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

function fromBigEndianPairs(wire: Uint8Array): Uint8Array {
  const out = new Uint8Array(wire.length);
  for (let i = 0; i + 1 < wire.length; i += 2) {
    out[i] = wire[i + 1] ?? 0;
    out[i + 1] = wire[i] ?? 0;
  }
  return out;
}

/** Encodes a value into registers (the inverse of decodeRegisters). For 'bit' and 8-bit halves, `base` holds the other bits. */
export function encodeRegisters(value: RegisterValue, format: RegisterFormat, base = 0): number[] {
  const count = registerCount(format);
  if (format.type === 'string') {
    const text = typeof value === 'string' ? value : String(value);
    const bytes = new Uint8Array(count * 2);
    bytes.set(new TextEncoder().encode(text).subarray(0, count * 2));
    return toRegisters(widen(format.order, 2) === 'BA' ? fromBigEndianPairs(bytes) : bytes);
  }
  if (typeof value !== 'number' || (Number.isNaN(value) && !format.type.startsWith('float'))) {
    throw new LabtraceError('E_CODEC', `cannot encode ${String(value)} as ${format.type}`);
  }
  switch (format.type) {
    case 'bit': {
      const mask = 1 << (format.bit ?? 0);
      return [value ? (base | mask) & 0xffff : base & ~mask & 0xffff];
    }
    case 'int8h':
    case 'uint8h':
      return [((value & 0xff) << 8) | (base & 0xff)];
    case 'int8l':
    case 'uint8l':
      return [(base & 0xff00) | (value & 0xff)];
    default:
      break;
  }
  const be = new Uint8Array(count * 2);
  const view = new DataView(be.buffer);
  switch (format.type) {
    case 'int16':
      view.setInt16(0, value);
      break;
    case 'uint16':
      view.setUint16(0, value);
      break;
    case 'float16':
      view.setUint16(0, numberToFloat16(value));
      break;
    case 'int32':
      view.setInt32(0, value);
      break;
    case 'uint32':
      view.setUint32(0, value);
      break;
    case 'float32':
      view.setFloat32(0, value);
      break;
    case 'int64':
      view.setBigInt64(0, BigInt(Math.trunc(value)));
      break;
    case 'uint64':
      view.setBigUint64(0, BigInt(Math.trunc(value)));
      break;
    case 'float64':
      view.setFloat64(0, value);
      break;
  }
  return toRegisters(fromBigEndian(be, widen(format.order, be.length)));
}
