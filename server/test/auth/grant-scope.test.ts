// An auditor's grant limited to some customer organizations: over REST and socket.io the auditor sees
// those organizations' samples, runs, records and audit entries and nothing of the others' (404 like
// an unknown record), no lab-wide measurement stream; grants are validated, audited as privilege changes,
// and take effect at once.
import type { Page } from '@labtrace/protocols/api';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, RunWatchAnswer, ServerToClientEvents } from '@labtrace/protocols';
import type { AuditEntry } from '../../src/index.js';
import { addOtherClient, ORGANIZATION, postJson, records, send, startServer, TestGateway, type TestServer, waitFor } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;
/** the auditor whose grant covers org-b only, and one of the same kind over all organizations */
let scoped: string;
const sockets: Socket[] = [];
const PASSWORD = 'auditor-b-secret-for-tests';
const setup = { username: 'test-setup', role: 'system' };

beforeAll(async () => {
  t = await startServer();
  await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => t.server.database.sqlite.prepare("SELECT 1 FROM instruments WHERE id = 'ut-1'").get() !== undefined);
  for (const [id, organization] of [
    ['S-a', ORGANIZATION],
    ['S-b', 'org-b'],
  ] as const)
    await t.server.labRecords.createSample(setup, { id, organization, description: 'bar', condition: 'intact', receivedAt: Date.now() });
  await t.server.labRecords.createMethod(setup, {
    id: 'm-1',
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
  const technician = { username: 'technician', role: 'technician' };
  await t.server.runs.create(technician, { sample: 'S-a', method: 'm-1', instruments: ['ut-1'] }); // run-1, org-a
  await t.server.runs.create(technician, { sample: 'S-b', method: 'm-1', instruments: ['ut-1'] }); // run-2, org-b
  const res = await t.fetch(
    '/api/users',
    postJson({ username: 'auditor-b', role: 'auditor', password: PASSWORD, grantUntil: Date.now() + 86_400_000, grantOrganizations: ['org-b'] }),
  );
  expect(res.status).toBe(201);
  expect(await res.json()).toMatchObject({ username: 'auditor-b', grantOrganizations: ['org-b'] });
  scoped = (await t.server.users.createApiToken(setup, 'auditor-b', 'tests', 86_400_000)).token;
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await gw.end();
  await t.stop();
});

const as = (token: string, path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${t.base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
// a list answers an array or, paged, `{ items }`; the ids sorted, as the test asks which records, not their order
const ids = async (res: Response): Promise<string[]> => {
  const body = (await res.json()) as { id: string }[] | { items: { id: string }[] };
  return (Array.isArray(body) ? body : body.items).map((r) => r.id).sort();
};

describe('REST', () => {
  test('lists only the granted organizations’ samples and runs; the auditor over all sees both', async () => {
    expect(await ids(await as(scoped, '/api/lab-samples'))).toEqual(['S-b']);
    expect(await ids(await as(scoped, '/api/runs'))).toEqual(['run-2']);
    expect(await ids(await t.fetch('/api/runs', {}, 'auditor'))).toEqual(['run-1', 'run-2']);
    // samples are paged, newest first
    expect(await ids(await t.fetch('/api/lab-samples', {}, 'auditor'))).toEqual(['S-a', 'S-b']);
  });

  test('another organization’s sample, run, records and alarms answer 404 exactly like unknown ones', async () => {
    for (const [path, unknown] of [
      ['/api/lab-samples/S-a', '/api/lab-samples/S-zz'],
      ['/api/runs/run-1', '/api/runs/run-99'],
      ['/api/runs/run-1/records', '/api/runs/run-99/records'],
      ['/api/runs/run-1/alarms', '/api/runs/run-99/alarms'],
      ['/api/runs/run-1/results', '/api/runs/run-99/results'],
    ] as const) {
      const denied = await as(scoped, path);
      const none = await as(scoped, unknown);
      expect([path, denied.status]).toEqual([path, 404]);
      expect(none.status).toBe(404);
      const text = ((await denied.json()) as { error: string }).error;
      expect(text).toBe(((await none.json()) as { error: string }).error.replace(/S-zz|run-99/, (m) => (m === 'S-zz' ? 'S-a' : 'run-1')));
    }
    for (const path of ['/api/lab-samples/S-b', '/api/runs/run-2', '/api/runs/run-2/records', '/api/runs/run-2/alarms'])
      expect([path, (await as(scoped, path)).status]).toEqual([path, 200]);
  });

  test('raw measurement streams of every client are refused; the lab’s own records are not', async () => {
    for (const path of ['/api/instruments/ut-1/series?from=0&to=1', '/api/instruments/ut-1/history', '/api/log/measurement/gw-a/1'])
      expect([path, (await as(scoped, path)).status]).toEqual([path, 403]);
    expect((await as(scoped, '/api/instruments')).status).toBe(200);
    expect((await as(scoped, '/api/instruments/ut-1/calibrations')).status).toBe(200);
  });

  test('the audit trail shows the lab’s records and the granted organizations’, not the others’', async () => {
    const trail = ((await (await as(scoped, '/api/audit-trail?limit=500')).json()) as Page<AuditEntry>).items;
    const about = (type: string, id: string): boolean => trail.some((e) => e.recordType === type && e.recordId === id);
    expect(about('lab-sample', 'S-b')).toBe(true);
    expect(about('run', 'run-2')).toBe(true);
    expect(about('method', 'm-1')).toBe(true);
    expect(about('user', 'client-b')).toBe(true);
    expect(about('organization', 'org-b')).toBe(true);
    expect(about('lab-sample', 'S-a')).toBe(false);
    expect(about('run', 'run-1')).toBe(false);
    expect(about('user', 'client')).toBe(false);
    expect(about('organization', ORGANIZATION)).toBe(false);
    const everything = ((await (await t.fetch('/api/audit-trail?limit=500', {}, 'auditor')).json()) as Page<AuditEntry>).items;
    expect(everything.some((e) => e.recordType === 'run' && e.recordId === 'run-1')).toBe(true);
    // the export holds the same selection
    const exported = await (await as(scoped, '/api/audit-trail/export')).text();
    expect(exported).toContain('"recordId":"S-b"');
    expect(exported).not.toContain('"recordId":"S-a"');
  });

  test('the auditor changes nothing', async () => {
    expect((await as(scoped, '/api/runs/run-2/abort', postJson({ reason: 'x' }))).status).toBe(403);
    expect(
      (await as(scoped, '/api/lab-samples', postJson({ id: 'S-c', organization: 'org-b', description: 'd', condition: 'c', receivedAt: Date.now() })))
        .status,
    ).toBe(403);
  });
});

function connect(token: string): Socket<ServerToClientEvents, ClientToServerEvents> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(t.base, { transports: ['websocket'], auth: { token }, reconnection: false });
  sockets.push(socket);
  return socket;
}
const watch = (socket: Socket<ServerToClientEvents, ClientToServerEvents>, run: string): Promise<RunWatchAnswer> =>
  new Promise((resolve) => socket.emit('run:watch', run, resolve));
const connected = (socket: Socket): Promise<void> =>
  new Promise((resolve) => (socket.connected ? resolve() : socket.once('connect', () => resolve())));

describe('socket.io', () => {
  test('watches a granted organization’s run, not another’s; gets no lab-wide stream', async () => {
    const auditorB = connect(scoped);
    const full = connect(t.tokens.auditor);
    await Promise.all([connected(auditorB), connected(full)]);
    const seen: string[] = [];
    for (const [name, s] of [
      ['scoped', auditorB],
      ['full', full],
    ] as const) {
      s.on('run:samples', (run) => seen.push(`${name} ${run}`));
      s.on('samples', () => seen.push(`${name} lab`));
    }
    expect(await watch(auditorB, 'run-1')).toEqual({ ok: false, error: 'run "run-1" is not known' });
    expect(await watch(auditorB, 'run-2')).toEqual({ ok: true, state: 'planned' });
    expect(await watch(full, 'run-1')).toEqual({ ok: true, state: 'planned' });
    expect(await watch(full, 'run-2')).toEqual({ ok: true, state: 'planned' });
    await t.server.runs.start({ username: 'technician', role: 'technician' }, 'run-1');
    expect(await send(t, gw, gw.sign(records('ut-1', 1, 2)))).toBe('acked');
    await waitFor('the full auditor to receive run-1 and the lab stream', () => seen.includes('full run-1') && seen.includes('full lab'));
    await t.server.runs.abort({ username: 'technician', role: 'technician' }, 'run-1', 'end of the test');
    await t.server.runs.start({ username: 'technician', role: 'technician' }, 'run-2');
    expect(await send(t, gw, gw.sign(records('ut-1', 3, 2)))).toBe('acked');
    await waitFor('the scoped auditor to receive run-2', () => seen.includes('scoped run-2') && seen.includes('full run-2'));
    expect(seen.filter((s) => s.startsWith('scoped'))).toEqual(['scoped run-2']);
  });
});

describe('grants', () => {
  const patch = (body: unknown): Promise<Response> =>
    t.fetch('/api/users/auditor-b', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('are validated, naming the field', async () => {
    const create = async (body: Record<string, unknown>): Promise<string> =>
      (
        (await (await t.fetch('/api/users', postJson({ username: 'x-aud', role: 'auditor', grantUntil: Date.now() + 1000, ...body }))).json()) as {
          error: string;
        }
      ).error;
    expect(await create({ grantOrganizations: ['org-zz'] })).toMatch(/body: grantOrganizations\[0\]: "org-zz" is not known/);
    expect(await create({ grantOrganizations: [] })).toMatch(/grantOrganizations: .*at least one organization/);
    expect(await create({ grantOrganizations: ['org-b', 'org-b'] })).toMatch(/grantOrganizations: .*listed twice/);
    expect(await create({ role: 'technician', grantOrganizations: ['org-b'] })).toMatch(/body: grantOrganizations: only an auditor has a grant/);
    expect((await patch({ grantOrganizations: ['org-b'] })).status).toBe(400); // no reason
  });

  test('a change is a privilege change in the audit trail, with the old and new grant, and ends the sessions at once', async () => {
    const socket = connect(scoped);
    await connected(socket);
    const closed = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
    const res = await patch({ grantOrganizations: [ORGANIZATION, 'org-b'], reason: 'audit extended to client A' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ grantOrganizations: [ORGANIZATION, 'org-b'] });
    await closed;
    expect((await as(scoped, '/api/runs')).status).toBe(401);
    const [entry] = (
      (await (await t.fetch('/api/audit-trail?recordType=user&recordId=auditor-b&action=privilege-change')).json()) as Page<AuditEntry>
    ).items;
    expect(entry).toMatchObject({
      actor: 'admin',
      oldValue: expect.objectContaining({ grantOrganizations: ['org-b'] }),
      newValue: expect.objectContaining({ grantOrganizations: [ORGANIZATION, 'org-b'] }),
      reason: 'audit extended to client A',
    });
    const again = (await t.server.users.createApiToken(setup, 'auditor-b', 'tests', 86_400_000)).token;
    expect(await ids(await as(again, '/api/runs'))).toEqual(['run-1', 'run-2']);
    // null: every organization
    expect((await patch({ grantOrganizations: null, reason: 'full audit' })).status).toBe(200);
    expect((await t.server.users.get('auditor-b'))?.grantOrganizations).toBeNull();
  });
});
