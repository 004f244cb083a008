// The verifier's fast path over one batch: its record bytes (record.ts layout, each behind its 0x00 leaf prefix) and
// their readable lines in records.jsonl, read side by side in one pass, with no record object and no string built.
// It answers only "all is as it should be" (with each record's bounds, for the leaf hashes) or "look closer": on
// anything unusual (a record that does not read, a field with characters JSON escapes or outside ASCII, a line that
// is not character for character what the exporter writes, a count, gateway, key, sequence number or time out of
// place) it gives up, and the verifier runs its full path over the batch, which names every problem. So it can
// never accept what the full path would refuse; it only spares the full path's work where there is nothing to find.
//
// What the exporter writes for a record (readableRecordLine in verifier.ts), and so what a line must be here:
//   {"gateway":"..","seq":N,"instrument":"..","channel":"..","ts":N,"value":V,"unit":"..","quality":"..",
//    ["reason":"..",]"batch":N}
import { RECORD_FORMAT } from '../trust/record.js';

const TWO_32 = 2 ** 32;
const ENCODER = new TextEncoder();
/** the quality field whole, by its code: one comparison */
const QUALITY_TEXT = ['"good"', '"uncertain"', '"bad"'].map((q) => ENCODER.encode(`,"quality":${q}`));
const P_CHANNEL = ENCODER.encode(',"channel":');
const P_INSTRUMENT = ENCODER.encode(',"instrument":');
const P_REASON = ENCODER.encode(',"reason":');
const P_TS = ENCODER.encode(',"ts":');
const P_UNIT = ENCODER.encode(',"unit":');
const P_VALUE = ENCODER.encode(',"value":');
const P_FALSE = ENCODER.encode('false');
const P_NULL = ENCODER.encode('null');
const P_TRUE = ENCODER.encode('true');

/** The batch's header fields the fast path checks its records against. */
export interface FastBatchHeader {
  gateway: string;
  batch: number;
  firstSeq: number;
  count: number;
  tsMin: number;
  tsMax: number;
}

/** the readable copy as UTF-8 bytes, the place in it and the end of the current line */
let text8: Uint8Array = new Uint8Array(0);
let pos = 0;
let end = 0;
/** the batch's record bytes and the place in them */
let bytes: Uint8Array = new Uint8Array(0);
let at = 0;

/** A piece of JSON syntax at the place in the line. */
function literal(piece: Uint8Array): boolean {
  const n = piece.length;
  if (pos + n > end) return false;
  for (let i = 0; i < n; i++) if (text8[pos + i] !== piece[i]) return false;
  pos += n;
  return true;
}

/** A value's text (ASCII: a number as String writes it) at the place in the line. */
function ascii(piece: string): boolean {
  const n = piece.length;
  if (pos + n > end) return false;
  for (let i = 0; i < n; i++) if (text8[pos + i] !== piece.charCodeAt(i)) return false;
  pos += n;
  return true;
}

/** A text field of the record (n bytes at `at`) as a JSON string in the line: plain ASCII only. */
function text(n: number): boolean {
  if (at + n > bytes.length || pos + n + 2 > end || text8[pos] !== 34) return false;
  const start = pos + 1;
  for (let i = 0; i < n; i++) {
    const b = bytes[at + i] ?? 0;
    // JSON escapes '"', '\' and control characters; anything outside ASCII is left to the full path
    if (b < 0x20 || b === 34 || b === 92 || b > 0x7e || text8[start + i] !== b) return false;
  }
  if (text8[start + n] !== 34) return false;
  pos = start + n + 1;
  at += n;
  return true;
}

/**
 * A non-negative safe integer in the line, as JSON (and String) writes it: its digits read as a number (exact up to
 * 2^53, and a number read past it cannot equal a safe integer), no leading zero.
 */
