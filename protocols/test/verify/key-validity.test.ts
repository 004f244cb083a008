import { expect, test } from '@jest/globals';
import {
  deriveKeyValidity,
  formatExportStatement,
  KEY_ROTATION_GRACE_MS,
  parseExportStatement,
  weakerStatus,
  type ExportStatement,
  type LoggedKeyEvent,
} from '../../src/index.js';

const T = 1_800_000_000_000;
// the detail texts as the server's enrollment and key registry write them
const enrolled = (index: number, at: number, keyId: string): LoggedKeyEvent => ({
  index,
  at,
  gateway: 'gw-1',
  kind: 'enrolled',
  detail: `key ${keyId} registered, broker credentials issued`,
});

test('enrollment, re-enrollment, rotation and revocation, in log order', () => {
  const { keys, unread } = deriveKeyValidity([
    // given out of order: applied by log index
    { index: 9, at: T + 500, gateway: 'gw-1', kind: 'key-revoked', detail: `key cccccccc revoked from ${new Date(T + 400).toISOString()}: lost` },
    enrolled(1, T, 'aaaaaaaa'),
    enrolled(4, T + 100, 'bbbbbbbb'),
    { index: 6, at: T + 200, gateway: 'gw-1', kind: 'key-rotated', detail: 'key bbbbbbbb replaced by cccccccc' },
    { index: 7, at: T + 300, gateway: 'gw-2', kind: 'key-revoked', detail: 'key aaaaaaaa revoked from 2027-01-15T08:00:00.000Z: another gateway' },
  ]);
  expect(unread).toEqual([]);
  expect(keys.get('gw-1 aaaaaaaa')).toEqual({
    gateway: 'gw-1',
    keyId: 'aaaaaaaa',
    status: 'retired',
    validFrom: T,
    validUntil: T + 100,
    events: [1, 4],
  });
  expect(keys.get('gw-1 bbbbbbbb')).toMatchObject({ status: 'retired', validFrom: T + 100, validUntil: T + 200 + KEY_ROTATION_GRACE_MS });
  expect(keys.get('gw-1 cccccccc')).toMatchObject({ status: 'revoked', validFrom: T + 200, validUntil: T + 400, events: [6, 9] });
  expect(keys.get('gw-2 aaaaaaaa')).toMatchObject({ status: 'revoked', validFrom: null, validUntil: Date.parse('2027-01-15T08:00:00.000Z') });
});

test('an event that does not read is returned, not skipped', () => {
  const odd = { index: 3, at: T, gateway: 'gw-1', kind: 'key-revoked', detail: 'key aaaaaaaa revoked, somehow' };
  expect(deriveKeyValidity([odd]).unread).toEqual([odd]);
  expect(weakerStatus('active', 'revoked')).toBe(true);
  expect(weakerStatus('revoked', 'retired')).toBe(false);
  expect(weakerStatus('anything', 'active')).toBe(true);
});

test('the export statement reads back as written, and refuses a malformed line', () => {
  const hash = 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=';
  const statement: ExportStatement = {
    format: 'labtrace-bundle/v1',
    origin: 'labtrace/lab-1',
    gateway: 'gw-1',
    from: '2027-01-15T08:00:00.000Z',
    to: '2027-01-16T08:00:00.000Z',
    checkpoint: { size: 42, root: hash },
    batches: { count: 3, first: 7, last: 9 },
    seq: { first: 700, last: 999 },
    records: 300,
    headers: hash,
    keyEvents: { count: 0, root: hash },
    before: { batch: 6, hash },
    after: null,
  };
  const text = formatExportStatement(statement);
  expect(text).toMatch(/^labtrace-export-statement\/v1\nformat labtrace-bundle\/v1\n/);
  expect(text).toMatch(/\nbefore 6 n4bQ.*\nafter end\n$/);
  expect(parseExportStatement(text)).toEqual(statement);
  const empty = { ...statement, batches: { count: 0, first: null, last: null }, seq: { first: null, last: null }, before: null };
  expect(parseExportStatement(formatExportStatement(empty))).toEqual(empty);
  expect(() => parseExportStatement(text.replace('records 300', 'records -1'))).toThrow(/records: "-1" is not a count/);
  expect(() => parseExportStatement(text.replace('\nheaders ', '\nheader '))).toThrow(/line 11: expected "headers \.\.\."/);
});
