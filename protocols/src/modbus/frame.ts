// Modbus application data units: MBAP (TCP) and RTU (serial, or RTU over TCP) framing, and the checks
// a client applies to every reply before it believes it.
import { LabtraceError } from '../errors.js';
import { crc16, encodeRequest, type ModbusExceptionCode, type ModbusRequest } from './pdu.js';

export const MBAP_HEADER = 7;

export function encodeMbap(transactionId: number, unitId: number, pdu: Uint8Array): Uint8Array {
  const out = new Uint8Array(MBAP_HEADER + pdu.length);
  out[0] = (transactionId >> 8) & 0xff;
  out[1] = transactionId & 0xff;
  out[4] = ((pdu.length + 1) >> 8) & 0xff;
  out[5] = (pdu.length + 1) & 0xff;
  out[6] = unitId;
  out.set(pdu, MBAP_HEADER);
  return out;
}

export interface MbapFrame {
  transactionId: number;
  protocolId: number;
  unitId: number;
  pdu: Uint8Array;
}

/** Splits complete MBAP frames off the front of `buffer`; returns them and the bytes left over. Throws on a header that cannot be Modbus. */
export function takeMbapFrames(buffer: Uint8Array): { frames: MbapFrame[]; rest: Uint8Array } {
  const frames: MbapFrame[] = [];
  let at = 0;
  while (buffer.length - at >= MBAP_HEADER) {
    const length = ((buffer[at + 4] ?? 0) << 8) | (buffer[at + 5] ?? 0);
    const protocolId = ((buffer[at + 2] ?? 0) << 8) | (buffer[at + 3] ?? 0);
    if (length < 2 || length > 254 || protocolId !== 0) {
      throw new LabtraceError('E_MODBUS_REPLY', `not a Modbus TCP frame (protocol id ${protocolId}, length ${length})`);
    }
    if (buffer.length - at < 6 + length) break;
    frames.push({
      transactionId: ((buffer[at] ?? 0) << 8) | (buffer[at + 1] ?? 0),
      protocolId,
      unitId: buffer[at + 6] ?? 0,
      pdu: buffer.slice(at + MBAP_HEADER, at + 6 + length),
    });
    at += 6 + length;
  }
  return { frames, rest: buffer.subarray(at) };
}

export function encodeRtu(unitId: number, pdu: Uint8Array): Uint8Array {
  const out = new Uint8Array(pdu.length + 3);
  out[0] = unitId;
  out.set(pdu, 1);
  const crc = crc16(out.subarray(0, pdu.length + 1));
  out[pdu.length + 1] = crc & 0xff;
  out[pdu.length + 2] = crc >> 8;
  return out;
}

/**
 * Length of the RTU reply frame that starts at buffer[0] (unit, PDU, CRC), for a request of function
 * `fc`; undefined while too few bytes have arrived to know.
 */
export function rtuReplyLength(buffer: Uint8Array, fc: number): number | undefined {
  if (buffer.length < 2) return undefined;
  const code = buffer[1] ?? 0;
  if (code === (fc | 0x80)) return 5;
  switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4:
      return buffer.length < 3 ? undefined : 5 + (buffer[2] ?? 0);
    case 5:
    case 6:
    case 15:
    case 16:
      return 8;
    default:
      return undefined;
  }
}

export function checkRtuCrc(frame: Uint8Array): boolean {
  if (frame.length < 4) return false;
  const crc = crc16(frame.subarray(0, frame.length - 2));
  return frame[frame.length - 2] === (crc & 0xff) && frame[frame.length - 1] === crc >> 8;
}

/** An exception answer from the device: the request reached it and was refused. */
export class ModbusExceptionError extends LabtraceError {
  readonly exception: ModbusExceptionCode;
  constructor(fc: number, exception: ModbusExceptionCode) {
    super('E_MODBUS_EXCEPTION', `Modbus exception ${exception} (${EXCEPTION_NAMES[exception] ?? 'unknown'}) to function ${fc}`);
    this.exception = exception;
  }
}

const EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  10: 'gateway path unavailable',
  11: 'gateway target failed to respond',
};

export type ModbusReply = { kind: 'registers'; registers: number[] } | { kind: 'bits'; bits: boolean[] } | { kind: 'written' };

/**
 * Checks a reply PDU against the request it claims to answer: function code, byte count and length,
 * and for writes the echoed address and quantity. Throws ModbusExceptionError for an exception
 * answer, and E_MODBUS_REPLY for anything that does not match (which must never be decoded).
 */
export function decodeReply(request: ModbusRequest, pdu: Uint8Array): ModbusReply {
  const fc = pdu[0] ?? 0;
  if (fc === (request.fc | 0x80)) {
    if (pdu.length !== 2) throw new LabtraceError('E_MODBUS_REPLY', `exception reply of ${pdu.length} bytes`);
    throw new ModbusExceptionError(request.fc, (pdu[1] ?? 0) as ModbusExceptionCode);
  }
  if (fc !== request.fc) throw new LabtraceError('E_MODBUS_REPLY', `reply has function ${fc}, request had ${request.fc}`);
  switch (request.fc) {
    case 1:
    case 2: {
      const bytes = Math.ceil(request.quantity / 8);
      if (pdu[1] !== bytes || pdu.length !== 2 + bytes)
        throw new LabtraceError('E_MODBUS_REPLY', `expected ${bytes} data bytes for ${request.quantity} bits, got ${pdu.length - 2}`);
      const bits: boolean[] = [];
      for (let i = 0; i < request.quantity; i++) bits.push((((pdu[2 + (i >> 3)] ?? 0) >> (i & 7)) & 1) === 1);
      return { kind: 'bits', bits };
    }
    case 3:
    case 4: {
      const bytes = request.quantity * 2;
      if (pdu[1] !== bytes || pdu.length !== 2 + bytes)
        throw new LabtraceError('E_MODBUS_REPLY', `expected ${bytes} data bytes for ${request.quantity} registers, got ${pdu.length - 2}`);
      const registers: number[] = [];
      for (let i = 0; i < request.quantity; i++) registers.push(((pdu[2 + 2 * i] ?? 0) << 8) | (pdu[3 + 2 * i] ?? 0));
      return { kind: 'registers', registers };
    }
    default: {
      const expected = encodeRequest(request).subarray(0, 5);
      if (pdu.length !== 5 || !expected.every((b, i) => pdu[i] === b))
        throw new LabtraceError('E_MODBUS_REPLY', 'write reply does not echo the request');
      return { kind: 'written' };
    }
  }
}
