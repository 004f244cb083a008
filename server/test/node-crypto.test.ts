// Node's crypto must answer as the pure-JavaScript trust code does: the RFC 8032 vectors verify, and
// a signature with one bit changed, another message or another key does not.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';
import { fromHex, sha256, toHex, verifyEd25519 } from '@labtrace/protocols';
import { useNodeCrypto } from '../src/node-crypto.js';

const VECTORS = fileURLToPath(new URL('../../../../shared/vectors/rfc8032/ed25519.json', import.meta.url));
const vectors = (JSON.parse(readFileSync(VECTORS, 'utf8')) as { vectors: { publicKey: string; message: string; signature: string }[] }).vectors;

test('Ed25519 verification and SHA-256 through Node give the pure-JavaScript answers', () => {
  const pure = vectors.map((v) => verifyEd25519(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey)));
  useNodeCrypto();
  expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
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
