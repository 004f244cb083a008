// The offline verifier of an export bundle (`labtrace export`, format labtrace-bundle/v1). It trusts nothing in the
// bundle but the keys it is given, and checks, with the log key, the gateways' keys and RFC 6962 hashing alone:
//   - the checkpoint: signed by the log key, for the bundle's log (origin);
//   - every batch: the header signed by its gateway's key, that key valid for the batch by its place in the log and
//     its batch number (never by the times it carries), the Merkle
//     root recomputed from the record bytes, and the header's inclusion in the log under the checkpoint's root;
//   - per gateway, the sequence numbers: gaps (except declared jumps), overlaps, duplicated and reordered batches,
//     and the header chain (each header names the hash of the previous one);
//   - the readable records.jsonl says what the signed bytes say, record for record;
//   - key events: their inclusion in the log, and each key's validity derived from them (key-validity.ts): keys.json
//     may be stricter than the log (an event not logged yet), never laxer, and batches are held to the stricter;
//   - the signed export statement (export-statement.ts): signed by the log key, made against this checkpoint, and
//     naming exactly the batches, records and key events the bundle holds (a bundle cut short in every file at once
//     fails here);
//   - the boundary witnesses (boundaries.json): the stored batches just before and after the range, signed and in
//     the log, outside the range, and chained to its first and last headers;
//   - with a saved earlier checkpoint: that the bundle's checkpoint extends it (a consistency proof in bundle.json).
// Pure TypeScript without Node globals, so that it also runs in a browser: the caller reads the files.
import type { LabtraceError } from '../errors.js';
import type { Sample } from '../measurement.js';
import { bytesEqual, fromBase64, toBase64, toHex } from '../trust/bytes.js';
import { openCheckpoint, parseCheckpoint, type Checkpoint } from '../trust/checkpoint.js';
import { parseVerifierKey, verifyEd25519, type VerifierKey } from '../trust/ed25519.js';
import { canonicalBytes } from '../trust/jcs.js';
import { leafHash, rootFromInclusionProof, rootOf, rootOfPacked, verifyConsistency } from '../trust/merkle.js';
import { ed25519NoteVerifier, openNote, parseNote } from '../trust/note.js';
import { readRecord, readRecords } from '../trust/record.js';
import { fastBatch, type ReadableBytes } from './fast-records.js';
import { ProvenNodes } from './proven-nodes.js';
import { hashSlices, sha256 } from '../trust/sha256.js';
import { batchHeaderHash, keyEventsDigest, parseExportStatement, type BoundaryRef, type ExportStatement } from './export-statement.js';
import {
  batchKeyProblem,
  deriveKeyValidity,
  readKeyEventEntry,
  stricterStatus,
  weakerStatus,
  type LoggedKeyEvent,
  type LoggedKeyStatus,
} from './key-validity.js';

export const BUNDLE_FORMAT = 'labtrace-bundle/v1';
export const REPORT_FORMAT = 'labtrace-verify-report/v1';
/** At most this many problems are listed; the others are counted in `problemsOmitted`. */
export const MAX_PROBLEMS = 1000;

/** The files of a bundle, as text. */
export interface BundleFiles {
  bundle: string;
  checkpoint: string;
  keys: string;
  batches: string;
  records: string;
  /** records.jsonl as its UTF-8 bytes, when the caller has them (an archive's reader): then `records` is not read */
  recordsBytes?: Uint8Array;
  keyEvents?: string;
  /** statement.txt: the export statement, a note signed by the log key */
  statement?: string;
  /** boundaries.json: the batches just outside the range */
  boundaries?: string;
}

export interface VerifyOptions {
  /** a checkpoint of the same log saved earlier (a signed note): the bundle's checkpoint must extend it */
  savedCheckpoint?: string;
  /** the log key the auditor trusts (C2SP verifier key); without it, the one in keys.json is used and reported */
  logKey?: string;
}

export type ProblemKind =
  | 'unusable'
  | 'checkpoint-signature'
  | 'origin-mismatch'
  | 'unknown-key'
  | 'key-not-valid'
  | 'signature-invalid'
  | 'header-invalid'
  | 'records-invalid'
  | 'count-mismatch'
  | 'root-mismatch'
  | 'not-in-checkpoint'
  | 'log-inclusion'
  | 'gap'
  | 'overlap'
  | 'duplicate'
  | 'reordered'
  | 'chain-break'
  | 'readable-mismatch'
  | 'incomplete'
  | 'key-event-inclusion'
  | 'inconsistent-checkpoint'
  | 'statement'
  | 'truncated'
  | 'boundary'
  | 'key-validity';

export interface Problem {
  kind: ProblemKind;
  /** the exact place: file, line, batch, sequence number */
  where: string;
  message: string;
  computed?: string | number | null;
  claimed?: string | number | null;
}

export interface GatewaySummary {
  gateway: string;
  batches: number;
  records: number;
  /** the contiguous sequence ranges held (inclusive), in order */
  ranges: { first: number; last: number }[];
  /** numbers a gateway declared skipped (a first record on channel 'sequence-jump'), not gaps */
  declaredJumps: { from: number; to: number; batch: number }[];
}

export interface VerifyReport {
  format: typeof REPORT_FORMAT;
  ok: boolean;
  /** verified: everything checks; failed: something does not verify; unusable: the input cannot be read */
  status: 'verified' | 'failed' | 'unusable';
  trust: {
    logKey: string | null;
    logKeyId: string | null;
    /** whether the log key came from the caller (true) or only from the bundle's keys.json (false) */
    logKeyPinned: boolean;
    gatewayKeys: {
      gateway: string;
      keyId: string;
      /** as keys.json states it */
      status: string;
      validFrom: number | null;
      /** server arrival time from which no new batch under the key was accepted */
      validUntil: number | null;
      /** a revoked key: the highest valid batch number (null: none, or not stated) */
      lastValidBatch: number | null;
      /** as the logged key events state it (null: no logged event names the key) */
      logged: {
        status: LoggedKeyStatus;
        validFrom: number | null;
        validUntil: number | null;
        closedAt: number | null;
        lastValidBatch: number | null;
        events: number[];
      } | null;
    }[];
  };
  selection: { gateway: string; from: string; to: string; created: string } | null;
  checkpoint: { origin: string; size: number; root: string; signatureVerified: boolean } | null;
  savedCheckpoint: { size: number; root: string; consistent: boolean } | null;
  /** the signed export statement (null: the bundle has none, or it does not read) */
  statement: (ExportStatement & { signatureVerified: boolean }) | null;
  /** the batches just outside the range, as boundaries.json holds them */
  boundaries: { before: BoundaryReport | null; after: BoundaryReport | null } | null;
  gateways: GatewaySummary[];
  /** kind: the structured event (registered, rotated, retired, revoked), or "legacy text event" for an earlier server's */
  keyEvents: { index: number; at: number | null; kind: string | null; gateway: string | null }[];
  counts: { batches: number; records: number; signaturesVerified: number; rootsVerified: number; inclusionsVerified: number };
  problems: Problem[];
  problemsOmitted: number;
}

