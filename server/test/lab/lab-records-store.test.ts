// The samples received and the methods through Kysely, the same code on SQLite and on a real PostgreSQL 15: created,
// read, paged, searched and versioned with the same answers, each change in one transaction with its audit-trail
// entry, the trail one chain; the numbering that pages them (0047) kept from the rows a store had. On PostgreSQL,
// two nodes (two pools) registering samples and adding versions of one method at once give every record its own
// number and version, create a record once, and record each version's change against the version it replaced.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Users } from '../../src/auth/users.js';
import { LabRecords, type Method } from '../../src/lab/lab-records.js';
import type { MethodDefinition } from '../../src/lab/schemas.js';
import { type LabDatabase, migrateStore, type Tables } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture } from '../helpers/test-store.js';
import { rejectionOf } from '../helpers/rejection.js';

const fixture = new StoreFixture('records');
/** the sync parts of AuditTrail need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh store (SQLite: one file; PostgreSQL: one database, a pool each), migrated up to `to` */
async function stores(engine: 'sqlite' | 'postgres', nodes = 1, to?: string): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes, to);
}

const ADA = { username: 'ada', role: 'technician' };
const DEFINITION: MethodDefinition = {
  measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
  instrumentTypes: [],
  limits: [],
  results: [],
  decisionRule: { kind: 'simple-acceptance' },
};
/** the accreditation scope the methods are checked against: ISO 6892-1 is in it */
const SCOPE = { methodScopeIn: () => Promise.resolve((standard: string) => standard.startsWith('ISO 6892-1')) };

/** the lab records on `db`, with two customers (their owner, the users module, creates them) */
async function labOn(db: Kysely<Tables>, clock: () => number = Date.now, organizations = true): Promise<LabRecords> {
  const audit = new AuditTrail(unused, clock);
  const users = new Users(db, audit);
  if (organizations) {
    await users.createOrganization(ADA, 'acme', 'ACME Steel');
    await users.createOrganization(ADA, 'bolt', 'Bolt_Works 100%');
  }
  return new LabRecords(db, audit, SCOPE, users, clock);
}

const sample = (id: string, organization: string, receivedAt: number, description = 'steel bar') => ({
  id,
  organization,
  description,
  condition: 'as received',
  receivedAt,
});

