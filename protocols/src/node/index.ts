// Node's crypto behind the trust code (Node only; browsers keep the pure-JavaScript defaults):
// SHA-256 through the native batched module when it is built (native/hash.c: a batch's leaves and
// Merkle root in one call each), else through Node's one-shot hash; Ed25519 signing and verification
// through Node's crypto. Same bytes either way (tested against each other and the RFC vectors).
import crypto, { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { useEd25519Signer, useEd25519Verifier } from '../trust/ed25519.js';
import { HASH_SIZE, useSha256, useSha256Batch, type Sha256Batch } from '../trust/sha256.js';

// PKCS#8 prefix of a raw 32-byte Ed25519 seed (RFC 8410)
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
// SubjectPublicKeyInfo prefix of a raw 32-byte Ed25519 public key (RFC 8410)
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

interface NativeHash extends Sha256Batch {
  sha256(data: Uint8Array, out: Uint8Array): void;
}

/** Which SHA-256 runs: the native batched module, or Node's crypto one call per hash (and why). */
export interface HashingInfo {
  kind: 'native' | 'node';
  reason?: string;
}

let loaded: { native?: NativeHash; reason?: string } | undefined;

/** Loads the native module once; LABTRACE_NATIVE_HASH=off declines it (to measure or test without). */
export function loadNativeHash(): NativeHash | undefined {
  if (loaded !== undefined) return loaded.native;
  if (process.env.LABTRACE_NATIVE_HASH === 'off') {
    loaded = { reason: 'LABTRACE_NATIVE_HASH=off' };
    return undefined;
  }
  try {
    const require = createRequire(import.meta.url);
    // dist/src/node/index.js -> build/Release of the package
    loaded = { native: require('../../../build/Release/labtrace_hash.node') as NativeHash };
  } catch (err) {
    loaded = { reason: `the native module is not built (${(err as Error).message.split('\n')[0]})` };
  }
  return loaded.native;
}

export function hashingInfo(): HashingInfo {
  loadNativeHash();
  return loaded?.native !== undefined ? { kind: 'native' } : { kind: 'node', ...(loaded?.reason !== undefined && { reason: loaded.reason }) };
}

/** Installs Node's SHA-256 (native batched when built) and Ed25519 behind the trust code. */
export function useNodeCrypto(): HashingInfo {
  const native = loadNativeHash();
  if (native !== undefined) {
    useSha256((data) => {
      const out = new Uint8Array(HASH_SIZE);
      native.sha256(data, out);
      return out;
    });
    useSha256Batch(native);
  } else {
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
    useSha256Batch(undefined);
  }
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
  // few signing keys per process (a gateway's, the log's, the certificates'): each becomes a key object once,
  // kept under a hash of the seed, never the seed itself
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
  return hashingInfo();
}
