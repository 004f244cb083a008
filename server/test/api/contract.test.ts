// The API contract (@labtrace/protocols/api) against the server: every route of the policy has a contract and
// every contract a rule; against a real server with the demo lab's data (a completed run with results, a sample,
// the method, a calibration, an issued certificate read with its verification code, an accreditation, a webhook
// and a delivery), every GET answers a body its response schema parses, strictly: an undocumented field fails at
// every level of the answer; and refusals carry what a client translates.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { z } from 'zod';
import { encodeRawFile, topicFor, type Sample } from '@labtrace/protocols';
import { api, apiErrorSchema, fillPath, isReason, REASONS, type RouteContract } from '@labtrace/protocols/api';
import { POLICY, routesOf } from '../../src/auth/policy.js';
import { DEMO_METHOD_ID } from '../../src/lab/demo.js';
import { freePort } from '../helpers/ports.js';
import { LAB, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

const key = (r: { method: string; path: string }): string => `${r.method} ${r.path}`;

test('every route of the policy has exactly one contract, and every contract a rule', () => {
  const contracts = Object.values(api).map(key);
  expect(new Set(contracts).size).toBe(contracts.length);
  expect([...contracts].sort()).toEqual(POLICY.map(key).sort());
});

test('routes are registered from their contract (routeOf), not by hand', () => {
  const src = fileURLToPath(new URL('../../../src/', import.meta.url));
  const byHand: string[] = [];
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file === path.join('auth', 'policy.ts')) continue;
    if (/\broute\((router|app),/.test(readFileSync(path.join(src, file), 'utf8'))) byHand.push(file);
  }
  expect(byHand).toEqual([]);
});

test('every reason key is unique and namespaced', () => {
  expect(new Set(REASONS).size).toBe(REASONS.length);
  for (const reason of REASONS) expect(reason).toMatch(/^[a-z]+\.[a-z-]+$/);
});

let t: TestServer;
let gw: TestGateway;
let seq = 0;
/** the ids the GET routes are called with */
const ids: Record<string, string> = {};

async function reading(specimen: number, force: number, extension: number): Promise<void> {
  const ts = Date.now();
  const samples: Sample[] = [
    { seq: seq++, instrument: 'utm-1', channel: 'force', ts, value: force, unit: 'kN', quality: 'good' },
    { seq: seq++, instrument: 'utm-1', channel: 'extension', ts, value: extension, unit: 'mm', quality: 'good' },
    { seq: seq++, instrument: 'utm-1', channel: 'specimen', ts, value: specimen, unit: '', quality: 'good' },
  ];
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
}

