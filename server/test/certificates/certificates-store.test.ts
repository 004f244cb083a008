// Certificates through Kysely, the same code on SQLite and on a real PostgreSQL 15: requested, reviewed, issued
// (signed, rendered, validated against the DCC schema, logged), listed, amended and revoked with the same answers, each
// change in one transaction with its log entry and its audit-trail entry. What certificates read of the runs, results,
// samples, customers and instruments comes through CertificateSources, here answered from the records a run of a
// tensile test gives (test/certificates/fixtures.ts), as their owners will once they move onto Kysely too.
// On PostgreSQL, two nodes (two pools) requesting at once get distinct numbers; issuing one draft at once issues it
// once (one certificate, one log entry, one event); amending or revoking one report at once does it once.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { pino } from 'pino';
import { formatSignerKey, parseSignerKey } from '@labtrace/protocols';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Certificates, type CertificatesDeps } from '../../src/certificates/certificates.js';
import { logStoreLog, type CertificateSources, type CertificateSubject } from '../../src/certificates/sources.js';
import { LogStore } from '../../src/log/log-store.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';
import { composeInput, T0 } from './fixtures.js';
import { rejectionOf } from '../helpers/rejection.js';

const HOUR = 3_600_000;
const ORIGIN = 'labtrace/lab-t';
const LOG_KEY = parseSignerKey(formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32))));

const fixture = new StoreFixture('certificates');
/** the sync parts of AuditTrail (reads, verify) need a LabDatabase; recordIn uses only the transaction it is given */
let unused: LabDatabase;
let keyFile: string;

beforeAll(async () => {
  await fixture.start();
  const dir = fixture.tempDir();
  unused = fixture.labDatabase(dir);
  // one certificate key for the lab, as every node of it reads it
  keyFile = path.join(dir, 'certificate.key');
}, 120_000);
afterAll(() => fixture.close());

const input = composeInput();
const RUN = input.run;

/** `nodes` Kyselys on one fresh, migrated store with the run (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  // the run the certificates are of (the lab's records, as their modules write them)
  await sql`INSERT INTO organizations (id, name, contact, created_at) VALUES ('org-a', ${input.customer.name}, ${input.customer.contact}, 0)`.execute(
    db,
  );
  await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
    VALUES (${input.sample.id}, 'org-a', ${input.sample.description}, ${input.sample.condition}, ${input.sample.receivedAt}, 'technician', 0)`.execute(
    db,
  );
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
    VALUES ('tensile', 2, 'ISO 6892-1:2019', ${input.methodTitle}, '{}', 'technician', 0)`.execute(db);
  await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at)
    VALUES (${RUN.id}, ${input.sample.id}, 'org-a', 'tensile', 2, '[]', 'technician', 'completed', 1, 'technician', ${RUN.createdAt})`.execute(db);
  return dbs;
}

/** The lab's records of the run, as their owners answer (runs, results, samples, customers, registry, calibration). */
function sources(): CertificateSources {
  const subject: CertificateSubject = { customer: input.customer.name, sample: { id: input.sample.id, description: input.sample.description } };
  const instrument = input.instruments[0];
  if (instrument === undefined) throw new Error('the fixture has an instrument');
  return {
    run: (id) => (id === RUN.id ? RUN : undefined),
    results: (run) => (run === RUN.id ? input.results : undefined),
    sample: (id) => (id === input.sample.id ? input.sample : undefined),
    methodTitle: (id, version) => (id === 'tensile' && version === 2 ? input.methodTitle : undefined),
    customer: (organization) => (organization === 'org-a' ? { name: input.customer.name, contact: input.customer.contact } : undefined),
    instrumentIdentity: (id) => (id === instrument.id ? instrument.identity : undefined),
    calibrationStatus: (id) => ({ ...instrument.atStart, instrument: id }),
    calibrationReview: () => ({ since: 0, runs: [] }),
    accreditationCurrent: () => true,
    subjects: (runs) => new Map(runs.filter((r) => r === RUN.id).map((r) => [r, subject])),
    runsAbout: (text) =>
      [subject.customer, subject.sample.id, subject.sample.description].some((s) => s.toLowerCase().includes(text.toLowerCase())) ? [RUN.id] : [],
  };
}

