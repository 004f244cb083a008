// Multi-leaf inclusion proofs (trust/multiproof.ts) against the RFC 6962 tree of merkle.ts: for any tree and any
// set of leaves, the proof and the leaves give the tree's root; one leaf's proof holds its RFC 9162 inclusion path's hashes; a
// changed, missing or extra hash, or a leaf at another place, does not give the root.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  bytesEqual,
  inclusionProof,
  leafHash,
  leafHashReader,
  multiInclusionProof,
  rootFromMultiInclusionProof,
  rootOf,
  toHex,
  utf8,
} from '../../src/index.js';

const leavesOf = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => leafHash(utf8(`leaf ${i}`)));
const rangeOf = (leaves: Uint8Array[]) => (start: number, end: number) => rootOf(leaves.slice(start, end));

/** a tree size and an ascending, non-empty set of its indexes */
const treeAndIndexes = fc
  .integer({ min: 1, max: 70 })
  .chain((size) => fc.tuple(fc.constant(size), fc.uniqueArray(fc.nat({ max: size - 1 }), { minLength: 1, maxLength: size })))
  .map(([size, indexes]) => ({ size, indexes: [...indexes].sort((a, b) => a - b) }));

describe('multi-leaf inclusion proofs', () => {
  test('lead to the root for any tree and set of leaves', () => {
    fc.assert(
      fc.property(treeAndIndexes, ({ size, indexes }) => {
        const leaves = leavesOf(size);
        const proof = multiInclusionProof(indexes, size, rangeOf(leaves));
        const root = rootFromMultiInclusionProof(
          indexes,
          indexes.map((i) => leaves[i] as Uint8Array),
          size,
          proof,
        );
        expect(toHex(root)).toBe(toHex(rootOf(leaves)));
      }),
      { seed: 20_261_207, numRuns: 300 },
    );
  });

  test('of one leaf holds exactly the hashes of its RFC 9162 inclusion path (in tree order); of every leaf, none', () => {
    for (const size of [1, 2, 3, 5, 8, 13, 64, 100]) {
      const leaves = leavesOf(size);
      for (let i = 0; i < size; i++)
        expect(multiInclusionProof([i], size, rangeOf(leaves)).map(toHex).sort()).toEqual(
          inclusionProof(i, size, leafHashReader(leaves)).map(toHex).sort(),
        );
      expect(
        multiInclusionProof(
          Array.from({ length: size }, (_, i) => i),
          size,
          rangeOf(leaves),
        ),
      ).toEqual([]);
    }
  });

  test('a changed, missing or extra hash, or a leaf at another place, does not give the root', () => {
    fc.assert(
      fc.property(treeAndIndexes, fc.nat(), ({ size, indexes }, pick) => {
        const leaves = leavesOf(size);
        const root = rootOf(leaves);
        const proof = multiInclusionProof(indexes, size, rangeOf(leaves));
        const disclosed = indexes.map((i) => leaves[i] as Uint8Array);
        const gives = (ix: number[], ls: Uint8Array[], p: Uint8Array[]): boolean => {
          try {
            return bytesEqual(rootFromMultiInclusionProof(ix, ls, size, p), root);
          } catch {
            return false;
          }
        };
        expect(gives(indexes, disclosed, proof)).toBe(true);
        if (proof.length > 0) {
          const changed = proof.map((h) => h.slice());
          const h = changed[pick % changed.length] as Uint8Array;
          h[pick % 32] = (h[pick % 32] ?? 0) ^ 1;
          expect(gives(indexes, disclosed, changed)).toBe(false);
          expect(gives(indexes, disclosed, proof.slice(1))).toBe(false);
        }
        expect(gives(indexes, disclosed, [...proof, root])).toBe(false);
        const flipped = disclosed.map((l) => l.slice());
        const leaf = flipped[pick % flipped.length] as Uint8Array;
        leaf[0] = (leaf[0] ?? 0) ^ 1;
        expect(gives(indexes, flipped, proof)).toBe(false);
        // the first disclosed leaf claimed at a free place before or after it
        const free = Array.from({ length: size }, (_, i) => i).find((i) => !indexes.includes(i));
        if (free !== undefined) {
          const moved = [...indexes.slice(1), free].sort((a, b) => a - b);
          const movedLeaves = moved.map((i) => (i === free ? (leaves[indexes[0] as number] as Uint8Array) : (leaves[i] as Uint8Array)));
          expect(gives(moved, movedLeaves, proof)).toBe(false);
        }
      }),
      { seed: 20_261_207, numRuns: 300 },
    );
  });

  test('refuses indexes out of order or outside the tree', () => {
    const leaves = leavesOf(4);
    expect(() => multiInclusionProof([2, 1], 4, rangeOf(leaves))).toThrow(/not ascending/);
    expect(() => rootFromMultiInclusionProof([4], [leaves[0] as Uint8Array], 4, [])).toThrow(/not ascending within a tree of size 4/);
    expect(() => rootFromMultiInclusionProof([], [], 4, [])).toThrow(/proves nothing/);
  });
});
