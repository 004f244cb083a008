// Instrument calibration: the status computed from records and checks under fake time, the run-start
// interlock, the review list when an instrument goes out of service (ISO/IEC 17025 6.4.9), append-only
// tables, validation, audit entries and role rules over the REST API.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { Calibration, type CalibrationInput, type Review } from '../../src/lab/calibration.js';
import { EquipmentStatus } from '../../src/lab/equipment.js';
import { LabDatabase } from '../../src/store/database.js';
import { Registry } from '../../src/store/registry.js';
import type { Role } from '../../src/index.js';
import { ORGANIZATION, startServer, type TestServer } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const JAN_2026 = Date.UTC(2026, 0, 1);
const tech = { username: 'technician', role: 'technician' };

const certificate = (calibratedAt: number, nextDueAt: number, extra: Partial<CalibrationInput> = {}): CalibrationInput => ({
  calibratedAt,
  laboratory: 'Calibration Lab A (accredited, D-K-12345)',
  certificate: `CAL-${calibratedAt}`,
  results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
  uncertainty: { value: 0.03, unit: 'kN', k: 2 },
  nextDueAt,
  ...extra,
});

const birth = (registry: Registry, ...ids: string[]) =>
  registry.recordBirth('lab-t', {
    v: 1,
    gateway: 'gw-a',
    session: 1,
    version: 't',
    instruments: ids.map((id) => ({ id, identity: { maker: 'm', model: 'x', serialNumber: id }, channels: [{ name: 'c', unit: 'kN' }] })),
  });

