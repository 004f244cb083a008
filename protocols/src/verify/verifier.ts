// The offline verifier of an export bundle (`labtrace export`, format labtrace-bundle/v1). It trusts nothing in the
// bundle but the keys it is given, and checks, with the log key, the gateways' keys and RFC 6962 hashing alone:
//   - the checkpoint: signed by the log key, for the bundle's log (origin);
//   - every batch: the header signed by its gateway's key, that key valid at the batch's latest record, the Merkle
//     root recomputed from the record bytes, and the header's inclusion in the log under the checkpoint's root;
//   - per gateway, the sequence numbers: gaps (except declared jumps), overlaps, duplicated and reordered batches,
//     and the header chain (each header names the hash of the previous one);
//   - the readable records.jsonl says what the signed bytes say, record for record;
//   - key events: their inclusion in the log;
//   - with a saved earlier checkpoint: that the bundle's checkpoint extends it (a consistency proof in bundle.json).
// Pure TypeScript without Node globals, so that it also runs in a browser: the caller reads the files.
import type { LabtraceError } from '../errors.js';
import type { Sample } from '../measurement.js';
import { bytesEqual, fromBase64, toBase64, toHex } from '../trust/bytes.js';
import { openCheckpoint, parseCheckpoint, type Checkpoint } from '../trust/checkpoint.js';
import { parseVerifierKey, verifyEd25519, type VerifierKey } from '../trust/ed25519.js';
import { canonicalBytes } from '../trust/jcs.js';
import { leafHash, rootFromInclusionProof, rootOf, verifyConsistency } from '../trust/merkle.js';
import { ed25519NoteVerifier, parseNote } from '../trust/note.js';
import { readRecords } from '../trust/record.js';
import { sha256 } from '../trust/sha256.js';

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
  keyEvents?: string;
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
  | 'inconsistent-checkpoint';

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
    gatewayKeys: { gateway: string; keyId: string; status: string; validUntil: number | null }[];
  };
  selection: { gateway: string; from: string; to: string; created: string } | null;
  checkpoint: { origin: string; size: number; root: string; signatureVerified: boolean } | null;
  savedCheckpoint: { size: number; root: string; consistent: boolean } | null;
  gateways: GatewaySummary[];
  keyEvents: { index: number; at: number | null; kind: string | null; gateway: string | null }[];
  counts: { batches: number; records: number; signaturesVerified: number; rootsVerified: number; inclusionsVerified: number };
  problems: Problem[];
  problemsOmitted: number;
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
  validUntil: number | null;
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
  /** the batch's first record (a declared jump is one), and how many records its bytes hold */
  first: Sample | undefined;
  records: number;
  /** whether the record bytes decoded and matched the header (count, root) */
  intact: boolean;
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

