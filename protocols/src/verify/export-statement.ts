// The export statement of a bundle (statement.txt): what the bundle holds, signed by the lab's log key as a C2SP
// signed note, so that a bundle cut short in every file at once (or widened, or re-aimed) no longer verifies. Its
// text is one field per line:
//   labtrace-export-statement/v1
//   format labtrace-bundle/v1
//   origin <the log's origin>
//   gateway <id>
//   from <ISO 8601>                     the requested time range, inclusive
//   to <ISO 8601>
//   checkpoint <size> <base64 root>     the checkpoint the bundle was made against (checkpoint.txt)
//   batches <count> <first> <last>      batch numbers of the first and last line of batches.jsonl ('-' when none)
//   seq <first> <last>                  the first sequence number of the first batch, the last of the last ('-')
//   records <count>
//   headers <base64 root>               RFC 6962 root over the log leaves ({header, signature}) of the batches, in file order
//   key-events <count> <base64 root>    RFC 6962 root over the leaf data of key-events.jsonl, in file order
//   before <batch> <base64 hash>        the stored batch just before the range (boundaries.json), or 'before none'
//   after <batch> <base64 hash>         the stored batch just after it, or 'after end': none in the checkpoint
import { canonicalBytes } from '../trust/jcs.js';
import { leafHash, rootOf } from '../trust/merkle.js';
import { sha256 } from '../trust/sha256.js';
import { toBase64 } from '../trust/bytes.js';

export const EXPORT_STATEMENT_FORMAT = 'labtrace-export-statement/v1';

/** A batch just outside the range: its number and the hash of its header (as a following header's `prev` names it). */
export interface BoundaryRef {
  batch: number;
  hash: string;
}

export interface ExportStatement {
  format: string;
  origin: string;
  gateway: string;
  from: string;
  to: string;
  checkpoint: { size: number; root: string };
  batches: { count: number; first: number | null; last: number | null };
  seq: { first: number | null; last: number | null };
  records: number;
  headers: string;
  keyEvents: { count: number; root: string };
  before: BoundaryRef | null;
  /** null: the range reaches the gateway's last batch in the checkpoint */
  after: BoundaryRef | null;
}

/** The hash of a batch header, as the next header's `prev` names it: base64 SHA-256 of its canonical JSON. */
export function batchHeaderHash(header: object): string {
  return toBase64(sha256(canonicalBytes(header)));
}

/** The `headers` digest: the RFC 6962 root of the batches' log leaves, in order. */
export function headersDigest(batches: readonly { header: object; signature: string }[]): string {
  return toBase64(rootOf(batches.map((b) => leafHash(canonicalBytes({ header: b.header, signature: b.signature })))));
}

/** The `key-events` digest: the RFC 6962 root of the events' leaf data, in order. */
export function keyEventsDigest(data: readonly Uint8Array[]): string {
  return toBase64(rootOf(data.map((d) => leafHash(d))));
}

const opt = (n: number | null): string => (n === null ? '-' : String(n));
const noSpace = (name: string, value: string): string => {
  if (value === '' || /\s/u.test(value)) throw new Error(`export statement: ${name} "${value}" must be one non-empty word`);
  return value;
};

/** The statement's text (the body of the signed note). */
export function formatExportStatement(s: ExportStatement): string {
  const ref = (name: string, r: BoundaryRef | null, none: string): string => (r === null ? `${name} ${none}` : `${name} ${r.batch} ${r.hash}`);
  return [
    EXPORT_STATEMENT_FORMAT,
    `format ${noSpace('format', s.format)}`,
    `origin ${noSpace('origin', s.origin)}`,
    `gateway ${noSpace('gateway', s.gateway)}`,
    `from ${noSpace('from', s.from)}`,
    `to ${noSpace('to', s.to)}`,
    `checkpoint ${s.checkpoint.size} ${s.checkpoint.root}`,
    `batches ${s.batches.count} ${opt(s.batches.first)} ${opt(s.batches.last)}`,
    `seq ${opt(s.seq.first)} ${opt(s.seq.last)}`,
    `records ${s.records}`,
    `headers ${s.headers}`,
    `key-events ${s.keyEvents.count} ${s.keyEvents.root}`,
    ref('before', s.before, 'none'),
    ref('after', s.after, 'end'),
    '',
  ].join('\n');
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Reads a statement's text; throws an Error naming the line that does not read. */
export function parseExportStatement(text: string): ExportStatement {
  const rows = text.split('\n');
  if (rows[rows.length - 1] === '') rows.pop();
  if (rows[0] !== EXPORT_STATEMENT_FORMAT) throw new Error(`line 1: expected "${EXPORT_STATEMENT_FORMAT}"`);
  const names = ['format', 'origin', 'gateway', 'from', 'to', 'checkpoint', 'batches', 'seq', 'records', 'headers', 'key-events', 'before', 'after'];
  if (rows.length !== names.length + 1) throw new Error(`expected ${names.length + 1} lines, found ${rows.length}`);
  const fields = new Map<string, string[]>();
  names.forEach((name, i) => {
    const parts = (rows[i + 1] ?? '').split(' ');
    if (parts[0] !== name) throw new Error(`line ${i + 2}: expected "${name} ..."`);
    fields.set(name, parts.slice(1));
  });
  const get = (name: string, n: number): string[] => {
    const v = fields.get(name) ?? [];
    if (v.length !== n || v.some((p) => p === '')) throw new Error(`${name}: expected ${n} value${n === 1 ? '' : 's'}`);
    return v;
  };
  const count = (name: string, v: string | undefined): number => {
    if (v === undefined || !/^(0|[1-9][0-9]*)$/.test(v) || !Number.isSafeInteger(Number(v)))
      throw new Error(`${name}: "${String(v)}" is not a count`);
    return Number(v);
  };
  const optCount = (name: string, v: string | undefined): number | null => (v === '-' ? null : count(name, v));
  const hash = (name: string, v: string | undefined): string => {
    if (v === undefined || !BASE64.test(v) || v.length !== 44) throw new Error(`${name}: "${String(v)}" is not a base64 SHA-256 hash`);
    return v;
  };
  const ref = (name: string, none: string): BoundaryRef | null => {
    const v = fields.get(name) ?? [];
    if (v.length === 1 && v[0] === none) return null;
    const [batch, h] = get(name, 2);
    return { batch: count(name, batch), hash: hash(name, h) };
  };
  const [size, root] = get('checkpoint', 2);
  const [batchCount, firstBatch, lastBatch] = get('batches', 3);
  const [firstSeq, lastSeq] = get('seq', 2);
  const [eventCount, eventRoot] = get('key-events', 2);
  return {
    format: get('format', 1)[0] ?? '',
    origin: get('origin', 1)[0] ?? '',
    gateway: get('gateway', 1)[0] ?? '',
    from: get('from', 1)[0] ?? '',
    to: get('to', 1)[0] ?? '',
    checkpoint: { size: count('checkpoint', size), root: hash('checkpoint', root) },
    batches: { count: count('batches', batchCount), first: optCount('batches', firstBatch), last: optCount('batches', lastBatch) },
    seq: { first: optCount('seq', firstSeq), last: optCount('seq', lastSeq) },
    records: count('records', get('records', 1)[0]),
    headers: hash('headers', get('headers', 1)[0]),
    keyEvents: { count: count('key-events', eventCount), root: hash('key-events', eventRoot) },
    before: ref('before', 'none'),
    after: ref('after', 'end'),
  };
}
