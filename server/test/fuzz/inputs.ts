// Generated input for the server: the values that broke servers before (lone surrogates and NUL, numbers
// past what a Date holds, impossible calendar dates, path tricks, malformed percent-encoding, deep and huge
// JSON), mixed with ordinary ones so that a request also gets past the first check.
import fc from 'fast-check';

export const LONE_SURROGATES = ['\uD800', '\uDBFF', '\uDC00', '\uDFFF'];
/** dates that do not exist; a parser that rolls them over accepts them */
export const IMPOSSIBLE_DATES = ['2026-02-31', '2026-02-30', '2025-02-29', '2026-04-31', '2026-13-01', '2026-00-10', '2026-06-00'];
/** the last instant a JavaScript Date can hold (ECMA-262 21.4.1.22); anything later is no time a lab can mean */
export const MAX_DATE_MS = 8.64e15;

const special = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '%',
  '%%',
  '%E0%A4%A',
  '%ZZ',
  '%00',
  '%C0%AF',
  '..%2f..%2f',
  '%2e%2e%2f',
  '../../etc/passwd',
  '..\\..\\',
  '//[',
  '[',
  ']',
  '{}',
  '[]',
  '\\',
  '\r\n',
  '<script>alert(1)</script>',
  "' OR 1=1--",
  '${jndi:x}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'NaN',
  'Infinity',
  '-0',
  '1e400',
  '9e15',
  '-1',
  'null',
  'true',
  '\u202e',
  '\uFEFF',
  '\uFFFF',
  '𝕏𝕐',
  'e\u0301',
  ...IMPOSSIBLE_DATES,
  ...IMPOSSIBLE_DATES.map((d) => `${d}T00:00:00Z`),
  '275760-09-13T00:00:00.001Z',
  '9999-12-31T23:59:59Z',
  '1970-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
);

/** a string with a lone surrogate somewhere in it */
const withSurrogate = fc
  .tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...LONE_SURROGATES), fc.string({ maxLength: 8 }))
  .map(([a, s, b]) => a + s + b);

export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: special },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 3, arbitrary: withSurrogate },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
);

export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      -0,
      -1,
      1,
      0.5,
      9e15,
      MAX_DATE_MS,
      MAX_DATE_MS + 1,
      -MAX_DATE_MS - 1,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 2,
      -Number.MAX_SAFE_INTEGER,
      1e21,
      1e308,
      -1e308,
      5e-324,
      2 ** 31,
      2 ** 32,
      2 ** 63,
      253_402_300_800_000,
    ),
  },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);

/** what a time field gets: instants past what a Date holds, negative, fractional, impossible dates */
export const TIME_KEY = /(At|From|To|Until)$|^(at|from|to|since|until)$/;
export const nastyTime: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(9e15, MAX_DATE_MS + 1, 1e21, 2 ** 53, -1, -MAX_DATE_MS - 1, 0.5, 253_402_300_800_000) },
  { weight: 1, arbitrary: fc.constantFrom(...IMPOSSIBLE_DATES.map((d) => `${d}T10:00:00Z`)) },
  { weight: 1, arbitrary: nastyNumber },
);

const leaf: fc.Arbitrary<unknown> = fc.oneof(nastyString, nastyNumber, fc.boolean(), fc.constant(null));

/** JSON values of every shape: wrong types for any field */
export const nastyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.oneof(nastyString, fc.constantFrom('__proto__', 'constructor', 'id')), tie('value'), { maxKeys: 4 }) },
  ),
})).value;

/** JSON nested deeper than any schema expects */
export const deepJson = fc
  .tuple(fc.integer({ min: 100, max: 40_000 }), fc.boolean())
  .map(([depth, arrays]) => (arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));

/** bodies that are not JSON, or JSON a JavaScript parser reads oddly */
export const malformedJson = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"a":',
    '[1,2',
    '}',
    'null',
    'true',
    '"text"',
    '1e400',
    '-',
    '{"a":1e400}',
    '{"__proto__":{"role":"admin"}}',
    '{"a":1,"a":2}',
    '\uFEFF{}',
    '{\u0000}',
    '{"a":"\\ud800"}',
    '{"a":"\\u0000"}',
    "{'a':1}",
    '{"a":NaN}',
    '[]',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }),
  deepJson,
);

