// The result-file parsers against files as instruments write them: CSV (decimal comma, header rows), XLSX
// written by a spreadsheet library, JSON with paths, text lines by a pattern; times in a zone; and profiles
// refused at load with the field named.
import { describe, expect, test } from '@jest/globals';
import ExcelJS from 'exceljs';
import { fileProfileSchema, issuesOf, type FileProfileInput } from '@labtrace/protocols';
import { parseResultFile, readNumber, wallClock } from '../../src/files/result-parser.js';

const identity = { maker: 'ACME', model: 'R1', serialNumber: 'S-1' };
const profileOf = (input: Omit<FileProfileInput, 'protocol' | 'id' | 'identity' | 'folder'>) =>
  fileProfileSchema.parse({ protocol: 'file', id: 'r-1', identity, folder: '/tmp/results', ...input });

describe('CSV', () => {
  const profile = profileOf({
    parser: { format: 'csv', delimiter: ';', skipRows: 2, decimalComma: true },
    timestamp: { from: 'Zeit', format: 'dd.MM.yyyy HH:mm:ss', zone: 'Europe/Berlin' },
    points: [
      { name: 'force', from: 'Kraft', unit: 'kN' },
      { name: 'strain', from: 3, unit: '%' },
      { name: 'specimen', from: 'Probe', type: 'text' },
    ],
  });
  const csv = 'Prüfbericht\r\nMaschine 4\r\nZeit;Kraft;Dehnung;Probe\r\n29.03.2026 01:59:59;1.234,5;0,125;P-1\r\n29.03.2026 03:00:00;-0,5;;P-2\r\n';

  test('values as written, with their units; times in the zone across a change of offset; an empty cell bad', async () => {
    const samples = await parseResultFile(profile, Buffer.from(csv, 'utf8'), 0);
    expect(samples.map((s) => [s.channel, s.ts, s.value, s.unit, s.quality])).toEqual([
      ['force', Date.UTC(2026, 2, 29, 0, 59, 59), 1234.5, 'kN', 'good'],
      ['strain', Date.UTC(2026, 2, 29, 0, 59, 59), 0.125, '%', 'good'],
      ['specimen', Date.UTC(2026, 2, 29, 0, 59, 59), 'P-1', '', 'good'],
      // 03:00 summer time in Berlin is 01:00 UTC
      ['force', Date.UTC(2026, 2, 29, 1, 0, 0), -0.5, 'kN', 'good'],
      ['strain', Date.UTC(2026, 2, 29, 1, 0, 0), null, '%', 'bad'],
      ['specimen', Date.UTC(2026, 2, 29, 1, 0, 0), 'P-2', '', 'good'],
    ]);
    expect(samples[4]?.reason).toBe('empty at line 5');
  });

  test('a value that is not a number, a row of another width, a missing column: refused naming the place', async () => {
    await expect(parseResultFile(profile, Buffer.from(csv.replace('0,125', 'n/a')), 0)).rejects.toThrow(/line 4, column 3: "n\/a" is not a number/);
    await expect(parseResultFile(profile, Buffer.from(`${csv}1;2\r\n`), 0)).rejects.toThrow(/CSV: .*record/i);
    await expect(parseResultFile(profile, Buffer.from(csv.replace('Kraft', 'Force')), 0)).rejects.toThrow(/line 4, "Kraft": no column "Kraft"/);
    await expect(parseResultFile(profile, Buffer.from(csv.replace('29.03.2026 01:59:59', '2026-03-29')), 0)).rejects.toThrow(
      /line 4, timestamp "Zeit": "2026-03-29" does not fit the format dd.MM.yyyy HH:mm:ss/,
    );
    await expect(parseResultFile(profile, Buffer.from('a\r\nb\r\nZeit;Kraft;Dehnung;Probe\r\n'), 0)).rejects.toThrow(/no rows/);
  });

  test('without a timestamp column every row has the file time', async () => {
    const plain = profileOf({ parser: { format: 'csv' }, points: [{ name: 'v', from: 'v' }] });
    const samples = await parseResultFile(plain, Buffer.from('v\n1\n2.5e3\n'), 1_700_000_000_000);
    expect(samples.map((s) => [s.ts, s.value])).toEqual([
      [1_700_000_000_000, 1],
      [1_700_000_000_000, 2500],
    ]);
  });
});

