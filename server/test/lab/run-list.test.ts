// The runs list over REST: pages newest first by row id (every run exactly once across pages), the search `q` over
// run id, sample id and description, customer name and method id and title (LIKE wildcards taken literally), the
// filters, bad input answered 400 naming the field, and a client's list holding its own organization's runs only.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Page, RunListItem } from '@labtrace/protocols/api';
import { addOtherClient, jsonCaller, ORGANIZATION, postJson, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
const list = async (query = '', role: Parameters<typeof call>[2] = 'technician') => call<Page<RunListItem>>(`/api/runs${query}`, {}, role);
const ids = (page: Page<RunListItem>) => page.items.map((r) => r.id);

beforeAll(async () => {
  t = await startServer();
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
  for (const [id, title] of [
    ['tensile', 'Tensile testing at room temperature'],
    ['bend', 'Bend test 100%_special'],
  ])
    expect(
      (
        await call(
          '/api/methods',
          postJson({
            id,
            standard: 'ISO 6892-1:2019',
            title,
            definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' } },
          }),
        )
      ).status,
    ).toBe(201);
  const samples = [
    { id: 'S-1', organization: ORGANIZATION, description: 'steel bar Q235', condition: 'intact', receivedAt: Date.now() - 60_000 },
    { id: 'S-2', organization: 'org-b', description: 'aluminium tube', condition: 'intact', receivedAt: Date.now() - 60_000 },
  ];
  for (const s of samples) expect((await call('/api/lab-samples', postJson(s))).status).toBe(201);
  // run-1 .. run-7: org-a tensile x4 (run-1..4), org-b bend x3 (run-5..7)
  for (let i = 0; i < 7; i++) {
    const body = i < 4 ? { sample: 'S-1', method: 'tensile', instruments: ['ut-1'] } : { sample: 'S-2', method: 'bend', instruments: ['ut-1'] };
    expect((await call('/api/runs', postJson(body))).status).toBe(201);
  }
  expect((await call('/api/runs/run-2/start', postJson({}))).status).toBe(200);
  expect((await call('/api/runs/run-3/abort', postJson({ reason: 'specimen slipped' }))).status).toBe(200);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

describe('paging', () => {
  test('newest first; following `next` gives every run exactly once, the last page says there is no more', async () => {
    const first = (await list('?limit=3')).body;
    expect(ids(first)).toEqual(['run-7', 'run-6', 'run-5']);
    expect(first.next).not.toBeNull();
    const seen = [...ids(first)];
    let next = first.next;
    while (next !== null) {
      const page = (await list(`?limit=3&cursor=${next}`)).body;
      seen.push(...ids(page));
      next = page.next;
    }
    expect(seen).toEqual(['run-7', 'run-6', 'run-5', 'run-4', 'run-3', 'run-2', 'run-1']);
    expect(first.items[0]).toMatchObject({ id: 'run-7', openAlarms: 0, state: 'planned', method: { id: 'bend' } });
  });
});

describe('search and filters', () => {
  test('q matches the run id, sample id and description, customer name and method title', async () => {
    expect(ids((await list('?q=run-6')).body)).toEqual(['run-6']);
    expect(ids((await list('?q=Q235')).body)).toEqual(['run-4', 'run-3', 'run-2', 'run-1']);
    expect(ids((await list('?q=client%20b')).body)).toEqual(['run-7', 'run-6', 'run-5']);
    expect(ids((await list('?q=room%20temperature')).body)).toEqual(['run-4', 'run-3', 'run-2', 'run-1']);
    // % and _ are literal: "%" and "0%_s" are in the bend method's title only; no text holds "_1"

    expect(ids((await list('?q=0%25_s')).body)).toEqual(['run-7', 'run-6', 'run-5']);
    expect(ids((await list('?q=%25')).body)).toEqual(['run-7', 'run-6', 'run-5']);
    expect(ids((await list('?q=_1')).body)).toEqual([]);
  });

  test('state, sample, method, organization and creation time', async () => {
    expect(ids((await list('?state=running')).body)).toEqual(['run-2']);
    expect(ids((await list('?state=aborted')).body)).toEqual(['run-3']);
    expect(ids((await list('?sample=S-2&limit=2')).body)).toEqual(['run-7', 'run-6']);
    expect(ids((await list('?method=tensile&state=planned')).body)).toEqual(['run-4', 'run-1']);
    expect(ids((await list('?organization=org-b')).body)).toEqual(['run-7', 'run-6', 'run-5']);
    expect(ids((await list(`?from=${Date.now() + 60_000}`)).body)).toEqual([]);
    expect(ids((await list(`?to=${Date.now()}&q=run-1`)).body)).toEqual(['run-1']);
  });

  test('bad input answers 400 naming the field', async () => {
    for (const [query, field] of [
      ['?state=finished', 'state'],
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?cursor=abc', 'cursor'],
      ['?from=yesterday', 'from'],
      ['?from=10&to=5', 'to'],
      [`?q=${'x'.repeat(101)}`, 'q'],
      ['?colour=red', ''],
    ] as const) {
      const res = await call<{ code: string; issues: { path: string }[] }>(`/api/runs${query}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('E_BAD_REQUEST');
      if (field !== '') expect(res.body.issues.map((i) => i.path)).toContain(field);
    }
  });
});

describe('visibility', () => {
  test('a client lists its own organization’s runs only, whatever it searches or filters', async () => {
    expect(ids((await list('', 'client')).body)).toEqual(['run-4', 'run-3', 'run-2', 'run-1']);
    expect(ids((await list('?organization=org-b', 'client')).body)).toEqual([]);
    expect(ids((await list('?q=tube', 'client')).body)).toEqual([]);
    expect(ids((await list('', 'client-b')).body)).toEqual(['run-7', 'run-6', 'run-5']);
    expect((await t.fetch('/api/runs', {}, null)).status).toBe(401);
  });
});

describe('verdict and the time a range bounds (the overview’s figures link to these filters)', () => {
  test('verdict keeps the completed runs with that overall verdict; time=started|ended bounds the start or the end', async () => {
    const gwB = await TestGateway.connect(t, 'gw-b');
    try {
      await gwB.announce([{ id: 'ut-2', identity: { maker: 'Zwick', model: 'Z100', serialNumber: '2' }, channels: [{ name: 'force', unit: 'kN' }] }]);
      await waitFor('the instrument', () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'ut-2'").get() !== undefined);
      const limited = {
        id: 'limited',
        standard: 'ISO 6892-1:2019',
        title: 'Tensile testing with a limit',
        definition: {
          measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
          limits: [{ measurand: 'force', max: 100 }],
          decisionRule: { kind: 'simple-acceptance' },
          results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { max: 100 } }],
        },
      };
      expect((await call('/api/methods', postJson(limited))).status).toBe(201);
      let seq = 0;
      const before = Date.now();
      const completed = async (values: number[] | undefined): Promise<string> => {
        const run = await call<{ id: string }>('/api/runs', postJson({ sample: 'S-1', method: 'limited', instruments: ['ut-2'] }));
        expect(run.status).toBe(201);
        expect((await call(`/api/runs/${run.body.id}/start`, postJson({}))).status).toBe(200);
        if (values) {
          const now = Date.now();
          const samples = values.map((value, i) => ({
            seq: seq++,
            instrument: 'ut-2',
            channel: 'force',
            ts: now + i,
            value,
            unit: 'kN',
            quality: 'good' as const,
          }));
          expect(await send(t, gwB, gwB.sign(samples))).toBe('acked');
        }
        expect((await call(`/api/runs/${run.body.id}/stop`, postJson({}))).status).toBe(200);
        return run.body.id;
      };
      const pass = await completed([40, 52]);
      const fail = await completed([120]);
      const none = await completed(undefined);
      expect(ids((await list('?verdict=pass')).body)).toEqual([pass]);
      expect(ids((await list('?verdict=fail&state=completed')).body)).toEqual([fail]);
      // no record, no result with limits: no decision (the runs of the first tests were never completed: no verdict)
      expect(ids((await list('?verdict=no-decision')).body)).toEqual([none]);
      expect(ids((await list('?verdict=pass', 'client')).body)).toEqual([pass]);
      expect(ids((await list('?verdict=pass', 'client-b')).body)).toEqual([]);

      // run-2 started and run-3 was aborted (ended) before `before`; the three above started and ended after it
      expect(ids((await list(`?time=started&from=${before}`)).body)).toEqual([none, fail, pass]);
      expect(ids((await list(`?time=ended&from=${before}`)).body)).toEqual([none, fail, pass]);
      expect(ids((await list(`?time=started&to=${before}`)).body)).toEqual(['run-2']);
      expect(ids((await list(`?time=ended&to=${before}`)).body)).toEqual(['run-3']);
      // created: the default
      expect(ids((await list(`?time=created&from=${before}`)).body)).toEqual(ids((await list(`?from=${before}`)).body));

      for (const [query, field] of [
        ['?verdict=passed', 'verdict'],
        ['?time=issued', 'time'],
      ] as const) {
        const res = await call<{ code: string; issues: { path: string }[] }>(`/api/runs${query}`);
        expect(res.status).toBe(400);
        expect(res.body.issues.map((i) => i.path)).toContain(field);
      }
    } finally {
      await gwB.end();
    }
  });
});
