// The one rounding of a reported result: U up to two significant digits, the value to U's decimal place.
// Worked examples from JCGM 100:2008 (GUM) 7.2.4 and 7.2.6, then the edges: a carry into a third digit,
// binary noise, halves, negative values, values far below U, U of ten and more, huge and tiny exponents.
import { describe, expect, test } from '@jest/globals';
import { roundResult } from '../src/index.js';

describe('worked examples of the GUM (JCGM 100:2008)', () => {
  test('7.2.6: uc(y) = 10,47 mOhm "might be rounded up to 11 mOhm"', () => {
    expect(roundResult(1000, 10.47).uncertainty).toBe('11');
  });

  test('7.2.6: "if y = 10,057 62 Ohm with uc(y) = 27 mOhm, y should be rounded to 10,058 Ohm"', () => {
    expect(roundResult(10.05762, 0.027)).toEqual({ value: '10.058', uncertainty: '0.027' });
  });

  test('7.2.4: mS = (100,021 47 +/- 0,000 79) g: the value keeps the digits of U', () => {
    expect(roundResult(100.02147, 0.00079)).toEqual({ value: '100.02147', uncertainty: '0.00079' });
  });

  test('7.2.6 also says 28,05 kHz "should be rounded down to 28 kHz" by common sense; a report rounds up, always: 29', () => {
    // the deliberate choice (docs/certificates.md): a stated U is never smaller than the one evaluated
    expect(roundResult(1000, 28.05).uncertainty).toBe('29');
  });
});

describe('U up to two significant digits, the value to the same decimal place', () => {
  test('the numbers of the report that the run page once showed rounded to nearest (0.16 / 5.7 / 0.12)', () => {
    expect(roundResult(42.03371, 0.1612)).toEqual({ value: '42.03', uncertainty: '0.17' });
    expect(roundResult(534.77, 5.71)).toEqual({ value: '534.8', uncertainty: '5.8' });
    expect(roundResult(12.3456, 0.1203)).toEqual({ value: '12.35', uncertainty: '0.13' });
  });

  test('U of exactly two digits stays; binary noise does not round it up', () => {
    expect(roundResult(1.5, 0.24)).toEqual({ value: '1.50', uncertainty: '0.24' });
    expect(0.1 + 0.14).not.toBe(0.24);
    expect(roundResult(1.5, 0.1 + 0.14).uncertainty).toBe('0.24');
    expect(roundResult(7, 3)).toEqual({ value: '7.0', uncertainty: '3.0' });
  });

  test('a carry into a third digit moves U one place left: 0.0995 is 0.10, 9.96 is 10, 99.1 is 100 (to the tens, as 10 at the tens place)', () => {
    expect(roundResult(1.23456, 0.0995)).toEqual({ value: '1.23', uncertainty: '0.10' });
    expect(roundResult(1.23456, 0.0991)).toEqual({ value: '1.23', uncertainty: '0.10' });
    expect(roundResult(123.456, 9.96)).toEqual({ value: '123', uncertainty: '10' });
    expect(roundResult(12345.6, 99.1)).toEqual({ value: '12350', uncertainty: '100' });
  });

  test('the value to nearest, a half away from zero, decimally (2.675 is 2.68, where toFixed gives 2.67)', () => {
    expect((2.675).toFixed(2)).toBe('2.67');
    expect(roundResult(2.675, 0.12)).toEqual({ value: '2.68', uncertainty: '0.12' });
    expect(roundResult(2.674, 0.12).value).toBe('2.67');
    expect(roundResult(-2.675, 0.12)).toEqual({ value: '-2.68', uncertainty: '0.12' });
    expect(roundResult(-0.5, 1.2).value).toBe('-0.5');
    expect(roundResult(-0.05, 1.2).value).toBe('-0.1');
  });

  test('a value much smaller than U is 0 at its place, without a minus sign', () => {
    expect(roundResult(0.0003, 1.2)).toEqual({ value: '0.0', uncertainty: '1.2' });
    expect(roundResult(-0.0003, 1.2)).toEqual({ value: '0.0', uncertainty: '1.2' });
    expect(roundResult(-3, 1200)).toEqual({ value: '0', uncertainty: '1200' });
    expect(roundResult(0, 0.034)).toEqual({ value: '0.000', uncertainty: '0.034' });
  });

  test('U of ten and more: the value is rounded to tens, hundreds, ... as U is', () => {
    expect(roundResult(534.77, 12.2)).toEqual({ value: '535', uncertainty: '13' });
    expect(roundResult(98765, 1234)).toEqual({ value: '98800', uncertainty: '1300' });
    expect(roundResult(-98765, 1234)).toEqual({ value: '-98800', uncertainty: '1300' });
    expect(roundResult(250, 12)).toEqual({ value: '250', uncertainty: '12' });
  });

  test('huge and tiny exponents are written out in plain decimals, never as 1e+21', () => {
    expect(roundResult(6.02214076e23, 1.23e15)).toEqual({ value: '602214076000000000000000', uncertainty: '1300000000000000' });
    expect(roundResult(1.602176634e-19, 3.21e-28)).toEqual({
      value: '0.00000000000000000016021766340',
      uncertainty: '0.00000000000000000000000000033',
    });
    expect(roundResult(5, 1.2e-20).value).toBe(`5.${'0'.repeat(21)}`);
  });

  test('U of 0 leaves the value as it is; what is not a finite number, or a negative U, is refused', () => {
    expect(roundResult(42.125, 0)).toEqual({ value: '42.125', uncertainty: '0' });
    expect(roundResult(4200, 0)).toEqual({ value: '4200', uncertainty: '0' });
    expect(() => roundResult(Number.NaN, 1)).toThrow(RangeError);
    expect(() => roundResult(1, Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => roundResult(1, -0.1)).toThrow(/expanded uncertainty -0.1/);
  });

  test('for any value and U: two significant digits, the same decimals, never below U, less than one digit above', () => {
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const expanded = (1 + random() * 9) * 10 ** Math.floor(random() * 20 - 10);
      const value = (random() - 0.5) * 10 ** Math.floor(random() * 24 - 10);
      const r = roundResult(value, expanded);
      const decimals = (s: string): number => s.split('.')[1]?.length ?? 0;
      expect(decimals(r.value)).toBe(decimals(r.uncertainty));
      expect(r.uncertainty.replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length).toBeLessThanOrEqual(2);
      // one unit of U's last digit: 0.01 for "0.10", 1 for "10" (a carry), 100 for "1300"
      const step = decimals(r.uncertainty) > 0 ? 10 ** -decimals(r.uncertainty) : 10 ** (r.uncertainty.length - 2);
      expect(Number(r.uncertainty)).toBeGreaterThanOrEqual(expanded * (1 - 1e-12));
      expect(Number(r.uncertainty) - expanded).toBeLessThan(step * (1 + 1e-9));
      expect(Math.abs(Number(r.value) - value)).toBeLessThanOrEqual((step / 2) * (1 + 1e-9) + Math.abs(value) * 1e-14);
    }
  });
});
