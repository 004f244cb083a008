// The store's capacity: write failures recognised by their codes, and a WAL that stopped growing truncated.
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import pino from 'pino';
import { StoreCapacity, writeFailureOf } from '../../src/store/capacity.js';
import { records, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ store: { reserveBytes: 0, checkIntervalMs: 600_000 } });
});
afterAll(async () => {
  await t.stop();
});

test('write failures are told by their code, also as the cause of another error', () => {
  const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  expect(writeFailureOf(full)).toEqual({ code: 'SQLITE_FULL', message: 'database or disk is full' });
  expect(writeFailureOf(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }))?.code).toBe('SQLITE_IOERR_WRITE');
  expect(writeFailureOf(new Error('wrapped', { cause: Object.assign(new Error('no space'), { code: 'ENOSPC' }) }))?.code).toBe('ENOSPC');
  expect(writeFailureOf(Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }))).toBeUndefined();
  expect(writeFailureOf('text')).toBeUndefined();
});

test('a WAL that stopped growing is checkpointed and truncated', async () => {
  const gw = await TestGateway.connect(t, 'gw-a');
  try {
    await gw.birth('wal-1');
    for (let b = 0; b < 5; b++) expect(await send(t, gw, gw.sign(records('wal-1', b * 200, 200)))).toBe('acked');
  } finally {
    await gw.end();
  }
  const wal = (): number => statSync(path.join(t.config.dataDir, 'labtrace.sqlite-wal')).size;
  expect(wal()).toBeGreaterThan(0);
  t.server.capacity.check(); // notes the size
  t.server.capacity.check(); // the same size: idle
  expect(wal()).toBe(0);
  expect(t.server.capacity.status().walBytes).toBe(0);
});

test('a WAL written between two checks is not idle, even when its file kept its size', async () => {
  const gw = await TestGateway.connect(t, 'gw-b');
  try {
    await gw.birth('wal-2');
    for (let b = 0; b < 3; b++) expect(await send(t, gw, gw.sign(records('wal-2', b * 200, 200)))).toBe('acked');
    const wal = (): number => statSync(path.join(t.config.dataDir, 'labtrace.sqlite-wal')).size;
    // everything copied into the database, the file kept: the next commit writes the WAL again from its start
    t.server.database.sqlite.pragma('wal_checkpoint(PASSIVE)');
    const size = wal();
    expect(size).toBeGreaterThan(0);
    t.server.capacity.check(); // notes the size and the commits so far
    expect(await send(t, gw, gw.sign(records('wal-2', 600, 5)))).toBe('acked');
    expect(wal()).toBe(size); // the same size, but written since
    t.server.capacity.check(); // not idle: left alone
    expect(wal()).toBe(size);
    t.server.capacity.check(); // nothing since: idle now
    expect(wal()).toBe(0);
  } finally {
    await gw.end();
  }
});

test('a disk that takes some writes and refuses others: one alarm and one all-clear per episode, the state as it is', async () => {
  const capacity = new StoreCapacity(t.server.database, { reserveBytes: 0, checkIntervalMs: 100 }, t.server.events, pino({ level: 'silent' }));
  const events = (): string[] => t.server.events.list({ kind: 'store-capacity' }).map((e) => e.severity);
  const before = events().length;
  const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  for (let i = 0; i < 5; i++) {
    capacity.writeFailed(full);
    expect(capacity.status()).toMatchObject({ status: 'cannot-write', lastError: { code: 'SQLITE_FULL', message: 'database or disk is full' } });
    capacity.writeSucceeded();
    expect(capacity.status()).toMatchObject({ status: 'ok', lastError: null });
  }
  expect(events().slice(0, events().length - before)).toEqual(['alarm']);
  // no failure for a whole check interval: the all-clear
  await new Promise((r) => setTimeout(r, 150));
  capacity.check();
  expect(events().slice(0, events().length - before)).toEqual(['info', 'alarm']);
});
