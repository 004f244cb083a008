// The disclosure check's fast path over a bundle's batches (checks/disclosure.ts): the same checks as its full path,
// staged so that the hashing is done in few batched calls (the batches' log leaves in one, each batch's record
// leaves in one, every multi-leaf proof's interior nodes level by level across all batches), the records checked on
// their bytes without building objects, short base64 (hashes, signatures) decoded without allocating. It answers only
// "all is as it should be" (with what the statement's check needs, and the counts the full path would give) or "look
// closer" (undefined): at the first thing out of place (a shape, a key, a signature, a proof, a record, the policy)
// it stops, adds nothing to the report, and the full path runs over the batches and names every problem. So it never
// accepts what the full path refuses; it spares the full path's work where there is nothing to find.
import { base64Into, bytesEqual, fromBase64, toBase64 } from '../../trust/bytes.js';
import { verifyEd25519 } from '../../trust/ed25519.js';
import { canonicalBytes } from '../../trust/jcs.js';
import { rootFromInclusionProof, rootOfPacked } from '../../trust/merkle.js';
import { MultiproofRoots } from '../../trust/multiproof.js';
import { readRecords, RECORD_FORMAT, RECORD_FORMAT_FILE } from '../../trust/record.js';
import { HASH_SIZE, hashSlices, sha256 } from '../../trust/sha256.js';
import { DISCLOSED_FIELDS, redactedEntryHash, type DisclosureStatement } from '../disclosure.js';
import { authenticateChain, type ChainLink } from '../header-chain.js';
import { ProvenNodes } from '../proven-nodes.js';
import { logLeafBytes } from './batches.js';
import { checkHeader, isCount, isObject, isString, keyProblemOf, type HeaderLike, type VerifyContext } from './context.js';

/** What the batches leave for the statement's check (the full path gives the same, less `packed` and `headers`). */
export interface Disclosed {
  batches: { header: object; signature: string }[];
  whole: number;
  redacted: number;
  /** every entry's hash, 32 bytes each, in bundle order */
  entryHashes: Uint8Array[];
  /** the same, packed (the fast path) */
  packed?: Uint8Array;
  /** the statement's headers digest, from the log leaves already hashed (the fast path) */
  headers?: string;
}

const SHOWN = new Set<string>(DISCLOSED_FIELDS);
/** fields every record has (reason and file may be absent) */
export const REQUIRED: readonly string[] = ['seq', 'ts', 'instrument', 'channel', 'value', 'unit', 'quality'];
/** the redactable fields every record carries: a whole record always shows them */
const ALWAYS: readonly string[] = ['ts', 'instrument', 'channel', 'value', 'unit', 'quality'];
const TWO_32 = 2 ** 32;

/** A growing packed array of 32-byte hashes. */
class Packed {
  bytes = new Uint8Array(HASH_SIZE * 1024);
  count = 0;

  add(from: Uint8Array, at = 0, n = 1): void {
    const need = HASH_SIZE * (this.count + n);
    if (need > this.bytes.length) {
      let length = this.bytes.length;
      while (length < need) length *= 2;
      const bigger = new Uint8Array(length);
      bigger.set(this.bytes.subarray(0, HASH_SIZE * this.count));
      this.bytes = bigger;
    }
    this.bytes.set(from.subarray(at, at + HASH_SIZE * n), HASH_SIZE * this.count);
    this.count += n;
  }

  packed(): Uint8Array {
    return this.bytes.subarray(0, HASH_SIZE * this.count);
  }
}

/** A growing array of numbers (sequence numbers), without a JavaScript array's boxing and copying. */
class Numbers {
  private data = new Float64Array(1024);
  private length = 0;

