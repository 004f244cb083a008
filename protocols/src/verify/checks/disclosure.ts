// A client's selective-disclosure bundle (verify/disclosure.ts, format labtrace-disclosure/v1), checked offline with
// the log key alone: the checkpoint and the key events as for a full bundle (checkpoint.ts, key-events.ts); per
// batch, the gateway's signature of its header under a key valid for it, the header's inclusion in the log, and every
// disclosed record's leaf to the signed root (one multi-leaf proof per batch); each record at its place (its
// sequence number, gateway, key and time held to the header); the data-export policy kept (no record disclosed
// whole carries a redacted field, no redacted record shows one); and the disclosure statement, signed by the log
// key, naming exactly these batches, records, redacted fields' commitments, keys and key events. The records of the
// batches that the bundle does not hold are neither needed nor seen. The batches go through the fast path first
// (disclosure-fast.ts: batched hashing, records checked on their bytes), which either finds all of them as they
// should be or leaves the report untouched for the full path below, which names every problem.
import { fromBase64, toBase64, toHex } from '../../trust/bytes.js';
import { parseCheckpoint } from '../../trust/checkpoint.js';
import { verifyEd25519 } from '../../trust/ed25519.js';
import { canonicalBytes } from '../../trust/jcs.js';
import { leafHash } from '../../trust/merkle.js';
import { rootFromMultiInclusionProof } from '../../trust/multiproof.js';
import { ed25519NoteVerifier, openNote, parseNote } from '../../trust/note.js';
import { readRecords } from '../../trust/record.js';
import { hashSlices, sha256 } from '../../trust/sha256.js';
import {
  DISCLOSED_FIELDS,
  DISCLOSURE_FORMAT,
  REDACTABLE_FIELDS,
  disclosureDigest,
  parseDisclosureStatement,
  redactedEntryHash,
  type DisclosureStatement,
  type RedactedEntry,
} from '../disclosure.js';
import { headersDigest, keyEventsDigest } from '../export-statement.js';
import { authenticateChain, type ChainLink } from '../header-chain.js';
import { ProvenNodes } from '../proven-nodes.js';
import { MAX_PROBLEMS, type Problem, type VerifyOptions, type VerifyReport } from '../report.js';
import { checkInclusionProof, logLeafBytes } from './batches.js';
import { checkCheckpoint } from './checkpoint.js';
import {
  checkHeader,
  describeSeq,
  isCount,
  isObject,
  isString,
  keyProblemOf,
  parseJson,
  reportOf,
  Unusable,
  type HeaderLike,
  type VerifyContext,
} from './context.js';
import { batchAt, sliceBatches } from './batch-slices.js';
import { batchListOf, fastBatches, gatewaySummary, REQUIRED, type BatchList, type Disclosed } from './disclosure-fast.js';
import { readGatewayKeys, readLogKey } from './files.js';
import { checkKeyEvents } from './key-events.js';
import { ReadableCheck } from './readable-lines.js';

/** Verifies a disclosure bundle's text; never throws for bad input (an unusable one is reported so). */
export function verifyDisclosure(text: string, options: VerifyOptions = {}): VerifyReport {
  return verifyDisclosureBy(text, options, true).report;
}

/**
 * verifyDisclosure, with the batches' fast path tried first or not (`fast`), saying whether it took them: for the
 * tests that hold the two paths to the same reports.
 */
export function verifyDisclosureBy(text: string, options: VerifyOptions, fast: boolean): { report: VerifyReport; fastPath: boolean } {
  if (fast) {
    // first with the batches read one at a time (batch-slices.ts) and the fast path; a bundle it does not take all of
    // is verified again from the start as before, so that its report is exactly the one the full path gives
    const sliced: Path = { fast: true, sliced: true, taken: false, sliceable: true };
    const report = reportOf(text, options, (r, t, o) => verifyInto(r, t, o, sliced));
    if (sliced.taken) return { report, fastPath: true };
    // the fast path looked at every batch and found something out of place: the full path names it
    if (sliced.sliceable)
      return { report: reportOf(text, options, (r, t, o) => verifyInto(r, t, o, { ...sliced, fast: false, sliced: false })), fastPath: false };
  }
  const path: Path = { fast, sliced: false, taken: false, sliceable: false };
  const report = reportOf(text, options, (r, t, o) => verifyInto(r, t, o, path));
  return { report, fastPath: path.taken };
}

