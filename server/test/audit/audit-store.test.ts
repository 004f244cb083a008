// The audit trail through Kysely, the same code on SQLite and on a real PostgreSQL 15: entries appended in their
// callers' transactions, read by page, by filter (the organization rule included), oldest first and a page at a time
// for an export; the chain checked, a rewritten entry found; every entry anchored in the log store by its hash alone,
// once. On PostgreSQL, two nodes (two pools) appending at once keep one unbroken chain, and anchoring at once enters
// each entry in the log once.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { formatSignerKey, leafHash, parseSignerKey, rootOf, verifyInclusion } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { AuditTrail, SYSTEM_ACTOR, type Actor, type AuditInput } from '../../src/audit/audit-trail.js';
import { LogStore } from '../../src/log/log-store.js';
import type { Tables } from '../../src/store/database.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';
import { rejectionOf } from '../helpers/rejection.js';

useNodeCrypto();

const fixture = new StoreFixture('audit', 'audit-store');
const KEY = parseSignerKey(formatSignerKey('labtrace.example/audit-store', new Uint8Array(randomBytes(32))));

beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh, migrated store with a client's records (SQLite: one file; PostgreSQL: a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  // records of two customer organizations, as their modules write them (the organization rule reads them)
  for (const org of ['acme', 'globex']) await sql`INSERT INTO organizations (id, name, created_at) VALUES (${org}, ${org}, 0)`.execute(db);
  await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
    VALUES ('s-acme', 'acme', 'bar', 'as received', 0, 'ada', 0), ('s-globex', 'globex', 'rod', 'as received', 0, 'ada', 0)`.execute(db);
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at) VALUES ('m', 1, 'ISO 1', 'M', '{}', 'ada', 0)`.execute(
    db,
  );
  await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at)
    VALUES ('run-g', 's-globex', 'globex', 'm', 1, '[]', 'ada', 'created', 0, 'ada', 0)`.execute(db);
  return dbs;
}

const ADA: Actor = { username: 'ada', role: 'technician' };

/** appends one entry in a transaction of its own, as a converted module does with its change */
const append = (db: Kysely<Tables>, audit: AuditTrail, actor: Actor, input: AuditInput) =>
  db.transaction().execute((trx) => audit.recordIn(trx, actor, input));

/** the entries every case starts from: the lab's, acme's and globex's records, and a type the rule does not know */
async function seed(db: Kysely<Tables>, audit: AuditTrail): Promise<void> {
  await append(db, audit, ADA, { action: 'create', recordType: 'lab-sample', recordId: 's-acme', newValue: { id: 's-acme' } });
  await append(db, audit, ADA, { action: 'create', recordType: 'lab-sample', recordId: 's-globex', newValue: { id: 's-globex' } });
  await append(db, audit, ADA, { action: 'create', recordType: 'method', recordId: 'm', newValue: { id: 'm', version: 1 } });
  await append(db, audit, ADA, { action: 'create', recordType: 'run-alarm', recordId: 'run-g/3', newValue: null });
  await append(
    db,
    audit,
    { username: 'eve', role: 'admin' },
    { action: 'update', recordType: 'run', recordId: 'run-g', oldValue: 1, newValue: 2, reason: ' re-test ' },
  );
  await append(db, audit, SYSTEM_ACTOR, { action: 'create', recordType: 'mystery', recordId: 'x' });
}

describe.each(['sqlite', 'postgres'] as const)('%s', (engine) => {
  test('entries appended in their transactions read back the same way: pages newest first, filters, oldest first, in pages', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    let clock = 1_000;
    const audit = new AuditTrail(db, () => clock++);
    await seed(db, audit);
    const rows = await auditChain(db);
    expect(rows).toHaveLength(6);
    // a page of 4 newest first, then the rest; the cursor is the id of the last shown
    const first = await audit.page({}, { limit: 4 });
    expect(first.items.map((e) => e.id)).toEqual([6, 5, 4, 3]);
    expect(first.next).toBe('3');
    const second = await audit.page({}, { limit: 4, cursor: first.next ?? undefined });
    expect(second.items.map((e) => e.id)).toEqual([2, 1]);
    expect(second.next).toBeNull();
    // the values as given, NULL kept apart from a recorded JSON null, the reason trimmed
    expect(second.items[1]).toMatchObject({ actor: 'ada', actorRole: 'technician', action: 'create', newValue: { id: 's-acme' }, oldValue: null });
    expect(first.items[1]).toMatchObject({ actor: 'eve', action: 'update', oldValue: 1, newValue: 2, reason: 're-test', at: 1_004 });
    expect((await audit.rows({ recordType: 'run-alarm', limit: 10 }))[0]).toMatchObject({ new_value: 'null', old_value: null });
    // filters
    const ids = async (filter: Parameters<AuditTrail['list']>[0]) => (await audit.list(filter)).map((e) => e.id);
    expect(await ids({ actor: 'eve', limit: 10 })).toEqual([5]);
    expect(await ids({ recordType: 'lab-sample', limit: 10 })).toEqual([1, 2]);
    expect(await ids({ recordType: 'lab-sample', recordId: 's-globex', limit: 10 })).toEqual([2]);
    expect(await ids({ action: 'update', limit: 10 })).toEqual([5]);
    expect(await ids({ since: 1_001, until: 1_003, limit: 10 })).toEqual([2, 3, 4]);
    expect(await ids({ after: 4, limit: 10 })).toEqual([5, 6]);
    expect(await ids({ limit: 2 })).toEqual([1, 2]);
    // a viewer of acme only: acme's sample and the lab's own method; not globex's sample, run or run alarm, nor the unknown type
    expect(await ids({ organizations: ['acme'], limit: 10 })).toEqual([1, 3]);
    expect(await ids({ organizations: ['globex'], limit: 10 })).toEqual([2, 3, 4, 5]);
    expect(await ids({ organizations: ['acme', 'globex'], limit: 10 })).toEqual([1, 2, 3, 4, 5]);
    expect((await audit.page({ organizations: ['globex'] }, { limit: 2 })).items.map((e) => e.id)).toEqual([5, 4]);
    // an export's pages: all of them, in order, a page at a time
    const pages: number[][] = [];
    for await (const page of audit.pages({}, 4)) pages.push(page.map((r) => r.id));
    expect(pages).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
    expect(await audit.verify()).toBeUndefined();
  }, 120_000);

  test('a change whose transaction fails leaves no entry; an entry without the reason a change needs is refused', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const audit = new AuditTrail(db);
    await seed(db, audit);
    await expect(
      db.transaction().execute(async (trx) => {
        await audit.recordIn(trx, ADA, { action: 'create', recordType: 'method', recordId: 'm2' });
        throw new Error('the change fails after its entry');
      }),
    ).rejects.toThrow('the change fails');
    await expect(append(db, audit, ADA, { action: 'delete', recordType: 'method', recordId: 'm', reason: '  ' })).rejects.toMatchObject({
      code: 'E_BAD_REQUEST',
    });
    expect(await auditChain(db)).toHaveLength(6);
    expect((await append(db, audit, ADA, { action: 'create', recordType: 'method', recordId: 'm2' })).id).toBe(7);
    expect(await auditChain(db)).toHaveLength(7);
  }, 120_000);

  test('the table refuses a change; an entry rewritten behind its back breaks the chain at that entry', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const audit = new AuditTrail(db);
    await seed(db, audit);
    expect(await rejectionOf(sql`UPDATE audit_trail SET reason = 'edited' WHERE id = 2`.execute(db))).toMatch(/append-only/);
    expect(await rejectionOf(sql`DELETE FROM audit_trail WHERE id = 2`.execute(db))).toMatch(/append-only/);
    // someone with the owner's rights drops the trigger and edits an entry
    await sql.raw(engine === 'postgres' ? 'DROP TRIGGER audit_trail_no_update ON audit_trail' : 'DROP TRIGGER audit_trail_no_update').execute(db);
    await sql`UPDATE audit_trail SET record_id = 'z' WHERE id = 3`.execute(db);
    expect(await audit.verify()).toBe(3);
  }, 120_000);

  test('every entry is anchored in the log store by its id, time and hash alone, once; later entries at the next anchoring', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const audit = new AuditTrail(db, () => 5_000);
    const log = new LogStore(db, { origin: 'labtrace.example/audit-store', signer: KEY, minCheckpointIntervalMs: 0 });
    await log.open(0);
    await seed(db, audit);
    expect(await audit.anchor(log)).toBe(6);
    expect(await audit.anchor(log)).toBe(0);
    await append(db, audit, ADA, { action: 'create', recordType: 'method', recordId: 'm2' });
    expect(await audit.anchor(log)).toBe(1);
    const size = await log.size();
    expect(size).toBe(7);
    const root = await log.root();
    const entries = await audit.list({ limit: 100 });
    const logged = await log.entries(0, size);
    for (const e of entries) {
      expect(e.logIndex).not.toBeNull();
      const leaf = logged[e.logIndex ?? -1];
      expect(leaf?.kind).toBe('audit-event');
      expect(JSON.parse(new TextDecoder().decode(leaf?.data))).toEqual({ at: e.at, hash: e.hash, id: e.id });
      const proof = await log.inclusionProof(e.logIndex ?? -1, size);
      expect(() => verifyInclusion(leafHash(leaf?.data ?? new Uint8Array()), e.logIndex ?? -1, size, proof, root)).not.toThrow();
    }
    // in the order of the chain; the public log learns no names
    expect(entries.map((e) => e.logIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(logged.map((l) => new TextDecoder().decode(l.data)).join()).not.toMatch(/ada|eve/);
    expect(rootOf(logged.map((l) => leafHash(l.data)))).toEqual(root);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('appending at once from both: one unbroken chain, every entry once', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = new AuditTrail(a);
    const onB = new AuditTrail(b);
    const each = 40;
    const written = await Promise.all(
      Array.from({ length: 2 * each }, (_, i) =>
        append(i % 2 === 0 ? a : b, i % 2 === 0 ? onA : onB, ADA, { action: 'create', recordType: 'method', recordId: `m-${i}` }),
      ),
    );
    const rows = await auditChain(a);
    expect(rows).toHaveLength(2 * each);
    expect(new Set(rows.map((r) => r.record_id))).toEqual(new Set(written.map((e) => e.recordId)));
    // what each node was told it appended is what the chain holds
    for (const e of written) expect(rows[e.id - 1]?.hash).toBe(e.hash);
    expect(await onB.verify()).toBeUndefined();
  }, 120_000);

  test('anchoring at once from both: each entry enters the log once', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = new AuditTrail(a);
    const onB = new AuditTrail(b);
    const logA = new LogStore(a, { origin: 'labtrace.example/audit-store', signer: KEY });
    const logB = new LogStore(b, { origin: 'labtrace.example/audit-store', signer: KEY });
    await logA.open(0);
    await logB.open(0);
    let anchored = 0;
    for (let round = 0; round < 3; round++) {
      // entries appended on both nodes while both anchor
      const work = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) =>
          append(i % 2 ? a : b, i % 2 ? onA : onB, ADA, { action: 'create', recordType: 'method', recordId: `m-${round}-${i}` }).then(() => 0),
        ),
        onA.anchor(logA),
        onB.anchor(logB),
        onA.anchor(logA),
      ]);
      anchored += work.reduce((n, x) => n + x, 0);
    }
    // what is left after the last appends, anchored by both at once
    anchored += (await Promise.all([onA.anchor(logA), onB.anchor(logB)])).reduce((n, x) => n + x, 0);
    expect(anchored).toBe(30);
    const size = await logA.size();
    expect(size).toBe(30);
    const entries = await onA.list({ limit: 100 });
    expect(new Set(entries.map((e) => e.logIndex)).size).toBe(30);
    const logged = await logB.entries(0, size);
    expect(logged.map((l) => (JSON.parse(new TextDecoder().decode(l.data)) as { id: number }).id).sort((x, y) => x - y)).toEqual(
      entries.map((e) => e.id),
    );
  }, 120_000);
});
