// RFC 6962 / RFC 9162 Merkle trees: hashing, roots, inclusion and consistency proofs (generation and
// verification, RFC 9162 sections 2.1.3 and 2.1.4), and a compact tree that a persisted log appends to.
// Sizes and indexes are numbers, so trees are limited to Number.MAX_SAFE_INTEGER leaves; no bitwise operators
// are used on them because those truncate to 32 bits.
import { bytesEqual, toHex } from './bytes.js';
import { TrustError } from './errors.js';
import { HASH_SIZE, sha256, sha256Batch, sha256Parts, unpackHashes } from './sha256.js';

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

export function leafHash(data: Uint8Array): Uint8Array {
  return sha256Parts(LEAF_PREFIX, data);
}

const nodeScratch = new Uint8Array(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) return sha256Parts(NODE_PREFIX, left, right);
  // one reused buffer: this runs once per record in every batch root
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

/**
 * Where a log keeps its hashes: the hash of the perfect subtree at `level` and `index`, which covers leaves
 * [index * 2^level, (index + 1) * 2^level). Level 0 are the leaf hashes. Return undefined for a subtree that is
 * not stored and it is computed from its children; a log that stores only leaf hashes works, one that also stores
 * the subtrees `CompactTree.append` reports answers proofs in O(log n) reads.
 */
export type HashReader = (level: number, index: number) => Uint8Array | undefined;

/** A reader over leaf hashes held in memory. */
export function leafHashReader(leafHashes: readonly Uint8Array[]): HashReader {
  return (level, index) => (level === 0 ? leafHashes[index] : undefined);
}

/** A perfect subtree hash, as `CompactTree.append` reports it for the caller to store. */
export interface SubtreeHash {
  level: number;
  index: number;
  hash: Uint8Array;
}

/** Root of the tree with these leaf hashes (MTH, RFC 9162 section 2.1.1). */
export function rootOf(leafHashes: readonly Uint8Array[]): Uint8Array {
  if (sha256Batch() !== undefined && leafHashes.length > 1) {
    const packed = new Uint8Array(HASH_SIZE * leafHashes.length);
    leafHashes.forEach((leaf, i) => {
      checkHash(leaf, `leaf hash ${i}`);
      packed.set(leaf, HASH_SIZE * i);
    });
    return rootOfPacked(packed);
  }
  // the compact tree's peaks, without recording the subtrees it completes
  const peaks: Uint8Array[] = [];
  leafHashes.forEach((leaf, i) => {
    checkHash(leaf, `leaf hash ${i}`);
    let hash = leaf;
    for (let n = i; n % 2 === 1; n = (n - 1) / 2) {
      const left = peaks.pop();
      if (left === undefined) throw new Error('compact tree peaks do not match its size');
      hash = nodeHash(left, hash);
    }
    peaks.push(hash);
  });
  return foldRight(peaks) ?? EMPTY_ROOT;
}

/** Root of the tree whose leaf hashes are packed one after another, 32 bytes each (as hashSlices gives them). */
export function rootOfPacked(packed: Uint8Array): Uint8Array {
  if (packed.length % HASH_SIZE !== 0)
    throw new TrustError('bad-length', `packed leaf hashes: ${packed.length} bytes is not a multiple of ${HASH_SIZE}`);
  const batch = sha256Batch();
  if (batch === undefined) return rootOf(unpackHashes(packed));
  const root = new Uint8Array(HASH_SIZE);
  batch.merkleRoot(packed, root);
  return root;
}

/** Root of the tree of the first `size` leaves of a log. */
export function rootAt(size: number, read: HashReader): Uint8Array {
  checkCount(size, 'tree size');
  return size === 0 ? EMPTY_ROOT : rangeHash(read, 0, size);
}

/** Inclusion proof of leaf `index` in the tree of the first `size` leaves (PATH, RFC 9162 section 2.1.3.1). */
export function inclusionProof(index: number, size: number, read: HashReader): Uint8Array[] {
  checkCount(index, 'leaf index');
  checkCount(size, 'tree size');
  if (index >= size) throw new TrustError('bad-size', `leaf index ${index} is outside a tree of size ${size}`, { index, size });
  const proof: Uint8Array[] = [];
  const path = (m: number, start: number, n: number): void => {
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, start, k);
      proof.push(rangeHash(read, start + k, start + n));
    } else {
      path(m - k, start + k, n - k);
      proof.push(rangeHash(read, start, start + k));
    }
  };
  path(index, 0, size);
  return proof;
}

