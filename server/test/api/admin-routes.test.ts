// The admin's routes for the dashboard: enrollment tokens (shown once, listed while pending, revoked with a reason),
// a gateway key revoked with a reason (audit trail, security event, key event), API tokens listed and revoked, and
// the paged lists of users and security events. Bad input answers 400 naming the field; other roles 403.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { enrollmentProofBytes, formatVerifierKey, publicKeyFromSeed, signEd25519, toBase64 } from '@labtrace/protocols';
import { postJson, startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

async function json<T = Record<string, unknown>>(
  path: string,
  init: RequestInit = {},
  role: Parameters<TestServer['fetch']>[2] = 'admin',
): Promise<{ status: number; body: T }> {
  const res = await t.fetch(path, init, role);
  return { status: res.status, body: (await res.json()) as T };
}

interface Issue {
  path: string;
}
const fieldsOf = (body: unknown): string[] => ((body as { issues?: Issue[] }).issues ?? []).map((i) => i.path);

describe('enrollment tokens', () => {
  test('a token is answered once, listed without its secret while pending, and enrolls its gateway', async () => {
    const created = await json<{ id: number; token: string; gateway: string; expiresAt: number }>(
      '/api/gateways/enrollment-tokens',
      postJson({ gateway: 'gw-new', ttlHours: 2 }),
    );
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^lt-enroll-/);
    expect(created.body.expiresAt - Date.now()).toBeGreaterThan(3_600_000);
    const listed = await json<Record<string, unknown>[]>('/api/gateways/enrollment-tokens');
    const mine = listed.body.find((x) => x['id'] === created.body.id);
    expect(mine).toEqual({ id: created.body.id, gateway: 'gw-new', createdAt: expect.any(Number), expiresAt: created.body.expiresAt });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);

    const seed = new Uint8Array(32).fill(5);
    const key = formatVerifierKey('gw-new', publicKeyFromSeed(seed));
    const body = { token: created.body.token, gateway: 'gw-new', key };
    const enrolled = await t.fetch('/api/enroll', postJson({ ...body, proof: toBase64(signEd25519(enrollmentProofBytes(body), seed)) }), null);
    expect(enrolled.status).toBe(201);
    // enrolled, not yet connected: its key is listed with every gateway's
    const all = await json<{ gateway: string; status: string }[]>('/api/gateway-keys');
    expect(all.body).toContainEqual(expect.objectContaining({ gateway: 'gw-new', status: 'active' }));
    expect((await json('/api/gateway-keys', {}, 'client')).status).toBe(403);
    // used: no longer pending
    expect((await json<{ id: number }[]>('/api/gateways/enrollment-tokens')).body.map((x) => x.id)).not.toContain(created.body.id);
    const audit = await json<{ items: { action: string; recordType: string; recordId: string }[] }>('/api/audit-trail?recordType=enrollment-token');
    expect(audit.body.items).toContainEqual(expect.objectContaining({ action: 'create', recordId: `gw-new/${created.body.id}` }));
  });

  test('a revoked token leaves the list, is refused at enrollment, and the revocation is audited with its reason', async () => {
    const created = await json<{ id: number; token: string }>('/api/gateways/enrollment-tokens', postJson({ gateway: 'gw-lost' }));
    const noReason = await json(`/api/gateways/enrollment-tokens/${created.body.id}/revoke`, postJson({}));
    expect(noReason.status).toBe(400);
    expect(fieldsOf(noReason.body)).toContain('reason');
    const revoked = await json<{ id: number; expiresAt: number }>(
      `/api/gateways/enrollment-tokens/${created.body.id}/revoke`,
      postJson({ reason: 'sent to the wrong site' }),
    );
    expect(revoked.status).toBe(200);
    expect((await json<{ id: number }[]>('/api/gateways/enrollment-tokens')).body.map((x) => x.id)).not.toContain(created.body.id);
    const again = await json<{ reason: string }>(`/api/gateways/enrollment-tokens/${created.body.id}/revoke`, postJson({ reason: 'twice' }));
    expect(again).toMatchObject({ status: 404, body: { reason: 'record.not-found' } });
    const seed = new Uint8Array(32).fill(6);
    const key = formatVerifierKey('gw-lost', publicKeyFromSeed(seed));
    const body = { token: created.body.token, gateway: 'gw-lost', key };
    const enrolled = await t.fetch('/api/enroll', postJson({ ...body, proof: toBase64(signEd25519(enrollmentProofBytes(body), seed)) }), null);
    expect(enrolled.status).toBe(401);
    const audit = await json<{ items: { action: string; recordId: string; reason: string | null }[] }>(
      '/api/audit-trail?recordType=enrollment-token',
    );
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({ action: 'state-change', recordId: `gw-lost/${created.body.id}`, reason: 'sent to the wrong site' }),
    );
  });

  test('bad input names the field; other roles are refused', async () => {
    for (const [body, field] of [
      [{ gateway: 'has space' }, 'gateway'],
      [{ gateway: 'gw-x', ttlHours: 0 }, 'ttlHours'],
      [{ gateway: 'gw-x', ttlHours: 721 }, 'ttlHours'],
      [{ gateway: 'gw-x', ttlHours: 1.5 }, 'ttlHours'],
      [{ gateway: 'gw-x', extra: 1 }, ''],
    ] as const) {
      const res = await json('/api/gateways/enrollment-tokens', postJson(body));
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
    expect((await json('/api/gateways/enrollment-tokens/abc/revoke', postJson({ reason: 'x' }))).status).toBe(400);
    for (const role of ['technician', 'signatory', 'auditor', 'client'] as const) {
      expect((await json('/api/gateways/enrollment-tokens', {}, role)).status).toBe(403);
      expect((await json('/api/gateways/enrollment-tokens', postJson({ gateway: 'gw-x' }), role)).status).toBe(403);
      expect((await json('/api/gateways/enrollment-tokens/1/revoke', postJson({ reason: 'x' }), role)).status).toBe(403);
    }
  });
});

