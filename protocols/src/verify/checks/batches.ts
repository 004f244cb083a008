// Every batch of batches.jsonl: the header signed by its gateway's key, that key valid for the batch by its place in
// the log and its batch number (never by the times it carries), the Merkle root recomputed from the record bytes,
// and the header's inclusion in the log under the checkpoint's root. The records go to the readable lines' check
// as they are read (nothing kept but the readable rows).
import type { Sample } from '../../measurement.js';
import { bytesEqual, fromBase64, toBase64, toHex } from '../../trust/bytes.js';
import { verifyEd25519 } from '../../trust/ed25519.js';
import { canonicalBytes } from '../../trust/jcs.js';
import { leafHash, rootFromInclusionProof, rootOfPacked } from '../../trust/merkle.js';
import { readRecord, readRecords } from '../../trust/record.js';
import { hashSlices } from '../../trust/sha256.js';
import { ProvenNodes } from '../proven-nodes.js';
import {
  checkHeader,
  decodeBase64,
  describeSeq,
  isCount,
  isObject,
  isString,
  keyProblemOf,
  lines,
  parseJson,
  Unusable,
  type BatchEntry,
  type HeaderLike,
  type VerifyContext,
} from './context.js';

/** A batch line being checked: where it is, its header and its bytes as made once. */
interface BatchLine {
  entry: Record<string, unknown>;
  line: number;
  where: string;
  header: HeaderLike;
  signature: string;
  /** the record bytes, as base64; null for a batch whose records the lab's retention removed (see `removed`) */
  records: string | null;
  /** retention removed the records: their leaf hashes (base64, 32 bytes each, in order) stay, and when they went (ms) */
  removed: { leaves: string; at: number } | undefined;
  headerBytes: Uint8Array;
  leaf: Uint8Array;
}

export function checkBatches(ctx: VerifyContext): void {
  // the log nodes proven so far: the batches' inclusion proofs share most of their nodes
  const proven = new ProvenNodes(ctx.checkpoint.size, ctx.checkpoint.rootHash);
  for (const { line, text } of lines(ctx.files.batches)) {
    const where = `batches.jsonl line ${line}`;
    const entry = parseJson(text, where);
    if (!isObject(entry)) throw new Unusable(where, 'expected an object');
    const result = checkBatchLine(ctx, entry, where, line, proven);
    if (result !== undefined) ctx.entries.push(result);
    if ((line & 255) === 0) ctx.options.progress?.(line);
  }
  ctx.report.counts.batches = ctx.entries.length;
  checkSuccessors(ctx);
}

function checkBatchLine(
  ctx: VerifyContext,
  entry: Record<string, unknown>,
  where0: string,
  line: number,
  proven: ProvenNodes,
): BatchEntry | undefined {
  const b = readBatchLine(ctx, entry, where0, line);
  if (b === undefined) return undefined;
  checkSignature(ctx, b);
  const { header, where } = b;
  if (b.removed !== undefined || b.records === null) return checkRemovedBatch(ctx, b, proven);
  // the records: decode, hash, recompute the root
  const bytes = decodeBase64(b.records, `${where}: records`);
  const keyBytes = new Uint8Array(4);
  for (let k = 0; k < 4; k++) keyBytes[k] = parseInt(header.keyId.slice(2 * k, 2 * k + 2), 16);
  // first the fast path: records and readable lines read side by side, all as they should be or nothing
  const fast = ctx.readable.fast(header, bytes, keyBytes);
  if (fast !== undefined) {
    const intact = rootMatches(ctx, b, bytes, fast);
    checkLogInclusion(ctx, b, proven);
    const first = readRecord(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 1).record.sample;
    return batchEntry(b, first, header.count, intact);
  }
  const { samples, intact } = checkRecords(ctx, b, bytes, keyBytes);
  checkLogInclusion(ctx, b, proven);
  ctx.readable.batch(line, header, samples);
  return batchEntry(b, samples[0], samples.length, intact);
}

function batchEntry(b: BatchLine, first: Sample | undefined, records: number, intact: boolean): BatchEntry {
  const { line, header, signature, entry, headerBytes, leaf } = b;
  return { line, header, signature, first, records, intact, logIndex: isCount(entry.logIndex) ? entry.logIndex : null, headerBytes, leaf };
}

