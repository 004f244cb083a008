// SHA-256 for the trust code: @noble/hashes is pure JavaScript, so the same code runs in Node and in the browser.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export const HASH_SIZE = 32;

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/** SHA-256 of several parts as if concatenated, without copying them into one buffer. */
export function sha256Parts(...parts: readonly Uint8Array[]): Uint8Array {
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}