test('XLSX: typed cells, a formula result, a date in the zone, a named worksheet', async () => {
  const book = new ExcelJS.Workbook();
  book.addWorksheet('Cover').addRow(['nothing here']);
  const sheet = book.addWorksheet('Results');
  sheet.addRow(['Tensile test']);
  sheet.addRow(['Time', 'Fmax', 'Rm']);
  sheet.addRow([new Date(Date.UTC(2026, 0, 15, 10, 30, 0)), 12.345, { formula: 'B3*2', result: 24.69 }]);
  const bytes = Buffer.from(await book.xlsx.writeBuffer());
  const profile = profileOf({
    parser: { format: 'xlsx', sheet: 'Results', skipRows: 1 },
    timestamp: { from: 'Time', zone: 'Europe/Berlin' },
    points: [
      { name: 'fmax', from: 'Fmax', unit: 'kN' },
      { name: 'rm', from: 'Rm', unit: 'MPa' },
    ],
  });
  const samples = await parseResultFile(profile, bytes, 0);
  // the spreadsheet's 10:30 is Berlin's (winter: UTC+1)
  expect(samples.map((s) => [s.channel, s.ts, s.value, s.unit])).toEqual([
    ['fmax', Date.UTC(2026, 0, 15, 9, 30, 0), 12.345, 'kN'],
    ['rm', Date.UTC(2026, 0, 15, 9, 30, 0), 24.69, 'MPa'],
  ]);
  await expect(parseResultFile(profileOf({ ...profile, parser: { format: 'xlsx', sheet: 'Other' } }), bytes, 0)).rejects.toThrow(
    /no worksheet "Other"/,
  );
  await expect(parseResultFile(profile, Buffer.from('not a zip'), 0)).rejects.toThrow(/XLSX/);
});

test('JSON: rows at a path, values by path, ISO times with an offset', async () => {
  const profile = profileOf({
    parser: { format: 'json', rows: 'result.points' },
    timestamp: { from: 't' },
    points: [
      { name: 'temp', from: 'values.temp', unit: '°C' },
      { name: 'ok', from: 'flags[0]', type: 'text' },
    ],
  });
  const doc = { result: { points: [{ t: '2026-05-01T12:00:00+02:00', values: { temp: 21.5 }, flags: ['pass'] }] } };
  const samples = await parseResultFile(profile, Buffer.from(JSON.stringify(doc)), 0);
  expect(samples.map((s) => [s.channel, s.ts, s.value, s.unit])).toEqual([
    ['temp', Date.UTC(2026, 4, 1, 10, 0, 0), 21.5, '°C'],
    ['ok', Date.UTC(2026, 4, 1, 10, 0, 0), 'pass', ''],
  ]);
  await expect(parseResultFile(profile, Buffer.from('{"result":{}}'), 0)).rejects.toThrow(/no result.points/);
  await expect(parseResultFile(profile, Buffer.from('{'), 0)).rejects.toThrow(/JSON/);
  doc.result.points[0]!.values.temp = 'warm' as unknown as number;
  await expect(parseResultFile(profile, Buffer.from(JSON.stringify(doc)), 0)).rejects.toThrow(
    /result.points\[0\], "values.temp": "warm" is not a number/,
  );
});

test('text: every line matching the pattern is a row, groups mapped to points', async () => {
  const profile = profileOf({
    parser: { format: 'text', pattern: '^(?<id>S\\d+)\\s+pH\\s+(?<ph>[\\d.]+)\\s+T\\s+(?<t>[\\d.]+)$' },
    points: [
      { name: 'ph', from: 'ph', unit: 'pH' },
      { name: 'temp', from: 't', unit: '°C' },
      { name: 'sample', from: 'id', type: 'text' },
    ],
  });
  const text = 'Meter 3 report\nS1  pH 7.01  T 25.0\ncalibrated ok\nS2  pH 4.00  T 24.9\n';
  const samples = await parseResultFile(profile, Buffer.from(text), 5);
  expect(samples.map((s) => s.value)).toEqual([7.01, 25, 'S1', 4, 24.9, 'S2']);
  await expect(parseResultFile(profile, Buffer.from('nothing\n'), 0)).rejects.toThrow(/no line matches parser.pattern/);
});

