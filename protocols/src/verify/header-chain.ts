// Batch headers authenticated through their chain. A gateway's header carries `prev`, the SHA-256 of its previous
// header's canonical bytes (trust/batch.ts), so the gateway's signature of header n commits to header n - 1 as well,
// and through it to every earlier one: whoever shows header n - 1 with the bytes that hash to header n's `prev` shows
// the very header the gateway signed before it (finding others would mean a SHA-256 collision). A verifier therefore
// need not check each header's own signature: a header is authenticated when its own signature verifies under a key
// valid for it, or when the next header of the same gateway, under the same key, is authenticated and names it by
// `prev`. A one-hour run's bundle holds some 18,000 consecutive batches of one gateway: one signature check, where
// there were 18,000 (about 1.7 s of one core), and the rest are SHA-256 hashes of some 250 bytes each.
//
// What is given up: a header's own signature bytes are not checked when the next header authenticates it. They are
// still hashed into the header's log leaf, so a changed byte fails the header's log inclusion; only a signature the
// lab's server logged wrong (its ingest verifies every one) would pass, and the records it covers are proven by the
// later signature all the same. A header whose successor is not authenticated (its signature fails, its key is not
// valid for it, or it is missing from the bundle) has its own signature checked, as every header was before.
import { toBase64 } from '../trust/bytes.js';

/** One header, as the chain needs it. */
export interface ChainLink {
  gateway: string;
  keyId: string;
  batch: number;
  /** the header's `prev` (base64 of the previous header's hash), as it holds it */
  prev: string | null;
  /** SHA-256 of the header's canonical bytes */
  hash: Uint8Array;
}

export interface ChainResult {
  /** per link (in the order given): authenticated by its own signature ('own'), by the next header ('chained'), or not ('failed') */
  how: ('own' | 'chained' | 'failed')[];
  /** how many own signatures were checked (and how many of them verified: `own`) */
  checked: number;
  own: number;
  chained: number;
}

/**
 * Authenticates the headers, newest first within each gateway and key. `ownValid(i)` checks link i's own signature
 * (and that its key is valid for it): called only for a link that its successor does not authenticate, once at most.
 * Links that share a gateway, key and batch number (a bundle holding a batch twice) are never chained.
 */
export function authenticateChain(links: readonly ChainLink[], ownValid: (i: number) => boolean): ChainResult {
  const id = (gateway: string, keyId: string, batch: number): string => `${gateway}\u0000${keyId}\u0000${batch}`;
  const byId = new Map<string, number>();
  const twice = new Set<string>();
  links.forEach((l, i) => {
    const k = id(l.gateway, l.keyId, l.batch);
    if (byId.has(k)) twice.add(k);
    else byId.set(k, i);
  });
  // newest first: a successor is decided before the header it may authenticate
  const order = links.map((_, i) => i);
  order.sort((a, b) => {
    const x = links[a] as ChainLink;
    const y = links[b] as ChainLink;
    if (x.gateway !== y.gateway) return x.gateway < y.gateway ? -1 : 1;
    if (x.keyId !== y.keyId) return x.keyId < y.keyId ? -1 : 1;
    return y.batch - x.batch;
  });
  const how: ChainResult['how'] = links.map(() => 'failed' as const);
  let checked = 0;
  let own = 0;
  let chained = 0;
  for (const i of order) {
    const l = links[i] as ChainLink;
    const mine = id(l.gateway, l.keyId, l.batch);
    const next = id(l.gateway, l.keyId, l.batch + 1);
    const s = twice.has(mine) || twice.has(next) ? undefined : byId.get(next);
    const successor = s === undefined ? undefined : links[s];
    if (s !== undefined && how[s] !== 'failed' && successor?.prev === toBase64(l.hash)) {
      how[i] = 'chained';
      chained++;
      continue;
    }
    checked++;
    if (ownValid(i)) {
      how[i] = 'own';
      own++;
    }
  }
  return { how, checked, own, chained };
}