/** Consistency proof between the trees of the first `size1` and `size2` leaves (RFC 9162 section 2.1.4.1). */
export function consistencyProof(size1: number, size2: number, read: HashReader): Uint8Array[] {
  checkConsistencySizes(size1, size2);
  const proof: Uint8Array[] = [];
  const subproof = (m: number, start: number, n: number, complete: boolean): void => {
    if (m === n) {
      if (!complete) proof.push(rangeHash(read, start, start + n));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      subproof(m, start, k, complete);
      proof.push(rangeHash(read, start + k, start + n));
    } else {
      subproof(m - k, start + k, n - k, false);
      proof.push(rangeHash(read, start, start + k));
    }
  };
  if (size1 < size2) subproof(size1, 0, size2, true);
  return proof;
}

/**
 * The root that an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1 to 4). Throws when the proof has
 * the wrong number of hashes for this index and size; comparing the result with a trusted root is the caller's.
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Uint8Array {
  checkCount(index, 'leaf index');
  checkCount(size, 'tree size');
  if (index >= size) throw new TrustError('bad-size', `leaf index ${index} is outside a tree of size ${size}`, { index, size });
  checkHash(leaf, 'leaf hash');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw proofLength('inclusion', proof.length, 'too many');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofLength('inclusion', proof.length, 'too few');
  return r;
}

/** Verifies that `leaf` is leaf `index` of the tree of `size` leaves with root `root`; throws a TrustError if not. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkHash(root, 'root');
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (!bytesEqual(computed, root)) {
    throw new TrustError('root-mismatch', `inclusion proof of leaf ${index} in a tree of size ${size} leads to another root`, {
      computed: toHex(computed),
      claimed: toHex(root),
    });
  }
}

/**
 * Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves with root `root1`
 * (RFC 9162 section 2.1.4.2); throws a TrustError if not. As in RFC 9162, 0 < size1: a proof from the empty tree
 * proves nothing and is refused. Equal sizes need an empty proof and equal roots.
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): void {
  checkConsistencySizes(size1, size2);
  if (size1 === size2) {
    if (proof.length !== 0) throw proofLength('consistency', proof.length, 'too many');
    if (!bytesEqual(root1, root2)) {
      throw new TrustError('root-mismatch', `two roots for the same tree size ${size1}`, { root1: toHex(root1), root2: toHex(root2) });
    }
    return;
  }
  checkHash(root1, 'root1');
  checkHash(root2, 'root2');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  if (proof.length === 0) throw proofLength('consistency', 0, 'too few');
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  const [first, ...rest] = path;
  if (first === undefined) throw proofLength('consistency', 0, 'too few');
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (sn === 0) throw proofLength('consistency', proof.length, 'too many');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofLength('consistency', proof.length, 'too few');
  if (!bytesEqual(fr, root1)) {
    throw new TrustError('root-mismatch', `consistency proof ${size1} -> ${size2} leads to another root for size ${size1}`, {
      computed: toHex(fr),
      claimed: toHex(root1),
    });
  }
  if (!bytesEqual(sr, root2)) {
    throw new TrustError('root-mismatch', `consistency proof ${size1} -> ${size2} leads to another root for size ${size2}`, {
      computed: toHex(sr),
      claimed: toHex(root2),
    });
  }
}

/**
 * The right edge of an append-only tree: one perfect subtree hash per set bit of the size, largest first. It is
 * all a log needs in memory to append and to compute its current root; `append` reports every subtree it
 * completes so the log can store them for proofs.
 */
export class CompactTree {
  #size = 0;
  #peaks: Uint8Array[] = [];