interface Path {
  /** the fast path first */
  fast: boolean;
  /** the batches read one at a time; if the fast path does not take them, nothing is reported (the caller starts again) */
  sliced: boolean;
  /** out: the fast path took the batches */
  taken: boolean;
  /** out (sliced): the text was cut into its batches, and the checks came to the fast path */
  sliceable: boolean;
}

function verifyInto(report: VerifyReport, text: string, options: VerifyOptions, path: Path): void {
  const problem = (p: Problem): void => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
    else report.problemsOmitted++;
  };
  const slices = path.sliced ? sliceBatches(text) : undefined;
  if (path.sliced && slices === undefined) {
    path.sliceable = false;
    return;
  }
  const doc = slices === undefined ? parseJson(text, 'bundle') : slices.doc;
  if (!isObject(doc) || doc.format !== DISCLOSURE_FORMAT) throw new Unusable('bundle', `not a ${DISCLOSURE_FORMAT} bundle`);
  const { statement: statementNote, checkpoint: checkpointNote, keys, keyEvents, batches } = doc;
  if (!isString(statementNote) || !isString(checkpointNote) || !isObject(keys) || !Array.isArray(keyEvents) || !Array.isArray(batches))
    throw new Unusable('bundle', 'expected {format, statement, checkpoint, keys, keyEvents, batches}');
  let statement: DisclosureStatement;
  try {
    statement = parseDisclosureStatement(parseNote(statementNote).text);
  } catch (err) {
    throw new Unusable('statement', (err as Error).message);
  }
  if (!isObject(keys.log) || !isString(keys.log.verifierKey) || !Array.isArray(keys.gateways))
    throw new Unusable('keys', 'expected {log: {verifierKey}, gateways: [...]}');
  const logKey = readLogKey(report, keys.log.verifierKey, options, problem);
  const gatewayKeys = readGatewayKeys(report, keys.gateways, problem);
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(parseNote(checkpointNote).text);
  } catch (err) {
    throw new Unusable('checkpoint', (err as Error).message);
  }
  const ctx: VerifyContext = {
    report,
    // the key events as the full bundle's key-events.jsonl holds them: one JSON object a line
    files: {
      bundle: '',
      checkpoint: checkpointNote,
      keys: '',
      batches: '',
      records: '',
      keyEvents: keyEvents.map((e) => JSON.stringify(e)).join('\n'),
    },
    options,
    problem,
    bundle: doc,
    origin: statement.origin,
    selection: { gateway: '', from: '', to: '', created: statement.created },
    logKey,
    gatewayKeys,
    checkpoint,
    readable: new ReadableCheck('', problem),
    keyEvents: [],
    keyEventData: [],
    entries: [],
    signedRecords: 0,
    statement: undefined,
  };
  checkCheckpoint(ctx);
  checkKeyEvents(ctx);
  // the fast path when all is well; else the full path, which names every problem
  const list: BatchList =
    slices === undefined ? batchListOf(batches) : { count: slices.count, at: (k) => batchAt(text, slices, k), slots: Math.ceil(text.length / 48) };
  const fast = path.fast ? fastBatches(ctx, list, statement) : undefined;
  path.taken = fast !== undefined;
  if (path.sliced && fast === undefined) return;
  const disclosed = fast ?? checkBatches(ctx, batches, statement);
  const statementVerified = checkStatement(ctx, statementNote, statement, keys, disclosed);
  report.disclosure = {
    run: statement.run,
    created: statement.created,
    fields: statement.fields,
    redacted: statement.redacted,
    wholeRecords: disclosed.whole,
    redactedRecords: disclosed.redacted,
    statementVerified,
  };
  report.counts.records = disclosed.whole + disclosed.redacted;
}

