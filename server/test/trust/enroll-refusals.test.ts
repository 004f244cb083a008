// POST /api/enroll needs no sign-in, so anyone can call it with any gateway id: a made-up token is
// noise from an address (counted, not a gateway's alarm), ids are checked by the gateway id rule, and
// an address gets a limited number of attempts.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { enrollmentProofBytes, formatVerifierKey, publicKeyFromSeed, signEd25519, toBase64 } from '@labtrace/protocols';
import { startServer, type TestServer } from '../helpers/server.js';

const seed = new Uint8Array(32).fill(9);

function enrollBody(gateway: string, token = `lt-enroll-${'B'.repeat(43)}`): Record<string, string> {
  const key = formatVerifierKey('gw-any', publicKeyFromSeed(seed));
  return { token, gateway, key, proof: toBase64(signEd25519(enrollmentProofBytes({ gateway, key, token }), seed)) };
}

async function post(t: TestServer, body: unknown): Promise<{ status: number; body: Record<string, unknown>; retryAfter: string | null }> {
  const res = await t.fetch('/api/enroll', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, null);
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
}

describe('without a genuine token', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ http: { host: '127.0.0.1', port: 0, enrollRateLimit: { perSecond: 1, burst: 100 } } });
  });
  afterAll(async () => {
    await t.stop();
  });

  test('a made-up token under any gateway id is one counted attempt from an address, not an alarm of that gateway', async () => {
    for (const gateway of ['NaN', '2026-02-31', 'gw-a', 'NaN']) {
      expect(await post(t, enrollBody(gateway))).toMatchObject({ status: 401, body: { error: 'token: unknown enrollment token' } });
    }
    expect(t.server.events.list({ kind: 'enrollment-refused' })).toHaveLength(0);
    for (const gateway of ['NaN', '2026-02-31', 'gw-a']) expect(t.server.events.list({ gateway })).toHaveLength(0);
    const res = await t.fetch('/api/security-events?kind=enrollment-attempt');
    const attempts = ((await res.json()) as { items: { gateway: string; severity: string; address: string; client: string; count: number }[] }).items;
    expect(attempts.map((a) => [a.client, a.count]).sort()).toEqual([
      ['2026-02-31', 1],
      ['NaN', 2],
      ['gw-a', 1],
    ]);
    expect(attempts.every((a) => a.gateway === '' && a.severity === 'notice' && /127\.0\.0\.1/.test(a.address))).toBe(true);
  });

  test('a gateway id that breaks the gateway id rule is a 400 naming the field, recorded nowhere', async () => {
    for (const gateway of ['', '../gw', 'gw a', '-gw', 'g'.repeat(65), 'gw/x']) {
      const answer = await post(t, enrollBody(gateway));
      expect(answer).toMatchObject({ status: 400, body: { code: 'E_BAD_REQUEST', error: expect.stringMatching(/^body: gateway: /) } });
    }
    expect(await post(t, { ...enrollBody('gw-a'), gateway: 42 })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/gateway/) } });
  });
});

test('an address gets a limited number of enrollment attempts: then 429 with Retry-After, counted', async () => {
  const t = await startServer({ http: { host: '127.0.0.1', port: 0, enrollRateLimit: { perSecond: 0.01, burst: 3 } } });
  try {
    for (let i = 0; i < 3; i++) expect((await post(t, enrollBody('gw-a'))).status).toBe(401);
    const limited = await post(t, enrollBody('gw-a'));
    expect(limited).toMatchObject({
      status: 429,
      body: { code: 'E_RATE_LIMITED', error: expect.stringMatching(/^too many requests from this address/) },
    });
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(limited.body['error']).toContain(`retry in ${limited.retryAfter} s`);
    // the rest of the API is not limited by it
    expect((await t.fetch('/api/health')).status).toBe(200);
    const limitedEvents = t.server.events.list({ kind: 'enrollment-attempt' }).filter((e) => e.detail.includes('too many attempts'));
    expect(limitedEvents).toMatchObject([{ gateway: '', count: 1, address: expect.stringMatching(/127\.0\.0\.1/) }]);
  } finally {
    await t.stop();
  }
});
