// The canonical bytes of one measurement record: what a Merkle leaf hashes, and so what a gateway's
// signature finally covers. A fixed binary layout (not JSON): one encoding per record, cheap to
// produce and to check, independent of how the record travelled (JSON over MQTT, a database row).
//
// Layout, version 1 (integers big-endian, text UTF-8):
//   u8  0x01                   format version
//   u8  n, n bytes             gateway id
//   4 bytes                    key id of the key that signs the record's batch
//   u64                        sequence number
//   u64                        time, nanoseconds since the Unix epoch (the sample's milliseconds x 10^6)
//   u8  n, n bytes             instrument id
//   u8  n, n bytes             channel
//   u8  value kind             0 null, 1 false, 2 true, 3 number (then 8 bytes IEEE 754 binary64; -0 is
//                              written as 0), 4 text (then u16 n, n bytes)
//   u8  n, n bytes             unit
//   u8  quality                0 good, 1 uncertain, 2 bad
//   u8  0 | 1                  reason absent | present (then u16 n, n bytes)
//
// Version 2, for a value read from a result file: version 1's fields (with 0x02 as format version),
// then 32 bytes, the SHA-256 of the file's bytes. A record without a file stays version 1, byte for
// byte, so every signature and published vector of version 1 stays valid.
import { LabtraceError } from '../errors.js';
import type { Sample } from '../measurement.js';
import { QUALITIES, type Quality } from '../quality.js';
import { hashSlices, sha256, unpackHashes } from './sha256.js';

export const RECORD_FORMAT = 1;
/** the format of a record that names the result file it was read from */
export const RECORD_FORMAT_FILE = 2;
export const LEAF_PREFIX_BYTE = 0x00;

const QUALITY_CODE: Record<Quality, number> = { good: 0, uncertain: 1, bad: 2 };
const TWO_32 = 2 ** 32;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A writer over one growing scratch buffer, reused from record to record. */
class Scratch {
  buf = new Uint8Array(1024);
  view = new DataView(this.buf.buffer);
  at = 0;

  ensure(extra: number): void {
    if (this.at + extra <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.at + extra));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.at++] = v;
  }

  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.at, v);
    this.at += 2;
  }

  u64(hi: number, lo: number): void {
    this.ensure(8);
    this.view.setUint32(this.at, hi);
    this.view.setUint32(this.at + 4, lo);
    this.at += 8;
  }

  /** text with a length prefix of `lengthBytes` (1 or 2); ASCII is copied without the encoder */
  text(s: string, lengthBytes: 1 | 2, field: string): void {
    const max = lengthBytes === 1 ? 0xff : 0xffff;
    this.ensure(lengthBytes + s.length * 3);
    const start = this.at + lengthBytes;
    let n: number;
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        ascii = false;
        break;
      }
      this.buf[start + i] = c;
    }
    if (ascii) n = s.length;
    else n = encoder.encodeInto(s, this.buf.subarray(start)).written;
    if (n > max) throw new LabtraceError('E_CODEC', `${field}: ${n} bytes of UTF-8, at most ${max} fit a record`);
    if (lengthBytes === 1) this.buf[this.at] = n;
    else this.view.setUint16(this.at, n);
    this.at = start + n;
  }
}

const scratch = new Scratch();

function checkKeyId(keyId: Uint8Array): void {
  if (keyId.length !== 4) throw new LabtraceError('E_CODEC', `key id: ${keyId.length} bytes, expected 4`);
}

/** The last file hash read by fileHashBytes (the records of one file follow one another): its text and bytes. */
let lastFile: { hex: string; bytes: Uint8Array } | undefined;

