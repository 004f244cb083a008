// Hex, base64 and UTF-8 for the trust code without requiring Buffer, so that it also runs in a browser (base64 is
// decoded by Node's Buffer where there is one).
import { TrustError } from './errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/;
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
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

/** base64 character code -> value (-1: not in the alphabet; '=' is padding) */
const BASE64_VALUES = (() => {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < BASE64_ALPHABET.length; i++) table[BASE64_ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** Node's Buffer where there is one: its base64 decoder is native (and lenient: the text is checked to be canonical). */
const NodeBuffer = (globalThis as { Buffer?: { from(text: string, encoding: 'base64'): Uint8Array & { toString(encoding: 'base64'): string } } })
  .Buffer;

/**
 * Strict standard base64: padding required, no whitespace, and only the canonical encoding of the bytes is
 * accepted (unused bits must be zero), so one value has exactly one text form. Record bytes of export bundles are
 * most of their size: decoded natively where Node's Buffer is there, else with a lookup table.
 */
export function fromBase64(text: string): Uint8Array {
  const bytes = NodeBuffer !== undefined ? decodeNative(NodeBuffer, text) : decodeTable(text);
  if (bytes !== undefined) return bytes;
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new TrustError('bad-base64', `not padded standard base64: "${text.slice(0, 80)}"`);
  throw new TrustError('bad-base64', `not the canonical base64 of its bytes: "${text.slice(0, 80)}"`);
}

/** The bytes when the text is the canonical base64 Buffer writes for them, as a Uint8Array of their own. */
function decodeNative(buffer: NonNullable<typeof NodeBuffer>, text: string): Uint8Array | undefined {
  const bytes = buffer.from(text, 'base64');
  // Node's decoder skips what is not base64: the text must be what encoding the bytes gives back (which also
  // makes it canonical: padded, no stray padding, unused bits zero)
  if (bytes.toString('base64') !== text) return undefined;
  // a small Buffer is a slice of a shared pool: copied, so that the bytes own their ArrayBuffer as they do elsewhere
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? new Uint8Array(bytes.buffer, 0, bytes.byteLength)
    : new Uint8Array(bytes);
}

/** The bytes when the text is canonical padded standard base64 (else undefined), by the lookup table. */
function decodeTable(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  const full = text.length - (padding === 0 ? 0 : 4);
  let o = 0;
  let bad = false;
  const value = (i: number): number => {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (BASE64_VALUES[c] ?? -1) : -1;
    if (v < 0) bad = true;
    return v;
  };
  for (let i = 0; i < full && !bad; i += 4) {
    const n = (value(i) << 18) | (value(i + 1) << 12) | (value(i + 2) << 6) | value(i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (padding === 2) {
    const n = (value(full) << 18) | (value(full + 1) << 12);
    if ((n & 0xffff) !== 0) bad = true;
    out[o] = n >> 16;
  } else if (padding === 1) {
    const n = (value(full) << 18) | (value(full + 1) << 12) | (value(full + 2) << 6);
    if ((n & 0xff) !== 0) bad = true;
    out[o++] = n >> 16;
    out[o] = (n >> 8) & 255;
  }
  return bad ? undefined : out;
}

/**
 * Decodes short strict base64 (a hash, a signature) into out[at..): the number of bytes written, or -1 where
 * fromBase64 would throw (not padded standard base64, not canonical, or not fitting `out`). In plain JavaScript:
 * for texts of a few dozen characters this is quicker than a native call and allocates nothing.
 */
export function base64Into(text: string, out: Uint8Array, at: number): number {
  const length = text.length;
  if (length === 0) return 0;
  if (length % 4 !== 0) return -1;
  const padding = text.charCodeAt(length - 1) === 61 ? (text.charCodeAt(length - 2) === 61 ? 2 : 1) : 0;
  const size = (length / 4) * 3 - padding;
  if (at < 0 || at + size > out.length) return -1;
  const full = length - (padding === 0 ? 0 : 4);
  let o = at;
  let bad = 0;
  for (let i = 0; i < full; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    // a character outside the table reads -1, and any -1 sets the sign bit of `bad`
    const va = a < 128 ? (BASE64_VALUES[a] ?? -1) : -1;
    const vb = b < 128 ? (BASE64_VALUES[b] ?? -1) : -1;
    const vc = c < 128 ? (BASE64_VALUES[c] ?? -1) : -1;
    const vd = d < 128 ? (BASE64_VALUES[d] ?? -1) : -1;
    bad |= va | vb | vc | vd;
    const n = (va << 18) | (vb << 12) | (vc << 6) | vd;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (padding > 0) {
    const a = text.charCodeAt(full);
    const b = text.charCodeAt(full + 1);
    const va = a < 128 ? (BASE64_VALUES[a] ?? -1) : -1;
    const vb = b < 128 ? (BASE64_VALUES[b] ?? -1) : -1;
    bad |= va | vb;
    if (padding === 2) {
      // unused bits must be zero: only the canonical text of the bytes is accepted
      if ((vb & 15) !== 0) return -1;
      out[o] = ((va << 2) | (vb >> 4)) & 255;
    } else {
      const c = text.charCodeAt(full + 2);
      const vc = c < 128 ? (BASE64_VALUES[c] ?? -1) : -1;
      bad |= vc;
      if ((vc & 3) !== 0) return -1;
      const n = (va << 18) | (vb << 12) | (vc << 6);
      out[o++] = n >> 16;
      out[o] = (n >> 8) & 255;
    }
  }
  return bad < 0 ? -1 : size;
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
