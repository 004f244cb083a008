// The authorization matrix, generated from the policy and the routes the server really serves: every
// route x every role (and anonymous) is allowed or denied as its rule says.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import { route } from '../../src/auth/policy.js';
import { POLICY, ROLES, type Role, type RouteRule } from '../../src/index.js';
import { addTestUsers, ORGANIZATION, startServer, USER_PASSWORD, type TestServer } from '../helpers/server.js';

let t: TestServer;
/** an auditor whose grant covers one organization: refused what shows every client's data (scope 'every-organization') */
const SCOPED_AUDITOR = 'scoped-auditor';
beforeAll(async () => {
  t = await startServer();
  await t.server.users.create(
    { username: 'matrix', role: 'system' },
    { username: SCOPED_AUDITOR, role: 'auditor', password: USER_PASSWORD, grantUntil: Date.now() + 86_400_000, grantOrganizations: [ORGANIZATION] },
  );
});
afterAll(async () => {
  await t.stop();
});

/** path parameters that name nothing, so that an allowed request reaches its handler and changes nothing */
const SAMPLE: Record<string, string> = { id: 'x-1', username: 'nobody', gateway: 'gw-a', seq: '1' };
const fill = (path: string): string => path.replace(/:(\w+)/g, (_, name: string) => SAMPLE[name] ?? 'x');

async function call(rule: RouteRule, role: Role | typeof SCOPED_AUDITOR | null): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  // a fresh token per request: a logout or a password reset may end the ones before
  if (role !== null)
    headers['authorization'] =
      `Bearer ${(await t.server.users.createApiToken({ username: 'matrix', role: 'system' }, role === SCOPED_AUDITOR ? SCOPED_AUDITOR : role, 'matrix', 60_000)).token}`;
  const res = await fetch(`${t.base}${fill(rule.path)}`, { method: rule.method, headers, ...(rule.method === 'GET' ? {} : { body: '{}' }) });
  await res.arrayBuffer();
  return res.status;
}

test('every route the server serves has a rule, and every rule a route', () => {
  const routes = t.server.routes();
  // outside /api only the dashboard's static pages, public by design (the data they show comes from /api), and the
  // public verification page of certificates, which has its rules
  const ruledOutside = (r: { path: string }): boolean => r.path.startsWith('/api/') || r.path.startsWith('/verify/');
  expect(routes.filter((r) => !ruledOutside(r) && r.method !== 'GET')).toEqual([]);
  const served = routes.filter(ruledOutside).map((r) => `${r.method} ${r.path}`);
  const ruled = POLICY.map((r) => `${r.method} ${r.path}`);
  expect(served.filter((r) => !ruled.includes(r))).toEqual([]);
  expect(ruled.filter((r) => !served.includes(r))).toEqual([]);
  expect(new Set(ruled).size).toBe(ruled.length);
});

test('a route without a rule cannot be registered', () => {
  expect(() => route(express.Router(), 'GET', '/api/new-thing', (_req, res) => res.end())).toThrow(/no authorization rule for GET \/api\/new-thing/);
});

test('a public route says why, and a mutating route says where it is recorded', () => {
  for (const rule of POLICY) {
    if (rule.allow === 'public') expect({ rule: rule.path, why: typeof rule.why }).toEqual({ rule: rule.path, why: 'string' });
    if (rule.method !== 'GET')
      expect({ rule: `${rule.method} ${rule.path}`, audit: rule.audit !== undefined }).toEqual({ rule: `${rule.method} ${rule.path}`, audit: true });
  }
});

describe.each(POLICY.map((rule) => [`${rule.method} ${rule.path}`, rule] as const))('%s', (_name, rule) => {
  test.each([...ROLES, SCOPED_AUDITOR, null] as const)('as %s', async (role) => {
    const status = await call(rule, role);
    const allowed =
      rule.allow === 'public' ||
      (role === SCOPED_AUDITOR ? rule.allow.includes('auditor') && rule.scope !== 'every-organization' : role !== null && rule.allow.includes(role));
    if (allowed) expect([401, 403]).not.toContain(status);
    else expect(status).toBe(role === null ? 401 : 403);
  });
});

test('a bad or expired token is refused like none', async () => {
  expect((await fetch(`${t.base}/api/instruments`, { headers: { authorization: 'Bearer lta_not-a-token' } })).status).toBe(401);
});