function checkBatches(ctx: VerifyContext, batches: unknown[], statement: DisclosureStatement): Disclosed {
  const proven = new ProvenNodes(ctx.checkpoint.size, ctx.checkpoint.rootHash);
  const out: Disclosed = { batches: [], whole: 0, redacted: 0, entryHashes: [] };
  const seen = new Set<string>();
  const seqs = new Map<string, { batches: number; seqs: number[] }>();
  const signatures = authenticateHeaders(ctx, batches);
  batches.forEach((b, i) => {
    const where0 = `batches[${i}]`;
    if (!isObject(b)) throw new Unusable(where0, 'expected an object');
    const header = b.header;
    if (!checkHeader(header)) {
      ctx.problem({ kind: 'header-invalid', where: where0, message: 'the header is not a labtrace batch header (v 1)' });
      return;
    }
    const { signature, records, indexes, redacted, proof, logProof } = b;
    if (
      !isString(signature) ||
      !isString(records) ||
      !Array.isArray(indexes) ||
      !Array.isArray(redacted) ||
      !Array.isArray(proof) ||
      !Array.isArray(logProof)
    )
      throw new Unusable(where0, 'expected {header, signature, logIndex, logProof, indexes, records, redacted, proof}');
    const where = `${where0} (batch ${header.batch} of ${header.gateway}, seq ${describeSeq(header.firstSeq, header.firstSeq + header.count - 1)})`;
    const id = `${header.gateway} ${header.batch}`;
    if (seen.has(id)) ctx.problem({ kind: 'duplicate', where, message: 'the bundle holds this batch twice' });
    seen.add(id);
    out.batches.push({ header, signature });
    const logIndex = isCount(b.logIndex) ? b.logIndex : null;
    let headerBytes: Uint8Array;
    let leaf: Uint8Array;
    try {
      headerBytes = canonicalBytes(header);
      leaf = leafHash(logLeafBytes(header, headerBytes, signature));
    } catch (err) {
      // text JSON.parse reads but canonical JSON refuses (a lone surrogate): nothing could have signed it
      ctx.problem({ kind: 'header-invalid', where, message: `the header or its signature is not canonical JSON: ${(err as Error).message}` });
      return;
    }
    checkSignature(ctx, header, signature, headerBytes, logIndex, where, signatures.get(i));
    checkLogInclusion(ctx, proven, leaf, logIndex, logProof, where);
    const found = checkRecords(ctx, header, { records, indexes, redacted, proof }, statement, where);
    out.whole += found.whole;
    out.redacted += found.redacted;
    out.entryHashes.push(...found.entryHashes);
    const g = seqs.get(header.gateway) ?? { batches: 0, seqs: [] };
    g.batches++;
    g.seqs.push(...found.seqs);
    seqs.set(header.gateway, g);
  });
  ctx.report.counts.batches = out.batches.length;
  for (const [gateway, g] of seqs) ctx.report.gateways.push(gatewaySummary(gateway, g));
  return out;
}

function checkSignature(
  ctx: VerifyContext,
  header: HeaderLike,
  signature: string,
  headerBytes: Uint8Array,
  logIndex: number | null,
  where: string,
  /** what authenticateHeaders found: chained (no own check needed), or its own signature's validity */
  found: 'chained' | boolean | undefined,
): void {
  const key = ctx.gatewayKeys.get(`${header.gateway} ${header.keyId}`);
  if (key === undefined) {
    ctx.problem({
      kind: 'unknown-key',
      where,
      message: `signed with key ${header.keyId}, which the bundle's keys do not list for ${header.gateway}`,
    });
    return;
  }
  const invalid = keyProblemOf(key, header.batch, logIndex);
  if (invalid !== undefined) ctx.problem({ kind: 'key-not-valid', where, message: invalid });
  if (found === 'chained') {
    ctx.report.counts.headersChained++;
    return;
  }
  if (found ?? ownSignatureValid(signature, headerBytes, key.key.publicKey)) ctx.report.counts.signaturesVerified++;
  else
    ctx.problem({ kind: 'signature-invalid', where, message: `the header's signature does not verify with ${header.gateway}'s key ${header.keyId}` });
}

