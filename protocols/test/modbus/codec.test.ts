import { describe, expect, test } from '@jest/globals';
import {
  BYTE_ORDERS_32,
  BYTE_ORDERS_64,
  decodeRegisters,
  encodeRegisters,
  registerCount,
  shortestFloat32,
  type RegisterFormat,
} from '../../src/index.js';
import { readVector, registersOf } from '../vectors.js';

interface FloatVector {
  value: number;
  float32: Record<'ABCD' | 'DCBA' | 'BADC' | 'CDAB', string>;
  registersABCD: number[];
  registersCDAB: number[];
}

const vector = readVector<FloatVector>('modbus/float-byte-order.json');

describe('float32 byte orders (published vector: 123456.0)', () => {
  for (const order of BYTE_ORDERS_32) {
    test(`decodes ${order}`, () => {
      const regs = registersOf(vector.float32[order]);
      expect(decodeRegisters(regs, { type: 'float32', order })).toBe(vector.value);
    });
    test(`encodes ${order}`, () => {
      expect(encodeRegisters(vector.value, { type: 'float32', order })).toEqual(registersOf(vector.float32[order]));
    });
  }
  test('register pairs as libmodbus lists them', () => {
    expect(decodeRegisters(vector.registersABCD, { type: 'float32', order: 'ABCD' })).toBe(vector.value);
    expect(decodeRegisters(vector.registersCDAB, { type: 'float32', order: 'CDAB' })).toBe(vector.value);
  });
});

describe('integers', () => {
  test('16-bit signed and unsigned, both byte orders', () => {
    expect(decodeRegisters([0xff38], { type: 'int16' })).toBe(-200);
    expect(decodeRegisters([0xff38], { type: 'uint16' })).toBe(65336);
    expect(decodeRegisters([0x38ff], { type: 'int16', order: 'BA' })).toBe(-200);
    expect(encodeRegisters(-200, { type: 'int16', order: 'BA' })).toEqual([0x38ff]);
  });

  test('8-bit halves of a register', () => {
    expect(decodeRegisters([0x80ff], { type: 'int8h' })).toBe(-128);
    expect(decodeRegisters([0x80ff], { type: 'uint8h' })).toBe(128);
    expect(decodeRegisters([0x80ff], { type: 'int8l' })).toBe(-1);
    expect(decodeRegisters([0x80ff], { type: 'uint8l' })).toBe(255);
    expect(encodeRegisters(0x12, { type: 'uint8l' }, 0xab00)).toEqual([0xab12]);
    expect(encodeRegisters(0x12, { type: 'uint8h' }, 0x00cd)).toEqual([0x12cd]);
  });

  test('bit n of a register', () => {
    expect(decodeRegisters([0b1000_0000_0000_0100], { type: 'bit', bit: 2 })).toBe(1);
    expect(decodeRegisters([0b1000_0000_0000_0100], { type: 'bit', bit: 15 })).toBe(1);
    expect(decodeRegisters([0b1000_0000_0000_0100], { type: 'bit', bit: 3 })).toBe(0);
    expect(encodeRegisters(1, { type: 'bit', bit: 3 }, 0b0100)).toEqual([0b1100]);
    expect(encodeRegisters(0, { type: 'bit', bit: 2 }, 0b0110)).toEqual([0b0010]);
  });

  test('32-bit in every word and byte order', () => {
    // 0x12345678: A=12 B=34 C=56 D=78
    const wire = { ABCD: [0x1234, 0x5678], DCBA: [0x7856, 0x3412], BADC: [0x3412, 0x7856], CDAB: [0x5678, 0x1234] } as const;
    for (const order of BYTE_ORDERS_32) {
      expect(decodeRegisters(wire[order], { type: 'uint32', order })).toBe(0x12345678);
      expect(encodeRegisters(0x12345678, { type: 'uint32', order })).toEqual(wire[order]);
    }
    expect(decodeRegisters([0xffff, 0xfffe], { type: 'int32' })).toBe(-2);
  });

  test('64-bit in the four 64-bit orders, and 32-bit order names widened', () => {
    // 0x001F030405060708, below 2^53 so that a JS number holds it exactly
    const wire = {
      ABCDEFGH: [0x001f, 0x0304, 0x0506, 0x0708],
      HGFEDCBA: [0x0807, 0x0605, 0x0403, 0x1f00],
      BADCFEHG: [0x1f00, 0x0403, 0x0605, 0x0807],
      GHEFCDAB: [0x0708, 0x0506, 0x0304, 0x001f],
    } as const;
    const value = 0x001f030405060708;
    for (const order of BYTE_ORDERS_64) {
      expect(decodeRegisters(wire[order], { type: 'uint64', order })).toBe(value);
      expect(encodeRegisters(value, { type: 'uint64', order })).toEqual(wire[order]);
    }
    expect(decodeRegisters(wire.GHEFCDAB, { type: 'uint64', order: 'CDAB' })).toBe(value);
    expect(decodeRegisters([0xffff, 0xffff, 0xffff, 0xfff6], { type: 'int64' })).toBe(-10);
  });
});

