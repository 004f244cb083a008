// The canonical record encoding: golden vectors (bytes, leaf hashes and a batch root that must never
// change), an independent encoder written from the layout in record.ts, round trips and refusals.
import { describe, expect, test } from '@jest/globals';
import { decodeRecord, encodeRecord, fromHex, leafHash, recordLeafHash, recordsRoot, sha256, toHex, type Sample } from '../../src/index.js';

const sha256Hex = (text: string): string => toHex(sha256(new TextEncoder().encode(text)));

const KEY_ID = fromHex('a1b2c3d4');

const CASES: { sample: Sample; bytes: string; leaf: string }[] = [
  {
    sample: { seq: 0, instrument: 'utm-1', channel: 'force', ts: 1_800_000_000_000, value: 12.5, unit: 'kN', quality: 'good' },
    bytes: '010467772d31a1b2c3d4000000000000000018fae27693b400000575746d2d3105666f726365034029000000000000026b4e0000',
    leaf: 'a59b99ccd74191bb6ad64d6ff4001330d9f83a5c664bee0af02bc80b427dd642',
  },
  {
    sample: { seq: 2 ** 40 + 7, instrument: 'chamber-2', channel: 'door', ts: 1_800_000_000_123, value: true, unit: '', quality: 'uncertain' },
    bytes: '010467772d31a1b2c3d4000001000000000718fae2769b08d4c0096368616d6265722d3204646f6f7202000100',
    leaf: '7b94eedf33326e6169dfa3742acdc82215a6be390a7affc91c1a4ccb0e147b1e',
  },
  {
    sample: {
      seq: 42,
      instrument: 'bal-1',
      channel: 'status',
      ts: 1,
      value: 'Überlast µg',
      unit: 'µg',
      quality: 'bad',
      reason: 'E_TIMEOUT: no answer in 500 ms',
    },
    bytes:
      '010467772d31a1b2c3d4000000000000002a00000000000f42400562616c2d310673746174757304000dc39c6265726c61737420c2b56703c2b5670201001e455f54494d454f55543a206e6f20616e7377657220696e20353030206d73',
    leaf: '00e135729a6727e55995f355e22a99e2b8869539766a889c6dbc5b069fe4d054',
  },
  {
    sample: { seq: 43, instrument: 'bal-1', channel: 'mass', ts: 1_800_000_000_000, value: null, unit: 'g', quality: 'bad', reason: '' },
    bytes: '010467772d31a1b2c3d4000000000000002b18fae27693b400000562616c2d31046d61737300016702010000',
    leaf: '4b4744ca70ffb8bf816edb26b3d4ac8a9b6fb8aae0fba6d4d953c882ae47054e',
  },
];
const ROOT = '02a1971e8594dd2829f795255b50b017a82336c5aa2b5eddd810a3b89f2d0917';

/** The layout of record.ts written out again with Buffer, as a reader of the documentation would. */
function independent(gateway: string, keyId: Uint8Array, s: Sample): string {
  const parts: Buffer[] = [];
  const str8 = (t: string): void => {
    const b = Buffer.from(t, 'utf8');
    parts.push(Buffer.from([b.length]), b);
  };
  const str16 = (t: string): void => {
    const b = Buffer.from(t, 'utf8');
    const n = Buffer.alloc(2);
    n.writeUInt16BE(b.length);
    parts.push(n, b);
  };
  parts.push(Buffer.from([1]));
  str8(gateway);
  parts.push(Buffer.from(keyId));
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(BigInt(s.seq));
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(s.ts) * 1_000_000n);
  parts.push(seq, ts);
  str8(s.instrument);
  str8(s.channel);
  if (s.value === null) parts.push(Buffer.from([0]));
  else if (s.value === false) parts.push(Buffer.from([1]));
  else if (s.value === true) parts.push(Buffer.from([2]));
  else if (typeof s.value === 'number') {
    const f = Buffer.alloc(9);
    f[0] = 3;
    f.writeDoubleBE(s.value === 0 ? 0 : s.value, 1);
    parts.push(f);
  } else {
    parts.push(Buffer.from([4]));
    str16(s.value);
  }
  str8(s.unit);
  parts.push(Buffer.from([{ good: 0, uncertain: 1, bad: 2 }[s.quality]]));
  if (s.reason === undefined) parts.push(Buffer.from([0]));
  else {
    parts.push(Buffer.from([1]));
    str16(s.reason);
  }
  return Buffer.concat(parts).toString('hex');
}