function ownSignatureValid(signature: string, headerBytes: Uint8Array, publicKey: Uint8Array): boolean {
  let sig: Uint8Array;
  try {
    sig = fromBase64(signature);
  } catch {
    return false;
  }
  return verifyEd25519(sig, headerBytes, publicKey);
}

/**
 * The headers the chain authenticates (header-chain.ts), by their place in the bundle: 'chained', or the validity of
 * the own signature where it was checked (with the key valid for the header: a header under a key not valid for it
 * authenticates none before it). Batches whose header does not read are left to the checks that report them.
 */
function authenticateHeaders(ctx: VerifyContext, batches: readonly unknown[]): Map<number, 'chained' | boolean> {
  const places: number[] = [];
  const links: ChainLink[] = [];
  const checks: (() => { signature: boolean; key: boolean })[] = [];
  batches.forEach((b, i) => {
    if (!isObject(b) || !checkHeader(b.header) || !isString(b.signature)) return;
    const header = b.header;
    const signature = b.signature;
    let headerBytes: Uint8Array;
    try {
      headerBytes = canonicalBytes(header);
    } catch {
      return;
    }
    const logIndex = isCount(b.logIndex) ? b.logIndex : null;
    places.push(i);
    links.push({ gateway: header.gateway, keyId: header.keyId, batch: header.batch, prev: header.prev, hash: sha256(headerBytes) });
    checks.push(() => {
      const key = ctx.gatewayKeys.get(`${header.gateway} ${header.keyId}`);
      if (key === undefined) return { signature: false, key: false };
      const keyValid = keyProblemOf(key, header.batch, logIndex) === undefined;
      return { signature: ownSignatureValid(signature, headerBytes, key.key.publicKey), key: keyValid };
    });
  });
  const own = new Map<number, boolean>();
  const chain = authenticateChain(links, (j) => {
    const r = (checks[j] as () => { signature: boolean; key: boolean })();
    own.set(j, r.signature);
    return r.signature && r.key;
  });
  const out = new Map<number, 'chained' | boolean>();
  chain.how.forEach((how, j) => {
    const place = places[j] as number;
    if (how === 'chained') out.set(place, 'chained');
    else {
      const valid = own.get(j);
      if (valid !== undefined) out.set(place, valid);
    }
  });
  return out;
}

function checkLogInclusion(
  ctx: VerifyContext,
  proven: ProvenNodes,
  leaf: Uint8Array,
  logIndex: number | null,
  logProof: unknown[],
  where: string,
): void {
  const { size, root } = proven;
  if (logIndex === null || logIndex >= size) {
    ctx.problem({
      kind: 'not-in-checkpoint',
      where,
      message: `the batch is not in the log's checkpoint of size ${size}`,
      computed: logIndex,
      claimed: size,
    });
    return;
  }
  if (proven.proves(leaf, logIndex, logProof)) {
    ctx.report.counts.inclusionsVerified++;
    return;
  }
  checkInclusionProof(ctx, where, leaf, logIndex, size, root, logProof);
}

const SHOWN = new Set<string>(DISCLOSED_FIELDS);

/**
 * A batch's disclosed records: the whole ones read and held to the header and the policy, the redacted ones' shape
 * and place, then every leaf to the signed root by the batch's proof. Returns the entries' hashes for the statement.
 */
