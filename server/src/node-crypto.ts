// Node's SHA-256 behind the trust code (record leaves, Merkle roots, header hashes): several times
// faster than the pure-JavaScript default, which stays for browsers. Same bytes either way.
import { createHash } from 'node:crypto';
import { useSha256 } from '@labtrace/protocols';

export function useNodeCrypto(): void {
  useSha256((data) => new Uint8Array(createHash('sha256').update(data).digest()));
}