describe('canonical record bytes', () => {
  test.each(CASES.map((c, i) => [i, c] as const))('golden vector %i: bytes, leaf hash, and the independent encoder agree', (_, c) => {
    const bytes = encodeRecord('gw-1', KEY_ID, c.sample);
    expect(toHex(bytes)).toBe(c.bytes);
    expect(independent('gw-1', KEY_ID, c.sample)).toBe(c.bytes);
    expect(toHex(recordLeafHash('gw-1', KEY_ID, c.sample))).toBe(c.leaf);
    expect(toHex(leafHash(bytes))).toBe(c.leaf);
    expect(decodeRecord(bytes)).toEqual({ gateway: 'gw-1', keyId: KEY_ID, sample: c.sample });
  });

  test('golden batch root of the four records', () => {
    expect(
      toHex(
        recordsRoot(
          'gw-1',
          KEY_ID,
          CASES.map((c) => c.sample),
        ),
      ),
    ).toBe(ROOT);
  });

  test('every field is covered: changing any one changes the leaf', () => {
    const base = CASES[2]!.sample;
    const leaf = toHex(recordLeafHash('gw-1', KEY_ID, base));
    const variants: Sample[] = [
      { ...base, seq: 41 },
      { ...base, ts: 2 },
      { ...base, instrument: 'bal-2' },
      { ...base, channel: 'statuS' },
      { ...base, value: 'Überlast µG' },
      { ...base, unit: 'mg' },
      { ...base, quality: 'uncertain' },
      { ...base, reason: 'E_TIMEOUT: no answer in 501 ms' },
    ];
    const { reason: _reason, ...withoutReason } = base;
    variants.push(withoutReason);
    for (const v of variants) expect(toHex(recordLeafHash('gw-1', KEY_ID, v))).not.toBe(leaf);
    expect(toHex(recordLeafHash('gw-2', KEY_ID, base))).not.toBe(leaf);
    expect(toHex(recordLeafHash('gw-1', fromHex('a1b2c3d5'), base))).not.toBe(leaf);
  });

  test('a value survives JSON: -0 is written as 0, floats and large integers round-trip exactly', () => {
    const s: Sample = { seq: 1, instrument: 'i', channel: 'c', ts: 5, value: -0, unit: '', quality: 'good' };
    const viaJson = JSON.parse(JSON.stringify(s)) as Sample;
    expect(toHex(encodeRecord('g', KEY_ID, s))).toBe(toHex(encodeRecord('g', KEY_ID, viaJson)));
    for (const value of [0.1 + 0.2, -1e-300, 2 ** 53 - 1, 1.7976931348623157e308]) {
      const r = { ...s, value };
      expect(decodeRecord(encodeRecord('g', KEY_ID, JSON.parse(JSON.stringify(r)) as Sample)).sample.value).toBe(value);
    }
    const late = { ...s, value: 7, ts: 9_223_372_036_854, seq: Number.MAX_SAFE_INTEGER };
    expect(decodeRecord(encodeRecord('g', KEY_ID, late)).sample).toEqual(late);
  });

  test("a value read from a result file: format 2, version 1's bytes then the file's SHA-256; without a file, version 1 unchanged", () => {
    const s: Sample = { seq: 7, instrument: 'utm-files', channel: 'force', ts: 1_700_000_000_000, value: 11.125, unit: 'kN', quality: 'good' };
    const file = sha256Hex('Time;Force [kN]\r\n');
    const v1 = encodeRecord('gw', KEY_ID, s);
    const v2 = encodeRecord('gw', KEY_ID, { ...s, file });
    expect(v1[0]).toBe(1);
    expect(v2[0]).toBe(2);
    expect(v2.length).toBe(v1.length + 32);
    expect(toHex(v2.subarray(1, v1.length))).toBe(toHex(v1.subarray(1)));
    expect(toHex(v2.subarray(v1.length))).toBe(file);
    expect(decodeRecord(v2).sample).toEqual({ ...s, file });
    expect(decodeRecord(v1).sample).toEqual(s);
    // the hash is signed: another file gives another leaf
    expect(toHex(recordLeafHash('gw', KEY_ID, { ...s, file }))).not.toBe(toHex(recordLeafHash('gw', KEY_ID, { ...s, file: sha256Hex('other') })));
    expect(() => encodeRecord('gw', KEY_ID, { ...s, file: 'ABC' })).toThrow(/file: expected the 64 hex digits/);
  });

  test("records of several files, in and out of turn, each keep their own file's hash (written and read)", () => {
    const s: Sample = { seq: 1, instrument: 'utm-files', channel: 'force', ts: 1_700_000_000_000, value: 1, unit: 'kN', quality: 'good' };
    // hashes that differ in their first byte, in their last byte only, and the all-zero hash
    const a = sha256Hex('file a');
    const b = `${a.slice(0, 62)}${a.slice(62) === '00' ? '01' : '00'}`;
    const zero = '0'.repeat(64);
    const c = `ff${a.slice(2)}`;
    const order = [zero, a, a, b, a, c, c, zero, b, zero];
    const encoded = order.map((file, i) => encodeRecord('gw', KEY_ID, { ...s, seq: i, file }));
    order.forEach((file, i) => expect(toHex((encoded[i] as Uint8Array).subarray(-32))).toBe(file));
    const read = encoded.map((bytes) => decodeRecord(bytes).sample.file);
    expect(read).toEqual(order);
    // and in another order again
    expect([9, 3, 1, 5, 0].map((i) => decodeRecord(encoded[i] as Uint8Array).sample.file)).toEqual([zero, b, a, c, zero]);
  });

  test('refuses what it cannot encode, naming the field', () => {
    const s: Sample = { seq: 1, instrument: 'i', channel: 'c', ts: 5, value: 1, unit: '', quality: 'good' };
    expect(() => encodeRecord('g', KEY_ID, { ...s, value: Number.NaN })).toThrow(/value: NaN is not a finite number/);
    expect(() => encodeRecord('g', KEY_ID, { ...s, ts: -1 })).toThrow(/ts: -1 is outside/);
    expect(() => encodeRecord('g', KEY_ID, { ...s, seq: 1.5 })).toThrow(/seq: 1.5/);
    expect(() => encodeRecord('g', KEY_ID, { ...s, unit: 'µ'.repeat(200) })).toThrow(/unit: 400 bytes of UTF-8, at most 255/);
    expect(() => encodeRecord('g', fromHex('a1b2'), s)).toThrow(/key id: 2 bytes/);
  });

  test('decoding refuses truncated, extended or unknown input with the place', () => {
    const bytes = fromHex(CASES[0]!.bytes);
    expect(() => decodeRecord(bytes.subarray(0, 20))).toThrow(/ends inside ts/);
    expect(() => decodeRecord(new Uint8Array([...bytes, 0]))).toThrow(/1 bytes after the end/);
    const v3 = bytes.slice();
    v3[0] = 3;
    expect(() => decodeRecord(v3)).toThrow(/format 3, expected 1 or 2/);
    // a version 1 record relabelled 2 lacks the file hash
    const v2 = bytes.slice();
    v2[0] = 2;
    expect(() => decodeRecord(v2)).toThrow(/ends inside file hash/);
    const kind = bytes.slice();
    kind[bytes.length - 14] = 9; // the value kind byte of case 0
    expect(() => decodeRecord(kind)).toThrow(/value kind 9 is unknown/);
  });
});
