// One request's bug answers that request only: a coded 500 with a request id that the log carries too (never the
// request's credentials), a cut connection when the response had started; an unhandled promise rejection is
// logged and counted in /api/health, the process goes on; an uncaught exception is logged and ends the process.
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import express from 'express';
import pino from 'pino';
import { errorHandler } from '../../src/api/errors.js';

const logged: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logged.push(chunk.toString());
      done();
    },
  }),
);

let listener: http.Server;
let base: string;
/** a path beside this (compiled) test */
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
beforeAll(async () => {
  const app = express();
  app.use(express.json());
  app.post('/bug', () => {
    throw new TypeError("Cannot read properties of undefined (reading 'x')");
  });
  app.get('/odd', () => {
    // a thrown value whose String() throws as well
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a careless dependency may throw
    throw Object.assign(Object.create(null) as object, { toString: 1 });
  });
  app.get('/late', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('the first half');
    throw new Error('failed half-way');
  });
  app.get('/ok', (_req, res) => void res.json({ ok: true }));
  app.use(errorHandler(logger));
  listener = app.listen(0, '127.0.0.1');
  await new Promise((r) => listener.once('listening', r));
  base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => listener.close(r));
});

test('a bug answers 500 E_INTERNAL with a request id, logged under that id without the credentials', async () => {
  const res = await fetch(`${base}/bug?token=query-secret`, {
    method: 'POST',
    headers: { authorization: 'Bearer header-secret', 'content-type': 'application/json' },
    body: JSON.stringify({ password: 'body-secret' }),
  });
  expect(res.status).toBe(500);
  const body = (await res.json()) as { code: string; requestId: string; error: string };
  expect(body.code).toBe('E_INTERNAL');
  expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.get('x-request-id')).toBe(body.requestId);
  const line = logged.find((l) => l.includes(body.requestId));
  expect(line).toBeDefined();
  expect(JSON.parse(line ?? '{}')).toMatchObject({ level: 50, method: 'POST', path: '/bug', err: { message: expect.stringContaining('TypeError') } });
  for (const secret of ['query-secret', 'header-secret', 'body-secret']) expect(logged.join('')).not.toContain(secret);
});

test('a thrown value that cannot be shown is a 500 too; a failure after the response started cuts that connection only', async () => {
  const odd = await fetch(`${base}/odd`);
  expect(odd.status).toBe(500);
  expect(((await odd.json()) as { code: string }).code).toBe('E_INTERNAL');
  // the client sees a broken response (at the headers or in the body), never a complete-looking one
  await expect(fetch(`${base}/late`).then((r) => r.text())).rejects.toThrow();
  expect(await (await fetch(`${base}/ok`)).json()).toEqual({ ok: true });
});

test('an unhandled promise rejection is logged and counted in /api/health; the process goes on', () => {
  // in a process of its own: jest takes the rejections of its tests for itself
  const script = `
    const { guardProcess, processFaults } = await import(${JSON.stringify(here('../../src/process-faults.js'))});
    const { startServer } = await import(${JSON.stringify(here('../helpers/server.js'))});
    const { default: pino } = await import('pino');
    const t = await startServer();
    guardProcess(pino(pino.destination(1)));
    void Promise.reject(new Error('a promise nobody awaited'));
    while (processFaults().unhandledRejections === 0) await new Promise((r) => setTimeout(r, 10));
    const health = await (await fetch(t.base + '/api/health')).json();
    console.log('HEALTH ' + health.status + ' ' + JSON.stringify(health.faults));
    await t.stop();`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: here('.'), timeout: 60_000 });
  expect(`${run.stdout}${run.stderr}`).toContain('HEALTH ok {"unhandledRejections":1}');
  expect(run.stdout).toMatch(/unhandled promise rejection.*a promise nobody awaited|a promise nobody awaited.*unhandled promise rejection/);
  expect(run.status).toBe(0);
}, 90_000);

test('an uncaught exception is logged as fatal and ends the process with status 1 (the launcher starts it again)', () => {
  const script = `
    const { guardProcess } = await import(${JSON.stringify(here('../../src/process-faults.js'))});
    const { default: pino } = await import('pino');
    guardProcess(pino(pino.destination(1)));
    setTimeout(() => { throw new Error('thrown out of a timer'); }, 0);
    setTimeout(() => console.log('still running'), 200);`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: here('.') });
  expect(run.status).toBe(1);
  expect(run.stdout).toContain('uncaught exception: the process stops');
  expect(run.stdout).toContain('thrown out of a timer');
  expect(run.stdout).not.toContain('still running');
});
