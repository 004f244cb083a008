import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await t.fetch(`${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('GET /api/health', async () => {
  const { status, body } = await get('/api/health');
  expect(status).toBe(200);
  expect(body).toEqual({
    status: 'ok',
    version: '0.1.0',
    broker: { status: 'ok' },
    store: { status: 'ok', kind: 'sqlite', freeBytes: expect.any(Number), reserveBytes: 64 * 1048576, walBytes: expect.any(Number), lastError: null },
    measurements: { kind: 'sqlite', status: 'ok', backlog: { batches: 0, samples: 0 }, refusedBatches: 0 },
    ingest: { refusedBatches: 0, refusedByReason: {} },
    gateways: [],
    faults: { unhandledRejections: 0 },
    // nothing waits to be sent; no SMTP server configured (webhooks only)
    notifications: { email: false, pending: 0, failed: 0, oldestPendingAt: null },
    // the one node of a SQLite lab does everything; leases are for the nodes of a PostgreSQL store
    node: { roles: ['api', 'ingest', 'jobs'], leases: [] },
    // no NTP server configured; no gateway has sent a HEALTH message
    clock: { ntp: null, gateways: { count: 0, offsetMs: null, boundMs: 2000, beyondBound: false } },
  });
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
  const res = await t.fetch(`/api/instruments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  expect(res.status).toBe(400);
});

test('security headers are set', async () => {
  const res = await t.fetch(`/api/health`);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
  expect(res.headers.get('x-powered-by')).toBeNull();
});

test('series: time-bucketed min, max and mean of a channel, never more buckets than asked', async () => {
  const gw = await TestGateway.connect(t, 'gw-a');
  try {
    await gw.birth('ser-1');
    // 100 samples, 10 ms apart, values 0..99; one text value that the buckets leave out
    const samples = Array.from({ length: 100 }, (_, i) => ({
      seq: i,
      instrument: 'ser-1',
      channel: 'c',
      ts: 1_800_000_000_000 + i * 10,
      value: i,
      unit: '',
      quality: 'good' as const,
    }));
    samples[50] = { ...samples[50]!, value: 'overload' as unknown as number };
    expect(await send(t, gw, gw.seal(samples))).toBe('acked');
    const url = `/api/instruments/ser-1/series?channel=c&from=1800000000000&to=1800000000999&points=10`;
    const res = await t.fetch(url);
    const body = (await res.json()) as {
      error?: string;
      bucketMs: number;
      points: { ts: number; min: number; max: number; mean: number; count: number }[];
    };
    expect(body.error).toBeUndefined();
    expect(body.bucketMs).toBe(100);
    expect(body.points).toHaveLength(10);
    expect(body.points[0]).toEqual({ ts: 1_800_000_000_000, min: 0, max: 9, mean: 4.5, count: 10 });
    expect(body.points[5]).toEqual({ ts: 1_800_000_000_500, min: 51, max: 59, mean: 55, count: 9 });
    const bad = await t.fetch(`/api/instruments/ser-1/series?channel=c&points=0`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/query: points/);
  } finally {
    await gw.end();
  }
});
