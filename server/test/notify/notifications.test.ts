// Outbound notifications end to end, against real receivers on loopback: a local SMTP server receives an e-mail for
// each kind of event, a local HTTP receiver a Standard Webhooks request whose HMAC verifies, the WeCom, DingTalk and
// Feishu robots' receivers their formats with valid signatures; a client never hears of another organization's
// runs; a receiver that is down at first gets its notification once it is back; no secret reaches the log.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import type { Role } from '../../src/index.js';
import { freePort } from '../helpers/ports.js';
import {
  addOtherClient,
  jsonCaller,
  ORGANIZATION,
  postJson,
  records,
  send,
  startServer,
  TestGateway,
  type TestServer,
  waitFor,
} from '../helpers/server.js';
import { HttpReceiver, SmtpReceiver } from './receivers.js';
import { verifyStandardWebhook } from './standard-webhooks.js';

const SMTP_USER = 'lab-mailer';
const SMTP_PASSWORD = 'smtp-password-for-tests-9f3c1e';
const DING_SECRET = 'SECding-secret-for-tests-77a1';
const FEISHU_SECRET = 'feishu-secret-for-tests-4b2d';
const DAY = 86_400_000;

const logs: string[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });

let t: TestServer;
let gw: TestGateway;
let otherClientToken: string;
const smtp = new SmtpReceiver(SMTP_USER, SMTP_PASSWORD);
const generic = new HttpReceiver();
const robots = new HttpReceiver((r) => ({
  status: 200,
  body: r.url.startsWith('/feishu/') ? '{"code":0,"msg":"success"}' : '{"errcode":0,"errmsg":"ok"}',
}));
let genericPort: number;
let robotPort: number;
const secrets: string[] = [SMTP_PASSWORD, DING_SECRET, FEISHU_SECRET, 'wecom-key-0123456789abcdef', 'ding-token-0123456789abcdef'];

beforeAll(async () => {
  const smtpPort = await smtp.listen();
  genericPort = await generic.listen();
  robotPort = await robots.listen();
  process.env['LABTRACE_SMTP_PASSWORD'] = SMTP_PASSWORD;
  try {
    t = await startServer(
      {
        notifications: {
          smtp: { host: '127.0.0.1', port: smtpPort, username: SMTP_USER, from: 'labtrace <lab@lab.test>' },
          baseDelayMs: 50,
          maxDelayMs: 200,
          maxAttempts: 100,
          pollMs: 20,
          timeoutMs: 5000,
          gatewayOfflineAfterMs: 0,
          calibrationCheckMs: 100,
        },
      },
      logger,
    );
  } finally {
    delete process.env['LABTRACE_SMTP_PASSWORD'];
  }
  otherClientToken = await addOtherClient(t);
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('ut-1');
  await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
});
afterAll(async () => {
  await gw?.end();
  await t?.stop();
  await Promise.all([smtp.close(), generic.close(), robots.close()]);
});

