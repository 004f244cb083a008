// Signed batches: the header a gateway signs for every batch of records, and its verification.
// A record's canonical bytes are defined in record.ts; the header carries the RFC 6962 Merkle root of
// the batch's records, the sequence range, the time range and the hash of the previous header, and is
// signed with the gateway's Ed25519 key over its canonical JSON (RFC 8785).
import { LabtraceError } from '../errors.js';
import { type BatchHeader, type Sample, type SignedBatch } from '../measurement.js';
import { fromBase64, fromHex, toBase64, toHex } from './bytes.js';
import { ed25519KeyId, signEd25519, verifyEd25519, type SignerKey, type VerifierKey } from './ed25519.js';
import { canonicalBytes } from './jcs.js';
import { rootOfPacked } from './merkle.js';
import { encodeRecords, readRecords } from './record.js';
import { batchHeaderSchema } from '../measurement.js';
import { hashSlices, sha256 } from './sha256.js';

export { batchHeaderSchema, signedBatchSchema, type BatchHeader, type SignedBatch } from '../measurement.js';

export function recordsRoot(gateway: string, keyId: Uint8Array, samples: readonly Sample[]): Uint8Array {
  return rootOfPacked(encodeRecords(gateway, keyId, samples).packedLeaves);
}

export function headerHash(header: BatchHeader): Uint8Array {
  return sha256(canonicalBytes(header));
}

/** Builds and signs the header of a batch whose samples carry contiguous sequence numbers. */
export function signBatch(key: SignerKey, gateway: string, batch: number, samples: readonly Sample[], prev: Uint8Array | null): SignedBatch {
  if (samples.length === 0) throw new LabtraceError('E_CODEC', 'a batch needs at least one record');
  const header = batchHeader(gateway, key, batch, samples, recordsRoot(gateway, key.keyId, samples), prev);
  return { header, signature: toBase64(signEd25519(canonicalBytes(header), key.seed)) };
}

/**
 * Checks a signed batch against its records and the gateway's key: the signature, the key id, the
 * gateway, the sequence and time ranges and the Merkle root. Throws E_AUTH naming what does not match.
 */
export function verifyBatch(
  signed: SignedBatch,
  samples: readonly Sample[],
  key: VerifierKey,
  gateway: string,
  /** the records' leaf hashes packed (32 bytes each), when already computed from the bytes received (see openBatch) */
  leaves?: Uint8Array,
): void {
  const { header } = signed;
  const fail = (what: string): never => {
    throw new LabtraceError('E_AUTH', `batch ${header.batch} of ${gateway}: ${what}`);
  };
  if (header.gateway !== gateway) fail(`header names gateway "${header.gateway}"`);
  if (header.keyId !== toHex(ed25519KeyId(key.name, key.publicKey))) fail(`signed with key ${header.keyId}, which is not the registered key`);
  if (!verifyEd25519(fromBase64(signed.signature), canonicalBytes(header), key.publicKey)) fail('bad signature');
  if (samples.length !== header.count) fail(`header counts ${header.count} records, the batch holds ${samples.length}`);
  samples.forEach((s, i) => {
    if (s.seq !== header.firstSeq + i) fail(`records[${i}].seq is ${s.seq}, the header says ${header.firstSeq + i}`);
    if (s.ts < header.tsMin || s.ts > header.tsMax) fail(`records[${i}].ts ${s.ts} lies outside the header's time range`);
  });
  const root = leaves === undefined ? recordsRoot(gateway, fromHex(header.keyId), samples) : rootOfPacked(leaves);
  if (toBase64(root) !== header.root) fail('the records do not hash to the signed Merkle root');
}

/** The first bytes of a batch in the binary wire form ("LTB1"); a JSON message starts with "{". */
export const BATCH_MAGIC = new Uint8Array([0x4c, 0x54, 0x42, 0x31]);

function batchHeader(
  gateway: string,
  key: SignerKey,
  batch: number,
  samples: readonly Sample[],
  root: Uint8Array,
  prev: Uint8Array | null,
): BatchHeader {
  const first = samples[0];
  if (first === undefined) throw new LabtraceError('E_CODEC', 'a batch needs at least one record');
  let tsMin = first.ts;
  let tsMax = first.ts;
  samples.forEach((s, i) => {
    if (s.seq !== first.seq + i)
      throw new LabtraceError('E_CODEC', `records[${i}].seq: ${s.seq}, expected ${first.seq + i} (sequence numbers of a batch are contiguous)`);
    if (s.ts < tsMin) tsMin = s.ts;
    if (s.ts > tsMax) tsMax = s.ts;
  });
  return {
    v: 1,
    gateway,
    keyId: toHex(key.keyId),
    batch,
    firstSeq: first.seq,
    count: samples.length,
    tsMin,
    tsMax,
    root: toBase64(root),
    prev: prev === null ? null : toBase64(prev),
  };
}

