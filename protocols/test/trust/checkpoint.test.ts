import { describe, expect, test } from '@jest/globals';
import {
  EMPTY_ROOT,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatCheckpoint,
  formatSignerKey,
  formatVerifierKey,
  leafHash,
  openCheckpoint,
  parseCheckpoint,
  publicKeyFromSeed,
  rootOf,
  signCheckpoint,
  type Checkpoint,
} from '../../src/index.js';
import { hex, readVector, unhex } from '../vectors.js';

interface Rfc8032Vector {
  vectors: { secretKey: string }[];
}
interface RootsVector {
  leafInputsHex: string[];
  rootsBySize: string[];
}

const seeds = readVector<Rfc8032Vector>('rfc8032/ed25519.json').vectors.map((v) => unhex(v.secretKey));
const roots = readVector<RootsVector>('rfc6962/roots.json');
const ORIGIN = 'lab.example/log';
// base64 computed apart from the code under test
const ROOT8 = Buffer.from(roots.rootsBySize[8]!, 'hex').toString('base64');

const logSigner = ed25519NoteSigner(formatSignerKey(ORIGIN, seeds[0]!));
const logVerifier = ed25519NoteVerifier(formatVerifierKey(ORIGIN, publicKeyFromSeed(seeds[0]!)));
const witnessSigner = ed25519NoteSigner(formatSignerKey('witness.example', seeds[1]!));

const checkpoint: Checkpoint = {
  origin: ORIGIN,
  size: 8,
  rootHash: rootOf(roots.leafInputsHex.map((h) => leafHash(unhex(h)))),
  extensions: [],
};

describe('checkpoint body (C2SP tlog-checkpoint)', () => {
  test('three lines: origin, decimal size, base64 root', () => {
    expect(hex(checkpoint.rootHash)).toBe(roots.rootsBySize[8]);
    expect(formatCheckpoint(checkpoint)).toBe(`lab.example/log\n8\n${ROOT8}\n`);
  });

  test('round trip, with extension lines and the empty tree', () => {
    for (const cp of [
      checkpoint,
      { ...checkpoint, extensions: ['timestamp 1700000000000'] },
      { origin: ORIGIN, size: 0, rootHash: EMPTY_ROOT, extensions: [] },
    ]) {
      const parsed = parseCheckpoint(formatCheckpoint(cp));
      expect({ ...parsed, rootHash: hex(parsed.rootHash) }).toEqual({ ...cp, rootHash: hex(cp.rootHash) });
    }
  });

  const malformed: [string, string][] = [
    ['no final newline', `lab.example/log\n8\n${ROOT8}`],
    ['an empty origin', `\n8\n${ROOT8}\n`],
    ['no root line', 'lab.example/log\n8\n'],
    ['a leading zero', `lab.example/log\n08\n${ROOT8}\n`],
    ['a negative size', `lab.example/log\n-8\n${ROOT8}\n`],
    ['a size beyond 2^53', `lab.example/log\n18446744073709551615\n${ROOT8}\n`],
    ['a root that is not base64', `lab.example/log\n8\n${ROOT8.slice(0, -1)}\n`],
    ['a root of 31 bytes', `lab.example/log\n8\n${ROOT8.slice(0, 41)}w==\n`],
    ['an empty extension line', `lab.example/log\n8\n${ROOT8}\n\n`],
  ];
  for (const [what, text] of malformed) {
    test(`refuses ${what}`, () =>
      expect(() => parseCheckpoint(text)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'bad-checkpoint' })));
  }
});

describe('signed checkpoints', () => {
  const signed = signCheckpoint(checkpoint, [logSigner]);

  test('round trip', () => {
    const opened = openCheckpoint(signed, [logVerifier], { origin: ORIGIN });
    expect(opened.checkpoint.size).toBe(8);
    expect(hex(opened.checkpoint.rootHash)).toBe(roots.rootsBySize[8]);
    expect(opened.verified.map((s) => s.name)).toEqual([ORIGIN]);
    expect(signed.split('\n').at(-2)).toMatch(/^\u2014 lab\.example\/log [A-Za-z0-9+/]{91}=$/);
  });

  test('a tampered body is rejected', () => {
    const tampered = signed.replace('\n8\n', '\n9\n');
    expect(() => openCheckpoint(tampered, [logVerifier])).toThrow(expect.objectContaining({ code: 'E_AUTH', reason: 'signature-invalid' }));
    const otherRoot = signed.replace(ROOT8, `A${ROOT8.slice(1)}`);
    expect(() => openCheckpoint(otherRoot, [logVerifier])).toThrow(expect.objectContaining({ reason: 'signature-invalid' }));
  });

  test('a wrong key is rejected', () => {
    const sameNameOtherKey = ed25519NoteVerifier(formatVerifierKey(ORIGIN, publicKeyFromSeed(seeds[2]!)));
    expect(() => openCheckpoint(signed, [sameNameOtherKey])).toThrow(expect.objectContaining({ code: 'E_AUTH', reason: 'no-known-signature' }));
    const forged = signCheckpoint(checkpoint, [ed25519NoteSigner({ ...logSigner, seed: seeds[2]!, publicKey: publicKeyFromSeed(seeds[2]!) })]);
    expect(() => openCheckpoint(forged, [logVerifier])).toThrow(expect.objectContaining({ reason: 'signature-invalid' }));
  });

  test('signatures by unknown keys (a witness) are ignored', () => {
    const cosigned = signCheckpoint(checkpoint, [logSigner, witnessSigner]);
    const opened = openCheckpoint(cosigned, [logVerifier]);
    expect(opened.verified.map((s) => s.name)).toEqual([ORIGIN]);
    expect(opened.unverified.map((s) => s.name)).toEqual(['witness.example']);
    const garbled = `${signed}\u2014 unknown.example AAAAAAAAAAAAAAAA\n`;
    expect(openCheckpoint(garbled, [logVerifier]).unverified.map((s) => s.name)).toEqual(['unknown.example']);
  });

  test('a checkpoint of another log is refused when the origin is given', () => {
    const other = signCheckpoint({ ...checkpoint, origin: 'other.example/log' }, [logSigner]);
    expect(openCheckpoint(other, [logVerifier]).checkpoint.origin).toBe('other.example/log');
    expect(() => openCheckpoint(other, [logVerifier], { origin: ORIGIN })).toThrow(
      expect.objectContaining({ code: 'E_AUTH', reason: 'origin-mismatch' }),
    );
  });

  test('formatting refuses what could not be parsed back', () => {
    expect(() => formatCheckpoint({ ...checkpoint, origin: 'a\nb' })).toThrow(expect.objectContaining({ reason: 'bad-checkpoint' }));
    expect(() => formatCheckpoint({ ...checkpoint, size: 1.5 })).toThrow(expect.objectContaining({ reason: 'bad-checkpoint' }));
    expect(() => formatCheckpoint({ ...checkpoint, rootHash: new Uint8Array(31) })).toThrow(expect.objectContaining({ reason: 'bad-checkpoint' }));
    expect(() => formatCheckpoint({ ...checkpoint, extensions: [''] })).toThrow(expect.objectContaining({ reason: 'bad-checkpoint' }));
  });
});
