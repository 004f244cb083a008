// The readable records.jsonl says what the signed bytes say, record for record: checked as the batches are read
// (batches.ts hands each batch's records over), then the lines no signed record says are reported.
import type { Sample } from '../../measurement.js';
import { fastBatch, type ReadableBytes } from '../fast-records.js';
import type { Problem } from '../report.js';
import { isObject, parseJson, Unusable, type HeaderLike, type VerifyContext } from './context.js';

/** Node's Buffer where there is one (its UTF-8 encoder is native). */
const NodeBuffer = (globalThis as { Buffer?: { from(text: string, encoding: 'utf8'): Uint8Array } }).Buffer;

const FIELDS = ['gateway', 'seq', 'instrument', 'channel', 'ts', 'value', 'unit', 'quality', 'reason', 'batch'] as const;

function fieldCount(r: Record<string, unknown>): number {
  let n = 0;
  for (const key in r) if (Object.hasOwn(r, key)) n++;
  return n;
}

/** A record's line in records.jsonl, as the exporter writes it: what the record's bytes say, readable. */
export function readableRecordLine(gateway: string, s: Sample, batch: number): string {
  return JSON.stringify({
    gateway,
    seq: s.seq,
    instrument: s.instrument,
    channel: s.channel,
    ts: s.ts,
    value: s.value,
    unit: s.unit,
    quality: s.quality,
    ...(s.reason === undefined ? {} : { reason: s.reason }),
    batch,
  });
}

// Whether a line of records.jsonl is, character for character, what the exporter writes for a signed record
// (readableRecordLine). Such a line says exactly what the record says, with no field more, so it needs
// no parsing; it is read in place, with no string built (the readable copy is as large as the rest of the bundle).
let scanText = '';
let scanAt = 0;

/** characters JSON.stringify escapes in a string (quote, backslash, control characters, lone surrogates) */
// eslint-disable-next-line no-control-regex -- the control characters are what is looked for
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

function scanLiteral(piece: string): boolean {
  if (!scanText.startsWith(piece, scanAt)) return false;
  scanAt += piece.length;
  return true;
}

function scanString(value: string): boolean {
  if (JSON_ESCAPED.test(value)) return scanLiteral(JSON.stringify(value));
  const at = scanAt;
  if (scanText.charCodeAt(at) !== 34 || !scanText.startsWith(value, at + 1) || scanText.charCodeAt(at + 1 + value.length) !== 34) return false;
  scanAt = at + value.length + 2;
  return true;
}

export function readableLineSays(text: string, gateway: string, s: Sample, batch: number): boolean {
  scanText = text;
  scanAt = 0;
  const v = s.value;
  const same =
    scanLiteral('{"gateway":') &&
    scanString(gateway) &&
    scanLiteral(',"seq":') &&
    scanLiteral(String(s.seq)) &&
    scanLiteral(',"instrument":') &&
    scanString(s.instrument) &&
    scanLiteral(',"channel":') &&
    scanString(s.channel) &&
    scanLiteral(',"ts":') &&
    scanLiteral(String(s.ts)) &&
    scanLiteral(',"value":') &&
    (typeof v === 'string' ? scanString(v) : scanLiteral(String(v))) &&
    scanLiteral(',"unit":') &&
    scanString(s.unit) &&
    scanLiteral(',"quality":') &&
    scanString(s.quality) &&
    (s.reason === undefined || (scanLiteral(',"reason":') && scanString(s.reason))) &&
    scanLiteral(',"batch":') &&
    scanLiteral(String(batch)) &&
    scanLiteral('}') &&
    scanAt === text.length;
  scanText = '';
  return same;
}

const lineDecoder = new TextDecoder();

