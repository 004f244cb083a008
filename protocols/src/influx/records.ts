// Line protocol straight from a batch's stored record bytes (trust/record.ts's layout, each record behind its leaf prefix
// 0x00): the bytes of ids, units and text values are copied into the body with the escapes line protocol needs, and
// no sample object is built on the way. The lines are byte for byte those of toLineProtocol (line-protocol.ts) for the
// decoded samples: the same tags in the same order, the same fields, numbers through the same String().
import { LabtraceError } from '../errors.js';
import { LEAF_PREFIX_BYTE, RECORD_FORMAT, RECORD_FORMAT_FILE } from '../trust/record.js';
import { isSealedBatch } from '../trust/batch.js';
import { escapeMeasurement } from './line-protocol.js';

const TWO_32 = 2 ** 32;
const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** ",quality=<name> " by the record's quality code */
const QUALITY_TAGS = ['good', 'uncertain', 'bad'].map((q) => encoder.encode(`,quality=${q} `));
const GATEWAY_TAG = encoder.encode(',gateway=');
const INSTRUMENT_TAG = encoder.encode(',instrument=');
const VALUE_FIELD = encoder.encode('value=');
const TEXT_FIELD = encoder.encode('value_text=');
const TRUE_FIELD = encoder.encode('value_bool=true,');
const FALSE_FIELD = encoder.encode('value_bool=false,');
const COMMA_BYTES = encoder.encode(',');
const SEQ_FIELD = encoder.encode('seq=');
const UNIT_FIELD = encoder.encode('i,unit=');
const REASON_FIELD = encoder.encode(',reason=');
const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const SPACE = 0x20;
const NEWLINE = 0x0a;

/** Line protocol as bytes: `chunks` of at most `maxLines` lines each (lines joined by "\n", none after the last). */
export interface LineBody {
  chunks: Uint8Array[];
  lines: number;
}

export interface RecordLinesOptions {
  /** the gateway tag; by default each record's own gateway id */
  gateway?: string | undefined;
  /** default 'measurement' */
  measurement?: string | undefined;
  /** only samples dated in this window (ms, inclusive) become lines */
  accepted?: { earliest: number; latest: number } | null | undefined;
  /** lines per chunk (default: all in one) */
  maxLines?: number | undefined;
}

/** A growing output buffer. */
class Out {
  buf: Uint8Array;
  at = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(Math.max(1024, size));
  }

  ensure(extra: number): void {
    if (this.at + extra <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.at + extra));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
  }

  /** short constant bytes: a loop costs less than TypedArray.set's call */
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    const buf = this.buf;
    const at = this.at;
    for (let i = 0; i < n; i++) buf[at + i] = b[i] as number;
    this.at = at + n;
  }

  /** ASCII text (numbers, names of fields) */
  ascii(s: string): void {
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.at++] = s.charCodeAt(i);
  }

  /** a tag value: ',', '=' and ' ' behind a backslash (escapeKey) */
  key(src: Uint8Array, from: number, to: number): void {
    this.ensure(2 * (to - from));
    const buf = this.buf;
    let at = this.at;
    for (let i = from; i < to; i++) {
      const c = src[i] as number;
      if (c === COMMA || c === EQUALS || c === SPACE) buf[at++] = BACKSLASH;
      buf[at++] = c;
    }
    this.at = at;
  }

  /** a string field value: quoted, '\' and '"' behind a backslash (quoteString) */
  quoted(src: Uint8Array, from: number, to: number): void {
    this.ensure(2 * (to - from) + 2);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = QUOTE;
    for (let i = from; i < to; i++) {
      const c = src[i] as number;
      if (c === BACKSLASH || c === QUOTE) buf[at++] = BACKSLASH;
      buf[at++] = c;
    }
    buf[at++] = QUOTE;
    this.at = at;
  }
}

const scratch = new Out(1 << 20);

/** Text of a record must be UTF-8, as the record decoder requires: checked only when it is not ASCII. */
function checkUtf8(src: Uint8Array, from: number, to: number, field: string): void {
  for (let i = from; i < to; i++) {
    if ((src[i] as number) > 0x7f) {
      try {
        utf8.decode(src.subarray(from, to));
      } catch {
        throw new LabtraceError('E_CODEC', `record: ${field} is not valid UTF-8`);
      }
      return;
    }
  }
}

/** Throws E_CODEC when fewer than `n` bytes are left at `at`. */
function need(records: Uint8Array, at: number, n: number, index: number, field: string): void {
  if (at + n > records.length) throw new LabtraceError('E_CODEC', `records[${index}]: record: ends inside ${field}`);
}

