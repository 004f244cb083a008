import { expect, test } from '@jest/globals';
import {
  batchKeyProblem,
  deriveKeyValidity,
  formatExportStatement,
  KEY_EVENT_TYPE,
  parseExportStatement,
  parseKeyEvent,
  readKeyEventEntry,
  ROTATION_GRACE_MS,
  weakerStatus,
  type ExportStatement,
  type KeyEvent,
  type LoggedKeyEvent,
} from '../../src/index.js';

const T = 1_800_000_000_000;
const base = { type: KEY_EVENT_TYPE, v: 1 as const, gateway: 'gw-1' };
const at = (index: number, record: KeyEvent): LoggedKeyEvent => ({ index, record });
const registered = (index: number, time: number, keyId: string): LoggedKeyEvent =>
  at(index, { ...base, event: 'registered', keyId, at: time, key: `gw-1+${keyId}+AAAA`, source: 'enrollment' });

test('enrollment, re-enrollment, rotation with its grace, and revocation, applied in log order', () => {
  const keys = deriveKeyValidity([
    // given out of order: applied by log index
    at(9, { ...base, event: 'revoked', keyId: 'cccccccc', at: T + 500, reason: 'lost', from: T + 400, lastValidBatch: 41 }),
    registered(1, T, 'aaaaaaaa'),
    at(3, { ...base, event: 'retired', keyId: 'aaaaaaaa', at: T + 100, reason: 're-enrolled', replacedBy: 'bbbbbbbb' }),
    registered(4, T + 100, 'bbbbbbbb'),
    at(6, {
      ...base,
      event: 'rotated',
      keyId: 'bbbbbbbb',
      at: T + 200,
      newKeyId: 'cccccccc',
      newKey: 'gw-1+cccccccc+AAAA',
      graceUntil: T + 200 + ROTATION_GRACE_MS,
    }),
    at(8, { ...base, event: 'retired', keyId: 'bbbbbbbb', at: T + 200 + ROTATION_GRACE_MS, reason: 'rotation-grace-over', replacedBy: 'cccccccc' }),
    at(7, {
      ...base,
      gateway: 'gw-2',
      event: 'revoked',
      keyId: 'aaaaaaaa',
      at: T + 300,
      reason: 'another gateway',
      from: T + 250,
      lastValidBatch: null,
    }),
  ]);
  expect(keys.get('gw-1 aaaaaaaa')).toEqual({
    gateway: 'gw-1',
    keyId: 'aaaaaaaa',
    status: 'retired',
    validFrom: T,
    validUntil: T + 100,
    closedAt: 3,
    lastValidBatch: null,
    replacedBy: 'bbbbbbbb',
    events: [1, 3],
  });
  // a rotated key stays open during its grace; the end of the grace (its own log entry) closes it
  expect(keys.get('gw-1 bbbbbbbb')).toMatchObject({ status: 'retired', validFrom: T + 100, validUntil: T + 200 + ROTATION_GRACE_MS, closedAt: 8 });
  expect(keys.get('gw-1 cccccccc')).toMatchObject({
    status: 'revoked',
    validFrom: T + 200,
    validUntil: T + 400,
    closedAt: 9,
    lastValidBatch: 41,
    events: [6, 9],
  });
  expect(keys.get('gw-2 aaaaaaaa')).toMatchObject({ status: 'revoked', validFrom: null, closedAt: 7, lastValidBatch: null });
});

test('a batch is judged by its place in the log and its number, not by its times', () => {
  const revoked = deriveKeyValidity([
    registered(1, T, 'aaaaaaaa'),
    at(5, { ...base, event: 'revoked', keyId: 'aaaaaaaa', at: T + 500, reason: 'stolen', from: T + 500, lastValidBatch: 3 }),
  ]).get('gw-1 aaaaaaaa')!;
  expect(batchKeyProblem(revoked, 3, 4)).toBeUndefined();
  // a batch logged after the revocation, whatever it claims, is one the server should have refused
  expect(batchKeyProblem(revoked, 3, 6)).toMatch(/entered the log at index 6, after the key event at index 5 that ended key aaaaaaaa/);
  // a batch before the revocation in the log but numbered past the last valid one (it arrived after `from`)
  expect(batchKeyProblem(revoked, 4, 4)).toMatch(/key aaaaaaaa is revoked, valid for batches up to 3, this is batch 4/);
  expect(batchKeyProblem({ keyId: 'aaaaaaaa', status: 'active', closedAt: null, lastValidBatch: null }, 99, 99)).toBeUndefined();
});

test('key events are typed records: a text event of an earlier server is told apart, a malformed record is named', () => {
  expect(
    readKeyEventEntry({ id: 3, at: T, gateway: 'gw-1', kind: 'key-revoked', severity: 'alarm', batch: null, detail: 'key aaaaaaaa revoked' }),
  ).toEqual({
    kind: 'legacy',
  });
  expect(readKeyEventEntry({ ...base, event: 'revoked', keyId: 'aaaaaaaa', at: T, reason: 'x', from: T, lastValidBatch: -1 })).toEqual({
    kind: 'unreadable',
    reason: 'key event: lastValidBatch: expected a batch number or null',
  });
  expect(readKeyEventEntry({ ...base, v: 2, event: 'revoked' })).toMatchObject({
    kind: 'unreadable',
    reason: expect.stringMatching(/^key event: v: version 2/),
  });
  expect(() => parseKeyEvent({ ...base, event: 'renamed', keyId: 'aaaaaaaa', at: T })).toThrow(/key event: event: expected registered/);
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
