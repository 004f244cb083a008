// Property tests of the disclosure bundle's verifier (verify/checks/disclosure.ts) with generated input: whatever a
// file holds, verifyDisclosure answers with a report (never throws), and a good bundle with one character replaced
// or removed, or a non-blank one inserted, never verifies (the newline ending the file aside).
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { verifyDisclosure } from '../../src/index.js';
import { disclosureFixture } from '../helpers/disclosure-fixture.js';
import { params } from './settings.js';

const { text: good, logKey } = disclosureFixture();

describe('disclosure bundle verifier (fuzz)', () => {
  test('the fixture verifies, with the log key pinned', () => {
    const report = verifyDisclosure(good, { logKey });
    expect(report.problems).toEqual([]);
    expect(report.disclosure).toMatchObject({ wholeRecords: 6, redactedRecords: 3 });
  });

  test('arbitrary text is reported on, never thrown at', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.json({ maxDepth: 4 })), (text) => {
        const report = verifyDisclosure(text);
        expect(report.ok).toBe(false);
        expect(['failed', 'unusable']).toContain(report.status);
      }),
      params(500),
    );
  });

  test('arbitrary values in place of any part of a good bundle are reported on, never thrown at, and do not verify', () => {
    const doc = JSON.parse(good) as Record<string, unknown>;
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, at: (string | number)[]): void => {
      paths.push(at);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    };
    walk(doc, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.jsonValue({ maxDepth: 2 }), (at, value) => {
        const copy = structuredClone(doc);
        let parent: unknown = copy;
        for (const k of at.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[k];
        const last = at[at.length - 1] as string | number;
        const before = JSON.stringify((parent as Record<string | number, unknown>)[last]);
        fc.pre(JSON.stringify(value) !== before);
        (parent as Record<string | number, unknown>)[last] = value;
        expect(verifyDisclosure(JSON.stringify(copy)).ok).toBe(false);
      }),
      params(200),
    );
  });

  test('a lone surrogate in any string of a good bundle (a header, a key, a record) is reported on, never thrown at', () => {
    const doc = JSON.parse(good) as Record<string, unknown>;
    const strings: (string | number)[][] = [];
    const walk = (v: unknown, at: (string | number)[]): void => {
      if (typeof v === 'string') strings.push(at);
      else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    };
    walk(doc, []);
    expect(strings.some((at) => at[0] === 'batches' && at.includes('header'))).toBe(true);
    fc.assert(
      fc.property(fc.constantFrom(...strings), fc.constantFrom('\ud800', '\udfff', 'x\udbff'), fc.boolean(), (at, lone, append) => {
        const copy = structuredClone(doc);
        let parent: unknown = copy;
        for (const k of at.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[k];
        const last = at[at.length - 1] as string | number;
        const was = (parent as Record<string | number, string>)[last] ?? '';
        (parent as Record<string | number, unknown>)[last] = append ? was + lone : lone;
        // JSON.stringify writes a lone surrogate as a \u escape, which JSON.parse reads back as one
        const report = verifyDisclosure(JSON.stringify(copy));
        expect(report.ok).toBe(false);
        expect(['failed', 'unusable']).toContain(report.status);
      }),
      params(300),
    );
  });

  test('a good bundle with one character replaced, removed or inserted (not blank) does not verify', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: good.length - 1 }),
        fc.constantFrom('replace', 'remove', 'insert'),
        fc.string({ minLength: 1, maxLength: 1 }).filter((c) => c.trim() !== ''),
        (at, how, c) => {
          fc.pre(how === 'insert' || good[at] !== c);
          // the newline after the document is not part of it: without it, the file says the same
          fc.pre(!(how === 'remove' && at === good.length - 1));
          const text =
            how === 'replace'
              ? good.slice(0, at) + c + good.slice(at + 1)
              : how === 'remove'
                ? good.slice(0, at) + good.slice(at + 1)
                : good.slice(0, at) + c + good.slice(at);
          const report = verifyDisclosure(text);
          expect([at, how, c, report.ok]).toEqual([at, how, c, false]);
        },
      ),
      params(1000),
    );
  });
});