  add(n: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = n;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** the policy as the record scan needs it */
interface Policy {
  redacted: ReadonlySet<string>;
  /** a field every record carries is redacted: no record may be disclosed whole */
  always: boolean;
  reason: boolean;
  file: boolean;
}

/** One batch read by the first stage, for the later ones. */
interface Planned {
  header: HeaderLike;
  /** the proof number in MultiproofRoots, and the signed root's bytes */
  proof: number;
  root: Uint8Array;
}

/** The bundle's batches, each parsed when the check comes to it (batch-slices.ts), or the array parsed whole. */
export interface BatchList {
  readonly count: number;
  at(k: number): unknown;
  /** room to make at once for the leaves, proof hashes and nodes of every batch's multi-leaf proof (it grows past it) */
  readonly slots: number;
}

/** A parsed array as a BatchList. */
export function batchListOf(batches: readonly unknown[]): BatchList {
  let slots = 0;
  for (const b of batches)
    if (isObject(b) && Array.isArray(b.indexes) && Array.isArray(b.redacted) && Array.isArray(b.proof))
      slots += 2 * (b.indexes.length + b.redacted.length + b.proof.length);
  return { count: batches.length, at: (k) => batches[k], slots };
}

/**
 * The batches' checks when nothing is wrong with them, else undefined (and the report untouched). Each batch is done
 * with before the next is read (only its header and a few hashes are kept), so that a bundle read batch by batch
 * leaves little for the garbage collector to keep.
 */
export function fastBatches(ctx: VerifyContext, batches: BatchList, statement: DisclosureStatement): Disclosed | undefined {
  const redacted = new Set<string>(statement.redacted);
  const policy: Policy = {
    redacted,
    always: ALWAYS.some((f) => redacted.has(f)),
    reason: redacted.has('reason'),
    file: redacted.has('file'),
  };
  const seen = new Set<string>();
  const signed: { header: object; signature: string }[] = [];
  const planned: Planned[] = [];
  // room for every leaf, proof hash and node at once: a pool grown by doubling copies it over and over
  const roots = new MultiproofRoots(batches.slots);
  const entries = new Packed();
  const seqs = new Map<string, { batches: number; seqs: Numbers }>();
  const keyIds = new Map<string, Uint8Array>();
  // per batch: its log leaf's hash (for the statement's headers digest), its header's hash (for the chain), and the
  // key its own signature is checked with if the chain does not authenticate it
  const logLeafHashes = new Packed();
  const headerHashes = new Packed();
  const publicKeys: Uint8Array[] = [];
  const proven = new ProvenNodes(ctx.checkpoint.size, ctx.checkpoint.rootHash);
  let whole = 0;
  let hidden = 0;
  for (let k = 0; k < batches.count; k++) {
    const b = batches.at(k);
    if (!isObject(b)) return undefined;
    const header = b.header;
    if (!checkHeader(header)) return undefined;
    const { signature, records, indexes, redacted: redactedEntries, proof, logProof, logIndex } = b;
    if (
      !isString(signature) ||
      !isString(records) ||
      !Array.isArray(indexes) ||
      !Array.isArray(redactedEntries) ||
      !Array.isArray(proof) ||
      !Array.isArray(logProof) ||
      !isCount(logIndex) ||
      logIndex >= ctx.checkpoint.size
    )
      return undefined;
    const id = `${header.gateway} ${header.batch}`;
    if (seen.has(id)) return undefined;
    seen.add(id);
    let headerBytes: Uint8Array;
    try {
      headerBytes = canonicalBytes(header);
    } catch {
      return undefined;
    }
    // the gateway's key, valid for the batch, and its signature
    const key = ctx.gatewayKeys.get(`${header.gateway} ${header.keyId}`);
    if (key === undefined) return undefined;
    const keyProblem = keyProblemOf(key, header.batch, logIndex);
    if (keyProblem !== undefined) return undefined;
    // the signature is checked after the loop, unless the next header authenticates this one (header-chain.ts)
    if (signature.length !== 88) return undefined;
    headerHashes.add(sha256(headerBytes));
    publicKeys.push(key.key.publicKey);
    // the header's inclusion in the log (most of the proof's nodes an earlier batch's proof proved)
    let leafBytes: Uint8Array;
    try {
      leafBytes = logLeafBytes(header, headerBytes, signature);
    } catch {
      return undefined;
    }
    const leafInput = new Uint8Array(1 + leafBytes.length);
    leafInput.set(leafBytes, 1);
    const leaf = sha256(leafInput);
    if (!proven.proves(leaf, logIndex, logProof)) {
      try {
        const hashes = logProof.map((h) => fromBase64(String(h)));
        if (!bytesEqual(rootFromInclusionProof(leaf, logIndex, proven.size, hashes), proven.root)) return undefined;
      } catch {
        return undefined;
      }
    }
    logLeafHashes.add(leaf);

    // the records disclosed whole: on their bytes, held to the header and the policy, hashed in one call
    if (!indexes.every(isCount)) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(records);
    } catch {
      return undefined;
    }
    let keyBytes = keyIds.get(header.keyId);
    if (keyBytes === undefined) {
      keyBytes = new Uint8Array(4);
      for (let k = 0; k < 4; k++) keyBytes[k] = parseInt(header.keyId.slice(2 * k, 2 * k + 2), 16);
      keyIds.set(header.keyId, keyBytes);
    }
    const bounds = scanRecords(bytes, header, keyBytes, indexes, policy) ?? readWhole(bytes, header, keyBytes, indexes, policy);
    if (bounds === undefined) return undefined;
    const places: { index: number; slot: number }[] = [];
    const batchSeqs: number[] = [];
    if (indexes.length > 0) {
      const leaves = hashSlices(bytes, bounds);
      entries.add(leaves, 0, indexes.length);
      const first = roots.slots(indexes.length);
      roots.pool.set(leaves.subarray(0, HASH_SIZE * indexes.length), HASH_SIZE * first);
      for (let i = 0; i < indexes.length; i++) {
        const index = indexes[i] as number;
        places.push({ index, slot: first + i });
        batchSeqs.push(header.firstSeq + index);
      }
    }
    // the records with redacted fields: their shape, place and policy, and their entries' hashes
    for (const e of redactedEntries) {
      const r = readRedacted(e, header, policy);
      if (r === undefined) return undefined;
      const slot = roots.slot();
      if (base64Into(r.leaf, roots.pool, HASH_SIZE * slot) !== HASH_SIZE) return undefined;
      places.push({ index: r.index, slot });
      batchSeqs.push(header.firstSeq + r.index);
      entries.add(r.hash);
    }
    // every disclosed leaf at its place to the signed root, planned now and hashed with every other batch's
    if (places.length === 0) return undefined;
    places.sort((x, y) => x.index - y.index);
    const proofSlots: number[] = [];
    for (const p of proof) {
      if (typeof p !== 'string' || p.length !== 44) return undefined;
      const slot = roots.slot();
      if (base64Into(p, roots.pool, HASH_SIZE * slot) !== HASH_SIZE) return undefined;
      proofSlots.push(slot);
    }
    const proofNumber = roots.add(
      places.map((p) => p.index),
      places.map((p) => p.slot),
      header.count,
      proofSlots,
    );
    if (proofNumber < 0) return undefined;
    const root = new Uint8Array(HASH_SIZE);
    if (header.root.length !== 44 || base64Into(header.root, root, 0) !== HASH_SIZE) return undefined;
    planned.push({ header, proof: proofNumber, root });
    signed.push({ header, signature });
    whole += indexes.length;
    hidden += redactedEntries.length;
    let g = seqs.get(header.gateway);
    if (g === undefined) {
      g = { batches: 0, seqs: new Numbers() };
      seqs.set(header.gateway, g);
    }
    g.batches++;
    for (const s of batchSeqs) g.seqs.add(s);
  }

  // the headers authenticated: by the newest one's signature of each gateway's run of consecutive batches, and the
  // chain of `prev` hashes down from it (header-chain.ts); a header the chain does not reach by its own signature
  const packedHeaders = headerHashes.packed();
  const links: ChainLink[] = planned.map((p, i) => ({
    gateway: p.header.gateway,
    keyId: p.header.keyId,
    batch: p.header.batch,
    prev: p.header.prev,
    hash: packedHeaders.subarray(HASH_SIZE * i, HASH_SIZE * i + HASH_SIZE),
  }));
  const sig = new Uint8Array(64);
  const chain = authenticateChain(links, (i) => {
    const s = signed[i];
    const publicKey = publicKeys[i];
    if (s === undefined || publicKey === undefined || base64Into(s.signature, sig, 0) !== 64) return false;
    try {
      return verifyEd25519(sig, canonicalBytes(s.header), publicKey);
    } catch {
      return false;
    }
  });
  if (chain.own !== chain.checked) return undefined;

  // every batch's disclosed records to its signed root
  roots.compute();
  for (const p of planned) if (!bytesEqual(roots.root(p.proof), p.root)) return undefined;

  // all as it should be: what the full path would have counted
  const counts = ctx.report.counts;
  counts.signaturesVerified += chain.own;
  counts.headersChained += chain.chained;
  counts.inclusionsVerified += planned.length;
  counts.rootsVerified += planned.length;
  counts.batches = signed.length;
  for (const [gateway, g] of seqs) ctx.report.gateways.push(gatewaySummary(gateway, { batches: g.batches, seqs: g.seqs.values() }));
  // (the statement's check reads the packed hashes; the list is the full path's)
  return {
    batches: signed,
    whole,
    redacted: hidden,
    entryHashes: [],
    packed: entries.packed(),
    headers: toBase64(rootOfPacked(logLeafHashes.packed())),
  };
}

/** A gateway's line of the report: its batches, records and the ranges of sequence numbers they cover. */
export function gatewaySummary(
  gateway: string,
  g: { batches: number; seqs: readonly number[] | Float64Array },
): { gateway: string; batches: number; records: number; ranges: { first: number; last: number }[]; declaredJumps: never[] } {
  // sorted as numbers (a typed array's sort), without a comparison callback per pair; mostly they come in order
  const sorted = Float64Array.from(g.seqs);
  let ascending = true;
  for (let i = 1; i < sorted.length && ascending; i++) ascending = (sorted[i - 1] as number) <= (sorted[i] as number);
  if (!ascending) sorted.sort();
  const ranges: { first: number; last: number }[] = [];
  for (const s of sorted) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && s === last.last + 1) last.last = s;
    else ranges.push({ first: s, last: s });
  }
  return { gateway, batches: g.batches, records: sorted.length, ranges, declaredJumps: [] };
}

