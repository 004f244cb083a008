// Headers authenticated through their chain (verify/header-chain.ts), on real signed batches: the newest header of a
// run of consecutive batches is checked by its own signature and the ones before it by the `prev` hashes down from
// it; a gap, another key, a header changed or put in, a successor that fails, and a batch held twice each stop the
// chain, and the header below has its own signature checked (and fails when it is not the gateway's).
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  canonicalBytes,
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  parseSignerKey,
  parseVerifierKey,
  publicKeyFromSeed,
  signBatch,
  verifyEd25519,
  type Sample,
  type SignedBatch,
} from '../../src/index.js';
import { authenticateChain, type ChainLink } from '../../src/verify/header-chain.js';
import { fromBase64 } from '../../src/trust/bytes.js';

const seedA = new Uint8Array(32).map((_, i) => i + 1);
const seedB = new Uint8Array(32).map((_, i) => 200 - i);
const keyA = parseSignerKey(formatSignerKey('gw-1', seedA));
const keyB = parseSignerKey(formatSignerKey('gw-1', seedB));
const verifiers = new Map(
  [seedA, seedB].map((seed) => {
    const v = parseVerifierKey(formatVerifierKey('gw-1', publicKeyFromSeed(seed)));
    return [Buffer.from(v.keyId).toString('hex'), v] as const;
  }),
);

const records = (first: number, n: number): Sample[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument: 'utm-1',
    channel: 'force',
    ts: 1_800_000_000_000 + (first + i) * 100,
    value: first + i,
    unit: 'kN',
    quality: 'good' as const,
  }));

/** a gateway's batches 0..n-1, chained, under keyA (or keyB from batch `rotateAt` on) */
function gatewayBatches(n: number, rotateAt = Infinity): SignedBatch[] {
  const out: SignedBatch[] = [];
  let prev: Uint8Array | null = null;
  for (let b = 0; b < n; b++) {
    const signed = signBatch(b >= rotateAt ? keyB : keyA, 'gw-1', b, records(b * 3, 3), prev);
    out.push(signed);
    prev = headerHash(signed.header);
  }
  return out;
}

const linkOf = (s: SignedBatch): ChainLink => ({
  gateway: s.header.gateway,
  keyId: s.header.keyId,
  batch: s.header.batch,
  prev: s.header.prev,
  hash: headerHash(s.header),
});

/** authenticates, checking own signatures for real, and says which links had their own checked */
function run(batches: readonly SignedBatch[]) {
  const checked: number[] = [];
  const result = authenticateChain(batches.map(linkOf), (i) => {
    checked.push(i);
    const s = batches[i] as SignedBatch;
    const key = verifiers.get(s.header.keyId);
    return key !== undefined && verifyEd25519(fromBase64(s.signature), canonicalBytes(s.header), key.publicKey);
  });
  return { ...result, checked };
}

describe('headers authenticated through their chain', () => {
  test('consecutive batches: one signature, the newest; the others through prev, in any order given', () => {
    const batches = gatewayBatches(6);
    const r = run(
      [...batches]
        .reverse()
        .slice(3)
        .concat([...batches].reverse().slice(0, 3)),
    );
    expect(r.checked).toHaveLength(1);
    expect(r).toMatchObject({ checked: [3], own: 1, chained: 5 });
    expect(r.how.filter((h) => h === 'chained')).toHaveLength(5);
  });

  test('a gap: the header below it has its own signature checked', () => {
    const batches = gatewayBatches(6);
    const held = [batches[0], batches[1], batches[3], batches[4], batches[5]] as SignedBatch[];
    const r = run(held);
    expect(r.how).toEqual(['chained', 'own', 'chained', 'chained', 'own']);
    expect(r.checked.sort()).toEqual([1, 4]);
  });

  test('a key rotation: each key authenticates its own headers only', () => {
    const r = run(gatewayBatches(5, 3));
    expect(r.how).toEqual(['chained', 'chained', 'own', 'chained', 'own']);
  });

  test('a header changed after signing: the next header does not name it, its own signature fails, and the chain below it stops', () => {
    const batches = gatewayBatches(4);
    const changed = { ...batches[1], header: { ...(batches[1] as SignedBatch).header, tsMax: 1 } } as SignedBatch;
    const r = run([batches[0], changed, batches[2], batches[3]] as SignedBatch[]);
    expect(r.how).toEqual(['own', 'failed', 'chained', 'own']);
    expect(r.own).toBe(2);
    expect(r.checked).toHaveLength(3);
  });

  test('a header put in by someone without the key (a forged batch 2 naming batch 1 by prev): refused, and batch 1 is checked on its own', () => {
    const batches = gatewayBatches(3);
    const stranger = parseSignerKey(formatSignerKey('gw-1', new Uint8Array(32).fill(7)));
    const forged = signBatch(stranger, 'gw-1', 2, records(6, 3), headerHash((batches[1] as SignedBatch).header));
    // the forged header claims keyA's id: its signature is not keyA's
    const claimed = { ...forged, header: { ...forged.header, keyId: (batches[2] as SignedBatch).header.keyId } };
    const r = run([batches[0], batches[1], claimed] as SignedBatch[]);
    expect(r.how).toEqual(['chained', 'own', 'failed']);
  });

  test('a batch held twice is never chained, nor the header below it', () => {
    const batches = gatewayBatches(3);
    const r = run([batches[0], batches[1], batches[2], batches[2]] as SignedBatch[]);
    expect(r.how).toEqual(['chained', 'own', 'own', 'own']);
  });

  test('whatever is held and changed: a header is chained only when its successor is authenticated and names it; every other has its own signature checked', () => {
    const all = gatewayBatches(8, 5);
    fc.assert(
      fc.property(fc.subarray([0, 1, 2, 3, 4, 5, 6, 7], { minLength: 1 }), fc.array(fc.nat(7), { maxLength: 3 }), (held, changedAt) => {
        const batches = held.map((b) => {
          const s = all[b] as SignedBatch;
          return changedAt.includes(b) ? { ...s, header: { ...s.header, tsMin: 0 } } : s;
        });
        const r = run(batches);
        const links = batches.map(linkOf);
        r.how.forEach((how, i) => {
          const l = links[i] as ChainLink;
          const next = links.findIndex((m) => m.gateway === l.gateway && m.keyId === l.keyId && m.batch === l.batch + 1);
          const original = all[l.batch] as SignedBatch;
          const genuine = Buffer.from(headerHash(original.header)).equals(Buffer.from(l.hash));
          if (how === 'chained') {
            // only a genuine header is ever chained, and only by an authenticated successor
            expect(genuine).toBe(true);
            expect(next).toBeGreaterThanOrEqual(0);
            expect(r.how[next]).not.toBe('failed');
          } else {
            expect(r.checked).toContain(i);
            expect(how).toBe(genuine ? 'own' : 'failed');
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});
