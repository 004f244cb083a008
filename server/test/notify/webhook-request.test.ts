// The webhook requests against the published formats: the Standard Webhooks 1.0 test vector, and the public
// message formats and signing rules of the WeCom, DingTalk and Feishu group robots.
import { createHmac } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { render } from '../../src/notify/messages.js';
import {
  accepted,
  cutBytes,
  maskUrl,
  newSecret,
  standardSignature,
  webhookRequest,
  type Delivery,
  type WebhookTarget,
} from '../../src/notify/webhook-request.js';
import { verifyStandardWebhook } from './standard-webhooks.js';

// The reference vector of the Standard Webhooks test suite (github.com/standard-webhooks/standard-webhooks, Apache-2.0),
// also used by the svix libraries' tests.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const NOW = Date.UTC(2027, 0, 15, 9, 30, 0);
const event = {
  kind: 'run-completed' as const,
  at: Date.UTC(2027, 0, 15, 9, 0, 0),
  run: 'run-7',
  organization: 'org-a',
  sample: 'S-1',
  method: { id: 'tensile', version: 2, standard: 'ISO 6892-1:2019' },
};
const delivery = (locale: 'en' | 'zh-CN' = 'en'): Delivery => ({
  id: 'msg_42',
  type: 'run.completed',
  at: event.at,
  data: { run: 'run-7' },
  message: render(event, { locale, timeZone: 'Asia/Shanghai', baseUrl: 'https://lab.example' }),
});
const target = (preset: WebhookTarget['preset'], over: Partial<WebhookTarget> = {}): WebhookTarget => ({
  url: 'https://receiver.example/hook?key=very-secret-key-123',
  preset,
  format: 'markdown',
  secret: null,
  ...over,
});

describe('generic webhooks: Standard Webhooks 1.0', () => {
  test('the signature of the published vector', () => {
    expect(standardSignature(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.payload)).toBe(VECTOR.signature);
  });

  test('a request verifies with the receiver-side check, and fails after one changed byte or with an old timestamp', () => {
    const secret = newSecret();
    const req = webhookRequest(target('generic', { secret }), delivery(), NOW);
    const nowS = Math.floor(NOW / 1000);
    expect(req.headers['webhook-id']).toBe('msg_42');
    expect(req.headers['webhook-timestamp']).toBe(String(nowS));
    expect(verifyStandardWebhook(secret, req.headers, req.body, nowS)).toBe(true);
    expect(verifyStandardWebhook(secret, req.headers, req.body.replace('run-7', 'run-8'), nowS)).toBe(false);
    expect(verifyStandardWebhook(newSecret(), req.headers, req.body, nowS)).toBe(false);
    // a replay ten minutes later is refused by its timestamp
    expect(verifyStandardWebhook(secret, req.headers, req.body, nowS + 600)).toBe(false);
    const body = JSON.parse(req.body) as { type: string; timestamp: string; data: unknown; message: { subject: string } };
    expect(body).toMatchObject({ type: 'run.completed', timestamp: '2027-01-15T09:00:00.000Z', data: { run: 'run-7' } });
    expect(body.message.subject).toBe('Run run-7 completed');
  });
});

