// Many inclusion proofs against one checkpoint, without hashing again what an earlier proof already proved. A bundle
// holds one RFC 6962 inclusion proof per batch (some 15 hashes each) and its batches are neighbours in the log, so
// their proofs share almost every node: an hour's 18,000 batches are 270,000 proof steps, of which a few thousand
// distinct nodes.
//
// Each node of the checkpoint's tree is named by (level, index) as the RFC 9162 section 2.1.3.2 walk reaches it: the
// subtree over leaves [index * 2^level, min((index + 1) * 2^level, size)). A proof that leads to the trusted root
// proves every node on its way (the nodes it computed and the proof's own hashes); they are kept here. A later proof
// is proven as soon as (a) the node its walk has computed is a kept node, byte for byte, and (b) every hash the proof
// still holds, above that node, is exactly (as canonical base64) the kept node at its place. Then the full walk would
// compute, node by node, the kept ones up to the trusted root: the same answer, without the hashes. Anything else (a
// proof node that differs, one not kept, a proof of the wrong length, text that is not canonical base64) is answered
// "not proven here", and the caller runs the full check, which names the problem exactly as it always did.
import { bytesEqual, fromBase64, toBase64 } from '../trust/bytes.js';
import { nodeHash } from '../trust/merkle.js';

interface Node {
  hash: Uint8Array;
  /** its canonical base64, made when first compared with a proof's text */
  text: string | undefined;
}

/** (level, index) as one number: levels stay below 64, and indexes below 2^46 keep it exact */
const key = (level: number, index: number): number => index * 64 + level;
const MAX_INDEX = 2 ** 46;

export class ProvenNodes {
  readonly #nodes = new Map<number, Node>();
  /** per step: the sibling's key, whether it is on the left, and the key of the node the step computes */
  #siblings: number[] = [];
  #left: boolean[] = [];
  #parents: number[] = [];
  /** per step of the current proof: its hash, and the node the step computed */
  #hashes: Uint8Array[] = [];
  #computed: Uint8Array[] = [];

  constructor(
    readonly size: number,
    readonly root: Uint8Array,
  ) {}

  /**
   * Whether the proof (base64 texts, as a bundle holds them) shows `leaf` at `index` under the trusted root. False
   * means only "not proven here": the caller checks the proof in full (and names what is wrong, if anything).
   */
  proves(leaf: Uint8Array, index: number, proof: readonly unknown[]): boolean {
    const size = this.size;
    if (!Number.isSafeInteger(index) || index < 0 || index >= size || size > MAX_INDEX || leaf.length !== 32) return false;
    // the walk's places, from the index and size alone (RFC 9162 section 2.1.3.2)
    const siblings = this.#siblings;
    const left = this.#left;
    const parents = this.#parents;
    let fn = index;
    let sn = size - 1;
    let level = 0;
    let steps = 0;
    while (sn !== 0) {
      if (steps >= proof.length) return false;
      if (fn % 2 === 1 || fn === sn) {
        // a node on the right edge with no sibling at its level goes up until it is a right child
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
          level++;
        }
        siblings[steps] = key(level, fn - 1);
        left[steps] = true;
      } else {
        siblings[steps] = key(level, fn + 1);
        left[steps] = false;
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
      level++;
      parents[steps] = key(level, fn);
      steps++;
    }
    if (steps !== proof.length) return false;
    for (const p of proof) if (typeof p !== 'string') return false;
    const texts = proof as readonly string[];

    const hashes = this.#hashes;
    const computed = this.#computed;
    let r = leaf;
    let here = key(0, index);
    let i = 0;
    for (; i < steps; i++) {
      if (this.#provenFrom(here, r, i, steps, texts)) break;
      const text = texts[i] ?? '';
      let p: Uint8Array;
      try {
        p = fromBase64(text);
      } catch {
        return false;
      }
      if (p.length !== 32) return false;
      hashes[i] = p;
      r = left[i] ? nodeHash(p, r) : nodeHash(r, p);
      computed[i] = r;
      here = parents[i] ?? 0;
    }
    if (i === steps && !bytesEqual(r, this.root)) return false;
    // proven: keep the nodes this proof computed and the hashes it gave, below where it met the proven ones
    const nodes = this.#nodes;
    const keep = (at: number, hash: Uint8Array, text: string | undefined): void => {
      if (!nodes.has(at)) nodes.set(at, { hash, text });
    };
    keep(key(0, index), leaf, undefined);
    for (let k = 0; k < i; k++) {
      keep(siblings[k] ?? 0, hashes[k] as Uint8Array, texts[k]);
      keep(parents[k] ?? 0, computed[k] as Uint8Array, undefined);
    }
    return true;
  }

  /** Whether node `here` is kept with hash `r`, and the proof's hashes from step `from` on are the kept siblings. */
  #provenFrom(here: number, r: Uint8Array, from: number, steps: number, texts: readonly string[]): boolean {
    const kept = this.#nodes.get(here);
    if (kept === undefined || !bytesEqual(kept.hash, r)) return false;
    for (let k = from; k < steps; k++) {
      const sibling = this.#nodes.get(this.#siblings[k] ?? 0);
      if (sibling === undefined) return false;
      sibling.text ??= toBase64(sibling.hash);
      if (sibling.text !== texts[k]) return false;
    }
    return true;
  }
}
