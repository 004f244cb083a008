// The lists the dashboard reads again and again (the instruments, the runs) answer with an ETag; asked again with
// If-None-Match, the same list answers 304 without a body, and a list that changed answers 200 with the new list and
// a new ETag. The answer is still never stored (cache-control: no-store): the page itself keeps the body. The
// requests go through fetch(), as the dashboard's do: fetch() adds `Cache-Control: no-cache` to a request that sets
// If-None-Match itself, which Express's own check takes as "never 304".
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { jsonCaller, ORGANIZATION, postJson, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
const call = jsonCaller(
  () => t,
  () => '',
);
const instrumentCount = () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n;

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => instrumentCount() === 1);
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

/** GET `path` as the technician, with If-None-Match when `etag` is given */
async function get(path: string, etag?: string): Promise<{ status: number; etag: string | null; cacheControl: string | null; text: string }> {
  const res = await t.fetch(path, etag === undefined ? {} : { headers: { 'if-none-match': etag } }, 'technician');
  return { status: res.status, etag: res.headers.get('etag'), cacheControl: res.headers.get('cache-control'), text: await res.text() };
}

/** the list read, read again unchanged (304), then changed by `change` (200, another ETag); answers the last body */
async function revalidates(path: string, change: () => Promise<void>): Promise<string> {
  const first = await get(path);
  expect(first.status).toBe(200);
  expect(first.etag).toMatch(/^(W\/)?"[^"]+"$/);
  expect(first.cacheControl).toBe('no-store');
  const again = await get(path, first.etag ?? '');
  expect(again).toMatchObject({ status: 304, text: '', etag: first.etag, cacheControl: 'no-store' });
  // another ETag (a list the page does not have): the list
  expect((await get(path, 'W/"0-not-this-one"')).status).toBe(200);
  await change();
  const changed = await get(path, first.etag ?? '');
  expect(changed.status).toBe(200);
  expect(changed.etag).not.toBe(first.etag);
  expect(changed.text).not.toBe(first.text);
  expect((await get(path, changed.etag ?? '')).status).toBe(304);
  return changed.text;
}

describe('ETag and 304 for the lists the dashboard reads again', () => {
  test('GET /api/instruments: 304 while the list is the same, 200 once an instrument is added', async () => {
    const body = await revalidates('/api/instruments', async () => {
      await gw.birth('ut-1', 'ut-2');
      await waitFor('the second instrument', () => instrumentCount() === 2);
    });
    expect((JSON.parse(body) as { id: string }[]).map((i) => i.id)).toEqual(['ut-1', 'ut-2']);
  });

  test('GET /api/runs: 304 while the list is the same, 200 once a run is created', async () => {
    const method = {
      id: 'tensile',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing',
      definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' } },
    };
    expect((await call('/api/methods', postJson(method))).status).toBe(201);
    const sample = { id: 'S-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: Date.now() - 60_000 };
    expect((await call('/api/lab-samples', postJson(sample))).status).toBe(201);
    const create = async () => {
      expect((await call('/api/runs', postJson({ sample: 'S-1', method: 'tensile', instruments: ['ut-1'] }))).status).toBe(201);
    };
    await create();
    const body = await revalidates('/api/runs', create);
    expect((JSON.parse(body) as { items: unknown[] }).items).toHaveLength(2);
  });

  test("an ETag stands for one body, not one path: another query's list is answered in full", async () => {
    const all = await get('/api/runs');
    expect(all.status).toBe(200);
    const none = await get('/api/runs?state=aborted', all.etag ?? '');
    expect(none.status).toBe(200);
    expect((JSON.parse(none.text) as { items: unknown[] }).items).toEqual([]);
  });
});
