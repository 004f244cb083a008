// Accreditations: records seeded from the configuration once, the status computed under fake time
// (not yet valid, active, expiring soon, expired, suspended and reinstated, withdrawn for good), the scope
// check of results and of runs, validation, roles, the public summary and the append-only tables.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { parseWith } from '@labtrace/protocols';
import { serverConfigSchema, type AuditEntry } from '../../src/index.js';
import { Accreditations, type AccreditationView, type PublicAccreditation } from '../../src/lab/accreditation.js';
import { ORGANIZATION, postJson, startServer, type TestServer } from '../helpers/server.js';

const DAY = 86_400_000;
const TENSILE = 'ISO 6892-1:2019';
const HARDNESS = 'ISO 6506-1:2014';

// the fake clock of the accreditations; the runs keep the real one, so it starts at real time
let clock = Date.now();
const T0 = clock;
const lines: { level: number; msg: string; accreditation?: string }[] = [];
let t: TestServer;

const CNAS = {
  id: 'cnas-1',
  body: 'CNAS',
  number: 'L1234',
  validFrom: T0 - 100 * DAY,
  validTo: T0 + 400 * DAY,
  scope: [
    { standard: TENSILE, measurand: 'Rm', unit: 'MPa', min: 0, max: 1000 },
    { standard: TENSILE, measurand: 'force', unit: 'kN', min: 0, max: 100 },
  ],
};
// expires within warnDays (30) of the start: one warning line at start-up
const UKAS = {
  id: 'ukas-1',
  body: 'UKAS',
  number: '0001',
  validFrom: '2020-01-01',
  validTo: T0 + 20 * DAY,
  scope: [{ standard: HARDNESS, measurand: 'HBW', unit: '' }],
};

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  t = await startServer({ accreditation: { warnDays: 30, accreditations: [CNAS, UKAS] } }, logger, { clock: () => clock });
  await t.server.registry.recordBirth('lab-t', {
    v: 1,
    gateway: 'gw-a',
    session: 1,
    version: 't',
    instruments: [{ id: 'ut-1', identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: 'kN' }] }],
  });
  await t.server.labRecords.createSample(
    { username: 'test-setup', role: 'system' },
    {
      id: 'S-1',
      organization: ORGANIZATION,
      description: 'steel bar',
      condition: 'as received',
      receivedAt: Date.now(),
    },
  );
});
afterAll(async () => {
  await t.stop();
});

async function call<T>(
  path: string,
  init: RequestInit = {},
  role: Parameters<TestServer['fetch']>[2] = 'admin',
): Promise<{ status: number; body: T }> {
  const res = await t.fetch(path, init, role);
  return { status: res.status, body: (await res.json()) as T };
}

const view = async (id: string, at?: number): Promise<AccreditationView> => {
  const res = await call<AccreditationView & { scopeVersions: unknown[] }>(`/api/accreditations/${id}${at === undefined ? '' : `?at=${at}`}`);
  expect(res.status).toBe(200);
  return res.body;
};
const event = (id: string, kind: string, reason: string) =>
  call<AccreditationView & { error: string }>(`/api/accreditations/${id}/events`, postJson({ kind, reason }));
const covers = (standard: string, measurand: string, unit: string, value: number, at = clock) =>
  t.server.accreditations.covers({ standard, measurand, unit, value, at });

