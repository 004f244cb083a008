// The one rounding of a result as it is reported: the expanded uncertainty U rounded UP to two significant
// digits, and the value rounded (to nearest, half away from zero) to the same decimal place (JCGM 100:2008,
// GUM 7.2.6). The server rounds once with this function; the test report (PDF, DCC, its JSON content) and
// every view of the run show the strings it returns, never a number rounded again.
//
// Why up: GUM 7.2.6 allows it ("it may sometimes be appropriate to round uncertainties up rather than to the
// nearest digit"); rounding up never states a smaller uncertainty than was evaluated, so the stated interval
// keeps at least its coverage probability. The arithmetic is decimal (on the number's digits, with BigInt), so
// the result does not depend on binary floating point: 0.24 stays 0.24, and 2.675 rounds to 2.68.

/** A result's value and expanded uncertainty as reported: plain decimal strings with the same decimal place. */
export interface ReportedResult {
  value: string;
  uncertainty: string;
}

/**
 * Significant digits a number is read with before rounding: enough for any measured value, few enough to drop
 * the noise of binary arithmetic (0.1 + 0.14 is 0.24000000000000002, which must not round U up to 0.25).
 */
const VALUE_DIGITS = 15;
const UNCERTAINTY_DIGITS = 12;

/** x as an integer times a power of ten: x = sign * n * 10^q, read from its first `precision` significant digits */
function decimal(x: number, precision: number): { negative: boolean; n: bigint; q: number } {
  const [mantissa = '0', exp = '0'] = Number(x.toPrecision(precision)).toExponential().split('e');
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  return { negative, n: BigInt(digits), q: Number(exp) - (digits.length - 1) };
}

/** n * 10^p as a plain decimal string, with exactly max(0, -p) decimals */
function plain(n: bigint, p: number): string {
  if (p >= 0) return n === 0n ? '0' : n.toString() + '0'.repeat(p);
  const s = n.toString().padStart(-p + 1, '0');
  return `${s.slice(0, s.length + p)}.${s.slice(s.length + p)}`;
}

/**
 * Rounds an expanded uncertainty up to two significant digits and the value to the same decimal place.
 * A U of 0 has no digits to round to: the value is given as it is, U as "0". Throws a RangeError for a
 * value or U that is not a finite number, or a negative U.
 */
export function roundResult(value: number, expanded: number): ReportedResult {
  if (!Number.isFinite(value)) throw new RangeError(`value ${value} is not a finite number`);
  if (!Number.isFinite(expanded) || expanded < 0) throw new RangeError(`expanded uncertainty ${expanded} is not a finite number >= 0`);
  if (expanded === 0) {
    const v = decimal(value, VALUE_DIGITS);
    return { value: (v.negative && v.n !== 0n ? '-' : '') + plain(v.n, v.q), uncertainty: '0' };
  }
  // U: its first two significant digits, plus one in the last of them when any digit after them is not 0
  const u = decimal(expanded, UNCERTAINTY_DIGITS);
  const length = u.n.toString().length;
  let place = u.q + length - 2; // the power of ten of U's second significant digit
  let two = length >= 2 ? u.n / 10n ** BigInt(length - 2) : u.n * 10n;
  if (length > 2 && u.n % 10n ** BigInt(length - 2) !== 0n) two += 1n;
  if (two === 100n) {
    // 0.0995 -> 0.100 has three digits: it is 0.10, two digits one place to the left
    two = 10n;
    place += 1;
  }
  // the value to U's decimal place, to nearest, a half away from zero
  const v = decimal(value, VALUE_DIGITS);
  let n: bigint;
  if (v.q >= place) n = v.n * 10n ** BigInt(v.q - place);
  else {
    const step = 10n ** BigInt(place - v.q);
    n = v.n / step;
    if (2n * (v.n % step) >= step) n += 1n;
  }
  return { value: (v.negative && n !== 0n ? '-' : '') + plain(n, place), uncertainty: plain(two, place) };
}
