import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { canonicalBytes, canonicalize } from '../../src/index.js';
import { VECTORS_DIR, hex } from '../vectors.js';

const names = readdirSync(`${VECTORS_DIR}jcs/input`).sort();

describe('RFC 8785 canonical JSON (published vectors)', () => {
  test('the vectors are there', () => expect(names.length).toBeGreaterThanOrEqual(6));
  for (const name of names) {
    test(name, () => {
      const input: unknown = JSON.parse(readFileSync(`${VECTORS_DIR}jcs/input/${name}`, 'utf8'));
      const expected = new Uint8Array(readFileSync(`${VECTORS_DIR}jcs/output/${name}`));
      const expectedHex = readFileSync(`${VECTORS_DIR}jcs/outhex/${name.replace(/\.json$/, '.txt')}`, 'utf8').replace(/\s+/g, '');
      const bytes = canonicalBytes(input);
      expect(hex(bytes)).toBe(hex(expected));
      expect(hex(bytes)).toBe(expectedHex);
      expect(canonicalize(input)).toBe(new TextDecoder().decode(expected));
    });
  }
});

describe('numbers (ECMAScript serialization, RFC 8785 appendix B)', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [1, '1'],
    [-1.5, '-1.5'],
    [1e21, '1e+21'],
    [1e-7, '1e-7'],
    [123456789012345680000, '123456789012345680000'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [5e-324, '5e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [0.1 + 0.2, '0.30000000000000004'],
  ];
  for (const [value, text] of cases) test(`${text}`, () => expect(canonicalize(value)).toBe(text));
});

describe('structure', () => {
  test('keys sort by UTF-16 code units, not by code point or locale', () => {
    // U+1F600 is D83D DE00 in UTF-16, which sorts before U+FB33 although its code point is larger
    expect(canonicalize({ '\ufb33': 1, '\u{1f600}': 2, a: 3, B: 4 })).toBe('{"B":4,"a":3,"\u{1f600}":2,"\ufb33":1}');
  });
  test('nested values and minimal escaping', () => {
    expect(canonicalize({ b: [true, null, { d: 'x\u0001\n"\\/' }], a: {} })).toBe('{"a":{},"b":[true,null,{"d":"x\\u0001\\n\\"\\\\/"}]}');
  });
  test('UTF-8 bytes', () => {
    expect(hex(canonicalBytes({ '€': 'é' }))).toBe('7b22e282ac223a22c3a9227d');
  });
});

describe('values that are not JSON are refused with the path', () => {
  const cases: [string, unknown, string][] = [
    ['NaN', { a: [1, Number.NaN] }, '$.a[1]'],
    ['Infinity', { 'b c': Number.POSITIVE_INFINITY }, '$["b c"]'],
    ['undefined', { a: { b: undefined } }, '$.a.b'],
    ['a function', [() => 1], '$[0]'],
    ['a bigint', { n: 1n }, '$.n'],
    ['a symbol', { s: Symbol('x') }, '$.s'],
    ['a Date', { when: new Date(0) }, '$.when'],
    ['a Map', { m: new Map() }, '$.m'],
    ['a Uint8Array', { bytes: new Uint8Array(2) }, '$.bytes'],
    ['a lone surrogate', { s: 'a\ud800' }, '$.s'],
    ['a lone surrogate in a key', { '\udc00': 1 }, '$["\\udc00"]'],
    // eslint-disable-next-line no-sparse-arrays -- the hole is what is tested
    ['a hole in an array', { h: [1, , 3] }, '$.h[1]'],
  ];
  for (const [what, value, path] of cases) {
    test(what, () => {
      expect(() => canonicalize(value)).toThrow(
        expect.objectContaining({ code: 'E_CODEC', reason: 'not-json', details: expect.objectContaining({ path }) }),
      );
    });
  }
  test('a cycle', () => {
    const a: Record<string, unknown> = { x: 1 };
    a['self'] = [a];
    expect(() => canonicalize(a)).toThrow(expect.objectContaining({ code: 'E_CODEC', details: expect.objectContaining({ path: '$.self[0]' }) }));
  });
  test('a shared (non-cyclic) value is fine', () => {
    const shared = { v: 1 };
    expect(canonicalize({ a: shared, b: shared })).toBe('{"a":{"v":1},"b":{"v":1}}');
  });
  test('objects without a prototype are plain JSON objects', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o['z'] = 1;
    o['y'] = 2;
    expect(canonicalize(o)).toBe('{"y":2,"z":1}');
  });
});