describe('configured accreditations', () => {
  test('are recorded once, by the user system through the audit trail, and read by every role', async () => {
    for (const role of ['admin', 'technician', 'signatory', 'client', 'auditor'] as const) {
      const res = await call<AccreditationView[]>('/api/accreditations', {}, role);
      expect(res.status).toBe(200);
      expect(res.body.map((a) => [a.id, a.body, a.number, a.standard, a.status])).toEqual([
        ['cnas-1', 'CNAS', 'L1234', 'ISO/IEC 17025:2017', 'active'],
        ['ukas-1', 'UKAS', '0001', 'ISO/IEC 17025:2017', 'active'],
      ]);
    }
    const cnas = await view('cnas-1');
    expect(cnas.scope).toMatchObject({ version: 1, effectiveFrom: CNAS.validFrom, reason: null, entries: CNAS.scope });
    expect(cnas.validFrom).toBe(CNAS.validFrom);
    expect((await view('ukas-1')).validFrom).toBe(Date.UTC(2020, 0, 1));

    // a second start on the same database records nothing again
    const again = new Accreditations(t.server.database.db, t.server.audit, pino({ level: 'silent' }), {
      warnDays: 30,
      accreditations: t.config.accreditation.accreditations,
    });
    await again.start();
    await again.stop();
    const entries = await t.server.audit.list({ recordType: 'accreditation', limit: 100 });
    expect(entries.map((e: AuditEntry) => [e.actor, e.action, e.recordId])).toEqual([
      ['system', 'create', 'cnas-1'],
      ['system', 'create', 'ukas-1'],
    ]);
    expect(await t.server.accreditations.list()).toHaveLength(2);
  });

  test('one warning line at start-up for the accreditation expiring within warnDays, and the warning in its status', async () => {
    const warned = lines.filter((l) => l.level === 40 && /^accreditation .* expires on/.test(l.msg));
    expect(warned.map((l) => [l.accreditation, l.msg])).toEqual([
      ['ukas-1', `accreditation UKAS 0001 expires on ${new Date(UKAS.validTo).toISOString().slice(0, 10)}`],
    ]);
    expect((await view('ukas-1')).warnings).toEqual([
      { code: 'expiring-soon', daysLeft: 20, message: expect.stringMatching(/UKAS 0001 expires on .*, in 20 days/) },
    ]);
    expect((await view('cnas-1')).warnings).toEqual([]);
  });

  test('the configuration refuses the old list of standards with a pointer to the new shape, and names bad fields', () => {
    expect(() => parseWith(serverConfigSchema, { accreditation: { scope: [TENSILE] } }, 'server.yaml')).toThrow(
      /server\.yaml: accreditation\.scope: replaced by accreditations\[\]/,
    );
    const bad = { ...CNAS, validFrom: '1st of May', scope: [{ standard: TENSILE, measurand: 'Rm', unit: 'MPa', min: 5, max: 1 }] };
    const parse = () => parseWith(serverConfigSchema, { accreditation: { accreditations: [bad] } }, 'server.yaml');
    expect(parse).toThrow(/^server\.yaml: accreditation\.accreditations\[0\]\.validFrom: expected an ISO 8601 date/m);
    expect(parse).toThrow(/^server\.yaml: accreditation\.accreditations\[0\]\.scope\[0\]\.min: is above max$/m);
    const dated = parseWith(
      serverConfigSchema,
      { accreditation: { accreditations: [{ ...UKAS, validTo: '2031-02-28T12:00:00+01:00' }] } },
      'server.yaml',
    );
    expect(dated.accreditation.accreditations[0]).toMatchObject({
      validFrom: Date.UTC(2020, 0, 1),
      validTo: Date.UTC(2031, 1, 28, 11),
      standard: 'ISO/IEC 17025:2017',
    });
    const parsed = parseWith(serverConfigSchema, {}, 'server.yaml');
    expect(parsed.accreditation).toEqual({ warnDays: 90, accreditations: [] });
  });
});

