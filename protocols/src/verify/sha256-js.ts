// SHA-256 (FIPS 180-4) in plain JavaScript for the browser's verifier, tuned for what a bundle holds: hundreds of
// thousands of short messages (records, Merkle nodes, proof steps). It reads the message's words straight from its
// bytes and keeps its state in locals, with no allocation per hash but the 32-byte answer, where the general-purpose
// @noble/hashes (the package's default) builds a hasher object and views for each. Installed with useSha256 and
// useSha256Batch in the verifier's worker; the same bytes as @noble/hashes (tested against it and the FIPS vectors).
/* eslint-disable @typescript-eslint/no-non-null-assertion -- the inner loops index typed arrays within their lengths */
import type { Sha256Batch } from '../trust/sha256.js';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const W = new Int32Array(64);
const S = new Int32Array(8);
/** the last one or two blocks of a message, padded */
const TAIL = new Uint8Array(128);

/** One 64-byte block of `b` from `p` into the state S. */
function block(b: Uint8Array, p: number): void {
  for (let i = 0; i < 16; i++, p += 4) W[i] = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = S[0]!;
  let bb = S[1]!;
  let c = S[2]!;
  let d = S[3]!;
  let e = S[4]!;
  let f = S[5]!;
  let g = S[6]!;
  let h = S[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  S[0] = (S[0]! + a) | 0;
  S[1] = (S[1]! + bb) | 0;
  S[2] = (S[2]! + c) | 0;
  S[3] = (S[3]! + d) | 0;
  S[4] = (S[4]! + e) | 0;
  S[5] = (S[5]! + f) | 0;
  S[6] = (S[6]! + g) | 0;
  S[7] = (S[7]! + h) | 0;
}

/** SHA-256 of bytes[start..end) into out[at..at+32). */
export function sha256Into(bytes: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
  S.set(IV);
  const length = end - start;
  let p = start;
  for (const full = start + (length & ~63); p < full; p += 64) block(bytes, p);
  const rest = end - p;
  TAIL.fill(0);
  TAIL.set(bytes.subarray(p, end));
  TAIL[rest] = 0x80;
  const size = rest + 9 <= 64 ? 64 : 128;
  // the length in bits, big-endian, in the last 8 bytes (a message below 2^53 bytes)
  const high = Math.floor(length / 0x20000000);
  const low = (length << 3) >>> 0;
  TAIL[size - 8] = high >>> 24;
  TAIL[size - 7] = high >>> 16;
  TAIL[size - 6] = high >>> 8;
  TAIL[size - 5] = high;
  TAIL[size - 4] = low >>> 24;
  TAIL[size - 3] = low >>> 16;
  TAIL[size - 2] = low >>> 8;
  TAIL[size - 1] = low;
  block(TAIL, 0);
  if (size === 128) block(TAIL, 64);
  for (let i = 0; i < 8; i++) {
    const v = S[i]!;
    out[at + 4 * i] = v >>> 24;
    out[at + 4 * i + 1] = v >>> 16;
    out[at + 4 * i + 2] = v >>> 8;
    out[at + 4 * i + 3] = v;
  }
}

export function sha256Js(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(data, 0, data.length, out, 0);
  return out;
}

/** an interior node's input: 0x01 || left || right */
const NODE = new Uint8Array(65);
NODE[0] = 0x01;

/** The RFC 6962 root of `n` packed leaf hashes from leaf `first`, into out[at..at+32). */
function rootInto(leaves: Uint8Array, first: number, n: number, out: Uint8Array, at: number): void {
  if (n === 1) {
    out.set(leaves.subarray(32 * first, 32 * first + 32), at);
    return;
  }
  let k = 1;
  while (k * 2 < n) k *= 2;
  const pair = new Uint8Array(64);
  rootInto(leaves, first, k, pair, 0);
  rootInto(leaves, first + k, n - k, pair, 32);
  NODE.set(pair, 1);
  sha256Into(NODE, 0, 65, out, at);
}

/** batched hashing (the interface Node's native module fills) in plain JavaScript */
export const sha256BatchJs: Sha256Batch = {
  hashSlices(bytes, bounds, out) {
    for (let i = 0; i + 1 < bounds.length; i++) sha256Into(bytes, bounds[i]!, bounds[i + 1]!, out, 32 * i);
  },
  merkleRoot(leaves, out) {
    const n = leaves.length / 32;
    if (n === 0) sha256Into(leaves, 0, 0, out, 0);
    else rootInto(leaves, 0, n, out, 0);
  },
};
