import { describe, expect, test } from '@jest/globals';
import {
  dataMessageSchema,
  formatSignerKey,
  headerHash,
  parseSignerKey,
  parseVerifierKey,
  formatVerifierKey,
  publicKeyFromSeed,
  signBatch,
  verifyBatch,
  type Sample,
} from '../../src/index.js';

const seed = new Uint8Array(32).map((_, i) => i + 1);
const key = parseSignerKey(formatSignerKey('gw-1', seed));
const verifier = parseVerifierKey(formatVerifierKey('gw-1', publicKeyFromSeed(seed)));
const other = parseVerifierKey(formatVerifierKey('gw-1', publicKeyFromSeed(new Uint8Array(32).fill(9))));

const records = (first: number, n: number): Sample[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument: 'utm-1',
    channel: 'force',
    ts: 1_800_000_000_000 + i * 100,
    value: 12.5 + i,
    unit: 'kN',
    quality: 'good' as const,
  }));

describe('signed batches', () => {
  test('a signed batch verifies, and chains to the previous header', () => {
    const first = signBatch(key, 'gw-1', 0, records(0, 5), null);
    const second = signBatch(key, 'gw-1', 1, records(5, 3), headerHash(first.header));
    expect(() => verifyBatch(first, records(0, 5), verifier, 'gw-1')).not.toThrow();
    expect(() => verifyBatch(second, records(5, 3), verifier, 'gw-1')).not.toThrow();
    expect(second.header).toMatchObject({ firstSeq: 5, count: 3, tsMin: 1_800_000_000_000, tsMax: 1_800_000_000_200, prev: expect.any(String) });
    // the message schema carries it
    expect(dataMessageSchema.parse({ v: 1, gateway: 'gw-1', batch: 1, samples: records(5, 3), signed: second }).signed).toEqual(second);
  });

  test('a changed value, a dropped record, another key or another gateway are each refused with the reason', () => {
    const signed = signBatch(key, 'gw-1', 0, records(0, 4), null);
    const changed = records(0, 4);
    changed[2] = { ...changed[2]!, value: 99 };
    expect(() => verifyBatch(signed, changed, verifier, 'gw-1')).toThrow(/do not hash to the signed Merkle root/);
    expect(() => verifyBatch(signed, records(0, 3), verifier, 'gw-1')).toThrow(/counts 4 records, the batch holds 3/);
    expect(() => verifyBatch(signed, records(0, 4), other, 'gw-1')).toThrow(/not the registered key/);
    expect(() => verifyBatch(signed, records(0, 4), verifier, 'gw-2')).toThrow(/header names gateway "gw-1"/);
    const forged = { ...signed, header: { ...signed.header, count: 5 } };
    expect(() => verifyBatch(forged, records(0, 5), verifier, 'gw-1')).toThrow(/bad signature/);
  });

  test('sequence numbers of a batch must be contiguous', () => {
    const gap = [...records(0, 2), ...records(3, 1)];
    expect(() => signBatch(key, 'gw-1', 0, gap, null)).toThrow(/records\[2\]\.seq: 3, expected 2/);
  });
});
