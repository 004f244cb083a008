// Bytes the server sends for a page load of the dashboard (index.html, every asset it names and every one a
// headless Chromium loads besides when it opens the page: lazily loaded chunks), without
// compression (a client sending no Accept-Encoding), with gzip and with brotli (precompressed at build time), and
// for one large API answer (the audit trail, compressed per request). Counted on the client's socket: headers and
// body as they cross the wire, one connection per request.
//
// Needs the built dashboard and server (npm run build). Environment: none.
// Writes bench/results/page-bytes.json.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { DEFAULT_DASHBOARD_DIR } from '../server/dist/src/server.js';
import { startServer } from '../server/dist/test/helpers/server.js';
import { launch } from '../dashboard/test-dist/helpers/browser.js';
import { writeResult } from './lib/result.js';

const NAME = 'page-bytes';
const ENCODINGS = { identity: null, gzip: 'gzip', br: 'gzip, deflate, br, zstd' };

/** GET on its own connection: { wire: bytes read from the socket, body, headers } */
function get(base, p, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${p}`, { headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), wire: req.socket.bytesRead }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const decode = (r) =>
  r.headers['content-encoding'] === 'br' ? brotliDecompressSync(r.body) : r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;

const t = await startServer();
try {
  const index = readFileSync(path.join(DEFAULT_DASHBOARD_DIR, 'index.html'), 'utf8');
  const listed = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  // what a browser loads besides: chunks imported at run time (lazily loaded routes), fonts, images
  const browser = await launch();
  const loaded = new Set();
  try {
    const page = await browser.newPage();
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.origin === t.base && u.pathname.startsWith('/assets/')) loaded.add(u.pathname);
    });
    // signed out, the page is loaded when it shows the sign-in form
    await page.goto(`${t.base}/`);
    await page.waitForSelector('[data-test="login"]', { timeout: 30_000 });
  } finally {
    await browser.close();
  }
  const files = ['/', ...new Set([...listed, ...loaded])];
  const page = {};
  const perFile = {};
  for (const [name, accept] of Object.entries(ENCODINGS)) {
    let wire = 0;
    let body = 0;
    for (const f of files) {
      const r = await get(t.base, f, accept === null ? {} : { 'accept-encoding': accept });
      if (r.status !== 200) throw new Error(`GET ${f}: ${r.status}`);
      const plain = readFileSync(path.join(DEFAULT_DASHBOARD_DIR, f === '/' ? 'index.html' : f));
      if (!decode(r).equals(plain)) throw new Error(`GET ${f} (${name}): not the built bytes`);
      wire += r.wire;
      body += r.body.length;
      (perFile[f] ??= {})[name] = r.body.length;
    }
    page[name] = { wireBytes: wire, bodyBytes: body };
  }
  const api = {};
  for (const [name, accept] of Object.entries(ENCODINGS)) {
    const headers = { authorization: `Bearer ${t.tokens.admin}`, ...(accept === null ? {} : { 'accept-encoding': accept }) };
    const r = await get(t.base, '/api/audit-trail?limit=500', headers);
    api[name] = { wireBytes: r.wire, bodyBytes: r.body.length, contentEncoding: r.headers['content-encoding'] ?? 'identity' };
  }
  const results = {
    pageLoad: page,
    pageLoadSavedPercent: {
      gzip: Math.round((1 - page.gzip.wireBytes / page.identity.wireBytes) * 1000) / 10,
      br: Math.round((1 - page.br.wireBytes / page.identity.wireBytes) * 1000) / 10,
    },
    auditTrailJson: api,
  };
  const file = writeResult(NAME, {
    params: { files: files.length, loadedAtRunTime: [...loaded].filter((f) => !listed.includes(f)).length, apiSample: '/api/audit-trail?limit=500' },
    results,
    detail: { perFileBodyBytes: perFile },
  });
  console.log(JSON.stringify(results, null, 2));
  console.log(`${NAME}: wrote ${file}`);
} finally {
  await t.stop();
}