describe('status under fake time', () => {
  let database: LabDatabase;
  let clock = Date.UTC(2027, 0, 1);
  let equipment: EquipmentStatus;
  let calibration: Calibration;

  beforeAll(async () => {
    database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-cal-')), serverMigrations);
    await database.migrate();
    await birth(new Registry(database), 'ut-1', 'ut-2');
    const audit = new AuditTrail(database);
    equipment = new EquipmentStatus(database.db, audit, () => clock);
    calibration = new Calibration(database.db, audit, equipment, { requireForRuns: true, dueSoonDays: 30 }, () => clock);
  });
  afterAll(async () => {
    await database.close();
  });

  test('never calibrated -> valid -> due soon -> expired -> valid after a new record', async () => {
    const t0 = clock;
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'never-calibrated', dueAt: null });
    expect(await equipment.blockers('ut-1')).toEqual(['instrument "ut-1" has no calibration record']);
    await calibration.record(tech, 'ut-1', certificate(t0 - DAY, t0 + YEAR));
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'valid', dueAt: t0 + YEAR, lastGoodAt: t0 - DAY });
    expect(await equipment.blockers('ut-1')).toEqual([]);
    clock = t0 + YEAR - 30 * DAY - 1;
    expect((await calibration.status('ut-1')).status).toBe('valid');
    clock = t0 + YEAR - 30 * DAY;
    expect((await calibration.status('ut-1')).status).toBe('due-soon');
    expect(await equipment.blockers('ut-1')).toEqual([]);
    clock = t0 + YEAR;
    expect((await calibration.status('ut-1')).status).toBe('expired');
    expect(await equipment.blockers('ut-1')).toEqual([
      `instrument "ut-1" is out of calibration: certificate CAL-${t0 - DAY} expired on ${new Date(t0 + YEAR).toISOString()}`,
    ]);
    await calibration.record(tech, 'ut-1', certificate(clock - DAY, clock + YEAR));
    expect(await calibration.status('ut-1')).toMatchObject({ status: 'valid', dueAt: clock + YEAR });
    expect(await calibration.calibrations('ut-1')).toHaveLength(2);
    // asked with an earlier time (a sample's), the status is the one in force then
    expect(await calibration.status('ut-1', t0 + 10 * DAY)).toMatchObject({ status: 'valid', calibration: { certificate: `CAL-${t0 - DAY}` } });
    expect((await calibration.status('ut-1', t0 - 2 * DAY)).status).toBe('never-calibrated');
  });

  test('reminders list what is not valid, soonest due first, never calibrated last', async () => {
    const dueAt = (await calibration.status('ut-1')).dueAt ?? 0;
    expect((await calibration.reminders(dueAt - 31 * DAY)).map((r) => [r.instrument, r.status])).toEqual([['ut-2', 'never-calibrated']]);
    expect((await calibration.reminders(dueAt - 5 * DAY)).map((r) => [r.instrument, r.status])).toEqual([
      ['ut-1', 'due-soon'],
      ['ut-2', 'never-calibrated'],
    ]);
    expect((await calibration.reminders(dueAt)).map((r) => [r.instrument, r.status, r.dueAt])).toEqual([
      ['ut-1', 'expired', dueAt],
      ['ut-2', 'never-calibrated', null],
    ]);
  });

  test('the due-soon window is configurable', async () => {
    const strict = new Calibration(
      database.db,
      new AuditTrail(database),
      new EquipmentStatus(database.db, new AuditTrail(database)),
      {
        requireForRuns: true,
        dueSoonDays: 90,
      },
      () => clock,
    );
    const dueAt = (await calibration.status('ut-1')).dueAt ?? 0;
    clock = dueAt - 60 * DAY;
    expect((await calibration.status('ut-1')).status).toBe('valid');
    expect((await strict.status('ut-1')).status).toBe('due-soon');
  });

  test('out of service wins over a valid calibration, and a failed check takes the instrument out of service', async () => {
    await calibration.record(tech, 'ut-2', certificate(clock - DAY, clock + YEAR));
    await equipment.setStatus(tech, 'ut-2', 'out-of-service', 'dropped during transport');
    expect((await calibration.status('ut-2')).status).toBe('out-of-service');
    await equipment.setStatus(tech, 'ut-2', 'in-service', 'inspected, no damage');
    expect((await calibration.status('ut-2')).status).toBe('valid');
    const { check, review } = await calibration.check(tech, 'ut-2', { checkedAt: clock, result: 'fail', description: 'reads 2 % high at 50 kN' });
    expect(check).toMatchObject({ result: 'fail', recordedBy: 'technician' });
    expect(review).toEqual({ instrument: 'ut-2', since: clock - DAY, runs: [] });
    expect(await equipment.status('ut-2')).toMatchObject({
      status: 'out-of-service',
      reason: `failed intermediate check ${check.id}: reads 2 % high at 50 kN`,
    });
    // back in service without a new calibration: the failed check still stands against it
    await equipment.setStatus(tech, 'ut-2', 'in-service', 'returned by mistake');
    expect(await equipment.blockers('ut-2')).toEqual([
      `instrument "ut-2" failed its intermediate check ${check.id} and has not been calibrated since`,
    ]);
    clock += 1000;
    await calibration.record(tech, 'ut-2', certificate(clock, clock + YEAR, { adjustments: 'span adjusted at 50 kN' }));
    expect(await equipment.blockers('ut-2')).toEqual([]);
  });

  test('records and checks are append-only', () => {
    for (const table of ['calibrations', 'instrument_checks']) {
      expect(() => database.sqlite.prepare(`DELETE FROM ${table}`).run()).toThrow(/never deleted/);
      expect(() => database.sqlite.prepare(`UPDATE ${table} SET recorded_by = 'someone else'`).run()).toThrow(/written once/);
    }
  });

  test('dates in the future are refused', async () => {
    await expect(calibration.record(tech, 'ut-1', certificate(clock + DAY, clock + YEAR))).rejects.toThrow(/calibratedAt: is in the future/);
    await expect(calibration.check(tech, 'ut-1', { checkedAt: clock + DAY, result: 'pass', description: 'x' })).rejects.toThrow(
      /checkedAt: is in the future/,
    );
  });
});

