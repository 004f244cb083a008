// Node's crypto behind the trust code (Node only; browsers keep the pure-JavaScript defaults):
// SHA-256 through the native batched module when it is built (native/hash.c: a batch's leaves and
// Merkle root in one call each), else through Node's one-shot hash; Ed25519 signing and verification
// through Node's crypto. Same bytes either way (tested against each other and the RFC vectors).
import crypto, { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { useEd25519Signer, useEd25519Verifier } from '../trust/ed25519.js';
import { HASH_SIZE, useSha256, useSha256Batch, type Sha256Batch } from '../trust/sha256.js';
import { verifyDisclosure } from '../verify/checks/disclosure.js';
import type { VerifyOptions, VerifyReport } from '../verify/report.js';
import { withParallelEd25519, type ParallelOptions } from './parallel-ed25519.js';

export { withParallelEd25519, PARALLEL_THRESHOLD, type ParallelOptions } from './parallel-ed25519.js';
export { createProcessLogger, logSettings, LOG_FORMATS, type LogFormat, type ProcessLoggerOptions } from './logging.js';
export { formatDuration, Progress, stopOnInterrupt, type ProgressOptions } from './progress.js';
export { MetricsEndpoint, METRICS_PATH, notFound, pathOf, type MetricsEndpointOptions, type MetricsSource } from './metrics-endpoint.js';

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

const verifierKeys = new Map<string, KeyObject>();

/** Ed25519 verification by Node's crypto (OpenSSL's RFC 8032 check), each public key made a key object once. */
export function nodeEd25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  const id = Buffer.from(publicKey).toString('base64');
  let key = verifierKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
    if (verifierKeys.size > 10_000) verifierKeys.clear();
    verifierKeys.set(id, key);
  }
  return verify(null, message, key, signature);
}

/**
 * verifyDisclosure with the batches' signatures checked by Node's crypto on worker threads while the verifier
 * hashes (parallel-ed25519.ts): the same report. What `labtrace verify <file>` runs; install useNodeCrypto first
 * for Node's hashing.
 */
export function verifyDisclosureInParallel(text: string, options: VerifyOptions = {}, parallel: ParallelOptions = {}): Promise<VerifyReport> {
  // slices of signatures go to the workers as the verifier makes them (looking ahead in the text, `parallel.ahead`,
  // measured more CPU than it saves: each worker decodes and scans the whole text and loads the canonical-JSON code)
  return withParallelEd25519(() => verifyDisclosure(text, options), nodeEd25519Verify, parallel);
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
  useEd25519Verifier(nodeEd25519Verify);
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
export { querySntp, type SntpSample, type SntpQueryOptions } from './sntp-client.js';
export { NtpClock, type NtpChange, type NtpClockEvents, type NtpClockOptions, type NtpStatus } from './ntp-clock.js';
