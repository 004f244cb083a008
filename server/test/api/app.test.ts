import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.base}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('GET /api/health', async () => {
  const { status, body } = await get('/api/health');
  expect(status).toBe(200);
  expect(body).toEqual({ status: 'ok', version: '0.1.0', broker: { status: 'ok' }, store: { status: 'ok', kind: 'sqlite' }, gateways: [] });
});

test('unknown API routes are 404 with JSON', async () => {
  const { status, body } = await get('/api/nothing-here');
  expect(status).toBe(404);
  expect(body).toMatchObject({ code: 'E_NOT_FOUND', error: 'no route GET /api/nothing-here' });
});

test('bad query parameters are 400 naming the field', async () => {
  const { status, body } = await get('/api/instruments/x-1/history?channel=force&limit=abc');
  expect(status).toBe(400);
  expect(body['code']).toBe('E_BAD_REQUEST');
  expect(String(body['error'])).toContain('query: limit:');
  const extra = await get('/api/instruments/x-1/history?channel=force&colour=red');
  expect(extra.status).toBe(400);
  expect(String(extra.body['error'])).toContain('colour');
  const badId = await get('/api/instruments/%20bad%20id/history?channel=force');
  expect(badId.status).toBe(400);
  expect(String(badId.body['error'])).toContain('path: id');
});

test('an unknown instrument is 404', async () => {
  const { status, body } = await get('/api/instruments/x-1/history?channel=force');
  expect(status).toBe(404);
  expect(body['error']).toBe('instrument "x-1" is not known');
});

test('malformed JSON bodies are 400, not 500', async () => {
  const res = await fetch(`${t.base}/api/instruments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  expect(res.status).toBe(400);
});

test('security headers are set', async () => {
  const res = await fetch(`${t.base}/api/health`);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
  expect(res.headers.get('x-powered-by')).toBeNull();
});
