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
const QUALITY_NAMES = ['good', 'uncertain', 'bad'] as const;
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

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
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
  let out = new Out(records.length * 2);
  let inChunk = 0;
  let lines = 0;
  let index = 0;
  let at = 0;
  const fail = (what: string): never => {
    throw new LabtraceError('E_CODEC', `records[${index}]: record: ${what}`);
  };
  const need = (n: number, field: string): void => {
    if (at + n > records.length) fail(`ends inside ${field}`);
  };
  /** a text field: returns its [start, end) and moves past it */
  const text = (lengthBytes: 1 | 2, field: string): number => {
    need(lengthBytes, field);
    const n = lengthBytes === 1 ? (records[at] as number) : view.getUint16(at);
    at += lengthBytes;
    need(n, field);
    checkUtf8(records, at, at + n, field);
    const start = at;
    at += n;
    return start;
  };
  for (; at < records.length; index++) {
    if (records[at] !== LEAF_PREFIX_BYTE) throw new LabtraceError('E_CODEC', `records[${index}] does not start with the leaf prefix 0x00`);
    at++;
    need(1, 'version');
    const version = records[at++] as number;
    if (version !== RECORD_FORMAT && version !== RECORD_FORMAT_FILE) fail(`format ${version}, expected ${RECORD_FORMAT} or ${RECORD_FORMAT_FILE}`);
    const gatewayAt = text(1, 'gateway');
    const gatewayEnd = at;
    need(4 + 8 + 8, 'seq and ts');
    at += 4;
    const seq = view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
    if (!Number.isSafeInteger(seq)) fail('seq exceeds 2^53');
    at += 8;
    const hi = view.getUint32(at);
    const lo = view.getUint32(at + 4);
    at += 8;
    const rest = (hi % 1e6) * TWO_32 + lo;
    if (rest % 1e6 !== 0) fail('ts is not a whole number of milliseconds');
    const ts = Math.floor(hi / 1e6) * TWO_32 + rest / 1e6;
    const instrumentAt = text(1, 'instrument');
    const instrumentEnd = at;
    const channelAt = text(1, 'channel');
    const channelEnd = at;
    need(1, 'value kind');
    const kind = records[at++] as number;
    let number = 0;
    let valueAt = 0;
    let valueEnd = 0;
    if (kind === 3) {
      need(8, 'value');
      number = view.getFloat64(at);
      at += 8;
      if (!Number.isFinite(number)) fail(`value ${number} is not a finite number`);
    } else if (kind === 4) {
      valueAt = text(2, 'value');
      valueEnd = at;
    } else if (kind > 4) fail(`value kind ${kind} is unknown`);
    const unitAt = text(1, 'unit');
    const unitEnd = at;
    need(1, 'quality');
    const quality = QUALITY_NAMES[records[at++] as number];
    if (quality === undefined) fail(`quality ${records[at - 1]} is unknown`);
    need(1, 'reason flag');
    const hasReason = records[at++] as number;
    let reasonAt = -1;
    let reasonEnd = -1;
    if (hasReason === 1) {
      reasonAt = text(2, 'reason');
      reasonEnd = at;
    } else if (hasReason !== 0) fail(`reason flag ${hasReason}, expected 0 or 1`);
    if (version === RECORD_FORMAT_FILE) {
      need(32, 'file hash');
      at += 32;
    }
    // samples dated outside the accepted window around their batch's arrival are not copied
    if (accepted !== null && (ts < accepted.earliest || ts > accepted.latest)) continue;

    if (inChunk === maxLines) {
      chunks.push(out.buf.subarray(0, out.at));
      out = new Out(records.length * 2);
      inChunk = 0;
    }
    if (inChunk > 0) {
      out.ensure(1);
      out.buf[out.at++] = NEWLINE;
    }
    // tags sorted by key: channel, gateway, instrument, quality
    out.bytes(prefix);
    out.key(records, channelAt, channelEnd);
    out.ascii(',gateway=');
    if (gatewayTag === undefined) out.key(records, gatewayAt, gatewayEnd);
    else out.key(gatewayTag, 0, gatewayTag.length);
    out.ascii(',instrument=');
    out.key(records, instrumentAt, instrumentEnd);
    out.ascii(',quality=');
    out.ascii(quality as string);
    out.ascii(' ');
    if (kind === 3) out.ascii(`value=${String(number)},`);
    else if (kind === 4) {
      out.ascii('value_text=');
      out.quoted(records, valueAt, valueEnd);
      out.ascii(',');
    } else if (kind === 1) out.ascii('value_bool=false,');
    else if (kind === 2) out.ascii('value_bool=true,');
    out.ascii(`seq=${seq}i,unit=`);
    out.quoted(records, unitAt, unitEnd);
    if (reasonAt >= 0) {
      out.ascii(',reason=');
      out.quoted(records, reasonAt, reasonEnd);
    }
    out.ascii(` ${ts}`);
    inChunk++;
    lines++;
  }
  if (inChunk > 0) chunks.push(out.buf.subarray(0, out.at));
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
