// Node's crypto behind the trust code's formats: SHA-256 and Ed25519 signing several times faster
// than the pure-JavaScript defaults, which stay for browsers. Same bytes either way (tested).
import crypto, { createHash, createPrivateKey, sign } from 'node:crypto';
import { useEd25519Signer, useSha256 } from '@labtrace/protocols';

// PKCS#8 prefix of a raw 32-byte Ed25519 seed (RFC 8410)
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export function useNodeCrypto(): void {
  // one-shot hash (Node >= 20.12) where it exists: about a fifth faster than a Hash object per call
  const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;
  useSha256(
    oneShot === undefined
      ? (data) => new Uint8Array(createHash('sha256').update(data).digest())
      : (data) => {
          const digest = oneShot('sha256', data, 'buffer');
          return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
        },
  );
  const keys = new Map<string, ReturnType<typeof createPrivateKey>>();
  useEd25519Signer((message, seed) => {
    const id = Buffer.from(seed).toString('base64');
    let key = keys.get(id);
    if (key === undefined) {
      key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
      keys.set(id, key);
    }
    return new Uint8Array(sign(null, message, key));
  });
}
