import { describe, expect, test } from '@jest/globals';
import {
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatSignerKey,
  formatVerifierKey,
  openNote,
  parseNote,
  publicKeyFromSeed,
  signNote,
  type NoteVerifier,
} from '../../src/index.js';
import { hex, readVector, unhex } from '../vectors.js';

// The example of the golang.org/x/mod/sumdb/note documentation and tests: two keys and a note they signed.
const PETER_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VERIFIER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VERIFIER = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_LINE = '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_LINE = '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

const peter = ed25519NoteVerifier(PETER_VERIFIER);
const enoch = ed25519NoteVerifier(ENOCH_VERIFIER);

describe('signed notes (published example: Go sumdb/note)', () => {
  test('signing reproduces the published note byte for byte', () => {
    expect(signNote(TEXT, [ed25519NoteSigner(PETER_SIGNER)])).toBe(`${TEXT}\n${PETER_LINE}`);
  });

  test('the published note verifies, as text and as bytes', () => {
    const opened = openNote(`${TEXT}\n${PETER_LINE}`, [peter]);
    expect(opened.text).toBe(TEXT);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(openNote(new TextEncoder().encode(`${TEXT}\n${PETER_LINE}`), [peter]).text).toBe(TEXT);
  });

  test('a doubly signed note verifies with either key; the other signature is reported unverified', () => {
    const note = `${TEXT}\n${PETER_LINE}${ENOCH_LINE}`;
    const byPeter = openNote(note, [peter]);
    expect(byPeter.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(byPeter.unverified.map((s) => [s.name, hex(s.keyId)])).toEqual([['EnochRoot', 'af0cfe78']]);
    const byBoth = openNote(note, [enoch, peter]);
    expect(byBoth.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(byBoth.unverified).toEqual([]);
  });

  test('a changed text fails with the signer named', () => {
    const note = `${TEXT.replace('cryptography', 'cryptographY')}\n${PETER_LINE}`;
    expect(() => openNote(note, [peter])).toThrow(
      expect.objectContaining({
        code: 'E_AUTH',
        reason: 'signature-invalid',
        details: expect.objectContaining({ name: 'PeterNeumann', keyId: 'c74f20a3' }),
      }),
    );
  });

  test('a note signed only by unknown keys is not accepted', () => {
    expect(() => openNote(`${TEXT}\n${ENOCH_LINE}`, [peter])).toThrow(expect.objectContaining({ code: 'E_AUTH', reason: 'no-known-signature' }));
    expect(() => openNote(`${TEXT}\n${PETER_LINE}`, [])).toThrow(expect.objectContaining({ reason: 'no-known-signature' }));
  });

  test('a key with the same name but another key id is another key', () => {
    const impostor = formatVerifierKey('PeterNeumann', publicKeyFromSeed(new Uint8Array(32).fill(7)));
    expect(() => openNote(`${TEXT}\n${PETER_LINE}`, [ed25519NoteVerifier(impostor)])).toThrow(
      expect.objectContaining({ reason: 'no-known-signature' }),
    );
  });

  test('a repeated signature line counts once', () => {
    expect(openNote(`${TEXT}\n${PETER_LINE}${PETER_LINE}`, [peter]).verified).toHaveLength(1);
  });

  test('a verifier that claims another key id is never asked', () => {
    let asked = 0;
    const liar: NoteVerifier = {
      name: 'PeterNeumann',
      keyId: unhex('00000000'),
      verify: () => {
        asked += 1;
        return true;
      },
    };
    expect(() => openNote(`${TEXT}\n${PETER_LINE}`, [liar])).toThrow(expect.objectContaining({ reason: 'no-known-signature' }));
    expect(asked).toBe(0);
  });
});

describe('malformed notes are refused before any signature is checked', () => {
  const good = `${TEXT}\n${PETER_LINE}`;
  const cases: [string, string][] = [
    ['no blank line', `${TEXT}${PETER_LINE}`],
    ['no signature lines', `${TEXT}\n`],
    ['no final newline', good.slice(0, -1)],
    ['a hyphen instead of the em dash', `${TEXT}\n${PETER_LINE.replace('\u2014', '-')}`],
    ['no space after the name', `${TEXT}\n${PETER_LINE.replace('PeterNeumann ', 'PeterNeumann')}`],
    ['a signature that is not base64', `${TEXT}\n${PETER_LINE.replace('x08go', 'x08g!')}`],
    ['a signature shorter than a key id', `${TEXT}\n\u2014 PeterNeumann x08g\n`],
    ['a control character in the text', `${TEXT.replace('answer', 'ans\rwer')}\n${PETER_LINE}`],
    ['a tab in the text', `${TEXT.replace('answer', 'ans\twer')}\n${PETER_LINE}`],
    ['too many signature lines', `${TEXT}\n${ENOCH_LINE.repeat(101)}`],
  ];
  for (const [what, note] of cases) {
    test(what, () => expect(() => openNote(note, [peter, enoch])).toThrow(expect.objectContaining({ code: 'E_CODEC' })));
  }
  test('a blank line among the signatures makes the lines above it text, which no longer verifies', () => {
    const note = `${TEXT}\n${PETER_LINE}\n${ENOCH_LINE}`;
    expect(parseNote(note).text).toBe(`${TEXT}\n${PETER_LINE}`);
    expect(() => openNote(note, [peter, enoch])).toThrow(expect.objectContaining({ code: 'E_AUTH', reason: 'signature-invalid' }));
    expect(() => openNote(note, [peter])).toThrow(expect.objectContaining({ code: 'E_AUTH', reason: 'no-known-signature' }));
  });
  test('bytes that are not UTF-8', () => {
    const bytes = new TextEncoder().encode(good);
    bytes[3] = 0xff;
    expect(() => parseNote(bytes)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'bad-text' }));
  });
  test('a note text must end in a newline to be signed', () => {
    expect(() => signNote('no newline', [ed25519NoteSigner(PETER_SIGNER)])).toThrow(expect.objectContaining({ reason: 'bad-note' }));
    expect(() => signNote('', [ed25519NoteSigner(PETER_SIGNER)])).toThrow(expect.objectContaining({ reason: 'bad-note' }));
    expect(() => signNote(TEXT, [])).toThrow(expect.objectContaining({ reason: 'bad-note' }));
  });
});

describe('signing with the RFC 8032 keys', () => {
  const vectors = readVector<{ vectors: { secretKey: string }[] }>('rfc8032/ed25519.json').vectors;
  test('round trip with a text that contains blank lines', () => {
    const seed = unhex(vectors[2]!.secretKey);
    const signer = ed25519NoteSigner(formatSignerKey('lab.example/gateway-1', seed));
    const verifier = ed25519NoteVerifier(formatVerifierKey('lab.example/gateway-1', publicKeyFromSeed(seed)));
    const text = 'first\n\nthird after a blank line\n';
    const note = signNote(text, [signer]);
    expect(parseNote(note).text).toBe(text);
    expect(openNote(note, [verifier]).text).toBe(text);
  });
});
