// Node's crypto behind the trust code: SHA-256 (record leaves, Merkle roots, header hashes) and
// Ed25519 verification, several times faster than the pure-JavaScript defaults, which stay for
// browsers. Same answers either way (tested with the RFC 8032 vectors).
import crypto, { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { useEd25519Signer, useEd25519Verifier, useSha256 } from '@labtrace/protocols';

// PKCS#8 prefix of a raw 32-byte Ed25519 seed (RFC 8410)
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
// SubjectPublicKeyInfo prefix of a raw 32-byte Ed25519 public key (RFC 8410)
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

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
  const keys = new Map<string, KeyObject>();
  useEd25519Verifier((signature, message, publicKey) => {
    const id = Buffer.from(publicKey).toString('base64');
    let key = keys.get(id);
    if (key === undefined) {
      key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
      if (keys.size > 10_000) keys.clear();
      keys.set(id, key);
    }
    return verify(null, message, key, signature);
  });
  // the server signs with few keys (the log's, the certificates'): each is turned into a key object once
  const signers = new Map<string, KeyObject>();
  useEd25519Signer((message, seed) => {
    const id = createHash('sha256').update(seed).digest('base64');
    let key = signers.get(id);
    if (key === undefined) {
      key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
      if (signers.size > 100) signers.clear();
      signers.set(id, key);
    }
    return new Uint8Array(sign(null, message, key));
  });
}
