// The store's capacity on a real PostgreSQL 15: the data directory's free space against the reserve (the raw result
// files and the export spool stay there), the state changes recorded as security events in the store through the
// events' asynchronous API, a write failure (PostgreSQL's disk_full) held until the probe through the store
// succeeds, and no WAL figure.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { StoreCapacity, writeFailureOf } from '../../src/store/capacity.js';
import type { Tables } from '../../src/store/database.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { StoreFixture } from '../helpers/test-store.js';

const silent = pino({ level: 'silent' });
const fixture = new StoreFixture('capacity', 'capacity-pg');

beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

/** a fresh migrated database, its events, and a capacity on it with a data directory of its own */
async function setUp(
  reserveBytes: number,
): Promise<{ db: Kysely<Tables>; events: SecurityEvents; capacity: StoreCapacity; options: { reserveBytes: number; checkIntervalMs: number } }> {
  const [db] = (await fixture.stores('postgres')) as [Kysely<Tables>];
  const events = new SecurityEvents(db, silent);
  const options = { reserveBytes, checkIntervalMs: 100 };
  return { db, events, capacity: new StoreCapacity({ db, dataDir: fixture.tempDir() }, options, events, silent), options };
}

const capacityEvents = async (events: SecurityEvents): Promise<{ severity: string; detail: string }[]> =>
  (await events.page({ limit: 100, kind: 'store-capacity' })).items.map((e) => ({ severity: e.severity, detail: e.detail }));

test("PostgreSQL's disk_full and io_error are write failures", () => {
  expect(writeFailureOf(Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' }))?.code).toBe('53100');
  expect(writeFailureOf(Object.assign(new Error('could not write block'), { code: '58030' }))?.code).toBe('58030');
  expect(writeFailureOf(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBeUndefined();
});

test('the reserve crossed and freed again: an alarm and an all-clear in the store, ingest told it may write; no WAL figure', async () => {
  const { events, capacity, options } = await setUp(2 ** 50);
  let accepting = 0;
  capacity.on('accepting', () => accepting++);
  await capacity.start();
  try {
    await capacity.settled();
    expect(capacity.accepting()).toBe(false);
    expect(capacity.status()).toMatchObject({
      status: 'low-space',
      freeBytes: expect.any(Number),
      reserveBytes: 2 ** 50,
      walBytes: null,
      lastError: null,
    });
    expect(await capacityEvents(events)).toEqual([{ severity: 'alarm', detail: expect.stringMatching(/below the reserve/) }]);
    // space comes back (here: the reserve is lowered), found at the next measurement
    options.reserveBytes = 0;
    capacity.check();
    await capacity.settled();
    expect(capacity.status()).toMatchObject({ status: 'ok', walBytes: null });
    expect(accepting).toBe(1);
    expect(await capacityEvents(events)).toEqual([
      { severity: 'info', detail: expect.stringMatching(/takes writes again \(was low-space\)/) },
      { severity: 'alarm', detail: expect.stringMatching(/below the reserve/) },
    ]);
  } finally {
    await capacity.stop();
  }
}, 120_000);

test('a write that failed: cannot-write until the probe through the store is written; a probe that fails keeps it', async () => {
  const { db, events, capacity } = await setUp(0);
  capacity.check();
  await capacity.settled();
  expect(capacity.status()).toMatchObject({ status: 'ok', walBytes: null });
  // the store is healthy: nothing is probed
  expect((await db.selectFrom('store_probe').selectAll().execute()).length).toBe(0);
  const full = Object.assign(new Error('could not extend file "base/16384/16385": No space left on device'), { code: '53100' });
  expect(capacity.writeFailed(full)).toBe(true);
  expect(capacity.status()).toMatchObject({ status: 'cannot-write', lastError: { code: '53100' } });
  // a probe that the store refuses (not for space): still cannot write
  await sql`ALTER TABLE store_probe ADD CONSTRAINT refuse_all CHECK (at < 0)`.execute(db);
  await new Promise((r) => setTimeout(r, 150));
  capacity.check();
  await capacity.settled();
  expect(capacity.status()).toMatchObject({ status: 'cannot-write', lastError: { code: '53100' } });
  // the probe written: the store takes writes again (no failure for a whole check interval: the all-clear)
  await sql`ALTER TABLE store_probe DROP CONSTRAINT refuse_all`.execute(db);
  const before = Date.now();
  capacity.check();
  await capacity.settled();
  expect(capacity.status()).toMatchObject({ status: 'ok', lastError: null });
  const probe = await db.selectFrom('store_probe').selectAll().execute();
  expect(probe).toHaveLength(1);
  expect(probe[0]?.at).toBeGreaterThanOrEqual(before);
  expect(await capacityEvents(events)).toEqual([
    { severity: 'info', detail: expect.stringMatching(/takes writes again \(was cannot-write\)/) },
    { severity: 'alarm', detail: expect.stringMatching(/cannot write \(53100: could not extend file/) },
  ]);
  await capacity.stop();
}, 120_000);
