import { describe, expect, test } from '@jest/globals';
import {
  ed25519KeyId,
  formatSignerKey,
  formatVerifierKey,
  parseSignerKey,
  parseVerifierKey,
  publicKeyFromSeed,
  signEd25519,
  verifyEd25519,
} from '../../src/index.js';
import { hex, readVector, unhex } from '../vectors.js';

interface Rfc8032Vector {
  vectors: { name: string; secretKey: string; publicKey: string; message: string; signature: string }[];
}

const rfc8032 = readVector<Rfc8032Vector>('rfc8032/ed25519.json');

describe('Ed25519 (published vectors: RFC 8032 section 7.1)', () => {
  test('the vectors are there', () => expect(rfc8032.vectors.length).toBeGreaterThanOrEqual(3));
  for (const v of rfc8032.vectors) {
    const seed = unhex(v.secretKey);
    const message = unhex(v.message);
    const signature = unhex(v.signature);
    const publicKey = unhex(v.publicKey);

    test(`${v.name}: public key from seed`, () => expect(hex(publicKeyFromSeed(seed))).toBe(v.publicKey));
    test(`${v.name}: signature`, () => expect(hex(signEd25519(message, seed))).toBe(v.signature));
    test(`${v.name}: verifies`, () => expect(verifyEd25519(signature, message, publicKey)).toBe(true));
    test(`${v.name}: flipped bits all over the signature fail`, () => {
      // every fifth bit: each byte and both halves (R and S) are hit, at a fifth of the cost of all 512
      for (let bit = 0; bit < signature.length * 8; bit += 5) {
        const bad = signature.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        expect(verifyEd25519(bad, message, publicKey)).toBe(false);
      }
    });
    test(`${v.name}: a changed message or another key fails`, () => {
      const longer = new Uint8Array([...message, 0]);
      expect(verifyEd25519(signature, longer, publicKey)).toBe(false);
      const flippedKey = publicKey.slice();
      flippedKey[0]! ^= 1;
      expect(verifyEd25519(signature, message, flippedKey)).toBe(false);
      const other = rfc8032.vectors.find((w) => w.publicKey !== v.publicKey);
      expect(verifyEd25519(signature, message, unhex(other!.publicKey))).toBe(false);
    });
  }

  test('wrong lengths: short signature is a failed verification, a short key or seed is a coded error', () => {
    const v = rfc8032.vectors[0]!;
    expect(verifyEd25519(unhex(v.signature).slice(1), unhex(v.message), unhex(v.publicKey))).toBe(false);
    expect(() => verifyEd25519(unhex(v.signature), unhex(v.message), unhex(v.publicKey).slice(1))).toThrow(
      expect.objectContaining({ code: 'E_CODEC' }),
    );
    expect(() => signEd25519(new Uint8Array(), new Uint8Array(31))).toThrow(expect.objectContaining({ reason: 'bad-length' }));
  });
});

// The keys of the golang.org/x/mod/sumdb/note documentation and tests, which every signed-note implementation
// reproduces; EnochRoot's key comes from the all-zero seed.
const PETER_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VERIFIER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VERIFIER = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';

describe('signed-note keys', () => {
  test('parses a published signer key and derives the published verifier key', () => {
    const key = parseSignerKey(PETER_SIGNER);
    expect(key.name).toBe('PeterNeumann');
    expect(hex(key.keyId)).toBe('c74f20a3');
    expect(formatVerifierKey(key.name, key.publicKey)).toBe(PETER_VERIFIER);
    expect(formatSignerKey(key.name, key.seed)).toBe(PETER_SIGNER);
  });

  test('the key id is SHA-256(name || 0x0A || 0x01 || key)[0:4]', () => {
    const seed = new Uint8Array(32);
    expect(hex(ed25519KeyId('EnochRoot', publicKeyFromSeed(seed)))).toBe('af0cfe78');
    expect(formatVerifierKey('EnochRoot', publicKeyFromSeed(seed))).toBe(ENOCH_VERIFIER);
  });

  test('verifier keys round trip', () => {
    const v = rfc8032.vectors[1]!;
    const text = formatVerifierKey('lab.example/log', unhex(v.publicKey));
    const parsed = parseVerifierKey(text);
    expect(parsed.name).toBe('lab.example/log');
    expect(hex(parsed.publicKey)).toBe(v.publicKey);
    expect(hex(parsed.keyId)).toBe(text.split('+')[1]);
  });

  test('mangled verifier keys are refused', () => {
    const bad = [
      '',
      'PeterNeumann',
      'PeterNeumann+c74f20a3',
      'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // key id does not match
      'PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // name does not match
      'PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // upper-case hex
      'PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // another algorithm byte
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10', // short key
      'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // space in the name
    ];
    for (const text of bad) expect(() => parseVerifierKey(text)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'bad-key' }));
    for (let i = 0; i < PETER_VERIFIER.length; i++) {
      expect(() => parseVerifierKey(PETER_VERIFIER.slice(0, i))).toThrow(expect.objectContaining({ code: 'E_CODEC' }));
    }
  });

  test('a signer key with a wrong key id is refused without showing the key', () => {
    const wrong = PETER_SIGNER.replace('c74f20a3', 'c74f20a4');
    expect(() => parseSignerKey(wrong)).toThrow(expect.objectContaining({ reason: 'bad-key' }));
    try {
      parseSignerKey(wrong);
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('AYEKFALV');
    }
  });
});
