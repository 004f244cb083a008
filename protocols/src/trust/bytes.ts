// Hex, base64 and UTF-8 for the trust code without Buffer, so that it also runs in a browser.
import { TrustError } from './errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/;
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_VALUE = new Map<string, number>([...BASE64_ALPHABET].map((c, i) => [c, i]));
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Lower-case hex only: the formats we read (key ids, vectors) never use upper case. */
export function fromHex(text: string): Uint8Array {
  if (!HEX.test(text)) throw new TrustError('bad-hex', `not lower-case hex of whole bytes: "${text.slice(0, 80)}"`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Standard base64 with padding (RFC 4648 section 4), as signed notes and checkpoints use. */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64_ALPHABET.charAt((n >> 18) & 63) + BASE64_ALPHABET.charAt((n >> 12) & 63);
    out += i + 1 < bytes.length ? BASE64_ALPHABET.charAt((n >> 6) & 63) : '=';
    out += i + 2 < bytes.length ? BASE64_ALPHABET.charAt(n & 63) : '=';
  }
  return out;
}

/**
 * Strict standard base64: padding required, no whitespace, and only the canonical encoding of the bytes is
 * accepted (unused bits must be zero), so one value has exactly one text form.
 */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new TrustError('bad-base64', `not padded standard base64: "${text.slice(0, 80)}"`);
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) n = (n << 6) | (BASE64_VALUE.get(text.charAt(i + j)) ?? 0);
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  if (toBase64(out) !== text) throw new TrustError('bad-base64', `not the canonical base64 of its bytes: "${text.slice(0, 80)}"`);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 of a well-formed string; a lone surrogate has no UTF-8 form and is refused rather than replaced. */
export function utf8(text: string): Uint8Array {
  if (hasLoneSurrogate(text)) throw new TrustError('bad-text', 'text contains a lone UTF-16 surrogate, which has no UTF-8 form');
  return encoder.encode(text);
}

/** Decodes UTF-8, refusing malformed input instead of replacing it. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new TrustError('bad-text', 'bytes are not valid UTF-8', { cause: String(cause) });
  }
}

export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