describe('group robots: their public formats', () => {
  test('WeCom: {msgtype, markdown: {content}} or {msgtype, text: {content}}, cut to the robot’s byte limits', () => {
    const md = JSON.parse(webhookRequest(target('wecom'), delivery('zh-CN'), NOW).body) as unknown;
    expect(md).toEqual({ msgtype: 'markdown', markdown: { content: expect.stringContaining('### 试验 run-7 已完成') } });
    const text = JSON.parse(webhookRequest(target('wecom', { format: 'text' }), delivery(), NOW).body) as unknown;
    expect(text).toEqual({ msgtype: 'text', text: { content: expect.stringContaining('Run run-7 completed') } });
    const long = { ...delivery('zh-CN'), message: { ...delivery('zh-CN').message, markdown: '报'.repeat(3000) } };
    const cut = JSON.parse(webhookRequest(target('wecom'), long, NOW).body) as { markdown: { content: string } };
    expect(Buffer.byteLength(cut.markdown.content)).toBeLessThanOrEqual(4096);
  });

  test('DingTalk: timestamp (ms) and sign = base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)) in the query', () => {
    const secret = 'SEC0123456789abcdef';
    const req = webhookRequest(target('dingtalk', { url: 'https://oapi.dingtalk.com/robot/send?access_token=abc', secret }), delivery(), NOW);
    const url = new URL(req.url);
    expect(url.searchParams.get('access_token')).toBe('abc');
    expect(url.searchParams.get('timestamp')).toBe(String(NOW));
    // the documented algorithm, written out here: the key is the secret, the message timestamp + "\n" + secret
    expect(url.searchParams.get('sign')).toBe(createHmac('sha256', secret).update(`${NOW}\n${secret}`).digest('base64'));
    expect(JSON.parse(req.body)).toEqual({
      msgtype: 'markdown',
      markdown: { title: 'Run run-7 completed', text: expect.stringContaining('**Run**') },
    });
    const text = JSON.parse(webhookRequest(target('dingtalk', { format: 'text' }), delivery(), NOW).body) as unknown;
    expect(text).toEqual({ msgtype: 'text', text: { content: expect.stringContaining('Run run-7 completed') } });
  });

  test('Feishu: timestamp (s) and sign = base64(HMAC-SHA256(key: timestamp + "\\n" + secret, message: "")) in the body', () => {
    const secret = 'feishu-secret';
    const ts = Math.floor(NOW / 1000);
    const text = JSON.parse(webhookRequest(target('feishu', { secret, format: 'text' }), delivery(), NOW).body) as Record<string, unknown>;
    expect(text).toEqual({
      timestamp: String(ts),
      sign: createHmac('sha256', `${ts}\n${secret}`).update('').digest('base64'),
      msg_type: 'text',
      content: { text: expect.stringContaining('Run run-7 completed') },
    });
    const card = JSON.parse(webhookRequest(target('feishu'), delivery(), NOW).body) as Record<string, unknown>;
    expect(card).toMatchObject({
      msg_type: 'interactive',
      card: { header: { title: { tag: 'plain_text', content: 'Run run-7 completed' } }, elements: [{ tag: 'markdown' }] },
    });
    expect(card).not.toHaveProperty('sign');
  });

  test('a robot’s refusal in a 200 answer is a failed delivery; its success is not', () => {
    expect(accepted('wecom', 200, '{"errcode":0,"errmsg":"ok"}')).toEqual({ ok: true });
    expect(accepted('dingtalk', 200, '{"errcode":310000,"errmsg":"sign not match"}')).toMatchObject({ ok: false, error: /310000 sign not match/ });
    expect(accepted('feishu', 200, '{"code":19021,"msg":"sign match fail"}')).toMatchObject({ ok: false, error: /19021/ });
    expect(accepted('feishu', 200, '{"code":0,"msg":"success"}')).toEqual({ ok: true });
    expect(accepted('generic', 404, '')).toMatchObject({ ok: false, permanent: true });
    expect(accepted('generic', 503, '')).toMatchObject({ ok: false, permanent: false });
  });
});

describe('words and credentials', () => {
  test('a text in Chinese with the time in the recipient’s zone, the zone shown', () => {
    const m = render(event, { locale: 'zh-CN', timeZone: 'Asia/Shanghai', baseUrl: 'https://lab.example' });
    expect(m.subject).toBe('试验 run-7 已完成');
    // 09:00 UTC is 17:00 in Shanghai
    expect(m.text).toContain('完成时间：2027-01-15 17:00:00 GMT+8');
    expect(m.link).toBe('https://lab.example/#/runs/run-7');
    const en = render(event, { locale: 'en', timeZone: 'Europe/Berlin', baseUrl: 'https://lab.example' });
    expect(en.text).toContain('Completed: 2027-01-15 10:00:00 GMT+1');
    expect(render(event, { locale: 'en', timeZone: 'UTC', baseUrl: '' }).text).toContain('Completed: 2027-01-15 09:00:00 UTC');
  });

  test('an escalated alarm says so, with the alarm as it stands', () => {
    const alarm = {
      id: 'force/ut-1/c#1',
      ruleId: 'force',
      kind: 'limits',
      severity: 'alarm',
      instrument: 'ut-1',
      channel: 'c',
      message: 'c = 250 kN above the limit 200',
      raisedAt: event.at,
      value: 250,
      active: true,
      occurrences: 1,
      returnedAt: null,
      acknowledged: null,
      cleared: null,
    };
    const m = render(
      { kind: 'alarm', at: event.at, run: 'run-7', organization: 'org-a', event: 'escalated', seq: 2, alarm },
      {
        locale: 'en',
        timeZone: 'UTC',
        baseUrl: 'https://lab.example',
      },
    );
    expect(m.subject).toBe('Alarm escalated to alarm: run run-7, ut-1 / c');
    expect(m.text).toContain('Message: c = 250 kN above the limit 200');
  });

  test('URLs are shown and logged without the robots’ keys and tokens', () => {
    expect(maskUrl('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0')).toBe(
      'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***',
    );
    expect(maskUrl('https://open.feishu.cn/open-apis/bot/v2/hook/2f1c3d4e-aaaa-bbbb-cccc-0123456789ab')).toBe(
      'https://open.feishu.cn/open-apis/bot/v2/hook/2f1c***',
    );
    expect(maskUrl('https://user:pass@h.example/x')).toBe('https://h.example/x');
  });

  test('cutting to a byte limit never splits a character', () => {
    const cut = cutBytes('报警'.repeat(100), 50);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(50);
    expect(cut.endsWith('...')).toBe(true);
    expect(cut).not.toContain('\uFFFD');
  });
});
