// Enrollment and key changes over the REST API: a one-time token, proof of possession of the key,
// broker credentials that work at once; rotation signed by the old and the new key; revocation.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  enrollmentProofBytes,
  formatVerifierKey,
  publicKeyFromSeed,
  rotationBytes,
  signEd25519,
  toBase64,
  toHex,
  type RotationStatement,
} from '@labtrace/protocols';
import { records, send, signerOf, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.end()));
  await t.stop();
});

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await t.fetch(`${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function enrollBody(gateway: string, token: string, keySeed: Uint8Array, proofSeed = keySeed): Record<string, string> {
  const key = formatVerifierKey(gateway, publicKeyFromSeed(keySeed));
  return { token, gateway, key, proof: toBase64(signEd25519(enrollmentProofBytes({ gateway, key, token }), proofSeed)) };
}

describe('enrollment', () => {
  test('a token enrolls its gateway once; the credentials and the key work at once', async () => {
    const { token } = await t.server.enrollment.createToken('gw-new');
    const first = await post('/api/enroll', enrollBody('gw-new', token, seed(5)));
    expect(first.status).toBe(201);
    const mqtt = first.body['mqtt'] as { username: string; password: string };
    expect(mqtt.username).toBe('gw-new');
    expect(first.body['keyId']).toMatch(/^[0-9a-f]{8}$/);
    const again = await post('/api/enroll', enrollBody('gw-new', token, seed(5)));
    expect(again).toMatchObject({ status: 401, body: { error: 'token: this enrollment token was already used' } });
    const gw = await TestGateway.connect(t, 'gw-new', { password: mqtt.password, key: signerOf('gw-new', seed(5)) });
    gateways.push(gw);
    await gw.birth('new-1');
    expect(await send(t, gw, gw.sign(records('new-1', 0, 3)))).toBe('acked');
    // the password is stored hashed, never in clear
    const row = await t.server.db.selectFrom('gateway_credentials').select('password_hash').where('gateway', '=', 'gw-new').executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(mqtt.password);
  });

  test('refusals name the problem and are recorded', async () => {
    const { token } = await t.server.enrollment.createToken('gw-x');
    expect(await post('/api/enroll', enrollBody('gw-y', token, seed(6)))).toMatchObject({
      status: 403,
      body: { error: 'gateway: the token was issued for "gw-x", not "gw-y"' },
    });
    expect(await post('/api/enroll', enrollBody('gw-x', token, seed(6), seed(7)))).toMatchObject({
      status: 403,
      body: { error: 'proof: not a signature of the request by the key being enrolled' },
    });
    expect(await post('/api/enroll', enrollBody('gw-x', `lt-enroll-${'A'.repeat(43)}`, seed(6)))).toMatchObject({
      status: 401,
      body: { error: 'token: unknown enrollment token' },
    });
    const expired = await t.server.enrollment.createToken('gw-x', 60_000, Date.now() - 120_000);
    expect(await post('/api/enroll', enrollBody('gw-x', expired.token, seed(6)))).toMatchObject({
      status: 401,
      body: { error: 'token: this enrollment token has expired' },
    });
    expect(await post('/api/enroll', { token: 'nope', gateway: 'gw-x' })).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/body: token/) },
    });
    // recorded under the gateway the genuine token was issued for (the unknown token is not: see enroll-refusals.test.ts)
    expect((await t.server.events.page({ kind: 'enrollment-refused', gateway: 'gw-x', limit: 100 })).items).toHaveLength(3);
    expect((await t.server.events.page({ kind: 'enrollment-refused', gateway: 'gw-y', limit: 100 })).items).toHaveLength(0);
    // the token was not spent by the refusals
    expect((await post('/api/enroll', enrollBody('gw-x', token, seed(6)))).status).toBe(201);
  });
});

describe('rotation and revocation', () => {
  function rotation(gateway: string, oldSeed: Uint8Array, newSeed: Uint8Array, signOld = oldSeed): Record<string, unknown> {
    const statement: RotationStatement = {
      v: 1,
      purpose: 'labtrace-key-rotation',
      gateway,
      oldKeyId: toHex(signerOf(gateway, oldSeed).keyId),
      newKey: formatVerifierKey(gateway, publicKeyFromSeed(newSeed)),
      at: Date.now(),
    };
    const bytes = rotationBytes(statement);
    return { statement, oldSignature: toBase64(signEd25519(bytes, signOld)), newSignature: toBase64(signEd25519(bytes, newSeed)) };
  }

  test('a rotation must be signed by the active key; the old key then serves only its earlier batches', async () => {
    const { token } = await t.server.enrollment.createToken('gw-r');
    const enrolled = await post('/api/enroll', enrollBody('gw-r', token, seed(10)));
    const gw = await TestGateway.connect(t, 'gw-r', {
      password: (enrolled.body['mqtt'] as { password: string }).password,
      key: signerOf('gw-r', seed(10)),
    });
    gateways.push(gw);
    await gw.birth('rot-1');
    const early = Date.now();
    expect(
      await send(
        t,
        gw,
        gw.sign(
          records('rot-1', 0, 2).map((s) => ({ ...s, ts: early })),
          0,
        ),
      ),
    ).toBe('acked');
    expect(await post('/api/gateways/gw-r/keys/rotate', rotation('gw-r', seed(10), seed(11), seed(12)))).toMatchObject({
      status: 403,
      body: { error: 'oldSignature: not a signature of the statement by the old key' },
    });
    expect((await post('/api/gateways/gw-r/keys/rotate', rotation('gw-r', seed(10), seed(11)))).status).toBe(201);
    // the new key signs from now on
    gw.key = signerOf('gw-r', seed(11));
    expect(
      await send(
        t,
        gw,
        gw.sign(
          records('rot-1', 2, 2).map((s) => ({ ...s, ts: Date.now() })),
          1,
        ),
      ),
    ).toBe('acked');
    // the old key, past the rotation's grace, is refused
    const late = Date.now() + 10 * 60_000;
    gw.key = signerOf('gw-r', seed(10));
    expect(
      await send(
        t,
        gw,
        gw.sign(
          records('rot-1', 4, 1).map((s) => ({ ...s, ts: late })),
          2,
        ),
      ),
    ).toMatch(/key [0-9a-f]{8} is retired from/);
    // revocation from a time: batches reaching it are refused
    const keys = (await (await t.fetch(`/api/gateways/gw-r/keys`)).json()) as { keyId: string; status: string }[];
    const active = keys.find((k) => k.status === 'active')!;
    await t.server.keys.revoke('gw-r', active.keyId, Date.now() - 1000, 'test');
    gw.key = signerOf('gw-r', seed(11));
    expect(
      await send(
        t,
        gw,
        gw.sign(
          records('rot-1', 4, 1).map((s) => ({ ...s, ts: Date.now() })),
          2,
        ),
      ),
    ).toMatch(/key [0-9a-f]{8} is revoked from/);
    expect((await t.server.events.page({ gateway: 'gw-r', kind: 'revoked-key', limit: 100 })).items).toHaveLength(1);
    expect((await t.server.events.page({ gateway: 'gw-r', kind: 'key-rotated', limit: 100 })).items).toHaveLength(1);
  });
});