function checkRecords(
  ctx: VerifyContext,
  header: HeaderLike,
  b: { records: string; indexes: unknown[]; redacted: unknown[]; proof: unknown[] },
  statement: DisclosureStatement,
  where: string,
): { whole: number; redacted: number; entryHashes: Uint8Array[]; seqs: number[] } {
  const redactedFields = new Set<string>(statement.redacted);
  const fail = (kind: Problem['kind'], message: string): { whole: number; redacted: number; entryHashes: Uint8Array[]; seqs: number[] } => {
    ctx.problem({ kind, where, message });
    return { whole: 0, redacted: 0, entryHashes: [], seqs: [] };
  };
  let bytes: Uint8Array;
  let proof: Uint8Array[];
  try {
    bytes = fromBase64(b.records);
    proof = b.proof.map((p) => fromBase64(String(p)));
  } catch (err) {
    throw new Unusable(where, `not padded standard base64: ${(err as Error).message}`);
  }
  const indexes = b.indexes;
  if (!indexes.every(isCount)) throw new Unusable(where, 'indexes: expected counts');
  const keyId = header.keyId;
  const keyBytes = new Uint8Array(4);
  for (let k = 0; k < 4; k++) keyBytes[k] = parseInt(keyId.slice(2 * k, 2 * k + 2), 16);
  const wholeSeqs: number[] = [];
  const bounds: number[] = [0];
  try {
    readRecords(bytes, (record, _start, end, i) => {
      bounds.push(end);
      const s = record.sample;
      const index = indexes[i];
      if (index === undefined) throw new Error(`records[${i}] has no index`);
      if (record.gateway !== header.gateway) throw new Error(`records[${i}] names gateway "${record.gateway}"`);
      const rk = record.keyId;
      if (rk[0] !== keyBytes[0] || rk[1] !== keyBytes[1] || rk[2] !== keyBytes[2] || rk[3] !== keyBytes[3])
        throw new Error(`records[${i}] names key ${toHex(record.keyId)}, the header ${keyId}`);
      if (s.seq !== header.firstSeq + index)
        throw new Error(`records[${i}].seq is ${s.seq}, its place ${index} in the batch says ${header.firstSeq + index}`);
      if (s.ts < header.tsMin || s.ts > header.tsMax)
        throw new Error(`records[${i}] (seq ${s.seq}): ts ${s.ts} lies outside the header's time range`);
      for (const f of REDACTABLE_FIELDS)
        if (redactedFields.has(f) && s[f] !== undefined)
          ctx.problem({
            kind: 'disclosure-policy',
            where: `${where} seq ${s.seq}`,
            message: `the record is disclosed whole, but it carries ${f}, which the bundle's policy redacts`,
          });
      wholeSeqs.push(s.seq);
    });
  } catch (err) {
    return fail('records-invalid', `the record bytes do not read as this batch's records: ${(err as Error).message}`);
  }
  if (wholeSeqs.length !== indexes.length) return fail('count-mismatch', `${indexes.length} indexes for ${wholeSeqs.length} records`);
  const wholeLeaves = wholeSeqs.length === 0 ? [] : splitHashes(hashSlices(bytes, Uint32Array.from(bounds)));
  const redacted = b.redacted.map((e, i) => readRedacted(ctx, e, `${where} redacted[${i}]`, header, redactedFields));
  // every disclosed leaf at its place, in index order
  const places: { index: number; leaf: Uint8Array }[] = indexes.map((index, i) => ({ index, leaf: wholeLeaves[i] as Uint8Array }));
  for (const r of redacted) places.push({ index: r.entry.index, leaf: r.leaf });
  places.sort((x, y) => x.index - y.index);
  const entryHashes = [...wholeLeaves, ...redacted.map((r) => r.hash)];
  const seqs = [...wholeSeqs, ...redacted.map((r) => header.firstSeq + r.entry.index)];
  const found = { whole: wholeSeqs.length, redacted: redacted.length, entryHashes, seqs };
  if (places.length === 0) {
    fail('records-invalid', 'the batch discloses no record');
    return found;
  }
  try {
    const computed = rootFromMultiInclusionProof(
      places.map((p) => p.index),
      places.map((p) => p.leaf),
      header.count,
      proof,
    );
    if (toBase64(computed) === header.root) ctx.report.counts.rootsVerified++;
    else
      ctx.problem({
        kind: 'record-inclusion',
        where,
        message: "the disclosed records and the batch's proof lead to another Merkle root than the signed one",
        computed: toBase64(computed),
        claimed: header.root,
      });
  } catch (err) {
    ctx.problem({ kind: 'record-inclusion', where, message: `the disclosed records' proof does not verify: ${(err as Error).message}` });
  }
  return found;
}

