// Inclusion of several leaves of one RFC 6962 tree at once (a batch's records that a client may see): the hashes of
// the largest subtrees that hold none of the disclosed leaves, in the order the tree's recursion (RFC 9162 section
// 2.1.1: split at the largest power of two below n, left before right) meets them. With the disclosed leaves they
// give the root; each leaf's own RFC 9162 inclusion path is a subset of what this holds or recomputes, so one such
// proof proves every disclosed leaf, without repeating the nodes their paths share. A batch whose leaves are all
// disclosed needs no proof hash at all; one disclosed leaf needs exactly its inclusion path.
import { TrustError } from './errors.js';
import { nodeHash } from './merkle.js';
import { HASH_SIZE, hashSlices } from './sha256.js';

function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkIndexes(indexes: readonly number[], size: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new TrustError('bad-size', `tree size ${size} is not a positive count`, { size });
  let previous = -1;
  for (const i of indexes) {
    if (!Number.isSafeInteger(i) || i <= previous || i >= size)
      throw new TrustError('bad-size', `leaf index ${i} is not ascending within a tree of size ${size}`, { index: i, size });
    previous = i;
  }
}

/**
 * The proof for the leaves at `indexes` (ascending, distinct) of a tree of `size` leaves. `rangeHash(start, end)` is
 * the Merkle tree hash of leaves [start, end) (for a batch held in memory: the root of those leaves).
 */
export function multiInclusionProof(indexes: readonly number[], size: number, rangeHash: (start: number, end: number) => Uint8Array): Uint8Array[] {
  checkIndexes(indexes, size);
  const proof: Uint8Array[] = [];
  let k = 0;
  const walk = (start: number, n: number): void => {
    const next = indexes[k];
    if (next === undefined || next >= start + n) {
      proof.push(rangeHash(start, start + n));
      return;
    }
    if (n === 1) {
      k++;
      return;
    }
    const split = splitPoint(n);
    walk(start, split);
    walk(start + split, n - split);
  };
  if (indexes.length > 0) walk(0, size);
  return proof;
}

/**
 * The root that disclosed leaves and their proof lead to; throws naming the problem when the proof has too few or
 * too many hashes, or the indexes are not ascending within the tree. Comparing the result with a trusted root is the
 * caller's.
 */
export function rootFromMultiInclusionProof(
  indexes: readonly number[],
  leaves: readonly Uint8Array[],
  size: number,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkIndexes(indexes, size);
  if (indexes.length === 0) throw new TrustError('bad-size', 'a proof of no leaf proves nothing');
  if (leaves.length !== indexes.length)
    throw new TrustError('bad-length', `${leaves.length} leaf hashes for ${indexes.length} indexes`, { leaves: leaves.length });
  for (const h of [...leaves, ...proof])
    if (h.length !== HASH_SIZE) throw new TrustError('bad-length', `a hash of ${h.length} bytes, not ${HASH_SIZE}`, { length: h.length });
  let k = 0;
  let p = 0;
  const walk = (start: number, n: number): Uint8Array => {
    const next = indexes[k];
    if (next === undefined || next >= start + n) {
      const hash = proof[p++];
      if (hash === undefined) throw new TrustError('proof-length', `multi-leaf proof has too few hashes (${proof.length})`, { length: proof.length });
      return hash;
    }
    if (n === 1) return leaves[k++] as Uint8Array;
    const split = splitPoint(n);
    const left = walk(start, split);
    return nodeHash(left, walk(start + split, n - split));
  };
  const root = walk(0, size);
  if (p !== proof.length)
    throw new TrustError('proof-length', `multi-leaf proof has too many hashes (${proof.length}, used ${p})`, { length: proof.length });
  return root;
}

/**
 * The roots of many multi-leaf proofs (a bundle's batches) at once, the same answers as rootFromMultiInclusionProof
 * for each: every proof's walk is planned first, then the interior nodes of all of them are hashed level by level,
 * each level in one batched call (hashSlices: one native call for all of them where Node's batched hashing is
 * installed, instead of one call per node). Leaves and proof hashes are copied into slots of one pool as they come;
 * a root is read back with `root` after `compute`.
 */
export class MultiproofRoots {
  /** the pool of 32-byte hashes: the leaves and proof hashes given, then the nodes computed */
  #pool: Uint8Array;
  #slots = 0;
  /** per planned node: its children (a slot, or -1 - k for the planned node k) and its height above the leaves */
  #left: Int32Array<ArrayBuffer>;
  #right: Int32Array<ArrayBuffer>;
  #height: Int32Array<ArrayBuffer>;
  #nodes = 0;
  /** `slots`: how many hashes (leaves, proof hashes, nodes) to make room for at once (the pool grows past it) */
  constructor(slots = 4096) {
    this.#pool = new Uint8Array(HASH_SIZE * Math.max(16, slots));
    const nodes = Math.max(16, Math.ceil(slots / 2));
    this.#left = new Int32Array(nodes);
    this.#right = new Int32Array(nodes);
    this.#height = new Int32Array(nodes);
  }

  /** per proof: its root (a slot, or -1 - k for planned node k) */
  #roots: number[] = [];
  /** per planned node, its slot once computed */
  #nodeSlot: Int32Array | undefined;