function integer(value: number): boolean {
  const start = pos;
  let v = 0;
  for (; pos < end; pos++) {
    const c = text8[pos] ?? 0;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  const digits = pos - start;
  if (digits === 0 || digits > 16 || (digits > 1 && text8[start] === 48)) return false;
  return v === value;
}

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * A finite number in the line that JSON.parse reads as `value`, as the full path compares it: a plain decimal of
 * at most 15 significant digits is read here exactly (its digits are an exact integer, divided by an exact power of
 * ten, and one correctly rounded division is the nearest double, as JSON.parse gives); any other form (an exponent,
 * more digits) is compared as the text String(value) writes.
 */
function decimal(value: number): boolean {
  const start = pos;
  let at = pos;
  const negative = text8[at] === 45;
  if (negative) at++;
  const first = at;
  let m = 0;
  for (; at < end; at++) {
    const c = text8[at] ?? 0;
    if (c < 48 || c > 57) break;
    m = m * 10 + (c - 48);
  }
  const whole = at - first;
  if (whole === 0 || (whole > 1 && text8[first] === 48)) return ascii(String(value));
  let k = 0;
  if (text8[at] === 46) {
    at++;
    for (; at < end; at++, k++) {
      const c = text8[at] ?? 0;
      if (c < 48 || c > 57) break;
      m = m * 10 + (c - 48);
    }
    if (k === 0) return false;
  }
  const next = text8[at];
  if (next === 101 || next === 69 || whole + k > 15 || k > 22) {
    pos = start;
    return ascii(String(value));
  }
  const read = (negative ? -m : m) / (POW10[k] ?? 1);
  if (read !== value) return false;
  pos = at;
  return true;
}

function u8(): number {
  return at < bytes.length ? (bytes[at++] ?? 0) : -1;
}

/** the start of a line for the last gateway seen (one gateway's batches follow one another) */
let headGateway: string | undefined;
let headBytes: Uint8Array = new Uint8Array(0);

/** Text of ASCII characters as its bytes, without a TextEncoder call (costly for short texts in a browser). */
function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** The readable copy as the fast path reads it: its UTF-8 bytes, and where each line starts and ends in them. */
export interface ReadableBytes {
  bytes: Uint8Array;
  starts: Uint32Array;
  ends: Uint32Array;
}

/** Lines as the UTF-8 bytes of the texts, one after another (for tests; the verifier maps the file itself). */
export function readableBytes(lines: readonly string[]): ReadableBytes {
  const encoder = new TextEncoder();
  const parts = lines.map((l) => encoder.encode(l));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
  const starts = new Uint32Array(lines.length);
  const ends = new Uint32Array(lines.length);
  let o = 0;
  parts.forEach((p, k) => {
    starts[k] = o;
    out.set(p, o);
    o += p.length;
    ends[k] = o;
    out[o++] = 10;
  });
  return { bytes: out, starts, ends };
}

/**
 * Checks the records of one batch against its header and the readable lines from line `from` on. Returns the bounds
 * of each record's slice (leaf prefix included) when every record and line is as expected, else undefined.
 */
export function fastBatch(
  records: Uint8Array,
  header: FastBatchHeader,
  keyId: Uint8Array,
  readable: ReadableBytes,
  from: number,
): Uint32Array | undefined {
  bytes = records;
  at = 0;
  text8 = readable.bytes;
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const bounds = new Uint32Array(header.count + 1);
  const gateway = header.gateway;
  // what every line of the batch starts and ends with, each compared at once
  if (gateway !== headGateway) {
    headGateway = gateway;
    headBytes = ENCODER.encode(`{"gateway":${JSON.stringify(gateway)},"seq":`);
  }
  const head = headBytes;
  const tail = asciiBytes(`,"batch":${header.batch}}`);
  try {
    for (let i = 0; i < header.count; i++) {
      if (from + i >= readable.starts.length) return undefined;
      pos = readable.starts[from + i] ?? 0;
      end = readable.ends[from + i] ?? 0;
      bounds[i] = at;
      if (u8() !== 0x00 || u8() !== RECORD_FORMAT) return undefined;
      // gateway (as the header names it), key id
      if (u8() !== gateway.length || at + gateway.length > records.length) return undefined;
      for (let k = 0; k < gateway.length; k++) if (records[at + k] !== gateway.charCodeAt(k)) return undefined;
      at += gateway.length;
      if (!literal(head)) return undefined;
      if (at + 4 > records.length) return undefined;
      for (let k = 0; k < 4; k++) if (records[at + k] !== keyId[k]) return undefined;
      at += 4;
      // seq: the header's next; ts: whole milliseconds inside the header's range
      if (at + 16 > records.length) return undefined;
      const seq = view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
      const hi = view.getUint32(at + 8);
      const lo = view.getUint32(at + 12);
      at += 16;
      if (seq !== header.firstSeq + i) return undefined;
      const rest = (hi % 1e6) * TWO_32 + lo;
      if (rest % 1e6 !== 0) return undefined;
      const ts = Math.floor(hi / 1e6) * TWO_32 + rest / 1e6;
      if (ts < header.tsMin || ts > header.tsMax) return undefined;
      if (!integer(seq)) return undefined;
      if (!literal(P_INSTRUMENT) || !text(u8())) return undefined;
      if (!literal(P_CHANNEL) || !text(u8())) return undefined;
      if (!literal(P_TS) || !integer(ts) || !literal(P_VALUE)) return undefined;
      const kind = u8();
      if (kind === 0) {
        if (!literal(P_NULL)) return undefined;
      } else if (kind === 1) {
        if (!literal(P_FALSE)) return undefined;
      } else if (kind === 2) {
        if (!literal(P_TRUE)) return undefined;
      } else if (kind === 3) {
        if (at + 8 > records.length) return undefined;
        const v = view.getFloat64(at);
        at += 8;
        if (!Number.isFinite(v)) return undefined;
        if (Number.isSafeInteger(v) && v >= 0 ? !integer(v) : !decimal(v)) return undefined;
      } else if (kind === 4) {
        if (at + 2 > records.length) return undefined;
        const n = view.getUint16(at);
        at += 2;
        if (!text(n)) return undefined;
      } else return undefined;
      if (!literal(P_UNIT) || !text(u8())) return undefined;
      const quality = QUALITY_TEXT[u8()];
      if (quality === undefined || !literal(quality)) return undefined;
      const hasReason = u8();
      if (hasReason === 1) {
        if (at + 2 > records.length) return undefined;
        const n = view.getUint16(at);
        at += 2;
        if (!literal(P_REASON) || !text(n)) return undefined;
      } else if (hasReason !== 0) return undefined;
      if (!literal(tail) || pos !== end) return undefined;
      bounds[i + 1] = at;
    }
    return at === records.length ? bounds : undefined;
  } finally {
    text8 = new Uint8Array(0);
    bytes = new Uint8Array(0);
  }
}
