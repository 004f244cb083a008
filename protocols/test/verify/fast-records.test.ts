// The verifier's fast path (fast-records.ts) takes a batch whose records and readable lines are all as the
// exporter writes them, with the bounds the full path finds; and gives up, leaving the batch to the full path, on
// any change at all: every single byte of the records and every single character of the lines, changed in turn.
import { describe, expect, test } from '@jest/globals';
import { encodeRecords, readableRecordLine, readRecords, type Sample } from '@labtrace/protocols';
import { fastBatch as fastOnBytes, readableBytes } from '../../src/verify/fast-records.js';

const fastBatch = (records: Uint8Array, h: typeof header, key: Uint8Array, lines: string[], from: number): Uint32Array | undefined =>
  fastOnBytes(records, h, key, readableBytes(lines), from);

const GATEWAY = 'gw-1';
const KEY = new Uint8Array([1, 2, 3, 4]);
const BATCH = 17;
const samples: Sample[] = [
  { seq: 40, instrument: 'utm-01', channel: 'force', ts: 1_800_000_000_000, value: 12.5, unit: 'kN', quality: 'good' },
  { seq: 41, instrument: 'utm-01', channel: 'state', ts: 1_800_000_000_001, value: 'running', unit: '', quality: 'uncertain', reason: 'E_SLOW' },
  { seq: 42, instrument: 'utm-01', channel: 'door', ts: 1_800_000_000_002, value: true, unit: '', quality: 'good' },
  { seq: 43, instrument: 'bal-2', channel: 'mass', ts: 1_800_000_000_002, value: null, unit: 'g', quality: 'bad', reason: 'timeout' },
  { seq: 44, instrument: 'bal-2', channel: 'mass', ts: 1_800_000_000_003, value: -0.000123, unit: 'g', quality: 'good' },
  { seq: 45, instrument: 'bal-2', channel: 'count', ts: 1_800_000_000_004, value: 1234567, unit: '', quality: 'good' },
  { seq: 46, instrument: 'bal-2', channel: 'open', ts: 1_800_000_000_004, value: false, unit: '', quality: 'good' },
];
const header = { gateway: GATEWAY, batch: BATCH, firstSeq: 40, count: samples.length, tsMin: 1_800_000_000_000, tsMax: 1_800_000_000_004 };

const exported = (s: Sample): string => readableRecordLine(GATEWAY, s, BATCH);
const { bytes } = encodeRecords(GATEWAY, KEY, samples);
const lines = samples.map(exported);

test('records and lines as the exporter writes them: taken, with the bounds of the full path', () => {
  const bounds: number[] = [0];
  readRecords(bytes, (_r, _start, end) => void bounds.push(end));
  expect(Array.from(fastBatch(bytes, header, KEY, lines, 0) ?? [])).toEqual(bounds);
  // the lines further on in the file
  expect(fastBatch(bytes, header, KEY, ['x', 'y', ...lines], 2)).toBeDefined();
});

describe('any change gives up', () => {
  test('every byte of the records, changed in turn', () => {
    let taken = 0;
    for (let i = 0; i < bytes.length; i++)
      for (const flip of [0x01, 0x40, 0x80]) {
        const changed = bytes.slice();
        changed[i] = changed[i]! ^ flip;
        if (fastBatch(changed, header, KEY, lines, 0) !== undefined) taken++;
      }
    expect(taken).toBe(0);
  });

  test('every character of every line, changed in turn', () => {
    let taken = 0;
    lines.forEach((line, k) => {
      for (let i = 0; i < line.length; i++)
        for (const c of ['0', '9', 'a', '"', ' ', 'é']) {
          if (line[i] === c) continue;
          const changed = [...lines];
          changed[k] = line.slice(0, i) + c + line.slice(i + 1);
          if (fastBatch(bytes, header, KEY, changed, 0) !== undefined) taken++;
        }
    });
    expect(taken).toBe(0);
  });

  test('a line missing, added, swapped; the header or the key otherwise', () => {
    expect(fastBatch(bytes, header, KEY, lines.slice(0, -1), 0)).toBeUndefined();
    expect(fastBatch(bytes, header, KEY, [lines[1]!, lines[0]!, ...lines.slice(2)], 0)).toBeUndefined();
    expect(fastBatch(bytes.subarray(0, bytes.length - 1), header, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, count: samples.length - 1 }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, firstSeq: 41 }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, tsMax: 1_800_000_000_003 }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, tsMin: 1_800_000_000_001 }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, gateway: 'gw-2' }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, { ...header, batch: 18 }, KEY, lines, 0)).toBeUndefined();
    expect(fastBatch(bytes, header, new Uint8Array([1, 2, 3, 5]), lines, 0)).toBeUndefined();
  });

  test('a number written otherwise is read as JSON.parse reads it, as the full path compares it', () => {
    // samples[0].value is 12.5 and samples[4].value -0.000123
    const same = [...lines];
    same[0] = lines[0]!.replace('"value":12.5,', '"value":12.50,');
    same[4] = lines[4]!.replace('"value":-0.000123,', '"value":-0.0001230,');
    expect(fastBatch(bytes, header, KEY, same, 0)).toBeDefined();
    for (const other of ['"value":12.51,', '"value":1.25e1,', '"value":012.5,', '"value":12.,', '"value":+12.5,', '"value":12.5000000000000001,']) {
      const changed = [...lines];
      changed[0] = lines[0]!.replace('"value":12.5,', other);
      expect(fastBatch(bytes, header, KEY, changed, 0)).toBeUndefined();
    }
  });

  test('text the exporter escapes or that is not ASCII is left to the full path', () => {
    for (const instrument of ['utm "A"', 'ü', 'back\\slash', 'tab\t']) {
      const odd = samples.map((s) => ({ ...s, instrument }));
      const encoded = encodeRecords(GATEWAY, KEY, odd).bytes;
      expect(fastBatch(encoded, header, KEY, odd.map(exported), 0)).toBeUndefined();
    }
  });
});