  /** A free slot, for the caller to fill with a hash (a leaf or a proof hash): its index. */
  slot(): number {
    if (HASH_SIZE * (this.#slots + 1) > this.#pool.length) this.#grow(this.#slots + 1);
    return this.#slots++;
  }

  /** `n` free slots in a row: the first one's index. */
  slots(n: number): number {
    if (HASH_SIZE * (this.#slots + n) > this.#pool.length) this.#grow(this.#slots + n);
    const first = this.#slots;
    this.#slots += n;
    return first;
  }

  /** The pool (it grows: take it again after adding). */
  get pool(): Uint8Array {
    return this.#pool;
  }

  /**
   * Plans the root of the tree of `size` leaves from the leaves at `indexes` (ascending, distinct) held in slots
   * `leafSlots` and the proof's hashes in slots `proofSlots`; returns the proof's number for `root`, or -1 where
   * rootFromMultiInclusionProof would throw (indexes not ascending within the tree, no leaf, too few or too many
   * proof hashes, as many leaves as indexes).
   */
  add(indexes: readonly number[], leafSlots: readonly number[], size: number, proofSlots: readonly number[]): number {
    if (!Number.isSafeInteger(size) || size < 1 || indexes.length === 0 || leafSlots.length !== indexes.length) return -1;
    let previous = -1;
    for (const i of indexes) {
      if (!Number.isSafeInteger(i) || i <= previous || i >= size) return -1;
      previous = i;
    }
    const firstNode = this.#nodes;
    let k = 0;
    let p = 0;
    let ok = true;
    /** returns the reference of the subtree's hash, and sets `h` to its height */
    let h = 0;
    const walk = (start: number, n: number): number => {
      const next = indexes[k];
      if (next === undefined || next >= start + n) {
        const hash = proofSlots[p++];
        h = 0;
        if (hash === undefined) {
          ok = false;
          return 0;
        }
        return hash;
      }
      if (n === 1) {
        h = 0;
        return leafSlots[k++] ?? 0;
      }
      const split = splitPoint(n);
      const left = walk(start, split);
      if (!ok) return 0;
      const leftHeight = h;
      const right = walk(start + split, n - split);
      if (!ok) return 0;
      const node = this.#node(left, right, Math.max(leftHeight, h) + 1);
      h = this.#height[node] ?? 0;
      return -1 - node;
    };
    const root = walk(0, size);
    if (!ok || p !== proofSlots.length) {
      this.#nodes = firstNode;
      return -1;
    }
    this.#roots.push(root);
    return this.#roots.length - 1;
  }

  /** Hashes every planned node, lowest level first. */
  compute(): void {
    const count = this.#nodes;
    let top = 0;
    for (let i = 0; i < count; i++) top = Math.max(top, this.#height[i] ?? 0);
    // the planned nodes by height (counting sort), each level's slots side by side so that one call writes them all
    const perHeight = new Int32Array(top + 2);
    for (let i = 0; i < count; i++) perHeight[(this.#height[i] ?? 0) + 1] = (perHeight[(this.#height[i] ?? 0) + 1] ?? 0) + 1;
    for (let l = 1; l <= top + 1; l++) perHeight[l] = (perHeight[l] ?? 0) + (perHeight[l - 1] ?? 0);
    const order = new Int32Array(count);
    const fill = perHeight.slice();
    for (let i = 0; i < count; i++) {
      const h = this.#height[i] ?? 0;
      const at = fill[h] ?? 0;
      fill[h] = at + 1;
      order[at] = i;
    }
    const base = this.#slots;
    if (count > 0) this.#grow(base + count);
    const nodeSlot = new Int32Array(count);
    for (let j = 0; j < count; j++) nodeSlot[order[j] ?? 0] = base + j;
    this.#slots = base + count;
    this.#nodeSlot = nodeSlot;
    const pool = this.#pool;
    const slotOf = (ref: number): number => (ref >= 0 ? ref : (nodeSlot[-1 - ref] ?? 0));
    let input = new Uint8Array(0);
    for (let l = 1; l <= top; l++) {
      const from = perHeight[l] ?? 0;
      const to = perHeight[l + 1] ?? 0;
      const n = to - from;
      if (n === 0) continue;
      if (input.length < 65 * n) input = new Uint8Array(65 * n);
      const bounds = new Uint32Array(n + 1);
      for (let j = 0; j < n; j++) {
        const node = order[from + j] ?? 0;
        const at = 65 * j;
        const left = HASH_SIZE * slotOf(this.#left[node] ?? 0);
        const right = HASH_SIZE * slotOf(this.#right[node] ?? 0);
        input[at] = 0x01;
        input.set(pool.subarray(left, left + HASH_SIZE), at + 1);
        input.set(pool.subarray(right, right + HASH_SIZE), at + 1 + HASH_SIZE);
        bounds[j + 1] = at + 65;
      }
      pool.set(hashSlices(input.subarray(0, 65 * n), bounds), HASH_SIZE * (base + from));
    }
  }

  /** The root of proof `proof` (a number `add` returned), after `compute`: a view of the pool. */
  root(proof: number): Uint8Array {
    const ref = this.#roots[proof];
    if (ref === undefined || this.#nodeSlot === undefined) throw new Error(`multiproof roots: no computed root ${proof}`);
    const slot = ref >= 0 ? ref : (this.#nodeSlot[-1 - ref] ?? 0);
    return this.#pool.subarray(HASH_SIZE * slot, HASH_SIZE * slot + HASH_SIZE);
  }

  #node(left: number, right: number, height: number): number {
    const i = this.#nodes++;
    if (i >= this.#left.length) {
      const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.#left = grow(this.#left);
      this.#right = grow(this.#right);
      this.#height = grow(this.#height);
    }
    this.#left[i] = left;
    this.#right[i] = right;
    this.#height[i] = height;
    return i;
  }

  #grow(slots: number): void {
    if (HASH_SIZE * slots <= this.#pool.length) return;
    let length = this.#pool.length;
    while (length < HASH_SIZE * slots) length *= 2;
    const pool = new Uint8Array(length);
    pool.set(this.#pool.subarray(0, HASH_SIZE * this.#slots));
    this.#pool = pool;
  }
}
