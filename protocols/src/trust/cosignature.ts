// C2SP tlog-cosignature, Ed25519 type (cosignature/v1): a witness's note signature on a checkpoint, whose signature
// field is an 8-byte big-endian POSIX timestamp followed by an Ed25519 signature over
// `cosignature/v1\ntime <timestamp>\n` and the checkpoint body. The key id uses signature type 0x04, so a
// cosigner key never verifies as a log key of the same name (and the other way round).
import { bytesEqual, concatBytes, fromUtf8, utf8 } from './bytes.js';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import {
  ED25519_SIGNATURE_SIZE,
  ed25519KeyId,
  formatSignerKey,
  formatVerifierKey,
  parseSignerKey,
  parseVerifierKey,
  publicKeyFromSeed,
  signEd25519,
  verifyEd25519,
  type SignerKey,
  type VerifierKey,
} from './ed25519.js';
import { TrustError } from './errors.js';
import { formatNote, openNote, parseNote, signNote, type NoteSignature, type NoteSigner, type NoteVerifier } from './note.js';

/** The signed-note signature type byte of Ed25519 cosignature/v1. */
export const COSIGNATURE_V1_ALGORITHM = 0x04;
/** Size of a cosignature/v1 signature field: timestamp (8 bytes) and Ed25519 signature (64 bytes). */
export const COSIGNATURE_V1_SIZE = 8 + ED25519_SIGNATURE_SIZE;
/** The spec caps timestamps at 2^63 - 1; this implementation keeps them as numbers, so at 2^53 - 1. */
export const MAX_COSIGNATURE_TIME = Number.MAX_SAFE_INTEGER;

const HEADER = 'cosignature/v1\n';

/** The cosigner key id: the first 4 bytes of SHA-256(name || 0x0A || 0x04 || public key). */
export function cosignerKeyId(name: string, publicKey: Uint8Array): Uint8Array {
  return ed25519KeyId(name, publicKey, COSIGNATURE_V1_ALGORITHM);
}

/** `name+hex(keyid)+base64(0x04 || public key)`, the vkey form in which a witness publishes its key. */
export function formatCosignerVerifierKey(name: string, publicKey: Uint8Array): string {
  return formatVerifierKey(name, publicKey, COSIGNATURE_V1_ALGORITHM);
}

export function parseCosignerVerifierKey(text: string): VerifierKey {
  return parseVerifierKey(text, COSIGNATURE_V1_ALGORITHM);
}

/** `PRIVATE+KEY+name+hex(keyid)+base64(0x04 || seed)`: a witness's signing key, in the note key form with type 0x04. */
export function formatCosignerSignerKey(name: string, seed: Uint8Array): string {
  return formatSignerKey(name, seed, COSIGNATURE_V1_ALGORITHM);
}

export function parseCosignerSignerKey(text: string): SignerKey {
  return parseSignerKey(text, COSIGNATURE_V1_ALGORITHM);
}

/** The bytes a cosigner signs: the two header lines and the whole checkpoint body (with its final newline). */
export function cosignedMessage(body: string | Uint8Array, timestamp: number): Uint8Array {
  checkTime(timestamp);
  const prefix = utf8(`${HEADER}time ${timestamp}\n`);
  return concatBytes(prefix, typeof body === 'string' ? utf8(body) : body);
}

/**
 * A note signer that makes cosignature/v1 signatures, stamped with `now()` in whole seconds. It signs only
 * checkpoint bodies: a cosignature is a statement about a tree, so any other text is refused.
 */
export function cosignatureSigner(key: SignerKey | string, now: () => number = () => Math.floor(Date.now() / 1000)): NoteSigner {
  const k = typeof key === 'string' ? parseCosignerSignerKey(key) : key;
  const keyId = cosignerKeyId(k.name, publicKeyFromSeed(k.seed));
  return {
    name: k.name,
    keyId,
    sign(message) {
      parseCheckpoint(fromUtf8(message));
      const timestamp = now();
      const stamp = new Uint8Array(8);
      new DataView(stamp.buffer).setBigUint64(0, BigInt(timestamp));
      return concatBytes(stamp, signEd25519(cosignedMessage(message, timestamp), k.seed));
    },
  };
}

/** A note verifier of cosignature/v1 signatures by one cosigner key. */
export function cosignatureVerifier(key: VerifierKey | string): NoteVerifier {
  const k = typeof key === 'string' ? parseCosignerVerifierKey(key) : key;
  return {
    name: k.name,
    keyId: k.keyId,
    verify(message, signature) {
      const split = splitCosignature(signature);
      if (split === undefined) return false;
      return verifyEd25519(split.signature, cosignedMessage(message, split.timestamp), k.publicKey);
    },
  };
}

export interface Cosignature {
  /** The cosigner's key name. */
  name: string;
  keyId: Uint8Array;
  /** POSIX seconds at which the cosigner signed. */
  timestamp: number;
  /** The Ed25519 signature, without the timestamp. */
  signature: Uint8Array;
}

/** Reads the timestamp and signature of a note signature in the cosignature/v1 layout, without verifying it. */
export function parseCosignature(s: NoteSignature): Cosignature {
  const split = splitCosignature(s.signature);
  if (split === undefined) {
    throw new TrustError(
      'bad-note',
      `signature by ${s.name} is not a cosignature/v1 (${s.signature.length} bytes, expected ${COSIGNATURE_V1_SIZE} with a timestamp below 2^53)`,
      {
        name: s.name,
      },
    );
  }
  return { name: s.name, keyId: s.keyId, ...split };
}

/**
 * Cosigns a checkpoint body and returns only the signature line (`— <name> base64(...)\n`), as a witness answers
 * add-checkpoint.
 */
export function cosignCheckpoint(body: string, signer: NoteSigner): string {
  const note = signNote(body, [signer]);
  return note.slice(body.length + 1);
}

export interface CosignedCheckpoint {
  checkpoint: Checkpoint;
  /** Cosignatures by the given cosigners that verified, one per cosigner. */
  cosignatures: Cosignature[];
}

/**
 * Checks the cosignatures on a checkpoint note by the given cosigners (signature lines by anyone else are
 * ignored, as the spec requires). A bad signature by a known cosigner throws E_AUTH. Use openCheckpoint for the
 * log's own signature: this only counts witnesses.
 */
export function openCosignatures(note: string | Uint8Array, cosigners: readonly NoteVerifier[]): CosignedCheckpoint {
  const parsed = parseNote(note);
  const checkpoint = parseCheckpoint(parsed.text);
  if (!parsed.signatures.some((s) => cosigners.some((c) => c.name === s.name && bytesEqual(c.keyId, s.keyId)))) {
    return { checkpoint, cosignatures: [] };
  }
  const opened = openNote(note, cosigners);
  return { checkpoint, cosignatures: opened.verified.map(parseCosignature) };
}

/** Appends a witness's answer (its signature lines) to the checkpoint note they cosign. */
export function addCosignatures(note: string, signatureLines: string): string {
  return formatNote(parseNote(note + signatureLines));
}

function splitCosignature(signature: Uint8Array): { timestamp: number; signature: Uint8Array } | undefined {
  if (signature.length !== COSIGNATURE_V1_SIZE) return undefined;
  const big = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
  if (big > BigInt(MAX_COSIGNATURE_TIME)) return undefined;
  return { timestamp: Number(big), signature: signature.slice(8) };
}

function checkTime(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TrustError('bad-size', `cosignature timestamp ${String(timestamp)} is not an integer in 0..2^53-1`);
  }
}