export interface BoundaryReport {
  batch: number;
  firstSeq: number;
  lastSeq: number;
  tsMin: number;
  tsMax: number;
  logIndex: number | null;
  hash: string;
  /** signature, log inclusion, place outside the range and link to the range all check */
  verified: boolean;
}

/** Raised for input that cannot be read at all; turned into an `unusable` report. */
class Unusable extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(message);
  }
}

interface GatewayKeyEntry {
  gateway: string;
  keyId: string;
  key: VerifierKey;
  status: string;
  validFrom: number | null;
  validUntil: number | null;
  /** no batch under the key may be in the log after this index (from the logged key events) */
  closedAt: number | null;
  /** a revoked key: the highest valid batch number (null: none; undefined: not stated) */
  lastValidBatch: number | null | undefined;
  /** a retired key: the key that replaced it, as the logged key events say */
  replacedBy: string | null;
}

interface HeaderLike {
  v: number;
  gateway: string;
  keyId: string;
  batch: number;
  firstSeq: number;
  count: number;
  tsMin: number;
  tsMax: number;
  root: string;
  prev: string | null;
}

interface BatchEntry {
  line: number;
  header: HeaderLike;
  signature: string;
  /** the batch's first record (a declared jump is one), and how many records its bytes hold */
  first: Sample | undefined;
  records: number;
  /** whether the record bytes decoded and matched the header (count, root) */
  intact: boolean;
  /** the header's log index, as the batch line states it */
  logIndex: number | null;
  /** the header's canonical bytes (what the gateway signed) */
  headerBytes: Uint8Array;
  /** the batch's log leaf hash: of the canonical {header, signature} */
  leaf: Uint8Array;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isString = (v: unknown): v is string => typeof v === 'string';

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Unusable(where, `not JSON (${(err as Error).message})`);
  }
}

/** The non-empty lines of a JSON-lines file with their 1-based line numbers. */
function lines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const parts = text.split('\n');
  for (let i = 0; i < parts.length; i++) {
    const t = parts[i] ?? '';
    if (t.trim() !== '') out.push({ line: i + 1, text: t });
  }
  return out;
}

