// A node of the lab without the `api` role (cluster.roles) serves GET /api/health only: every other request, of
// any method, path, query, header or body, generated, gets 421 with E_NOT_SERVED, and the process stays up.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import fc from 'fast-check';
import { params } from '@labtrace/protocols/test/fuzz';
import { healthOnly } from '../../src/api/app.js';
import { query, segment } from '../fuzz/inputs.js';

let server: http.Server;
let port: number;
let healthAnswers = 0;

beforeAll(async () => {
  const app = express();
  app.get('/api/health', (_req, res) => {
    healthAnswers++;
    res.json({ status: 'ok' });
  });
  app.use((_req, res) => res.status(500).json({ error: 'the API was reached' }));
  server = http.createServer(healthOnly(app));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Answer {
  status: number;
  body: string;
}

function send(method: string, target: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // an answer before the body is read may end the connection while the body is still being sent
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end(body);
  });
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const KNOWN = ['api', 'health', 'runs', 'log', 'checkpoint', 'verify', 'socket.io', 'instruments', 'auth', 'login'];

describe('a node without the api role', () => {
  test('answers GET /api/health, with any query, from the app', async () => {
    const before = healthAnswers;
    await expect(send('GET', '/api/health', {}, undefined)).resolves.toMatchObject({ status: 200 });
    await expect(send('GET', '/api/health?x=1&y', {}, undefined)).resolves.toMatchObject({ status: 200 });
    expect(healthAnswers).toBe(before + 2);
  });

  test('answers every other request 421 E_NOT_SERVED, without reaching the app', async () => {
    const target = fc.tuple(fc.array(segment(KNOWN), { minLength: 0, maxLength: 5 }), query).map(([segments, q]) => `/${segments.join('/')}${q}`);
    const body = fc.option(
      fc.uint8Array({ maxLength: 70_000 }).map((bytes) => Buffer.from(bytes)),
      { nil: undefined },
    );
    const headers = fc.dictionary(
      fc.constantFrom('content-type', 'cookie', 'authorization', 'x-csrf-token', 'accept-encoding', 'x-forwarded-for'),
      fc.stringMatching(/^[\x20-\x7e]{0,80}$/),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), target, headers, body, async (method, path, head, payload) => {
        const healthBefore = healthAnswers;
        const answer = await send(method, path, head, method === 'GET' || method === 'HEAD' ? undefined : payload);
        if (method === 'GET' && path.split('?')[0] === '/api/health') {
          expect(answer.status).toBe(200);
          return;
        }
        expect(healthAnswers).toBe(healthBefore);
        // a request head past Node's limit (16 KiB) is refused by the HTTP parser itself, before any handler
        if (path.length > 16_000 && answer.status === 431) return;
        expect(answer.status).toBe(421);
        if (method !== 'HEAD') expect(JSON.parse(answer.body)).toMatchObject({ code: 'E_NOT_SERVED', reason: 'node.api-not-served' });
      }),
      params(300),
    );
  });
});
