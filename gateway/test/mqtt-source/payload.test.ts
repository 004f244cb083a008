import { describe, expect, test } from '@jest/globals';
import { isLabtraceError } from '@labtrace/protocols';
import { compilePath, engineeringValue, parsePlainNumber, parseTimestamp, readPath } from '../../src/mqtt-source/payload.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);

describe('compilePath and readPath', () => {
  const doc = { reading: { value: 21.5 }, data: [{ v: 1 }, { v: 2 }, { v: 3.75 }], matrix: [[0, 7]], 'odd-key': true };

  test.each([
    ['reading.value', 21.5],
    ['data[2].v', 3.75],
    ['matrix[0][1]', 7],
    ['odd-key', true],
  ])('%s', (path, value) => {
    expect(readPath(doc, compilePath(path, 'p'))).toEqual({ found: true, value });
  });

  test('a top-level array is indexed with [n]', () => {
    expect(readPath([{ v: 4 }], compilePath('[0].v', 'p'))).toEqual({ found: true, value: 4 });
  });

  test('a missing step is named', () => {
    expect(readPath(doc, compilePath('reading.temp', 'p'))).toEqual({ found: false, missing: 'reading.temp' });
    expect(readPath(doc, compilePath('data[3].v', 'p'))).toEqual({ found: false, missing: 'data[3]' });
    expect(readPath(doc, compilePath('reading[0]', 'p'))).toEqual({ found: false, missing: 'reading[0]' });
    expect(readPath(42, compilePath('reading', 'p'))).toEqual({ found: false, missing: 'reading' });
  });

  test('inherited properties are not values, and prototype keys are refused in a profile', () => {
    expect(readPath({}, ['constructor']).found).toBe(false);
    expect(readPath(JSON.parse('{"a":{}}'), ['a', '__proto__']).found).toBe(false);
    expect(() => compilePath('a.__proto__', 'p')).toThrow(/"__proto__" cannot be a key/);
    expect(() => compilePath('data[5000]', 'p')).toThrow(/index 5000 is larger than 1000/);
  });

  test.each(['', 'a..b', '.a', 'a.', 'a[x]', 'a[1', 'a]', 'a.[0]'])('"%s" is refused with the field named', (path) => {
    let error: unknown;
    try {
      compilePath(path, 'ut-1: points[0].jsonPath');
    } catch (err) {
      error = err;
    }
    expect(isLabtraceError(error) && error.code === 'E_PROFILE').toBe(true);
    expect((error as Error).message).toMatch(/^ut-1: points\[0\]\.jsonPath: .* is not a dotted path/);
  });
});

describe('parsePlainNumber', () => {
  test.each([
    ['21.5', 21.5],
    [' -3e2\n', -300],
    ['+.5', 0.5],
    ['7.', 7],
  ])('%j is %d', (text, value) => expect(parsePlainNumber(text)).toBe(value));

  test.each(['', ' ', 'abc', '21.5 kN', '0x10', 'Infinity', 'NaN', '1e999', '{"v":1}', 'true'])('%j is not a plain number', (text) => {
    expect(parsePlainNumber(text)).toBeUndefined();
  });
});

describe('parseTimestamp', () => {
  test('ms since the epoch, rounded to whole ms', () => {
    expect(parseTimestamp(NOW - 1000.4, NOW)).toEqual({ ok: true, ts: NOW - 1000 });
  });

  test.each([
    ['2025-06-01T11:59:59.250Z', NOW - 750],
    ['2025-06-01T13:59:59.250+02:00', NOW - 750],
    ['2025-06-01T07:00:00-0500', NOW],
    ['2025-06-01 12:00:00,5Z', NOW + 500],
  ])('ISO 8601 %s', (text, ts) => expect(parseTimestamp(text, NOW)).toEqual({ ok: true, ts }));

  test.each([
    [Infinity, /not a finite number/],
    [NaN, /not a finite number/],
    [NOW + 86_400_001, /more than 1 day in the future/],
    [1_748_779_200, /before 2000-01-01 \(seconds instead of milliseconds\?\)/],
    ['2025-06-01T12:00:00', /not ISO 8601 with a zone/],
    ['yesterday', /not ISO 8601/],
    ['2025-13-45T12:00:00Z', /not a valid date/],
    ['2025-02-30T12:00:00Z', /not a valid date/],
    ['2025-06-01T25:00:00Z', /not a valid date/],
    [null, /timestamp is null/],
    [{ t: 1 }, /timestamp is an object/],
  ])('%p is refused', (raw, reason) => {
    const result = parseTimestamp(raw, NOW);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  test('up to 1 day ahead is accepted (instrument clocks drift)', () => {
    expect(parseTimestamp(NOW + 86_400_000, NOW)).toEqual({ ok: true, ts: NOW + 86_400_000 });
  });
});

describe('engineeringValue', () => {
  test.each([
    [21.37, 0.1, 0, 2.137],
    [6137, 0.01, -40, 21.37],
    [3, 0.1, 0, 0.3],
    [5, 1, 0, 5],
    [1e-7, 3, 0, 3e-7],
    [-12.5, 2, 0.25, -24.75],
  ])('%d * %d + %d = %d', (raw, scale, offset, value) => expect(engineeringValue(raw, scale, offset)).toBe(value));

  test('overflow is not finite, so the caller can refuse it', () => {
    expect(Number.isFinite(engineeringValue(1e308, 10, 0))).toBe(false);
  });
});
