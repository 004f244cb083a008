// A user's own language and time zone, kept on the server: null follows the browser; changed by the user
// (any role, even before the one-time password is changed), answered by GET /api/auth/me and the login, audited.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { api, apiErrorSchema } from '@labtrace/protocols/api';
import { startServer, USER_PASSWORD, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

const patch = (body: unknown, token: string): Promise<Response> =>
  fetch(`${t.base}/api/auth/preferences`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const login = async (username: string, password: string) => {
  const res = await fetch(`${t.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  expect(res.status).toBe(200);
  return api.login.response.parse(await res.json());
};
const me = async (token: string) =>
  api.me.response.parse(await (await fetch(`${t.base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })).json());

test('a new user follows the browser: locale and time zone are null', async () => {
  const { user, token } = await login('client', USER_PASSWORD);
  expect(user).toMatchObject({ locale: null, timeZone: null });
  expect(await me(token)).toMatchObject({ username: 'client', locale: null, timeZone: null });
});

test('each role sets its own language and time zone; me and the next login answer them; the trail records the change', async () => {
  for (const role of ['admin', 'technician', 'signatory', 'client', 'auditor'] as const) {
    const res = await patch({ locale: 'zh-CN', timeZone: 'Asia/Shanghai' }, t.tokens[role]);
    expect(res.status).toBe(200);
    expect(api.updatePreferences.response.parse(await res.json())).toMatchObject({ username: role, locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
  }
  expect(await me(t.tokens.client)).toMatchObject({ locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
  expect((await login('client', USER_PASSWORD)).user).toMatchObject({ locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
  // one field at a time: the other is kept; null goes back to the browser's
  expect(await (await patch({ timeZone: null }, t.tokens.client)).json()).toMatchObject({ locale: 'zh-CN', timeZone: null });
  expect(await (await patch({ locale: 'en' }, t.tokens.client)).json()).toMatchObject({ locale: 'en', timeZone: null });
  const trail = await t.server.audit.list({ recordType: 'user-preferences', recordId: 'client', limit: 10 });
  expect(trail.map((e) => [e.actor, e.action, e.oldValue, e.newValue])).toEqual([
    ['client', 'update', { locale: null, timeZone: null }, { locale: 'zh-CN', timeZone: 'Asia/Shanghai' }],
    ['client', 'update', { locale: 'zh-CN', timeZone: 'Asia/Shanghai' }, { locale: 'zh-CN', timeZone: null }],
    ['client', 'update', { locale: 'zh-CN', timeZone: null }, { locale: 'en', timeZone: null }],
  ]);
  // a zone is kept as Intl spells it
  expect(await (await patch({ timeZone: 'asia/shanghai' }, t.tokens.auditor)).json()).toMatchObject({ timeZone: 'Asia/Shanghai' });
  // another user's preferences are untouched
  expect(await me(t.tokens.technician)).toMatchObject({ locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
});

test('a user who must still change a one-time password may set preferences', async () => {
  const created = await t.fetch('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'newcomer', role: 'technician' }),
  });
  const { oneTimePassword } = api.createUser.response.parse(await created.json());
  const { token, user } = await login('newcomer', oneTimePassword ?? '');
  expect(user.mustChange).toBe(true);
  const res = await patch({ locale: 'en', timeZone: 'Europe/Berlin' }, token);
  expect(res.status).toBe(200);
  expect(await me(token)).toMatchObject({ mustChange: true, locale: 'en', timeZone: 'Europe/Berlin' });
});

test('bad preferences: a 400 naming the field, with a code a client translates', async () => {
  const cases: [unknown, string, string][] = [
    [{ timeZone: 'Mars/Olympus_Mons' }, 'timeZone', 'custom'],
    [{ timeZone: '' }, 'timeZone', 'custom'],
    [{ locale: 'fr' }, 'locale', 'invalid_value'],
    [{ locale: 'zh-CN', theme: 'dark' }, '(root)', 'unrecognized_keys'],
    [{}, '(root)', 'custom'],
    [{ timeZone: 8 }, 'timeZone', 'invalid_type'],
  ];
  for (const [body, path, code] of cases) {
    const res = await patch(body, t.tokens.client);
    expect(res.status).toBe(400);
    const answer = apiErrorSchema.parse(await res.json());
    expect(answer).toMatchObject({ code: 'E_BAD_REQUEST', reason: 'request.invalid' });
    expect(answer.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path, code })]));
  }
  expect(await me(t.tokens.client)).toMatchObject({ locale: 'en', timeZone: null });
});

test('without a credential: 401', async () => {
  const res = await fetch(`${t.base}/api/auth/preferences`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ locale: 'en' }),
  });
  expect(res.status).toBe(401);
});