const call = jsonCaller(
  () => t,
  () => otherClientToken,
);
const json = postJson;
const put = (body: unknown): RequestInit => ({ method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const ALL_KINDS = ['alarm', 'run-completed', 'draft-awaiting-signature', 'calibration-due', 'gateway-offline', 'security-event'];

interface Webhook {
  id: string;
  secret?: string | null;
  url: string;
  hasSecret: boolean;
}
interface Deliveries {
  deliveries: { id: number; status: string; attempts: number; lastError: string | null; recipient: string; type: string }[];
  counts: { pending: number; sent: number; failed: number };
}

async function createWebhook(body: Record<string, unknown>): Promise<Webhook> {
  const res = await call<Webhook>('/api/notifications/webhooks', json(body), 'admin');
  expect(res.status).toBe(201);
  return res.body;
}

const eventOf = (m: { mail: { headers: Map<string, unknown> } }): string => {
  const v = m.mail.headers.get('x-labtrace-event');
  return typeof v === 'string' ? v : '';
};
const events = (address: string): string[] => smtp.to(address).map(eventOf);
const idle = async (): Promise<void> => waitFor('no delivery pending', async () => (await t.server.notifications.status()).pending === 0, 20_000);

describe('every kind of event reaches its subscribers by e-mail and webhook', () => {
  let techHook: Webhook;
  let wecom: Webhook;
  let ding: Webhook;
  let feishu: Webhook;
  let run: string;

  beforeAll(async () => {
    techHook = await createWebhook({ name: 'bench', owner: 'technician', url: `http://127.0.0.1:${genericPort}/hook`, preset: 'generic' });
    wecom = await createWebhook({
      name: 'QA group (WeCom)',
      owner: 'signatory',
      url: `http://127.0.0.1:${robotPort}/wecom/cgi-bin/webhook/send?key=wecom-key-0123456789abcdef`,
      preset: 'wecom',
    });
    ding = await createWebhook({
      name: 'QA group (DingTalk)',
      owner: 'signatory',
      url: `http://127.0.0.1:${robotPort}/dingtalk/robot/send?access_token=ding-token-0123456789abcdef`,
      preset: 'dingtalk',
      secret: DING_SECRET,
    });
    feishu = await createWebhook({
      name: 'QA group (Feishu)',
      owner: 'signatory',
      url: `http://127.0.0.1:${robotPort}/feishu/open-apis/bot/v2/hook/feishu-hook-0123456789`,
      preset: 'feishu',
      format: 'text',
      secret: FEISHU_SECRET,
    });
    secrets.push(String(techHook.secret));
    // the signatory reads Chinese in Shanghai time: the users' saved language and zone (the user module's columns;
    // added here when this build's store has none yet)
    const db = t.server.database.sqlite;
    const cols = (db.prepare('PRAGMA table_info(users)').all() as { name: string }[]).map((c) => c.name);
    if (!cols.includes('locale')) db.exec('ALTER TABLE users ADD COLUMN locale TEXT');
    const zone = cols.includes('timezone') ? 'timezone' : 'time_zone';
    if (!cols.includes(zone)) db.exec(`ALTER TABLE users ADD COLUMN ${zone} TEXT`);
    db.prepare(`UPDATE users SET locale = 'zh-CN', ${zone} = 'Asia/Shanghai' WHERE username = 'signatory'`).run();
  });

  test('a webhook’s secret is shown once, at creation; the list masks the robots’ keys', async () => {
    expect(techHook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const list = await call<Webhook[]>('/api/notifications/webhooks', {}, 'admin');
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(String(techHook.secret));
    expect(JSON.stringify(list.body)).not.toContain('wecom-key-0123456789abcdef');
    expect(JSON.stringify(list.body)).not.toContain(DING_SECRET);
    expect(list.body.find((w) => w.id === wecom.id)).toMatchObject({ hasSecret: false, url: expect.stringMatching(/key=\*\*\*$/) });
    expect((await call('/api/notifications/webhooks', {}, 'technician')).status).toBe(403);
  });

  test('each user subscribes per kind; kinds outside their role and others’ webhooks are refused by field', async () => {
    const all = Object.fromEntries(ALL_KINDS.map((k) => [k, { email: true, webhooks: [techHook.id] }]));
    const tech = await call<{ kinds: Record<string, unknown>; allowed: string[] }>(
      '/api/notifications/subscriptions',
      put({ email: 'tech@lab.test', kinds: all }),
      'technician',
    );
    expect(tech.status).toBe(200);
    expect(tech.body.allowed).toEqual(ALL_KINDS);
    const sig = await call(
      '/api/notifications/subscriptions',
      put({ email: 'sig@lab.test', kinds: { 'draft-awaiting-signature': { email: true, webhooks: [wecom.id, ding.id, feishu.id] } } }),
      'signatory',
    );
    expect(sig.status).toBe(200);
    const mine = { alarm: { email: true }, 'run-completed': { email: true }, 'draft-awaiting-signature': { email: true } };
    expect((await call('/api/notifications/subscriptions', put({ email: 'client@a.test', kinds: mine }), 'client')).status).toBe(200);
    expect((await call('/api/notifications/subscriptions', put({ email: 'client@b.test', kinds: mine }), 'client-b')).status).toBe(200);

    const refused = await call<{ error: string }>(
      '/api/notifications/subscriptions',
      put({ kinds: { 'security-event': { email: true } } }),
      'client',
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/^body: kinds\.security-event: the role client does not receive/);
    const foreign = await call<{ error: string }>(
      '/api/notifications/subscriptions',
      put({ kinds: { alarm: { webhooks: [wecom.id] } } }),
      'technician',
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toMatch(/^body: kinds\.alarm\.webhooks\[0\]: you have no webhook/);
    const bad = await call<{ issues: { path: string }[] }>(
      '/api/notifications/subscriptions',
      put({ email: 'not-an-address', kinds: {} }),
      'technician',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i) => i.path)).toContain('email');
    // the refusals changed nothing
    const after = await call<{ email: string; kinds: Record<string, { email: boolean }> }>('/api/notifications/subscriptions', {}, 'technician');
    expect(after.body.email).toBe('tech@lab.test');
    expect(after.body.kinds['alarm']).toEqual({ email: true, webhooks: [techHook.id] });
  });

  test('the lab’s day: an alarm raised and escalated, a run completed, a draft, a calibration due, a security event, a gateway gone', async () => {
    const rule = { id: 'force', kind: 'limits', severity: 'alarm', channel: 'c', warnHigh: 100, warnSeverity: 'warning', high: 200 };
    const method = {
      id: 'notified',
      standard: 'ISO 6892-1:2019',
      title: 'Tensile testing, notified',
      definition: { measurands: [{ name: 'force', unit: 'kN', channel: 'c' }], decisionRule: { kind: 'simple-acceptance' }, rules: [rule] },
    };
    expect((await call('/api/methods', json(method))).status).toBe(201);
    const sample = { id: 'S-N', organization: ORGANIZATION, description: 'bar', condition: 'intact', receivedAt: Date.now() - DAY };
    expect((await call('/api/lab-samples', json(sample))).status).toBe(201);
    run = (await call<{ id: string }>('/api/runs', json({ sample: 'S-N', method: 'notified', instruments: ['ut-1'] }))).body.id;
    expect((await call(`/api/runs/${run}/start`, json({}))).status).toBe(200);
    expect(await send(t, gw, gw.sign(records('ut-1', 0, 3, 20)))).toBe('acked');
    expect(await send(t, gw, gw.sign(records('ut-1', 3, 2, 150)))).toBe('acked');
    await waitFor('the warning', () => events('tech@lab.test').includes('alarm.raised'));
    expect(await send(t, gw, gw.sign(records('ut-1', 5, 2, 250)))).toBe('acked');
    await waitFor('the escalation', () => events('tech@lab.test').includes('alarm.escalated'));
    expect((await call(`/api/runs/${run}/stop`, json({}))).status).toBe(200);
    expect((await call('/api/certificates', json({ run }))).status).toBe(201);
    const now = Date.now();
    const calibration = {
      calibratedAt: now - 300 * DAY,
      laboratory: 'Calibration Lab',
      certificate: 'CAL-N1',
      results: [{ point: '100 kN', reference: 100, indication: 100.1, unit: 'kN' }],
      uncertainty: { value: 0.1, unit: 'kN' },
      nextDueAt: now + 10 * DAY,
    };
    expect((await call('/api/instruments/ut-1/calibrations', json(calibration))).status).toBe(201);
    t.server.events.record('gw-a', 'forged', 'alarm', 'a batch signed by a key the gateway does not hold');
    await gw.end();

    const expected = [
      'alarm.raised',
      'alarm.escalated',
      'run.completed',
      'certificate.draft',
      'calibration.due-soon',
      'security.event',
      'gateway.offline',
    ];
    await waitFor('an e-mail of each kind', () => expected.every((e) => events('tech@lab.test').includes(e)), 20_000);
    await waitFor('a webhook of each kind', () => expected.every((e) => generic.requests.some((r) => r.body.includes(`"type":"${e}"`))), 20_000);
    await idle();
    gw = await TestGateway.connect(t, 'gw-a');

    // e-mail: one per event, to the address, in the user's language (en by default), through the authenticated relay
    expect(events('tech@lab.test').sort()).toEqual([...expected].sort());
    const escalated = smtp.to('tech@lab.test').find((m) => eventOf(m) === 'alarm.escalated');
    expect(escalated?.mail.subject).toBe(`Alarm escalated to alarm: run ${run}, ut-1 / c`);
    expect(escalated?.mail.text).toContain(`#/runs/${run}`);
    expect(escalated?.mail.from?.value[0]).toMatchObject({ name: 'labtrace', address: 'lab@lab.test' });

    // webhooks: each request's signature verifies with the secret shown at creation; the id stays the same per delivery
    expect(generic.requests).toHaveLength(expected.length);
    for (const r of generic.requests) {
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(verifyStandardWebhook(String(techHook.secret), r.headers, r.body)).toBe(true);
    }
    const completed = generic.requests.find((r) => r.body.includes('"type":"run.completed"'));
    expect(JSON.parse(completed?.body ?? '{}')).toMatchObject({
      type: 'run.completed',
      data: { run, organization: ORGANIZATION, sample: 'S-N', method: { id: 'notified' } },
      message: { subject: `Run ${run} completed` },
    });
  });

  test('the signatory’s draft reaches the WeCom, DingTalk and Feishu robots in their formats, signed as each documents', async () => {
    expect(events('sig@lab.test')).toEqual(['certificate.draft']);
    // in the signatory's language, the time in Shanghai's zone
    const [mail] = smtp.to('sig@lab.test');
    expect(mail?.mail.subject).toMatch(/^报告 \S+ 待签发$/);
    expect(mail?.mail.text).toMatch(/申请时间：\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+8/);
    const [wecomReq] = robots.requests.filter((r) => r.url.startsWith('/wecom/'));
    expect(wecomReq?.url).toBe('/wecom/cgi-bin/webhook/send?key=wecom-key-0123456789abcdef');
    expect(JSON.parse(wecomReq?.body ?? '{}')).toEqual({
      msgtype: 'markdown',
      markdown: { content: expect.stringMatching(/^### 报告 \S+ 待签发\n/) },
    });

    const [dingReq] = robots.requests.filter((r) => r.url.startsWith('/dingtalk/'));
    const url = new URL(dingReq?.url ?? '/', 'http://x');
    const ts = url.searchParams.get('timestamp') ?? '';
    expect(url.searchParams.get('access_token')).toBe('ding-token-0123456789abcdef');
    expect(Math.abs(Number(ts) - Date.now())).toBeLessThan(3_600_000);
    expect(url.searchParams.get('sign')).toBe(createHmac('sha256', DING_SECRET).update(`${ts}\n${DING_SECRET}`).digest('base64'));
    expect(JSON.parse(dingReq?.body ?? '{}')).toMatchObject({ msgtype: 'markdown', markdown: { title: expect.stringMatching(/待签发$/) } });

    const [feishuReq] = robots.requests.filter((r) => r.url.startsWith('/feishu/'));
    const body = JSON.parse(feishuReq?.body ?? '{}') as { timestamp: string; sign: string; msg_type: string; content: { text: string } };
    expect(body.msg_type).toBe('text');
    expect(body.content.text).toMatch(/待签发/);
    expect(body.sign).toBe(createHmac('sha256', `${body.timestamp}\n${FEISHU_SECRET}`).update('').digest('base64'));
  });

  test('a client hears of its own organization’s runs only, and never of a draft', async () => {
    expect(events('client@a.test').sort()).toEqual(['alarm.escalated', 'alarm.raised', 'run.completed']);
    expect(events('client@b.test')).toEqual([]);
    const clientB = await call<Deliveries>('/api/notifications/deliveries', {}, 'admin');
    expect(clientB.body.deliveries.filter((d) => d.recipient === 'client-b')).toEqual([]);
  });

  test('the delivery log (admin only) and the health show what was sent and what failed', async () => {
    const log = await call<Deliveries>('/api/notifications/deliveries?limit=5', {}, 'admin');
    expect(log.status).toBe(200);
    expect(log.body.deliveries).toHaveLength(5);
    expect(log.body.counts).toMatchObject({ pending: 0, failed: 0 });
    const ids = log.body.deliveries.map((d) => d.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    for (const role of ['technician', 'signatory', 'client', 'auditor'] as Role[])
      expect((await call('/api/notifications/deliveries', {}, role)).status).toBe(403);
    const health = (await (await fetch(`${t.base}/api/health`)).json()) as { notifications: { pending: number; failed: number } };
    expect(health.notifications).toMatchObject({ pending: 0, failed: 0, email: true });
  });

  test('a test message goes to the caller’s own channel at once', async () => {
    const before = smtp.to('client@a.test').length;
    const res = await call<{ status: string; type: string }>('/api/notifications/test', json({ channel: 'email' }), 'client');
    expect(res.body).toMatchObject({ status: 'sent', type: 'test' });
    expect(smtp.to('client@a.test')).toHaveLength(before + 1);
    // another's webhook is not the caller's to test
    expect((await call('/api/notifications/test', json({ channel: 'webhook', webhook: wecom.id }), 'technician')).status).toBe(404);
  });
});

test('bad input is a 400 naming the field, never a 500', async () => {
  const cases: [string, RequestInit, string][] = [
    ['/api/notifications/subscriptions', put({ kinds: { 'no-such-kind': { email: true } } }), 'Unrecognized key: \\"no-such-kind\\"'],
    ['/api/notifications/subscriptions', put({ kinds: { alarm: { webhooks: ['x'] } } }), 'kinds.alarm.webhooks[0]'],
    ['/api/notifications/subscriptions', put(null), ''],
    ['/api/notifications/webhooks', json({ name: 'x', owner: 'technician', url: 'http://[::1', preset: 'generic' }), 'url'],
    ['/api/notifications/webhooks', json({ name: 'x', owner: 'technician', url: 'ftp://h.example/x', preset: 'generic' }), 'url'],
    ['/api/notifications/webhooks', json({ name: 'x', owner: 'technician', url: 'http://h.example/x', preset: 'slack' }), 'preset'],
    ['/api/notifications/webhooks', json({ name: 'x', owner: 'technician', url: 'http://h.example/x', secret: 'whsec_!!!!!!!!' }), 'secret'],
    ['/api/notifications/webhooks', json({ name: 'x', owner: 'nobody-here', url: 'http://h.example/x' }), 'owner'],
    ['/api/notifications/webhooks/not-an-id', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{}' }, 'id'],
    ['/api/notifications/webhooks/wh-0123456789ab', { method: 'DELETE' }, 'reason'],
    ['/api/notifications/deliveries?limit=lots', {}, 'limit'],
    ['/api/notifications/deliveries/abc/retry', json({}), 'id'],
    ['/api/notifications/test', json({ channel: 'pigeon' }), ''],
  ];
  for (const [path, init, field] of cases) {
    const res = await call<{ error: string; issues?: { path: string }[] }>(path, init, 'admin');
    expect({ path, status: res.status }).toEqual({ path, status: 400 });
    if (field !== '')
      expect({ path, named: `${res.body.error} ${JSON.stringify(res.body.issues ?? [])}`.includes(field) }).toEqual({ path, named: true });
  }
});

describe('a receiver that is down', () => {
  test('gets the notification once it is back: tried again with back-off, then sent, signed', async () => {
    const port = await freePort();
    const hook = await createWebhook({ name: 'down at first', owner: 'admin', url: `http://127.0.0.1:${port}/late`, preset: 'generic' });
    secrets.push(String(hook.secret));
    const sub = await call('/api/notifications/subscriptions', put({ kinds: { 'security-event': { webhooks: [hook.id] } } }), 'admin');
    expect(sub.status).toBe(200);
    t.server.events.record('gw-b', 'altered', 'alarm', 'a batch whose records do not match its signed digest');
    const mine = async () =>
      (await call<Deliveries>('/api/notifications/deliveries', {}, 'admin')).body.deliveries.find((d) => d.recipient === 'admin');
    let seen: Awaited<ReturnType<typeof mine>>;
    await waitFor('two failed attempts', () => {
      void mine().then((d) => (seen = d));
      return seen !== undefined && seen.attempts >= 2;
    });
    expect(seen).toMatchObject({ status: 'pending', lastError: expect.stringMatching(/ECONNREFUSED/) });

    const late = new HttpReceiver();
    await late.listen(port);
    try {
      await waitFor('the late delivery', () => late.requests.length > 0, 20_000);
      await idle();
      expect(late.requests).toHaveLength(1);
      expect(verifyStandardWebhook(String(hook.secret), late.requests[0]?.headers ?? {}, late.requests[0]?.body ?? '')).toBe(true);
      expect((await mine())?.status).toBe('sent');
    } finally {
      await late.close();
    }
  });
});

describe('the admin changes and deletes a webhook', () => {
  test('a rotated secret is shown once and signs from then on; a deletion fails the waiting deliveries, both audited', async () => {
    const port = await freePort();
    const hook = await createWebhook({ name: 'to rotate', owner: 'admin', url: `http://127.0.0.1:${port}/rotate`, preset: 'generic' });
    const rotated = await call<{ secret: string }>(
      `/api/notifications/webhooks/${hook.id}`,
      {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rotateSecret: true, reason: 'the old one leaked' }),
      },
      'admin',
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(hook.secret);
    secrets.push(String(hook.secret), rotated.body.secret);
    const listed = await call('/api/notifications/webhooks', {}, 'admin');
    expect(JSON.stringify(listed.body)).not.toContain(rotated.body.secret);

    // its receiver is down: the delivery waits; the test message is signed with the new secret
    const receiver = new HttpReceiver(() => ({ status: 503, body: 'busy' }));
    await receiver.listen(port);
    try {
      const tried = await call<{ status: string; lastError: string }>(
        '/api/notifications/test',
        json({ channel: 'webhook', webhook: hook.id }),
        'admin',
      );
      expect(tried.body).toMatchObject({ status: 'pending', lastError: 'HTTP 503: busy' });
      const [first] = receiver.requests;
      expect(verifyStandardWebhook(rotated.body.secret, first?.headers ?? {}, first?.body ?? '')).toBe(true);
      expect(verifyStandardWebhook(String(hook.secret), first?.headers ?? {}, first?.body ?? '')).toBe(false);
    } finally {
      await receiver.close();
    }

    const noReason = await call(`/api/notifications/webhooks/${hook.id}`, { method: 'DELETE' }, 'admin');
    expect(noReason.status).toBe(400);
    const deleted = await call<{ failedDeliveries: number }>(
      `/api/notifications/webhooks/${hook.id}`,
      { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'the group was closed' }) },
      'admin',
    );
    expect(deleted.body).toEqual({ deleted: hook.id, failedDeliveries: 1 });
    const failed = await call<Deliveries>('/api/notifications/deliveries?status=failed', {}, 'admin');
    expect(failed.body.deliveries[0]).toMatchObject({ status: 'failed', lastError: 'the webhook was deleted' });
    const audit = await call<{ action: string; reason: string | null; newValue: unknown; oldValue: unknown }[]>(
      `/api/audit-trail?recordType=notification-webhook&recordId=${hook.id}`,
      {},
      'admin',
    );
    const entries = (audit.body as unknown as { items: typeof audit.body }).items;
    expect(entries.map((e) => [e.action, e.reason]).sort()).toEqual(
      [
        ['create', null],
        ['update', 'the old one leaked'],
        ['delete', 'the group was closed'],
      ].sort(),
    );
    expect(JSON.stringify(entries)).not.toContain(rotated.body.secret);
  });
});

test('no secret reaches the log', () => {
  const text = logs.join('');
  expect(text).toMatch(/a notification could not be delivered/);
  for (const s of secrets) expect(text.includes(s)).toBe(false);
});