/**
 * Signs a batch and lays it out for the wire: "LTB1", u32 header length, the header's canonical JSON,
 * the 64-byte Ed25519 signature, u32 record count, then each record preceded by 0x00 (its leaf
 * prefix). The receiver hashes the very bytes it received; nothing is re-encoded.
 */
export function sealBatch(
  key: SignerKey,
  gateway: string,
  batch: number,
  samples: readonly Sample[],
  prev: Uint8Array | null,
): { signed: SignedBatch; wire: Uint8Array } {
  const { bytes, packedLeaves } = encodeRecords(gateway, key.keyId, samples);
  const header = batchHeader(gateway, key, batch, samples, rootOfPacked(packedLeaves), prev);
  const headerBytes = canonicalBytes(header);
  const signature = signEd25519(headerBytes, key.seed);
  const wire = new Uint8Array(4 + 4 + headerBytes.length + 64 + 4 + bytes.length);
  const view = new DataView(wire.buffer);
  wire.set(BATCH_MAGIC, 0);
  view.setUint32(4, headerBytes.length);
  wire.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  wire.set(signature, at);
  at += 64;
  view.setUint32(at, samples.length);
  wire.set(bytes, at + 4);
  return { signed: { header, signature: toBase64(signature) }, wire };
}

export function isSealedBatch(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x4c && bytes[1] === 0x54 && bytes[2] === 0x42 && bytes[3] === 0x31;
}

/**
 * Reads a batch in the wire form: the header (schema-checked), the signature, the records and their
 * leaf hashes (packed, 32 bytes each), computed over the received bytes. Throws E_CODEC naming the place of a problem;
 * the signature and root are checked by verifyBatch(signed, samples, key, gateway, leaves).
 */
export function openBatch(
  wire: Uint8Array,
  options: { leaves?: boolean } = {},
): { signed: SignedBatch; samples: Sample[]; leaves: Uint8Array; records: Uint8Array } {
  const withLeaves = options.leaves ?? true;
  const fail = (what: string): never => {
    throw new LabtraceError('E_CODEC', `batch: ${what}`);
  };
  if (!isSealedBatch(wire)) fail('does not start with LTB1');
  const view = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  if (wire.length < 8) fail('ends inside the header length');
  const headerLength = view.getUint32(4);
  if (headerLength > 4096 || 8 + headerLength + 68 > wire.length) fail(`header length ${headerLength} does not fit the message`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(wire.subarray(8, 8 + headerLength)));
  } catch {
    fail('the header is not JSON');
  }
  const parsed = batchHeaderSchema.safeParse(json);
  if (!parsed.success) return fail(`header: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const header = parsed.data;
  let at = 8 + headerLength;
  const signature = toBase64(wire.subarray(at, at + 64));
  at += 64;
  const count = view.getUint32(at);
  at += 4;
  if (count !== header.count) fail(`holds ${count} records, the header counts ${header.count}`);
  const keyId = fromHex(header.keyId);
  const recordsStart = at;
  const records = wire.subarray(recordsStart);
  const samples: Sample[] = [];
  const bounds = new Uint32Array(count + 1);
  let read = 0;
  let last = 0;
  try {
    if (count > 0)
      read = readRecords(records, (record, start, end, i) => {
        if (record.gateway !== header.gateway) fail(`records[${i}] names gateway "${record.gateway}", the header "${header.gateway}"`);
        for (let k = 0; k < 4; k++)
          if (record.keyId[k] !== keyId[k]) fail(`records[${i}] names key ${toHex(record.keyId)}, the header ${header.keyId}`);
        bounds[i] = start;
        bounds[i + 1] = end;
        samples.push(record.sample);
        last = end;
        return i < count - 1; // the header's count of records, then stop
      });
  } catch (err) {
    if ((err as Error).message.startsWith('batch: ')) throw err;
    return fail((err as Error).message);
  }
  if (read < count) fail(`ends before records[${read}]`);
  if (last !== records.length) fail(`${records.length - last} bytes after the last record`);
  // the leaves over the very bytes received, packed, in one batched call where native hashing is installed
  const leaves = withLeaves ? hashSlices(records, bounds) : new Uint8Array(0);
  return { signed: { header, signature }, samples, leaves, records };
}
