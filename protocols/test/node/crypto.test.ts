// Node's crypto and the native batched SHA-256 must give the same bytes as the pure-JavaScript trust
// code: the RFC 8032 and RFC 6962 vectors, random slices and trees of every small size, and a batch
// sealed one way opens, verifies and hashes the same the other way.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, test } from '@jest/globals';
import {
  encodeRecords,
  fromHex,
  hashSlices,
  headerHash,
  leafHash,
  openBatch,
  parseSignerKey,
  formatSignerKey,
  recordsRoot,
  rootOf,
  rootOfPacked,
  sealBatch,
  sha256,
  sha256Batch,
  signBatch,
  signEd25519,
  toHex,
  useSha256,
  useSha256Batch,
  verifyBatch,
  verifyEd25519,
  type Sample,
} from '@labtrace/protocols';
import { hashingInfo, loadNativeHash, useNodeCrypto } from '@labtrace/protocols/node';
import { readVector, unhex } from '../vectors.js';

const vectors = readVector<{ vectors: { secretKey: string; publicKey: string; message: string; signature: string }[] }>(
  'rfc8032/ed25519.json',
).vectors;
const roots = readVector<{ leafInputsHex: string[]; rootsBySize: string[] }>('rfc6962/roots.json');

const samples: Sample[] = Array.from({ length: 7 }, (_, i) => ({
  seq: i,
  instrument: 'i',
  channel: 'c',
  ts: 1_800_000_000_000 + i,
  value: i / 3,
  unit: 'kN',
  quality: 'good',
}));
const key = parseSignerKey(formatSignerKey('gw-1', new Uint8Array(32).fill(7)));

function pureJavaScript(): void {
  useSha256(undefined);
  useSha256Batch(undefined);
}

afterEach(pureJavaScript);

test('the native module is built and installed (the build and CI have a C compiler)', () => {
  expect(useNodeCrypto()).toEqual({ kind: 'native' });
  expect(hashingInfo()).toEqual({ kind: 'native' });
  expect(sha256Batch()).toBe(loadNativeHash());
});

test('the same signatures, hashes and roots with Node crypto installed', () => {
  const pureRoot = toHex(recordsRoot('gw-1', key.keyId, samples));
  const pureSigned = signBatch(key, 'gw-1', 3, samples, null);
  const pureHash = toHex(sha256(new TextEncoder().encode('abc')));
  useNodeCrypto();
  expect(pureHash).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe(pureHash);
  for (const v of vectors) expect(toHex(signEd25519(fromHex(v.message), fromHex(v.secretKey)))).toBe(v.signature);
  expect(toHex(recordsRoot('gw-1', key.keyId, samples))).toBe(pureRoot);
  const nodeSigned = signBatch(key, 'gw-1', 3, samples, null);
  expect(nodeSigned).toEqual(pureSigned);
  expect(toHex(headerHash(nodeSigned.header))).toBe(toHex(headerHash(pureSigned.header)));
});

test('Ed25519 verification through Node gives the pure-JavaScript answers', () => {
  const pure = vectors.map((v) => verifyEd25519(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey)));
  useNodeCrypto();
  expect(vectors.length).toBeGreaterThan(0);
  for (const [i, v] of vectors.entries()) {
    expect(verifyEd25519(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey))).toBe(pure[i]);
    expect(pure[i]).toBe(true);
    const flipped = fromHex(v.signature);
    flipped[5] = flipped[5]! ^ 0x01;
    expect(verifyEd25519(flipped, fromHex(v.message), fromHex(v.publicKey))).toBe(false);
    expect(verifyEd25519(fromHex(v.signature), new Uint8Array([...fromHex(v.message), 0]), fromHex(v.publicKey))).toBe(false);
    const other = vectors[(i + 1) % vectors.length]!;
    if (other.publicKey !== v.publicKey) expect(verifyEd25519(fromHex(v.signature), fromHex(v.message), fromHex(other.publicKey))).toBe(false);
  }
});

