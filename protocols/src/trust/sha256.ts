// SHA-256 for the trust code: @noble/hashes is pure JavaScript, so the same code runs in Node and in the browser.
// Node installs faster implementations (useSha256, useSha256Batch): same bytes, tested against each other.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export const HASH_SIZE = 32;

let implementation: ((data: Uint8Array) => Uint8Array) | undefined;

/** Many hashes in one call each: the leaves of a batch's records, and a Merkle root over packed leaf hashes. */
export interface Sha256Batch {
  /** out[32i..32i+32) = SHA-256(bytes[bounds[i]..bounds[i+1])) for i < bounds.length - 1 */
  hashSlices(bytes: Uint8Array, bounds: Uint32Array, out: Uint8Array): void;
  /** out[0..32) = the RFC 6962 Merkle tree hash of the leaf hashes leaves[32i..32i+32) */
  merkleRoot(leaves: Uint8Array, out: Uint8Array): void;
}

let batch: Sha256Batch | undefined;

/**
 * Installs a faster SHA-256 (Node's crypto, in the gateway and the server). The result must be the
 * same bytes; the pure-JavaScript one stays the default so that a browser can verify.
 */
export function useSha256(fn: ((data: Uint8Array) => Uint8Array) | undefined): void {
  implementation = fn;
}

/** Installs batched hashing (the native module, in Node); undefined goes back to one call per hash. */
export function useSha256Batch(backend: Sha256Batch | undefined): void {
  batch = backend;
}

/** The batched hashing in use, if any (for tests and for saying which hashing runs). */
export function sha256Batch(): Sha256Batch | undefined {
  return batch;
}

export function sha256(data: Uint8Array): Uint8Array {
  return implementation ? implementation(data) : nobleSha256(data);
}

/** SHA-256 of several parts as if concatenated, without copying them into one buffer. */
export function sha256Parts(...parts: readonly Uint8Array[]): Uint8Array {
  if (implementation) {
    let length = 0;
    for (const p of parts) length += p.length;
    const joined = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.length;
    }
    return implementation(joined);
  }
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * The SHA-256 of each slice bytes[bounds[i]..bounds[i+1]), packed: 32 bytes per slice. One native
 * call for all of them when batched hashing is installed.
 */
export function hashSlices(bytes: Uint8Array, bounds: Uint32Array): Uint8Array {
  const count = Math.max(0, bounds.length - 1);
  const out = new Uint8Array(HASH_SIZE * count);
  if (batch !== undefined) {
    batch.hashSlices(bytes, bounds, out);
    return out;
  }
  for (let i = 0; i < count; i++) out.set(sha256(bytes.subarray(bounds[i], bounds[i + 1])), HASH_SIZE * i);
  return out;
}

/** Views of packed 32-byte hashes, one per hash (no copy). */
export function unpackHashes(packed: Uint8Array): Uint8Array[] {
  const hashes = new Array<Uint8Array>(packed.length / HASH_SIZE);
  for (let i = 0; i < hashes.length; i++) hashes[i] = packed.subarray(HASH_SIZE * i, HASH_SIZE * (i + 1));
  return hashes;
}
