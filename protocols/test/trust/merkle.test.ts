import { readdirSync, statSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import {
  CompactTree,
  EMPTY_ROOT,
  TrustError,
  consistencyProof,
  inclusionProof,
  leafHash,
  leafHashReader,
  nodeHash,
  rootAt,
  rootFromInclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type HashReader,
} from '../../src/index.js';
import { VECTORS_DIR, hex, readVector, unhex } from '../vectors.js';

interface RootsVector {
  leafInputsHex: string[];
  rootsBySize: string[];
}
interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

/** Every JSON file under a vector folder, as paths relative to the vectors folder. */
function vectorFiles(folder: string): string[] {
  const out: string[] = [];
  const walk = (relative: string): void => {
    for (const name of readdirSync(VECTORS_DIR + relative).sort()) {
      const path = `${relative}/${name}`;
      if (statSync(VECTORS_DIR + path).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk(folder);
  return out;
}

const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** Reference MTH straight from RFC 9162 section 2.1.1, recursive, to check the iterative code against. */
function referenceRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

/** A small seeded generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function outcome(run: () => void): 'ok' | 'rejected' {
  try {
    run();
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(TrustError);
    return 'rejected';
  }
}

describe('tree roots (published vector: sizes 0..8)', () => {
  const vector = readVector<RootsVector>('rfc6962/roots.json');
  const leaves = vector.leafInputsHex.map(unhex);
  vector.rootsBySize.forEach((root, size) => {
    test(`root of ${size} leaves`, () => {
      const hashes = leaves.slice(0, size).map(leafHash);
      expect(hex(rootOf(hashes))).toBe(root);
      expect(hex(rootAt(size, leafHashReader(hashes)))).toBe(root);
      expect(hex(referenceRoot(leaves.slice(0, size)))).toBe(root);
    });
  });
  test('the empty tree is SHA-256 of the empty string', () => {
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('inclusion proofs (published vectors)', () => {
  const files = vectorFiles('rfc6962/inclusion');
  test('the vectors are there', () => expect(files.length).toBeGreaterThan(90));
  for (const file of files) {
    const v = readVector<InclusionVector>(file);
    test(`${file}: ${v.desc} ${v.wantErr ? 'is rejected' : 'verifies'}`, () => {
      const result = outcome(() => verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, (v.proof ?? []).map(b64), b64(v.root)));
      expect(result).toBe(v.wantErr ? 'rejected' : 'ok');
    });
  }
});

describe('consistency proofs (published vectors)', () => {
  const files = vectorFiles('rfc6962/consistency');
  test('the vectors are there', () => expect(files.length).toBeGreaterThan(90));
  for (const file of files) {
    const v = readVector<ConsistencyVector>(file);
    test(`${file}: ${v.desc} ${v.wantErr ? 'is rejected' : 'verifies'}`, () => {
      const result = outcome(() => verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), (v.proof ?? []).map(b64)));
      expect(result).toBe(v.wantErr ? 'rejected' : 'ok');
    });
  }
});

describe('generated proofs verify, for every index and size pair up to 70 leaves', () => {
  const next = random(6962);
  const leaves = Array.from({ length: 70 }, () => Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256)));
  const hashes = leaves.map(leafHash);
  const read = leafHashReader(hashes);
  const roots = [EMPTY_ROOT, ...leaves.map((_, i) => referenceRoot(leaves.slice(0, i + 1)))];

  test('inclusion', () => {
    for (let size = 1; size <= 70; size++) {
      for (let index = 0; index < size; index++) {
        const proof = inclusionProof(index, size, read);
        expect(() => verifyInclusion(hashes[index]!, index, size, proof, roots[size]!)).not.toThrow();
      }
    }
  });

  test('consistency', () => {
    for (let size2 = 1; size2 <= 70; size2++) {
      for (let size1 = 1; size1 <= size2; size1++) {
        const proof = consistencyProof(size1, size2, read);
        expect(() => verifyConsistency(size1, size2, roots[size1]!, roots[size2]!, proof)).not.toThrow();
      }
    }
  });

  test('a flipped bit, a dropped hash, an extra hash or a swapped pair is rejected', () => {
    for (let n = 0; n < 300; n++) {
      const size = 2 + Math.floor(next() * 69);
      const index = Math.floor(next() * size);
      const proof = inclusionProof(index, size, read);
      const flipped = proof.map((p) => p.slice());
      const at = Math.floor(next() * flipped.length);
      flipped[at]![Math.floor(next() * 32)]! ^= 1 << Math.floor(next() * 8);
      expect(() => verifyInclusion(hashes[index]!, index, size, flipped, roots[size]!)).toThrow(expect.objectContaining({ reason: 'root-mismatch' }));
      expect(() => verifyInclusion(hashes[index]!, index, size, proof.slice(1), roots[size]!)).toThrow(TrustError);
      expect(() => verifyInclusion(hashes[index]!, index, size, [...proof, roots[size]!], roots[size]!)).toThrow(TrustError);
      if (proof.length >= 2) {
        const swapped = [proof[1]!, proof[0]!, ...proof.slice(2)];
        if (hex(swapped[0]!) !== hex(swapped[1]!))
          expect(() => verifyInclusion(hashes[index]!, index, size, swapped, roots[size]!)).toThrow(TrustError);
      }
      const other = (index + 1) % size;
      expect(() => verifyInclusion(hashes[other]!, index, size, proof, roots[size]!)).toThrow(TrustError);

      const size1 = 1 + Math.floor(next() * (size - 1));
      const cproof = consistencyProof(size1, size, read);
      const cflipped = cproof.map((p) => p.slice());
      cflipped[Math.floor(next() * cflipped.length)]![Math.floor(next() * 32)]! ^= 1 << Math.floor(next() * 8);
      expect(() => verifyConsistency(size1, size, roots[size1]!, roots[size]!, cflipped)).toThrow(TrustError);
      expect(() => verifyConsistency(size1, size, roots[size1]!, roots[size]!, cproof.slice(0, -1))).toThrow(TrustError);
      expect(() => verifyConsistency(size1, size, roots[size1 - 1]!, roots[size]!, cproof)).toThrow(TrustError);
    }
  });

  test('the reported failure names the computed and the claimed root', () => {
    const proof = inclusionProof(3, 10, read);
    const computed = rootFromInclusionProof(hashes[3]!, 3, 10, proof);
    expect(hex(computed)).toBe(hex(roots[10]!));
    expect(() => verifyInclusion(hashes[3]!, 3, 10, proof, roots[9]!)).toThrow(
      expect.objectContaining({
        code: 'E_AUTH',
        reason: 'root-mismatch',
        details: expect.objectContaining({ computed: hex(roots[10]!), claimed: hex(roots[9]!) }),
      }),
    );
  });
});

describe('compact tree', () => {
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(new TextEncoder().encode(`record ${i}`)));

  test('its root after each append is the tree root, and it reports the subtrees it completes', () => {
    const tree = new CompactTree();
    const stored = new Map<string, Uint8Array>();
    expect(hex(tree.root())).toBe(hex(EMPTY_ROOT));
    leaves.forEach((leaf, i) => {
      for (const s of tree.append(leaf)) stored.set(`${s.level}/${s.index}`, s.hash);
      expect(tree.size).toBe(i + 1);
      expect(hex(tree.root())).toBe(hex(rootOf(leaves.slice(0, i + 1))));
    });
    // 70 leaves complete 35 + 17 + 8 + 4 + 2 + 1 subtrees above them
    expect(stored.size).toBe(70 + 35 + 17 + 8 + 4 + 2 + 1);
    expect(hex(stored.get('6/0') ?? new Uint8Array())).toBe(hex(rootOf(leaves.slice(0, 64))));
  });

  test('proofs from stored subtrees equal proofs from leaves, with O(log n) reads', () => {
    const tree = new CompactTree();
    const stored = new Map<string, Uint8Array>();
    for (const leaf of leaves) for (const s of tree.append(leaf)) stored.set(`${s.level}/${s.index}`, s.hash);
    let reads = 0;
    const fromStore: HashReader = (level, index) => {
      reads += 1;
      return stored.get(`${level}/${index}`);
    };
    const fromLeaves = leafHashReader(leaves);
    for (let size = 1; size <= 70; size += 7) {
      expect(hex(rootAt(size, fromStore))).toBe(hex(rootOf(leaves.slice(0, size))));
      for (let index = 0; index < size; index += 3) {
        reads = 0;
        const proof = inclusionProof(index, size, fromStore);
        expect(reads).toBeLessThanOrEqual(2 * 7);
        expect(proof.map(hex)).toEqual(inclusionProof(index, size, fromLeaves).map(hex));
      }
      for (let size1 = 1; size1 <= size; size1 += 5) {
        expect(consistencyProof(size1, size, fromStore).map(hex)).toEqual(consistencyProof(size1, size, fromLeaves).map(hex));
      }
    }
  });

  test('restores from stored hashes and goes on as if never stopped', () => {
    const stored = new Map<string, Uint8Array>();
    const first = new CompactTree();
    for (const leaf of leaves.slice(0, 45)) for (const s of first.append(leaf)) stored.set(`${s.level}/${s.index}`, s.hash);
    const restored = CompactTree.restore(45, (level, index) => stored.get(`${level}/${index}`));
    expect(restored.peaks.map(hex)).toEqual(first.peaks.map(hex));
    for (const leaf of leaves.slice(45)) restored.append(leaf);
    expect(hex(restored.root())).toBe(hex(rootOf(leaves)));
  });

  test('a missing leaf hash is a coded error, not a wrong proof', () => {
    const gappy: HashReader = (level, index) => (level === 0 && index !== 5 ? leaves[index] : undefined);
    expect(() => inclusionProof(0, 8, gappy)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'missing-hash' }));
  });
});

describe('argument checks', () => {
  const h = leafHash(new Uint8Array());
  test('indexes and sizes must be safe integers in range', () => {
    expect(() => verifyInclusion(h, 1, 1, [], h)).toThrow(expect.objectContaining({ reason: 'bad-size' }));
    expect(() => verifyInclusion(h, 2 ** 64, 2 ** 64 + 1, [], h)).toThrow(expect.objectContaining({ reason: 'bad-size' }));
    expect(() => inclusionProof(-1, 3, leafHashReader([h, h, h]))).toThrow(expect.objectContaining({ reason: 'bad-size' }));
    expect(() => consistencyProof(0, 3, leafHashReader([h, h, h]))).toThrow(expect.objectContaining({ reason: 'bad-size' }));
    expect(() => consistencyProof(4, 3, leafHashReader([h, h, h]))).toThrow(expect.objectContaining({ reason: 'bad-size' }));
  });
  test('hashes must be 32 bytes', () => {
    expect(() => verifyInclusion(h.slice(1), 0, 1, [], h)).toThrow(expect.objectContaining({ code: 'E_CODEC', reason: 'bad-length' }));
    expect(() => new CompactTree().append(new Uint8Array(31))).toThrow(expect.objectContaining({ reason: 'bad-length' }));
  });
  test('equal sizes need an empty proof', () => {
    expect(consistencyProof(5, 5, leafHashReader([h, h, h, h, h]))).toEqual([]);
    expect(() => verifyConsistency(5, 5, h, h, [h])).toThrow(expect.objectContaining({ reason: 'proof-length' }));
  });
});