/** The file's lines that are not blank: where each starts and ends in the bytes, and its 1-based number. */
function nonBlankLines(bytes: Uint8Array): { lines: ReadableBytes; numbers: number[] } {
  const starts: number[] = [];
  const ends: number[] = [];
  const numbers: number[] = [];
  for (let start = 0, line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    // a line of spaces, tabs or carriage returns only is blank, and skipped
    let blank = true;
    for (let i = start; i < end && blank; i++) {
      const c = bytes[i];
      blank = c === 32 || c === 9 || c === 13 || c === 11 || c === 12;
    }
    if (!blank) {
      starts.push(start);
      ends.push(end);
      numbers.push(line);
    }
    start = end + 1;
  }
  return { lines: { bytes, starts: Uint32Array.from(starts), ends: Uint32Array.from(ends) }, numbers };
}

/** Whether a parsed readable line has exactly the signed record's fields. */
function sameFields(r: Record<string, unknown>, gateway: string, s: Sample, batch: number): boolean {
  return (
    r.seq === s.seq &&
    r.gateway === gateway &&
    r.ts === s.ts &&
    r.value === s.value &&
    r.instrument === s.instrument &&
    r.channel === s.channel &&
    r.unit === s.unit &&
    r.quality === s.quality &&
    r.reason === s.reason &&
    r.batch === batch &&
    fieldCount(r) === (s.reason === undefined ? 9 : 10)
  );
}

/** Names each field in which a readable line differs from its signed record, and each field it has more. */
function reportDifferences(
  problem: (p: Problem) => void,
  where: string,
  r: Record<string, unknown>,
  gateway: string,
  s: Sample,
  batch: number,
): void {
  for (const field of FIELDS) {
    const signed: unknown = field === 'gateway' ? gateway : field === 'batch' ? batch : s[field];
    const readable = r[field];
    if (signed !== readable)
      problem({
        kind: 'readable-mismatch',
        where,
        message: `${field} differs from the signed record`,
        computed: signed === undefined ? null : (signed as string | number | null),
        claimed:
          readable === undefined
            ? null
            : typeof readable === 'object' && readable !== null
              ? JSON.stringify(readable)
              : (readable as string | number | null),
      });
  }
  for (const field of Object.keys(r))
    if (!(FIELDS as readonly string[]).includes(field))
      problem({ kind: 'readable-mismatch', where, message: `field ${field} is not in the signed record` });
}

/**
 * Every signed record has its readable line, with the same fields, and every readable line its signed record. Lines
 * are expected in the order of the batches; a line out of place is looked up by gateway and sequence number. A line
 * that is, character for character, what the exporter writes for the signed record agrees with it; any other line
 * is parsed and compared field by field, so that a difference is named (and a line reformatted by another tool
 * still agrees when its fields do). Every line is parsed or matched, so a line that is not JSON is found.
 */
export class ReadableCheck {
  /** the file as UTF-8 bytes, and where each of its lines that is not blank starts and ends */
  readonly #bytes: ReadableBytes;
  readonly #count: number;
  readonly #lineNumbers: number[];
  readonly #parsed: (Record<string, unknown> | undefined)[];
  readonly #used: Uint8Array;
  readonly #batchesSeen = new Set<string>();
  #index: Map<string, number> | undefined;
  #cursor = 0;

  constructor(
    text: string | Uint8Array,
    private readonly problem: (p: Problem) => void,
  ) {
    const bytes = typeof text !== 'string' ? text : NodeBuffer !== undefined ? NodeBuffer.from(text, 'utf8') : new TextEncoder().encode(text);
    const { lines, numbers } = nonBlankLines(bytes);
    this.#bytes = lines;
    this.#count = numbers.length;
    this.#lineNumbers = numbers;
    this.#parsed = new Array<Record<string, unknown> | undefined>(this.#count);
    this.#used = new Uint8Array(this.#count);
  }

