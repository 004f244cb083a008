import { describe, expect, test } from '@jest/globals';
import {
  crc16,
  decodeRequest,
  encodeException,
  encodeReadBitsResponse,
  encodeReadRegistersResponse,
  encodeRequest,
  encodeWriteResponse,
  ModbusPduError,
  type ModbusRequest,
} from '../../src/index.js';
import { hex, readVector, unhex } from '../vectors.js';

interface PduExamples {
  examples: { fc: number; name: string; request: string; response: string }[];
  rtuFrames: { request: string; response: string }[];
}

const vectors = readVector<PduExamples>('modbus/pdu-examples.json');

function bitsOf(response: Uint8Array, quantity: number): boolean[] {
  const bits: boolean[] = [];
  for (let i = 0; i < quantity; i++) bits.push((((response[2 + (i >> 3)] ?? 0) >> (i & 7)) & 1) === 1);
  return bits;
}

function registersOf(response: Uint8Array): number[] {
  const regs: number[] = [];
  for (let i = 2; i < response.length; i += 2) regs.push(((response[i] ?? 0) << 8) | (response[i + 1] ?? 0));
  return regs;
}

describe('published request/response PDUs', () => {
  for (const ex of vectors.examples) {
    test(`${ex.name}`, () => {
      const response = unhex(ex.response);
      if (((response[0] ?? 0) & 0x80) !== 0) {
        // An exception answer: the request parses, and the exception encodes byte for byte.
        expect(decodeRequest(unhex(ex.request)).fc).toBe(ex.fc);
        expect(hex(encodeException(ex.fc, response[1] as 2))).toBe(ex.response);
        return;
      }
      const req: ModbusRequest = decodeRequest(unhex(ex.request));
      expect(req.fc).toBe(ex.fc);
      expect(hex(encodeRequest(req))).toBe(ex.request);
      let encoded: Uint8Array;
      if (req.fc === 1 || req.fc === 2) encoded = encodeReadBitsResponse(req.fc, bitsOf(response, req.quantity));
      else if (req.fc === 3 || req.fc === 4) encoded = encodeReadRegistersResponse(req.fc, registersOf(response));
      else encoded = encodeWriteResponse(req);
      expect(hex(encoded)).toBe(ex.response);
    });
  }
});

test('RTU frame CRC (published frame)', () => {
  for (const frame of vectors.rtuFrames) {
    for (const text of [frame.request, frame.response]) {
      const bytes = unhex(text);
      const body = bytes.subarray(0, bytes.length - 2);
      const crc = crc16(body);
      expect([crc & 0xff, crc >> 8]).toEqual([bytes[bytes.length - 2], bytes[bytes.length - 1]]);
    }
  }
});

describe('bad requests carry the exception a server must answer', () => {
  const cases: [string, string, number][] = [
    ['unknown function', '2b0e0100', 1],
    ['read of 0 registers', '0300000000', 3],
    ['read of 126 registers', '030000007e', 3],
    ['read past 65535', '03fffe0004', 2],
    ['truncated PDU', '0300', 3],
    ['coil value neither on nor off', '0500011234', 3],
    ['byte count mismatch', '100001000203000a01', 3],
  ];
  for (const [name, pdu, exception] of cases) {
    test(name, () => {
      let caught: unknown;
      try {
        decodeRequest(unhex(pdu));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ModbusPduError);
      expect((caught as ModbusPduError).exception).toBe(exception);
    });
  }
});