function bad(index: number, what: string): never {
  throw new LabtraceError('E_CODEC', `records[${index}]: record: ${what}`);
}

/** A text field's length prefix at `at`; checks that the text is there and is UTF-8. Returns the text's length. */
function textLength(records: Uint8Array, view: DataView, at: number, lengthBytes: 1 | 2, index: number, field: string): number {
  need(records, at, lengthBytes, index, field);
  const n = lengthBytes === 1 ? (records[at] as number) : view.getUint16(at);
  need(records, at + lengthBytes, n, index, field);
  checkUtf8(records, at + lengthBytes, at + lengthBytes + n, field);
  return n;
}

/** A non-negative integer below 2^53 in decimal, without making a string. */
function writeInteger(out: Out, v: number): void {
  out.ensure(16);
  const buf = out.buf;
  if (v < 10) {
    buf[out.at++] = 0x30 + v;
    return;
  }
  let digits = 0;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) digits++;
  let at = out.at + digits;
  out.at = at;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) buf[--at] = 0x30 + (x % 10);
}

/**
 * The line protocol of a batch's records (as stored: each behind the leaf prefix 0x00), in chunks of at most maxLines
 * lines. Throws E_CODEC naming the record and field when the bytes are not records.
 */
export function recordsToLineProtocol(records: Uint8Array, options: RecordLinesOptions = {}): LineBody {
  const maxLines = options.maxLines ?? Number.POSITIVE_INFINITY;
  const accepted = options.accepted ?? null;
  const prefix = encoder.encode(`${escapeMeasurement(options.measurement ?? 'measurement')},channel=`);
  const gatewayTag = options.gateway === undefined ? undefined : encoder.encode(options.gateway);
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const chunks: Uint8Array[] = [];
  // one scratch buffer for every call (allocating one per batch costs more than the copy of each chunk out of it)
  const out = scratch;
  out.at = 0;
  let inChunk = 0;
  let lines = 0;
  let index = 0;
  let at = 0;
  for (; at < records.length; index++) {
    if (records[at] !== LEAF_PREFIX_BYTE) throw new LabtraceError('E_CODEC', `records[${index}] does not start with the leaf prefix 0x00`);
    need(records, at, 2, index, 'version');
    const version = records[at + 1] as number;
    at += 2;
    if (version !== RECORD_FORMAT && version !== RECORD_FORMAT_FILE)
      bad(index, `format ${version}, expected ${RECORD_FORMAT} or ${RECORD_FORMAT_FILE}`);
    let n = textLength(records, view, at, 1, index, 'gateway');
    const gatewayAt = at + 1;
    const gatewayEnd = gatewayAt + n;
    at = gatewayEnd;
    need(records, at, 4 + 8 + 8, index, 'seq and ts');
    at += 4;
    const seq = view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
    if (!Number.isSafeInteger(seq)) bad(index, 'seq exceeds 2^53');
    const hi = view.getUint32(at + 8);
    const lo = view.getUint32(at + 12);
    at += 16;
    const rest = (hi % 1e6) * TWO_32 + lo;
    if (rest % 1e6 !== 0) bad(index, 'ts is not a whole number of milliseconds');
    const ts = Math.floor(hi / 1e6) * TWO_32 + rest / 1e6;
    n = textLength(records, view, at, 1, index, 'instrument');
    const instrumentAt = at + 1;
    const instrumentEnd = instrumentAt + n;
    at = instrumentEnd;
    n = textLength(records, view, at, 1, index, 'channel');
    const channelAt = at + 1;
    const channelEnd = channelAt + n;
    at = channelEnd;
    need(records, at, 1, index, 'value kind');
    const kind = records[at++] as number;
    let number = 0;
    let valueAt = 0;
    let valueEnd = 0;
    if (kind === 3) {
      need(records, at, 8, index, 'value');
      number = view.getFloat64(at);
      at += 8;
      if (!Number.isFinite(number)) bad(index, `value ${number} is not a finite number`);
    } else if (kind === 4) {
      n = textLength(records, view, at, 2, index, 'value');
      valueAt = at + 2;
      valueEnd = valueAt + n;
      at = valueEnd;
    } else if (kind > 4) bad(index, `value kind ${kind} is unknown`);
    n = textLength(records, view, at, 1, index, 'unit');
    const unitAt = at + 1;
    const unitEnd = unitAt + n;
    at = unitEnd;
    need(records, at, 2, index, 'quality and reason flag');
    const quality = QUALITY_TAGS[records[at] as number];
    if (quality === undefined) bad(index, `quality ${records[at]} is unknown`);
    const hasReason = records[at + 1] as number;
    at += 2;
    let reasonAt = -1;
    let reasonEnd = -1;
    if (hasReason === 1) {
      n = textLength(records, view, at, 2, index, 'reason');
      reasonAt = at + 2;
      reasonEnd = reasonAt + n;
      at = reasonEnd;
    } else if (hasReason !== 0) bad(index, `reason flag ${hasReason}, expected 0 or 1`);
    if (version === RECORD_FORMAT_FILE) {
      need(records, at, 32, index, 'file hash');
      at += 32;
    }
    // samples dated outside the accepted window around their batch's arrival are not copied
    if (accepted !== null && (ts < accepted.earliest || ts > accepted.latest)) continue;

    if (inChunk === maxLines) {
      chunks.push(out.buf.slice(0, out.at));
      out.at = 0;
      inChunk = 0;
    }
    if (inChunk > 0) {
      out.ensure(1);
      out.buf[out.at++] = NEWLINE;
    }
    // tags sorted by key: channel, gateway, instrument, quality
    out.bytes(prefix);
    out.key(records, channelAt, channelEnd);
    out.bytes(GATEWAY_TAG);
    if (gatewayTag === undefined) out.key(records, gatewayAt, gatewayEnd);
    else out.key(gatewayTag, 0, gatewayTag.length);
    out.bytes(INSTRUMENT_TAG);
    out.key(records, instrumentAt, instrumentEnd);
    out.bytes(quality);
    if (kind === 3) {
      out.bytes(VALUE_FIELD);
      out.ascii(String(number));
      out.bytes(COMMA_BYTES);
    } else if (kind === 4) {
      out.bytes(TEXT_FIELD);
      out.quoted(records, valueAt, valueEnd);
      out.bytes(COMMA_BYTES);
    } else if (kind === 1) out.bytes(FALSE_FIELD);
    else if (kind === 2) out.bytes(TRUE_FIELD);
    out.bytes(SEQ_FIELD);
    writeInteger(out, seq);
    out.bytes(UNIT_FIELD);
    out.quoted(records, unitAt, unitEnd);
    if (reasonAt >= 0) {
      out.bytes(REASON_FIELD);
      out.quoted(records, reasonAt, reasonEnd);
    }
    out.ensure(1);
    out.buf[out.at++] = SPACE;
    writeInteger(out, ts);
    inChunk++;
    lines++;
  }
  if (inChunk > 0) chunks.push(out.buf.slice(0, out.at));
  return { chunks, lines };
}

