// Property tests of the add-checkpoint request parser with generated input: whatever a client sends, the parser
// answers with a request or a WitnessRequestError (never another error), and what format writes parses back.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { formatAddCheckpoint, formatCheckpoint, parseAddCheckpoint, toBase64, WitnessRequestError } from '../../src/index.js';
import { params } from './settings.js';

function parsedOrRefused(body: string | Uint8Array): 'parsed' | 'refused' {
  try {
    parseAddCheckpoint(body);
    return 'parsed';
  } catch (err) {
    if (err instanceof WitnessRequestError && err.code === 'E_BAD_REQUEST') return 'refused';
    throw err;
  }
}

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const origin = fc.stringMatching(/^[a-z0-9./-]{1,40}$/);
const keyName = fc.stringMatching(/^[a-z0-9./-]{1,20}$/);
const note = fc
  .record({
    origin,
    size: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    root: hash,
    extensions: fc.array(fc.stringMatching(/^[ -~]{1,20}$/), { maxLength: 2 }),
    signatures: fc.array(fc.record({ name: keyName, bytes: fc.uint8Array({ minLength: 5, maxLength: 80 }) }), { minLength: 1, maxLength: 3 }),
  })
  .map(({ origin: o, size, root, extensions, signatures }) => {
    const body = formatCheckpoint({ origin: o, size, rootHash: root, extensions });
    return `${body}\n${signatures.map((s) => `\u2014 ${s.name} ${toBase64(s.bytes)}\n`).join('')}`;
  });
const request = fc
  .record({ oldSize: fc.nat({ max: Number.MAX_SAFE_INTEGER }), proof: fc.array(hash, { maxLength: 63 }), note })
  .map((r) => (r.oldSize === 0 ? { ...r, proof: [] } : r));

describe('add-checkpoint parser (fuzz)', () => {
  test('format then parse gives back the old size, the proof and the note', () => {
    fc.assert(
      fc.property(request, (r) => {
        const parsed = parseAddCheckpoint(formatAddCheckpoint(r));
        expect(parsed.oldSize).toBe(r.oldSize);
        expect(parsed.proof.map(toBase64)).toEqual(r.proof.map(toBase64));
        expect(parsed.note).toBe(r.note);
      }),
      params(300),
    );
  });

  test('arbitrary text and bytes are parsed or refused with a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.uint8Array({ maxLength: 400 })), (body) => {
        parsedOrRefused(body);
      }),
      params(1000),
    );
  });

  test('a good body with one character inserted, removed or replaced is parsed or refused with a coded error', () => {
    fc.assert(
      fc.property(
        request,
        fc.nat(),
        fc.oneof(fc.constant(''), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })),
        fc.boolean(),
        (r, at, insert, remove) => {
          const body = formatAddCheckpoint(r);
          const i = at % (body.length + 1);
          parsedOrRefused(body.slice(0, i) + insert + body.slice(remove ? i + 1 : i));
        },
      ),
      params(1000),
    );
  });

  test('a proof hash of any other length, at any place in the proof, is refused as proof-hash', () => {
    const badHash = fc.uint8Array({ maxLength: 64 }).filter((h) => h.length !== 32 && h.length > 0);
    fc.assert(
      fc.property(
        request.filter((r) => r.proof.length > 0),
        fc.nat(),
        badHash,
        (r, at, bad) => {
          const lines = formatAddCheckpoint(r).split('\n');
          lines[1 + (at % r.proof.length)] = toBase64(bad);
          expect(() => parseAddCheckpoint(lines.join('\n'))).toThrow(expect.objectContaining({ problem: 'proof-hash' }));
        },
      ),
      params(300),
    );
  });
});
