// A receiver's check of a Standard Webhooks 1.0 signature, written from the specification (not from our sender):
// HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>" with the base64-decoded part of the whsec_ secret,
// compared with each "v1,<base64>" of webhook-signature; the timestamp within 5 minutes of the receiver's clock.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verifyStandardWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  nowS = Math.floor(Date.now() / 1000),
): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return false;
  if (!/^\d+$/.test(ts) || Math.abs(nowS - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  return sig.split(' ').some((s) => {
    const [version, value] = s.split(',');
    if (version !== 'v1' || value === undefined) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
