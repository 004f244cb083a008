// Bad input over real HTTP: times no lab can mean (9e15 ms) and impossible dates (2026-02-31) are refused with a
// 400 naming the field instead of being stored (and failing every certificate after) or rolled over to March; a
// lone UTF-16 surrogate or a control character in any text field is a 400 naming the field, not a 500 E_CODEC.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Role } from '../../src/auth/users.js';
import { ORGANIZATION, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

const FAR = 9_000_000_000_000_000;
const LONE = 'bar \ud800 B500B';
let t: TestServer;
let gw: TestGateway;
let run: string;

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  expect((await post('/api/lab-samples', sample(), 'technician')).status).toBe(201);
  expect((await post('/api/methods', method(), 'technician')).status).toBe(201);
  const created = await post('/api/runs', { sample: 'S-1', method: 'tensile', instruments: ['utm-1'] }, 'technician');
  expect(created.status).toBe(201);
  run = (created.body as { id: string }).id;
});

afterAll(async () => {
  await gw.end();
  await t.stop();
});

async function post(path: string, body: unknown, role: Role = 'admin', method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  // JSON.stringify writes a lone surrogate as the escape \ud800: the server's JSON parser makes it a lone surrogate again
  const res = await t.fetch(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, role);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const sample = (over: Record<string, unknown> = {}) => ({
  id: 'S-1',
  organization: ORGANIZATION,
  description: 'steel bar B500B',
  condition: 'intact',
  receivedAt: Date.now(),
  ...over,
});
const method = (over: Record<string, unknown> = {}) => ({
  id: 'tensile',
  standard: 'ISO 6892-1:2019',
  title: 'Tensile testing',
  definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' } },
  ...over,
});
const calibration = (over: Record<string, unknown> = {}) => ({
  calibratedAt: Date.now() - 86_400_000,
  laboratory: 'Reference Lab',
  certificate: 'CAL-1',
  results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
  uncertainty: { value: 0.1, unit: 'kN', k: 2 },
  nextDueAt: Date.now() + 300 * 86_400_000,
  ...over,
});
const accreditation = (over: Record<string, unknown> = {}) => ({
  id: 'acc-1',
  body: 'CNAS',
  number: 'L1234',
  validFrom: Date.now() - 86_400_000,
  validTo: Date.now() + 365 * 86_400_000,
  scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN' }],
  ...over,
});

describe('times no lab can mean', () => {
  test.each([
    ['a calibration due in 9e15 ms', '/api/instruments/utm-1/calibrations', () => calibration({ nextDueAt: FAR }), 'nextDueAt', 'technician'],
    ['a calibration made in 1970', '/api/instruments/utm-1/calibrations', () => calibration({ calibratedAt: 1000 }), 'calibratedAt', 'technician'],
    ['a sample received at 9e15 ms', '/api/lab-samples', () => sample({ id: 'S-far', receivedAt: FAR }), 'receivedAt', 'technician'],
    ['a sample received at 1.5 ms', '/api/lab-samples', () => sample({ id: 'S-frac', receivedAt: 1.5 }), 'receivedAt', 'technician'],
    [
      'a check at 9e15 ms',
      '/api/instruments/utm-1/checks',
      () => ({ checkedAt: FAR, result: 'pass', description: 'force check' }),
      'checkedAt',
      'technician',
    ],
    ['an accreditation valid to 9e15 ms', '/api/accreditations', () => accreditation({ validTo: FAR }), 'validTo', 'admin'],
    ['an auditor granted until 9e15 ms', '/api/users', () => ({ username: 'aud-far', role: 'auditor', grantUntil: FAR }), 'grantUntil', 'admin'],
  ] as const)('%s: 400 naming the field, nothing stored', async (_what, path, body, field, role) => {
    const before = (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_trail').get() as { n: number }).n;
    const res = await post(path, body(), role);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(new RegExp(`^body: ${field}: .*(2000-01-01T00:00:00Z \\.\\. 2200-01-01T00:00:00Z|whole ms)`));
    expect((t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_trail').get() as { n: number }).n).toBe(before);
  });

  test('the calibration status of utm-1 is unchanged: it still has no calibration', async () => {
    const res = await t.fetch('/api/instruments/utm-1/calibrations');
    expect(((await res.json()) as { calibrations: unknown[] }).calibrations).toEqual([]);
  });

  test.each([
    ['/api/audit-trail?since=9000000000000000', 'since'],
    ['/api/audit-trail?until=1e3', 'until'],
    ['/api/accreditations?at=9000000000000000', 'at'],
    ['/api/security-events?since=-5', 'since'],
    ['/api/instruments/utm-1/history?channel=c&from=9000000000000000', 'from'],
  ])('the query %s: 400 naming %s', async (path, field) => {
    const res = await t.fetch(path, {}, 'admin');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(new RegExp(`^query: ${field}: `));
  });
});

describe('impossible dates', () => {
  test.each([
    ['2026-02-31T00:00:00Z', 'from', '2026-02-31 is not a date of the calendar'],
    ['2026-02-29T12:00:00Z', 'from', '2026-02-29 12:00:00 is not a date of the calendar'],
    ['2026-11-27T24:00:00Z', 'from', '2026-11-27 24:00:00 is not a date of the calendar'],
    ['2026-11-27T10:00:00', 'from', 'expected an ISO 8601 date-time with its offset'],
    ['2026-11-27', 'from', 'expected an ISO 8601 date-time with its offset'],
    ['9999-01-01T00:00:00Z', 'from', 'must be a time between 2000-01-01T00:00:00Z .. 2200-01-01T00:00:00Z'],
  ])('/api/export?from=%s: 400 naming the field', async (from, field, message) => {
    const res = await t.fetch(`/api/export?gateway=gw-a&from=${encodeURIComponent(from)}&to=2026-12-01T00:00:00Z`, {}, 'admin');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(`query: ${field}: ${message}`);
  });

  test('a well-formed span with an offset is taken (the leap day of 2028 is a date)', async () => {
    const res = await t.fetch(
      `/api/export?gateway=gw-a&from=${encodeURIComponent('2028-02-29T10:00:00+01:00')}&to=2028-03-01T00:00:00Z`,
      {},
      'admin',
    );
    expect(res.status).not.toBe(400);
    await res.arrayBuffer();
  });
});

describe('text that cannot be stored', () => {
  // every text field of every route body (11 fields on 8 routes were found answering 500 E_CODEC)
  const cases: [string, string, Role, (v: string) => unknown, string, string][] = [
    ['organization name', '/api/organizations', 'admin', (v) => ({ id: 'org-x', name: v }), 'name', 'POST'],
    ['organization contact', '/api/organizations', 'admin', (v) => ({ id: 'org-x', name: 'X', contact: v }), 'contact', 'POST'],
    ['token name', '/api/auth/tokens', 'admin', (v) => ({ name: v }), 'name', 'POST'],
    ['user change reason', '/api/users/technician', 'admin', (v) => ({ disabled: false, reason: v }), 'reason', 'PATCH'],
    ['calibration lab', '/api/instruments/utm-1/calibrations', 'technician', (v) => calibration({ laboratory: v }), 'laboratory', 'POST'],
    ['calibration certificate', '/api/instruments/utm-1/calibrations', 'technician', (v) => calibration({ certificate: v }), 'certificate', 'POST'],
    [
      'calibration point',
      '/api/instruments/utm-1/calibrations',
      'technician',
      (v) => calibration({ results: [{ point: v, reference: 1, indication: 1, unit: 'kN' }] }),
      'results[0].point',
      'POST',
    ],
    ['calibration adjustments', '/api/instruments/utm-1/calibrations', 'technician', (v) => calibration({ adjustments: v }), 'adjustments', 'POST'],
    [
      'check description',
      '/api/instruments/utm-1/checks',
      'technician',
      (v) => ({ checkedAt: Date.now(), result: 'pass', description: v }),
      'description',
      'POST',
    ],
    ['method title', '/api/methods', 'technician', (v) => method({ id: 'm-x', title: v }), 'title', 'POST'],
    ['method standard', '/api/methods', 'technician', (v) => method({ id: 'm-x', standard: v }), 'standard', 'POST'],
    ['method version reason', '/api/methods/tensile/versions', 'technician', (v) => ({ ...method(), id: undefined, reason: v }), 'reason', 'POST'],
    ['sample description', '/api/lab-samples', 'technician', (v) => sample({ id: 'S-x', description: v }), 'description', 'POST'],
    ['sample condition', '/api/lab-samples', 'technician', (v) => sample({ id: 'S-x', condition: v }), 'condition', 'POST'],
    ['run start reason', `/api/runs/RUN/start`, 'technician', (v) => ({ reason: v }), 'reason', 'POST'],
    ['run abort reason', `/api/runs/RUN/abort`, 'technician', (v) => ({ reason: v }), 'reason', 'POST'],
    ['instrument status reason', '/api/instruments/utm-1/status', 'technician', (v) => ({ status: 'out-of-service', reason: v }), 'reason', 'POST'],
    ['accreditation body', '/api/accreditations', 'admin', (v) => accreditation({ body: v }), 'body', 'POST'],
    ['accreditation event reason', '/api/accreditations/acc-1/events', 'admin', (v) => ({ kind: 'suspend', reason: v }), 'reason', 'POST'],
  ];

  test.each(cases)('a lone surrogate in the %s: 400 naming the field, nothing stored', async (_what, path, role, body, field, verb) => {
    const before = (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_trail').get() as { n: number }).n;
    const res = await post(path.replace('RUN', run), body(LONE), role, verb);
    expect(res).toMatchObject({ status: 400, body: { code: 'E_BAD_REQUEST' } });
    expect(res.body.error).toBe(`body: ${field}: contains a lone UTF-16 surrogate (not well-formed Unicode)`);
    expect((t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_trail').get() as { n: number }).n).toBe(before);
  });

  test('a lone surrogate in a key, or deep in an array, is named by its path', async () => {
    const key = await post('/api/lab-samples', { ...sample({ id: 'S-k' }), [`x${'\udc00'}`]: 1 }, 'technician');
    expect(key.status).toBe(400);
    expect(key.body.error).toBe('body: (root): a key contains a lone UTF-16 surrogate (not well-formed Unicode)');
    const deep = await post(
      '/api/instruments/utm-1/calibrations',
      calibration({ results: [{ point: 'p1', reference: 1, indication: 1, unit: '\udbff' }] }),
      'technician',
    );
    expect(deep.status).toBe(400);
    expect(deep.body.error).toBe('body: results[0].unit: contains a lone UTF-16 surrogate (not well-formed Unicode)');
  });

  test('a body nested 20,000 deep is walked without overflowing the stack', async () => {
    const nested = `${'['.repeat(20_000)}"\\ud800"${']'.repeat(20_000)}`;
    const answer = await t.fetch('/api/lab-samples', { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested }, 'technician');
    const res = { status: answer.status, body: (await answer.json()) as { error: string } };
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^body: (\[0\]){20000}: contains a lone UTF-16 surrogate/);
  });

  test('a control character: refused in a line, NUL refused everywhere, a line break kept in a description', async () => {
    const nul = await post('/api/organizations', { id: 'org-y', name: 'Client\u0000Y' });
    expect(nul).toMatchObject({ status: 400, body: { error: 'body: name: contains the control character U+0000 (one line expected)' } });
    const newline = await post('/api/organizations', { id: 'org-y', name: 'Client\nY' });
    expect(newline.body.error).toBe('body: name: contains the control character U+000A (one line expected)');
    const inParagraph = await post('/api/lab-samples', sample({ id: 'S-nul', condition: 'cracked\u0000' }), 'technician');
    expect(inParagraph.body.error).toBe('body: condition: contains the control character U+0000');
    const ok = await post('/api/lab-samples', sample({ id: 'S-lines', condition: 'as received:\n\tone dent, 2 mm' }), 'technician');
    expect(ok.status).toBe(201);
    expect(ok.body.condition).toBe('as received:\n\tone dent, 2 mm');
  });
});
