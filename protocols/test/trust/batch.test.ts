import { describe, expect, test } from '@jest/globals';
import {
  dataMessageSchema,
  formatSignerKey,
  headerHash,
  parseSignerKey,
  parseVerifierKey,
  formatVerifierKey,
  publicKeyFromSeed,
  isSealedBatch,
  openBatch,
  sealBatch,
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

describe('the wire form of a batch (LTB1)', () => {
  test('sealed and opened: the same header as signBatch, the records back, the leaves of the received bytes', () => {
    const samples = records(10, 6);
    samples[2] = { ...samples[2]!, value: 'Überlast', quality: 'bad', reason: 'E_RANGE' };
    samples[3] = { ...samples[3]!, value: null };
    const { signed, wire } = sealBatch(key, 'gw-1', 4, samples, new Uint8Array(32).fill(1));
    expect(signed).toEqual(signBatch(key, 'gw-1', 4, samples, new Uint8Array(32).fill(1)));
    expect(isSealedBatch(wire)).toBe(true);
    const opened = openBatch(wire);
    expect(opened.signed).toEqual(signed);
    expect(opened.samples).toEqual(samples);
    expect(() => verifyBatch(opened.signed, opened.samples, verifier, 'gw-1', opened.leaves)).not.toThrow();
  });

  test('one changed byte in a value is caught by the root; broken framing is named', () => {
    const samples = records(0, 3);
    const { wire } = sealBatch(key, 'gw-1', 0, samples, null);
    // the last record's float value: 8 bytes before unit (1+2 "kN"), quality and reason flag
    const altered = wire.slice();
    altered[altered.length - 6] = altered[altered.length - 6]! ^ 0x01;
    const opened = openBatch(altered);
    expect(opened.samples[2]!.value).not.toBe(samples[2]!.value);
    expect(() => verifyBatch(opened.signed, opened.samples, verifier, 'gw-1', opened.leaves)).toThrow(/do not hash to the signed Merkle root/);
    expect(() => openBatch(wire.subarray(0, wire.length - 3))).toThrow(/records\[2\]: record: ends inside/);
    expect(() => openBatch(new Uint8Array([...wire, 0]))).toThrow(/ends before records\[3\]|1 bytes after the last record/);
    const prefix = wire.slice();
    prefix[wire.length - (wire.length - 8 - new DataView(wire.buffer).getUint32(4) - 68)] = 7;
    expect(() => openBatch(prefix)).toThrow(/records\[0\] does not start with the leaf prefix 0x00/);
    expect(() => openBatch(new TextEncoder().encode('{"v":1}'))).toThrow(/does not start with LTB1/);
  });

  test('a record of another gateway inside the batch is refused while opening', () => {
    const own = sealBatch(key, 'gw-1', 0, records(0, 2), null);
    const foreign = sealBatch(parseSignerKey(formatSignerKey('gw-2', seed)), 'gw-2', 0, records(0, 2), null);
    const headerEnd = (w: Uint8Array): number => 8 + new DataView(w.buffer).getUint32(4) + 68;
    const spliced = new Uint8Array([...own.wire.subarray(0, headerEnd(own.wire)), ...foreign.wire.subarray(headerEnd(foreign.wire))]);
    expect(() => openBatch(spliced)).toThrow(/records\[0\] names gateway "gw-2", the header "gw-1"/);
  });
});