describe('runs', () => {
  const method = (id: string, standard: string, measurands: { name: string; unit: string }[]) =>
    call<{ accredited: boolean }>(
      '/api/methods',
      postJson({
        id,
        standard,
        title: id,
        definition: { measurands: measurands.map((m) => ({ ...m, channel: 'c' })), decisionRule: { kind: 'simple-acceptance' } },
      }),
      'technician',
    );
  const run = (m: string) =>
    call<{ id: string; accredited: boolean; flags: string[] }>(
      '/api/runs',
      postJson({ sample: 'S-1', method: m, instruments: ['ut-1'] }),
      'technician',
    );

  test('a run of a method inside the scope is accredited; outside it, or with a measurand outside it, it is flagged not accredited', async () => {
    expect(
      (
        await method('tensile', TENSILE, [
          { name: 'Rm', unit: 'MPa' },
          { name: 'force', unit: 'kN' },
        ])
      ).body.accredited,
    ).toBe(true);
    expect(
      (
        await method('tensile-a', TENSILE, [
          { name: 'Rm', unit: 'MPa' },
          { name: 'A', unit: '%' },
        ])
      ).body.accredited,
    ).toBe(false);
    expect((await method('impact', 'ISO 148-1:2016', [{ name: 'KV', unit: 'J' }])).body.accredited).toBe(false);
    const inside = await run('tensile');
    expect(inside.status).toBe(201);
    expect(inside.body).toMatchObject({ accredited: true, flags: [] });
    expect((await run('tensile-a')).body).toMatchObject({ accredited: false, flags: ['not accredited'] });
    expect((await run('impact')).body).toMatchObject({ accredited: false, flags: ['not accredited'] });
    // the scope is checked again at the start
    expect((await call(`/api/runs/${inside.body.id}/start`, postJson({}), 'technician')).body).toMatchObject({ state: 'running', flags: [] });
    expect((await call(`/api/runs/${inside.body.id}/stop`, postJson({}), 'technician')).status).toBe(200);
  });
});

describe('the scope check', () => {
  test('accredits a value inside the range of an active accreditation, with its body and number', async () => {
    expect(await covers(TENSILE, 'Rm', 'MPa', 640)).toEqual({ accredited: true, accreditation: { body: 'CNAS', number: 'L1234' } });
    expect(await covers(TENSILE, 'Rm', 'MPa', 1000)).toEqual({ accredited: true, accreditation: { body: 'CNAS', number: 'L1234' } });
    // an entry without bounds covers every value
    expect(await covers(HARDNESS, 'HBW', '', 1e6)).toEqual({ accredited: true, accreditation: { body: 'UKAS', number: '0001' } });
  });

  test('says why a result is not accredited: range, measurand, unit, standard', async () => {
    expect(await covers(TENSILE, 'Rm', 'MPa', 1210)).toEqual({
      accredited: false,
      reason: 'Rm = 1210 MPa lies outside the accredited range 0–1000 MPa of CNAS L1234',
    });
    expect(await covers(TENSILE, 'A', '%', 20)).toEqual({ accredited: false, reason: 'A [%] of ISO 6892-1:2019 is not in the scope of CNAS L1234' });
    expect(await covers(TENSILE, 'Rm', 'N/mm²', 640)).toMatchObject({
      accredited: false,
      reason: expect.stringMatching(/Rm \[N\/mm²\] .* not in the scope of CNAS L1234/),
    });
    expect(await covers('ISO 148-1:2016', 'KV', 'J', 27)).toEqual({
      accredited: false,
      reason: 'ISO 148-1:2016 is not in the scope of any active accreditation',
    });
    expect(await covers(TENSILE, 'Rm', 'MPa', Number.NaN)).toMatchObject({ accredited: false });
  });

  test('a scope extension is a new version in force from when it is recorded; the earlier scope still answers for earlier times', async () => {
    const before = clock;
    clock += DAY;
    const extended = [...CNAS.scope, { standard: TENSILE, measurand: 'A', unit: '%', min: 0, max: 80, description: 'elongation after fracture' }];
    expect((await call<{ error: string }>('/api/accreditations/cnas-1/scope', postJson({ scope: extended }))).body.error).toMatch(/^body: reason: /);
    const res = await call<AccreditationView>(
      '/api/accreditations/cnas-1/scope',
      postJson({ scope: extended, reason: 'extension granted after the 2026 assessment' }),
    );
    expect(res.status).toBe(201);
    expect(res.body.scope).toMatchObject({ version: 2, effectiveFrom: clock, reason: 'extension granted after the 2026 assessment' });
    expect(await covers(TENSILE, 'A', '%', 20)).toEqual({ accredited: true, accreditation: { body: 'CNAS', number: 'L1234' } });
    expect(await covers(TENSILE, 'A', '%', 20, before)).toMatchObject({ accredited: false });
    expect((await view('cnas-1', before)).scope.version).toBe(1);
    const all = await call<{ scopeVersions: { version: number }[] }>('/api/accreditations/cnas-1');
    expect(all.body.scopeVersions.map((v) => v.version)).toEqual([1, 2]);
    // a reduction: the force entry leaves the scope
    clock += DAY;
    await call(
      '/api/accreditations/cnas-1/scope',
      postJson({ scope: extended.filter((e) => e.measurand !== 'force'), reason: 'force range given up' }),
    );
    expect(await covers(TENSILE, 'force', 'kN', 50)).toMatchObject({
      accredited: false,
      reason: 'force [kN] of ISO 6892-1:2019 is not in the scope of CNAS L1234',
    });
    expect(await covers(TENSILE, 'force', 'kN', 50, clock - 1)).toMatchObject({ accredited: true });
    const audit = await t.server.audit.list({ recordType: 'accreditation', recordId: 'cnas-1', action: 'update', limit: 10 });
    expect(
      audit.map((e) => [
        e.actor,
        e.reason,
        (e.oldValue as { scopeVersion: number }).scopeVersion,
        (e.newValue as { scopeVersion: number }).scopeVersion,
      ]),
    ).toEqual([
      ['admin', 'extension granted after the 2026 assessment', 1, 2],
      ['admin', 'force range given up', 2, 3],
    ]);
  });
});

