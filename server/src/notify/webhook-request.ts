// The HTTP request of one webhook delivery, by preset. Pure: the caller sends it.
// - generic: JSON {type, timestamp, data, message}, signed per Standard Webhooks 1.0 (webhook-id, webhook-timestamp
//   and webhook-signature = "v1," + base64 HMAC-SHA256 over "<id>.<timestamp>.<raw body>" with the whsec_ secret), so
//   that a receiver checks origin, integrity and freshness (replay) with any Standard Webhooks library.
// - wecom: the group robot's {msgtype: text|markdown}; its key is in the URL, it signs nothing.
// - dingtalk: {msgtype: text|markdown}; with a secret, timestamp (ms) and sign = base64(HMAC-SHA256(secret,
//   timestamp + "\n" + secret)) in the URL's query.
// - feishu: {msg_type: text | interactive}; with a secret, timestamp (s) and sign = base64(HMAC-SHA256(key: timestamp +
//   "\n" + secret, message: empty)) in the body.
import { createHmac, randomBytes } from 'node:crypto';
import { LabtraceError } from '@labtrace/protocols';
import type { Message } from './messages.js';

export type Preset = 'generic' | 'wecom' | 'dingtalk' | 'feishu';

export interface WebhookTarget {
  url: string;
  preset: Preset;
  format: 'text' | 'markdown';
  secret: string | null;
}

export interface Delivery {
  /** stable across retries: the receiver's idempotency key */
  id: string;
  type: string;
  /** when the event happened */
  at: number;
  data: Record<string, unknown>;
  message: Message;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const SECRET_PREFIX = 'whsec_';

/** A new Standard Webhooks secret: whsec_ and 32 random bytes in base64. */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/** The HMAC key of a whsec_ secret (its base64 part decoded); throws on a malformed one. */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new LabtraceError('E_BAD_REQUEST', 'body: secret: expected whsec_ followed by base64');
  const key = Buffer.from(b64, 'base64');
  if (key.length < 24 || key.length > 64) throw new LabtraceError('E_BAD_REQUEST', 'body: secret: expected 24 to 64 bytes after whsec_');
  return key;
}

/** The Standard Webhooks signature header of a body. */
export function standardSignature(secret: string, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/** DingTalk's sign: base64(HMAC-SHA256(key: secret, message: timestamp + "\n" + secret)). */
export function dingtalkSign(secret: string, timestampMs: number): string {
  return createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64');
}

/** Feishu's sign: base64(HMAC-SHA256(key: timestamp + "\n" + secret, message: empty)). */
export function feishuSign(secret: string, timestampS: number): string {
  return createHmac('sha256', `${timestampS}\n${secret}`).update('').digest('base64');
}

/** Cuts a text to a number of UTF-8 bytes (the robots refuse longer messages) without splitting a character. */
export function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

export function webhookRequest(target: WebhookTarget, d: Delivery, nowMs: number): WebhookRequest {
  const json = { 'content-type': 'application/json; charset=utf-8' };
  const { message } = d;
  const markdown = target.format === 'markdown';
  switch (target.preset) {
    case 'generic': {
      const body = JSON.stringify({
        type: d.type,
        timestamp: new Date(d.at).toISOString(),
        data: d.data,
        message: { subject: message.subject, text: message.text, markdown: message.markdown, link: message.link },
      });
      const ts = Math.floor(nowMs / 1000);
      const headers: Record<string, string> = { ...json, 'webhook-id': d.id, 'webhook-timestamp': String(ts) };
      if (target.secret !== null) headers['webhook-signature'] = standardSignature(target.secret, d.id, ts, body);
      return { url: target.url, headers, body };
    }
    case 'wecom':
      return {
        url: target.url,
        headers: json,
        // limits of the robot: markdown 4096 bytes, text 2048 bytes
        body: JSON.stringify(
          markdown
            ? { msgtype: 'markdown', markdown: { content: cutBytes(message.markdown, 4096) } }
            : { msgtype: 'text', text: { content: cutBytes(message.text, 2048) } },
        ),
      };
    case 'dingtalk': {
      let url = target.url;
      if (target.secret !== null) {
        const u = new URL(target.url);
        u.searchParams.set('timestamp', String(nowMs));
        u.searchParams.set('sign', dingtalkSign(target.secret, nowMs));
        url = u.toString();
      }
      return {
        url,
        headers: json,
        body: JSON.stringify(
          markdown
            ? { msgtype: 'markdown', markdown: { title: message.subject, text: message.markdown } }
            : { msgtype: 'text', text: { content: message.text } },
        ),
      };
    }
    case 'feishu': {
      const ts = Math.floor(nowMs / 1000);
      const signed = target.secret === null ? {} : { timestamp: String(ts), sign: feishuSign(target.secret, ts) };
      const content = markdown
        ? {
            msg_type: 'interactive',
            card: {
              header: { title: { tag: 'plain_text', content: message.subject } },
              elements: [{ tag: 'markdown', content: message.markdown.replace(/^### .*\n/, '') }],
            },
          }
        : { msg_type: 'text', content: { text: message.text } };
      return { url: target.url, headers: json, body: JSON.stringify({ ...signed, ...content }) };
    }
  }
}

/**
 * Whether the receiver took the message: a 2xx answer, and for the robots their own result code too (they answer
 * 200 with errcode/code non-zero when they refuse: a bad signature, a rate limit).
 */
export function accepted(preset: Preset, status: number, body: string): { ok: true } | { ok: false; error: string; permanent: boolean } {
  if (status < 200 || status > 299) {
    // a request the receiver will never take as it is (gone, refused, malformed) is not retried
    const permanent = [400, 401, 403, 404, 405, 410, 413, 422].includes(status);
    return { ok: false, error: `HTTP ${status}${body === '' ? '' : `: ${body.slice(0, 200)}`}`, permanent };
  }
  if (preset === 'generic') return { ok: true };
  let answer: { errcode?: unknown; errmsg?: unknown; code?: unknown; msg?: unknown; StatusCode?: unknown };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    return { ok: false, error: `the robot's answer is not JSON: ${body.slice(0, 200)}`, permanent: false };
  }
  const code = preset === 'feishu' ? (answer.code ?? answer.StatusCode) : answer.errcode;
  if (code === 0) return { ok: true };
  const text = preset === 'feishu' ? answer.msg : answer.errmsg;
  return {
    ok: false,
    error: `the robot refused it: code ${String(code)}${typeof text === 'string' ? ` ${text.slice(0, 200)}` : ''}`,
    permanent: false,
  };
}

/** A URL as it may be shown or logged: the robots' keys and tokens (query values, the hook's last path part) masked. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, '***');
    const parts = u.pathname.split('/');
    const last = parts.at(-1) ?? '';
    if (last.length >= 16) parts[parts.length - 1] = `${last.slice(0, 4)}***`;
    u.pathname = parts.join('/');
    u.username = '';
    u.password = '';
    return u.toString().replace(/%2A%2A%2A/g, '***');
  } catch {
    return '(a URL that does not parse)';
  }
}