/** The line's header and signature, and their canonical bytes (undefined, with a problem: not a batch header). */
function readBatchLine(ctx: VerifyContext, entry: Record<string, unknown>, where0: string, line: number): BatchLine | undefined {
  const header = entry.header;
  if (!checkHeader(header)) {
    ctx.problem({ kind: 'header-invalid', where: where0, message: 'the header is not a labtrace batch header (v 1)' });
    return undefined;
  }
  const removedLine = entry.records === null && isString(entry.leaves) && isCount(entry.removedAt);
  if (!isString(entry.signature) || !(isString(entry.records) || removedLine))
    throw new Unusable(
      where0,
      'expected {header, signature, records, logIndex, logProof} (or, records removed by retention, records null with leaves and removedAt)',
    );
  const where = `${where0} (batch ${header.batch} of ${header.gateway}, seq ${describeSeq(header.firstSeq, header.firstSeq + header.count - 1)})`;
  const signature = entry.signature;
  try {
    const headerBytes = canonicalBytes(header);
    const leaf = leafHash(logLeafBytes(header, headerBytes, signature));
    const removed = removedLine ? { leaves: entry.leaves as string, at: entry.removedAt as number } : undefined;
    return { entry, line, where, header, signature, records: isString(entry.records) ? entry.records : null, removed, headerBytes, leaf };
  } catch (err) {
    // text JSON.parse reads but canonical JSON refuses (a lone surrogate): nothing could have signed it
    ctx.problem({ kind: 'header-invalid', where, message: `the header or its signature is not canonical JSON: ${(err as Error).message}` });
    return undefined;
  }
}

/** The gateway's key, valid for the batch, and its signature of the header. */
function checkSignature(ctx: VerifyContext, b: BatchLine): void {
  const { header, where, entry } = b;
  const key = ctx.gatewayKeys.get(`${header.gateway} ${header.keyId}`);
  if (key === undefined) {
    ctx.problem({ kind: 'unknown-key', where, message: `signed with key ${header.keyId}, which keys.json does not list for ${header.gateway}` });
    return;
  }
  const invalid = keyProblemOf(key, header.batch, isCount(entry.logIndex) ? entry.logIndex : null);
  if (invalid !== undefined) ctx.problem({ kind: 'key-not-valid', where, message: invalid });
  let sig: Uint8Array | undefined;
  try {
    sig = fromBase64(b.signature);
  } catch {
    sig = undefined;
  }
  if (sig !== undefined && verifyEd25519(sig, b.headerBytes, key.key.publicKey)) ctx.report.counts.signaturesVerified++;
  else
    ctx.problem({ kind: 'signature-invalid', where, message: `the header's signature does not verify with ${header.gateway}'s key ${header.keyId}` });
}

/**
 * A batch whose records the lab's retention removed: its header, signature and log inclusion check as any batch's,
 * and its kept leaf hashes must be as many as the header counts and give its signed root. Its records are reported
 * as removed by retention (not missing, not altered): nothing of them is left to read.
 */
function checkRemovedBatch(ctx: VerifyContext, b: BatchLine, proven: ProvenNodes): BatchEntry {
  const { header, where } = b;
  const leaves = decodeBase64(b.removed?.leaves ?? '', `${where}: leaves`);
  let intact = true;
  if (leaves.length !== 32 * header.count) {
    intact = false;
    ctx.problem({
      kind: 'count-mismatch',
      where,
      message: 'the header counts another number of records than the kept leaf hashes of its removed records',
      computed: Math.floor(leaves.length / 32),
      claimed: header.count,
    });
  } else {
    const computed = toBase64(rootOfPacked(leaves));
    if (computed === header.root) ctx.report.counts.rootsVerified++;
    else {
      intact = false;
      ctx.problem({
        kind: 'root-mismatch',
        where,
        message: 'the kept leaf hashes of the records removed by retention do not give the signed Merkle root',
        computed,
        claimed: header.root,
      });
    }
  }
  checkLogInclusion(ctx, b, proven);
  const removed = (ctx.report.removedByRetention ??= { batches: 0, records: 0 });
  removed.batches++;
  removed.records += header.count;
  return batchEntry(b, undefined, 0, intact);
}

/** The records' root from their slices of the bytes, against the signed one. */
function rootMatches(ctx: VerifyContext, b: BatchLine, bytes: Uint8Array, bounds: Uint32Array): boolean {
  const computed = toBase64(rootOfPacked(hashSlices(bytes, bounds)));
  if (computed === b.header.root) {
    ctx.report.counts.rootsVerified++;
    return true;
  }
  ctx.problem({
    kind: 'root-mismatch',
    where: b.where,
    message: 'the record bytes do not hash to the signed Merkle root',
    computed,
    claimed: b.header.root,
  });
  return false;
}

