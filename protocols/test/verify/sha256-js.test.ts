// The browser verifier's SHA-256 (sha256-js.ts) gives the bytes of @noble/hashes and of the FIPS 180-4 examples for
// every length around the block and padding boundaries, and its batched forms the same leaf hashes and Merkle roots
// as the package's default path.
import { createHash } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { sha256 as noble } from '@noble/hashes/sha2.js';
import { rootOf, toHex, unpackHashes } from '@labtrace/protocols';
import { sha256BatchJs, sha256Js } from '../../src/verify/sha256-js.js';

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255);

describe('sha256Js', () => {
  test('the FIPS 180-4 examples', () => {
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(toHex(sha256Js(text('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(toHex(sha256Js(text('')))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(sha256Js(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  test('every length from 0 to 300 bytes, and longer ones, as @noble/hashes and Node', () => {
    for (const n of [...Array(301).keys(), 1000, 4095, 4096, 65_537]) {
      const data = bytes(n, n);
      const ours = toHex(sha256Js(data));
      expect(ours).toBe(toHex(noble(data)));
      expect(ours).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  test('a slice of a larger buffer, by its bounds', () => {
    const data = bytes(1000);
    const bounds = Uint32Array.from([0, 0, 55, 56, 64, 200, 1000]);
    const out = new Uint8Array(32 * (bounds.length - 1));
    sha256BatchJs.hashSlices(data, bounds, out);
    for (let i = 0; i + 1 < bounds.length; i++)
      expect(toHex(out.subarray(32 * i, 32 * i + 32))).toBe(toHex(noble(data.subarray(bounds[i], bounds[i + 1]))));
  });

  test('Merkle roots of 0 to 40 leaves, and of 1,000, as the RFC 6962 reference', () => {
    for (const n of [...Array(41).keys(), 1000]) {
      const leaves = new Uint8Array(32 * n);
      for (let i = 0; i < n; i++) leaves.set(noble(bytes(10, i)), 32 * i);
      const out = new Uint8Array(32);
      sha256BatchJs.merkleRoot(leaves, out);
      expect(toHex(out)).toBe(toHex(rootOf(unpackHashes(leaves))));
    }
  });
});