  /** Continues a tree from its stored hashes (the peaks are read through `read`). */
  static restore(size: number, read: HashReader): CompactTree {
    checkCount(size, 'tree size');
    const tree = new CompactTree();
    tree.#peaks = perfectRanges(0, size).map(({ level, index }) => perfectHash(read, level, index));
    tree.#size = size;
    return tree;
  }

  get size(): number {
    return this.#size;
  }

  /** The perfect subtree hashes of the right edge, largest (leftmost) first. */
  get peaks(): readonly Uint8Array[] {
    return [...this.#peaks];
  }

  /** Appends a leaf hash; returns the leaf and every perfect subtree it completes, smallest first. */
  append(leaf: Uint8Array): SubtreeHash[] {
    checkHash(leaf, 'leaf hash');
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new TrustError('bad-size', 'the tree is full');
    const completed: SubtreeHash[] = [{ level: 0, index: this.#size, hash: leaf }];
    let hash = leaf;
    let level = 0;
    let n = this.#size;
    while (n % 2 === 1) {
      const left = this.#peaks.pop();
      if (left === undefined) throw new Error('compact tree peaks do not match its size');
      hash = nodeHash(left, hash);
      level += 1;
      n = (n - 1) / 2;
      completed.push({ level, index: n, hash });
    }
    this.#peaks.push(hash);
    this.#size += 1;
    return completed;
  }

  root(): Uint8Array {
    return foldRight(this.#peaks) ?? EMPTY_ROOT;
  }
}

/** The perfect subtrees that make up leaves [start, end), largest first (start aligned as in the RFC's split). */
function perfectRanges(start: number, end: number): { level: number; index: number }[] {
  const ranges: { level: number; index: number }[] = [];
  let at = start;
  while (at < end) {
    let size = 1;
    let level = 0;
    while (size * 2 <= end - at) {
      size *= 2;
      level += 1;
    }
    if (at % size !== 0) throw new Error(`range [${start}, ${end}) is not aligned to the tree`);
    ranges.push({ level, index: at / size });
    at += size;
  }
  return ranges;
}

/** MTH of leaves [start, end): its perfect subtrees folded from the right, which is what the RFC's split yields. */
function rangeHash(read: HashReader, start: number, end: number): Uint8Array {
  const hash = foldRight(perfectRanges(start, end).map(({ level, index }) => perfectHash(read, level, index)));
  if (hash === undefined) throw new Error('empty range');
  return hash;
}

function perfectHash(read: HashReader, level: number, index: number): Uint8Array {
  const stored = read(level, index);
  if (stored !== undefined) {
    checkHash(stored, level === 0 ? `leaf hash ${index}` : `subtree hash (level ${level}, index ${index})`);
    return stored;
  }
  if (level === 0) throw new TrustError('missing-hash', `leaf hash ${index} is not available`, { index });
  return nodeHash(perfectHash(read, level - 1, 2 * index), perfectHash(read, level - 1, 2 * index + 1));
}

function foldRight(hashes: readonly Uint8Array[]): Uint8Array | undefined {
  let acc: Uint8Array | undefined;
  for (let i = hashes.length - 1; i >= 0; i--) {
    const h = hashes[i];
    if (h !== undefined) acc = acc === undefined ? h : nodeHash(h, acc);
  }
  return acc;
}

/** The largest power of two smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TrustError('bad-size', `${what} ${String(value)} is not an integer in 0..2^53-1`, { [what]: String(value) });
  }
}

function checkConsistencySizes(size1: number, size2: number): void {
  checkCount(size1, 'size1');
  checkCount(size2, 'size2');
  if (size1 > size2) throw new TrustError('bad-size', `size1 ${size1} is larger than size2 ${size2}`, { size1, size2 });
  if (size1 === 0) throw new TrustError('bad-size', 'a consistency proof from the empty tree proves nothing', { size1, size2 });
}

function checkHash(hash: Uint8Array, what: string): void {
  if (hash.length !== HASH_SIZE) throw new TrustError('bad-length', `${what} has ${hash.length} bytes, not ${HASH_SIZE}`, { what });
}

function proofLength(kind: string, length: number, problem: 'too many' | 'too few'): TrustError {
  return new TrustError('proof-length', `${kind} proof has ${problem} hashes (${length}) for its tree sizes`, { length });
}