/** A path segment: a known id, generated text (encoded, or with a malformed encoding), or a path trick sent as is. */
export function segment(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: known.length > 0 ? fc.constantFrom(...known) : fc.constant('x') },
    { weight: 3, arbitrary: nastyString.map(encodeSegment) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '..%2f',
        '%2e%2e',
        '..',
        '.',
        '%00',
        '%E0%A4%A',
        '%',
        '%ZZ',
        '%ED%A0%80',
        '//[',
        '[',
        '%2F',
        '~',
        'a;b',
        'a?b=1',
        '',
      ),
    },
  );
}

/** encodeURIComponent, except that a lone surrogate (which it refuses) goes as its UTF-16 code unit in CESU-8 bytes, invalid UTF-8 */
export function encodeSegment(s: string): string {
  let out = '';
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && code >= 0xd800 && code <= 0xdfff)
      out +=
        `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${(0x80 | (code & 0x3f)).toString(16)}`.toUpperCase();
    else out += encodeURIComponent(ch);
  }
  return out;
}

/** query parameters the API reads, and some it does not */
const QUERY_KEYS = [
  'channel',
  'from',
  'to',
  'points',
  'limit',
  'size',
  'index',
  'start',
  'end',
  'gateway',
  'at',
  'state',
  'sample',
  'status',
  'kind',
  'since',
  'until',
  'after',
  'actor',
  'recordType',
  'recordId',
  'action',
  'format',
  'run',
  'organization',
  'warnDays',
  'instrument',
];

export const queryValue = fc.oneof(
  nastyString,
  nastyNumber.map(String),
  fc.integer({ min: 0, max: 20_000 }).map(String),
  fc.constantFrom('2026-01-01T00:00:00Z', '2030-01-01T00:00:00Z', '1', '10', 'jsonl', 'csv', 'running', 'completed', 'force'),
);

/** a query string: known keys with generated values (repeated keys become arrays, brackets objects), or junk */
export const query: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constant('') },
  {
    weight: 6,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.oneof(
            { weight: 5, arbitrary: fc.constantFrom(...QUERY_KEYS) },
            { weight: 1, arbitrary: fc.constantFrom('a[b]', 'a[]', '__proto__', 'from[gt]') },
          ),
          queryValue,
          fc.boolean(),
        ),
        { minLength: 1, maxLength: 5 },
      )
      .map(
        (pairs) =>
          `?${pairs.map(([k, v, raw]) => `${k}=${raw && !/[^\u0021-\u00ff]/.test(v) ? v.replace(/[ #]/g, '') : encodeSegment(v)}`).join('&')}`,
      ),
  },
  { weight: 1, arbitrary: fc.constantFrom('?', '?%', '?a=%E0%A4%A', '?&&&', '?=', '?from', `?${'a=1&'.repeat(2000)}`) },
);

/** A valid query as it is, or with one or two values replaced by generated ones (often a time: 9e15, an impossible date) or removed. */
export function mutatedQuery(template: Record<string, string>): fc.Arbitrary<string> {
  const keys = Object.keys(template);
  const time = fc.constantFrom(
    ...IMPOSSIBLE_DATES.map((d) => `${d}T10:00:00Z`),
    '9000000000000000',
    '8640000000000001',
    '-1',
    '1e400',
    '2026-02-28T24:00:00Z',
    '2026-11-27T10:00:00+25:00',
  );
  return fc
    .array(
      fc.tuple(fc.nat(), fc.oneof({ weight: 2, arbitrary: time }, { weight: 3, arbitrary: queryValue }, { weight: 1, arbitrary: fc.constant(null) })),
      // none at times: the valid query itself (a whole export, cut short by a client that leaves)
      { minLength: 0, maxLength: 2 },
    )
    .map((changes) => {
      const q: Record<string, string | null> = { ...template };
      for (const [n, v] of changes) q[keys[n % keys.length]!] = v;
      const pairs = Object.entries(q).filter((e): e is [string, string] => e[1] !== null);
      return `?${pairs.map(([k, v]) => `${k}=${encodeSegment(v)}`).join('&')}`;
    });
}

/** header values Node sends (no CR, LF or NUL; Latin-1 only) */
export const headerValue = fc.oneof(
  nastyString.map((s) => s.replace(/[^\t\u0020-\u007e\u0080-\u00ff]/g, '')),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\t\u0020-\u007e\u0080-\u00ff]/g, '')),
);

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/merge-patch+json',
  'application/json, text/plain',
];
