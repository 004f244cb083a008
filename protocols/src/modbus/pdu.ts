// Modbus application PDUs (function code first, no MBAP header or CRC), for servers and checks.
import { LabtraceError } from '../errors.js';

export const ModbusException = {
  IllegalFunction: 1,
  IllegalDataAddress: 2,
  IllegalDataValue: 3,
  ServerDeviceFailure: 4,
  Acknowledge: 5,
  ServerDeviceBusy: 6,
} as const;
export type ModbusExceptionCode = (typeof ModbusException)[keyof typeof ModbusException];

export type ModbusRequest =
  | { fc: 1 | 2 | 3 | 4; address: number; quantity: number }
  | { fc: 5; address: number; value: boolean }
  | { fc: 6; address: number; value: number }
  | { fc: 15; address: number; values: boolean[] }
  | { fc: 16; address: number; values: number[] };

/** Largest quantities a request may ask for (Modbus Application Protocol 1.1b3, 6.1-6.12). */
export const MAX_READ_BITS = 2000;
export const MAX_READ_REGISTERS = 125;
export const MAX_WRITE_BITS = 1968;
export const MAX_WRITE_REGISTERS = 123;

export class ModbusPduError extends LabtraceError {
  readonly exception: ModbusExceptionCode;
  constructor(exception: ModbusExceptionCode, message: string) {
    super('E_MODBUS_REPLY', message);
    this.exception = exception;
  }
}

function u16(pdu: Uint8Array, at: number): number {
  return ((pdu[at] ?? 0) << 8) | (pdu[at + 1] ?? 0);
}

/** Parses a request PDU; throws ModbusPduError carrying the exception code a server should answer with. */
export function decodeRequest(pdu: Uint8Array): ModbusRequest {
  const fc = pdu[0];
  const need = (n: number): void => {
    if (pdu.length < n) throw new ModbusPduError(ModbusException.IllegalDataValue, `function ${fc}: PDU of ${pdu.length} bytes, need ${n}`);
  };
  switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4: {
      need(5);
      const address = u16(pdu, 1);
      const quantity = u16(pdu, 3);
      const max = fc <= 2 ? MAX_READ_BITS : MAX_READ_REGISTERS;
      if (quantity < 1 || quantity > max) throw new ModbusPduError(ModbusException.IllegalDataValue, `quantity ${quantity} outside 1..${max}`);
      if (address + quantity > 0x10000) throw new ModbusPduError(ModbusException.IllegalDataAddress, `address ${address}+${quantity} past 65535`);
      return { fc, address, quantity };
    }
    case 5: {
      need(5);
      const raw = u16(pdu, 3);
      if (raw !== 0xff00 && raw !== 0x0000)
        throw new ModbusPduError(ModbusException.IllegalDataValue, `coil value 0x${raw.toString(16)} is neither 0xFF00 nor 0x0000`);
      return { fc, address: u16(pdu, 1), value: raw === 0xff00 };
    }
    case 6:
      need(5);
      return { fc, address: u16(pdu, 1), value: u16(pdu, 3) };
    case 15: {
      need(6);
      const address = u16(pdu, 1);
      const quantity = u16(pdu, 3);
      const byteCount = pdu[5] ?? 0;
      if (quantity < 1 || quantity > MAX_WRITE_BITS || byteCount !== Math.ceil(quantity / 8)) {
        throw new ModbusPduError(ModbusException.IllegalDataValue, `bad quantity ${quantity} / byte count ${byteCount}`);
      }
      need(6 + byteCount);
      const values: boolean[] = [];
      for (let i = 0; i < quantity; i++) values.push((((pdu[6 + (i >> 3)] ?? 0) >> (i & 7)) & 1) === 1);
      return { fc, address, values };
    }
    case 16: {
      need(6);
      const address = u16(pdu, 1);
      const quantity = u16(pdu, 3);
      const byteCount = pdu[5] ?? 0;
      if (quantity < 1 || quantity > MAX_WRITE_REGISTERS || byteCount !== quantity * 2) {
        throw new ModbusPduError(ModbusException.IllegalDataValue, `bad quantity ${quantity} / byte count ${byteCount}`);
      }
      need(6 + byteCount);
      const values: number[] = [];
      for (let i = 0; i < quantity; i++) values.push(u16(pdu, 6 + 2 * i));
      return { fc, address, values };
    }
    default:
      throw new ModbusPduError(ModbusException.IllegalFunction, `function code ${String(fc)} not supported`);
  }
}

export function encodeRequest(req: ModbusRequest): Uint8Array {
  switch (req.fc) {
    case 1:
    case 2:
    case 3:
    case 4:
      return Uint8Array.of(req.fc, req.address >> 8, req.address & 0xff, req.quantity >> 8, req.quantity & 0xff);
    case 5:
      return Uint8Array.of(5, req.address >> 8, req.address & 0xff, req.value ? 0xff : 0, 0);
    case 6:
      return Uint8Array.of(6, req.address >> 8, req.address & 0xff, req.value >> 8, req.value & 0xff);
    case 15: {
      const n = req.values.length;
      const bytes = packBits(req.values);
      return Uint8Array.of(15, req.address >> 8, req.address & 0xff, n >> 8, n & 0xff, bytes.length, ...bytes);
    }
    case 16: {
      const n = req.values.length;
      const out = [16, req.address >> 8, req.address & 0xff, n >> 8, n & 0xff, n * 2];
      for (const v of req.values) out.push((v >> 8) & 0xff, v & 0xff);
      return Uint8Array.from(out);
    }
  }
}

function packBits(bits: ArrayLike<boolean | number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >> 3] = (out[i >> 3] ?? 0) | (1 << (i & 7));
  return out;
}

export function encodeReadBitsResponse(fc: 1 | 2, bits: ArrayLike<boolean | number>): Uint8Array {
  const packed = packBits(bits);
  const out = new Uint8Array(2 + packed.length);
  out[0] = fc;
  out[1] = packed.length;
  out.set(packed, 2);
  return out;
}

export function encodeReadRegistersResponse(fc: 3 | 4, registers: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(2 + registers.length * 2);
  out[0] = fc;
  out[1] = registers.length * 2;
  for (let i = 0; i < registers.length; i++) {
    const r = registers[i] ?? 0;
    out[2 + 2 * i] = (r >> 8) & 0xff;
    out[3 + 2 * i] = r & 0xff;
  }
  return out;
}

/** The normal response to a write request: FC 5/6 echo the request, FC 15/16 echo address and quantity. */
export function encodeWriteResponse(req: ModbusRequest): Uint8Array {
  const full = encodeRequest(req);
  return req.fc === 15 || req.fc === 16 ? full.subarray(0, 5) : full;
}

export function encodeException(fc: number, code: ModbusExceptionCode): Uint8Array {
  return Uint8Array.of((fc | 0x80) & 0xff, code);
}

/** CRC-16/MODBUS of an RTU frame body. */
export function crc16(bytes: ArrayLike<number>): number {
  let crc = 0xffff;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i] ?? 0;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}