function splitHashes(packed: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < packed.length; at += 32) out.push(packed.subarray(at, at + 32));
  return out;
}

/** One redacted record: its shape, its place held to the header, the policy (it shows no redacted field). */
function readRedacted(
  ctx: VerifyContext,
  e: unknown,
  where: string,
  header: HeaderLike,
  redactedFields: ReadonlySet<string>,
): { entry: RedactedEntry; leaf: Uint8Array; hash: Uint8Array } {
  if (!isObject(e) || !isCount(e.index) || !isString(e.leaf) || !isObject(e.fields) || !isObject(e.commitments))
    throw new Unusable(where, 'expected {index, leaf, fields, commitments}');
  let leaf: Uint8Array;
  try {
    leaf = fromBase64(e.leaf);
    for (const c of Object.values(e.commitments)) if (!isString(c) || fromBase64(c).length !== 32) throw new Error('a commitment is not 32 bytes');
  } catch (err) {
    throw new Unusable(where, `leaf or commitments: ${(err as Error).message}`);
  }
  if (leaf.length !== 32) throw new Unusable(where, `leaf: ${leaf.length} bytes, not 32`);
  const entry: RedactedEntry = { index: e.index, leaf: e.leaf, fields: e.fields, commitments: e.commitments as Record<string, string> };
  const fields = e.fields;
  const at = `${where} (seq ${header.firstSeq + e.index})`;
  if (fields.seq !== header.firstSeq + e.index)
    ctx.problem({
      kind: 'records-invalid',
      where: at,
      message: `the record shows seq ${JSON.stringify(fields.seq)}, its place ${e.index} in the batch says ${header.firstSeq + e.index}`,
    });
  if (fields.ts !== undefined && (!isCount(fields.ts) || fields.ts < header.tsMin || fields.ts > header.tsMax))
    ctx.problem({ kind: 'records-invalid', where: at, message: `ts ${JSON.stringify(fields.ts)} lies outside the header's time range` });
  for (const f of Object.keys(fields)) {
    if (!SHOWN.has(f)) ctx.problem({ kind: 'disclosure-policy', where: at, message: `the record shows "${f}", which is no record field` });
    else if (redactedFields.has(f))
      ctx.problem({ kind: 'disclosure-policy', where: at, message: `the record shows ${f}, which the bundle's policy redacts` });
  }
  const commitments = Object.keys(e.commitments);
  if (commitments.length === 0)
    ctx.problem({ kind: 'disclosure-policy', where: at, message: 'a redacted record without a commitment to any redacted field' });
  for (const f of commitments)
    if (!redactedFields.has(f))
      ctx.problem({ kind: 'disclosure-policy', where: at, message: `a commitment to ${f}, which the bundle's policy does not redact` });
  for (const f of REQUIRED)
    if (!(f in fields) && !(f in e.commitments))
      ctx.problem({ kind: 'records-invalid', where: at, message: `the record neither shows ${f} nor commits to it` });
  let hash: Uint8Array;
  try {
    hash = redactedEntryHash(entry);
  } catch (err) {
    // a lone surrogate in a shown field: no canonical bytes, so no hash the statement could name
    ctx.problem({ kind: 'records-invalid', where: at, message: `the record is not canonical JSON: ${(err as Error).message}` });
    hash = new Uint8Array(32);
  }
  return { entry, leaf, hash };
}