/** The 32 bytes of a file's SHA-256 given as 64 lowercase hex digits; E_CODEC for anything else. */
function fileHashBytes(hex: string): Uint8Array {
  if (lastFile !== undefined && lastFile.hex === hex) return lastFile.bytes;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new LabtraceError('E_CODEC', 'file: expected the 64 hex digits of a SHA-256');
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  lastFile = { hex, bytes };
  return bytes;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
/** The last file hash read by fileHashText: its bytes and its text. */
const lastRead = { bytes: new Uint8Array(32), hex: '' };

/**
 * The 64 hex digits of the file hash at bytes[at..at + 32). The records of one file follow one another: the text of
 * the last hash read is given again (one string for them all, not one per record).
 */
function fileHashText(bytes: Uint8Array, at: number): string {
  const last = lastRead.bytes;
  let same = lastRead.hex !== '';
  for (let i = 0; same && i < 32; i++) same = bytes[at + i] === last[i];
  if (same) return lastRead.hex;
  let hex = '';
  for (let i = 0; i < 32; i++) hex += HEX_BYTE[bytes[at + i] ?? 0] as string;
  last.set(bytes.subarray(at, at + 32));
  lastRead.hex = hex;
  return hex;
}

/** Writes a record after a leaf prefix byte into the scratch buffer; returns the number of bytes. */
function writeRecord(gateway: string, keyId: Uint8Array, s: Sample, withLeafPrefix: boolean): number {
  const w = scratch;
  w.at = 0;
  if (withLeafPrefix) w.u8(LEAF_PREFIX_BYTE);
  const file = s.file;
  const fileBytes = file === undefined ? undefined : fileHashBytes(file);
  w.u8(file === undefined ? RECORD_FORMAT : RECORD_FORMAT_FILE);
  w.text(gateway, 1, 'gateway');
  w.ensure(4);
  w.buf.set(keyId, w.at);
  w.at += 4;
  const seq = s.seq;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new LabtraceError('E_CODEC', `seq: ${seq} is not a non-negative safe integer`);
  w.u64(Math.floor(seq / TWO_32), seq % TWO_32);
  const ms = s.ts;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TS_MS) throw new LabtraceError('E_CODEC', `ts: ${ms} is outside 0..${MAX_TS_MS} ms`);
  // nanoseconds = ms * 10^6 as two 32-bit halves, exactly (ms * 10^6 exceeds 2^53)
  const low = (ms % TWO_32) * 1e6;
  w.u64(Math.floor(ms / TWO_32) * 1e6 + Math.floor(low / TWO_32), low % TWO_32);
  w.text(s.instrument, 1, 'instrument');
  w.text(s.channel, 1, 'channel');
  const v = s.value;
  if (v === null) w.u8(0);
  else if (v === false) w.u8(1);
  else if (v === true) w.u8(2);
  else if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new LabtraceError('E_CODEC', `value: ${v} is not a finite number`);
    w.u8(3);
    w.ensure(8);
    w.view.setFloat64(w.at, v === 0 ? 0 : v);
    w.at += 8;
  } else {
    w.u8(4);
    w.text(v, 2, 'value');
  }
  w.text(s.unit, 1, 'unit');
  w.u8(QUALITY_CODE[s.quality]);
  if (s.reason === undefined) w.u8(0);
  else {
    w.u8(1);
    w.text(s.reason, 2, 'reason');
  }
  if (fileBytes !== undefined) {
    w.ensure(32);
    w.buf.set(fileBytes, w.at);
    w.at += 32;
  }
  return w.at;
}

/** Latest time a record can carry: the nanoseconds must fit 63 bits. */
export const MAX_TS_MS = 9_223_372_036_854;

/** The canonical bytes of one record (a copy). */
export function encodeRecord(gateway: string, keyId: Uint8Array, sample: Sample): Uint8Array {
  checkKeyId(keyId);
  const n = writeRecord(gateway, keyId, sample, false);
  return scratch.buf.slice(0, n);
}

/** The Merkle leaf hash of a record, SHA-256(0x00 || record), without copying the record. */
export function recordLeafHash(gateway: string, keyId: Uint8Array, sample: Sample): Uint8Array {
  checkKeyId(keyId);
  const n = writeRecord(gateway, keyId, sample, true);
  return sha256(scratch.buf.subarray(0, n));
}

export interface DecodedRecord {
  gateway: string;
  keyId: Uint8Array;
  sample: Sample;
}

/** Reads canonical record bytes back; throws E_CODEC naming the field that is wrong or missing. */
export function decodeRecord(bytes: Uint8Array): DecodedRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { record, end } = readRecord(bytes, view, 0);
  if (end !== bytes.length) throw new LabtraceError('E_CODEC', `record: ${bytes.length - end} bytes after the end`);
  return { gateway: record.gateway, keyId: record.keyId.slice(), sample: record.sample };
}

/** Short text: ASCII without the decoder (ids, units), anything else through it. */
function readText(bytes: Uint8Array, start: number, end: number, field: string): string {
  if (end - start <= 64) {
    let ascii = '';
    let i = start;
    for (; i < end; i++) {
      const c = bytes[i] ?? 0;
      if (c > 0x7f) break;
      ascii += String.fromCharCode(c);
    }
    if (i === end) return ascii;
  }
  try {
    return decoder.decode(bytes.subarray(start, end));
  } catch {
    throw new LabtraceError('E_CODEC', `record: ${field} is not valid UTF-8`);
  }
}