  /** Line k as text (made when the full path needs it). */
  #text(k: number): string | undefined {
    if (k >= this.#count) return undefined;
    return lineDecoder.decode(this.#bytes.bytes.subarray(this.#bytes.starts[k], this.#bytes.ends[k]));
  }

  #row(k: number): Record<string, unknown> {
    let r = this.#parsed[k];
    if (r === undefined) {
      const where = `records.jsonl line ${this.#lineNumbers[k] ?? '?'}`;
      const parsed = parseJson(this.#text(k) ?? '', where);
      if (!isObject(parsed)) throw new Unusable(where, 'expected an object');
      r = parsed;
      this.#parsed[k] = r;
    }
    return r;
  }

  #lookup(gateway: string, seq: number): number {
    if (this.#index === undefined) {
      const index = new Map<string, number>();
      for (let k = this.#count - 1; k >= 0; k--) {
        const r = this.#row(k);
        index.set(`${String(r.gateway)} ${String(r.seq)}`, k);
      }
      this.#index = index;
    }
    return this.#index.get(`${gateway} ${seq}`) ?? -1;
  }

  /**
   * The fast path over one batch not seen before (fast-records.ts): when its records and the next readable lines
   * are all as they should be, takes those lines and returns the records' bounds; else leaves everything as it was.
   */
  fast(header: HeaderLike, records: Uint8Array, keyId: Uint8Array): Uint32Array | undefined {
    const id = `${header.gateway} ${header.batch}`;
    if (header.count === 0 || this.#batchesSeen.has(id)) return undefined;
    const from = this.#cursor;
    const used = this.#used;
    for (let k = from; k < from + header.count; k++) if (used[k] !== 0) return undefined;
    const bounds = fastBatch(records, header, keyId, this.#bytes, from);
    if (bounds === undefined) return undefined;
    used.fill(1, from, from + header.count);
    this.#cursor = from + header.count;
    this.#batchesSeen.add(id);
    return bounds;
  }

  /** Compares the records of one batch (a batch seen before is a duplicate, reported elsewhere). */
  batch(line: number, header: HeaderLike, samples: readonly Sample[]): void {
    const used = this.#used;
    const gateway = header.gateway;
    const id = `${gateway} ${header.batch}`;
    if (this.#batchesSeen.has(id)) return;
    this.#batchesSeen.add(id);
    for (const s of samples) {
      // the common case first: the next line is exactly what the exporter writes for this record
      const next = this.#text(this.#cursor);
      if (next !== undefined && used[this.#cursor] === 0 && readableLineSays(next, gateway, s, header.batch)) {
        used[this.#cursor] = 1;
        this.#cursor++;
        continue;
      }
      const k = this.#place(gateway, s);
      if (k < 0) {
        this.problem({
          kind: 'readable-mismatch',
          where: `records.jsonl (${gateway} seq ${s.seq}, batches.jsonl line ${line})`,
          message: 'the signed record has no readable line',
        });
        continue;
      }
      used[k] = 1;
      this.#cursor = k + 1;
      if (readableLineSays(this.#text(k) ?? '', gateway, s, header.batch)) continue;
      const r = this.#row(k);
      if (sameFields(r, gateway, s, header.batch)) continue;
      const where = `records.jsonl line ${this.#lineNumbers[k] ?? '?'} (${gateway} seq ${s.seq}, batches.jsonl line ${line})`;
      reportDifferences(this.problem, where, r, gateway, s, header.batch);
    }
  }

  /** The unused line that names the record's gateway and sequence number: the next one, or one found (-1: none). */
  #place(gateway: string, s: Sample): number {
    const used = this.#used;
    if (this.#cursor < this.#count && used[this.#cursor] === 0) {
      const here = this.#row(this.#cursor);
      if (here.seq === s.seq && here.gateway === gateway) return this.#cursor;
    }
    const k = this.#lookup(gateway, s.seq);
    return k >= 0 && used[k] === 1 ? -1 : k;
  }

  /** Reports the readable lines that no signed record says. */
  finish(): void {
    for (let k = 0; k < this.#count; k++)
      if (this.#used[k] === 0) {
        const r = this.#row(k);
        this.problem({
          kind: 'readable-mismatch',
          where: `records.jsonl line ${this.#lineNumbers[k] ?? '?'} (${String(r.gateway)} seq ${String(r.seq)})`,
          message: 'no signed record says this',
        });
      }
  }
}

/** Reports the readable lines that no signed record says (after every batch is read). */
export function checkReadableLines(ctx: VerifyContext): void {
  ctx.readable.finish();
}
