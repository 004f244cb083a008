// base64Into (trust/bytes.ts), the verifier's decoder of short base64 (hashes, signatures): the bytes fromBase64
// gives, and a refusal exactly where fromBase64 throws, for any text and any single character changed in a good one.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { base64Into, fromBase64, toBase64, toHex } from '../../src/index.js';

/** fromBase64's answer as hex, or undefined where it throws */
const strict = (text: string): string | undefined => {
  try {
    return toHex(fromBase64(text));
  } catch {
    return undefined;
  }
};
const into = (text: string): string | undefined => {
  const out = new Uint8Array(text.length);
  const n = base64Into(text, out, 0);
  return n < 0 ? undefined : toHex(out.subarray(0, n));
};

describe('base64Into', () => {
  test('agrees with fromBase64 on any text', () => {
    const alphabet = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\u00e9'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 48 }), fc.string({ maxLength: 48 })), (text) => {
        expect(into(text)).toEqual(strict(text));
      }),
      { seed: 20_261_209, numRuns: 3000 },
    );
  });

  test('agrees with fromBase64 on every single character changed in the text of 0 to 65 bytes', () => {
    const chars = 'AQgw/+=a9\u00e9 ';
    for (let n = 0; n <= 65; n++) {
      const text = toBase64(Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255));
      expect(into(text)).toEqual(strict(text));
      for (let at = 0; at < text.length; at++)
        for (const c of chars) {
          const changed = text.slice(0, at) + c + text.slice(at + 1);
          expect([changed, into(changed)]).toEqual([changed, strict(changed)]);
        }
    }
  });

  test('writes at its offset, and refuses what does not fit', () => {
    const out = new Uint8Array(6).fill(9);
    expect(base64Into('AQID', out, 2)).toBe(3);
    expect(Array.from(out)).toEqual([9, 9, 1, 2, 3, 9]);
    expect(base64Into('AQIDBA==', out, 3)).toBe(-1);
  });
});