describe('revoking a gateway key', () => {
  test('with a reason: the key is revoked, a security event and an audit entry say so, and a second revocation is refused', async () => {
    const keys = await json<{ keyId: string; status: string }[]>('/api/gateways/gw-b/keys');
    const active = keys.body.find((k) => k.status === 'active')!.keyId;
    const noReason = await json(`/api/gateways/gw-b/keys/${active}/revoke`, postJson({ reason: '  ' }));
    expect(noReason.status).toBe(400);
    expect(fieldsOf(noReason.body)).toContain('reason');
    expect((await json(`/api/gateways/gw-b/keys/${active}/revoke`, postJson({ reason: 'x' }), 'technician')).status).toBe(403);

    const revoked = await json<{ keyId: string; status: string; reason: string }>(
      `/api/gateways/gw-b/keys/${active}/revoke`,
      postJson({ reason: 'gateway stolen from bay 3' }),
    );
    expect(revoked).toMatchObject({ status: 200, body: { keyId: active, status: 'revoked', reason: 'gateway stolen from bay 3' } });
    expect((await json<{ keyId: string; status: string }[]>('/api/gateways/gw-b/keys')).body).toContainEqual(
      expect.objectContaining({ keyId: active, status: 'revoked' }),
    );
    const events = await json<{ items: { kind: string; gateway: string; detail: string }[] }>('/api/security-events?kind=key-revoked&gateway=gw-b');
    expect(events.body.items[0]?.detail).toContain('gateway stolen from bay 3');
    const audit = await json<{ items: { action: string; recordId: string; reason: string; actor: string }[] }>(
      '/api/audit-trail?recordType=gateway-key',
    );
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({ action: 'state-change', recordId: `gw-b/${active}`, reason: 'gateway stolen from bay 3', actor: 'admin' }),
    );
    const twice = await json(`/api/gateways/gw-b/keys/${active}/revoke`, postJson({ reason: 'again' }));
    expect(twice).toMatchObject({ status: 409, body: { reason: 'key.already-revoked' } });
  });

  test('an unknown key answers 404, a malformed key id 400', async () => {
    expect((await json('/api/gateways/gw-a/keys/00000000/revoke', postJson({ reason: 'x' }))).status).toBe(404);
    const bad = await json('/api/gateways/gw-a/keys/XYZ/revoke', postJson({ reason: 'x' }));
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad.body)).toContain('keyId');
  });
});