/** The disclosure statement: signed by the log key, against this checkpoint, naming exactly what the bundle holds. */
function checkStatement(ctx: VerifyContext, note: string, s: DisclosureStatement, keys: Record<string, unknown>, d: Disclosed): boolean {
  const fail = (message: string, computed?: string | number, claimed?: string | number): void =>
    ctx.problem({
      kind: 'statement',
      where: 'statement',
      message,
      ...(computed === undefined ? {} : { computed }),
      ...(claimed === undefined ? {} : { claimed }),
    });
  let verified = false;
  try {
    verified = openNote(note, [ed25519NoteVerifier(ctx.logKey)]).verified.length > 0;
  } catch (err) {
    fail(`the statement's signature does not verify: ${(err as Error).message}`);
  }
  if (!verified) fail(`the statement is not signed by the log key ${ctx.report.trust.logKey ?? ''}`);
  const cp = ctx.checkpoint;
  if (s.origin !== cp.origin) fail('the statement is of another log than the checkpoint', cp.origin, s.origin);
  if (s.checkpoint.size !== cp.size || s.checkpoint.root !== toBase64(cp.rootHash))
    fail('the statement was made against another checkpoint', `${cp.size} ${toBase64(cp.rootHash)}`, `${s.checkpoint.size} ${s.checkpoint.root}`);
  const shown = [...s.fields, ...s.redacted];
  if (shown.length !== DISCLOSED_FIELDS.length || !DISCLOSED_FIELDS.every((f) => shown.includes(f)))
    fail("the statement's fields and redacted fields are not each record field once", shown.join(','), DISCLOSED_FIELDS.join(','));
  if (s.batches.count !== d.batches.length)
    fail('the bundle holds another number of batches than the statement names', d.batches.length, s.batches.count);
  // a header or key that is not canonical JSON (a lone surrogate) was reported where it was read; here it only fails
  const headers = d.headers ?? notCanonical(() => headersDigest(d.batches));
  if (headers !== s.batches.headers) fail('the batches are not those the statement names', headers, s.batches.headers);
  const count = d.whole + d.redacted;
  if (count !== s.records.count || d.whole !== s.records.whole || d.redacted !== s.records.redacted)
    fail(
      'the bundle holds other numbers of records than the statement names',
      `${count} ${d.whole} ${d.redacted}`,
      `${s.records.count} ${s.records.whole} ${s.records.redacted}`,
    );
  let packed = d.packed;
  if (packed === undefined) {
    const joined = new Uint8Array(32 * d.entryHashes.length);
    d.entryHashes.forEach((h, i) => joined.set(h, 32 * i));
    packed = joined;
  }
  const digest = disclosureDigest(packed);
  if (digest !== s.disclosure)
    fail("the disclosed records or the redacted fields' commitments are not those the statement names", digest, s.disclosure);
  const keysDigest = notCanonical(() => toBase64(sha256(canonicalBytes(keys))));
  if (keysDigest !== s.keys) fail('the keys are not those the statement names', keysDigest, s.keys);
  const events = keyEventsDigest(ctx.keyEventData);
  if (ctx.keyEventData.length !== s.keyEvents.count || events !== s.keyEvents.root)
    fail('the key events are not those the statement names', `${ctx.keyEventData.length} ${events}`, `${s.keyEvents.count} ${s.keyEvents.root}`);
  return verified;
}

/** The digest `make` gives, or a description of why it could not (what it digests is not canonical JSON). */
function notCanonical(make: () => string): string {
  try {
    return make();
  } catch (err) {
    return `(not canonical JSON: ${(err as Error).message})`;
  }
}