test('profiles are refused at load, naming the field', () => {
  const problems = (input: unknown): string[] => {
    const parsed = fileProfileSchema.safeParse(input);
    return parsed.success ? [] : issuesOf(parsed.error).map((i) => `${i.path}: ${i.message}`);
  };
  const base = { protocol: 'file', id: 'r-1', identity, folder: 'in', parser: { format: 'csv' }, points: [{ name: 'v', from: 'v' }] };
  expect(problems(base)).toEqual([]);
  expect(problems({ ...base, parser: { format: 'text', pattern: '(?<a>x' } })).toEqual([
    expect.stringMatching(/^parser.pattern: not a regular expression/),
  ]);
  expect(problems({ ...base, parser: { format: 'text', pattern: '(?<a>\\d+)' } })).toEqual([
    'points[0].from: expected a named group of parser.pattern (a)',
  ]);
  expect(problems({ ...base, parser: { format: 'json' }, points: [{ name: 'v', from: 'a..b' }] })[0]).toMatch(
    /^points\[0\]\.from: "a..b" is not a dotted path/,
  );
  expect(problems({ ...base, parser: { format: 'csv', header: false } })).toEqual([
    'points[0].from: parser.header is false: name the column by its number',
  ]);
  expect(problems({ ...base, timestamp: { from: 'v', zone: 'Mars/Olympus' } })[0]).toMatch(/^timestamp.zone: expected UTC, an offset/);
  expect(problems({ ...base, stableMs: 1 })[0]).toMatch(/^stableMs: /);
  expect(problems({ ...base, parser: { format: 'pdf' } })[0]).toMatch(/^parser.format: /);
  expect(problems({ ...base, doneFolder: 'x', quarantineFolder: 'x' })).toEqual(['doneFolder: must differ from quarantineFolder']);
});

test('numbers with a decimal comma; wall clocks in zones', () => {
  expect(readNumber('1.234.567,89', true)).toBe(1234567.89);
  expect(readNumber('1 234,5', true)).toBe(1234.5);
  expect(readNumber('12,5', false)).toBeUndefined();
  expect(readNumber('0x10', false)).toBeUndefined();
  expect(readNumber('', false)).toBeUndefined();
  expect(wallClock([2026, 7, 1, 12, 0, 0, 0], 'America/New_York')).toBe(Date.UTC(2026, 6, 1, 16, 0, 0));
  expect(wallClock([2026, 1, 1, 12, 0, 0, 0], '-03:30')).toBe(Date.UTC(2026, 0, 1, 15, 30, 0));
});

test('wall clocks second by second through both changes of offset in a year (the offsets are remembered per minute)', () => {
  // Berlin: 2026-03-29 02:00 CET becomes 03:00 CEST; 2026-10-25 03:00 CEST becomes 02:00 CET. Each local time is
  // read in turn, as a file's rows are, and checked against the offset the rules give (+1 h or +2 h).
  const check = (day: [number, number], fromHour: number, toHour: number, offsetHours: (h: number) => number): void => {
    for (let h = fromHour; h < toHour; h++)
      for (let m = 0; m < 60; m++)
        for (const s of [0, 29, 59]) {
          const t = wallClock([2026, day[0], day[1], h, m, s, 0], 'Europe/Berlin');
          expect(t).toBe(Date.UTC(2026, day[0] - 1, day[1], h, m, s) - offsetHours(h) * 3_600_000);
        }
  };
  check([3, 29], 0, 2, () => 1);
  check([3, 29], 3, 5, () => 2);
  check([10, 25], 0, 2, () => 2);
  check([10, 25], 3, 5, () => 1);
  // Shanghai has kept UTC+8 since 1991; New York the day after its change in March
  expect(wallClock([2026, 12, 7, 14, 33, 10, 123], 'Asia/Shanghai')).toBe(Date.UTC(2026, 11, 7, 6, 33, 10, 123));
  expect(wallClock([2026, 3, 9, 0, 0, 1, 0], 'America/New_York')).toBe(Date.UTC(2026, 2, 9, 4, 0, 1));
});
