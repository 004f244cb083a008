// SHA-256 for the trust code: @noble/hashes is pure JavaScript, so the same code runs in Node and in the browser.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export const HASH_SIZE = 32;

let implementation: ((data: Uint8Array) => Uint8Array) | undefined;

/**
 * Installs a faster SHA-256 (Node's crypto, in the gateway and the server). The result must be the
 * same bytes; the pure-JavaScript one stays the default so that a browser can verify.
 */
export function useSha256(fn: (data: Uint8Array) => Uint8Array): void {
  implementation = fn;
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