/** the header's gateway id as the record bytes hold it (ASCII only: anything else goes to readWhole) */
let gatewayText = '';
let gatewayBytes: Uint8Array | undefined;

/**
 * The records disclosed whole, on their bytes (record.ts layout, each behind its 0x00 leaf prefix): each record's
 * bounds when every record reads, is at the place its index says (sequence number), of the header's gateway, key and
 * time range, with only ASCII text, and shows no field the policy redacts; undefined for anything else (readWhole
 * then decides).
 */
function scanRecords(bytes: Uint8Array, header: HeaderLike, keyId: Uint8Array, indexes: readonly number[], policy: Policy): Uint32Array | undefined {
  if (policy.always && indexes.length > 0) return undefined;
  if (gatewayText !== header.gateway || gatewayBytes === undefined) {
    gatewayText = header.gateway;
    gatewayBytes = undefined;
    const g = new Uint8Array(gatewayText.length);
    for (let i = 0; i < gatewayText.length; i++) {
      const c = gatewayText.charCodeAt(i);
      if (c > 0x7f) return undefined;
      g[i] = c;
    }
    gatewayBytes = g;
  }
  const gateway = gatewayBytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = bytes.length;
  const bounds = new Uint32Array(indexes.length + 1);
  let at = 0;
  /** `n` bytes of ASCII text from `at` */
  const ascii = (n: number): boolean => {
    if (at + n > length) return false;
    for (let k = at; k < at + n; k++) if ((bytes[k] as number) > 0x7f) return false;
    at += n;
    return true;
  };
  for (let i = 0; i < indexes.length; i++) {
    bounds[i] = at;
    if (at + 2 > length || bytes[at] !== 0x00) return undefined;
    const version = bytes[at + 1];
    if (version !== RECORD_FORMAT && !(version === RECORD_FORMAT_FILE && !policy.file)) return undefined;
    at += 2;
    // gateway, key id
    if (at + 1 + gateway.length + 4 + 16 > length || bytes[at] !== gateway.length) return undefined;
    at++;
    for (let k = 0; k < gateway.length; k++) if (bytes[at + k] !== gateway[k]) return undefined;
    at += gateway.length;
    for (let k = 0; k < 4; k++) if (bytes[at + k] !== keyId[k]) return undefined;
    at += 4;
    // seq: at the place its index says; ts: whole milliseconds inside the header's range
    const seq = view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
    if (!Number.isSafeInteger(seq) || seq !== header.firstSeq + (indexes[i] as number)) return undefined;
    const hi = view.getUint32(at + 8);
    const lo = view.getUint32(at + 12);
    at += 16;
    const rest = (hi % 1e6) * TWO_32 + lo;
    if (rest % 1e6 !== 0) return undefined;
    const ts = Math.floor(hi / 1e6) * TWO_32 + rest / 1e6;
    if (ts < header.tsMin || ts > header.tsMax) return undefined;
    // instrument, channel
    if (at >= length || !ascii(bytes[at++] as number)) return undefined;
    if (at >= length || !ascii(bytes[at++] as number)) return undefined;
    if (at >= length) return undefined;
    const kind = bytes[at++];
    if (kind === 3) {
      if (at + 8 > length || !Number.isFinite(view.getFloat64(at))) return undefined;
      at += 8;
    } else if (kind === 4) {
      if (at + 2 > length) return undefined;
      const n = view.getUint16(at);
      at += 2;
      if (!ascii(n)) return undefined;
    } else if (kind !== 0 && kind !== 1 && kind !== 2) return undefined;
    // unit, quality, reason
    if (at >= length || !ascii(bytes[at++] as number)) return undefined;
    if (at >= length || (bytes[at++] as number) > 2) return undefined;
    if (at >= length) return undefined;
    const hasReason = bytes[at++];
    if (hasReason === 1) {
      if (policy.reason || at + 2 > length) return undefined;
      const n = view.getUint16(at);
      at += 2;
      if (!ascii(n)) return undefined;
    } else if (hasReason !== 0) return undefined;
    if (version === RECORD_FORMAT_FILE) {
      if (at + 32 > length) return undefined;
      at += 32;
    }
    bounds[i + 1] = at;
  }
  return at === length ? bounds : undefined;
}