/** every page of a list: the ids in order */
async function everyPage<T extends { id: string }>(read: (cursor: string | undefined) => Promise<{ items: T[]; next: string | null }>) {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await read(cursor);
    ids.push(...page.items.map((i) => i.id));
    if (page.next === null) return ids;
    cursor = page.next;
  }
}

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('samples: registered once with their audit entry, read, paged newest first, searched and filtered', async () => {
    let clock = 1_000_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const lab = await labOn(db, () => clock);
    const heard: unknown[] = [];
    lab.on('changed', (change, organization) => heard.push([change, organization]));
    const made = await lab.createSample(ADA, sample('S-1', 'acme', 10, 'Rebar B500B'));
    expect(made).toEqual({ ...sample('S-1', 'acme', 10, 'Rebar B500B'), createdBy: 'ada', createdAt: clock });
    expect(heard).toEqual([[{ list: 'samples', id: 'S-1' }, 'acme']]);
    for (let i = 2; i <= 7; i++) {
      clock += 1;
      await lab.createSample(ADA, sample(`S-${i}`, i % 2 ? 'acme' : 'bolt', i * 10, i === 4 ? 'wire 50% drawn' : 'steel bar'));
    }
    await expect(lab.createSample(ADA, sample('S-1', 'acme', 0))).rejects.toMatchObject({ code: 'E_CONFLICT', refusal: { reason: 'record.exists' } });
    await expect(lab.createSample(ADA, sample('S-9', 'nobody', 0))).rejects.toMatchObject({
      code: 'E_BAD_REQUEST',
      message: 'body: organization: "nobody" is not known',
    });
    expect(await lab.sample('S-1')).toEqual(made);
    expect(await lab.sample('S-9')).toBeUndefined();
    // pages newest first, each sample once
    expect(await everyPage((cursor) => lab.samplesPage({ limit: 3, cursor }, undefined))).toEqual(['S-7', 'S-6', 'S-5', 'S-4', 'S-3', 'S-2', 'S-1']);
    const page = await lab.samplesPage({ limit: 2 }, undefined);
    expect(page.items.map((s) => s.id)).toEqual(['S-7', 'S-6']);
    // a sample registered meanwhile does not shift the next page
    await lab.createSample(ADA, sample('S-8', 'acme', 80));
    expect((await lab.samplesPage({ limit: 2, cursor: page.next ?? undefined }, undefined)).items.map((s) => s.id)).toEqual(['S-5', 'S-4']);
    // what a viewer may see, the customer asked for, the time of receipt
    expect(await everyPage((cursor) => lab.samplesPage({ limit: 2, cursor }, ['bolt']))).toEqual(['S-6', 'S-4', 'S-2']);
    expect((await lab.samplesPage({ limit: 50 }, [])).items).toEqual([]);
    expect((await lab.samplesPage({ limit: 50, organization: 'bolt' }, ['acme'])).items).toEqual([]);
    expect((await lab.samplesPage({ limit: 50, receivedFrom: 30, receivedTo: 50 }, undefined)).items.map((s) => s.id)).toEqual(['S-5', 'S-4', 'S-3']);
    // q: in the id, the description, the customer's id or name; ASCII letters in either case; % and _ literally
    const found = async (q: string, organizations?: string[]) =>
      (await lab.samplesPage({ limit: 50, q }, organizations)).items.map((s) => s.id).sort();
    expect(await found('s-1')).toEqual(['S-1']);
    expect(await found('REBAR')).toEqual(['S-1']);
    expect(await found('50%')).toEqual(['S-4']);
    expect(await found('%')).toEqual(['S-2', 'S-4', 'S-6']);
    expect(await found('_')).toEqual(['S-2', 'S-4', 'S-6']);
    expect(await found('steel')).toEqual(['S-1', 'S-2', 'S-3', 'S-5', 'S-6', 'S-7', 'S-8']);
    expect(await found('bolt_works', ['acme'])).toEqual([]);
    expect(await found('Acme')).toEqual(['S-1', 'S-3', 'S-5', 'S-7', 'S-8']);
    expect(await found('b500b', ['bolt'])).toEqual([]);
    const trail = await auditChain(db);
    expect(trail.filter((r) => r.record_type === 'lab-sample').map((r) => r.record_id)).toEqual([
      'S-1',
      'S-2',
      'S-3',
      'S-4',
      'S-5',
      'S-6',
      'S-7',
      'S-8',
    ]);
  }, 120_000);

  test('methods: versions with their reason, the newest in the list at the method’s first place, searched', async () => {
    let clock = 5_000;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const lab = await labOn(db, () => clock);
    const heard: unknown[] = [];
    lab.on('changed', (change) => heard.push(change));
    const first = await lab.createMethod(ADA, { id: 'tensile', standard: 'ISO 6892-1:2019', title: 'Tensile testing', definition: DEFINITION });
    expect(first).toEqual({
      id: 'tensile',
      version: 1,
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing',
      definition: DEFINITION,
      createdBy: 'ada',
      createdAt: clock,
      accredited: true,
    });
    clock += 1;
    await lab.createMethod(ADA, { id: 'bend', standard: 'ISO 7438:2020', title: 'Bend test', definition: DEFINITION });
    await expect(lab.createMethod(ADA, { id: 'tensile', standard: 'x', title: 'x', definition: DEFINITION })).rejects.toMatchObject({
      code: 'E_CONFLICT',
      refusal: { reason: 'record.exists' },
    });
    clock += 1;
    const second = await lab.addMethodVersion(ADA, 'tensile', {
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing, method B',
      definition: DEFINITION,
      reason: 'strain rate control',
    });
    expect(second).toMatchObject({ id: 'tensile', version: 2, title: 'Tensile testing, method B', createdAt: clock, accredited: true });
    await expect(lab.addMethodVersion(ADA, 'nothing', { standard: 'x', title: 'x', definition: DEFINITION, reason: 'r' })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    // a version without a reason fails at its audit entry: the version is not kept
    await expect(lab.addMethodVersion(ADA, 'tensile', { standard: 'x', title: 'x', definition: DEFINITION, reason: ' ' })).rejects.toMatchObject({
      code: 'E_BAD_REQUEST',
    });
    expect((await lab.methods('tensile')).map((m) => [m.version, m.title])).toEqual([
      [1, 'Tensile testing'],
      [2, 'Tensile testing, method B'],
    ]);
    expect(await lab.method('tensile')).toEqual(second);
    expect(await lab.method('tensile', 1)).toEqual(first);
    expect(await lab.method('tensile', 3)).toBeUndefined();
    expect(await lab.methods('nothing')).toEqual([]);
    expect((await lab.method('bend'))?.accredited).toBe(false);
    expect(heard).toEqual([
      { list: 'methods', id: 'tensile' },
      { list: 'methods', id: 'bend' },
      { list: 'methods', id: 'tensile' },
    ]);
    // tensile keeps its place (its first version's) though its newest version came last
    const pages = await everyPage<Method>((cursor) => lab.methodsPage({ limit: 1, cursor }));
    expect(pages).toEqual(['bend', 'tensile']);
    expect((await lab.methodsPage({ limit: 50 })).items.map((m) => [m.id, m.version])).toEqual([
      ['bend', 1],
      ['tensile', 2],
    ]);
    expect((await lab.methodsPage({ limit: 50, q: 'METHOD b' })).items.map((m) => m.id)).toEqual(['tensile']);
    expect((await lab.methodsPage({ limit: 50, q: '7438' })).items.map((m) => m.id)).toEqual(['bend']);
    expect((await lab.methodsPage({ limit: 50, q: 'BEN' })).items.map((m) => m.id)).toEqual(['bend']);
    const trail = await auditChain(db);
    const versions = trail.filter((r) => r.record_type === 'method');
    expect(versions.map((r) => [r.action, r.record_id, r.reason])).toEqual([
      ['create', 'tensile', null],
      ['create', 'bend', null],
      ['update', 'tensile', 'strain rate control'],
    ]);
    expect(JSON.parse(versions[2]?.old_value ?? 'null')).toMatchObject({ version: 1, title: 'Tensile testing' });
    expect(JSON.parse(versions[2]?.new_value ?? 'null')).toMatchObject({ version: 2, title: 'Tensile testing, method B' });
  }, 120_000);

  test('0047 numbers the samples and method versions a store had in the order they were made', async () => {
    const [db] = (await stores(engine, 1, '0046_session_ids')) as [Kysely<Tables>];
    await sql`INSERT INTO organizations (id, name, created_at) VALUES ('acme', 'ACME', 0)`.execute(db);
    // made in this order (their ids sort otherwise)
    for (const [id, at] of [
      ['S-b', 1],
      ['S-a', 2],
      ['S-c', 3],
    ] as const)
      await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
        VALUES (${id}, 'acme', 'bar', 'intact', 0, 'ada', ${at})`.execute(db);
    for (const [id, version, at] of [
      ['m-z', 1, 1],
      ['m-a', 1, 2],
      ['m-z', 2, 3],
    ] as const)
      await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
        VALUES (${id}, ${version}, 'ISO 1', 'M', ${JSON.stringify(DEFINITION)}, 'ada', ${at})`.execute(db);
    await migrateStore(db, serverMigrations);
    const lab = await labOn(db, Date.now, false);
    expect(await everyPage((cursor) => lab.samplesPage({ limit: 2, cursor }, undefined))).toEqual(['S-c', 'S-a', 'S-b']);
    expect((await lab.methodsPage({ limit: 50 })).items.map((m) => [m.id, m.version])).toEqual([
      ['m-a', 1],
      ['m-z', 2],
    ]);
    // new ones after them; the rows stay written once
    await lab.createSample(ADA, sample('S-0', 'acme', 0));
    expect((await lab.samplesPage({ limit: 1 }, undefined)).items.map((s) => s.id)).toEqual(['S-0']);
    expect(await rejectionOf(sql`UPDATE lab_samples SET position = 99`.execute(db))).toContain('lab_samples rows are written once');
    expect(await rejectionOf(sql`UPDATE methods SET title = 'x'`.execute(db))).toContain('methods rows are written once');
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('samples registered and versions added at once from both: each numbered once, created once, each version against the one before', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = await labOn(a);
    const onB = new LabRecords(b, new AuditTrail(unused), SCOPE, new Users(b, new AuditTrail(unused)));
    // distinct samples at once: every one stored, every number given once
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? onA : onB).createSample(ADA, sample(`S-${i}`, 'acme', i))));
    const ids = await everyPage((cursor) => onB.samplesPage({ limit: 5, cursor }, undefined));
    expect(ids.sort()).toEqual(Array.from({ length: 16 }, (_, i) => `S-${i}`).sort());
    // one sample registered on both at once: one is, the other answers that it exists
    const same = await Promise.allSettled([onA, onB, onA, onB].map((lab) => lab.createSample(ADA, sample('S-same', 'bolt', 0))));
    expect(same.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(same.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []))).toEqual(Array(3).fill('E_CONFLICT'));
    // versions of one method added on both at once: versions 2..13, each recorded against the one it replaced
    await onA.createMethod(ADA, { id: 'tensile', standard: 'ISO 6892-1:2019', title: 'v1', definition: DEFINITION });
    const added = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? onA : onB).addMethodVersion(ADA, 'tensile', {
          standard: 'ISO 6892-1:2019',
          title: `from ${i}`,
          definition: DEFINITION,
          reason: 'r',
        }),
      ),
    );
    expect(added.map((m) => m.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
    expect((await onB.methods('tensile')).map((m) => m.version)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    const trail = await auditChain(a);
    const updates = trail.filter((r) => r.record_type === 'method' && r.action === 'update');
    expect(updates).toHaveLength(12);
    for (const u of updates) {
      const { version: before } = JSON.parse(u.old_value ?? '{}') as { version: number };
      const { version: after } = JSON.parse(u.new_value ?? '{}') as { version: number };
      expect(after).toBe(before + 1);
    }
    expect(trail.filter((r) => r.record_type === 'lab-sample')).toHaveLength(17);
  }, 120_000);
});