function decodeBase64(text: string, where: string): Uint8Array {
  const bad = (): never => {
    throw new Unusable(where, `not padded standard base64: "${text.slice(0, 80)}"`);
  };
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
    const status = isString(k.status) ? k.status : 'active';
    gatewayKeys.set(`${k.gateway} ${keyId}`, { gateway: k.gateway, keyId, key, status, validUntil });
    report.trust.gatewayKeys.push({ gateway: k.gateway, keyId, status, validUntil });
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

  // records.jsonl, compared with each batch's signed records as it is read (nothing kept but the readable rows)
  const readable = new ReadableCheck(files.records, problem);

  // batches.jsonl
  const entries: BatchEntry[] = [];
  for (const { line, text } of lines(files.batches)) {
    const where = `batches.jsonl line ${line}`;
    const entry = parseJson(text, where);
    if (!isObject(entry)) throw new Unusable(where, 'expected an object');
    const result = verifyBatchLine(entry, where, line, gatewayKeys, size, root, problem, report, readable);
    if (result !== undefined) entries.push(result);
  }
  report.counts.batches = entries.length;

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
  if (files.keyEvents !== undefined) verifyKeyEvents(report, files.keyEvents, size, root, problem);
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
  size: number,
  logRoot: Uint8Array,
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

  // the gateway's key, valid at the batch's latest record, and its signature
  const key = gatewayKeys.get(`${header.gateway} ${header.keyId}`);
  if (key === undefined)
    problem({ kind: 'unknown-key', where, message: `signed with key ${header.keyId}, which keys.json does not list for ${header.gateway}` });
  else {
    if (key.validUntil !== null && header.tsMax >= key.validUntil)
      problem({
        kind: 'key-not-valid',
        where,
        message: `key ${header.keyId} is ${key.status} from ${new Date(key.validUntil).toISOString()}, the batch reaches ${new Date(header.tsMax).toISOString()}`,
        computed: header.tsMax,
        claimed: key.validUntil,
      });
    let sig: Uint8Array | undefined;
    try {
      sig = fromBase64(signature);
    } catch {
      sig = undefined;
    }
    if (sig !== undefined && verifyEd25519(sig, canonicalBytes(header), key.key.publicKey)) report.counts.signaturesVerified++;
    else
      problem({ kind: 'signature-invalid', where, message: `the header's signature does not verify with ${header.gateway}'s key ${header.keyId}` });
  }

  // the records: decode, hash, recompute the root
  const bytes = decodeBase64(entry.records, `${where}: records`);
  const samples: Sample[] = [];
  const leaves: Uint8Array[] = [];
  let intact = true;
  const keyId = header.keyId;
  const keyBytes = new Uint8Array(4);
  for (let k = 0; k < 4; k++) keyBytes[k] = parseInt(keyId.slice(2 * k, 2 * k + 2), 16);
  try {
    readRecords(bytes, (record, start, end, i) => {
      leaves.push(sha256(bytes.subarray(start, end)));
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
    if (leaves.length !== header.count) {
      intact = false;
      problem({
        kind: 'count-mismatch',
        where,
        message: 'the header counts another number of records than the bytes hold',
        computed: leaves.length,
        claimed: header.count,
      });
    }
    const computed = toBase64(rootOf(leaves));
    if (computed !== header.root) {
      intact = false;
      problem({ kind: 'root-mismatch', where, message: 'the record bytes do not hash to the signed Merkle root', computed, claimed: header.root });
    } else report.counts.rootsVerified++;
  }

  // the header's inclusion in the log
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
  } else {
    try {
      const proof = (entry.logProof as unknown[]).map((p) => fromBase64(String(p)));
      const leaf = leafHash(canonicalBytes({ header, signature }));
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
  readable.batch(line, header, samples);
  return { line, header, first: samples[0], records: samples.length, intact };
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
        const expected = toBase64(sha256(canonicalBytes(last.header)));
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

/**
 * The lines of records.jsonl, parsed. One parse of the whole file as an array is much faster than one per line; the
 * file is read line by line (to name a bad line) when that fails or when its lines are not one record each.
 */
function readableRows(text: string): { rows: { line: number }[]; parsed: Record<string, unknown>[] } {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (body === '') return { rows: [], parsed: [] };
  let newlines = 0;
  for (let i = body.indexOf('\n'); i >= 0; i = body.indexOf('\n', i + 1)) newlines++;
  let all: unknown;
  try {
    all = JSON.parse(`[${body.replaceAll('\n', ',')}]`) as unknown;
  } catch {
    all = undefined;
  }
  if (Array.isArray(all) && all.length === newlines + 1 && all.every(isObject)) return { rows: all.map((_, k) => ({ line: k + 1 })), parsed: all };
  const rows = lines(text);
  const parsed = rows.map(({ line, text: t }) => {
    const r = parseJson(t, `records.jsonl line ${line}`);
    if (!isObject(r)) throw new Unusable(`records.jsonl line ${line}`, 'expected an object');
    return r;
  });
  return { rows, parsed };
}

/**
 * Every signed record has its readable line, with the same fields, and every readable line its signed record. Lines
 * are expected in the order of the batches; a line out of place is looked up by gateway and sequence number.
 */
class ReadableCheck {
  readonly #rows: { line: number }[];
  readonly #parsed: Record<string, unknown>[];
  readonly #used: Uint8Array;
  readonly #batchesSeen = new Set<string>();
  #index: Map<string, number> | undefined;
  #cursor = 0;

  constructor(
    text: string,
    private readonly problem: (p: Problem) => void,
  ) {
    ({ rows: this.#rows, parsed: this.#parsed } = readableRows(text));
    this.#used = new Uint8Array(this.#rows.length);
  }

  #lookup(gateway: string, seq: number): number {
    if (this.#index === undefined) {
      const index = new Map<string, number>();
      for (let k = this.#parsed.length - 1; k >= 0; k--) {
        const r = this.#parsed[k];
        if (r !== undefined) index.set(`${String(r.gateway)} ${String(r.seq)}`, k);
      }
      this.#index = index;
    }
    return this.#index.get(`${gateway} ${seq}`) ?? -1;
  }

  /** Compares the records of one batch (a batch seen before is a duplicate, reported elsewhere). */
  batch(line: number, header: HeaderLike, samples: readonly Sample[]): void {
    const { problem } = this;
    const parsed = this.#parsed;
    const used = this.#used;
    const gateway = header.gateway;
    const id = `${gateway} ${header.batch}`;
    if (this.#batchesSeen.has(id)) return;
    this.#batchesSeen.add(id);
    for (const s of samples) {
      const here = parsed[this.#cursor];
      let k: number;
      if (here !== undefined && used[this.#cursor] === 0 && here.seq === s.seq && here.gateway === gateway) k = this.#cursor;
      else {
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
      const r = parsed[k] ?? {};
      // the common case first: every field equal and no other field
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
      const where = `records.jsonl line ${this.#rows[k]?.line ?? '?'} (${gateway} seq ${s.seq}, batches.jsonl line ${line})`;
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
    for (let k = 0; k < this.#rows.length; k++)
      if (this.#used[k] === 0) {
        const r = this.#parsed[k] ?? {};
        this.problem({
          kind: 'readable-mismatch',
          where: `records.jsonl line ${this.#rows[k]?.line ?? '?'} (${String(r.gateway)} seq ${String(r.seq)})`,
          message: 'no signed record says this',
        });
      }
  }
}

function verifyKeyEvents(report: VerifyReport, text: string, size: number, root: Uint8Array, problem: (p: Problem) => void): void {
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
    report.keyEvents.push({
      index: e.index,
      at: isCount(ev.at) ? ev.at : null,
      kind: isString(ev.kind) ? ev.kind : null,
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
}

/** Exit status of the command line: 0 verified, 1 something does not verify, 2 the input is unusable. */
export function exitCodeOf(report: VerifyReport): 0 | 1 | 2 {
  return report.status === 'verified' ? 0 : report.status === 'unusable' ? 2 : 1;
}
