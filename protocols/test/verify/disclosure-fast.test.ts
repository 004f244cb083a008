// The disclosure check's fast path (verify/checks/disclosure-fast.ts) takes a good bundle and gives the full path's
// report; on any change (every character of a bundle replaced in turn) it leaves the bundle to the full path, so the
// report is the full path's, problem for problem, and never "verified". Records the byte scan does not read (text
// outside ASCII, text values, booleans, a result file's hash) are taken too, through the decoded reading.
import { describe, expect, test } from '@jest/globals';
import type { Sample } from '../../src/index.js';
import { useNodeCrypto } from '../../src/node/index.js';
import { verifyDisclosureBy } from '../../src/verify/checks/disclosure.js';
import { disclosureFixture, T0 } from '../helpers/disclosure-fixture.js';

// Node's crypto (as `labtrace verify` installs it), for the thousands of verifications below
useNodeCrypto();

const both = (text: string, logKey: string) => ({
  fast: verifyDisclosureBy(text, { logKey }, true),
  full: verifyDisclosureBy(text, { logKey }, false),
});

/** ut-1's records of every kind: text outside ASCII, text values, booleans, null, a result file, a reason (redacted) */
const varied = (seq: number, i: number): Sample => {
  const s: Sample = { seq, instrument: i % 2 === 0 ? 'ut-1' : 'ut-2', channel: 'c', ts: T0 + seq, value: seq / 8, unit: 'kN', quality: 'good' };
  switch (seq % 7) {
    case 1:
      return { ...s, channel: 'température', unit: '°C' };
    case 2:
      return { ...s, value: 'Prüfung läuft', quality: 'uncertain' };
    case 3:
      return { ...s, value: seq % 2 === 0, quality: 'bad' };
    case 4:
      return { ...s, value: null, reason: '夹具打滑' };
    case 5:
      return { ...s, file: 'ab'.repeat(32) };
    default:
      return s;
  }
};

describe('disclosure fast path', () => {
  test('a good bundle: taken, with the report of the full path', () => {
    const { text, logKey } = disclosureFixture(4, 8);
    const { fast, full } = both(text, logKey);
    expect([fast.fastPath, full.fastPath]).toEqual([true, false]);
    expect(fast.report.status).toBe('verified');
    // the newest batch's signature, and the three before it through the chain of prev hashes
    expect(fast.report.counts).toMatchObject({ batches: 4, signaturesVerified: 1, headersChained: 3 });
    expect(fast.report).toEqual(full.report);
  });

  test('records of every kind, text outside ASCII and result files: taken, with the report of the full path', () => {
    const { text, logKey } = disclosureFixture(5, 14, varied);
    const { fast, full } = both(text, logKey);
    expect([fast.fastPath, full.fastPath]).toEqual([true, false]);
    expect(fast.report.status).toBe('verified');
    expect(fast.report.disclosure?.wholeRecords).toBeGreaterThan(10);
    expect(fast.report).toEqual(full.report);
  });

  test("the newest batch logged with a signature that is not its gateway's: not taken, the full path's report names it", () => {
    const { text, logKey } = disclosureFixture(3, 6, undefined, 2);
    const { fast, full } = both(text, logKey);
    expect(fast.fastPath).toBe(false);
    expect(fast.report).toEqual(full.report);
    expect(fast.report.problems.map((p) => p.kind)).toEqual(['signature-invalid']);
  });

  test("an earlier batch logged with a signature that is not its gateway's: its header is the one the next header's signature commits to, so its records are proven all the same", () => {
    // (only the lab's server could log such a signature, and its ingest checks every one; a changed byte of a
    // logged signature fails the header's log inclusion: the every-character test below)
    const { text, logKey } = disclosureFixture(3, 6, undefined, 1);
    const { fast, full } = both(text, logKey);
    expect(fast.fastPath).toBe(true);
    expect(fast.report).toEqual(full.report);
    expect(fast.report.status).toBe('verified');
    expect(fast.report.counts).toMatchObject({ signaturesVerified: 1, headersChained: 2 });
  });

  test.each([
    ['the default records', disclosureFixture(3, 6)],
    ['records of every kind', disclosureFixture(2, 14, varied)],
  ])(
    '%s, every character replaced in turn: the report of the full path, never verified',
    (_name, { text, logKey }) => {
      // the newline after the document is not part of it
      for (let at = 0; at < text.length - 1; at++) {
        const c = text[at] === '1' ? '2' : text[at] === '"' ? 'x' : '1';
        const { fast, full } = both(text.slice(0, at) + c + text.slice(at + 1), logKey);
        expect([at, fast.report.ok]).toEqual([at, false]);
        expect(fast.report).toEqual(full.report);
      }
    },
    180_000,
  );
});