beforeAll(async () => {
  t = await startServer({ demo: { enabled: true, organization: ORGANIZATION, pauseSpecimens: 0 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([
    {
      id: 'utm-1',
      identity: { maker: 'ZwickRoell', model: 'Z050', serialNumber: 'ZR-1', kind: 'universal-testing-machine', location: 'hall 2' },
      channels: [
        { name: 'force', unit: 'kN' },
        { name: 'extension', unit: 'mm' },
        { name: 'specimen', unit: '' },
      ],
    },
  ]);
  await waitFor('the testing machine', () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'utm-1'").get() !== undefined);
  // a result file of the testing machine, kept by the server (GET /api/raw-files/:sha256)
  const raw = Buffer.from('Time;Force [kN]\r\n01.01.2027 10:00:00.000;11,125\r\n');
  const rawFile = createHash('sha256').update(raw).digest('hex');
  ids['rawFile'] = rawFile;
  const header = { v: 1, gateway: 'gw-a', instrument: 'utm-1', sha256: rawFile, name: 'test-1.csv', size: raw.length, takenAt: Date.now() } as const;
  await gw.client.publishAsync(topicFor(LAB, 'gw-a', 'FILE'), Buffer.from(encodeRawFile(header, raw)), { qos: 1 });
  await waitFor('the result file', () => t.server.database.sqlite.prepare('SELECT 1 FROM raw_files WHERE sha256 = ?').get(rawFile) !== undefined);
  // one whole specimen: mounted, pulled to break, and the next one mounted (the run completes, a certificate is issued)
  await reading(1, 0, 12);
  await reading(2, 0, 0);
  await waitFor('the demo run', async () => (await t.server.runs.list({ role: 'admin', organization: null })).length === 1);
  for (const [force, extension] of [
    [10, 0.4],
    [41.7, 6],
    [35, 12],
  ] as const)
    await reading(2, force, extension);
  await reading(3, 0, 0);
  const completed = async () => (await t.server.runs.list({ role: 'admin', organization: null })).find((r) => r.state === 'completed');
  await waitFor('the completed run', async () => (await completed()) !== undefined);
  const run = await completed();
  if (run === undefined) throw new Error('no completed run');
  await waitFor('the issued certificate', async () =>
    (await t.server.certificates.list({ role: 'admin', organization: null }, { run: run.id })).items.some((c) => c.status === 'valid'),
  );
  const certificate = (await t.server.certificates.list({ role: 'admin', organization: null }, { run: run.id })).items.find(
    (c) => c.status === 'valid',
  );
  const now = Date.now();
  const accreditation = await t.fetch(
    '/api/accreditations',
    postJson({
      id: 'cnas-l1234',
      body: 'CNAS',
      number: 'L1234',
      validFrom: now - 86_400_000,
      validTo: now + 365 * 86_400_000,
      scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 100 }],
    }),
  );
  expect(api.createAccreditation.response.safeParse(await accreditation.json()).error).toBeUndefined();
  // a webhook (to a port nobody listens on) and its test message: the webhook and delivery lists are not empty
  const webhook = await t.fetch(
    '/api/notifications/webhooks',
    postJson({ name: 'lab robot', owner: 'admin', url: `http://127.0.0.1:${await freePort()}/hook`, preset: 'generic' }),
  );
  expect(webhook.status).toBe(201);
  const hook = api.createWebhook.response.parse(await webhook.json());
  const delivery = await t.fetch('/api/notifications/test', postJson({ channel: 'webhook', webhook: hook.id }));
  expect(delivery.status).toBe(200);
  expect(api.testNotification.response.safeParse(await delivery.json()).error).toBeUndefined();
  // a share link of the run (its token opens the public routes) and one to its open-alarm count
  const share = await t.fetch(`/api/runs/${run.id}/shares`, postJson({ hours: 24, note: 'purchasing' }), 'technician');
  expect(share.status).toBe(201);
  const created = api.createShare.response.parse(await share.json());
  // a calibration record of the testing machine with its certificate attached (a PDF: the calibrations list carries it)
  const calibration = await t.fetch(
    '/api/instruments/utm-1/calibrations',
    postJson({
      calibratedAt: now - 86_400_000,
      laboratory: 'Calibration Lab A',
      certificate: 'CAL-CONTRACT-1',
      results: [{ point: '50 kN', reference: 50, indication: 50.02, unit: 'kN' }],
      uncertainty: { value: 0.03, unit: 'kN', k: 2 },
      nextDueAt: now + 365 * 86_400_000,
    }),
  );
  const calibrationRecord = api.recordCalibration.response.parse(await calibration.json());
  const pdf = Buffer.from('%PDF-1.4\ntrailer << >>\n%%EOF\n', 'latin1');
  const attached = await t.fetch(`/api/instruments/utm-1/calibrations/${calibrationRecord.id}/certificate`, {
    method: 'PUT',
    headers: { 'content-type': 'application/pdf' },
    body: pdf,
  });
  expect(api.attachCalibrationCertificate.response.safeParse(await attached.json()).error).toBeUndefined();
  Object.assign(ids, {
    token: created.token,
    calibration: String(calibrationRecord.id),
    run: run.id,
    sample: run.sample,
    method: DEMO_METHOD_ID,
    instrument: 'utm-1',
    gateway: 'gw-a',
    accreditation: 'cnas-l1234',
    certificate: certificate?.id ?? '',
    // the verification code printed on the report: the public status and page then show its summary
    code: new URL(certificate?.verifyUrl ?? 'http://x/').searchParams.get('code') ?? '',
  });
  expect(ids['code']).toMatch(/^[0-9a-f]{16}$/);
  // a draft of the same run: its preview PDF and its answer with the content as it would be issued
  const requested = await t.fetch('/api/certificates', postJson({ run: run.id }), 'technician');
  expect(requested.status).toBe(201);
  ids['draft'] = api.requestCertificate.response.parse(await requested.json()).id;
}, 60_000);

afterAll(async () => {
  await gw?.end();
  await t?.stop();
});

/** the path parameters of a GET route, from the demo's records */
function paramsOf(path: string): Record<string, string> {
  const id = path.startsWith('/api/runs')
    ? ids['run']
    : path.startsWith('/api/lab-samples')
      ? ids['sample']
      : path.startsWith('/api/methods')
        ? ids['method']
        : path.startsWith('/api/instruments')
          ? ids['instrument']
          : path.startsWith('/api/gateways')
            ? ids['gateway']
            : path.startsWith('/api/accreditations')
              ? ids['accreditation']
              : path.endsWith('/preview.pdf')
                ? ids['draft']
                : ids['certificate'];
  return {
    id: id ?? '',
    gateway: ids['gateway'] ?? '',
    seq: '0',
    token: ids['token'] ?? '',
    record: ids['calibration'] ?? '',
    sha256: ids['rawFile'] ?? '',
  };
}

/** the query a GET route needs (its required fields) */
function queryOf(path: string): string {
  const span = `gateway=gw-a&from=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}&to=${encodeURIComponent(new Date().toISOString())}`;
  const queries: Record<string, string> = {
    '/api/instruments/:id/series': 'channel=force',
    '/api/instruments/:id/history': 'channel=force',
    '/api/log/proof/inclusion': 'index=0&size=1',
    '/api/log/proof/consistency': 'from=1&to=1',
    '/api/log/entries': 'start=0&end=1',
    '/api/export': span,
    '/api/public/certificates/:id': `code=${ids['code'] ?? ''}`,
    '/verify/:id': `code=${ids['code'] ?? ''}&lang=zh-CN`,
    '/api/overview': 'zone=Asia/Shanghai',
  };
  return queries[path] ?? '';
}

/** the GET routes answering a list the demo's records fill */
const NON_EMPTY = new Set([
  'listUsers',
  'listOrganizations',
  'listAudit',
  'listGateways',
  'gatewayKeys',
  'listGatewayKeys',
  'listInstruments',
  'instrumentHistory',
  'listSamples',
  'listMethods',
  'getMethod',
  'listRuns',
  'listAccreditations',
  'listCertificates',
  'listWebhooks',
  'listShares',
]);

/** the GET routes whose answer, with the demo's records, carries a part the strict check must reach */
const CARRIES: Record<string, (answer: Record<string, unknown>) => unknown> = {
  // an issued certificate: its signed content and statement
  getCertificate: (a) => [a['content'], a['statement']],
  // with the report's verification code: what its holder may see
  publicCertificate: (a) => a['summary'],
  listDeliveries: (a) => (a['deliveries'] as unknown[])[0],
  // a shared completed run: its results and its issued report
  publicShare: (a) => [a['results'], a['report']],
  // a calibration record with its certificate attached
  instrumentCalibrations: (a) => (a['calibrations'] as { attachment: unknown }[]).find((c) => c.attachment !== null)?.attachment,
  instrumentRegister: (a) => (a['items'] as unknown[])[0],
  getSubscriptions: (a) => (a['webhooks'] as unknown[])[0],
};

/**
 * Where an answer holds an object: the answer itself, and each object inside it (of a list, its first item), as
 * paths of keys and indexes.
 */
function objectPaths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.length === 0 ? [] : objectPaths(value[0], [...at, 0]);
  if (value === null || typeof value !== 'object') return [];
  return [at, ...Object.entries(value).flatMap(([k, v]) => objectPaths(v, [...at, k]))];
}

/** a copy of `value` with an undocumented field added to the object at `at` */
function withField(value: unknown, at: (string | number)[]): unknown {
  if (at.length === 0) return { ...(value as object), undocumented: 1 };
  const [head, ...rest] = at as [string | number, ...(string | number)[]];
  if (Array.isArray(value)) return (value as unknown[]).map((v, i) => (i === head ? withField(v, rest) : v));
  return { ...(value as object), [head]: withField((value as Record<string, unknown>)[head], rest) };
}

/**
 * objects whose keys are data, not fields of the API: counts by reason (health's refused batches); a record's
 * values as they were (the audit trail's); a sample
 * and a batch header as the gateway signed them (a measurement proof: the verifier checks their bytes, and a newer
 * gateway may sign fields this server does not know)
 */
const FREE_FORM = [/^ingest\.refusedByReason$/, /^(?:items\.)?\d+\.(oldValue|newValue)(\.|$)/, /^record\.sample(\.|$)/, /^batch\.header(\.|$)/];

/**
 * GET routes answered by another process, which this lab has none of: the supervisor's reports of the lab's standing
 * (without `supervision:` they answer 404; server/test/standing/standing.test.ts reads them from a real supervisor)
 */
const ELSEWHERE = new Set(['standingReport', 'standingReportPdf']);
const getRoutes = Object.entries(api).filter(([name, c]) => c.method === 'GET' && !ELSEWHERE.has(name)) as [string, RouteContract][];

describe('every GET answers what its contract says', () => {
  test.each(getRoutes)('%s', async (_name, contract) => {
    const query = queryOf(contract.path);
    const res = await t.fetch(`${fillPath(contract.path, paramsOf(contract.path))}${query === '' ? '' : `?${query}`}`);
    expect({ path: contract.path, status: res.status }).toEqual({ path: contract.path, status: 200 });
    const type = res.headers.get('content-type') ?? '';
    if (type.startsWith('application/json')) {
      const answer: unknown = await res.json();
      const parsed = contract.response.safeParse(answer);
      expect(parsed.error?.issues ?? []).toEqual([]);
      // the demo's records reach these lists: an empty one would prove nothing of its items
      if (NON_EMPTY.has(_name)) {
        // a list, or a page of one
        const items = Array.isArray(answer) ? answer : (answer as { items: unknown[] }).items;
        expect(items.length).toBeGreaterThan(0);
      }
      const carried = CARRIES[_name]?.(answer as Record<string, unknown>);
      if (CARRIES[_name] !== undefined) expect([carried].flat().every((part) => part !== undefined && part !== null)).toBe(true);
      // strict: a field the contract does not name fails, on the answer and on every object inside it (of a
      // list, its first item); a download that happens to be JSON, the signed certificate file, is no answer of
      // the API (z.unknown)
      if (!(contract.response instanceof z.ZodUnknown)) {
        const lax = objectPaths(answer)
          .filter((at) => !FREE_FORM.some((free) => free.test(at.join('.'))))
          .filter((at) => contract.response.safeParse(withField(answer, at)).success)
          .map((at) => at.join('.'));
        expect(lax).toEqual([]);
      }
    } else if (type.startsWith('text/')) {
      // a checkpoint note, the verification page
      expect(contract.response.safeParse(await res.text()).success).toBe(true);
    } else {
      // a download (PDF, tar, XML, JSON lines): the contract leaves its bytes alone
      expect(contract.response.safeParse(await res.arrayBuffer()).success).toBe(true);
    }
  });
});

test('every route the app registers has a contract', () => {
  const contracts = new Set(Object.values(api).map(key));
  const registered = routesOf(t.server.app).filter((r) => r.path.startsWith('/api/') || r.path.startsWith('/verify/'));
  expect(registered.length).toBeGreaterThan(50);
  for (const r of registered) expect(contracts).toContain(key(r));
});

describe('refusals carry what a client translates', () => {
  test('a bad body: 400, each issue with its field, zod code and parameters', async () => {
    const res = await t.fetch('/api/runs', postJson({ sample: '', method: DEMO_METHOD_ID, instruments: [], colour: 'red' }), 'technician');
    expect(res.status).toBe(400);
    const body = apiErrorSchema.parse(await res.json());
    expect(body).toMatchObject({ code: 'E_BAD_REQUEST', reason: 'request.invalid' });
    expect(body.error).toMatch(/^body: /);
    const byPath = Object.fromEntries((body.issues ?? []).map((i) => [i.path, i]));
    expect(byPath['instruments']).toMatchObject({ code: 'too_small', params: { minimum: 1, origin: 'array' } });
    expect(byPath['(root)']).toMatchObject({ code: 'unrecognized_keys', params: { keys: 'colour' } });
    expect(byPath['sample']?.code).toBeDefined();
  });

  test('a bad query and a bad path parameter name their part', async () => {
    const query = await t.fetch('/api/runs?state=finished');
    const q = apiErrorSchema.parse(await query.json());
    expect(q.error).toMatch(/^query: state: /);
    expect(q.issues?.[0]).toMatchObject({ path: 'state', code: 'invalid_value', params: { values: 'planned, running, completed, aborted' } });
    const path = await t.fetch(`/api/runs/${encodeURIComponent('bad id!')}`);
    expect(path.status).toBe(400);
    const p = apiErrorSchema.parse(await path.json());
    expect(p.error).toMatch(/^path: id: /);
    expect(p.issues?.[0]?.path).toBe('id');
  });

  test('a run that is not running cannot be stopped: a reason with the run, its state and the command', async () => {
    const res = await t.fetch(`/api/runs/${ids['run'] ?? ''}/stop`, postJson({}), 'technician');
    expect(res.status).toBe(409);
    const body = apiErrorSchema.parse(await res.json());
    expect(body).toMatchObject({ reason: 'run.transition-refused', params: { id: ids['run'], state: 'completed', command: 'stop' } });
  });

  test('an unknown record, a forbidden role, no credential and an unknown route each have their reason', async () => {
    const unknown = apiErrorSchema.parse(await (await t.fetch('/api/runs/no-such-run')).json());
    expect(unknown).toMatchObject({ code: 'E_NOT_FOUND', reason: 'record.not-found', params: { type: 'run', id: 'no-such-run' } });
    const forbidden = apiErrorSchema.parse(await (await t.fetch('/api/users', {}, 'client')).json());
    expect(forbidden).toMatchObject({ code: 'E_FORBIDDEN', reason: 'auth.role-forbidden', params: { role: 'client', method: 'GET' } });
    const anonymous = apiErrorSchema.parse(await (await t.fetch('/api/runs', {}, null)).json());
    expect(anonymous).toMatchObject({ code: 'E_AUTH', reason: 'auth.sign-in-required' });
    const route = apiErrorSchema.parse(await (await t.fetch('/api/nothing-here')).json());
    expect(route).toMatchObject({ reason: 'request.no-route', params: { method: 'GET', path: '/api/nothing-here' } });
    for (const body of [unknown, forbidden, anonymous, route]) expect(isReason(body.reason ?? '')).toBe(true);
  });

  test("a draft's answer carries its content as it would be issued and its blockers by kind, strictly as the contract says", async () => {
    const res = await t.fetch(`/api/certificates/${ids['draft'] ?? ''}`, {}, 'signatory');
    expect(res.status).toBe(200);
    const answer: unknown = await res.json();
    expect(api.getCertificate.response.safeParse(answer).error?.issues ?? []).toEqual([]);
    expect(answer).toMatchObject({
      status: 'draft',
      draft: { customer: {}, results: expect.any(Array) as unknown },
      blockerDetails: expect.any(Array) as unknown,
    });
    // an undocumented field in the draft's content fails the strict check
    const changed = structuredClone(answer) as { draft: Record<string, unknown> };
    changed.draft['extra'] = 1;
    expect(api.getCertificate.response.safeParse(changed).success).toBe(false);
  });

  test("a draft's files and an unknown certificate each have their reason", async () => {
    const requested = await t.fetch('/api/certificates', postJson({ run: ids['run'], language: 'zh-CN' }), 'technician');
    expect(requested.status).toBe(201);
    const draft = api.requestCertificate.response.parse(await requested.json());
    expect(draft.status).toBe('draft');
    for (const file of ['pdf', 'json', 'dcc.xml']) {
      const res = await t.fetch(`/api/certificates/${draft.id}/${file}`);
      expect(res.status).toBe(409);
      expect(apiErrorSchema.parse(await res.json())).toMatchObject({ code: 'E_CONFLICT', reason: 'certificate.draft', params: { id: draft.id } });
    }
    for (const where of ['', '/pdf']) {
      const unknown = apiErrorSchema.parse(await (await t.fetch(`/api/certificates/TR-none-999999${where}`)).json());
      expect(unknown).toMatchObject({ code: 'E_NOT_FOUND', reason: 'record.not-found', params: { type: 'certificate', id: 'TR-none-999999' } });
    }
    // the contract's body schemas refuse a language no report is printed in, and a code that is no code
    const language = apiErrorSchema.parse(
      await (await t.fetch(`/api/certificates/${draft.id}/issue`, postJson({ language: 'fr' }), 'signatory')).json(),
    );
    expect(language).toMatchObject({ code: 'E_BAD_REQUEST', reason: 'request.invalid' });
    expect(language.issues?.[0]).toMatchObject({ path: 'language', code: 'invalid_value' });
    const code = await fetch(`${t.base}/api/public/certificates/${ids['certificate'] ?? ''}?code=nope`);
    expect(code.status).toBe(400);
    expect(apiErrorSchema.parse(await code.json()).error).toMatch(/^query: code: expected the 16 hex digits/);
  });

  test('a wrong login: the reason says refused, nothing more', async () => {
    const res = await fetch(`${t.base}/api/auth/login`, postJson({ username: 'admin', password: 'not the password' }));
    expect(res.status).toBe(401);
    expect(apiErrorSchema.parse(await res.json())).toMatchObject({ code: 'E_AUTH', reason: 'auth.login-refused' });
  });
});

describe('the write routes answer what their contract says', () => {
  /** calls a route of the contract as a role and parses the answer with its response schema */
  async function call<C extends RouteContract>(
    contract: C,
    role: 'admin' | 'technician' | 'signatory',
    input: { params?: Record<string, string>; body?: unknown } = {},
  ): Promise<z.output<C['response']>> {
    const res = await t.fetch(
      fillPath(contract.path, input.params),
      { method: contract.method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(input.body ?? {}) },
      role,
    );
    const answer: unknown = await res.json();
    expect({ path: contract.path, status: res.status, answer }).toMatchObject({ path: contract.path, status: res.status < 300 ? res.status : 200 });
    const parsed = contract.response.safeParse(answer);
    expect(parsed.error?.issues ?? []).toEqual([]);
    return parsed.data as z.output<C['response']>;
  }

  test('users, organizations and tokens', async () => {
    await call(api.createOrganization, 'admin', { body: { id: 'org-w', name: 'Client W', contact: 'w@example.com' } });
    const user = await call(api.createUser, 'admin', { body: { username: 'walter', role: 'client', organization: 'org-w' } });
    expect(user.oneTimePassword).toBeDefined();
    await call(api.updateUser, 'admin', { params: { username: 'walter' }, body: { disabled: true, reason: 'left the company' } });
    await call(api.resetPassword, 'admin', { params: { username: 'walter' } });
    await call(api.createToken, 'technician', { body: { name: 'script' } });
  });

  test('samples, methods, runs and instruments', async () => {
    const sample = await call(api.createSample, 'technician', {
      body: { id: 'w-1', organization: ORGANIZATION, description: '试样 10 mm', condition: 'as received', receivedAt: Date.now() - 60_000 },
    });
    const method = await call(api.createMethod, 'technician', {
      body: {
        id: 'w-method',
        standard: 'ISO 6892-1:2019',
        title: 'tensile',
        definition: {
          measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
          decisionRule: { kind: 'simple-acceptance' },
          results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01 }],
          rules: [{ id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'force', high: 50 }],
        },
      },
    });
    expect(method.version).toBe(1);
    await call(api.addMethodVersion, 'technician', {
      params: { id: 'w-method' },
      body: { standard: method.standard, title: 'tensile, v2', definition: method.definition, reason: 'title' },
    });
    const run = await call(api.createRun, 'technician', { body: { sample: sample.id, method: 'w-method', instruments: ['utm-1'] } });
    expect(run.state).toBe('planned');
    expect((await call(api.abortRun, 'technician', { params: { id: run.id }, body: { reason: 'specimen dropped' } })).state).toBe('aborted');
    await call(api.setInstrumentStatus, 'technician', { params: { id: 'utm-1' }, body: { status: 'out-of-service', reason: 'overload' } });
    await call(api.setInstrumentStatus, 'technician', { params: { id: 'utm-1' }, body: { status: 'in-service', reason: 'repaired' } });
    await call(api.recordCheck, 'technician', {
      params: { id: 'utm-1' },
      body: { checkedAt: Date.now() - 1000, result: 'pass', description: 'proving ring 20 kN' },
    });
    await call(api.recordCalibration, 'technician', {
      params: { id: 'utm-1' },
      body: {
        calibratedAt: Date.now() - 3_600_000,
        laboratory: 'NIM',
        certificate: 'C-1',
        results: [{ point: '20 kN', reference: 20, indication: 20.01, unit: 'kN' }],
        uncertainty: { value: 0.02, unit: 'kN' },
        nextDueAt: Date.now() + 365 * 86_400_000,
      },
    });
  });

  test('accreditations', async () => {
    const suspended = await call(api.accreditationEvent, 'admin', { params: { id: 'cnas-l1234' }, body: { kind: 'suspend', reason: 'audit' } });
    expect(suspended.status).toBe('suspended');
    await call(api.accreditationEvent, 'admin', { params: { id: 'cnas-l1234' }, body: { kind: 'reinstate', reason: 'audit passed' } });
    await call(api.changeAccreditationScope, 'admin', {
      params: { id: 'cnas-l1234' },
      body: { scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 200 }], reason: 'extended' },
    });
  });
});