describe('status under fake time', () => {
  test('not yet valid -> active -> expiring soon -> expired; an earlier time reads as it was', async () => {
    const validFrom = clock + 10 * DAY;
    const validTo = validFrom + 100 * DAY;
    const res = await call<AccreditationView>(
      '/api/accreditations',
      postJson({
        id: 'a2la-1',
        body: 'A2LA',
        number: '1234.01',
        validFrom,
        validTo,
        scope: [{ standard: 'ASTM E8/E8M-22', measurand: 'Rm', unit: 'MPa' }],
      }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'not-yet-valid', statusSince: null, warnings: [] });
    expect(await covers('ASTM E8/E8M-22', 'Rm', 'MPa', 500)).toEqual({
      accredited: false,
      reason: expect.stringMatching(/^accreditation A2LA 1234\.01 is valid only from /),
    });
    clock = validFrom + DAY;
    expect(await view('a2la-1')).toMatchObject({ status: 'active', statusSince: validFrom, warnings: [] });
    expect(await covers('ASTM E8/E8M-22', 'Rm', 'MPa', 500)).toMatchObject({ accredited: true });
    clock = validTo - 10 * DAY;
    expect(await view('a2la-1')).toMatchObject({ status: 'active', warnings: [{ code: 'expiring-soon', daysLeft: 10 }] });
    lines.length = 0;
    await t.server.accreditations.checkExpiry();
    expect(lines.filter((l) => l.accreditation === 'a2la-1').map((l) => l.msg)).toEqual([
      expect.stringMatching(/^accreditation A2LA 1234\.01 expires on /),
    ]);
    clock = validTo;
    expect(await view('a2la-1')).toMatchObject({ status: 'expired', statusSince: validTo, warnings: [] });
    expect(await covers('ASTM E8/E8M-22', 'Rm', 'MPa', 500)).toMatchObject({
      accredited: false,
      reason: expect.stringMatching(/A2LA 1234\.01 expired on /),
    });
    expect((await view('a2la-1', validFrom + DAY)).status).toBe('active');
    expect((await view('a2la-1', validFrom - 1)).status).toBe('not-yet-valid');
    // an expired accreditation is renewed by a new record, not rescoped
    expect(
      (await call('/api/accreditations/a2la-1/scope', postJson({ scope: [{ standard: 'X', measurand: 'y', unit: '' }], reason: 'r' }))).status,
    ).toBe(409);
  });

  test('suspended and reinstated: results in the suspension are not accredited, before and after it they are', async () => {
    clock += DAY;
    const suspendedAt = clock;
    const suspended = await event('cnas-1', 'suspend', 'CNAS letter 2026-117: corrective actions overdue');
    expect(suspended.status).toBe(201);
    expect(suspended.body).toMatchObject({ status: 'suspended', statusSince: suspendedAt });
    expect(await covers(TENSILE, 'Rm', 'MPa', 640)).toEqual({
      accredited: false,
      reason: `accreditation CNAS L1234 is suspended since ${new Date(suspendedAt).toISOString()}`,
    });
    const again = await event('cnas-1', 'suspend', 'twice');
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/^body: kind: accreditation CNAS L1234 is suspended: it cannot be suspended/);
    clock += 5 * DAY;
    expect(await event('cnas-1', 'reinstate', 'CNAS letter 2026-131: corrective actions accepted')).toMatchObject({
      status: 201,
      body: { status: 'active', statusSince: clock },
    });
    expect(await covers(TENSILE, 'Rm', 'MPa', 640)).toMatchObject({ accredited: true });
    expect(await covers(TENSILE, 'Rm', 'MPa', 640, suspendedAt + DAY)).toMatchObject({ accredited: false });
    expect(await covers(TENSILE, 'Rm', 'MPa', 640, suspendedAt - 1)).toMatchObject({ accredited: true });
    expect((await view('cnas-1', suspendedAt + DAY)).status).toBe('suspended');
    expect((await view('cnas-1')).events.map((e) => [e.kind, e.recordedBy])).toEqual([
      ['suspend', 'admin'],
      ['reinstate', 'admin'],
    ]);
    const audit = await t.server.audit.list({ recordType: 'accreditation', recordId: 'cnas-1', action: 'state-change', limit: 10 });
    expect(audit.map((e) => [e.oldValue, e.newValue, e.reason])).toEqual([
      [{ status: 'active' }, { status: 'suspended', event: 'suspend' }, 'CNAS letter 2026-117: corrective actions overdue'],
      [{ status: 'suspended' }, { status: 'active', event: 'reinstate' }, 'CNAS letter 2026-131: corrective actions accepted'],
    ]);
  });

  test('withdrawn is final', async () => {
    await call(
      '/api/accreditations',
      postJson({
        id: 'dakks-1',
        body: 'DAkkS',
        number: 'D-PL-12345-01-00',
        validFrom: clock - DAY,
        validTo: clock + 900 * DAY,
        scope: [{ standard: 'ISO 148-1:2016', measurand: 'KV', unit: 'J', min: 1, max: 300 }],
      }),
    );
    const before = clock;
    clock += DAY;
    expect(await event('dakks-1', 'withdraw', 'the lab gave up its accreditation')).toMatchObject({
      status: 201,
      body: { status: 'withdrawn', statusSince: clock },
    });
    for (const kind of ['reinstate', 'suspend', 'withdraw']) expect((await event('dakks-1', kind, 'try')).status).toBe(409);
    expect(
      (await call('/api/accreditations/dakks-1/scope', postJson({ scope: [{ standard: 'X', measurand: 'y', unit: '' }], reason: 'r' }))).status,
    ).toBe(409);
    clock += 100 * DAY;
    expect((await view('dakks-1')).status).toBe('withdrawn');
    expect((await view('dakks-1', before)).status).toBe('active');
    expect(await covers('ISO 148-1:2016', 'KV', 'J', 27)).toMatchObject({
      reason: expect.stringMatching(/^accreditation DAkkS D-PL-12345-01-00 was withdrawn on /),
    });
  });
});

