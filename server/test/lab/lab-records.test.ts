// The samples and methods lists: pages newest first that show every record exactly once, search and filters on
// the server, bad queries refused naming the field, a client seeing its own organization's samples only, and a
// `changed` announcement over socket.io when a sample or a method is created or changed.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ListChange, ServerToClientEvents } from '@labtrace/protocols';
import { addOtherClient, jsonCaller, ORGANIZATION, postJson, startServer, waitFor, type TestServer } from '../helpers/server.js';

let t: TestServer;
let otherClientToken: string;
const sockets: Socket[] = [];
const DAY = 86_400_000;
/** receipt times: sample i was received on day i after this */
const RECEIVED = Date.UTC(2026, 10, 1, 8);

beforeAll(async () => {
  t = await startServer();
  otherClientToken = await addOtherClient(t);
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await t.stop();
});

const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
interface Page<T> {
  items: T[];
  next: string | null;
}
interface Issue {
  path: string;
  message: string;
}
type Refusal = { error: string; code: string; issues: Issue[] };

/** every item of a list, page by page: the pages answered and the ids in order */
async function everyPage(
  path: string,
  limit: number,
  role: Parameters<typeof call>[2] = 'technician',
  from: string | null = null,
): Promise<{ pages: number; ids: string[] }> {
  const ids: string[] = [];
  let cursor: string | null = from;
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const res: { status: number; body: Page<{ id: string }> } = await call<Page<{ id: string }>>(
      `${path}${sep}limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`,
      {},
      role,
    );
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.items.map((i) => i.id));
    cursor = res.body.next;
    pages += 1;
  } while (cursor !== null && pages < 100);
  return { pages, ids };
}

const sample = (i: number, organization = ORGANIZATION, description = `steel bar ${i}`) => ({
  id: `S-${String(i).padStart(3, '0')}`,
  organization,
  description,
  condition: 'intact',
  receivedAt: RECEIVED + i * DAY,
});

const method = (id: string, standard: string, title: string, max = 100) => ({
  id,
  standard,
  title,
  definition: {
    measurands: [{ name: 'force', unit: 'kN', channel: 'force' }],
    limits: [{ measurand: 'force', min: 0, max }],
    decisionRule: { kind: 'simple-acceptance' },
    rules: [{ id: 'force-high', kind: 'limits', channel: 'force', high: max, severity: 'alarm' }],
  },
});

