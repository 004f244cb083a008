// Calibration records, checks and attached certificates through Kysely, the same code on SQLite and on a real
// PostgreSQL 15: the status computed from them at any time, the reminders, a failed check taking the instrument out
// of service with the runs to review, a certificate attached once; each change in one transaction with its audit
// entry, and a new calibration record naming the record it supersedes. On PostgreSQL, two nodes (two pools)
// recording calibrations of one instrument at once each supersede a different record, two failed checks at once take
// the instrument out of service once, and two uploads of one certificate at once keep one.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Calibration, type CalibrationInput, type CalibrationState } from '../../src/lab/calibration.js';
import { EquipmentStatus } from '../../src/lab/equipment.js';
import type { LabDatabase, Tables } from '../../src/store/database.js';
import { Registry } from '../../src/store/registry.js';
import { auditChain } from '../helpers/audit-chain.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const T0 = Date.UTC(2027, 0, 1);
const TECH = { username: 'ada', role: 'technician' };

const fixture = new StoreFixture('calibration', 'cal-store');
/** the sync parts of AuditTrail and EquipmentStatus need a LabDatabase; the async ones use only the Kysely given */
let unused: LabDatabase;

beforeAll(async () => {
  await fixture.start();
  unused = fixture.labDatabase();
}, 120_000);
afterAll(() => fixture.close());

const certificate = (calibratedAt: number, nextDueAt: number, extra: Partial<CalibrationInput> = {}): CalibrationInput => ({
  calibratedAt,
  laboratory: 'Calibration Lab A',
  certificate: `CAL-${calibratedAt}`,
  results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
  uncertainty: { value: 0.03, unit: 'kN', k: 2 },
  nextDueAt,
  ...extra,
});