describe('REST', () => {
  test('validation errors name the field', async () => {
    const bad = await call<{ error: string; issues: { path: string }[] }>(
      '/api/accreditations',
      postJson({
        id: 'bad id',
        body: '',
        number: 'x'.repeat(65),
        validFrom: -1,
        validTo: 5,
        scope: [{ standard: TENSILE, measurand: 'Rm', unit: 'MPa', min: 9, max: 1 }],
        extra: 1,
      }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i) => i.path).sort()).toEqual(['(root)', 'body', 'id', 'number', 'scope[0].min', 'validFrom', 'validTo']);
    const dates = await call<{ error: string }>('/api/accreditations', postJson({ ...CNAS, id: 'x-2', validTo: CNAS.validFrom }));
    expect(dates.body.error).toBe('body: validTo: must be after validFrom');
    const twice = await call<{ error: string }>('/api/accreditations', postJson({ ...CNAS, id: 'x-3', scope: [CNAS.scope[0], CNAS.scope[0]] }));
    expect(twice.body.error).toMatch(/^body: scope\[1\]: ISO 6892-1:2019 Rm \[MPa\] appears twice/);
    const exists = await call<{ error: string }>('/api/accreditations', postJson(CNAS));
    expect([exists.status, exists.body.error]).toEqual([409, 'body: id: accreditation "cnas-1" exists; change its scope or status instead']);
    const kind = await event('cnas-1', 'pause', 'r');
    expect(kind.body.error).toMatch(/^body: kind: /);
    expect((await call<{ error: string }>('/api/accreditations/cnas-1/events', postJson({ kind: 'suspend' }))).body.error).toMatch(/^body: reason: /);
    expect((await call<{ error: string }>('/api/accreditations?at=yesterday')).body.error).toMatch(/^query: at: /);
    expect((await call('/api/accreditations/nope')).status).toBe(404);
    expect((await event('nope', 'suspend', 'r')).status).toBe(404);
  });

  test('only the admin records and changes accreditations', async () => {
    for (const role of ['technician', 'signatory', 'client', 'auditor'] as const) {
      expect((await t.fetch('/api/accreditations', postJson({ ...CNAS, id: `by-${role}` }), role)).status).toBe(403);
      expect((await t.fetch('/api/accreditations/cnas-1/events', postJson({ kind: 'suspend', reason: 'r' }), role)).status).toBe(403);
      expect((await t.fetch('/api/accreditations/cnas-1/scope', postJson({ scope: CNAS.scope, reason: 'r' }), role)).status).toBe(403);
    }
    expect((await t.fetch('/api/accreditations', {}, null)).status).toBe(401);
    expect((await view('cnas-1')).status).toBe('active');
  });

  test('the public summary: body, number, status and validity, without signing in', async () => {
    const res = await call<{ lab: string; at: number; accreditations: PublicAccreditation[] }>('/api/public/accreditation', {}, null);
    expect(res.status).toBe(200);
    expect(res.body.lab).toBe('lab-t');
    // computed by the accreditations' clock
    expect(res.body.at).toBe(clock);
    expect(res.body.accreditations.map((a) => [a.id, a.body, a.number, a.status])).toEqual([
      ['a2la-1', 'A2LA', '1234.01', 'expired'],
      ['cnas-1', 'CNAS', 'L1234', 'active'],
      ['dakks-1', 'DAkkS', 'D-PL-12345-01-00', 'withdrawn'],
      ['ukas-1', 'UKAS', '0001', 'expired'],
    ]);
    expect(Object.keys(res.body.accreditations[1] ?? {}).sort()).toEqual([
      'body',
      'id',
      'number',
      'standard',
      'status',
      'statusSince',
      'validFrom',
      'validTo',
    ]);
    const then = await call<{ accreditations: PublicAccreditation[] }>(`/api/public/accreditation?at=${T0}`, {}, null);
    expect(then.body.accreditations.find((a) => a.id === 'ukas-1')?.status).toBe('active');
  });
});

test('the tables refuse UPDATE and DELETE', async () => {
  const db = t.server.database.sqlite;
  for (const statement of [
    "UPDATE accreditations SET valid_to = valid_to + 1 WHERE id = 'cnas-1'",
    "DELETE FROM accreditations WHERE id = 'cnas-1'",
    "UPDATE accreditation_scopes SET entries = '[]' WHERE accreditation = 'cnas-1'",
    "DELETE FROM accreditation_scopes WHERE accreditation = 'cnas-1'",
    "UPDATE accreditation_events SET kind = 'reinstate' WHERE accreditation = 'dakks-1'",
    'DELETE FROM accreditation_events',
  ])
    expect(() => db.prepare(statement).run()).toThrow(/written once|never deleted/);
  expect((await t.server.accreditations.view('dakks-1'))?.status).toBe('withdrawn');
});