// Strict standard base64 (padding required, canonical: unused bits zero), as fromBase64 accepts it, with a lookup
// table: the record bytes of a bundle are most of its size, and this is several times faster.
const BASE64_VALUES = (() => {
  const table = new Int16Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/** Node's Buffer where there is one (its decoder is native, but lenient: the text is checked to be canonical). */
const NodeBuffer = (
  globalThis as { Buffer?: { from(text: string, encoding: 'base64' | 'utf8'): Uint8Array & { toString(encoding: 'base64'): string } } }
).Buffer;

function decodeBase64(text: string, where: string): Uint8Array {
  const bad = (): never => {
    throw new Unusable(where, `not padded standard base64: "${text.slice(0, 80)}"`);
  };
  if (NodeBuffer !== undefined) {
    const bytes = NodeBuffer.from(text, 'base64');
    // Node's decoder skips what is not base64: the text must be what encoding the bytes gives back (which also
    // makes it canonical: padded, no stray padding, unused bits zero)
    if (bytes.toString('base64') !== text) bad();
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  if (text.length % 4 !== 0) bad();
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  const full = text.length - (padding === 0 ? 0 : 4);
  let o = 0;
  const value = (i: number): number => {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (BASE64_VALUES[c] ?? -1) : -1;
    if (v < 0) bad();
    return v;
  };
  for (let i = 0; i < full; i += 4) {
    const n = (value(i) << 18) | (value(i + 1) << 12) | (value(i + 2) << 6) | value(i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (padding === 2) {
    const n = (value(full) << 18) | (value(full + 1) << 12);
    if ((n & 0xffff) !== 0) bad();
    out[o] = n >> 16;
  } else if (padding === 1) {
    const n = (value(full) << 18) | (value(full + 1) << 12) | (value(full + 2) << 6);
    if ((n & 0xff) !== 0) bad();
    out[o++] = n >> 16;
    out[o] = (n >> 8) & 255;
  }
  return out;
}

function describeSeq(first: number, last: number): string {
  return first === last ? `${first}` : `${first}..${last}`;
}

export function verifyBundle(files: BundleFiles, options: VerifyOptions = {}): VerifyReport {
  const report: VerifyReport = {
    format: REPORT_FORMAT,
    ok: false,
    status: 'failed',
    trust: { logKey: null, logKeyId: null, logKeyPinned: options.logKey !== undefined, gatewayKeys: [] },
    selection: null,
    checkpoint: null,
    savedCheckpoint: null,
    statement: null,
    boundaries: null,
    gateways: [],
    keyEvents: [],
    counts: { batches: 0, records: 0, signaturesVerified: 0, rootsVerified: 0, inclusionsVerified: 0 },
    problems: [],
    problemsOmitted: 0,
  };
  try {
    verifyInto(report, files, options);
  } catch (err) {
    if (!(err instanceof Unusable)) throw err;
    report.status = 'unusable';
    report.ok = false;
    report.problems.unshift({ kind: 'unusable', where: err.where, message: err.message });
    return report;
  }
  report.ok = report.problems.length === 0 && report.problemsOmitted === 0;
  report.status = report.ok ? 'verified' : 'failed';
  return report;
}

function verifyInto(report: VerifyReport, files: BundleFiles, options: VerifyOptions): void {
  const problem = (p: Problem): void => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
    else report.problemsOmitted++;
  };

  // bundle.json: what was selected, and the consistency proofs from earlier checkpoints
  const bundle = parseJson(files.bundle, 'bundle.json');
  if (!isObject(bundle) || bundle.format !== BUNDLE_FORMAT) throw new Unusable('bundle.json', `not a ${BUNDLE_FORMAT} bundle`);
  const origin = bundle.origin;
  const selection = bundle.selection;
  if (!isString(origin)) throw new Unusable('bundle.json', 'origin: expected a string');
  if (!isObject(selection) || !isString(selection.gateway) || !isString(selection.from) || !isString(selection.to))
    throw new Unusable('bundle.json', 'selection: expected {gateway, from, to}');
  report.selection = {
    gateway: selection.gateway,
    from: selection.from,
    to: selection.to,
    created: isString(bundle.created) ? bundle.created : '',
  };

  // keys.json: the log key and the gateways' keys
  const keys = parseJson(files.keys, 'keys.json');
  if (!isObject(keys) || !isObject(keys.log) || !isString(keys.log.verifierKey) || !Array.isArray(keys.gateways))
    throw new Unusable('keys.json', 'expected {log: {verifierKey}, gateways: [...]}');
  const logKeyText = options.logKey ?? keys.log.verifierKey;
  let logKey: VerifierKey;
  try {
    logKey = parseVerifierKey(logKeyText.trim());
  } catch (err) {
    throw new Unusable(options.logKey === undefined ? 'keys.json log.verifierKey' : 'the trusted log key', (err as Error).message);
  }
  report.trust.logKey = logKeyText.trim();
  report.trust.logKeyId = toHex(logKey.keyId);
  if (options.logKey !== undefined && keys.log.verifierKey.trim() !== logKeyText.trim())
    problem({
      kind: 'checkpoint-signature',
      where: 'keys.json log.verifierKey',
      message: 'the bundle names another log key than the trusted one',
      computed: logKeyText.trim(),
      claimed: keys.log.verifierKey,
    });
  const gatewayKeys = new Map<string, GatewayKeyEntry>();
  keys.gateways.forEach((k: unknown, i: number) => {
    const where = `keys.json gateways[${i}]`;
    if (!isObject(k) || !isString(k.gateway) || !isString(k.verifierKey))
      throw new Unusable(where, 'expected {gateway, verifierKey, status, validUntil}');
    let key: VerifierKey;
    try {
      key = parseVerifierKey(k.verifierKey);
    } catch (err) {
      throw new Unusable(where, (err as Error).message);
    }
    const keyId = toHex(key.keyId);
    const validUntil = isCount(k.validUntil) ? k.validUntil : null;
    const validFrom = isCount(k.registeredAt) ? k.registeredAt : null;
    const status = isString(k.status) ? k.status : 'active';
    const lastValidBatch = isCount(k.lastValidBatch) ? k.lastValidBatch : status === 'revoked' && k.lastValidBatch === null ? null : undefined;
    gatewayKeys.set(`${k.gateway} ${keyId}`, {
      gateway: k.gateway,
      keyId,
      key,
      status,
      validFrom,
      validUntil,
      closedAt: null,
      lastValidBatch,
      replacedBy: null,
    });
    report.trust.gatewayKeys.push({ gateway: k.gateway, keyId, status, validFrom, validUntil, lastValidBatch: lastValidBatch ?? null, logged: null });
  });

  // checkpoint.txt: the log's signed size and root
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(parseNote(files.checkpoint).text);
  } catch (err) {
    throw new Unusable('checkpoint.txt', (err as Error).message);
  }
  let signatureVerified = false;
  try {
    openCheckpoint(files.checkpoint, [ed25519NoteVerifier(logKey)]);
    signatureVerified = true;
  } catch (err) {
    problem({
      kind: 'checkpoint-signature',
      where: 'checkpoint.txt',
      message: `not signed by the log key ${report.trust.logKey}: ${(err as Error).message}`,
    });
  }
  if (checkpoint.origin !== origin)
    problem({
      kind: 'origin-mismatch',
      where: 'checkpoint.txt',
      message: 'the checkpoint is of another log than the bundle names',
      computed: checkpoint.origin,
      claimed: origin,
    });
  const root = checkpoint.rootHash;
  const size = checkpoint.size;
  report.checkpoint = { origin: checkpoint.origin, size, root: toHex(root), signatureVerified };

  // the saved checkpoint: the bundle's must extend it
  if (options.savedCheckpoint !== undefined) verifySaved(report, bundle, options.savedCheckpoint, logKey, checkpoint, problem);

  // key events: their inclusion, and the keys' validity they state, before any batch is held to it
  const keyEvents = verifyKeyEvents(report, files.keyEvents ?? '', size, root, problem);
  checkKeyValidity(report, gatewayKeys, keyEvents.events, problem);

  // records.jsonl, compared with each batch's signed records as it is read (nothing kept but the readable rows)
  const readable = new ReadableCheck(files.recordsBytes ?? files.records, problem);

  // batches.jsonl
  const entries: BatchEntry[] = [];
  // the log nodes proven so far: the batches' inclusion proofs share most of their nodes
  const proven = new ProvenNodes(size, root);
  for (const { line, text } of lines(files.batches)) {
    const where = `batches.jsonl line ${line}`;
    const entry = parseJson(text, where);
    if (!isObject(entry)) throw new Unusable(where, 'expected an object');
    const result = verifyBatchLine(entry, where, line, gatewayKeys, proven, problem, report, readable);
    if (result !== undefined) entries.push(result);
  }
  report.counts.batches = entries.length;
  checkSuccessors(entries, gatewayKeys, problem);

  // sequence continuity and the header chain, per gateway
  const byGateway = new Map<string, BatchEntry[]>();
  for (const e of entries) {
    const list = byGateway.get(e.header.gateway);
    if (list === undefined) byGateway.set(e.header.gateway, [e]);
    else list.push(e);
  }
  for (const [gateway, list] of byGateway) report.gateways.push(checkSequence(gateway, list, problem));

  // completeness against what bundle.json declares (not signed: only catches an accidental or careless cut)
  const declared = isObject(bundle.counts) ? bundle.counts : {};
  const signedRecords = entries.reduce((n, e) => n + e.records, 0);
  if (isCount(declared.batches) && declared.batches !== entries.length)
    problem({
      kind: 'incomplete',
      where: 'batches.jsonl',
      message: 'bundle.json lists another number of batches than batches.jsonl holds',
      computed: entries.length,
      claimed: declared.batches,
    });
  if (isCount(declared.records) && declared.records !== signedRecords)
    problem({
      kind: 'incomplete',
      where: 'batches.jsonl',
      message: 'bundle.json lists another number of records than the signed batches hold',
      computed: signedRecords,
      claimed: declared.records,
    });
  report.counts.records = signedRecords;

  readable.finish();

  // the signed statement of what the bundle holds, and the batches just outside it
  const statement = verifyStatement(
    report,
    files.statement,
    logKey,
    checkpoint,
    origin,
    report.selection,
    entries,
    signedRecords,
    keyEvents.data,
    problem,
  );
  verifyBoundaries(report, files.boundaries, statement, entries, gatewayKeys, checkpoint, report.selection, problem);
}

function verifySaved(
  report: VerifyReport,
  bundle: Record<string, unknown>,
  savedNote: string,
  logKey: VerifierKey,
  current: Checkpoint,
  problem: (p: Problem) => void,
): void {
  let saved: Checkpoint;
  try {
    saved = parseCheckpoint(parseNote(savedNote).text);
  } catch (err) {
    throw new Unusable('the saved checkpoint', (err as Error).message);
  }
  const where = `saved checkpoint (size ${saved.size})`;
  report.savedCheckpoint = { size: saved.size, root: toHex(saved.rootHash), consistent: false };
  const fail = (message: string, computed?: string | number, claimed?: string | number): void =>
    problem({
      kind: 'inconsistent-checkpoint',
      where,
      message,
      ...(computed === undefined ? {} : { computed }),
      ...(claimed === undefined ? {} : { claimed }),
    });
  try {
    openCheckpoint(savedNote, [ed25519NoteVerifier(logKey)]);
  } catch (err) {
    fail(`not signed by the log key: ${(err as Error).message}`);
    return;
  }
  if (saved.origin !== current.origin) return fail('the saved checkpoint is of another log', saved.origin, current.origin);
  if (saved.size > current.size) return fail("the saved checkpoint is newer than the bundle's: export again", current.size, saved.size);
  if (saved.size === 0) {
    report.savedCheckpoint.consistent = true;
    return;
  }
  if (saved.size === current.size) {
    if (!bytesEqual(saved.rootHash, current.rootHash))
      return fail('two signed roots for the same tree size: the log forked', toHex(current.rootHash), toHex(saved.rootHash));
    report.savedCheckpoint.consistent = true;
    return;
  }
  const proofs = Array.isArray(bundle.consistency) ? (bundle.consistency as unknown[]) : [];
  const entry = proofs.find((p): p is Record<string, unknown> => isObject(p) && p.from === saved.size);
  if (entry === undefined || !Array.isArray(entry.proof))
    return fail(`the bundle holds no consistency proof from size ${saved.size} to ${current.size}`);
  let proof: Uint8Array[];
  try {
    proof = (entry.proof as unknown[]).map((p) => fromBase64(String(p)));
  } catch (err) {
    throw new Unusable(`bundle.json consistency from ${saved.size}`, (err as Error).message);
  }
  try {
    verifyConsistency(saved.size, current.size, saved.rootHash, current.rootHash, proof);
    report.savedCheckpoint.consistent = true;
  } catch (err) {
    const details = (err as LabtraceError).details as { computed?: string; claimed?: string } | undefined;
    fail(`the bundle's checkpoint does not extend the saved one: ${(err as Error).message}`, details?.computed, details?.claimed);
  }
}

function checkHeader(h: unknown): h is HeaderLike {
  if (!isObject(h)) return false;
  return (
    h.v === 1 &&
    isString(h.gateway) &&
    isString(h.keyId) &&
    /^[0-9a-f]{8}$/.test(h.keyId) &&
    isCount(h.batch) &&
    isCount(h.firstSeq) &&
    isCount(h.count) &&
    h.count >= 1 &&
    isCount(h.tsMin) &&
    isCount(h.tsMax) &&
    isString(h.root) &&
    (h.prev === null || isString(h.prev))
  );
}

function verifyBatchLine(
  entry: Record<string, unknown>,
  where0: string,
  line: number,
  gatewayKeys: Map<string, GatewayKeyEntry>,
  proven: ProvenNodes,
  problem: (p: Problem) => void,
  report: VerifyReport,
  readable: ReadableCheck,
): BatchEntry | undefined {
  const header = entry.header;
  if (!checkHeader(header)) {
    problem({ kind: 'header-invalid', where: where0, message: 'the header is not a labtrace batch header (v 1)' });
    return undefined;
  }
  if (!isString(entry.signature) || !isString(entry.records)) throw new Unusable(where0, 'expected {header, signature, records, logIndex, logProof}');
  const where = `${where0} (batch ${header.batch} of ${header.gateway}, seq ${describeSeq(header.firstSeq, header.firstSeq + header.count - 1)})`;
  const signature = entry.signature;
  let headerBytes: Uint8Array;
  let leaf: Uint8Array;
  try {
    headerBytes = canonicalBytes(header);
    leaf = leafHash(logLeafBytes(header, headerBytes, signature));
  } catch (err) {
    // text JSON.parse reads but canonical JSON refuses (a lone surrogate): nothing could have signed it
    problem({ kind: 'header-invalid', where, message: `the header or its signature is not canonical JSON: ${(err as Error).message}` });
    return undefined;
  }

  // the gateway's key, valid at the batch's latest record, and its signature
  const key = gatewayKeys.get(`${header.gateway} ${header.keyId}`);
  if (key === undefined)
    problem({ kind: 'unknown-key', where, message: `signed with key ${header.keyId}, which keys.json does not list for ${header.gateway}` });
  else {
    const invalid = batchKeyProblem(
      {
        keyId: key.keyId,
        status: key.status,
        closedAt: key.closedAt,
        lastValidBatch: key.lastValidBatch === undefined ? Number.MAX_SAFE_INTEGER : key.lastValidBatch,
      },
      header.batch,
      isCount(entry.logIndex) ? entry.logIndex : null,
    );
    if (invalid !== undefined) problem({ kind: 'key-not-valid', where, message: invalid });
    let sig: Uint8Array | undefined;
    try {
      sig = fromBase64(signature);
    } catch {
      sig = undefined;
    }
    if (sig !== undefined && verifyEd25519(sig, headerBytes, key.key.publicKey)) report.counts.signaturesVerified++;
    else
      problem({ kind: 'signature-invalid', where, message: `the header's signature does not verify with ${header.gateway}'s key ${header.keyId}` });
  }

  // the records: decode, hash, recompute the root
  const bytes = decodeBase64(entry.records, `${where}: records`);
  const keyBytes = new Uint8Array(4);
  for (let k = 0; k < 4; k++) keyBytes[k] = parseInt(header.keyId.slice(2 * k, 2 * k + 2), 16);
  // first the fast path: records and readable lines read side by side, all as they should be or nothing
  const fast = readable.fast(header, bytes, keyBytes);
  // the records' root from their slices of the bytes, against the signed one
  const rootMatches = (bounds: Uint32Array): boolean => {
    const computed = toBase64(rootOfPacked(hashSlices(bytes, bounds)));
    if (computed === header.root) {
      report.counts.rootsVerified++;
      return true;
    }
    problem({ kind: 'root-mismatch', where, message: 'the record bytes do not hash to the signed Merkle root', computed, claimed: header.root });
    return false;
  };
  if (fast !== undefined) {
    const intact = rootMatches(fast);
    verifyLogInclusion(entry, leaf, where, proven, problem, report);
    const first = readRecord(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 1).record.sample;
    return {
      line,
      header,
      signature,
      first,
      records: header.count,
      intact,
      logIndex: isCount(entry.logIndex) ? entry.logIndex : null,
      headerBytes,
      leaf,
    };
  }
  const samples: Sample[] = [];
  // each record's slice of the bytes; the leaves are hashed after the walk, in one batched call where Node's native hashing is installed
  const bounds: number[] = [0];
  let intact = true;
  const keyId = header.keyId;
  try {
    readRecords(bytes, (record, start, end, i) => {
      bounds.push(end);
      const s = record.sample;
      if (record.gateway !== header.gateway) throw new Error(`records[${i}] names gateway "${record.gateway}"`);
      const rk = record.keyId;
      if (rk[0] !== keyBytes[0] || rk[1] !== keyBytes[1] || rk[2] !== keyBytes[2] || rk[3] !== keyBytes[3])
        throw new Error(`records[${i}] names key ${toHex(record.keyId)}, the header ${keyId}`);
      if (s.seq !== header.firstSeq + i) throw new Error(`records[${i}].seq is ${s.seq}, the header says ${header.firstSeq + i}`);
      if (s.ts < header.tsMin || s.ts > header.tsMax)
        throw new Error(`records[${i}] (seq ${s.seq}): ts ${s.ts} lies outside the header's time range`);
      samples.push(s);
    });
  } catch (err) {
    intact = false;
    problem({ kind: 'records-invalid', where, message: `the record bytes do not read as this batch's records: ${(err as Error).message}` });
  }
  if (intact) {
    const held = bounds.length - 1;
    if (held !== header.count) {
      intact = false;
      problem({
        kind: 'count-mismatch',
        where,
        message: 'the header counts another number of records than the bytes hold',
        computed: held,
        claimed: header.count,
      });
    }
    if (!rootMatches(Uint32Array.from(bounds))) intact = false;
  }

  verifyLogInclusion(entry, leaf, where, proven, problem, report);
  readable.batch(line, header, samples);
  return {
    line,
    header,
    signature,
    first: samples[0],
    records: samples.length,
    intact,
    logIndex: isCount(entry.logIndex) ? entry.logIndex : null,
    headerBytes,
    leaf,
  };
}

/**
 * A retired key's batches must be numbered below the first batch its successor delivered before them (the server
 * takes a rotated key's batches during the grace only so): a batch under the old key logged after a batch of the new
 * one with a number as high or lower is one the server should have refused.
 */
function checkSuccessors(entries: BatchEntry[], gatewayKeys: Map<string, GatewayKeyEntry>, problem: (p: Problem) => void): void {
  const logged = entries.filter((e) => e.logIndex !== null).sort((a, b) => (a.logIndex ?? 0) - (b.logIndex ?? 0));
  /** per gateway and key, the lowest batch number seen so far in log order, and where */
  const lowest = new Map<string, BatchEntry>();
  for (const e of logged) {
    const key = gatewayKeys.get(`${e.header.gateway} ${e.header.keyId}`);
    const successor = key?.replacedBy === null || key === undefined ? undefined : lowest.get(`${e.header.gateway} ${key.replacedBy}`);
    if (key !== undefined && successor !== undefined && e.header.batch >= successor.header.batch)
      problem({
        kind: 'key-not-valid',
        where: `batches.jsonl line ${e.line} (batch ${e.header.batch} of ${e.header.gateway})`,
        message: `key ${key.keyId} is retired, replaced by ${key.replacedBy ?? '?'}: batch ${e.header.batch} entered the log at index ${e.logIndex ?? '?'}, after batch ${successor.header.batch} of its successor (line ${successor.line}, log index ${successor.logIndex ?? '?'}), and is not below it`,
        computed: e.header.batch,
        claimed: successor.header.batch,
      });
    const id = `${e.header.gateway} ${e.header.keyId}`;
    const seen = lowest.get(id);
    if (seen === undefined || e.header.batch < seen.header.batch) lowest.set(id, e);
  }
}

const LEAF_HEAD = new TextEncoder().encode('{"header":');
const LEAF_SIGNATURE = new TextEncoder().encode(',"signature":"');
const PLAIN_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The log leaf of a batch, canonicalBytes({header, signature}), from the header's canonical bytes already made: the
 * keys in JCS order and a signature of base64 characters, which JSON writes as they are (any other: in full).
 */
function logLeafBytes(header: HeaderLike, headerBytes: Uint8Array, signature: string): Uint8Array {
  if (!PLAIN_BASE64.test(signature)) return canonicalBytes({ header, signature });
  const out = new Uint8Array(LEAF_HEAD.length + headerBytes.length + LEAF_SIGNATURE.length + signature.length + 2);
  out.set(LEAF_HEAD, 0);
  out.set(headerBytes, LEAF_HEAD.length);
  let at = LEAF_HEAD.length + headerBytes.length;
  out.set(LEAF_SIGNATURE, at);
  at += LEAF_SIGNATURE.length;
  // base64 characters are ASCII: one byte each
  for (let i = 0; i < signature.length; i++) out[at++] = signature.charCodeAt(i);
  out[at++] = 34; // "
  out[at] = 125; // }
  return out;
}

/** The header's inclusion in the log, by the batch line's proof, against the checkpoint's root. */
function verifyLogInclusion(
  entry: Record<string, unknown>,
  leaf: Uint8Array,
  where: string,
  proven: ProvenNodes,
  problem: (p: Problem) => void,
  report: VerifyReport,
): void {
  const { size, root: logRoot } = proven;
  const logIndex = entry.logIndex;
  if (!isCount(logIndex) || !Array.isArray(entry.logProof)) {
    problem({ kind: 'not-in-checkpoint', where, message: `the batch is not in the log's checkpoint of size ${size}` });
  } else if (logIndex >= size) {
    problem({
      kind: 'not-in-checkpoint',
      where,
      message: `log index ${logIndex} is outside the checkpoint's tree of size ${size}`,
      computed: logIndex,
      claimed: size,
    });
  } else if (proven.proves(leaf, logIndex, entry.logProof)) {
    // its walk met nodes an earlier proof proved, and its other hashes are those nodes: the full walk's answer
    report.counts.inclusionsVerified++;
  } else {
    try {
      const proof = (entry.logProof as unknown[]).map((p) => fromBase64(String(p)));
      const computed = rootFromInclusionProof(leaf, logIndex, size, proof);
      if (bytesEqual(computed, logRoot)) report.counts.inclusionsVerified++;
      else
        problem({
          kind: 'log-inclusion',
          where,
          message: `the header's inclusion proof at log index ${logIndex} leads to another root than the checkpoint's`,
          computed: toHex(computed),
          claimed: toHex(logRoot),
        });
    } catch (err) {
      problem({
        kind: 'log-inclusion',
        where,
        message: `the header's inclusion proof at log index ${logIndex} does not verify: ${(err as Error).message}`,
      });
    }
  }
}

function checkSequence(gateway: string, list: BatchEntry[], problem: (p: Problem) => void): GatewaySummary {
  const summary: GatewaySummary = { gateway, batches: list.length, records: 0, ranges: [], declaredJumps: [] };
  const at = (e: BatchEntry): string =>
    `batches.jsonl line ${e.line} (batch ${e.header.batch} of ${gateway}, seq ${describeSeq(e.header.firstSeq, e.header.firstSeq + e.header.count - 1)})`;
  // in file order: duplicates and reordering
  const seen = new Map<number, BatchEntry>();
  const unique: BatchEntry[] = [];
  let previous: BatchEntry | undefined;
  for (const e of list) {
    const first = seen.get(e.header.batch);
    if (first !== undefined) {
      problem({ kind: 'duplicate', where: at(e), message: `batch ${e.header.batch} appears again (first on line ${first.line})` });
      continue;
    }
    seen.set(e.header.batch, e);
    if (previous !== undefined && (e.header.batch < previous.header.batch || e.header.firstSeq < previous.header.firstSeq))
      problem({
        kind: 'reordered',
        where: at(e),
        message: `comes after batch ${previous.header.batch} (seq from ${previous.header.firstSeq}) on line ${previous.line}`,
        computed: e.header.firstSeq,
        claimed: previous.header.firstSeq + previous.header.count,
      });
    previous = e;
    unique.push(e);
  }
  // in sequence order: gaps, declared jumps, overlaps and the header chain
  unique.sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.header.batch - b.header.batch);
  let last: BatchEntry | undefined;
  for (const e of unique) {
    const h = e.header;
    summary.records += h.count;
    const end = h.firstSeq + h.count - 1;
    if (last === undefined) {
      summary.ranges.push({ first: h.firstSeq, last: end });
    } else {
      const next = last.header.firstSeq + last.header.count;
      if (h.firstSeq > next) {
        const firstRecord = e.first;
        const declared =
          firstRecord !== undefined && firstRecord.instrument === gateway && firstRecord.channel === 'sequence-jump' && firstRecord.value === next;
        if (declared) summary.declaredJumps.push({ from: next, to: h.firstSeq - 1, batch: h.batch });
        else
          problem({
            kind: 'gap',
            where: at(e),
            message: `sequence numbers ${describeSeq(next, h.firstSeq - 1)} are missing between batch ${last.header.batch} (line ${last.line}) and batch ${h.batch}`,
            computed: h.firstSeq,
            claimed: next,
          });
        summary.ranges.push({ first: h.firstSeq, last: end });
      } else if (h.firstSeq < next) {
        problem({
          kind: 'overlap',
          where: at(e),
          message: `sequence numbers ${describeSeq(h.firstSeq, Math.min(end, next - 1))} are also in batch ${last.header.batch} (line ${last.line})`,
          computed: h.firstSeq,
          claimed: next,
        });
        const range = summary.ranges[summary.ranges.length - 1];
        if (range !== undefined) range.last = Math.max(range.last, end);
      } else {
        const range = summary.ranges[summary.ranges.length - 1];
        if (range !== undefined) range.last = end;
      }
      // consecutive batches: the header names the previous one's hash
      if (h.batch === last.header.batch + 1 && h.prev !== null) {
        const expected = toBase64(sha256(last.headerBytes));
        if (h.prev !== expected)
          problem({
            kind: 'chain-break',
            where: at(e),
            message: `the header does not name batch ${last.header.batch}'s hash as previous`,
            computed: expected,
            claimed: h.prev,
          });
      }
    }
    if (last === undefined || end >= last.header.firstSeq + last.header.count - 1) last = e;
  }
  return summary;
}

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

/**
 * Every signed record has its readable line, with the same fields, and every readable line its signed record. Lines
 * are expected in the order of the batches; a line out of place is looked up by gateway and sequence number. A line
 * that is, character for character, what the exporter writes for the signed record agrees with it; any other line
 * is parsed and compared field by field, so that a difference is named (and a line reformatted by another tool
 * still agrees when its fields do). Every line is parsed or matched, so a line that is not JSON is found.
 */
const lineDecoder = new TextDecoder();

class ReadableCheck {
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
    this.#bytes = { bytes, starts: Uint32Array.from(starts), ends: Uint32Array.from(ends) };
    this.#count = starts.length;
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
    const { problem } = this;
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
      let k = -1;
      if (this.#cursor < this.#count && used[this.#cursor] === 0) {
        const here = this.#row(this.#cursor);
        if (here.seq === s.seq && here.gateway === gateway) k = this.#cursor;
      }
      if (k < 0) {
        k = this.#lookup(gateway, s.seq);
        if (k >= 0 && used[k] === 1) k = -1;
      }
      if (k < 0) {
        problem({
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
      if (
        r.seq === s.seq &&
        r.gateway === gateway &&
        r.ts === s.ts &&
        r.value === s.value &&
        r.instrument === s.instrument &&
        r.channel === s.channel &&
        r.unit === s.unit &&
        r.quality === s.quality &&
        r.reason === s.reason &&
        r.batch === header.batch &&
        fieldCount(r) === (s.reason === undefined ? 9 : 10)
      )
        continue;
      const where = `records.jsonl line ${this.#lineNumbers[k] ?? '?'} (${gateway} seq ${s.seq}, batches.jsonl line ${line})`;
      for (const field of FIELDS) {
        const signed: unknown = field === 'gateway' ? gateway : field === 'batch' ? header.batch : s[field];
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

function verifyKeyEvents(
  report: VerifyReport,
  text: string,
  size: number,
  root: Uint8Array,
  problem: (p: Problem) => void,
): { events: LoggedKeyEvent[]; data: Uint8Array[] } {
  const events: LoggedKeyEvent[] = [];
  const all: Uint8Array[] = [];
  for (const { line, text: t } of lines(text)) {
    const where = `key-events.jsonl line ${line}`;
    const e = parseJson(t, where);
    if (!isObject(e) || !isCount(e.index) || !isString(e.data) || !Array.isArray(e.proof)) throw new Unusable(where, 'expected {index, data, proof}');
    let data: Uint8Array;
    let event: unknown;
    try {
      data = fromBase64(e.data);
      event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as unknown;
    } catch (err) {
      throw new Unusable(where, `data: ${(err as Error).message}`);
    }
    const ev = isObject(event) ? event : {};
    all.push(data);
    const read = readKeyEventEntry(event);
    if (read.kind === 'event') events.push({ index: e.index, record: read.record });
    else if (read.kind === 'unreadable')
      problem({ kind: 'key-validity', where, message: `the logged key event does not read (${read.reason}): the keys cannot be checked against it` });
    report.keyEvents.push({
      index: e.index,
      at: isCount(ev.at) ? ev.at : null,
      kind: read.kind === 'event' ? read.record.event : read.kind === 'legacy' ? 'legacy text event' : null,
      gateway: isString(ev.gateway) ? ev.gateway : null,
    });
    if (e.index >= size) {
      problem({ kind: 'not-in-checkpoint', where, message: `log index ${e.index} is outside the checkpoint's tree of size ${size}` });
      continue;
    }
    try {
      const computed = rootFromInclusionProof(
        leafHash(data),
        e.index,
        size,
        (e.proof as unknown[]).map((p) => fromBase64(String(p))),
      );
      if (bytesEqual(computed, root)) report.counts.inclusionsVerified++;
      else
        problem({
          kind: 'key-event-inclusion',
          where,
          message: 'the inclusion proof leads to another root',
          computed: toHex(computed),
          claimed: toHex(root),
        });
    } catch (err) {
      problem({ kind: 'key-event-inclusion', where, message: `the inclusion proof does not verify: ${(err as Error).message}` });
    }
  }
  return { events, data: all };
}

/**
 * Derives each key's validity from the logged key events and compares keys.json with it: keys.json may be stricter
 * (an event not in the checkpoint yet) but not laxer. The stricter of the two is what batches are held to.
 */
function checkKeyValidity(
  report: VerifyReport,
  gatewayKeys: Map<string, GatewayKeyEntry>,
  events: LoggedKeyEvent[],
  problem: (p: Problem) => void,
): void {
  const logged = deriveKeyValidity(events);
  const time = (ms: number | null): string => (ms === null ? 'no limit' : new Date(ms).toISOString());
  for (const reported of report.trust.gatewayKeys) {
    const id = `${reported.gateway} ${reported.keyId}`;
    const l = logged.get(id);
    const entry = gatewayKeys.get(id);
    if (l === undefined || entry === undefined) continue;
    reported.logged = {
      status: l.status,
      validFrom: l.validFrom,
      validUntil: l.validUntil,
      closedAt: l.closedAt,
      lastValidBatch: l.lastValidBatch,
      events: l.events,
    };
    const where = `keys.json (${reported.gateway} key ${reported.keyId})`;
    const events = `log ${l.events.length === 1 ? 'entry' : 'entries'} ${l.events.join(', ')}`;
    if (weakerStatus(entry.status, l.status))
      problem({
        kind: 'key-validity',
        where,
        message: `keys.json says the key is ${entry.status}, the logged key events (${events}) say ${l.status}`,
        computed: l.status,
        claimed: entry.status,
      });
    if (l.validUntil !== null && (entry.validUntil === null || entry.validUntil > l.validUntil))
      problem({
        kind: 'key-validity',
        where,
        message: `keys.json makes the key valid until ${time(entry.validUntil)}, the logged key events (${events}) until ${time(l.validUntil)}`,
        computed: l.validUntil,
        claimed: entry.validUntil,
      });
    if (l.validFrom !== null && entry.validFrom !== null && entry.validFrom < l.validFrom)
      problem({
        kind: 'key-validity',
        where,
        message: `keys.json makes the key valid from ${time(entry.validFrom)}, the logged enrollment (${events}) from ${time(l.validFrom)}`,
        computed: l.validFrom,
        claimed: entry.validFrom,
      });
    if (l.status === 'revoked' && l.lastValidBatch !== null && entry.lastValidBatch !== null && (entry.lastValidBatch ?? Infinity) > l.lastValidBatch)
      problem({
        kind: 'key-validity',
        where,
        message: `keys.json makes the revoked key valid for batches up to ${entry.lastValidBatch ?? 'any'}, the logged key events (${events}) up to ${l.lastValidBatch}`,
        computed: l.lastValidBatch,
        claimed: entry.lastValidBatch ?? null,
      });
    else if (l.status === 'revoked' && l.lastValidBatch === null && entry.lastValidBatch !== null)
      problem({
        kind: 'key-validity',
        where,
        message: `keys.json makes the revoked key valid for batches up to ${entry.lastValidBatch ?? 'any'}, the logged key events (${events}) for none`,
        computed: null,
        claimed: entry.lastValidBatch ?? null,
      });
    // held to the stricter of the two
    if (l.validUntil !== null && (entry.validUntil === null || l.validUntil < entry.validUntil)) entry.validUntil = l.validUntil;
    entry.closedAt = l.closedAt;
    if (l.status !== 'active') entry.replacedBy = l.replacedBy;
    if (l.status === 'revoked')
      entry.lastValidBatch =
        entry.status === 'revoked' && entry.lastValidBatch !== undefined
          ? entry.lastValidBatch === null || l.lastValidBatch === null
            ? null
            : Math.min(entry.lastValidBatch, l.lastValidBatch)
          : l.lastValidBatch;
    if (entry.status === 'active' || entry.status === 'retired' || entry.status === 'revoked') entry.status = stricterStatus(entry.status, l.status);
  }
}

/**
 * The export statement: signed by the log key, of this bundle's log, selection and checkpoint, and naming exactly the
 * batches and key events the bundle holds. Returns it when it reads (even with a bad signature, to name what differs).
 */
function verifyStatement(
  report: VerifyReport,
  text: string | undefined,
  logKey: VerifierKey,
  checkpoint: Checkpoint,
  origin: string,
  selection: VerifyReport['selection'],
  entries: BatchEntry[],
  records: number,
  keyEventData: Uint8Array[],
  problem: (p: Problem) => void,
): ExportStatement | undefined {
  const where = 'statement.txt';
  if (text === undefined) {
    problem({ kind: 'statement', where, message: 'the bundle has no signed export statement: whether batches were cut from it cannot be checked' });
    return undefined;
  }
  let statement: ExportStatement;
  try {
    statement = parseExportStatement(parseNote(text).text);
  } catch (err) {
    problem({ kind: 'statement', where, message: `the export statement does not read: ${(err as Error).message}` });
    return undefined;
  }
  let signatureVerified = false;
  try {
    openNote(text, [ed25519NoteVerifier(logKey)]);
    signatureVerified = true;
  } catch (err) {
    problem({
      kind: 'statement',
      where,
      message: `the export statement is not signed by the log key ${toHex(logKey.keyId)}: ${(err as Error).message}`,
    });
  }
  report.statement = { ...statement, signatureVerified };
  const differs = (field: string, computed: string | number | null, claimed: string | number | null, kind: ProblemKind = 'statement'): void => {
    if (computed !== claimed)
      problem({ kind, where, message: `${field}: the bundle says otherwise than the signed export statement`, computed, claimed });
  };
  differs('format', BUNDLE_FORMAT, statement.format);
  differs('origin', origin, statement.origin);
  differs('checkpoint origin', checkpoint.origin, statement.origin);
  differs('checkpoint size', checkpoint.size, statement.checkpoint.size);
  differs('checkpoint root', toBase64(checkpoint.rootHash), statement.checkpoint.root);
  differs('gateway (bundle.json selection)', selection?.gateway ?? null, statement.gateway);
  differs('from (bundle.json selection)', selection?.from ?? null, statement.from);
  differs('to (bundle.json selection)', selection?.to ?? null, statement.to);

  // the batches: the same number, the same first and last, the same headers in the same order
  const bySeq = [...entries].sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.header.batch - b.header.batch);
  const firstEntry = bySeq[0];
  const lastEntry = bySeq.reduce<BatchEntry | undefined>(
    (l, e) => (l === undefined || e.header.firstSeq + e.header.count > l.header.firstSeq + l.header.count ? e : l),
    undefined,
  );
  const held = {
    count: entries.length,
    first: entries[0]?.header.batch ?? null,
    last: entries[entries.length - 1]?.header.batch ?? null,
    firstSeq: firstEntry?.header.firstSeq ?? null,
    lastSeq: lastEntry === undefined ? null : lastEntry.header.firstSeq + lastEntry.header.count - 1,
  };
  const range = (count: number, first: number | null, last: number | null, firstSeq: number | null, lastSeq: number | null): string =>
    count === 0 ? 'no batches' : `${count} batches (batch ${describeSeq(first ?? 0, last ?? 0)}, seq ${describeSeq(firstSeq ?? 0, lastSeq ?? 0)})`;
  const heldText = range(held.count, held.first, held.last, held.firstSeq, held.lastSeq);
  const signedText = range(statement.batches.count, statement.batches.first, statement.batches.last, statement.seq.first, statement.seq.last);
  const cutAtEnd = statement.seq.last !== null && (held.lastSeq === null || held.lastSeq < statement.seq.last);
  const cutAtStart = statement.seq.first !== null && (held.firstSeq === null || held.firstSeq > statement.seq.first);
  if (cutAtEnd || cutAtStart || held.count < statement.batches.count || records < statement.records)
    problem({
      kind: 'truncated',
      where: 'batches.jsonl',
      message: `truncated: the bundle holds ${heldText} and ${records} records, the signed export statement names ${signedText} and ${statement.records} records${cutAtStart ? '; batches were cut from the start' : ''}${cutAtEnd ? '; batches were cut from the end' : ''}`,
      computed: heldText,
      claimed: signedText,
    });
  else if (
    held.count !== statement.batches.count ||
    held.first !== statement.batches.first ||
    held.last !== statement.batches.last ||
    held.firstSeq !== statement.seq.first ||
    held.lastSeq !== statement.seq.last ||
    records !== statement.records
  )
    problem({
      kind: 'statement',
      where: 'batches.jsonl',
      message: `the bundle holds ${heldText} and ${records} records, the signed export statement names ${signedText} and ${statement.records} records`,
      computed: heldText,
      claimed: signedText,
    });
  else {
    // headersDigest(entries), from the leaves already hashed
    const digest = toBase64(rootOf(entries.map((e) => e.leaf)));
    if (digest !== statement.headers)
      problem({
        kind: 'statement',
        where: 'batches.jsonl',
        message: 'the batch headers are not the ones the signed export statement names (its headers digest differs)',
        computed: digest,
        claimed: statement.headers,
      });
  }
  const eventsDigest = keyEventsDigest(keyEventData);
  if (keyEventData.length !== statement.keyEvents.count || eventsDigest !== statement.keyEvents.root)
    problem({
      kind: keyEventData.length < statement.keyEvents.count ? 'truncated' : 'statement',
      where: 'key-events.jsonl',
      message: `the bundle holds ${keyEventData.length} key events, the signed export statement names ${statement.keyEvents.count}${keyEventData.length === statement.keyEvents.count ? ' others' : ''}`,
      computed: `${keyEventData.length} ${eventsDigest}`,
      claimed: `${statement.keyEvents.count} ${statement.keyEvents.root}`,
    });
  return statement;
}

/**
 * The witnesses of the range's boundaries: each is the stored batch just outside it, signed by the gateway, in the
 * log, outside the range in sequence and time, chained to the range's first (before) or last (after) header, and the
 * one the signed statement names. Without an after witness the statement must say that the range reaches the
 * gateway's last batch in the checkpoint.
 */
function verifyBoundaries(
  report: VerifyReport,
  text: string | undefined,
  statement: ExportStatement | undefined,
  entries: BatchEntry[],
  gatewayKeys: Map<string, GatewayKeyEntry>,
  checkpoint: Checkpoint,
  selection: VerifyReport['selection'],
  problem: (p: Problem) => void,
): void {
  const parsed: unknown = text === undefined ? { before: null, after: null } : parseJson(text, 'boundaries.json');
  if (!isObject(parsed) || !('before' in parsed) || !('after' in parsed)) throw new Unusable('boundaries.json', 'expected {before, after}');
  const from = Date.parse(selection?.from ?? '');
  const to = Date.parse(selection?.to ?? '');
  const bySeq = [...entries].sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.header.batch - b.header.batch);
  const first = bySeq[0];
  const last = bySeq.reduce<BatchEntry | undefined>(
    (l, e) => (l === undefined || e.header.firstSeq + e.header.count > l.header.firstSeq + l.header.count ? e : l),
    undefined,
  );
  report.boundaries = { before: null, after: null };
  for (const side of ['before', 'after'] as const) {
    const where = `boundaries.json ${side}`;
    const witness = parsed[side];
    const named: BoundaryRef | null | undefined = statement === undefined ? undefined : statement[side];
    if (witness === null || witness === undefined) {
      if (named !== null && named !== undefined)
        problem({
          kind: 'boundary',
          where,
          message: `the signed export statement names batch ${named.batch} just ${side} the range, the bundle holds no witness of it`,
          claimed: named.batch,
        });
      continue;
    }
    if (!isObject(witness) || !checkHeader(witness.header) || !isString(witness.signature))
      throw new Unusable(where, 'expected {header, signature, logIndex, logProof} with a labtrace batch header (v 1)');
    const header = witness.header;
    const signature = witness.signature;
    const hash = batchHeaderHash(header);
    const lastSeq = header.firstSeq + header.count - 1;
    const at = `${where} (batch ${header.batch} of ${header.gateway}, seq ${describeSeq(header.firstSeq, lastSeq)})`;
    let verified = true;
    const fail = (message: string, computed?: string | number | null, claimed?: string | number | null): void => {
      verified = false;
      problem({
        kind: 'boundary',
        where: at,
        message,
        ...(computed === undefined ? {} : { computed }),
        ...(claimed === undefined ? {} : { claimed }),
      });
    };
    if (named === null) fail(`the signed export statement says no batch lies ${side} the range, the bundle holds one`);
    else if (named !== undefined && (named.batch !== header.batch || named.hash !== hash))
      fail(`not the batch the signed export statement names ${side} the range`, `${header.batch} ${hash}`, `${named.batch} ${named.hash}`);
    if (header.gateway !== selection?.gateway) fail(`a batch of ${header.gateway}, the bundle is of ${selection?.gateway ?? '?'}`);
    // signed by the gateway
    const key = gatewayKeys.get(`${header.gateway} ${header.keyId}`);
    let sig: Uint8Array | undefined;
    try {
      sig = fromBase64(signature);
    } catch {
      sig = undefined;
    }
    if (key === undefined) fail(`signed with key ${header.keyId}, which keys.json does not list`);
    else if (sig === undefined || !verifyEd25519(sig, canonicalBytes(header), key.key.publicKey))
      fail(`the header's signature does not verify with ${header.gateway}'s key ${header.keyId}`);
    else report.counts.signaturesVerified++;
    // in the log
    const logIndex = isCount(witness.logIndex) ? witness.logIndex : null;
    if (logIndex === null || !Array.isArray(witness.logProof) || logIndex >= checkpoint.size)
      fail(`not in the log's checkpoint of size ${checkpoint.size}`);
    else
      try {
        const proof = (witness.logProof as unknown[]).map((p) => fromBase64(String(p)));
        const computed = rootFromInclusionProof(leafHash(canonicalBytes({ header, signature })), logIndex, checkpoint.size, proof);
        if (bytesEqual(computed, checkpoint.rootHash)) report.counts.inclusionsVerified++;
        else
          fail(
            `the inclusion proof at log index ${logIndex} leads to another root than the checkpoint's`,
            toHex(computed),
            toHex(checkpoint.rootHash),
          );
      } catch (err) {
        fail(`the inclusion proof at log index ${logIndex} does not verify: ${(err as Error).message}`);
      }
    // outside the range, in time and in sequence, and chained to it
    if (Number.isFinite(from) && Number.isFinite(to) && header.tsMax >= from && header.tsMin <= to)
      fail(
        `its records (${new Date(header.tsMin).toISOString()} .. ${new Date(header.tsMax).toISOString()}) meet the range: it belongs in the bundle`,
      );
    if (side === 'before' && first !== undefined) {
      if (header.batch >= first.header.batch || lastSeq >= first.header.firstSeq)
        fail(
          `does not lie before the range's first batch ${first.header.batch} (seq from ${first.header.firstSeq})`,
          header.batch,
          first.header.batch,
        );
      if (first.header.prev !== null && first.header.prev !== hash)
        fail(`the range's first batch ${first.header.batch} does not name this header's hash as previous`, hash, first.header.prev);
    }
    if (side === 'after' && last !== undefined) {
      const lastEnd = last.header.firstSeq + last.header.count - 1;
      if (header.batch <= last.header.batch || header.firstSeq <= lastEnd)
        fail(`does not lie after the range's last batch ${last.header.batch} (seq to ${lastEnd})`, header.batch, last.header.batch);
      const expected = batchHeaderHash(last.header);
      if (header.prev !== null && header.prev !== expected)
        fail(`does not name the hash of the range's last batch ${last.header.batch} as previous`, expected, header.prev);
    }
    report.boundaries[side] = {
      batch: header.batch,
      firstSeq: header.firstSeq,
      lastSeq,
      tsMin: header.tsMin,
      tsMax: header.tsMax,
      logIndex,
      hash,
      verified,
    };
  }
}

/** Exit status of the command line: 0 verified, 1 something does not verify, 2 the input is unusable. */
export function exitCodeOf(report: VerifyReport): 0 | 1 | 2 {
  return report.status === 'verified' ? 0 : report.status === 'unusable' ? 2 : 1;
}
