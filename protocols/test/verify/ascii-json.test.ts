// A client's bundle is written in ASCII (verify/disclosure-writer.ts asciiJson): every character outside it as its
// \u escape, so that a reader holds the text as one-byte characters. The JSON value is the same for any value,
// characters outside the Basic Multilingual Plane and lone surrogates included.
import { expect, test } from '@jest/globals';
import fc from 'fast-check';
import { asciiJson } from '../../src/verify/disclosure-writer.js';

const ascii = (text: string): boolean => !/[\u0080-\uffff]/.test(text);

test('a signed note, Chinese text, an emoji and a lone surrogate: ASCII, and the same value', () => {
  const value = { note: 'checkpoint\n\n— lab.example abc=', zh: '检测报告', emoji: '🧪', lone: '\ud800x', plain: 'kN' };
  const text = asciiJson(JSON.stringify(value));
  expect(ascii(text)).toBe(true);
  expect(text).toContain('\\u2014 lab.example');
  expect(JSON.parse(text)).toEqual(value);
});

test('any JSON value: the text is ASCII and parses to the same value', () => {
  fc.assert(
    fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
      const text = asciiJson(JSON.stringify(value));
      expect(ascii(text)).toBe(true);
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
    }),
    { numRuns: 1000 },
  );
});
