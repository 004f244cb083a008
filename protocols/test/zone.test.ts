// Wall clocks in time zones from the platform's zone data: offsets across changes (checked against the rules of the
// zones: CET/CEST, EST/EDT, CST), fixed offsets, and a zone the platform does not know.
import { expect, test } from '@jest/globals';
import { wallClockParts, zoneOffsetAt } from '../src/index.js';

const H = 3_600_000;

test("a zone's offset on both sides of its changes, and the same offset asked again (kept per minute)", () => {
  // Berlin changes at 01:00 UTC on 2026-03-29 (to +2) and on 2026-10-25 (back to +1)
  for (let round = 0; round < 2; round++) {
    expect(zoneOffsetAt(Date.UTC(2026, 2, 29, 0, 59, 59, 999), 'Europe/Berlin')).toBe(1 * H);
    expect(zoneOffsetAt(Date.UTC(2026, 2, 29, 1, 0, 0), 'Europe/Berlin')).toBe(2 * H);
    expect(zoneOffsetAt(Date.UTC(2026, 9, 25, 0, 59, 59), 'Europe/Berlin')).toBe(2 * H);
    expect(zoneOffsetAt(Date.UTC(2026, 9, 25, 1, 0, 0), 'Europe/Berlin')).toBe(1 * H);
    // New York: 2026-03-08 07:00 UTC to -4
    expect(zoneOffsetAt(Date.UTC(2026, 2, 8, 6, 59), 'America/New_York')).toBe(-5 * H);
    expect(zoneOffsetAt(Date.UTC(2026, 2, 8, 7, 0), 'America/New_York')).toBe(-4 * H);
    expect(zoneOffsetAt(Date.UTC(2026, 11, 7, 23, 59, 59), 'Asia/Shanghai')).toBe(8 * H);
  }
  expect(zoneOffsetAt(Date.UTC(2026, 0, 1), 'UTC')).toBe(0);
  expect(zoneOffsetAt(Date.UTC(2026, 0, 1), '+05:30')).toBe(5.5 * H);
  expect(zoneOffsetAt(Date.UTC(2026, 0, 1), '-03:30')).toBe(-3.5 * H);
});

test('the wall clock of an instant in a zone, and a zone the platform does not know', () => {
  expect(wallClockParts(Date.UTC(2026, 11, 7, 16, 30, 5), 'Asia/Shanghai')).toEqual({
    year: 2026,
    month: 12,
    day: 8,
    hour: 0,
    minute: 30,
    second: 5,
  });
  expect(() => zoneOffsetAt(0, 'Mars/Olympus')).toThrow(RangeError);
});
