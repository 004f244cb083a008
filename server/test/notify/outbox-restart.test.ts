// The outbox keeps what it could not send: a server killed (SIGKILL) while a webhook delivery is under way sends it
// when it starts again; a delivery that keeps failing is recorded as failed after its last attempt, listed, counted
// in the health, and sent again when the admin retries it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import pino from 'pino';
import { stringify } from 'yaml';
import { collect, exitOf, runLabtrace, signIn } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
import { jsonCaller, LAB, postJson, startServer, type TestServer, waitFor } from '../helpers/server.js';
import { HttpReceiver } from './receivers.js';
import { verifyStandardWebhook } from './standard-webhooks.js';

const ADMIN_PASSWORD = 'notify-admin-secret-for-tests';

interface Delivery {
  id: number;
  status: string;
  attempts: number;
  lastError: string | null;
}

describe('a server killed while a delivery is under way', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-notify-'));
  let proc: ChildProcess | undefined;
  let httpPort = 0;
  let mqttPort = 0;
  // the first request hangs (the server dies waiting for the answer); every later one is answered
  let heard = 0;
  const receiver: HttpReceiver = new HttpReceiver(() => (++heard === 1 ? undefined : { status: 200, body: 'ok' }));
  const config = path.join(dir, 'server.yaml');

  async function start(): Promise<{ token: string; out: () => string }> {
    const p = runLabtrace(['server', '--config', config], { LABTRACE_ADMIN_PASSWORD: ADMIN_PASSWORD, LOG_LEVEL: 'info' });
    proc = p;
    const out = collect(p);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`the server exited during start-up:\n${out()}`);
      const ok = await fetch(`http://127.0.0.1:${httpPort}/api/health`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the server did not answer within 60 s:\n${out()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { token: await signIn(`http://127.0.0.1:${httpPort}`, 'admin', ADMIN_PASSWORD), out };
  }

  const api = async <T>(token: string, p: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${p}`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exitOf(proc);
    }
    await receiver.close();
  });

  test('sends it after the restart (at least once: the receiver sees the same webhook-id again)', async () => {
    // the receiver first: a port freePort() found free may be handed out again to a listener on port 0
    const receiverPort = await receiver.listen();
    httpPort = await freePort();
    mqttPort = await freePort();
    writeFileSync(
      config,
      stringify({
        lab: LAB,
        dataDir: path.join(dir, 'data'),
        http: { host: '127.0.0.1', port: httpPort, rateLimit: false },
        mqtt: { host: '127.0.0.1', port: mqttPort },
        // a refused MQTT login is a security event of severity notice
        notifications: { securityMinSeverity: 'notice', timeoutMs: 60_000, pollMs: 50 },
      }),
    );
    const first = await start();
    const created = await api<{ id: string; secret: string }>(
      first.token,
      '/api/notifications/webhooks',
      postJson({ name: 'ops', owner: 'admin', url: `http://127.0.0.1:${receiverPort}/ops`, preset: 'generic' }),
    );
    expect(created.status).toBe(201);
    const sub = await api(first.token, '/api/notifications/subscriptions', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kinds: { 'security-event': { webhooks: [created.body.id] } } }),
    });
    expect(sub.status).toBe(200);
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'intruder', username: 'intruder', password: 'guess', reconnectPeriod: 0 }),
    ).rejects.toThrow();
    await waitFor('the delivery under way', () => receiver.requests.length === 1, 20_000);

    const killed = proc as ChildProcess;
    killed.kill('SIGKILL');
    await exitOf(killed);
    expect(killed.signalCode).toBe('SIGKILL');

    const second = await start();
    await waitFor('the delivery after the restart', () => receiver.requests.length === 2, 20_000);
    const [hung, resent] = receiver.requests;
    expect(resent?.headers['webhook-id']).toBe(hung?.headers['webhook-id']);
    expect(verifyStandardWebhook(created.body.secret, resent?.headers ?? {}, resent?.body ?? '')).toBe(true);
    expect(JSON.parse(resent?.body ?? '{}')).toMatchObject({ type: 'security.event', data: { event: 'login-refused' } });
    let status = '';
    for (let i = 0; i < 100 && status !== 'sent'; i++) {
      status = (await api<{ deliveries: Delivery[] }>(second.token, '/api/notifications/deliveries')).body.deliveries[0]?.status ?? '';
      if (status !== 'sent') await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('sent');
    expect(second.out()).not.toContain(created.body.secret);
  });
});

describe('a receiver that never comes back', () => {
  let t: TestServer | undefined;
  const logs: string[] = [];
  afterAll(async () => {
    await t?.stop();
  });

  test('its delivery is failed after the last attempt, listed, counted, logged; the admin’s retry sends it again', async () => {
    t = await startServer(
      { notifications: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20, pollMs: 10 } },
      pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
    );
    const server = t;
    const call = jsonCaller(
      () => server,
      () => '',
    );
    const port = await freePort();
    const hook = await call<{ id: string; secret: string }>(
      '/api/notifications/webhooks',
      postJson({ name: 'gone', owner: 'admin', url: `http://127.0.0.1:${port}/gone?token=url-credential-123456`, preset: 'generic' }),
      'admin',
    );
    expect(hook.status).toBe(201);
    const res = await call<Delivery>('/api/notifications/test', postJson({ channel: 'webhook', webhook: hook.body.id }), 'admin');
    expect(res.body).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/ECONNREFUSED/) });
    await waitFor('the last attempt', async () => (await server.server.notifications.status()).failed === 1);

    const failed = await call<{ deliveries: Delivery[] }>('/api/notifications/deliveries?status=failed', {}, 'admin');
    expect(failed.body.deliveries).toEqual([expect.objectContaining({ id: res.body.id, status: 'failed', attempts: 3 })]);
    const health = (await (await fetch(`${server.base}/api/health`)).json()) as { notifications: { failed: number } };
    expect(health.notifications.failed).toBe(1);
    expect(logs.join('')).toMatch(/ALARM: a notification could not be delivered; recorded as failed/);

    const receiver = new HttpReceiver();
    await receiver.listen(port);
    try {
      const retried = await call<Delivery>(`/api/notifications/deliveries/${res.body.id}/retry`, postJson({}), 'admin');
      expect(retried.body).toMatchObject({ status: 'pending', attempts: 0 });
      await waitFor('the retried delivery', () => receiver.requests.length === 1);
      await waitFor('recorded as sent', async () => (await server.server.notifications.status()).failed === 0);
      expect((await call(`/api/notifications/deliveries/${res.body.id}/retry`, postJson({}), 'admin')).status).toBe(409);
      expect((await call(`/api/notifications/deliveries/${res.body.id}/retry`, postJson({}), 'technician')).status).toBe(403);
    } finally {
      await receiver.close();
    }
    const text = logs.join('');
    expect(text).not.toContain(hook.body.secret);
    expect(text).not.toContain('url-credential-123456');
  });
});
