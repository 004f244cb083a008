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
/** the standing tokens of the lab 'double' and of another lab 'other' (the same double, enrolled twice) */
const STANDING = 'standing-token-of-the-double-0123456789';
const OTHER_STANDING = 'standing-token-of-the-other-lab-0123456789';
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
          standingToken: STANDING,
          witnesses: [],
          witnessesRequired: 0,
        },
        {
          id: 'other',
          name: 'other',
          url: lab.url,
          origin: DOUBLE_ORIGIN,
          logKey: lab.logKey,
          token: 'lab-token',
          standingToken: OTHER_STANDING,
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

  /**
   * What the lab 'double' may do with its standing token, written from the documented list (docs/supervision.md)
   * over the path as the routes read it (case-insensitive, one trailing slash, percent-decoded): anything else is a
   * 403 (or 401/404 where the request never reaches the API's routes).
   */
  function allowedToDouble(method: string, target: string): boolean {
    const raw = target.split('?')[0] ?? '';
    let p: string;
    try {
      p = raw
        .split('/')
        .map((s) => decodeURIComponent(s))
        .join('/');
    } catch {
      return false;
    }
    const path = p.replace(/\/$/, '');
    const lower = path.toLowerCase();
    if (method === 'GET' && lower === '/api/rules') return true;
    if (!lower.startsWith('/api/labs/') || path.split('/')[3] !== 'double') return false;
    const rest = lower.slice('/api/labs/double'.length);
    if (method === 'GET') return ['', '/findings', '/checks', '/reports', '/reports.pdf'].includes(rest);
    return method === 'POST' && /^\/findings\/[^/]+\/response$/.test(rest);
  }

  test("with a lab's standing token: its own standing and responses only, never another lab's, never a 5xx", async () => {
    const headers = { authorization: `Bearer ${STANDING}`, 'content-type': 'application/json' };
    const lower = fc.constantFrom(
      (s: string) => s,
      (s: string) => s.toUpperCase(),
      (s: string) => `${s}/`,
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), target, lower, body, async (method, path, spell, payload) => {
        const [p = '', q] = path.split('?');
        const sent = q === undefined ? spell(p) : `${spell(p)}?${q}`;
        const answer = await send(method, sent, headers, method === 'GET' ? undefined : payload);
        if (answer.status === 431) return;
        expect(answer.status).toBeLessThan(500);
        if (!/^\/api(\/|\?|$)/i.test(sent)) return;
        if (!allowedToDouble(method, sent)) {
          // refused before any route: the lab's token grants no more than its list
          expect({ sent, method, status: answer.status }).toEqual({ sent, method, status: 403 });
          expect(JSON.parse(answer.body)).toMatchObject({ code: 'E_FORBIDDEN' });
        }
        // no answer to the lab's token speaks of the other lab
        expect(answer.body).not.toMatch(/"(id|lab)":"other"/);
      }),
      params(250),
    );
    // the list, and the lab's own standing, are there; the supervisor's own actions are not
    await expect(send('GET', '/api/labs/double', headers, undefined)).resolves.toMatchObject({ status: 200 });
    await expect(send('GET', '/api/labs', headers, undefined)).resolves.toMatchObject({ status: 403 });
    await expect(send('GET', '/api/labs/other', headers, undefined)).resolves.toMatchObject({ status: 403 });
    await expect(send('POST', '/api/labs/double/check', headers, undefined)).resolves.toMatchObject({ status: 403 });
    await expect(
      send('POST', '/api/labs/double/findings/1/resolve', headers, '{"author":"a","text":"resolved by the lab itself"}'),
    ).resolves.toMatchObject({
      status: 403,
    });
    await expect(send('GET', '/api/key', headers, undefined)).resolves.toMatchObject({ status: 403 });
    // the other lab's token reads the other lab, not this one
    const other = { authorization: `Bearer ${OTHER_STANDING}` };
    await expect(send('GET', '/api/labs/other', other, undefined)).resolves.toMatchObject({ status: 200 });
    await expect(send('GET', '/api/labs/double/findings', other, undefined)).resolves.toMatchObject({ status: 403 });
  }, 180_000);
});
