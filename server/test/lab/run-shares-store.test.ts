// Share links through Kysely, the same code on SQLite and on a real PostgreSQL 15: created, listed, revoked, opened
// and peeked with the same answers, each change in one transaction with its audit-trail entry, the trail one chain.
// On PostgreSQL, two nodes (two pools) opening a new link at once count both openings and record the first once,
// revoke it at once and record one revocation, and append to the trail at once without forking it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { RunShares } from '../../src/lab/run-shares.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const fixture = new StoreFixture('shares');
/** the sync parts of AuditTrail (reads, verify) need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh, migrated store with a run (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  // the runs the links are of (the lab's records they hang on, as the lab module writes them)
  await sql`INSERT INTO organizations (id, name, created_at) VALUES ('acme', 'ACME', 0)`.execute(db);
  await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
    VALUES ('s-1', 'acme', 'bar', 'as received', 0, 'ada', 0)`.execute(db);
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at) VALUES ('m', 1, 'ISO 1', 'M', '{}', 'ada', 0)`.execute(
    db,
  );
  for (const run of ['run-0', 'run-1', 'run-2'])
    await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at)
      VALUES (${run}, 's-1', 'acme', 'm', 1, '[]', 'ada', 'created', 0, 'ada', 0)`.execute(db);
  return dbs;
}

const ADMIN = { username: 'ada', role: 'technician' };

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('create, list, open, peek and revoke answer as they always did, each with its audit entry', async () => {
    let clock = 1_000_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const shares = new RunShares(db, new AuditTrail(unused, () => clock), () => clock);
    const created = await shares.create(ADMIN, 'run-1', { hours: 2, note: '客户 A' });
    expect(created).toMatchObject({
      id: '1',
      run: 'run-1',
      note: '客户 A',
      state: 'active',
      createdBy: 'ada',
      expiresAt: clock + 2 * 3_600_000,
      uses: 0,
    });
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const second = await shares.create(ADMIN, 'run-1', { hours: 1 });
    expect((await shares.list('run-1')).map((s) => s.id)).toEqual([second.id, created.id]);
    expect(await shares.list('run-2')).toEqual([]);
    // opened twice: counted twice, audited once
    clock += 1000;
    expect(await shares.open(created.token)).toEqual({ run: 'run-1', expiresAt: created.expiresAt });
    expect(await shares.open(created.token)).toEqual({ run: 'run-1', expiresAt: created.expiresAt });
    expect(await shares.peek(created.token)).toEqual({ run: 'run-1' });
    const listed = (await shares.list('run-1')).find((s) => s.id === created.id);
    expect(listed).toMatchObject({ uses: 2, firstUsedAt: clock });
    await expect(shares.open('not-a-token')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // revoked: 410 with the reason; a second revocation refused; unknown links 404
    const revoked = await shares.revoke(ADMIN, 'run-1', Number(created.id), 'sent to the wrong client');
    expect(revoked).toMatchObject({ state: 'revoked', revokedBy: 'ada', revokeReason: 'sent to the wrong client', uses: 2 });
    await expect(shares.open(created.token)).rejects.toMatchObject({ code: 'E_GONE', refusal: { reason: 'share.revoked' } });
    await expect(shares.peek(created.token)).rejects.toMatchObject({ code: 'E_GONE' });
    await expect(shares.revoke(ADMIN, 'run-1', Number(created.id), 'again')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(shares.revoke(ADMIN, 'run-2', Number(second.id), 'wrong run')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(shares.revoke(ADMIN, 'run-1', Number(second.id), '  ')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    // expired: 410 "expired", and the failed opening is not counted
    clock += 3_600_000;
    await expect(shares.open(second.token)).rejects.toMatchObject({ code: 'E_GONE', refusal: { reason: 'share.expired' } });
    expect((await shares.list('run-1')).find((s) => s.id === second.id)).toMatchObject({ state: 'expired', uses: 0, firstUsedAt: null });
    const trail = await auditChain(db);
    expect(trail.map((r) => [r.actor, r.action, r.record_id])).toEqual([
      ['ada', 'create', 'run-1/1'],
      ['ada', 'create', 'run-1/2'],
      ['share-link:1', 'state-change', 'run-1/1'],
      ['ada', 'update', 'run-1/1'],
    ]);
  }, 120_000);

  test('a change whose transaction fails leaves no link and no audit entry', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const audit = new AuditTrail(unused);
    const shares = new RunShares(db, audit);
    const created = await shares.create(ADMIN, 'run-1', { hours: 1 });
    // a revocation without a reason fails at its audit entry, after the update: the update is undone
    await expect(shares.revoke(ADMIN, 'run-1', Number(created.id), '')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect((await shares.list('run-1'))[0]).toMatchObject({ state: 'active', revokedAt: null });
    expect(await auditChain(db)).toHaveLength(1);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('opening and revoking a link at once from both: every opening counted, the first and the revocation recorded once, one chain', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = new RunShares(a, new AuditTrail(unused));
    const onB = new RunShares(b, new AuditTrail(unused));
    const links = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? onA : onB).create(ADMIN, `run-${i % 3}`, { hours: 1 })));
    const opens = await Promise.all(links.flatMap((l) => [onA.open(l.token), onB.open(l.token), onA.open(l.token)]));
    expect(opens).toHaveLength(18);
    const revocations = await Promise.allSettled(links.flatMap((l) => [onA, onB].map((s) => s.revoke(ADMIN, l.run, Number(l.id), 'closed'))));
    expect(revocations.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
    const refused = revocations.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []));
    expect(refused).toEqual(Array(6).fill('E_CONFLICT'));
    for (const l of links) expect((await onB.list(l.run)).find((s) => s.id === l.id)).toMatchObject({ uses: 3, state: 'revoked' });
    const trail = await auditChain(a);
    expect(trail.filter((r) => r.action === 'create')).toHaveLength(6);
    expect(trail.filter((r) => r.action === 'state-change')).toHaveLength(6);
    expect(trail.filter((r) => r.action === 'update')).toHaveLength(6);
  }, 120_000);
});