describe('browser sessions', () => {
  beforeAll(async () => {
    // the matrix signed every role out (POST /api/auth/logout is allowed to all)
    t.tokens = await addTestUsers(t.server);
  });

  async function login(username: string): Promise<{ cookies: string; csrf: string; setCookie: string[] }> {
    const res = await fetch(`${t.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: USER_PASSWORD }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { csrf: string; token: string };
    const setCookie = res.headers.getSetCookie();
    return { cookies: setCookie.map((c) => c.split(';')[0]).join('; '), csrf: body.csrf, setCookie };
  }

  test('the session cookie is httpOnly and SameSite=Strict; the CSRF cookie is readable by the page', async () => {
    const { setCookie } = await login('signatory');
    const session = setCookie.find((c) => c.startsWith('labtrace_session='));
    const csrf = setCookie.find((c) => c.startsWith('labtrace_csrf='));
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Strict/);
    expect(csrf).not.toMatch(/HttpOnly/);
  });

  test('a cookie-authenticated change needs the CSRF header; a read does not', async () => {
    const { cookies, csrf } = await login('technician');
    expect((await fetch(`${t.base}/api/instruments`, { headers: { cookie: cookies } })).status).toBe(200);
    const post = (extra: Record<string, string>): Promise<Response> =>
      fetch(`${t.base}/api/auth/tokens`, {
        method: 'POST',
        headers: { cookie: cookies, 'content-type': 'application/json', ...extra },
        body: JSON.stringify({ name: 'script' }),
      });
    const forged = await post({});
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: string }).error).toMatch(/x-csrf-token/);
    expect((await post({ 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await post({ 'x-csrf-token': csrf })).status).toBe(201);
  });

  test('logout ends every session of the user, cookies and tokens alike', async () => {
    const first = await login('auditor');
    const second = await login('auditor');
    const res = await fetch(`${t.base}/api/auth/logout`, { method: 'POST', headers: { cookie: first.cookies, 'x-csrf-token': first.csrf } });
    expect(res.status).toBe(204);
    expect((await fetch(`${t.base}/api/auth/me`, { headers: { cookie: second.cookies } })).status).toBe(401);
    expect((await t.fetch('/api/auth/me', {}, 'technician')).status).toBe(200);
    expect((await t.fetch('/api/auth/me', {}, 'auditor')).status).toBe(401);
  });
});

describe('input', () => {
  beforeAll(async () => {
    t.tokens = await addTestUsers(t.server);
  });

  test('bodies are validated with field paths; unknown fields are refused', async () => {
    const res = await t.fetch('/api/users', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'A B', role: 'boss', extra: 1 }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; issues: { path: string }[] };
    expect(body.issues.map((i) => i.path).sort()).toEqual(['(root)', 'role', 'username']);
  });

  test('too large a body is 413, not 500', async () => {
    const res = await t.fetch(
      '/api/auth/login',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x'.repeat(200_000), password: 'y' }) },
      null,
    );
    expect(res.status).toBe(413);
  });
});

test('a one-time password opens nothing but the password change', async () => {
  const created = await t.fetch('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'newcomer', role: 'technician' }),
  });
  const { oneTimePassword } = (await created.json()) as { oneTimePassword: string };
  const login = async (password: string): Promise<string> => {
    const res = await fetch(`${t.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'newcomer', password }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  };
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  const first = await login(oneTimePassword);
  const refused = await fetch(`${t.base}/api/instruments`, { headers: bearer(first) });
  expect(refused.status).toBe(403);
  expect(((await refused.json()) as { error: string }).error).toMatch(/one-time password/);
  expect((await fetch(`${t.base}/api/auth/me`, { headers: bearer(first) })).status).toBe(200);
  const changed = await fetch(`${t.base}/api/auth/password`, {
    method: 'POST',
    headers: bearer(first),
    body: JSON.stringify({ currentPassword: oneTimePassword, newPassword: 'my-own-password-now' }),
  });
  expect(changed.status).toBe(204);
  expect((await fetch(`${t.base}/api/auth/me`, { headers: bearer(first) })).status).toBe(401);
  const second = await login('my-own-password-now');
  expect((await fetch(`${t.base}/api/instruments`, { headers: bearer(second) })).status).toBe(200);
});

test('behind a TLS proxy that is trusted, the session cookie is Secure; an untrusted X-Forwarded-Proto changes nothing', async () => {
  const proxied = await startServer({ http: { host: '127.0.0.1', port: 0, trustProxy: ['loopback'] } });
  try {
    const login = (base: string): Promise<Response> =>
      fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
        body: JSON.stringify({ username: 'technician', password: USER_PASSWORD }),
      });
    const behind = (await login(proxied.base)).headers.getSetCookie().find((c) => c.startsWith('labtrace_session='));
    expect(behind).toMatch(/; Secure/);
    const direct = (await login(t.base)).headers.getSetCookie().find((c) => c.startsWith('labtrace_session='));
    expect(direct).not.toMatch(/; Secure/);
  } finally {
    await proxied.stop();
  }
});
