// A large export over HTTP is written a step at a time and streamed: other requests are answered while it is made,
// a download cancelled half-way ends that download only (the server keeps serving, its spool is removed), and the
// streamed bundle still verifies offline.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { verifyBundle } from '@labtrace/protocols';
import { readBundle } from '../../src/export/read-bundle.js';
import { records, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

/** about 12 MB of bundle: more than the sockets' buffers hold, and many steps of the export */
const BATCHES = 240;
const PER_BATCH = 250;
const T0 = 1_800_000_000_000;

let t: TestServer;
let gw: TestGateway;
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-export-stream-'));
const url = (): string => `/api/export?gateway=gw-a&from=${new Date(T0 - 60_000).toISOString()}&to=${new Date(T0 + 86_400_000).toISOString()}`;

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('big-1');
  // published without waiting for each acknowledgement: the broker keeps the order
  for (let b = 0; b < BATCHES; b++) await gw.publish(gw.seal(records('big-1', b * PER_BATCH, PER_BATCH, b + 0.25)));
  await waitFor('every batch acknowledged', () => gw.acks.length === BATCHES, 120_000);
  const size = t.server.log?.size ?? 0;
  await waitFor('a checkpoint covering every batch', () => Number(t.server.log?.latestCheckpoint().note.split('\n')[1]) >= size);
}, 180_000);

afterAll(async () => {
  await gw.end();
  await t.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** GET as admin with node's http client: the response is the caller's to read, pause or cut. */
function get(p: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${t.base}${p}`,
      { headers: { authorization: `Bearer ${t.tokens.admin}`, 'accept-encoding': 'gzip, br' }, agent: false },
      resolve,
    );
    req.on('error', reject);
  });
}

const spoolOf = (): string => path.join(t.config.dataDir, 'export-spool');
const spooled = (): string[] => {
  try {
    return readdirSync(spoolOf());
  } catch {
    return [];
  }
};

test('a download cancelled after its first bytes ends that download only: the server answers, the spool is removed', async () => {
  for (let attempt = 0; attempt < 3; attempt++) {
    const res = await get(url());
    expect(res.statusCode).toBe(200);
    await new Promise<void>((resolve) => {
      let got = 0;
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= 1000) {
          res.destroy(); // the client goes away mid-archive (curl ... | head -c 1000)
          resolve();
        }
      });
    });
    const health = await t.fetch('/api/health', {}, null);
    expect(health.status).toBe(200);
  }
  await waitFor('the spool of the cancelled downloads removed', () => spooled().length === 0, 20_000);
});

test('a download cancelled while its bundle is being made: the server answers, the spool is removed', async () => {
  const server = (t.server as unknown as { http: http.Server }).http;
  const taken = new Promise<void>((resolve) => {
    const onRequest = (req: http.IncomingMessage): void => {
      if (!req.url?.startsWith('/api/export')) return;
      server.off('request', onRequest);
      resolve();
    };
    server.on('request', onRequest);
  });
  const req = http.get(`${t.base}${url()}`, { headers: { authorization: `Bearer ${t.tokens.admin}`, 'accept-encoding': 'gzip, br' }, agent: false });
  req.on('error', () => undefined); // the client's own cut
  await taken;
  req.destroy();
  expect((await t.fetch('/api/health', {}, null)).status).toBe(200);
  await waitFor('the spool of the cancelled export removed', () => spooled().length === 0, 20_000);
  expect((await t.fetch('/api/health', {}, null)).status).toBe(200);
});

test('other requests are answered while a large export is made, and the streamed bundle verifies', async () => {
  const server = (t.server as unknown as { http: http.Server }).http;
  const order: string[] = [];
  // the other request is sent once the server has taken up the export's
  const other = new Promise<void>((resolve, reject) => {
    const onRequest = (req: http.IncomingMessage): void => {
      if (!req.url?.startsWith('/api/export')) return;
      server.off('request', onRequest);
      t.fetch('/api/health', {}, null).then((res) => {
        order.push(`health ${res.status}`);
        resolve();
      }, reject);
    };
    server.on('request', onRequest);
  });
  const exported = get(url()).then((res) => {
    order.push(`export ${res.statusCode}`);
    return res;
  });
  await other;
  const res = await exported;
  // the health answer came before the export's first byte: the export did not hold the server while it was made
  expect(order).toEqual(['health 200', 'export 200']);
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const archive = path.join(tmp, 'streamed.tar');
  writeFileSync(archive, Buffer.concat(chunks));
  expect(Buffer.concat(chunks).length).toBeGreaterThan(8 * 2 ** 20);
  const into = mkdtempSync(path.join(tmp, 'x-'));
  execFileSync('tar', ['-xf', archive, '-C', into]);
  const [top] = readdirSync(into);
  const report = verifyBundle(readBundle(path.join(into, top ?? '')), {});
  expect(report.problems).toEqual([]);
  expect(report.status).toBe('verified');
  expect(report.counts).toMatchObject({ batches: BATCHES, records: BATCHES * PER_BATCH });
  await waitFor('the spool removed', () => spooled().length === 0, 20_000);
});
