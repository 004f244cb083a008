// Line protocol straight from record bytes: byte for byte the lines of toLineProtocol for the decoded samples (every
// value kind, escapes, text that is not ASCII, a reason, a record naming a result file), in chunks of maxLines lines,
// without the samples dated outside an accepted window; and from a sealed batch's wire form.
import { describe, expect, test } from '@jest/globals';
import { encodeRecords, fromHex, parseSignerKey, formatSignerKey, sealBatch, type Sample } from '../../src/index.js';
import { joinChunks, linesToBody, recordsToLineProtocol, sealedBatchRecords, toLineProtocol } from '../../src/influx/index.js';

const KEY_ID = fromHex('a1b2c3d4');
const text = (chunk: Uint8Array): string => new TextDecoder().decode(chunk);

const SAMPLES: Sample[] = [
  { seq: 0, instrument: 'utm-1', channel: 'force', ts: 1_800_000_000_000, value: 12.5, unit: 'kN', quality: 'good' },
  { seq: 1, instrument: 'utm-1', channel: 'force', ts: 1_800_000_000_010, value: 3, unit: 'kN', quality: 'good' },
  { seq: 2, instrument: 'utm-1', channel: 'force', ts: 1_800_000_000_020, value: -0.000001234, unit: 'kN', quality: 'uncertain' },
  { seq: 3, instrument: 'utm-1', channel: 'force', ts: 1_800_000_000_030, value: 1e21, unit: 'kN', quality: 'good' },
  { seq: 4, instrument: 'chamber 2', channel: 'door,open=1', ts: 1_800_000_000_040, value: true, unit: '', quality: 'good' },
  { seq: 5, instrument: 'chamber-2', channel: 'door', ts: 1_800_000_000_050, value: false, unit: '', quality: 'bad', reason: 'say "no" \\ now' },
  { seq: 6, instrument: 'bal-1', channel: 'status', ts: 1_800_000_000_060, value: 'Überlast µg, "a=b" \\ c\nnext', unit: 'µg', quality: 'bad' },
  { seq: 7, instrument: 'bal-1', channel: 'mass', ts: 1_800_000_000_070, value: null, unit: 'g', quality: 'bad', reason: '' },
  { seq: 2 ** 40, instrument: 'bal-1', channel: 'mass', ts: 1, value: 0.1, unit: 'g', quality: 'good' },
  {
    seq: 9,
    instrument: 'bal-1',
    channel: 'result',
    ts: 1_800_000_000_090,
    value: 42,
    unit: 'MPa',
    quality: 'good',
    file: 'ab'.repeat(32),
  },
];

describe('recordsToLineProtocol', () => {
  test('the same lines as toLineProtocol of the decoded samples', () => {
    const { bytes } = encodeRecords('gw-1', KEY_ID, SAMPLES);
    for (const measurement of ['measurement', 'lab data,v=1']) {
      const body = recordsToLineProtocol(bytes, { measurement });
      expect(body.lines).toBe(SAMPLES.length);
      expect(body.chunks).toHaveLength(1);
      expect(text(body.chunks[0] as Uint8Array)).toBe(toLineProtocol('gw-1', SAMPLES, measurement).join('\n'));
      // the gateway tag from the caller, or each record's own
      expect(text(recordsToLineProtocol(bytes, { measurement, gateway: 'gw 9' }).chunks[0] as Uint8Array)).toBe(
        toLineProtocol('gw 9', SAMPLES, measurement).join('\n'),
      );
    }
  });

  test('chunks of at most maxLines lines; the accepted window leaves samples out', () => {
    const { bytes } = encodeRecords('gw-1', KEY_ID, SAMPLES);
    const lines = toLineProtocol('gw-1', SAMPLES);
    const body = recordsToLineProtocol(bytes, { maxLines: 3 });
    expect(body.chunks.map(text)).toEqual([lines.slice(0, 3), lines.slice(3, 6), lines.slice(6, 9), lines.slice(9)].map((l) => l.join('\n')));
    expect(body.chunks.map(text)).toEqual(linesToBody(lines, 3).chunks.map(text));
    expect(text(joinChunks(body.chunks))).toBe(lines.join('\n'));

    const accepted = { earliest: 1_800_000_000_010, latest: 1_800_000_000_060 };
    const inWindow = SAMPLES.filter((s) => s.ts >= accepted.earliest && s.ts <= accepted.latest);
    const windowed = recordsToLineProtocol(bytes, { accepted, maxLines: 4 });
    expect(windowed.lines).toBe(inWindow.length);
    expect(text(joinChunks(windowed.chunks))).toBe(toLineProtocol('gw-1', inWindow).join('\n'));
    expect(recordsToLineProtocol(bytes, { accepted: { earliest: 0, latest: 0 } })).toEqual({ chunks: [], lines: 0 });
  });

  test('bytes that are not records are refused naming the record', () => {
    const { bytes } = encodeRecords('gw-1', KEY_ID, SAMPLES.slice(0, 2));
    expect(() => recordsToLineProtocol(bytes.subarray(0, bytes.length - 3))).toThrow(/^records\[1\]: record: ends inside/);
    const wrong = bytes.slice();
    wrong[0] = 0x01;
    expect(() => recordsToLineProtocol(wrong)).toThrow('records[0] does not start with the leaf prefix 0x00');
  });

  test("a sealed batch's records, read from its wire form", () => {
    const key = parseSignerKey(formatSignerKey('gw-1', new Uint8Array(32).fill(7)));
    const { wire } = sealBatch(key, 'gw-1', 0, SAMPLES.slice(0, 8), null);
    const records = sealedBatchRecords(wire);
    expect(records).toBeDefined();
    expect(text(joinChunks(recordsToLineProtocol(records as Uint8Array).chunks))).toBe(toLineProtocol('gw-1', SAMPLES.slice(0, 8)).join('\n'));
    expect(sealedBatchRecords(new TextEncoder().encode('{"v":1}'))).toBeUndefined();
  });
});
