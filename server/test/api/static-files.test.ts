// The dashboard's files and the API over real HTTP: hashed assets cached for a year, index.html revalidated,
// a precompressed body (br or gzip) that decompresses to the built file's exact bytes, identity for a client that
// asks for no encoding, JSON compressed when large enough and never stored, downloads never compressed.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { DEFAULT_DASHBOARD_DIR } from '../../src/server.js';
import { records, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.stop();
});

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** GET with node's http client, which (unlike fetch) neither adds Accept-Encoding nor decodes the body */
function get(p: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${t.base}${p}`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const decode = (r: Raw): Buffer =>
  r.headers['content-encoding'] === 'br' ? brotliDecompressSync(r.body) : r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;

const built = (name: string): Buffer => readFileSync(path.join(DEFAULT_DASHBOARD_DIR, name));
/** the assets index.html loads: the whole page */
const assets = (): string[] =>
  [
    ...built('index.html')
      .toString('utf8')
      .matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g),
  ].map((m) => m[1] ?? '');

test('the built page loads at least one script and one stylesheet from hashed assets', () => {
  const names = assets();
  expect(names.some((n) => /^assets\/[^/]+-[\w-]{8}\.js$/.test(n))).toBe(true);
  expect(names.some((n) => /^assets\/[^/]+-[\w-]{8}\.css$/.test(n))).toBe(true);
});

test.each(['br', 'gzip'])('index.html: revalidated on every use, sent %s-encoded, the exact built bytes', async (encoding) => {
  for (const p of ['/', '/runs/some-run']) {
    const r = await get(p, { 'accept-encoding': encoding });
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-encoding']).toBe(encoding);
    expect(r.headers['vary']).toMatch(/accept-encoding/i);
    expect(decode(r).equals(built('index.html'))).toBe(true);
  }
});

test.each(['br', 'gzip'])('every hashed asset: cached for a year, sent %s-encoded, smaller, the exact built bytes', async (encoding) => {
  for (const name of assets()) {
    const r = await get(`/${name}`, { 'accept-encoding': `${encoding}, identity;q=0.5` });
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers['content-type']).toMatch(name.endsWith('.js') ? /^(?:text|application)\/javascript/ : /^text\/css/);
    expect(r.headers['content-encoding']).toBe(encoding);
    expect(r.headers['vary']).toMatch(/accept-encoding/i);
    expect(r.body.length).toBeLessThan(built(name).length);
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    expect(decode(r).equals(built(name))).toBe(true);
  }
});

test('a browser accepting both gets brotli, unless it prefers gzip', async () => {
  const [script] = assets().filter((n) => n.endsWith('.js'));
  const r = await get(`/${script}`, { 'accept-encoding': 'gzip, deflate, br, zstd' });
  expect(r.headers['content-encoding']).toBe('br');
  expect(decode(r).equals(built(script ?? ''))).toBe(true);
  // unless it prefers gzip
  const g = await get(`/${script}`, { 'accept-encoding': 'br;q=0.5, gzip' });
  expect(g.headers['content-encoding']).toBe('gzip');
  expect(decode(g).equals(built(script ?? ''))).toBe(true);
});

test('a client without Accept-Encoding (or refusing every encoding) gets identity: the plain bytes', async () => {
  for (const headers of [{}, { 'accept-encoding': 'identity' }, { 'accept-encoding': 'br;q=0, gzip;q=0' }]) {
    for (const name of ['index.html', ...assets()]) {
      const r = await get(name === 'index.html' ? '/' : `/${name}`, headers);
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.body.equals(built(name))).toBe(true);
    }
  }
  const json = await get('/api/audit-trail?limit=500', { authorization: `Bearer ${t.tokens.admin}` });
  expect(json.headers['content-encoding']).toBeUndefined();
  expect(JSON.parse(json.body.toString('utf8'))).toBeDefined();
});

test('an asset that is not there is a 404, not the page', async () => {
  const r = await get('/assets/index-00000000.js', { 'accept-encoding': 'br' });
  expect(r.status).toBe(404);
  expect(r.body.toString('utf8')).not.toContain('<div id="app"');
});

test('API JSON: compressed when 1 KiB or more, identity when smaller, never stored', async () => {
  const auth = { authorization: `Bearer ${t.tokens.admin}` };
  // the audit trail's entries get their log index once their anchor is appended: the reads compared below wait
  // until two reads in a row agree, so that they compare the encodings of one answer
  let before = '';
  for (let tries = 0; tries < 100; tries++) {
    const now = await (await t.fetch('/api/audit-trail?limit=500')).text();
    if (now === before) break;
    before = now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const large = await get('/api/audit-trail?limit=500', { ...auth, 'accept-encoding': 'gzip, br' });
  expect(large.status).toBe(200);
  expect(large.headers['content-type']).toMatch(/^application\/json/);
  expect(large.headers['content-encoding']).toBe('br');
  expect(large.headers['cache-control']).toBe('no-store');
  expect(large.headers['vary']).toMatch(/accept-encoding/i);
  const text = decode(large).toString('utf8');
  expect(text.length).toBeGreaterThanOrEqual(1024);
  expect(large.body.length).toBeLessThan(text.length);
  expect(JSON.parse(text)).toEqual(await (await t.fetch('/api/audit-trail?limit=500')).json());

  const gz = await get('/api/audit-trail?limit=500', { ...auth, 'accept-encoding': 'gzip' });
  expect(gz.headers['content-encoding']).toBe('gzip');
  expect(decode(gz).toString('utf8')).toBe(text);

  const small = await get('/api/auth/me', { ...auth, 'accept-encoding': 'gzip, br' });
  expect(small.status).toBe(200);
  expect(small.body.length).toBeLessThan(1024);
  expect(small.headers['content-encoding']).toBeUndefined();
  expect(small.headers['cache-control']).toBe('no-store');

  const refused = await get('/api/nothing-here', { 'accept-encoding': 'gzip' });
  expect(refused.status).toBe(404);
  expect(refused.headers['cache-control']).toBe('no-store');
});

test('a download is sent as it is, whatever the client accepts: the export tar', async () => {
  const gw = await TestGateway.connect(t, 'gw-a');
  try {
    await gw.birth('dl-1');
    expect(await send(t, gw, gw.seal(records('dl-1', 0, 2000)))).toBe('acked');
    const from = new Date(1_800_000_000_000 - 60_000).toISOString();
    const to = new Date(1_800_000_000_000 + 86_400_000).toISOString();
    const r = await get(`/api/export?gateway=gw-a&from=${from}&to=${to}`, {
      authorization: `Bearer ${t.tokens.admin}`,
      'accept-encoding': 'gzip, br',
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-tar');
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.length).toBeGreaterThan(10_000);
    // a tar: "ustar" at offset 257 of its first header
    expect(r.body.subarray(257, 262).toString('latin1')).toBe('ustar');
  } finally {
    await gw.end();
  }
});