/** `nodes` Kyselys on one fresh, migrated store with instruments ut-1 and ut-2 (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  const dbs = await fixture.stores(engine, nodes);
  const db = dbs[0] as Kysely<Tables>;
  await new Registry({ db }).recordBirth('lab-t', {
    v: 1,
    gateway: 'gw-a',
    session: 1,
    version: 't',
    instruments: ['ut-1', 'ut-2'].map((id) => ({
      id,
      identity: { maker: 'm', model: 'x', serialNumber: id },
      channels: [{ name: 'c', unit: 'kN' }],
    })),
  });
  return dbs;
}

/** a run as the runs module writes it, with its instruments and times */
async function run(db: Kysely<Tables>, id: string, instruments: string[], startedAt: number | null, endedAt: number | null): Promise<void> {
  await sql`INSERT INTO organizations (id, name, created_at) VALUES ('acme', 'ACME', 0) ON CONFLICT DO NOTHING`.execute(db);
  await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
    VALUES ('s-1', 'acme', 'bar', 'as received', 0, 'ada', 0) ON CONFLICT DO NOTHING`.execute(db);
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
    VALUES ('m', 1, 'ISO 1', 'M', '{}', 'ada', 0) ON CONFLICT DO NOTHING`.execute(db);
  const list = JSON.stringify(instruments.map((i) => ({ id: i, gateway: 'gw-a', type: 'x' })));
  const state = startedAt === null ? 'created' : endedAt === null ? 'running' : 'completed';
  await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at, started_at, ended_at)
    VALUES (${id}, 's-1', 'acme', 'm', 1, ${list}, 'ada', ${state}, 0, 'ada', 0, ${startedAt}, ${endedAt})`.execute(db);
}

/** a Calibration on a Kysely (either engine), its clock `clock()` */
function calibrationOn(db: Kysely<Tables>, clock: () => number, requireForRuns = true): Calibration {
  const audit = new AuditTrail(unused, clock);
  return new Calibration(db, audit, new EquipmentStatus(unused.db, audit, clock), { requireForRuns, dueSoonDays: 30 }, clock);
}

const PDF = Buffer.from('%PDF-1.4\n%%EOF\n', 'latin1');

type Identity = { maker: string; model: string; serialNumber: string; location?: string };

/** a gateway's BIRTH announcing `instruments` (id and identity), recorded by the registry on `db` */
async function announce(db: Kysely<Tables>, gateway: string, instruments: [string, Identity][]): Promise<void> {
  await new Registry({ db }).recordBirth('lab-t', {
    v: 1,
    gateway,
    session: 1,
    version: 't',
    instruments: instruments.map(([id, identity]) => ({ id, identity, channels: [{ name: 'c', unit: 'kN' }] })),
  });
}

/**
 * the register's instruments besides ut-1 and ut-2 (gw-a): three on gw-b, whose maker, serial number and location
 * are searched (one serial with LIKE's own characters in it), then three on gw-c
 */
async function announceRegister(db: Kysely<Tables>): Promise<void> {
  await announce(db, 'gw-b', [
    ['bal-1', { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-100', location: 'Room 2' }],
    ['dmm-7', { maker: 'Keysight', model: '34465A', serialNumber: 'MY_59%', location: 'Bench 4' }],
    ['ut-9', { maker: 'Zwick', model: 'Z050', serialNumber: 'Z-9' }],
  ]);
  await announce(db, 'gw-c', [
    ['ph-1', { maker: 'Metrohm', model: '913', serialNumber: 'P-1' }],
    ['ph-2', { maker: 'Metrohm', model: '913', serialNumber: 'P-2' }],
    ['ph-3', { maker: 'Metrohm', model: '913', serialNumber: 'P-3' }],
  ]);
  // announced again (a gateway's restart), with a new location: they keep their places
  await announce(db, 'gw-a', [
    ['ut-1', { maker: 'm', model: 'x', serialNumber: 'ut-1', location: 'Hall 1' }],
    ['ut-2', { maker: 'm', model: 'x', serialNumber: 'ut-2' }],
  ]);
}

type RegisterQuery = Parameters<Calibration['register']>[0];

/** every page of the register, followed by its cursors: the ids of each page */
async function pages(calibration: Calibration, query: Omit<RegisterQuery, 'cursor'>, connected: string[] = [], at?: number): Promise<string[][]> {
  const all: string[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await calibration.register({ ...query, ...(cursor === undefined ? {} : { cursor }) }, new Set(connected), at);
    expect(page.items.length).toBeLessThanOrEqual(query.limit);
    all.push(page.items.map((i) => i.id));
    if (page.next === null) return all;
    cursor = page.next;
  }
}

const NEWEST_FIRST = ['ph-3', 'ph-2', 'ph-1', 'ut-9', 'dmm-7', 'bal-1', 'ut-2', 'ut-1'];

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('records give the status at any time and the reminders; a new record names the one it supersedes', async () => {
    let clock = T0;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const calibration = calibrationOn(db, () => clock);
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'never-calibrated', dueAt: null, calibration: null, lastGoodAt: null });
    const first = await calibration.record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR, { adjustments: '零点已调整' }));
    expect(first).toMatchObject({
      instrument: 'ut-1',
      calibratedAt: T0 - DAY,
      nextDueAt: T0 + YEAR,
      adjustments: '零点已调整',
      reason: null,
      recordedBy: 'ada',
    });
    expect(first.results).toEqual([{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }]);
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'valid', dueAt: T0 + YEAR, lastGoodAt: T0 - DAY });
    clock = T0 + YEAR - 30 * DAY;
    expect((await calibration.status('ut-1')).status).toBe('due-soon');
    clock = T0 + YEAR;
    expect((await calibration.status('ut-1')).status).toBe('expired');
    expect((await calibration.reminders()).map((r) => [r.instrument, r.status, r.dueAt])).toEqual([
      ['ut-1', 'expired', T0 + YEAR],
      ['ut-2', 'never-calibrated', null],
    ]);
    const second = await calibration.record(TECH, 'ut-1', certificate(clock - DAY, clock + YEAR, { reason: 'recalibrated' }));
    // performed before the one in force: recorded, superseding nothing
    const late = await calibration.record(TECH, 'ut-1', certificate(T0 - 2 * DAY, T0 + 10 * DAY, { reason: 'an older certificate found' }));
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'valid', calibration: { id: second.id }, dueAt: clock + YEAR });
    // asked with an earlier time, the record in force then
    expect(await calibration.status('ut-1', T0 + DAY)).toMatchObject({ status: 'valid', calibration: { id: first.id } });
    expect(await calibration.status('ut-1', T0 - 3 * DAY)).toMatchObject({ status: 'never-calibrated' });
    expect((await calibration.calibrations('ut-1')).map((c) => c.id)).toEqual([late.id, first.id, second.id]);
    expect(await calibration.reminders()).toEqual([expect.objectContaining({ instrument: 'ut-2', status: 'never-calibrated' })]);
    const trail = await auditChain(db);
    expect(trail.map((r) => [r.action, r.record_type, r.record_id, r.old_value === null ? null : (JSON.parse(r.old_value) as unknown)])).toEqual([
      ['create', 'calibration', `ut-1/${first.id}`, null],
      ['create', 'calibration', `ut-1/${second.id}`, { supersedes: first.id, certificate: first.certificate, nextDueAt: first.nextDueAt }],
      ['create', 'calibration', `ut-1/${late.id}`, null],
    ]);
    await expect(calibration.record(TECH, 'ut-1', certificate(clock + 1, clock + YEAR))).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    await expect(calibration.record(TECH, 'nope', certificate(T0, T0 + YEAR))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(calibration.status('nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await auditChain(db)).toHaveLength(3);
  }, 120_000);

  test('a failed check takes the instrument out of service in its transaction and lists the runs to review', async () => {
    let clock = T0;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const calibration = calibrationOn(db, () => clock);
    const cal = await calibration.record(TECH, 'ut-1', certificate(T0 - 10 * DAY, T0 + YEAR));
    const pass = await calibration.check(TECH, 'ut-1', { checkedAt: T0 - 5 * DAY, result: 'pass', description: 'check weight 20 kN' });
    expect(pass).toEqual({ check: expect.objectContaining({ result: 'pass', checkedAt: T0 - 5 * DAY }) });
    await run(db, 'r-before', ['ut-1'], T0 - 9 * DAY, T0 - 6 * DAY);
    await run(db, 'r-after', ['ut-2', 'ut-1'], T0 - 4 * DAY, T0 - 2 * DAY);
    await run(db, 'r-running', ['ut-1'], T0 - DAY, null);
    await run(db, 'r-other', ['ut-2'], T0 - DAY, null);
    await run(db, 'r-planned', ['ut-1'], null, null);
    clock = T0 + 1000;
    const failed = await calibration.check(TECH, 'ut-1', { checkedAt: T0, result: 'fail', description: 'reads 2 % high' });
    expect(failed.review).toEqual({
      instrument: 'ut-1',
      since: T0 - 5 * DAY,
      runs: [
        { id: 'r-after', sample: 's-1', organization: 'acme', state: 'completed', startedAt: T0 - 4 * DAY, endedAt: T0 - 2 * DAY },
        { id: 'r-running', sample: 's-1', organization: 'acme', state: 'running', startedAt: T0 - DAY, endedAt: null },
      ],
    });
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'out-of-service', lastCheck: { id: failed.check.id, result: 'fail' } });
    expect(await calibration.review('ut-1')).toEqual(failed.review);
    expect((await calibration.checks('ut-1')).map((c) => c.result)).toEqual(['pass', 'fail']);
    // a second failed check finds it out of service already
    await calibration.check(TECH, 'ut-1', { checkedAt: T0, result: 'fail', description: 'still high' });
    const service = await db.selectFrom('instrument_status').selectAll().execute();
    expect(service.map((s) => [s.instrument, s.status, s.reason])).toEqual([
      ['ut-1', 'out-of-service', `failed intermediate check ${failed.check.id}: reads 2 % high`],
    ]);
    const trail = await auditChain(db);
    expect(trail.map((r) => [r.record_type, r.record_id])).toEqual([
      ['calibration', `ut-1/${cal.id}`],
      ['instrument-check', `ut-1/${pass.check.id}`],
      ['instrument-check', `ut-1/${failed.check.id}`],
      ['instrument-status', 'ut-1'],
      ['instrument-check', `ut-1/${failed.check.id + 1}`],
    ]);
  }, 120_000);

  test('a certificate is attached once, with its bytes and SHA-256', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const calibration = calibrationOn(db, () => T0);
    const cal = await calibration.record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR));
    const sha256 = createHash('sha256').update(PDF).digest('hex');
    const attached = await calibration.attach(TECH, 'ut-1', cal.id, { filename: '证书.pdf', contentType: 'application/pdf', data: PDF });
    expect(attached).toEqual({ filename: '证书.pdf', contentType: 'application/pdf', size: PDF.length, sha256, uploadedBy: 'ada', uploadedAt: T0 });
    await expect(calibration.attach(TECH, 'ut-1', cal.id, { filename: 'b.pdf', contentType: 'application/pdf', data: PDF })).rejects.toMatchObject({
      code: 'E_CONFLICT',
      refusal: { reason: 'calibration.certificate-exists' },
    });
    await expect(calibration.attach(TECH, 'ut-2', cal.id, { filename: 'b.pdf', contentType: 'application/pdf', data: PDF })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    const file = await calibration.attachment('ut-1', cal.id);
    expect(file?.sha256).toBe(sha256);
    expect(Buffer.compare(file?.data ?? Buffer.alloc(0), PDF)).toBe(0);
    expect(await calibration.attachment('ut-2', cal.id)).toBeUndefined();
    expect((await calibration.calibrationsWithAttachments('ut-1')).map((c) => [c.id, c.attachment?.sha256])).toEqual([[cal.id, sha256]]);
    expect((await auditChain(db)).map((r) => r.record_type)).toEqual(['calibration', 'calibration-certificate']);
  }, 120_000);

  test('the register pages newest registered first, every instrument once, and searches with % and _ taken literally', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    await announceRegister(db);
    const calibration = calibrationOn(db, () => T0);
    expect(await pages(calibration, { limit: 3 })).toEqual([
      ['ph-3', 'ph-2', 'ph-1'],
      ['ut-9', 'dmm-7', 'bal-1'],
      ['ut-2', 'ut-1'],
    ]);
    expect((await pages(calibration, { limit: 1 })).flat()).toEqual(NEWEST_FIRST);
    expect(await pages(calibration, { limit: 8 })).toEqual([NEWEST_FIRST]);
    const page = await calibration.register({ limit: 1 }, new Set());
    expect(page.items).toEqual([
      {
        id: 'ph-3',
        gateway: 'gw-c',
        identity: { maker: 'Metrohm', model: '913', serialNumber: 'P-3' },
        channels: [{ name: 'c', unit: 'kN' }],
        connected: false,
        calibration: { status: 'never-calibrated', dueAt: null },
      },
    ]);
    const found = async (q: string, limit = 10) => (await pages(calibration, { limit, q })).flat();
    // the id, and the maker, model, serial number and location in the identity, ASCII letters in either case
    expect(await found('mettler')).toEqual(['bal-1']);
    expect(await found('KEYSIGHT')).toEqual(['dmm-7']);
    expect(await found('34465')).toEqual(['dmm-7']);
    expect(await found('z-9')).toEqual(['ut-9']);
    expect(await found('room')).toEqual(['bal-1']);
    expect(await found('hall 1')).toEqual(['ut-1']);
    expect(await found('ph-')).toEqual(['ph-3', 'ph-2', 'ph-1']);
    expect(await pages(calibration, { limit: 2, q: 'metrohm' })).toEqual([['ph-3', 'ph-2'], ['ph-1']]);
    // LIKE's own characters are the characters themselves
    expect(await found('_59%')).toEqual(['dmm-7']);
    expect(await found('%')).toEqual(['dmm-7']);
    expect(await found('Y_5')).toEqual(['dmm-7']);
    expect(await found('B_1')).toEqual([]);
    expect(await found('\\')).toEqual([]);
    expect(await found('nothing like it')).toEqual([]);
  }, 120_000);

  test('the register filters by the calibration status at a time (as status() tells it) and by connection', async () => {
    let clock = T0;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    await announceRegister(db);
    const calibration = calibrationOn(db, () => clock);
    await calibration.record(TECH, 'bal-1', certificate(T0 - DAY, T0 + YEAR));
    await calibration.record(TECH, 'dmm-7', certificate(T0 - YEAR, T0 + 10 * DAY));
    await calibration.record(TECH, 'ut-9', certificate(T0 - 2 * YEAR, T0 - YEAR));
    await calibration.record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR));
    clock = T0 + 1000;
    await calibration.check(TECH, 'ut-1', { checkedAt: T0, result: 'fail', description: 'reads 2 % high' });
    const byStatus = async (status: CalibrationState, at?: number) => (await pages(calibration, { limit: 2, calibration: status }, [], at)).flat();
    expect(await byStatus('valid')).toEqual(['bal-1']);
    expect(await byStatus('due-soon')).toEqual(['dmm-7']);
    expect(await byStatus('expired')).toEqual(['ut-9']);
    expect(await byStatus('out-of-service')).toEqual(['ut-1']);
    expect(await pages(calibration, { limit: 2, calibration: 'never-calibrated' })).toEqual([
      ['ph-3', 'ph-2'],
      ['ph-1', 'ut-2'],
    ]);
    // at an earlier time, the records as they stood then: before bal-1's and ut-1's calibrations, before ut-1's check
    expect(await byStatus('never-calibrated', T0 - 2 * DAY)).toEqual(['ph-3', 'ph-2', 'ph-1', 'bal-1', 'ut-2', 'ut-1']);
    expect(await byStatus('out-of-service', T0 - 1)).toEqual([]);
    expect(await byStatus('valid', T0 - 1)).toEqual(['bal-1', 'ut-1']);
    // each item's status and due date as status() gives them
    const items = (await calibration.register({ limit: 20 }, new Set())).items;
    expect(items.map((i) => i.id)).toEqual(NEWEST_FIRST);
    for (const item of items) {
      const status = await calibration.status(item.id);
      expect(item.calibration).toEqual({ status: status.status, dueAt: status.dueAt });
    }
    // connected: the instruments whose gateway is connected now
    const connected = async (value: boolean, gateways: string[]) => (await pages(calibration, { limit: 2, connected: value }, gateways)).flat();
    expect(await connected(true, ['gw-a', 'gw-c'])).toEqual(['ph-3', 'ph-2', 'ph-1', 'ut-2', 'ut-1']);
    expect(await connected(false, ['gw-a', 'gw-c'])).toEqual(['ut-9', 'dmm-7', 'bal-1']);
    expect(await connected(true, [])).toEqual([]);
    expect(await connected(false, [])).toEqual(NEWEST_FIRST);
    expect((await calibration.register({ limit: 20 }, new Set(['gw-b']))).items.map((i) => [i.id, i.connected])).toEqual(
      NEWEST_FIRST.map((id) => [id, ['ut-9', 'dmm-7', 'bal-1'].includes(id)]),
    );
    // every filter at once
    expect(await pages(calibration, { limit: 1, q: 'p-', calibration: 'never-calibrated', connected: true }, ['gw-c'])).toEqual([
      ['ph-3'],
      ['ph-2'],
      ['ph-1'],
    ]);
  }, 120_000);
});

describe.each(['sqlite', 'postgres'] as const)('every instrument at once, on %s', (engine) => {
  test("states() answers status()'s status and due date of every instrument, at any time", async () => {
    let clock = T0;
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    await announceRegister(db);
    const calibration = calibrationOn(db, () => clock);
    /** status() of each instrument at `at`: its status and due date, by id */
    const oneByOne = async (at: number) => {
      const all = new Map<string, { status: CalibrationState; dueAt: number | null }>();
      for (const id of NEWEST_FIRST) {
        const { status, dueAt } = await calibration.status(id, at);
        all.set(id, { status, dueAt });
      }
      return all;
    };
    const first = await calibration.record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR));
    // performed before the one in force, recorded after it: not the one in force
    await calibration.record(TECH, 'ut-1', certificate(T0 - 2 * DAY, T0 + 10 * DAY, { reason: 'an older certificate found' }));
    await calibration.record(TECH, 'bal-1', certificate(T0 - 3 * DAY, T0 + 20 * DAY));
    await calibration.record(TECH, 'ph-1', certificate(T0 - 5 * DAY, T0 + YEAR));
    clock = T0 + 1000;
    // a failed check: ph-1 out of service from then on, calibrated or not
    await calibration.check(TECH, 'ph-1', { checkedAt: T0, result: 'fail', description: 'reads high' });
    const times = [T0 - 4 * DAY, T0 - DAY, T0, T0 + 1000, T0 + 15 * DAY, T0 + 20 * DAY, T0 + YEAR - 30 * DAY, T0 + YEAR];
    const seen = new Set<CalibrationState>();
    for (const at of times) {
      const expected = await oneByOne(at);
      expect(await calibration.states(at)).toEqual(expected);
      for (const s of expected.values()) seen.add(s.status);
    }
    // every state was met on the way
    expect([...seen].sort()).toEqual(['due-soon', 'expired', 'never-calibrated', 'out-of-service', 'valid']);
    expect((await calibration.states(T0 + DAY)).get('ut-1')).toEqual({ status: 'valid', dueAt: first.nextDueAt });
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('BIRTHs recorded at once from both give each new instrument a place of its own in the register', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const gateways = Array.from({ length: 8 }, (_, g) => `gw-${g}`);
    await Promise.all(
      gateways.map((gateway, g) =>
        announce(
          g % 2 ? a : b,
          gateway,
          Array.from({ length: 3 }, (_, i): [string, Identity] => [`${gateway}-i${i}`, { maker: 'm', model: 'x', serialNumber: `${g}-${i}` }]),
        ),
      ),
    );
    const seen = (
      await pages(
        calibrationOn(b, () => T0),
        { limit: 5 },
      )
    ).flat();
    expect(seen).toHaveLength(2 + 24);
    expect(new Set(seen).size).toBe(seen.length);
    // each gateway's instruments in the order its BIRTH listed them, ut-1 and ut-2 first of all
    expect(seen.slice(-2)).toEqual(['ut-2', 'ut-1']);
    for (const gateway of gateways) expect(seen.filter((id) => id.startsWith(`${gateway}-`))).toEqual([2, 1, 0].map((i) => `${gateway}-i${i}`));
  }, 120_000);

  test('calibrations of one instrument recorded at once from both: each supersedes a different record, one chain', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = calibrationOn(a, () => T0);
    const onB = calibrationOn(b, () => T0);
    // all performed at the same time: the newest recorded is the one in force
    const records = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? onA : onB).record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR))),
    );
    const ids = records.map((r) => r.id).sort((x, y) => x - y);
    const trail = await auditChain(a);
    const superseded = trail.flatMap((r) => (r.old_value === null ? [] : [(JSON.parse(r.old_value) as { supersedes: number }).supersedes]));
    // every record but the newest superseded exactly once, by the next one made
    expect(superseded).toEqual(ids.slice(0, -1));
    expect((await onB.status('ut-1')).calibration?.id).toBe(ids.at(-1));
  }, 120_000);

  test('two failed checks at once from both take the instrument out of service once; two uploads keep one certificate', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = calibrationOn(a, () => T0);
    const onB = calibrationOn(b, () => T0);
    const cal = await onA.record(TECH, 'ut-1', certificate(T0 - DAY, T0 + YEAR));
    const checks = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? onA : onB).check(TECH, 'ut-1', { checkedAt: T0, result: 'fail', description: `finding ${i}` })),
    );
    expect(checks.every((c) => c.review !== undefined)).toBe(true);
    expect(await a.selectFrom('instrument_status').select(['instrument', 'status']).execute()).toEqual([
      { instrument: 'ut-1', status: 'out-of-service' },
    ]);
    const uploads = await Promise.allSettled(
      [onA, onB, onA, onB].map((c, i) => c.attach(TECH, 'ut-1', cal.id, { filename: `${i}.pdf`, contentType: 'application/pdf', data: PDF })),
    );
    expect(uploads.filter((u) => u.status === 'fulfilled')).toHaveLength(1);
    expect(uploads.flatMap((u) => (u.status === 'rejected' ? [(u.reason as { code: string }).code] : []))).toEqual(Array(3).fill('E_CONFLICT'));
    const trail = await auditChain(a);
    expect(trail.filter((r) => r.record_type === 'instrument-status')).toHaveLength(1);
    expect(trail.filter((r) => r.record_type === 'calibration-certificate')).toHaveLength(1);
  }, 120_000);
});
