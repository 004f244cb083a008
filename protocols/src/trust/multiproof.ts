// Inclusion of several leaves of one RFC 6962 tree at once (a batch's records that a client may see): the hashes of
// the largest subtrees that hold none of the disclosed leaves, in the order the tree's recursion (RFC 9162 section
// 2.1.1: split at the largest power of two below n, left before right) meets them. With the disclosed leaves they
// give the root; each leaf's own RFC 9162 inclusion path is a subset of what this holds or recomputes, so one such
// proof proves every disclosed leaf, without repeating the nodes their paths share. A batch whose leaves are all
// disclosed needs no proof hash at all; one disclosed leaf needs exactly its inclusion path.
import { TrustError } from './errors.js';
import { nodeHash } from './merkle.js';
import { HASH_SIZE } from './sha256.js';

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
