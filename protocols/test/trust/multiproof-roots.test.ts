// Many multi-leaf proofs' roots at once (MultiproofRoots, trust/multiproof.ts): the same root as
// rootFromMultiInclusionProof for every proof, and a refusal exactly where it throws (a hash missing or extra,
// indexes out of order or outside the tree, no leaf), with the proofs of other trees planned in the same pool.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { leafHash, multiInclusionProof, MultiproofRoots, rootFromMultiInclusionProof, rootOf, toHex, utf8 } from '../../src/index.js';

const leavesOf = (n: number, salt: number): Uint8Array[] => Array.from({ length: n }, (_, i) => leafHash(utf8(`leaf ${salt} ${i}`)));

/** a tree, an ascending set of its indexes, and a change to the proof (none, a hash dropped, one added, indexes swapped) */
const cases = fc.array(
  fc
    .integer({ min: 1, max: 40 })
    .chain((size) =>
      fc.tuple(
        fc.constant(size),
        fc.uniqueArray(fc.nat({ max: size - 1 }), { minLength: 1, maxLength: size }),
        fc.constantFrom('none', 'none', 'drop', 'add', 'unsorted', 'flip'),
      ),
    ),
  { minLength: 1, maxLength: 12 },
);

describe('multiproof roots, many at once', () => {
  test('give the root rootFromMultiInclusionProof gives, and refuse where it throws', () => {
    fc.assert(
      fc.property(cases, (trees) => {
        const roots = new MultiproofRoots();
        const expected: (string | undefined)[] = [];
        const numbers: number[] = [];
        trees.forEach(([size, chosen, change], t) => {
          const leaves = leavesOf(size, t);
          let indexes = [...chosen].sort((a, b) => a - b);
          let proof = multiInclusionProof(indexes, size, (start, end) => rootOf(leaves.slice(start, end)));
          if (change === 'drop') proof = proof.slice(1);
          if (change === 'add') proof = [...proof, leaves[0] as Uint8Array];
          if (change === 'unsorted' && indexes.length > 1) indexes = [...indexes].reverse();
          if (change === 'flip' && proof.length > 0) proof = [proof[0]?.map((b, i) => (i === 0 ? b ^ 1 : b)) as Uint8Array, ...proof.slice(1)];
          const disclosed = indexes.map((i) => leaves[i] as Uint8Array);
          try {
            expected.push(toHex(rootFromMultiInclusionProof(indexes, disclosed, size, proof)));
          } catch {
            expected.push(undefined);
          }
          const put = (h: Uint8Array): number => {
            const slot = roots.slot();
            roots.pool.set(h, 32 * slot);
            return slot;
          };
          const leafSlots = disclosed.map(put);
          numbers.push(roots.add(indexes, leafSlots, size, proof.map(put)));
        });
        roots.compute();
        const got = numbers.map((n) => (n < 0 ? undefined : toHex(roots.root(n))));
        expect(got).toEqual(expected);
      }),
      { seed: 20_261_208, numRuns: 300 },
    );
  });

  test('refuse no leaf, and indexes outside the tree', () => {
    const roots = new MultiproofRoots();
    const slot = roots.slot();
    expect(roots.add([], [], 4, [])).toBe(-1);
    expect(roots.add([4], [slot], 4, [])).toBe(-1);
    expect(roots.add([0], [slot], 0, [])).toBe(-1);
  });
});
