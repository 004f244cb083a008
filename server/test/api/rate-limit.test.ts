import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import express from 'express';
import { errorHandler } from '../../src/api/errors.js';
import { rateLimit } from '../../src/api/rate-limit.js';
import { createLogger } from '../../src/log.js';

let now = 1_000_000;
let server: Server;
let base: string;
beforeAll(async () => {
  const app = express();
  app.use('/api', rateLimit({ perSecond: 10, burst: 5, now: () => now }));
  app.get('/api/x', (_req, res) => res.json({ ok: true }));
  app.use(errorHandler(createLogger('test', 'silent')));
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a burst passes, then 429 with Retry-After until the bucket refills', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await fetch(`${base}/api/x`)).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  const limited = await fetch(`${base}/api/x`);
  expect(limited.headers.get('retry-after')).toBe('1');
  expect(await limited.json()).toMatchObject({ code: 'E_RATE_LIMITED' });
  now += 100; // one request's worth at 10 a second
  expect((await fetch(`${base}/api/x`)).status).toBe(200);
  expect((await fetch(`${base}/api/x`)).status).toBe(429);
});