/** a node's certificates on `db`: its own log store and audit trail over the shared store, the lab's one key */
async function node(db: Kysely<Tables>, now: () => number): Promise<Certificates> {
  const log = new LogStore(db, { origin: ORIGIN, signer: LOG_KEY, minCheckpointIntervalMs: 0 });
  await log.open(now());
  const deps: CertificatesDeps = {
    db,
    audit: new AuditTrail(unused, now),
    sources: sources(),
    log: () => logStoreLog(log),
    laboratory: input.laboratory,
    lab: 'lab-t',
    publicBaseUrl: () => 'https://lab.example',
    keyFile,
    softwareVersion: '0.0.0-test',
    logger: pino({ level: 'silent' }),
    now,
  };
  const certificates = new Certificates(deps);
  await certificates.start();
  return certificates;
}

/** the certificate events in the log, by kind and number */
async function logged(db: Kysely<Tables>): Promise<{ kind: string; certificate: string }[]> {
  const rows = await db.selectFrom('log_entries').select('data').where('kind', '=', 'certificate-event').orderBy('idx').execute();
  return rows.map((r) => JSON.parse(Buffer.from(r.data).toString('utf8')) as { kind: string; certificate: string });
}

const TECHNICIAN = { username: 'technician', role: 'technician' as const, organization: null };
const SIGNATORY = { username: 'signatory', role: 'signatory' as const, organization: null };
const CLIENT_A = { username: 'client-a', role: 'client' as const, organization: 'org-a' };
const CLIENT_B = { username: 'client-b', role: 'client' as const, organization: 'org-b' };

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('requested, reviewed, issued, listed, amended and revoked, each with its log entry and audit entry', async () => {
    let clock = T0 + 3 * HOUR;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const certificates = await node(db, () => clock);
    const draft = await certificates.request(TECHNICIAN, RUN.id, 'en');
    expect(draft).toMatchObject({ id: 'TR-lab-t-000001', run: RUN.id, organization: 'org-a', status: 'draft', requestedBy: 'technician' });
    expect(draft.customer).toBe(input.customer.name);
    await expect(certificates.request(TECHNICIAN, 'run-unknown')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    // a draft: reviewed with its content as it would be issued, invisible to the client, no files yet
    const review = await certificates.review(draft.id, { name: 'signatory', role: 'signatory' });
    expect(review.blockers).toEqual([]);
    expect(review.draft).toMatchObject({ id: draft.id, customer: { name: input.customer.name } });
    expect(await certificates.get(CLIENT_A, draft.id)).toBeUndefined();
    expect(await certificates.files(draft.id)).toBeUndefined();
    expect((await certificates.publicStatus(draft.id)).status).toBe('unknown');
    // the technician who performed the run may not approve it
    await expect(certificates.issue(TECHNICIAN, draft.id)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    clock += 60_000;
    const issued = await certificates.issue(SIGNATORY, draft.id);
    expect(issued).toMatchObject({ id: draft.id, status: 'valid', issuedBy: 'signatory', issuedAt: clock, logIndex: expect.any(Number) });
    await expect(certificates.issue(SIGNATORY, draft.id)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect(await certificates.get(CLIENT_A, draft.id)).toMatchObject({ status: 'valid' });
    expect(await certificates.get(CLIENT_B, draft.id)).toBeUndefined();
    const files = await certificates.files(draft.id);
    if (files === undefined) throw new Error('issued without files');
    expect(new TextDecoder().decode(files.pdf.subarray(0, 5))).toBe('%PDF-');
    expect(await certificates.match(draft.id, files.pdf)).toEqual({ match: true, format: 'pdf', status: 'valid' });
    expect(await certificates.match(draft.id, files.dcc)).toEqual({ match: true, format: 'dcc', status: 'valid' });
    const changed = Uint8Array.from(files.json, (byte, i) => (i === files.json.length - 2 ? byte ^ 1 : byte));
    expect((await certificates.match(draft.id, changed)).match).toBe(false);
    // the public summary with the report's code only
    expect(await certificates.publicSummary(draft.id, 'wrong-code-12345')).toBeUndefined();
    expect(await certificates.publicSummary(draft.id, certificates.verifyCode(draft.id))).toMatchObject({ customer: input.customer.name });
    // a second draft, then an amendment of the first: numbers follow each other
    expect(await certificates.drafts()).toEqual({ count: 0, oldestRequestedAt: null });
    const second = await certificates.request(TECHNICIAN, RUN.id);
    expect(second.id).toBe('TR-lab-t-000002');
    clock += 60_000;
    const amendment = await certificates.amend(SIGNATORY, draft.id, 'customer name corrected', undefined, { customer: { name: 'Client A GmbH' } });
    expect(amendment).toMatchObject({ id: 'TR-lab-t-000003', amends: draft.id, amendReason: 'customer name corrected', status: 'valid' });
    expect((await certificates.issued(amendment.id))?.content.customer.name).toBe('Client A GmbH');
    expect(await certificates.get(SIGNATORY, draft.id)).toMatchObject({ status: 'amended', amendedBy: amendment.id });
    await expect(certificates.amend(SIGNATORY, draft.id, 'again')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(certificates.revoke(SIGNATORY, second.id, 'never issued')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    clock += 60_000;
    expect(await certificates.revoke(SIGNATORY, amendment.id, 'the specimen was mixed up')).toMatchObject({
      status: 'revoked',
      revokedAt: clock,
      revocationReason: 'the specimen was mixed up',
    });
    await expect(certificates.revoke(SIGNATORY, amendment.id, 'again')).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(certificates.revoke(SIGNATORY, 'TR-lab-t-999999', 'unknown')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await certificates.publicStatus(amendment.id)).toMatchObject({ status: 'revoked', revocationReason: 'the specimen was mixed up' });
    // the overview's count of drafts waiting for a signatory
    expect(await certificates.drafts()).toEqual({ count: 1, oldestRequestedAt: T0 + 3 * HOUR + 60_000 });
    // lists: newest first by request, paged by the request's number; by status; searched; a client sees issued ones
    const ids = async (filter: Parameters<Certificates['list']>[1], viewer: Parameters<Certificates['list']>[0] = SIGNATORY) =>
      (await certificates.list(viewer, filter)).items.map((c) => c.id);
    expect(await ids({})).toEqual([amendment.id, second.id, draft.id]);
    const first = await certificates.list(SIGNATORY, { limit: 2 });
    expect(first.items.map((c) => c.id)).toEqual([amendment.id, second.id]);
    expect(first.next).toBe('2');
    expect(await ids({ limit: 2, cursor: first.next ?? undefined })).toEqual([draft.id]);
    expect(await ids({ status: 'draft' })).toEqual([second.id]);
    expect(await ids({ status: 'amended' })).toEqual([draft.id]);
    expect(await ids({ status: 'revoked' })).toEqual([amendment.id]);
    expect(await ids({ status: 'valid' })).toEqual([]);
    expect(await ids({ q: '000002' })).toEqual([second.id]);
    expect(await ids({ q: 'client a' })).toEqual([amendment.id, second.id, draft.id]);
    expect(await ids({ q: 'B500B' })).toHaveLength(3);
    expect(await ids({ q: '%' })).toEqual([]);
    expect(await ids({ from: T0 + 3 * HOUR + 90_000 })).toEqual([amendment.id]);
    expect(await ids({}, CLIENT_A)).toEqual([amendment.id, draft.id]);
    expect(await ids({}, CLIENT_B)).toEqual([]);
    // the log holds each event once, in order; the trail is one chain with each change
    expect((await logged(db)).map((e) => [e.kind, e.certificate])).toEqual([
      ['issue', draft.id],
      ['amend', amendment.id],
      ['revoke', amendment.id],
    ]);
    const trail = await auditChain(db);
    expect(trail.map((r) => [r.action, r.record_id])).toEqual([
      ['create', draft.id],
      ['state-change', draft.id],
      ['create', second.id],
      ['create', amendment.id],
      ['update', amendment.id],
      ['state-change', amendment.id],
      ['state-change', draft.id],
      ['state-change', amendment.id],
    ]);
  }, 180_000);

  test('a change whose transaction fails leaves no certificate, no event and no audit entry', async () => {
    const clock = T0 + 3 * HOUR;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    // the store refuses a revocation's event with this reason: after its log entry was appended
    if (engine === 'sqlite')
      await sql`CREATE TRIGGER refuse_events BEFORE INSERT ON certificate_events WHEN NEW.reason = 'refused by the test'
        BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`.execute(db);
    else
      await sql`CREATE TRIGGER refuse_events BEFORE INSERT ON certificate_events FOR EACH ROW WHEN (NEW.reason = 'refused by the test')
        EXECUTE FUNCTION labtrace_refuse('refused by the test')`.execute(db);
    const certificates = await node(db, () => clock);
    const draft = await certificates.request(TECHNICIAN, RUN.id);
    await certificates.issue(SIGNATORY, draft.id);
    const before = { trail: (await auditChain(db)).length, log: (await logged(db)).length };
    expect(await rejectionOf(certificates.revoke(SIGNATORY, draft.id, 'refused by the test'))).toMatch(/refused by the test/);
    // nothing of it is left: no event, no log entry, no audit entry
    expect(await certificates.get(SIGNATORY, draft.id)).toMatchObject({ status: 'valid', revokedAt: null });
    expect((await auditChain(db)).length).toBe(before.trail);
    expect((await logged(db)).length).toBe(before.log);
    // a revocation the store takes goes through, under the log index the refused one could not keep
    expect(await certificates.revoke(SIGNATORY, draft.id, 'withdrawn')).toMatchObject({ status: 'revoked', revocationReason: 'withdrawn' });
    expect((await logged(db)).map((e) => e.kind)).toEqual(['issue', 'revoke']);
    expect((await auditChain(db)).length).toBe(before.trail + 1);
  }, 180_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('requests at once get distinct numbers; one draft issued from both at once issues once; amended and revoked from both at once, once', async () => {
    const clock = T0 + 3 * HOUR;
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = await node(a, () => clock);
    const onB = await node(b, () => clock);
    const drafts = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? onA : onB).request(TECHNICIAN, RUN.id)));
    expect(drafts.map((d) => d.id).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `TR-lab-t-00000${i + 1}`));
    const [draft] = drafts;
    if (draft === undefined) throw new Error('no draft');
    const issues = await Promise.allSettled([onA.issue(SIGNATORY, draft.id), onB.issue(SIGNATORY, draft.id)]);
    expect(issues.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(issues.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []))).toEqual(['E_CONFLICT']);
    expect(await a.selectFrom('certificates').select('id').execute()).toEqual([{ id: draft.id }]);
    expect((await logged(a)).map((e) => [e.kind, e.certificate])).toEqual([['issue', draft.id]]);
    expect(await onB.get(SIGNATORY, draft.id)).toMatchObject({ status: 'valid' });
    // amended from both at once: one amendment, under one number, issued once
    const amendments = await Promise.allSettled([
      onA.amend(SIGNATORY, draft.id, 'customer name corrected', undefined, { customer: { name: 'Client A GmbH' } }),
      onB.amend(SIGNATORY, draft.id, 'customer name corrected', undefined, { customer: { name: 'Client A GmbH' } }),
    ]);
    const amended = amendments.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(amended).toHaveLength(1);
    expect(amendments.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []))).toEqual(['E_CONFLICT']);
    const amendment = amended[0]?.id ?? '';
    expect(amendment).toBe('TR-lab-t-000009');
    expect(await a.selectFrom('certificate_requests').select('id').where('amends', '=', draft.id).execute()).toEqual([{ id: amendment }]);
    expect(await onA.get(SIGNATORY, draft.id)).toMatchObject({ status: 'amended', amendedBy: amendment });
    // revoked from both at once: once
    const revocations = await Promise.allSettled([onA.revoke(SIGNATORY, amendment, 'withdrawn'), onB.revoke(SIGNATORY, amendment, 'withdrawn')]);
    expect(revocations.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(revocations.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []))).toEqual(['E_CONFLICT']);
    expect(await a.selectFrom('certificate_events').select(['certificate', 'kind']).orderBy('id').execute()).toEqual([
      { certificate: draft.id, kind: 'issue' },
      { certificate: amendment, kind: 'amend' },
      { certificate: amendment, kind: 'revoke' },
    ]);
    expect((await logged(a)).map((e) => [e.kind, e.certificate])).toEqual([
      ['issue', draft.id],
      ['amend', amendment],
      ['revoke', amendment],
    ]);
    // node B reads what node A changed (no status cached across nodes)
    expect((await onA.publicStatus(amendment)).status).toBe('revoked');
    expect((await onB.publicStatus(amendment)).status).toBe('revoked');
    expect((await onB.publicStatus(draft.id)).status).toBe('amended');
    const trail = await auditChain(a);
    expect(trail.filter((r) => r.action === 'create')).toHaveLength(9);
    // issued; amended (the new one issued, the old one amended); revoked
    expect(trail.filter((r) => r.action === 'state-change')).toHaveLength(4);
  }, 180_000);
});