describe('samples', () => {
  // 23 samples: 0..14 of org-a (the test client's), 15..22 of org-b; a few with a Chinese description, one with % and _
  const created: string[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 23; i++) {
      const description = i === 4 ? '钢筋 HRB400，直径 12 mm' : i === 7 ? 'bar 100%_a' : i === 9 ? 'bar 1000a' : `steel bar ${i}`;
      const res = await call('/api/lab-samples', postJson(sample(i, i < 15 ? ORGANIZATION : 'org-b', description)));
      expect(res.status).toBe(201);
      created.push(sample(i).id);
    }
  });

  test('pages newest first show every sample exactly once', async () => {
    const { pages, ids } = await everyPage('/api/lab-samples', 5);
    expect(pages).toBe(5);
    expect(ids).toEqual([...created].reverse());
  });

  test('a sample registered while paging does not shift the pages already read', async () => {
    const first = await call<Page<{ id: string }>>('/api/lab-samples?limit=10');
    expect((await call('/api/lab-samples', postJson({ ...sample(50), id: 'S-new' }))).status).toBe(201);
    const rest = await everyPage('/api/lab-samples', 10, 'technician', first.body.next);
    const seen = [...first.body.items.map((i) => i.id), ...rest.ids];
    expect(seen).toEqual([...created].reverse());
    // the new one leads the next first page
    expect((await call<Page<{ id: string }>>('/api/lab-samples?limit=1')).body.items.map((i) => i.id)).toEqual(['S-new']);
  });

  test('q finds a text in the id, the description or the customer, with % and _ taken literally', async () => {
    const ids = async (query: string) =>
      (await call<Page<{ id: string }>>(`/api/lab-samples?limit=500&q=${encodeURIComponent(query)}`)).body.items.map((i) => i.id);
    expect(await ids('钢筋')).toEqual(['S-004']);
    expect(await ids('S-01')).toEqual(['S-019', 'S-018', 'S-017', 'S-016', 'S-015', 'S-014', 'S-013', 'S-012', 'S-011', 'S-010']);
    expect(await ids('100%_')).toEqual(['S-007']);
    // without escaping, "%" and "_" would match S-009's "1000a"
    expect(await ids('10%a')).toEqual([]);
    // the customer: its id, or its name
    expect((await ids('org-b')).length).toBe(8);
    expect((await ids('client b')).length).toBe(8);
  });

  test('filters: the customer and the time of receipt, with search and paging together', async () => {
    const org = await everyPage('/api/lab-samples?organization=org-b', 3);
    expect(org.ids).toEqual(created.slice(15).reverse());
    const from = RECEIVED + 3 * DAY;
    const to = RECEIVED + 6 * DAY;
    const range = await call<Page<{ id: string; receivedAt: number }>>(`/api/lab-samples?receivedFrom=${from}&receivedTo=${to}`);
    expect(range.body.items.map((i) => i.id)).toEqual(['S-006', 'S-005', 'S-004', 'S-003']);
    const both = await everyPage(`/api/lab-samples?organization=${ORGANIZATION}&q=steel&receivedFrom=${RECEIVED + 10 * DAY}`, 2);
    expect(both.ids).toEqual(['S-new', 'S-014', 'S-013', 'S-012', 'S-011', 'S-010']);
  });

  test('a client sees only its own organization’s samples, whatever it asks for', async () => {
    const own = await everyPage('/api/lab-samples', 4, 'client');
    expect(own.ids).toEqual(['S-new', ...created.slice(0, 15).reverse()]);
    expect((await everyPage('/api/lab-samples?organization=org-b', 4, 'client')).ids).toEqual([]);
    expect((await everyPage('/api/lab-samples?q=org-b', 4, 'client')).ids).toEqual([]);
    expect((await everyPage('/api/lab-samples', 50, 'client-b')).ids).toEqual(created.slice(15).reverse());
    expect((await call('/api/lab-samples/S-016', {}, 'client')).status).toBe(404);
  });

  test.each([
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=ten', 'limit'],
    ['cursor=-1', 'cursor'],
    ['cursor=abc', 'cursor'],
    ['receivedFrom=yesterday', 'receivedFrom'],
    ['receivedFrom=1', 'receivedFrom'],
    [`receivedFrom=${RECEIVED}&receivedTo=${RECEIVED - 1}`, 'receivedTo'],
    ['organization=' + encodeURIComponent('a b'), 'organization'],
    [`q=${'x'.repeat(201)}`, 'q'],
    ['q=%00', 'q'],
    ['colour=red', ''],
  ])('a bad query (%s) is a 400 naming %s', async (query, field) => {
    const res = await call<Refusal>(`/api/lab-samples?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('E_BAD_REQUEST');
    if (field !== '') expect(res.body.issues.map((i) => i.path)).toContain(field);
    else expect(res.body.error).toMatch(/colour/);
  });

  test('a registration with bad fields is a 400 naming each', async () => {
    const res = await call<Refusal>(
      '/api/lab-samples',
      postJson({ id: 'bad id', organization: ORGANIZATION, description: '', condition: 'ok', receivedAt: 5 }),
    );
    expect(res.status).toBe(400);
    expect(res.body.issues.map((i) => i.path).sort()).toEqual(['description', 'id', 'receivedAt']);
  });
});

describe('methods', () => {
  beforeAll(async () => {
    for (let i = 0; i < 12; i++)
      expect(
        (
          await call(
            '/api/methods',
            postJson(method(`m-${String(i).padStart(2, '0')}`, i % 2 === 0 ? 'ISO 6892-1:2019' : 'GB/T 228.1-2021', `Tensile ${i}`)),
          )
        ).status,
      ).toBe(201);
  });

  test('one item per method in its newest version, newest method first, every method once across pages', async () => {
    // m-03 gets two more versions while the list is read: it keeps its place and shows its newest version
    const first = await call<Page<{ id: string; version: number }>>('/api/methods?limit=5');
    for (const max of [90, 80])
      expect(
        (
          await call(
            '/api/methods/m-03/versions',
            postJson({ ...method('m-03', 'GB/T 228.1-2021', 'Tensile 3', max), id: undefined, reason: `limit ${max}` }),
          )
        ).status,
      ).toBe(201);
    const rest = await everyPage('/api/methods', 5, 'technician', first.body.next);
    const ids = [...first.body.items.map((i) => i.id), ...rest.ids];
    expect(ids).toEqual(['m-11', 'm-10', 'm-09', 'm-08', 'm-07', 'm-06', 'm-05', 'm-04', 'm-03', 'm-02', 'm-01', 'm-00']);
    const all = await call<Page<{ id: string; version: number; definition: { limits: { max: number }[] } }>>('/api/methods?limit=500');
    const m3 = all.body.items.find((m) => m.id === 'm-03');
    expect(m3).toMatchObject({ version: 3, definition: { limits: [{ max: 80 }] } });
    expect(all.body.items.filter((m) => m.id === 'm-03')).toHaveLength(1);
    // its versions, oldest first, on its own route
    expect((await call<{ version: number }[]>('/api/methods/m-03')).body.map((m) => m.version)).toEqual([1, 2, 3]);
  });

  test('q finds a text in the id, the standard or the title', async () => {
    const ids = async (query: string) =>
      (await call<Page<{ id: string }>>(`/api/methods?limit=500&q=${encodeURIComponent(query)}`)).body.items.map((i) => i.id);
    expect(await ids('GB/T 228')).toEqual(['m-11', 'm-09', 'm-07', 'm-05', 'm-03', 'm-01']);
    expect(await ids('tensile 1')).toEqual(['m-11', 'm-10', 'm-01']);
    expect(await ids('m-0')).toHaveLength(10);
    expect(await ids('nothing like it')).toEqual([]);
  });

  test('every role that reads methods pages them; a bad query is a 400 naming the field', async () => {
    for (const role of ['admin', 'signatory', 'auditor', 'client'] as const)
      expect((await call<Page<unknown>>('/api/methods?limit=2', {}, role)).body.items).toHaveLength(2);
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['cursor=x', 'cursor'],
      [`q=${'y'.repeat(201)}`, 'q'],
    ] as const) {
      const res = await call<Refusal>(`/api/methods?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.issues.map((i) => i.path)).toContain(field);
    }
  });

  test('a client may not create a method or a sample (403)', async () => {
    expect((await call('/api/methods', postJson(method('m-client', 'X', 'Y')), 'client')).status).toBe(403);
    expect((await call('/api/lab-samples', postJson(sample(99)), 'client')).status).toBe(403);
    expect((await call('/api/methods', postJson(method('m-sig', 'X', 'Y')), 'signatory')).status).toBe(403);
  });
});

