// Node's crypto must give the same bytes as the pure-JavaScript trust code: RFC 8032 vectors, and a
// batch signed one way verifies and hashes the same the other way.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';
import {
  fromHex,
  headerHash,
  parseSignerKey,
  formatSignerKey,
  recordsRoot,
  sha256,
  signBatch,
  signEd25519,
  toHex,
  type Sample,
} from '@labtrace/protocols';
import { useNodeCrypto } from '../src/node-crypto.js';

const VECTORS = fileURLToPath(new URL('../../../../shared/vectors/rfc8032/ed25519.json', import.meta.url));
const vectors = (JSON.parse(readFileSync(VECTORS, 'utf8')) as { vectors: { secretKey: string; message: string; signature: string }[] }).vectors;
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
