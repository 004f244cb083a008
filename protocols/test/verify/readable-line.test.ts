// The verifier reads a line of records.jsonl in place when it is exactly what the exporter writes for the
// signed record (JSON.stringify of the record's fields): every line the exporter can write must match, and a
// line that says anything else, down to one character, must not (it is then parsed and compared field by field).
import { describe, expect, test } from '@jest/globals';
import { readableLineSays, readableRecordLine, type Sample } from '@labtrace/protocols';

const exported = readableRecordLine;

const base: Sample = { seq: 41, instrument: 'utm-01', channel: 'force', ts: 1_800_000_000_123, value: 12.5, unit: 'kN', quality: 'good' };
const values: Sample['value'][] = [
  0,
  -0,
  1,
  -1.5,
  0.1,
  1 / 3,
  1e21,
  1e-7,
  5e-324,
  Number.MAX_VALUE,
  2 ** 53 + 2,
  null,
  true,
  false,
  '',
  'ok',
  'Überlast',
  'a "quoted" \\ text',
  'line\nbreak\ttab',
  '\u0000\u001f',
  '\u2028',
  '😀',
  '\ud800',
  'x\udc00y',
];
const texts = ['', 'utm "A"', 'ü', '\u0007', 'back\\slash', 'é😀'];

describe('lines as the exporter writes them', () => {
  test.each(values.map((v) => [JSON.stringify(v) ?? String(v), v]))('value %s', (_name, value) => {
    const s = { ...base, value };
    expect(readableLineSays(exported('gw-1', s, 7), 'gw-1', s, 7)).toBe(true);
  });
  test.each(texts)('texts %j in every text field, with and without a reason', (t) => {
    const s: Sample = { ...base, instrument: t, channel: t, unit: t, value: t, reason: t };
    expect(readableLineSays(exported(t, s, 0), t, s, 0)).toBe(true);
    const { reason: _drop, ...plain } = s;
    expect(readableLineSays(exported(t, plain, 0), t, plain, 0)).toBe(true);
  });
  test('other qualities, large numbers', () => {
    for (const quality of ['uncertain', 'bad'] as const) {
      const s = { ...base, quality, seq: Number.MAX_SAFE_INTEGER, ts: 9_223_372_036_854, reason: 'E_RANGE' };
      expect(readableLineSays(exported('gw-1', s, 2 ** 40), 'gw-1', s, 2 ** 40)).toBe(true);
    }
  });
});

describe('lines that say something else', () => {
  const line = exported('gw-1', { ...base, reason: 'r' }, 7);
  const s: Sample = { ...base, reason: 'r' };
  test('each field changed', () => {
    expect(readableLineSays(line, 'gw-2', s, 7)).toBe(false);
    expect(readableLineSays(line, 'gw-1', s, 8)).toBe(false);
    for (const changed of [
      { seq: 42 },
      { instrument: 'utm-02' },
      { channel: 'forc' },
      { ts: base.ts + 1 },
      { value: 12.50001 },
      { value: '12.5' },
      { unit: 'N' },
      { quality: 'bad' as const },
      { reason: 'R' },
      { reason: undefined },
    ])
      expect(readableLineSays(line, 'gw-1', { ...s, ...changed }, 7)).toBe(false);
  });
  test('the same fields written otherwise, a field more, a character more or less', () => {
    expect(readableLineSays(line.replace('"seq":41', '"seq":41.0'), 'gw-1', s, 7)).toBe(false);
    expect(readableLineSays(line.replace(',', ', '), 'gw-1', s, 7)).toBe(false);
    expect(readableLineSays(line.replace('}', ',"extra":1}'), 'gw-1', s, 7)).toBe(false);
    expect(readableLineSays(`${line} `, 'gw-1', s, 7)).toBe(false);
    expect(readableLineSays(line.slice(0, -1), 'gw-1', s, 7)).toBe(false);
    expect(readableLineSays(line.replace('"utm-01"', '"utm\\u002d01"'), 'gw-1', s, 7)).toBe(false);
  });
});
