// Balances' replies as the makers' manuals print them: MT-SICS (`S S     100.00 g`, `S D`, `S I`, `S +`, `S -`, ES,
// ET, EL, `Z A`, `T S` with the tare, `I4 A "<serial>"`) and Sartorius SBI print lines (16 characters: sign, value,
// unit or nothing while unstable; 22 with a 6-character ID code; High, Low, Err ###). Anything else is refused with
// the reason; no line, however malformed, makes a parser throw anything but a coded error.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { LabtraceError } from '../../src/errors.js';
import { parseSbiLine, parseSicsReply } from '../../src/line/balance.js';
import { params } from '../fuzz/settings.js';

describe('MT-SICS', () => {
  test.each([
    // the reference manuals' examples, with the reply's fixed-width value field
    ['S S     100.00 g\r\n', 'S', { kind: 'weight', value: 100, unit: 'g', stable: true }],
    ['S D      99.97 g\r\n', 'SI', { kind: 'weight', value: 99.97, unit: 'g', stable: false }],
    ['S S    -12.345 kg\r\n', 'S', { kind: 'weight', value: -12.345, unit: 'kg', stable: true }],
    ['S S   0.000012 g', 'SIR', { kind: 'weight', value: 0.000012, unit: 'g', stable: true }],
    ['S S       1500 mg', 'S', { kind: 'weight', value: 1500, unit: 'mg', stable: true }],
    ['S I\r\n', 'S', { kind: 'busy' }],
    ['S +\r\n', 'S', { kind: 'overload' }],
    ['S -\r\n', 'SI', { kind: 'underload' }],
    ['Z A\r\n', 'Z', { kind: 'done' }],
    ['Z I\r\n', 'Z', { kind: 'busy' }],
    ['Z +\r\n', 'Z', { kind: 'overload' }],
    ['T S     100.00 g\r\n', 'T', { kind: 'done', value: 100, unit: 'g' }],
    ['T I\r\n', 'T', { kind: 'busy' }],
    ['I4 A "0123456789"\r\n', 'I4', { kind: 'done', text: '0123456789' }],
    ['@ A "B123456789"\r\n', '@', { kind: 'done', text: 'B123456789' }],
  ])('%j to %s', (line, command, reading) => {
    expect(parseSicsReply(line, command)).toEqual(reading);
  });

  test.each(['ES', 'ET', 'EL'])('%s is the balance’s error, with its meaning', (code) => {
    const reply = parseSicsReply(`${code}\r\n`, 'S');
    expect(reply).toMatchObject({ kind: 'error', code });
    expect((reply as { meaning: string }).meaning).toMatch(/error/);
  });

  test.each([
    ['', 'S', 'expected a reply to S'],
    ['Z A\r\n', 'S', 'expected a reply to S (starting with "S")'],
    ['S\r\n', 'S', 'no status after the command'],
    ['S S\r\n', 'S', 'no weight value'],
    ['S S 1.2.3 g', 'S', 'no weight value'],
    ['S S 12,5 g', 'S', 'no weight value'],
    ['S S 100.00', 'S', 'no unit after the weight value'],
    ['S S 100.00 g extra', 'S', 'more fields than a weight and its unit'],
    ['S X 100.00 g', 'S', 'unknown status "X"'],
    ['S I 5', 'S', 'unexpected fields after status "I"'],
    ['I4 A 0123', 'I4', 'the text of the reply is not quoted'],
    ['S S 1\u0000 g', 'S', 'control characters in the line'],
  ])('%j to %s is refused: %s', (line, command, reason) => {
    expect(() => parseSicsReply(line, command)).toThrow(reason);
  });
});

describe('Sartorius SBI', () => {
  test.each([
    // the operating instructions' examples (16 characters with CR LF)
    ['+     123.56 g  \r\n', { kind: 'weight', value: 123.56, unit: 'g', stable: true }],
    ['-    1255.7  g  \r\n', { kind: 'weight', value: -1255.7, unit: 'g', stable: true }],
    ['      111.255 g \r\n', { kind: 'weight', value: 111.255, unit: 'g', stable: true }],
    ['+   123.5[6] g  \r\n', { kind: 'weight', value: 123.56, unit: 'g', stable: true }],
    ['+        253 pcs\r\n', { kind: 'weight', value: 253, unit: 'pcs', stable: true }],
    // no unit while the reading settles
    ['+     123.51    \r\n', { kind: 'weight', value: 123.51, unit: '', stable: false }],
    // 22 characters: the ID code first
    ['N     +     123.56 g  \r\n', { kind: 'weight', value: 123.56, unit: 'g', stable: true, id: 'N' }],
    ['T2    +      10.00 g  \r\n', { kind: 'weight', value: 10, unit: 'g', stable: true, id: 'T2' }],
    ['      High      \r\n', { kind: 'overload' }],
    ['       Low      \r\n', { kind: 'underload' }],
    ['Stat     H      \r\n', { kind: 'overload' }],
    ['Stat     LL     \r\n', { kind: 'underload' }],
    ['   Err 103      \r\n', { kind: 'error', code: 'Err 103', meaning: 'the balance reported error 103' }],
  ])('%j', (line, reading) => {
    expect(parseSbiLine(line)).toEqual(reading);
  });

  test.each([
    ['\r\n', 'an empty line'],
    ['+  12.3.4 g    ', 'is not a number'],
    ['+  abc g       ', 'not a value with its sign and unit'],
    ['+  12.5 g!!    ', 'is not a unit'],
    ['+           123.56 g   extra text', 'an SBI line has 16 or 22'],
  ])('%j is refused: %s', (line, reason) => {
    expect(() => parseSbiLine(line)).toThrow(reason);
  });
});

test('no line, however malformed, makes a parser throw anything but a coded error, nor read a weight that is not a finite number', () => {
  const printable = fc.string({ unit: fc.constantFrom(...' +-.0123456789[]ADEHILSTZagkmloprt"\r\n\u0000\u00b5'.split('')), maxLength: 30 });
  fc.assert(
    fc.property(fc.oneof(printable, fc.string({ maxLength: 30 })), fc.constantFrom('S', 'SI', 'SIR', 'Z', 'T', 'I4'), (line, command) => {
      for (const parse of [() => parseSicsReply(line, command), () => parseSbiLine(line)]) {
        try {
          const reading = parse();
          if (reading.kind === 'weight') expect(Number.isFinite(reading.value)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(LabtraceError);
          expect((err as LabtraceError).code).toBe('E_CODEC');
        }
      }
    }),
    params(2000),
  );
});
