// The supervisor's API under generated requests: without its token every request to the API, whatever its method,
// path, headers and body, is refused 401 before any route runs (and any other path is 404); with it, generated lab ids, finding ids and bodies get
// an answer of 2xx or 4xx with a coded error, never a 5xx, and the supervisor stays up.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import pino from 'pino';
import { params } from '@labtrace/protocols/test/fuzz';
import { DEFAULT_RULE_SETTINGS } from '../../src/supervisor/evidence.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { malformedJson, nastyValue, query, segment } from '../fuzz/inputs.js';
import { DOUBLE_ORIGIN, LabDouble } from './log-double.js';

const TOKEN = 'supervisor-api-token-for-fuzzing-0123456789';
let dir: string;
let lab: LabDouble;
let supervisor: Supervisor;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-supervisor-fuzz-'));
  lab = new LabDouble();
  await lab.start();
  supervisor = new Supervisor(
    {
      host: '127.0.0.1',
      port: 0,
      database: path.join(dir, 'supervisor.db'),
      apiToken: TOKEN,
      // the API alone: no console page (dashboard/test/supervisor-console tests the page) answers outside /api
      consoleDir: dir,
      followEveryMs: 3_600_000,
      settings: DEFAULT_RULE_SETTINGS,
      labs: [
        {
          id: 'double',
          name: 'double',
          url: lab.url,
          origin: DOUBLE_ORIGIN,
          logKey: lab.logKey,
          token: 'lab-token',
          witnesses: [],
          witnessesRequired: 0,
        },
      ],
    },
    pino({ level: 'silent' }),
  );
  await supervisor.start();
  port = Number(new URL(supervisor.url).port);
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await lab.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: string;
}

function send(method: string, target: string, headers: Record<string, string>, body: string | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    req.end(body);
  });
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** the API's own paths, some with generated segments in them */
const target = fc.oneof(
  fc
    .tuple(fc.array(segment(['api', 'labs', 'rules', 'double', 'findings', 'checks', 'check', 'response', 'resolve', '1']), { maxLength: 6 }), query)
    .map(([segments, q]) => `/${segments.join('/')}${q}`),
  fc
    .tuple(segment(['double', 'other']), segment(['1', '0', '-1', '9007199254740993', '1e3']), fc.constantFrom('response', 'resolve'))
    .map(([labId, id, action]) => `/api/labs/${labId}/findings/${id}/${action}`),
  fc.constantFrom('/api/rules', '/api/labs', '/api/labs/double', '/api/labs/double/findings', '/api/labs/double/checks', '/api/key'),
  // the compliance reports, with generated queries (this supervisor has no signing key: a valid query is a 409)
  fc.tuple(segment(['double', 'other']), fc.constantFrom('reports', 'reports.pdf'), query).map(([labId, r, q]) => `/api/labs/${labId}/${r}${q}`),
);
const body = fc.option(
  fc.oneof(
    nastyValue.map((v) => JSON.stringify(v) ?? 'null'),
    malformedJson,
    fc.record({ author: fc.string(), text: fc.string() }).map((v) => JSON.stringify(v)),
  ),
  { nil: undefined },
);

describe('the supervisor API', () => {
  test('without its token: 401 for everything, with a coded error', async () => {
    const auth = fc.constantFrom<Record<string, string>>(
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), target, auth, body, async (method, path, headers, payload) => {
        const answer = await send(method, path, { 'content-type': 'application/json', ...headers }, method === 'GET' ? undefined : payload);
        // a request head past Node's limit is refused by its HTTP parser before any handler
        if (answer.status === 431) return;
        // the token guards the API; anything else is no route at all
        const api = /^\/api(\/|\?|$)/.test(path);
        expect(answer.status).toBe(api ? 401 : 404);
        expect(JSON.parse(answer.body)).toMatchObject({ code: api ? 'E_AUTH' : 'E_NOT_FOUND' });
      }),
      params(150),
    );
  }, 120_000);

  test('with its token: never a 5xx, and the supervisor stays up', async () => {
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), target, body, async (method, path, payload) => {
        const answer = await send(method, path, auth, method === 'GET' ? undefined : payload);
        expect(answer.status).toBeLessThan(500);
        if (answer.status >= 400 && answer.status !== 431) expect(JSON.parse(answer.body)).toHaveProperty('code');
      }),
      params(150),
    );
    await expect(send('GET', '/api/rules', auth, undefined)).resolves.toMatchObject({ status: 200 });
  }, 180_000);
});