describe('the native batched SHA-256', () => {
  test('RFC 6962 roots of the published vector, sizes 0..8', () => {
    useNodeCrypto();
    const leaves = roots.leafInputsHex.map(unhex);
    roots.rootsBySize.forEach((root, size) => {
      const hashes = leaves.slice(0, size).map(leafHash);
      const packed = new Uint8Array(32 * size);
      hashes.forEach((h, i) => packed.set(h, 32 * i));
      expect(toHex(rootOfPacked(packed))).toBe(root);
      expect(toHex(rootOf(hashes))).toBe(root);
    });
  });

  test('every tree size up to 300 and a few large ones give the pure-JavaScript root', () => {
    const sizes = [...Array.from({ length: 301 }, (_, i) => i), 1023, 1024, 1025, 4097];
    const packed = sizes.map((n) => new Uint8Array(randomBytes(32 * n)));
    const pure = packed.map((p) => toHex(rootOfPacked(p)));
    useNodeCrypto();
    packed.forEach((p, i) => expect(toHex(rootOfPacked(p))).toBe(pure[i]));
  });

  test('slices, empty ones included, hash as one call per slice does', () => {
    const bytes = new Uint8Array(randomBytes(5000));
    const cuts = [0, 0, 1, 55, 56, 64, 64, 65, 119, 120, 1000, 4999, 5000];
    const bounds = Uint32Array.from(cuts);
    const pure = toHex(hashSlices(bytes, bounds));
    useNodeCrypto();
    expect(toHex(hashSlices(bytes, bounds))).toBe(pure);
    expect(toHex(hashSlices(bytes.subarray(7), Uint32Array.from([0, 3, 10])))).toBe(
      toHex(new Uint8Array([...sha256(bytes.subarray(7, 10)), ...sha256(bytes.subarray(10, 17))])),
    );
    expect(hashSlices(bytes, new Uint32Array(0))).toEqual(new Uint8Array(0));
  });

  test('bad arguments are refused with a clear error, never read or written out of bounds', () => {
    const native = loadNativeHash()!;
    const bytes = new Uint8Array(100);
    expect(() => native.hashSlices(bytes, Uint32Array.from([0, 101]), new Uint8Array(32))).toThrow(/pass the end/);
    expect(() => native.hashSlices(bytes, Uint32Array.from([50, 10]), new Uint8Array(32))).toThrow(/decrease/);
    expect(() => native.hashSlices(bytes, Uint32Array.from([0, 10, 20]), new Uint8Array(32))).toThrow(/fewer than 32 bytes per slice/);
    // (the errors are TypeError and RangeError of the main realm, not of the test's, so matched by message)
    expect(() => native.hashSlices(bytes, [0, 10] as unknown as Uint32Array, new Uint8Array(32))).toThrow(
      /^hashSlices\(bytes: Uint8Array, bounds: Uint32Array/,
    );
    expect(() => native.merkleRoot(new Uint8Array(33), new Uint8Array(32))).toThrow(/not a whole number of 32-byte hashes/);
    expect(() => native.merkleRoot(new Uint8Array(64), new Uint8Array(31))).toThrow(/out holds fewer than 32 bytes/);
    expect(() => native.sha256('abc' as unknown as Uint8Array, new Uint8Array(32))).toThrow(/^sha256\(data: Uint8Array/);
    expect(() => rootOfPacked(new Uint8Array(33))).toThrow(/not a multiple of 32/);
  });

  test('a batch sealed with native hashing opens and verifies in pure JavaScript, and the other way round', () => {
    const many: Sample[] = Array.from({ length: 1000 }, (_, i) => ({
      ...samples[i % 7]!,
      seq: 500 + i,
      ts: 1_800_000_000_000 + i,
      value: Math.sin(i),
    }));
    const pureSealed = sealBatch(key, 'gw-1', 9, many, null);
    const pureLeaves = encodeRecords('gw-1', key.keyId, many).packedLeaves;
    useNodeCrypto();
    const nativeSealed = sealBatch(key, 'gw-1', 9, many, null);
    expect(toHex(nativeSealed.wire)).toBe(toHex(pureSealed.wire));
    expect(toHex(encodeRecords('gw-1', key.keyId, many).packedLeaves)).toBe(toHex(pureLeaves));
    const opened = openBatch(pureSealed.wire);
    verifyBatch(opened.signed, opened.samples, key, 'gw-1', opened.leaves);
    const changed = pureSealed.wire.slice();
    // a low bit of the last record's value (its 8 bytes end 5 bytes before the end: unit "kN", quality, no reason)
    changed[changed.length - 7] = changed[changed.length - 7]! ^ 0x01;
    const bad = openBatch(changed);
    expect(() => verifyBatch(bad.signed, bad.samples, key, 'gw-1', bad.leaves)).toThrow(/Merkle root/);
    pureJavaScript();
    const reopened = openBatch(nativeSealed.wire);
    verifyBatch(reopened.signed, reopened.samples, key, 'gw-1', reopened.leaves);
  });
});
