// The verifier's fast path over one batch: its record bytes (record.ts layout, each behind its 0x00 leaf prefix) and
// their readable lines in records.jsonl, read side by side in one pass, with no record object and no string built.
// It answers only "all is as it should be" (with each record's bounds, for the leaf hashes) or "look closer": on
// anything unusual (a record that does not read, a field with characters JSON escapes or outside ASCII, a line that
// is not character for character what the exporter writes, a count, gateway, key, sequence number or time out of
// place) it gives up, and the verifier runs its full path over the batch, which names every problem. So it can
// never accept what the full path would refuse; it only spares the full path's work where there is nothing to find.
//
// What the exporter writes for a record (server/src/export/bundle.ts), and so what a line must be here:
//   {"gateway":"..","seq":N,"instrument":"..","channel":"..","ts":N,"value":V,"unit":"..","quality":"..",
//    ["reason":"..",]"batch":N}
import { RECORD_FORMAT } from '../trust/record.js';

const TWO_32 = 2 ** 32;
const QUALITY_TEXT = ['"good"', '"uncertain"', '"bad"'];
const DIGITS = new Uint8Array(24);

/** The batch's header fields the fast path checks its records against. */
export interface FastBatchHeader {
  gateway: string;
  batch: number;
  firstSeq: number;
  count: number;
  tsMin: number;
  tsMax: number;
}

let line = '';
let pos = 0;
let bytes: Uint8Array = new Uint8Array(0);
let at = 0;

function literal(piece: string): boolean {
  if (!line.startsWith(piece, pos)) return false;
  pos += piece.length;
  return true;
}

/** A text field of the record (n bytes at `at`) as a JSON string in the line: plain ASCII only. */
function text(n: number): boolean {
  if (at + n > bytes.length || line.charCodeAt(pos) !== 34) return false;
  const start = pos + 1;
  for (let i = 0; i < n; i++) {
    const b = bytes[at + i] ?? 0;
    // JSON escapes '"', '\' and control characters; anything outside ASCII is left to the full path
    if (b < 0x20 || b === 34 || b === 92 || b > 0x7e || line.charCodeAt(start + i) !== b) return false;
  }
  if (line.charCodeAt(start + n) !== 34) return false;
  pos = start + n + 1;
  at += n;
  return true;
}

/** A non-negative safe integer in the line, as JSON (and String) writes it. */
function integer(value: number): boolean {
  let n = value;
  let k = 0;
  do {
    DIGITS[k++] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  for (let i = 0; i < k; i++) if (line.charCodeAt(pos + i) !== DIGITS[k - 1 - i]) return false;
  pos += k;
  return true;
}

function u8(): number {
  return at < bytes.length ? (bytes[at++] ?? 0) : -1;
}

/**
 * Checks the records of one batch against its header and the readable lines `lines[from..]`. Returns the bounds of
 * each record's slice (leaf prefix included) when every record and line is as expected, else undefined.
 */
export function fastBatch(
  records: Uint8Array,
  header: FastBatchHeader,
  keyId: Uint8Array,
  lines: readonly string[],
  from: number,
): Uint32Array | undefined {
  bytes = records;
  at = 0;
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const bounds = new Uint32Array(header.count + 1);
  const gateway = header.gateway;
  try {
    for (let i = 0; i < header.count; i++) {
      const next = lines[from + i];
      if (next === undefined) return undefined;
      line = next;
      pos = 0;
      bounds[i] = at;
      if (u8() !== 0x00 || u8() !== RECORD_FORMAT) return undefined;
      // gateway (as the header names it), key id
      if (u8() !== gateway.length || at + gateway.length > records.length) return undefined;
      for (let k = 0; k < gateway.length; k++) if (records[at + k] !== gateway.charCodeAt(k)) return undefined;
      if (!literal('{"gateway":') || !text(gateway.length)) return undefined;
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
      if (!literal(',"seq":') || !integer(seq)) return undefined;
      if (!literal(',"instrument":') || !text(u8())) return undefined;
      if (!literal(',"channel":') || !text(u8())) return undefined;
      if (!literal(',"ts":') || !integer(ts) || !literal(',"value":')) return undefined;
      const kind = u8();
      if (kind === 0) {
        if (!literal('null')) return undefined;
      } else if (kind === 1) {
        if (!literal('false')) return undefined;
      } else if (kind === 2) {
        if (!literal('true')) return undefined;
      } else if (kind === 3) {
        if (at + 8 > records.length) return undefined;
        const v = view.getFloat64(at);
        at += 8;
        if (!Number.isFinite(v)) return undefined;
        if (Number.isSafeInteger(v) && v >= 0 ? !integer(v) : !literal(String(v))) return undefined;
      } else if (kind === 4) {
        if (at + 2 > records.length) return undefined;
        const n = view.getUint16(at);
        at += 2;
        if (!text(n)) return undefined;
      } else return undefined;
      if (!literal(',"unit":') || !text(u8())) return undefined;
      const quality = QUALITY_TEXT[u8()];
      if (quality === undefined || !literal(',"quality":') || !literal(quality)) return undefined;
      const hasReason = u8();
      if (hasReason === 1) {
        if (at + 2 > records.length) return undefined;
        const n = view.getUint16(at);
        at += 2;
        if (!literal(',"reason":') || !text(n)) return undefined;
      } else if (hasReason !== 0) return undefined;
      if (!literal(',"batch":') || !integer(header.batch) || !literal('}') || pos !== line.length) return undefined;
      bounds[i + 1] = at;
    }
    return at === records.length ? bounds : undefined;
  } finally {
    line = '';
    bytes = new Uint8Array(0);
  }
}
