// Inclusion proofs checked against nodes earlier proofs proved: the same answers as the full RFC 9162 walk, for every
// leaf of trees of many shapes, in any order; one changed byte in any proof hash, of a proof whose path earlier
// proofs already proved, is never accepted; and neighbouring leaves cost a hash or two each.
import { afterEach, describe, expect, test } from '@jest/globals';
import { bytesEqual, inclusionProof, leafHash, leafHashReader, rootAt, rootFromInclusionProof, toBase64, useSha256 } from '../../src/index.js';
import { ProvenNodes } from '../../src/verify/proven-nodes.js';
import { sha256Js } from '../../src/verify/sha256-js.js';

const SIZES = [1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 100];

function tree(size: number): { leaves: Uint8Array[]; root: Uint8Array; proof: (i: number) => string[] } {
  const leaves = Array.from({ length: size }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
  const read = leafHashReader(leaves);
  const proofs = leaves.map((_, i) => inclusionProof(i, size, read).map((p) => toBase64(p)));
  return { leaves, root: rootAt(size, read), proof: (i) => proofs[i] ?? [] };
}

/** the full walk's answer, as the verifier gives it without the kept nodes */
function fullWalk(leaf: Uint8Array, index: number, size: number, proof: string[], root: Uint8Array): boolean {
  try {
    return bytesEqual(
      rootFromInclusionProof(
        leaf,
        index,
        size,
        proof.map((p) => Uint8Array.from(Buffer.from(p, 'base64'))),
      ),
      root,
    );
  } catch {
    return false;
  }
}

/** the proof's hash k with one bit of byte `at` flipped, as canonical base64 */
function flipped(proof: string[], k: number, at: number): string[] {
  const bytes = Uint8Array.from(Buffer.from(proof[k] ?? '', 'base64'));
  bytes[at] = (bytes[at] ?? 0) ^ 1;
  return proof.map((p, i) => (i === k ? toBase64(bytes) : p));
}

afterEach(() => useSha256(undefined));

describe('ProvenNodes', () => {
  test('every leaf of trees of many sizes, in order, in reverse and again: proven, as the full walk proves it', () => {
    for (const size of SIZES) {
      const { leaves, root, proof } = tree(size);
      const proven = new ProvenNodes(size, root);
      const order = [...leaves.keys(), ...[...leaves.keys()].reverse()];
      for (const i of order) {
        expect(fullWalk(leaves[i] as Uint8Array, i, size, proof(i), root)).toBe(true);
        expect(proven.proves(leaves[i] as Uint8Array, i, proof(i))).toBe(true);
      }
    }
  });

  test('one changed byte in any hash of a later proof whose path earlier proofs proved: not proven (and the full walk refuses it)', () => {
    for (const size of SIZES.filter((s) => s > 1 && s < 40)) {
      const { leaves, root, proof } = tree(size);
      for (let i = 0; i < size; i++) {
        const honest = proof(i);
        // every other leaf proven first: the tampered proof's nodes are all kept (a proof not proven keeps nothing)
        const proven = new ProvenNodes(size, root);
        for (let j = 0; j < size; j++) if (j !== i) expect(proven.proves(leaves[j] as Uint8Array, j, proof(j))).toBe(true);
        for (let k = 0; k < honest.length; k++)
          for (const at of [0, 17, 31]) {
            const tampered = flipped(honest, k, at);
            expect(proven.proves(leaves[i] as Uint8Array, i, tampered)).toBe(false);
            expect(fullWalk(leaves[i] as Uint8Array, i, size, tampered, root)).toBe(false);
          }
        // and the honest proof still is
        expect(proven.proves(leaves[i] as Uint8Array, i, honest)).toBe(true);
      }
    }
  });

  test('another leaf, another index, a proof too long or too short, text that is not canonical base64: not proven', () => {
    const size = 33;
    const { leaves, root, proof } = tree(size);
    const proven = new ProvenNodes(size, root);
    for (let j = 0; j < size; j++) expect(proven.proves(leaves[j] as Uint8Array, j, proof(j))).toBe(true);
    const leaf = leaves[20] as Uint8Array;
    const honest = proof(20);
    const changedLeaf = leaf.slice();
    changedLeaf[5] = (changedLeaf[5] ?? 0) ^ 0x80;
    expect(proven.proves(changedLeaf, 20, honest)).toBe(false);
    expect(proven.proves(leaf, 21, honest)).toBe(false);
    expect(proven.proves(leaf, 20 + size, honest)).toBe(false);
    expect(proven.proves(leaf, -1, honest)).toBe(false);
    expect(proven.proves(leaf, 20, [...honest, honest[0]])).toBe(false);
    expect(proven.proves(leaf, 20, honest.slice(0, -1))).toBe(false);
    // the same bytes in base64 without its padding, or with a character Node's decoder would skip
    expect(
      proven.proves(
        leaf,
        20,
        honest.map((p, i) => (i === honest.length - 1 ? p.replace(/=+$/, '') : p)),
      ),
    ).toBe(false);
    expect(
      proven.proves(
        leaf,
        20,
        honest.map((p, i) => (i === honest.length - 1 ? `${p.slice(0, 4)}\n${p.slice(4)}` : p)),
      ),
    ).toBe(false);
    expect(
      proven.proves(
        leaf,
        20,
        honest.map((p, i) => (i === 0 ? Buffer.from(p, 'base64') : p)),
      ),
    ).toBe(false);
  });

  test('a proof that leads elsewhere proves nothing, and keeps nothing: the next honest proof is walked to the root', () => {
    const size = 16;
    const { leaves, root, proof } = tree(size);
    const proven = new ProvenNodes(size, root);
    expect(proven.proves(leaves[3] as Uint8Array, 3, flipped(proof(3), 3, 0))).toBe(false);
    expect(proven.proves(leaves[2] as Uint8Array, 2, flipped(proof(2), 0, 0))).toBe(false);
    expect(proven.proves(leaves[2] as Uint8Array, 2, proof(2))).toBe(true);
  });

  test("neighbouring leaves (a bundle's batches): about two hashes a proof, where the full walk needs every level", () => {
    let hashes = 0;
    useSha256((data) => {
      hashes++;
      return sha256Js(data);
    });
    const size = 1000;
    const { leaves, root, proof } = tree(size);
    const proofs = Array.from({ length: size }, (_, i) => proof(i));
    const steps = proofs.reduce((n, p) => n + p.length, 0);
    const proven = new ProvenNodes(size, root);
    hashes = 0;
    for (let i = 0; i < size; i++) expect(proven.proves(leaves[i] as Uint8Array, i, proofs[i] ?? [])).toBe(true);
    expect(steps).toBeGreaterThan(9 * size);
    expect(hashes).toBeLessThan(2.5 * size);
  });
});