describe('API tokens', () => {
  test('created (shown once), listed without the secret, revoked: the token no longer authenticates', async () => {
    const created = await json<{ token: string; id: number }>('/api/auth/tokens', postJson({ name: 'export script', ttlDays: 7 }), 'technician');
    expect(created.status).toBe(201);
    const works = await fetch(`${t.base}/api/auth/me`, { headers: { authorization: `Bearer ${created.body.token}` } });
    expect(works.status).toBe(200);
    const own = await json<{ id: number; name: string; username: string; role: string }[]>('/api/auth/tokens', {}, 'technician');
    expect(own.body).toContainEqual(
      expect.objectContaining({ id: created.body.id, name: 'export script', username: 'technician', role: 'technician' }),
    );
    expect(own.body.every((x) => x.username === 'technician')).toBe(true);
    expect(JSON.stringify(own.body)).not.toContain(created.body.token);
    // another user's token is not theirs to revoke (404 like an unknown one); an admin sees and revokes any
    expect((await json(`/api/auth/tokens/${created.body.id}/revoke`, postJson({}), 'signatory')).status).toBe(404);
    const all = await json<{ id: number; username: string }[]>('/api/auth/tokens');
    expect(all.body.map((x) => x.username)).toEqual(expect.arrayContaining(['admin', 'technician', 'signatory']));
    const revoked = await json(`/api/auth/tokens/${created.body.id}/revoke`, postJson({ reason: 'script retired' }));
    expect(revoked).toMatchObject({ status: 200, body: { id: created.body.id } });
    const refused = await fetch(`${t.base}/api/auth/me`, { headers: { authorization: `Bearer ${created.body.token}` } });
    expect(refused.status).toBe(401);
    const audit = await json<{ items: { recordType: string; recordId: string; reason: string }[] }>('/api/audit-trail?recordType=api-token');
    expect(audit.body.items).toContainEqual(expect.objectContaining({ recordId: `technician/${created.body.id}`, reason: 'script retired' }));
  });

  test('a client cannot list or revoke tokens; a bad id is a 400', async () => {
    expect((await json('/api/auth/tokens', {}, 'client')).status).toBe(403);
    expect((await json('/api/auth/tokens/1/revoke', postJson({}), 'client')).status).toBe(403);
    const bad = await json('/api/auth/tokens/0/revoke', postJson({}));
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad.body)).toContain('id');
  });
});

describe('paged lists', () => {
  test('users: pages newest first, each user once; q, role and disabled filter on the server', async () => {
    for (let i = 0; i < 7; i++) await json('/api/users', postJson({ username: `pager-${i}`, role: i % 2 === 0 ? 'technician' : 'signatory' }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: { username: string }[]; next: string | null } } = await json(
        `/api/users?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((u) => u.username));
      cursor = page.body.next;
    } while (cursor !== null);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 7)).toEqual(['pager-6', 'pager-5', 'pager-4', 'pager-3', 'pager-2', 'pager-1', 'pager-0']);
    expect(seen).toContain('admin');
    const found = await json<{ items: { username: string }[] }>('/api/users?q=PAGER-&role=signatory');
    expect(found.body.items.map((u) => u.username)).toEqual(['pager-5', 'pager-3', 'pager-1']);
    // % and _ are taken literally
    expect((await json<{ items: unknown[] }>('/api/users?q=%25')).body.items).toEqual([]);
    await json('/api/users/pager-1', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ disabled: true, reason: 'left' }),
    });
    expect((await json<{ items: { username: string }[] }>('/api/users?disabled=true')).body.items.map((u) => u.username)).toEqual(['pager-1']);
    for (const [query, field] of [
      ['role=boss', 'role'],
      ['disabled=yes', 'disabled'],
      ['limit=0', 'limit'],
      ['cursor=abc', 'cursor'],
    ])
      expect(fieldsOf((await json(`/api/users?${query}`)).body)).toContain(field);
    expect((await json('/api/users', {}, 'technician')).status).toBe(403);
  });

  test('security events: pages by id newest first, filtered by kind and time range', async () => {
    const at = Date.now();
    for (let i = 0; i < 5; i++) t.server.events.record('gw-p', 'clock-skew', 'notice', `skew ${i}`, null, at);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { detail: string; id: number }[]; next: string | null } } = await json(
        `/api/security-events?kind=clock-skew&gateway=gw-p&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      seen.push(...page.body.items.map((e) => e.detail));
      cursor = page.body.next;
    } while (cursor !== null);
    // five events in one millisecond: each once, newest first
    expect(seen).toEqual(['skew 4', 'skew 3', 'skew 2', 'skew 1', 'skew 0']);
    expect((await json<{ items: unknown[] }>(`/api/security-events?kind=clock-skew&to=${at}`)).body.items).toEqual([]);
    expect((await json<{ items: unknown[] }>(`/api/security-events?kind=clock-skew&from=${at}&to=${at + 1}`)).body.items).toHaveLength(5);
    const backwards = await json(`/api/security-events?from=${at}&to=${at - 1000}`);
    expect(backwards.status).toBe(400);
    expect(JSON.stringify(backwards.body)).toContain('to');
    expect(fieldsOf((await json('/api/security-events?kind=nonsense')).body)).toContain('kind');
    expect((await json('/api/security-events', {}, 'client')).status).toBe(403);
  });
});