/** The full path's reading of the records disclosed whole (decoded, any text), without a report: bounds or undefined. */
function readWhole(bytes: Uint8Array, header: HeaderLike, keyId: Uint8Array, indexes: readonly number[], policy: Policy): Uint32Array | undefined {
  const bounds: number[] = [0];
  let ok = true;
  try {
    readRecords(bytes, (record, _start, end, i) => {
      const s = record.sample;
      const index = indexes[i];
      const rk = record.keyId;
      if (
        index === undefined ||
        record.gateway !== header.gateway ||
        rk[0] !== keyId[0] ||
        rk[1] !== keyId[1] ||
        rk[2] !== keyId[2] ||
        rk[3] !== keyId[3] ||
        s.seq !== header.firstSeq + index ||
        s.ts < header.tsMin ||
        s.ts > header.tsMax
      ) {
        ok = false;
        return false;
      }
      for (const f of policy.redacted)
        if ((s as unknown as Record<string, unknown>)[f] !== undefined) {
          ok = false;
          return false;
        }
      bounds.push(end);
      return true;
    });
  } catch {
    return undefined;
  }
  if (!ok || bounds.length - 1 !== indexes.length) return undefined;
  return Uint32Array.from(bounds);
}

/** A redacted record's entry when it is as it should be (its shape, place, policy): its index, leaf text and hash. */
function readRedacted(e: unknown, header: HeaderLike, policy: Policy): { index: number; leaf: string; hash: Uint8Array } | undefined {
  if (!isObject(e) || !isCount(e.index) || !isString(e.leaf) || !isObject(e.fields) || !isObject(e.commitments)) return undefined;
  const { index, leaf, fields, commitments } = e;
  if (leaf.length !== 44) return undefined;
  const scratch = new Uint8Array(HASH_SIZE);
  const committed = Object.keys(commitments);
  if (committed.length === 0) return undefined;
  for (const f of committed) {
    const c = commitments[f];
    if (!isString(c) || c.length !== 44 || base64Into(c, scratch, 0) !== HASH_SIZE || !policy.redacted.has(f)) return undefined;
  }
  if (fields.seq !== header.firstSeq + index) return undefined;
  if (fields.ts !== undefined && (!isCount(fields.ts) || fields.ts < header.tsMin || fields.ts > header.tsMax)) return undefined;
  for (const f of Object.keys(fields)) if (!SHOWN.has(f) || policy.redacted.has(f)) return undefined;
  for (const f of REQUIRED) if (!(f in fields) && !(f in commitments)) return undefined;
  try {
    return { index, leaf, hash: redactedEntryHash({ index, leaf, fields, commitments: commitments as Record<string, string> }) };
  } catch {
    return undefined;
  }
}
