// Signed batches: the header a gateway signs for every batch of records, and its verification.
// A record's canonical bytes are defined in record.ts; the header carries the RFC 6962 Merkle root of
// the batch's records, the sequence range, the time range and the hash of the previous header, and is
// signed with the gateway's Ed25519 key over its canonical JSON (RFC 8785).
import { LabtraceError } from '../errors.js';
import { type BatchHeader, type Sample, type SignedBatch } from '../measurement.js';
import { fromBase64, fromHex, toBase64, toHex } from './bytes.js';
import { ed25519KeyId, signEd25519, verifyEd25519, type SignerKey, type VerifierKey } from './ed25519.js';
import { canonicalBytes } from './jcs.js';
import { rootOf } from './merkle.js';
import { encodeRecord, recordLeafHash } from './record.js';
import { sha256 } from './sha256.js';

export { batchHeaderSchema, signedBatchSchema, type BatchHeader, type SignedBatch } from '../measurement.js';

/** The canonical bytes of one record of a gateway's batch signed with key `keyId`. */
export function recordBytes(gateway: string, keyId: Uint8Array, sample: Sample): Uint8Array {
  return encodeRecord(gateway, keyId, sample);
}

export function recordsRoot(gateway: string, keyId: Uint8Array, samples: readonly Sample[]): Uint8Array {
  const leaves = new Array<Uint8Array>(samples.length);
  samples.forEach((s, i) => (leaves[i] = recordLeafHash(gateway, keyId, s)));
  return rootOf(leaves);
}

export function headerHash(header: BatchHeader): Uint8Array {
  return sha256(canonicalBytes(header));
}

/** Builds and signs the header of a batch whose samples carry contiguous sequence numbers. */
export function signBatch(key: SignerKey, gateway: string, batch: number, samples: readonly Sample[], prev: Uint8Array | null): SignedBatch {
  const first = samples[0];
  if (first === undefined) throw new LabtraceError('E_CODEC', 'a batch needs at least one record');
  samples.forEach((s, i) => {
    if (s.seq !== first.seq + i)
      throw new LabtraceError('E_CODEC', `records[${i}].seq: ${s.seq}, expected ${first.seq + i} (sequence numbers of a batch are contiguous)`);
  });
  let tsMin = first.ts;
  let tsMax = first.ts;
  for (const s of samples) {
    if (s.ts < tsMin) tsMin = s.ts;
    if (s.ts > tsMax) tsMax = s.ts;
  }
  const header: BatchHeader = {
    v: 1,
    gateway,
    keyId: toHex(key.keyId),
    batch,
    firstSeq: first.seq,
    count: samples.length,
    tsMin,
    tsMax,
    root: toBase64(recordsRoot(gateway, key.keyId, samples)),
    prev: prev === null ? null : toBase64(prev),
  };
  return { header, signature: toBase64(signEd25519(canonicalBytes(header), key.seed)) };
}

/**
 * Checks a signed batch against its records and the gateway's key: the signature, the key id, the
 * gateway, the sequence and time ranges and the Merkle root. Throws E_AUTH naming what does not match.
 */
export function verifyBatch(signed: SignedBatch, samples: readonly Sample[], key: VerifierKey, gateway: string): void {
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
  if (toBase64(recordsRoot(gateway, fromHex(header.keyId), samples)) !== header.root) fail('the records do not hash to the signed Merkle root');
}
