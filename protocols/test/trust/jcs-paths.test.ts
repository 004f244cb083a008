// canonicalize's two ways (trust/jcs.ts): plain JSON without paths, anything else again with them. For any JSON
// value, the text of an independent reading of RFC 8785 (keys by UTF-16 code units, JSON.stringify's numbers and
// strings) and its UTF-8; values nested deeper than the quick way goes give the same; a lone surrogate anywhere
// is refused with its path, however deep.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { canonicalBytes, canonicalize } from '../../src/index.js';

function reference(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

describe('canonical JSON, with and without paths', () => {
  test('any JSON value: the reference text and its UTF-8', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        expect(canonicalize(v)).toBe(reference(v));
        expect(Buffer.from(canonicalBytes(v)).toString('utf8')).toBe(reference(v));
      }),
      { seed: 20_261_210, numRuns: 1000 },
    );
  });

  test('nested deeper than 64 levels: the same text; a lone surrogate there is named by its path', () => {
    let deep: unknown = { k: 'v' };
    for (let i = 0; i < 80; i++) deep = i % 2 === 0 ? [deep] : { a: deep };
    expect(canonicalize(deep)).toBe(reference(deep));
    let bad: unknown = 'x\ud800';
    let path = '$';
    for (let i = 0; i < 80; i++) {
      bad = { a: bad };
      path += '.a';
    }
    expect(() => canonicalBytes(bad)).toThrow(expect.objectContaining({ code: 'E_CODEC', details: expect.objectContaining({ path }) }));
  });
});
