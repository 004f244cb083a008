// The one parser of times from outside: calendar dates and instants read strictly (no rollover), bounded to
// 2000..2200, and the config files' times (accreditation validity) going through it.
import { describe, expect, test } from '@jest/globals';
import { accreditationConfigSchema } from '../../src/lab/accreditation.js';
import { configTime, isLabTime, parseCalendarDate, parseInstant } from '../../src/api/time.js';
import { textProblem } from '../../src/api/text.js';

describe('parseCalendarDate', () => {
  test.each([
    ['2026-02-28', Date.UTC(2026, 1, 28)],
    ['2028-02-29', Date.UTC(2028, 1, 29)],
    ['2000-01-01', Date.UTC(2000, 0, 1)],
  ])('%s is a date', (text, ms) => expect(parseCalendarDate(text)).toBe(ms));

  test.each([
    ['2026-02-31', '2026-02-31 is not a date of the calendar'],
    ['2026-02-29', '2026-02-29 is not a date of the calendar'],
    ['2100-02-29', '2100-02-29 is not a date of the calendar'],
    ['2026-13-01', '2026-13-01 is not a date of the calendar'],
    ['2026-00-10', '2026-00-10 is not a date of the calendar'],
    ['1999-12-31', 'must be a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z'],
    ['0099-01-01', 'must be a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z'],
    ['2026-2-3', 'expected a date YYYY-MM-DD'],
    ['2026-02-03T00:00:00Z', 'expected a date YYYY-MM-DD'],
  ])('%s is refused: %s', (text, why) => expect(parseCalendarDate(text)).toBe(why));
});

describe('parseInstant', () => {
  test.each([
    ['2026-11-27T10:00:00Z', Date.UTC(2026, 10, 27, 10)],
    ['2026-11-27T10:00Z', Date.UTC(2026, 10, 27, 10)],
    ['2026-11-27T10:00:00.123456Z', Date.UTC(2026, 10, 27, 10, 0, 0, 123)],
    ['2026-11-27T11:30:00+01:30', Date.UTC(2026, 10, 27, 10)],
    ['2026-11-27T05:00:00-05:00', Date.UTC(2026, 10, 27, 10)],
  ])('%s is an instant', (text, ms) => expect(parseInstant(text)).toBe(ms));

  test.each([
    ['2026-02-31T10:00:00Z', '2026-02-31 10:00:00 is not a date of the calendar'],
    ['2026-11-27T24:00:00Z', '2026-11-27 24:00:00 is not a date of the calendar'],
    ['2026-11-27T10:60:00Z', '2026-11-27 10:60:00 is not a date of the calendar'],
    ['2026-11-27T10:00:60Z', '2026-11-27 10:00:60 is not a date of the calendar'],
    ['2026-11-27T10:00:00+24:00', '+24:00 is not a UTC offset'],
    ['2026-11-27T10:00:00', 'expected an ISO 8601 date-time with its offset, e.g. 2026-11-27T10:00:00Z'],
    ['Fri, 27 Nov 2026 10:00:00 GMT', 'expected an ISO 8601 date-time with its offset, e.g. 2026-11-27T10:00:00Z'],
    ['2200-01-01T00:00:00.001Z', 'must be a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z'],
  ])('%s is refused: %s', (text, why) => expect(parseInstant(text)).toBe(why));
});

describe('configTime and the accreditation config', () => {
  test('ms, a date or an instant; never a rolled-over date or 9e15 ms', () => {
    expect(configTime.parse('2026-01-31')).toBe(Date.UTC(2026, 0, 31));
    expect(configTime.parse(Date.UTC(2026, 0, 31))).toBe(Date.UTC(2026, 0, 31));
    expect(configTime.safeParse(9e15).success).toBe(false);
    expect(configTime.safeParse(true).success).toBe(false);
  });

  test('accreditation validity 2026-02-31 is refused by its path, not read as 2026-03-03', () => {
    const parsed = accreditationConfigSchema.safeParse({
      accreditations: [
        {
          id: 'acc-1',
          body: 'CNAS',
          number: 'L1',
          validFrom: '2026-01-01',
          validTo: '2026-02-31',
          scope: [{ standard: 'S', measurand: 'm', unit: 'N' }],
        },
      ],
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['accreditations.0.validTo', '2026-02-31 is not a date of the calendar'],
    ]);
  });

  test('isLabTime bounds stored times', () => {
    expect(isLabTime(Date.UTC(2026, 0, 1))).toBe(true);
    expect(isLabTime(9e15)).toBe(false);
    expect(isLabTime(0)).toBe(false);
    expect(isLabTime(Date.UTC(2026, 0, 1) + 0.5)).toBe(false);
  });
});

describe('textProblem', () => {
  test.each([
    ['a \ud800 b', false, 'contains a lone UTF-16 surrogate (not well-formed Unicode)'],
    ['\udc00', true, 'contains a lone UTF-16 surrogate (not well-formed Unicode)'],
    ['a\u0000', true, 'contains the control character U+0000'],
    ['a\u001b[31m', false, 'contains the control character U+001B (one line expected)'],
    ['a\tb', false, 'contains the control character U+0009 (one line expected)'],
    ['a\u007f', true, 'contains the control character U+007F'],
  ])('%j (multiline %s): %s', (text, multiline, why) => expect(textProblem(text, multiline)).toBe(why));

  test.each([['steel 😀 bar'], ['line one\r\nline two\ttabbed'], ['Prüfbericht']])('%j is text', (text) =>
    expect(textProblem(text, true)).toBeUndefined(),
  );
});