describe('customers', () => {
  test('the lab’s workers read the organizations to pick a sample’s customer; other roles are refused (403)', async () => {
    for (const role of ['technician', 'admin'] as const) {
      const res = await call<{ id: string; name: string }[]>('/api/organizations', {}, role);
      expect(res.status).toBe(200);
      expect(res.body.map((o) => o.id).sort()).toEqual([ORGANIZATION, 'org-b']);
    }
    for (const role of ['signatory', 'auditor', 'client'] as const) expect((await call('/api/organizations', {}, role)).status).toBe(403);
  });
});

describe('live', () => {
  function connect(token: string): Socket<ServerToClientEvents, ClientToServerEvents> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, {
      transports: ['websocket'],
      auth: { token },
      reconnection: false,
    });
    sockets.push(socket);
    return socket;
  }
  const connected = (s: Socket): Promise<void> =>
    new Promise((resolve, reject) => (s.connected ? resolve() : s.once('connect', () => resolve()).once('connect_error', reject)));

  test('a sample or a method created or changed is announced: the lab’s staff hear of all, a client of its own samples', async () => {
    const staff = connect(t.tokens.technician);
    const client = connect(t.tokens.client);
    const other = connect(otherClientToken);
    const heard = new Map<Socket<ServerToClientEvents, ClientToServerEvents>, ListChange[]>([
      [staff, []],
      [client, []],
      [other, []],
    ]);
    // the lists of samples and methods (the audit trail's own announcements, to the staff, are another test's)
    for (const [s, list] of heard) s.on('changed', (c: ListChange) => (c.list === 'samples' || c.list === 'methods' ? list.push(c) : undefined));
    await Promise.all([...heard.keys()].map(connected));
    expect((await call('/api/lab-samples', postJson({ ...sample(200), id: 'S-live-a' }))).status).toBe(201);
    expect((await call('/api/lab-samples', postJson({ ...sample(201, 'org-b'), id: 'S-live-b' }))).status).toBe(201);
    expect((await call('/api/methods', postJson(method('m-live', 'ISO 6892-1:2019', 'Live')))).status).toBe(201);
    expect(
      (await call('/api/methods/m-live/versions', postJson({ ...method('m-live', 'ISO 6892-1:2019', 'Live', 70), id: undefined, reason: 'tighter' })))
        .status,
    ).toBe(201);
    await waitFor('the staff hear of all four', () => heard.get(staff)?.length === 4);
    expect(heard.get(staff)).toEqual([
      { list: 'samples', id: 'S-live-a' },
      { list: 'samples', id: 'S-live-b' },
      { list: 'methods', id: 'm-live' },
      { list: 'methods', id: 'm-live' },
    ]);
    await waitFor('each client hears of its own sample', () => heard.get(client)?.length === 1 && heard.get(other)?.length === 1);
    expect(heard.get(client)).toEqual([{ list: 'samples', id: 'S-live-a' }]);
    expect(heard.get(other)).toEqual([{ list: 'samples', id: 'S-live-b' }]);
  });
});
