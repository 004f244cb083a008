// The SCPI and generic line profiles, validated with errors that name the field; the SCPI replies and the
// generic dialect's numbers read strictly.
import { describe, expect, test } from '@jest/globals';
import {
  deviceProfileSchema,
  formatScpiNumber,
  idnMismatch,
  LabtraceError,
  lineNumber,
  parseConfigText,
  parseScpiError,
  parseScpiIdn,
  parseScpiNumber,
  type DeviceProfile,
} from '../../src/index.js';

function parse(text: string): DeviceProfile {
  return parseConfigText(text, 'p.yaml', deviceProfileSchema, 'E_PROFILE');
}

function problem(text: string): string {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof LabtraceError) return err.message;
    throw err;
  }
  throw new Error('expected the profile to be rejected');
}

const scpi = (points: string, extra = ''): string => `
protocol: scpi
id: dmm-1
identity: { maker: Keysight, model: 34465A, serialNumber: MY1 }
connection: { transport: tcp, host: 10.0.0.5 }
idn: { manufacturer: Keysight Technologies, model: 34465A }
${extra}
points:
${points}
`;

const line = (pattern: string, points: string, extra = ''): string => `
protocol: line
id: ph-1
identity: { maker: Acme, model: PH-7, serialNumber: P1 }
connection: { transport: serial, path: /dev/ttyUSB1 }
pattern: '${pattern}'
${extra}
points:
${points}
`;

describe('SCPI profile', () => {
  test('defaults: port 5025, a poll a second, 1 s per query, the error queue read', () => {
    const p = parse(scpi('  - { name: volt, query: "MEAS:VOLT:DC?", unit: V }'));
    if (p.protocol !== 'scpi') throw new Error(p.protocol);
    expect(p.connection).toEqual({ transport: 'tcp', host: '10.0.0.5', port: 5025 });
    expect(p).toMatchObject({ pollIntervalMs: 1000, timeoutMs: 1000, errorQueue: true });
    expect(p.points).toEqual([{ name: 'volt', query: 'MEAS:VOLT:DC?', unit: 'V' }]);
  });

  test('a command that is no query, two queries in one, and a missing idn are refused by field', () => {
    expect(problem(scpi('  - { name: r, query: "*RST" }'))).toMatch(/points\[0\]\.query: a query ends with "\?"/);
    expect(problem(scpi('  - { name: r, query: "MEAS:VOLT?;CURR?" }'))).toMatch(/points\[0\]\.query: one query per point/);
    expect(problem(scpi('  - { name: r, query: "MEAS:VOLT?" }').replace(/idn:.*\n/, ''))).toMatch(/idn/);
    expect(problem(scpi('  - { name: r, query: "MEAS:VOLT?", timeoutMs: 5 }'))).toMatch(/points\[0\]\.timeoutMs/);
  });
});

describe('generic line profile', () => {
  test('a pattern with named groups mapped to points', () => {
    const p = parse(line('^(?<ph>\\d+\\.\\d+) pH$', '  - { name: ph, group: ph, unit: pH }'));
    if (p.protocol !== 'line') throw new Error(p.protocol);
    expect(p.request).toBeUndefined();
    expect(p.points).toEqual([{ name: 'ph', group: 'ph', unit: 'pH', decimalComma: false, scale: 1, offset: 0 }]);
  });

  test('an invalid pattern, a group no point maps, a point whose group is missing: errors that name the field', () => {
    expect(problem(line('^(?<ph>\\d+', '  - { name: ph, group: ph }'))).toMatch(/pattern: not a valid regular expression/);
    expect(problem(line('^(?<ph>\\S+) (?<t>\\S+)$', '  - { name: ph, group: ph }'))).toMatch(/pattern: named group\(s\) t are mapped to no point/);
    expect(problem(line('^(?<ph>\\S+)$', '  - { name: ph, group: pH }'))).toMatch(
      /points\[0\]\.group: the pattern has no group "pH" \(its named groups: ph\)/,
    );
  });

  test('a nested quantifier (exponential on a line that almost matches) is refused; a plain one is not', () => {
    expect(problem(line('^(?<v>(\\d+)+)$', '  - { name: v, group: v }'))).toMatch(/pattern: a quantified group holds a quantifier \(\(\\d\+\)\+\)/);
    expect(problem(line('^(?<v>(?:a|b*)*)x$', '  - { name: v, group: v }'))).toMatch(/pattern: a quantified group holds a quantifier/);
    expect(parse(line('^(?<v>[+-]?\\d+(?:\\.\\d+)?)\\s*(?:mV){1}$', '  - { name: v, group: v }')).protocol).toBe('line');
  });

  test('numbers: padding dropped, a decimal comma when the profile says so, text refused', () => {
    expect(lineNumber('+   12.50', false)).toBe(12.5);
    expect(lineNumber('23,4', true)).toBe(23.4);
    expect(() => lineNumber('1.234,5', true)).toThrow(/a point in a number printed with a decimal comma/);
    expect(() => lineNumber('----', false)).toThrow(/"----" is not a number/);
  });
});

describe('SCPI replies', () => {
  test('identity: four fields, compared without regard to case; the serial only when the profile names one', () => {
    const idn = parseScpiIdn('KEYSIGHT TECHNOLOGIES,34465A,MY5700123,A.03.01-02.40\n');
    expect(idn).toEqual({ manufacturer: 'KEYSIGHT TECHNOLOGIES', model: '34465A', serialNumber: 'MY5700123', firmware: 'A.03.01-02.40' });
    expect(idnMismatch({ manufacturer: 'Keysight Technologies', model: '34465a' }, idn)).toBeUndefined();
    expect(idnMismatch({ manufacturer: 'Keysight Technologies', model: '34465A', serialNumber: 'MY1' }, idn)).toBe(
      'serial number "MY5700123", expected "MY1"',
    );
    expect(() => parseScpiIdn('34465A')).toThrow(/1 field\(s\)/);
  });

  test('numbers in NR1, NR2, NR3; overload and not-a-number; noise and several values refused', () => {
    expect(parseScpiNumber('+1.23456789E+00')).toEqual({ kind: 'number', value: 1.23456789 });
    expect(parseScpiNumber('-12')).toEqual({ kind: 'number', value: -12 });
    expect(parseScpiNumber('+9.90000000E+37')).toEqual({ kind: 'overload', text: '+9.90000000E+37' });
    expect(parseScpiNumber('9.91E37')).toEqual({ kind: 'nan', text: '9.91E37' });
    expect(() => parseScpiNumber('1,2')).toThrow(/several values/);
    expect(() => parseScpiNumber('\u00001.0')).toThrow(/control characters/);
  });

  test('error queue entries; the format the simulator prints reads back to the same number', () => {
    expect(parseScpiError('-113,"Undefined header"')).toEqual({ code: -113, message: 'Undefined header' });
    expect(parseScpiError('+0,"No error"')).toEqual({ code: 0, message: 'No error' });
    expect(() => parseScpiError('no error')).toThrow(/expected <code>,"<message>"/);
    for (const v of [1.5, 0.0025, 1000.25, -42, 0, 1e-9]) expect(parseScpiNumber(formatScpiNumber(v))).toEqual({ kind: 'number', value: v });
    expect(formatScpiNumber(1.5)).toBe('+1.50000000E+00');
  });
});
