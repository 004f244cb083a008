// The bundle's keys held to the lab's published ones (GET /api/log/keys): the log key is pinned to the published
// one (the verifier then refuses a checkpoint signed by any other), and every gateway key the bundle names must be
// published with the same verifier key, or the bundle could carry keys of its own making.
import type { Api, RouteOutput } from '@labtrace/protocols/api';

export type LogKeys = RouteOutput<Api['logKeys']>;

export interface KeyMismatch {
  kind: 'key-not-published';
  where: string;
  message: string;
  computed?: string;
  claimed?: string;
}

interface BundleKeys {
  gateways?: { gateway?: unknown; keyId?: unknown; verifierKey?: unknown }[];
}

/** the bundle's gateway keys (keys.json) that the lab does not publish as they are; none when nothing was published */
export function keyMismatches(keysJson: string, published: LogKeys | undefined): KeyMismatch[] {
  if (published === undefined) return [];
  let keys: BundleKeys;
  try {
    keys = JSON.parse(keysJson) as BundleKeys;
  } catch {
    return []; // the verifier reports keys.json that does not read
  }
  const out: KeyMismatch[] = [];
  for (const k of keys.gateways ?? []) {
    const gateway = String(k.gateway);
    const keyId = String(k.keyId);
    const found = published.gateways.find((p) => p.gateway === gateway && p.keyId === keyId);
    if (found === undefined)
      out.push({ kind: 'key-not-published', where: `keys.json: gateway ${gateway} key ${keyId}`, message: 'the lab does not publish this key' });
    else if (found.verifierKey !== k.verifierKey)
      out.push({
        kind: 'key-not-published',
        where: `keys.json: gateway ${gateway} key ${keyId}`,
        message: 'the verifier key differs from the published one',
        computed: found.verifierKey,
        claimed: String(k.verifierKey),
      });
  }
  return out;
}