/** Lines (strings, as toLineProtocol makes them) as a body in chunks of at most maxLines lines. */
export function linesToBody(lines: readonly string[], maxLines = Number.POSITIVE_INFINITY): LineBody {
  const chunks: Uint8Array[] = [];
  const step = Number.isFinite(maxLines) ? maxLines : Math.max(1, lines.length);
  for (let i = 0; i < lines.length; i += step) chunks.push(encoder.encode(lines.slice(i, i + step).join('\n')));
  return { chunks, lines: lines.length };
}

/** Chunks of several bodies, one after the other, as one body (lines joined by "\n"). */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const nonEmpty = chunks.filter((c) => c.length > 0);
  if (nonEmpty.length === 1) return nonEmpty[0] as Uint8Array;
  let size = nonEmpty.length > 0 ? nonEmpty.length - 1 : 0;
  for (const c of nonEmpty) size += c.length;
  const body = new Uint8Array(size);
  let at = 0;
  nonEmpty.forEach((c, i) => {
    if (i > 0) body[at++] = NEWLINE;
    body.set(c, at);
    at += c.length;
  });
  return body;
}

/**
 * The record bytes of a batch in the binary wire form (trust/batch.ts: "LTB1", u32 header length, the header, the
 * 64-byte signature, u32 record count, the records), without reading the header; undefined when it is not that form.
 */
export function sealedBatchRecords(wire: Uint8Array): Uint8Array | undefined {
  if (!isSealedBatch(wire) || wire.length < 8) return undefined;
  const headerLength = new DataView(wire.buffer, wire.byteOffset, wire.byteLength).getUint32(4);
  const start = 8 + headerLength + 64 + 4;
  return start <= wire.length ? wire.subarray(start) : undefined;
}
