// A time zone means the same on every Node.js line labtrace runs on: newer runtimes' Intl (Node.js 22 and later) take
// offsets such as +08:00 or -05 as zones where older ones refuse them. A user's zone is an IANA zone on all of them;
// a result file's zone may be a fixed offset, in the one spelling ±HH:MM only. (CI runs this on 20 and on 24.)
import { describe, expect, test } from '@jest/globals';
import { isTimeZone, timeZoneSchema } from '../../src/api/auth.js';
import { validZone } from '../../src/profile.js';

describe("a user's time zone (isTimeZone, timeZoneSchema)", () => {
  test.each(['Asia/Shanghai', 'Europe/Berlin', 'UTC', 'Etc/GMT-8'])('%s is a zone', (zone) => {
    expect(isTimeZone(zone)).toBe(true);
  });
  test.each(['+08:00', '+0800', '-05', '\u221205:00', '', 'Mars/Olympus_Mons'])('%j is not', (zone) => {
    expect(isTimeZone(zone)).toBe(false);
    expect(timeZoneSchema.safeParse(zone).success).toBe(false);
  });
  test('a zone is kept in its canonical spelling', () => {
    expect(timeZoneSchema.parse('asia/shanghai')).toBe('Asia/Shanghai');
  });
});

describe("a result file's zone (validZone)", () => {
  test.each(['UTC', '+08:00', '-05:30', 'Asia/Shanghai'])('%s is taken', (zone) => {
    expect(validZone(zone)).toBe(true);
  });
  test.each(['+0800', '-05', '+8', '\u221205:00', 'Mars/Olympus_Mons'])('%j is not', (zone) => {
    expect(validZone(zone)).toBe(false);
  });
});