describe('over the REST API', () => {
  let t: TestServer;
  const setup = { username: 'test-setup', role: 'system' };
  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  async function call<T = Record<string, unknown>>(
    p: string,
    init: RequestInit = {},
    role: Role = 'technician',
  ): Promise<{ status: number; body: T }> {
    const res = await t.fetch(p, init, role);
    return { status: res.status, body: (await res.json()) as T };
  }
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    t = await startServer({ calibration: { requireForRuns: true } });
    await birth(t.server.registry, 'ut-c', 'ut-r');
    await t.server.labRecords.createSample(setup, {
      id: 'S-1',
      organization: ORGANIZATION,
      description: 'bar',
      condition: 'intact',
      receivedAt: Date.now(),
    });
    await t.server.labRecords.createMethod(setup, {
      id: 'tensile',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing',
      definition: {
        measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
        instrumentTypes: [],
        limits: [],
        results: [],
        decisionRule: { kind: 'simple-acceptance' },
      },
    });
  });
  afterAll(async () => {
    await t.stop();
  });

  const newRun = async (instrument: string): Promise<string> => {
    const res = await call<{ id: string }>('/api/runs', json({ sample: 'S-1', method: 'tensile', instruments: [instrument] }));
    expect(res.status).toBe(201);
    return res.body.id;
  };

  test('a run does not start with an instrument never calibrated or out of calibration, and starts after a new record', async () => {
    const run = await newRun('ut-c');
    const never = await call(`/api/runs/${run}/start`, json({}));
    expect(never.status).toBe(409);
    expect(never.body.error).toMatch(/instrument "ut-c" has no calibration record/);
    const now = Date.now();
    expect((await call('/api/instruments/ut-c/calibrations', json(certificate(now - YEAR - DAY, now - DAY)))).status).toBe(201);
    expect((await call('/api/instruments/ut-c/calibration-status', {}, 'auditor')).body).toMatchObject({ status: 'expired', dueAt: now - DAY });
    const expired = await call(`/api/runs/${run}/start`, json({}));
    expect(expired.status).toBe(409);
    expect(expired.body.error).toMatch(/instrument "ut-c" is out of calibration: certificate CAL-\d+ expired on /);
    expect((await call<{ state: string }>(`/api/runs/${run}`)).body.state).toBe('planned');
    expect((await call('/api/instruments/ut-c/calibrations', json(certificate(now - 1000, now + YEAR)))).status).toBe(201);
    expect((await call(`/api/runs/${run}/start`, json({}))).body).toMatchObject({ state: 'running' });
    expect((await call(`/api/runs/${run}/stop`, json({}))).status).toBe(200);
    const listed = await call<{ calibrations: unknown[]; checks: unknown[] }>('/api/instruments/ut-c/calibrations', {}, 'auditor');
    expect(listed.body.calibrations).toHaveLength(2);
  });

  test('the instrument list shows each instrument with its calibration status', async () => {
    const list = await call<{ id: string; calibration: unknown }[]>('/api/instruments', {}, 'signatory');
    expect(list.body.find((i) => i.id === 'ut-c')?.calibration).toEqual({ status: 'valid', dueAt: expect.any(Number) });
    expect(list.body.find((i) => i.id === 'ut-r')?.calibration).toEqual({ status: 'never-calibrated', dueAt: null });
  });

  test('taking an instrument out of service lists the runs measured with it since its last good check', async () => {
    const now = Date.now();
    expect((await call('/api/instruments/ut-r/calibrations', json(certificate(now - 10 * DAY, now + YEAR)))).status).toBe(201);
    const before = await newRun('ut-r');
    await call(`/api/runs/${before}/start`, json({}));
    await call(`/api/runs/${before}/stop`, json({}));
    await sleep(5);
    const checked = await call(
      '/api/instruments/ut-r/checks',
      json({ checkedAt: Date.now(), result: 'pass', description: 'check weight 20 kN: +0.1 %' }),
    );
    expect(checked.status).toBe(201);
    expect(checked.body).not.toHaveProperty('review');
    await sleep(5);
    const after = await newRun('ut-r');
    await call(`/api/runs/${after}/start`, json({}));
    const unstarted = await newRun('ut-r');
    const res = await call<{ status: string; review: Review }>(
      '/api/instruments/ut-r/status',
      json({ status: 'out-of-service', reason: 'load cell damaged' }),
    );
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('out-of-service');
    expect(res.body.review.runs.map((r) => r.id)).toEqual([after]);
    expect(res.body.review.runs.map((r) => r.id)).not.toContain(unstarted);
    expect(res.body.review.since).toBeGreaterThan(now - 10 * DAY);
    expect((await call('/api/instruments/ut-r/calibration-status', {}, 'admin')).body).toMatchObject({ status: 'out-of-service' });
    expect((await call(`/api/runs/${unstarted}/start`, json({}))).body.error).toMatch(/instrument "ut-r" is out of service/);
    await call(`/api/runs/${after}/abort`, json({ reason: 'instrument out of service' }));
  });

  test('validation errors name the fields', async () => {
    const bad = await call<{ error: string; issues: { path: string }[] }>(
      '/api/instruments/ut-c/calibrations',
      json({ calibratedAt: -1, laboratory: ' ', results: [], uncertainty: { value: 0, unit: 'kN' }, nextDueAt: 1, colour: 'red' }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['calibratedAt', 'laboratory', 'certificate', 'results', 'uncertainty.value']),
    );
    const order = await call<{ issues: { path: string; message: string }[] }>(
      '/api/instruments/ut-c/calibrations',
      json(certificate(JAN_2026, JAN_2026)),
    );
    expect(order.body.issues).toEqual([expect.objectContaining({ path: 'nextDueAt', message: 'must be after calibratedAt' })]);
    const check = await call<{ issues: { path: string }[] }>('/api/instruments/ut-c/checks', json({ checkedAt: 1, result: 'maybe' }));
    expect(check.body.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['result', 'description']));
    expect((await call('/api/instruments/nope/calibrations', json(certificate(JAN_2026, JAN_2026 + 1000)))).status).toBe(404);
    expect((await call('/api/instruments/nope/calibration-status', {}, 'auditor')).status).toBe(404);
  });

  test('records and checks leave audit entries, with the reason given', async () => {
    const now = Date.now();
    const rec = await call<{ id: number }>(
      '/api/instruments/ut-c/calibrations',
      json(certificate(now - 1000, now + YEAR, { reason: 'recalibrated after the load cell was replaced' })),
    );
    const [entry] = await t.server.audit.list({ recordType: 'calibration', recordId: `ut-c/${rec.body.id}`, limit: 10 });
    expect(entry).toMatchObject({
      actor: 'technician',
      action: 'create',
      reason: 'recalibrated after the load cell was replaced',
      newValue: expect.objectContaining({ instrument: 'ut-c', certificate: `CAL-${now - 1000}`, nextDueAt: now + YEAR }),
    });
    const chk = await call<{ check: { id: number } }>(
      '/api/instruments/ut-c/checks',
      json({ checkedAt: now, result: 'pass', description: 'check weight 20 kN' }),
    );
    expect(await t.server.audit.list({ recordType: 'instrument-check', recordId: `ut-c/${chk.body.check.id}`, limit: 10 })).toEqual([
      expect.objectContaining({ actor: 'technician', action: 'create', reason: 'check weight 20 kN' }),
    ]);
  });

  test('technicians and admins record calibrations; clients, auditors and signatories cannot', async () => {
    const now = Date.now();
    const body = certificate(now - 1000, now + YEAR);
    expect((await call('/api/instruments/ut-c/calibrations', json(body), 'admin')).status).toBe(201);
    for (const role of ['client', 'auditor', 'signatory'] as const) {
      expect((await call('/api/instruments/ut-c/calibrations', json(body), role)).status).toBe(403);
      expect((await call('/api/instruments/ut-c/checks', json({ checkedAt: now, result: 'pass', description: 'x' }), role)).status).toBe(403);
    }
    expect((await call('/api/instruments/ut-c/calibrations', {}, 'client')).status).toBe(403);
    expect((await call('/api/instruments/ut-c/calibration-status', {}, 'client')).status).toBe(403);
  });
});