describe('floats', () => {
  test('float16 known values', () => {
    expect(decodeRegisters([0x3c00], { type: 'float16' })).toBe(1);
    expect(decodeRegisters([0xc000], { type: 'float16' })).toBe(-2);
    expect(decodeRegisters([0x7bff], { type: 'float16' })).toBe(65504);
    expect(decodeRegisters([0x0001], { type: 'float16' })).toBeCloseTo(5.96e-8, 10);
    expect(decodeRegisters([0x7c00], { type: 'float16' })).toBe(Infinity);
    expect(encodeRegisters(1, { type: 'float16' })).toEqual([0x3c00]);
    expect(encodeRegisters(65504, { type: 'float16' })).toEqual([0x7bff]);
    expect(encodeRegisters(0.333251953125, { type: 'float16' })).toEqual([0x3555]);
  });

  test('float64 in every order round-trips', () => {
    for (const order of BYTE_ORDERS_64) {
      const regs = encodeRegisters(-1234.5678e10, { type: 'float64', order });
      expect(regs).toHaveLength(4);
      expect(decodeRegisters(regs, { type: 'float64', order })).toBe(-1234.5678e10);
    }
    expect(encodeRegisters(1, { type: 'float64' })).toEqual([0x3ff0, 0, 0, 0]);
  });

  test('float32 is reported as the shortest decimal of the same float32', () => {
    const regs = encodeRegisters(48.39, { type: 'float32' });
    expect(decodeRegisters(regs, { type: 'float32' })).toBe(48.39);
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
    expect(shortestFloat32(Math.fround(123456.0))).toBe(123456);
    expect(Math.fround(shortestFloat32(Math.fround(Math.PI)))).toBe(Math.fround(Math.PI));
  });
});

describe('strings', () => {
  test('high byte first, cut at NUL', () => {
    const regs = [0x4142, 0x4344, 0x4500, 0x5858];
    expect(decodeRegisters(regs, { type: 'string', length: 4 })).toBe('ABCDE');
    expect(encodeRegisters('ABCDE', { type: 'string', length: 4 })).toEqual([0x4142, 0x4344, 0x4500, 0]);
  });
  test('low byte first with order BA', () => {
    expect(decodeRegisters([0x4241, 0x0043], { type: 'string', length: 2, order: 'BA' })).toBe('ABC');
    expect(encodeRegisters('ABC', { type: 'string', length: 2, order: 'BA' })).toEqual([0x4241, 0x0043]);
  });
});

test('register counts', () => {
  const counts: [RegisterFormat, number][] = [
    [{ type: 'int16' }, 1],
    [{ type: 'bit', bit: 1 }, 1],
    [{ type: 'float32' }, 2],
    [{ type: 'uint64' }, 4],
    [{ type: 'string', length: 10 }, 10],
  ];
  for (const [format, n] of counts) expect(registerCount(format)).toBe(n);
});

test('too few registers is a coded error, not a wrong value', () => {
  expect(() => decodeRegisters([1], { type: 'float32' })).toThrow(expect.objectContaining({ code: 'E_CODEC' }));
  expect(() => decodeRegisters([1, 2, 3], { type: 'float64' })).toThrow(/need 4 registers/);
});