/** The slow path: each record read and held to the header (gateway, key, sequence, time), then the count and root. */
function checkRecords(ctx: VerifyContext, b: BatchLine, bytes: Uint8Array, keyBytes: Uint8Array): { samples: Sample[]; intact: boolean } {
  const { header, where } = b;
  const samples: Sample[] = [];
  // each record's slice of the bytes; the leaves are hashed after the walk, in one batched call where Node's native hashing is installed
  const bounds: number[] = [0];
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
    ctx.problem({ kind: 'records-invalid', where, message: `the record bytes do not read as this batch's records: ${(err as Error).message}` });
    return { samples, intact: false };
  }
  let intact = true;
  const held = bounds.length - 1;
  if (held !== header.count) {
    intact = false;
    ctx.problem({
      kind: 'count-mismatch',
      where,
      message: 'the header counts another number of records than the bytes hold',
      computed: held,
      claimed: header.count,
    });
  }
  if (!rootMatches(ctx, b, bytes, Uint32Array.from(bounds))) intact = false;
  return { samples, intact };
}

/**
 * A retired key's batches must be numbered below the first batch its successor delivered before them (the server
 * takes a rotated key's batches during the grace only so): a batch under the old key logged after a batch of the new
 * one with a number as high or lower is one the server should have refused.
 */
function checkSuccessors(ctx: VerifyContext): void {
  const logged = ctx.entries.filter((e) => e.logIndex !== null).sort((a, b) => (a.logIndex ?? 0) - (b.logIndex ?? 0));
  /** per gateway and key, the lowest batch number seen so far in log order, and where */
  const lowest = new Map<string, BatchEntry>();
  for (const e of logged) {
    const key = ctx.gatewayKeys.get(`${e.header.gateway} ${e.header.keyId}`);
    const successor = key?.replacedBy === null || key === undefined ? undefined : lowest.get(`${e.header.gateway} ${key.replacedBy}`);
    if (key !== undefined && successor !== undefined && e.header.batch >= successor.header.batch)
      ctx.problem({
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
export function logLeafBytes(header: HeaderLike, headerBytes: Uint8Array, signature: string): Uint8Array {
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

/** A batch header's inclusion proof (base64 hashes) walked in full from its leaf: counted when it leads to `root`. */
export function checkInclusionProof(
  ctx: VerifyContext,
  where: string,
  leaf: Uint8Array,
  logIndex: number,
  size: number,
  root: Uint8Array,
  logProof: readonly unknown[],
): void {
  try {
    const computed = rootFromInclusionProof(
      leaf,
      logIndex,
      size,
      logProof.map((p) => fromBase64(String(p))),
    );
    if (bytesEqual(computed, root)) ctx.report.counts.inclusionsVerified++;
    else
      ctx.problem({
        kind: 'log-inclusion',
        where,
        message: `the header's inclusion proof at log index ${logIndex} leads to another root than the checkpoint's`,
        computed: toHex(computed),
        claimed: toHex(root),
      });
  } catch (err) {
    ctx.problem({
      kind: 'log-inclusion',
      where,
      message: `the header's inclusion proof at log index ${logIndex} does not verify: ${(err as Error).message}`,
    });
  }
}

/** The header's inclusion in the log, by the batch line's proof, against the checkpoint's root. */
function checkLogInclusion(ctx: VerifyContext, b: BatchLine, proven: ProvenNodes): void {
  const { entry, leaf, where } = b;
  const { size, root: logRoot } = proven;
  const logIndex = entry.logIndex;
  if (!isCount(logIndex) || !Array.isArray(entry.logProof)) {
    ctx.problem({ kind: 'not-in-checkpoint', where, message: `the batch is not in the log's checkpoint of size ${size}` });
  } else if (logIndex >= size) {
    ctx.problem({
      kind: 'not-in-checkpoint',
      where,
      message: `log index ${logIndex} is outside the checkpoint's tree of size ${size}`,
      computed: logIndex,
      claimed: size,
    });
  } else if (proven.proves(leaf, logIndex, entry.logProof)) {
    // its walk met nodes an earlier proof proved, and its other hashes are those nodes: the full walk's answer
    ctx.report.counts.inclusionsVerified++;
  } else {
    checkInclusionProof(ctx, where, leaf, logIndex, size, logRoot, entry.logProof as unknown[]);
  }
}
