// A disclosure bundle's batches located in its text (verify/checks/batch-slices.ts): whatever it answers agrees with
// JSON.parse of the whole text (the document less its batches, and each batch), for any JSON value in any layout;
// and what it cannot answer for exactly (a second "batches", batches that are not an array, text that is not JSON)
// it declines, so that the verifier parses the whole text as before.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { batchAt, sliceBatches } from '../../src/verify/checks/batch-slices.js';

/** what JSON.parse says: the document with batches: [] and the batches */
function parsed(text: string): { doc: unknown; batches: unknown[] } {
  const whole = JSON.parse(text) as Record<string, unknown>;
  return { doc: { ...whole, batches: [] }, batches: whole['batches'] as unknown[] };
}

function sliced(text: string): { doc: unknown; batches: unknown[] } | undefined {
  const s = sliceBatches(text);
  if (s === undefined) return undefined;
  return { doc: s.doc, batches: Array.from({ length: s.count }, (_, k) => batchAt(text, s, k)) };
}

/** JSON.stringify with white space of JSON's four kinds between the tokens */
const spaced = (value: unknown, space: string): string => JSON.stringify(value, null, space).replace(/\n/g, '\r\n\t');

describe('a bundle cut into its batches', () => {
  test('a bundle as the server writes it, and with white space everywhere', () => {
    const doc = {
      format: 'labtrace-disclosure/v1',
      statement: 'a "quoted" \\ note\n— with text outside ASCII 检测',
      batches: [
        { header: { v: 1, gateway: 'gw-a', prev: null }, records: 'AAEC', proof: ['x', ']', '}', '\\"'], indexes: [1, 2] },
        { header: { v: 1, gateway: 'g[w]-{b}' }, note: 'a string ending in a backslash \\', n: -1.5e-7, t: true, f: false, z: null },
      ],
      keys: { log: { verifierKey: 'k' } },
    };
    for (const text of [JSON.stringify(doc), `${JSON.stringify(doc)}\n`, spaced(doc, '  '), ` \n${spaced(doc, '\t')} \r\n`]) {
      expect(sliced(text)).toEqual(parsed(text));
      expect(sliceBatches(text)?.count).toBe(2);
    }
  });

  test('no batches, an empty array, batches first or last', () => {
    expect(sliced('{"batches":[]}')).toEqual({ doc: { batches: [] }, batches: [] });
    expect(sliced('{ "batches" : [ ] , "a" : 1 }')).toEqual({ doc: { batches: [], a: 1 }, batches: [] });
    expect(sliced('{"a":{"batches":[1]},"batches":[{"b":2}]}')).toEqual(parsed('{"a":{"batches":[1]},"batches":[{"b":2}]}'));
    // only the top level's "batches" is the bundle's
    expect(sliced('{"a":{"batches":[1]}}')).toBeUndefined();
  });

  test.each([
    ['a second "batches" (JSON.parse keeps the last)', '{"batches":[{"a":1}],"batches":[{"a":2}]}'],
    ['a key spelled with an escape is the same key', '{"batches":[{"a":1}],"b\\u0061tches":[{"a":2}]}'],
    ['batches that are not an array', '{"batches":{"a":1}}'],
    ['text after the document', '{"batches":[]} x'],
    ['two documents', '{"batches":[]}{"batches":[]}'],
    ['a missing comma between batches', '{"batches":[{"a":1} {"a":2}]}'],
    ['a trailing comma', '{"batches":[{"a":1},]}'],
    ['an unterminated string', '{"batches":[{"a":"1}]}'],
    ['not an object', '[{"batches":[]}]'],
    ['the rest is not JSON', '{"batches":[],"a":tru}'],
  ])('%s: declined', (_name, text) => {
    expect(sliceBatches(text)).toBeUndefined();
  });

  test('a batch that is not JSON is located but does not parse (the verifier then parses the whole text and says why)', () => {
    const text = '{"batches":[{"a":1},{"a":01},{"a":2}]}';
    const s = sliceBatches(text);
    expect(s?.count).toBe(3);
    expect(s === undefined ? 'declined' : batchAt(text, s, 1)).toBeUndefined();
    expect(() => JSON.parse(text) as unknown).toThrow();
  });

  test('any JSON document with any batches, laid out in any way: the same values as JSON.parse', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }),
        fc.array(fc.jsonValue(), { maxLength: 6 }),
        fc.nat(4),
        fc.constantFrom('', ' ', '\t', '\n  ', '\r\n'),
        (rest, batches, at, space) => {
          const entries = Object.entries(rest).filter(([k]) => k !== 'batches');
          entries.splice(Math.min(at, entries.length), 0, ['batches', batches]);
          const doc = Object.fromEntries(entries);
          const text = space === '' ? JSON.stringify(doc) : JSON.stringify(doc, null, space);
          const s = sliced(text);
          // JSON.stringify lays out what JSON.parse reads back: never declined, always the same
          expect(s).toEqual(parsed(text));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('any text: either declined, or what JSON.parse says of the parts it located (and a batch JSON.parse refuses is undefined)', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', ',', ':', ' ', '1', 'a', 'batches') }), (text) => {
        const s = sliceBatches(text);
        if (s === undefined) return;
        let whole: unknown;
        try {
          whole = JSON.parse(text);
        } catch {
          // some batch must not parse, or the cut would have made the whole text JSON
          expect(Array.from({ length: s.count }, (_, k) => batchAt(text, s, k))).toContain(undefined);
          return;
        }
        expect(sliced(text)).toEqual({ doc: { ...(whole as object), batches: [] }, batches: (whole as { batches: unknown[] }).batches });
      }),
      { numRuns: 3000 },
    );
  });
});
