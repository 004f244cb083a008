// Accreditations through Kysely, the same code on SQLite and on a real PostgreSQL 15: recorded, suspended,
// reinstated, withdrawn and rescoped with the same answers and refusals, each change in one transaction with its
// audit entry; the scope checks (results and methods) and their synchronous twins agree. On PostgreSQL, two nodes
// (two pools) changing one accreditation at once: one suspension wins, scope versions do not collide, one id is
// recorded once, two first starts record the configured accreditations once, and a node sees the other's change.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Accreditations, type AccreditationInput } from '../../src/lab/accreditation.js';
import { LabDatabase, type Tables } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2027, 0, 1);
const ADMIN = { username: 'ada', role: 'admin' };
const TENSILE = 'ISO 6892-1:2019';

const fixture = new StoreFixture('accreditation', 'accr-store');
/** the sync parts of AuditTrail need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

const CNAS: AccreditationInput = {
  id: 'cnas-1',
  body: 'CNAS',
  number: 'L1234',
  standard: 'ISO/IEC 17025:2017',
  validFrom: T0 - 365 * DAY,
  validTo: T0 + 365 * DAY,
  scope: [{ standard: TENSILE, measurand: 'Rm', unit: 'MPa', min: 100, max: 1200 }],
};

async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes);
}

const silent = pino({ level: 'silent' });
const accreditationsOn = (db: Kysely<Tables>, clock: () => number, configured: AccreditationInput[] = []): Accreditations =>
  new Accreditations(db, new AuditTrail(unused, clock), silent, { warnDays: 30, accreditations: configured }, clock);

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('recorded, suspended, reinstated, rescoped and withdrawn, each with its audit entry; the scope checks follow', async () => {
    let clock = T0;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const accreditations = accreditationsOn(db, () => clock);
    const created = await accreditations.create(ADMIN, CNAS);
    expect(created).toMatchObject({
      id: 'cnas-1',
      status: 'active',
      statusSince: CNAS.validFrom,
      scope: { version: 1, entries: CNAS.scope },
      events: [],
    });
    await expect(accreditations.create(ADMIN, CNAS)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    const query = { standard: TENSILE, measurand: 'Rm', unit: 'MPa', value: 640, at: clock };
    expect(await accreditations.covers(query)).toEqual({ accredited: true, accreditation: { body: 'CNAS', number: 'L1234' } });
    expect(await accreditations.covers({ ...query, value: 1300 })).toMatchObject({
      accredited: false,
      reason: expect.stringMatching(/outside the accredited range 100–1200 MPa/),
    });
    expect(await accreditations.methodInScope(TENSILE, [{ name: 'Rm', unit: 'MPa' }], clock)).toBe(true);
    expect(await accreditations.methodInScope(TENSILE, [{ name: 'A', unit: '%' }], clock)).toBe(false);

    clock += DAY;
    const suspended = await accreditations.event(ADMIN, 'cnas-1', { kind: 'suspend', reason: '监督评审未通过' });
    expect(suspended).toMatchObject({ status: 'suspended', statusSince: clock });
    await expect(accreditations.event(ADMIN, 'cnas-1', { kind: 'suspend', reason: 'again' })).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect(await accreditations.covers({ ...query, at: clock })).toMatchObject({
      accredited: false,
      reason: expect.stringMatching(/is suspended since/),
    });
    // the synchronous twins are not available without the embedded SQLite store; the async answers stand alone
    expect(await accreditations.covers({ ...query, at: clock - 1 })).toMatchObject({ accredited: true });
    clock += DAY;
    expect(await accreditations.event(ADMIN, 'cnas-1', { kind: 'reinstate', reason: 'corrective actions closed' })).toMatchObject({
      status: 'active',
    });
    clock += DAY;
    const rescoped = await accreditations.changeScope(ADMIN, 'cnas-1', {
      scope: [...CNAS.scope, { standard: TENSILE, measurand: 'A', unit: '%', min: 0, max: 80 }],
      reason: 'extension granted',
    });
    expect(rescoped.scope).toMatchObject({ version: 2, effectiveFrom: clock, reason: 'extension granted' });
    expect((await accreditations.scopeVersions('cnas-1')).map((v) => v.version)).toEqual([1, 2]);
    expect(
      await accreditations.methodInScope(
        TENSILE,
        [
          { name: 'Rm', unit: 'MPa' },
          { name: 'A', unit: '%' },
        ],
        clock,
      ),
    ).toBe(true);
    expect(await accreditations.methodInScope(TENSILE, [{ name: 'A', unit: '%' }], clock - 1)).toBe(false);
    clock += DAY;
    expect(await accreditations.event(ADMIN, 'cnas-1', { kind: 'withdraw', reason: 'the lab closed' })).toMatchObject({ status: 'withdrawn' });
    await expect(accreditations.changeScope(ADMIN, 'cnas-1', { scope: CNAS.scope, reason: 'x' })).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(accreditations.event(ADMIN, 'nope', { kind: 'suspend', reason: 'x' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await accreditations.view('nope')).toBeUndefined();
    expect(await accreditations.publicList()).toEqual([
      {
        id: 'cnas-1',
        body: 'CNAS',
        number: 'L1234',
        standard: 'ISO/IEC 17025:2017',
        status: 'withdrawn',
        statusSince: clock,
        validFrom: CNAS.validFrom,
        validTo: CNAS.validTo,
      },
    ]);
    // as it stood before the withdrawal
    expect((await accreditations.list(clock - 1)).map((a) => a.status)).toEqual(['active']);
    expect((await auditChain(db)).map((r) => [r.action, r.record_id])).toEqual([
      ['create', 'cnas-1'],
      ['state-change', 'cnas-1'],
      ['state-change', 'cnas-1'],
      ['update', 'cnas-1'],
      ['state-change', 'cnas-1'],
    ]);
  }, 120_000);

  test('a change whose transaction fails leaves no scope version and no audit entry; expiry warnings', async () => {
    const clock = CNAS.validTo - 10 * DAY;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const accreditations = accreditationsOn(db, () => clock);
    await accreditations.create(ADMIN, CNAS);
    // a scope change without a reason fails at its audit entry, after the new version's insert: the insert is undone
    await expect(accreditations.changeScope(ADMIN, 'cnas-1', { scope: CNAS.scope, reason: '' })).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect((await accreditations.scopeVersions('cnas-1')).map((v) => v.version)).toEqual([1]);
    expect(await auditChain(db)).toHaveLength(1);
    expect((await accreditations.checkExpiry()).map((a) => [a.id, a.warnings[0]?.daysLeft])).toEqual([['cnas-1', 10]]);
  }, 120_000);
});

test('on the embedded SQLite store, the method scope check asked in a transaction answers as methodInScope', async () => {
  const dir = fixture.tempDir();
  const database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
  const accreditations = new Accreditations(database.db, new AuditTrail(database), silent, { warnDays: 30, accreditations: [CNAS] }, () => T0);
  await accreditations.start();
  await accreditations.stop();
  // in a transaction of the caller's, as a run's start asks it (on SQLite, a query on the store there would wait)
  const inScope = (at: number) =>
    database.db.transaction().execute(async (trx) => (await accreditations.methodScopeIn(trx, at))(TENSILE, [{ name: 'Rm', unit: 'MPa' }]));
  expect(await inScope(T0)).toBe(true);
  expect(await inScope(CNAS.validTo)).toBe(false);
  expect(await inScope(T0)).toBe(await accreditations.methodInScope(TENSILE, [{ name: 'Rm', unit: 'MPa' }], T0));
  await database.close();
});

describe('two nodes on one PostgreSQL', () => {
  test('one accreditation changed at once from both: one suspension, scope versions in order, one record per id, one chain', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = accreditationsOn(a, () => T0);
    const onB = accreditationsOn(b, () => T0);
    // two first starts at once: the configured accreditation recorded once
    const starters = [accreditationsOn(a, () => T0, [CNAS]), accreditationsOn(b, () => T0, [CNAS])];
    await Promise.all(starters.map((s) => s.start()));
    await Promise.all(starters.map((s) => s.stop()));
    expect(await onB.list()).toHaveLength(1);
    // node A read (and cached) it; node B's change shows on A
    expect((await onA.view('cnas-1'))?.status).toBe('active');
    const suspensions = await Promise.allSettled([onA, onB, onA, onB].map((n) => n.event(ADMIN, 'cnas-1', { kind: 'suspend', reason: 'audit' })));
    expect(suspensions.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(suspensions.flatMap((s) => (s.status === 'rejected' ? [(s.reason as { code: string }).code] : []))).toEqual(Array(3).fill('E_CONFLICT'));
    expect((await onA.view('cnas-1'))?.status).toBe('suspended');
    const scopes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? onA : onB).changeScope(ADMIN, 'cnas-1', { scope: CNAS.scope, reason: `change ${i}` })),
    );
    expect(scopes.map((s) => s.scope.version).sort()).toEqual([2, 3, 4, 5, 6, 7]);
    const creates = await Promise.allSettled([onA, onB].map((n) => n.create(ADMIN, { ...CNAS, id: 'ukas-1', body: 'UKAS' })));
    expect(creates.map((c) => c.status).sort()).toEqual(['fulfilled', 'rejected']);
    const trail = await auditChain(a);
    expect(trail.filter((r) => r.action === 'create').map((r) => r.record_id)).toEqual(['cnas-1', 'ukas-1']);
    expect(trail.filter((r) => r.action === 'state-change')).toHaveLength(1);
    expect(trail.filter((r) => r.action === 'update')).toHaveLength(6);
  }, 120_000);
});