/** One record starting at `start`: its fields and where it ends (records are self-delimiting). */
export function readRecord(bytes: Uint8Array, view: DataView, start: number): { record: DecodedRecord; end: number } {
  let at = start;
  const need = (n: number, field: string): void => {
    if (at + n > bytes.length) throw new LabtraceError('E_CODEC', `record: ends inside ${field} (byte ${at - start} of ${bytes.length - start})`);
  };
  const u8 = (field: string): number => {
    need(1, field);
    return view.getUint8(at++);
  };
  const u16 = (field: string): number => {
    need(2, field);
    const v = view.getUint16(at);
    at += 2;
    return v;
  };
  const u64 = (field: string): number => {
    need(8, field);
    const v = view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
    at += 8;
    if (!Number.isSafeInteger(v)) throw new LabtraceError('E_CODEC', `record: ${field} exceeds 2^53`);
    return v;
  };
  const text = (lengthBytes: 1 | 2, field: string): string => {
    const n = lengthBytes === 1 ? u8(field) : u16(field);
    need(n, field);
    const from = at;
    at += n;
    return readText(bytes, from, at, field);
  };
  const version = u8('version');
  if (version !== RECORD_FORMAT && version !== RECORD_FORMAT_FILE)
    throw new LabtraceError('E_CODEC', `record: format ${version}, expected ${RECORD_FORMAT} or ${RECORD_FORMAT_FILE}`);
  const gateway = text(1, 'gateway');
  need(4, 'key id');
  const keyId = bytes.subarray(at, (at += 4));
  const seq = u64('seq');
  need(8, 'ts');
  const hi = view.getUint32(at);
  const lo = view.getUint32(at + 4);
  at += 8;
  // back to milliseconds: (hi * 2^32 + lo) / 10^6, exactly, without passing through a float of 2^63
  const msHi = Math.floor(hi / 1e6);
  const rest = (hi % 1e6) * TWO_32 + lo;
  if (rest % 1e6 !== 0) throw new LabtraceError('E_CODEC', 'record: ts is not a whole number of milliseconds');
  const ts = msHi * TWO_32 + rest / 1e6;
  const instrument = text(1, 'instrument');
  const channel = text(1, 'channel');
  const kind = u8('value kind');
  let value: Sample['value'];
  if (kind === 0) value = null;
  else if (kind === 1) value = false;
  else if (kind === 2) value = true;
  else if (kind === 3) {
    need(8, 'value');
    value = view.getFloat64(at);
    at += 8;
    if (!Number.isFinite(value)) throw new LabtraceError('E_CODEC', `record: value ${value} is not a finite number`);
  } else if (kind === 4) value = text(2, 'value');
  else throw new LabtraceError('E_CODEC', `record: value kind ${kind} is unknown`);
  const unit = text(1, 'unit');
  const q = u8('quality');
  const quality = QUALITIES[q];
  if (quality === undefined) throw new LabtraceError('E_CODEC', `record: quality ${q} is unknown`);
  const sample: Sample = { seq, instrument, channel, ts, value, unit, quality };
  const hasReason = u8('reason flag');
  if (hasReason === 1) sample.reason = text(2, 'reason');
  else if (hasReason !== 0) throw new LabtraceError('E_CODEC', `record: reason flag ${hasReason}, expected 0 or 1`);
  if (version === RECORD_FORMAT_FILE) {
    need(32, 'file hash');
    sample.file = fileHashText(bytes, at);
    at += 32;
  }
  return { record: { gateway, keyId, sample }, end: at };
}

/**
 * Reads a batch's records as stored and sent: each record's canonical bytes behind its leaf prefix
 * 0x00 (as encodeRecords writes them). `visit` gets each record and the bounds of its slice
 * [start, end), whose SHA-256 is the record's leaf hash; it may return false to stop. Throws E_CODEC
 * naming the record; returns how many records were read.
 */
export function readRecords(bytes: Uint8Array, visit: (record: DecodedRecord, start: number, end: number, index: number) => boolean | void): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let index = 0;
  for (let at = 0; at < bytes.length; index++) {
    if (bytes[at] !== 0x00) throw new LabtraceError('E_CODEC', `records[${index}] does not start with the leaf prefix 0x00`);
    let read;
    try {
      read = readRecord(bytes, view, at + 1);
    } catch (err) {
      throw new LabtraceError('E_CODEC', `records[${index}]: ${(err as Error).message}`, { cause: err });
    }
    if (visit(read.record, at, read.end, index) === false) return index + 1;
    at = read.end;
  }
  return index;
}

/**
 * The records of a batch as one byte string: each record preceded by its leaf prefix 0x00, so that a
 * record's leaf hash is the hash of its slice, without a copy. Also returns the leaf hashes, as views
 * and packed (32 bytes each), hashed in one batched call where Node's native hashing is installed.
 */
export function encodeRecords(
  gateway: string,
  keyId: Uint8Array,
  samples: readonly Sample[],
): { bytes: Uint8Array; leaves: Uint8Array[]; packedLeaves: Uint8Array } {
  checkKeyId(keyId);
  let out = new Uint8Array(Math.max(256, samples.length * 96));
  let length = 0;
  const bounds = new Uint32Array(samples.length + 1);
  samples.forEach((s, i) => {
    const n = writeRecord(gateway, keyId, s, true);
    if (length + n > out.length) {
      const bigger = new Uint8Array(Math.max(out.length * 2, length + n));
      bigger.set(out.subarray(0, length));
      out = bigger;
    }
    out.set(scratch.buf.subarray(0, n), length);
    length += n;
    bounds[i + 1] = length;
  });
  const bytes = out.subarray(0, length);
  const packedLeaves = hashSlices(bytes, bounds);
  return { bytes, leaves: unpackHashes(packedLeaves), packedLeaves };
}
