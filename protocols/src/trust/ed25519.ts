// Ed25519 (RFC 8032) through @noble/curves, which is pure JavaScript and so also runs in the auditor's browser,
// and the key forms of C2SP signed-note: key ids, verifier keys `name+keyid+base64(0x01 || public key)` and
// signer keys `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`.
import { ed25519 } from '@noble/curves/ed25519.js';
import { concatBytes, fromBase64, fromHex, toBase64, toHex, utf8 } from './bytes.js';
import { TrustError } from './errors.js';
import { sha256 } from './sha256.js';

export const ED25519_SEED_SIZE = 32;
export const ED25519_PUBLIC_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
/** The signed-note signature type byte for Ed25519. */
export const ED25519_ALGORITHM = 0x01;
export const KEY_ID_SIZE = 4;

const SIGNER_KEY_PREFIX = 'PRIVATE+KEY+';
// "+" and Unicode White_Space (JavaScript's \s plus NEL), which signed-note forbids in key names.
const NAME_FORBIDDEN = /[+\s\u0085]/u;

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  checkLength(seed, ED25519_SEED_SIZE, 'Ed25519 seed');
  return ed25519.getPublicKey(seed);
}

let signer: (message: Uint8Array, seed: Uint8Array) => Uint8Array = (message, seed) => ed25519.sign(message, seed);

/**
 * Installs a faster Ed25519 signer (Node's crypto, in the gateway). Ed25519 signatures are
 * deterministic (RFC 8032), so any correct implementation gives the same bytes.
 */
export function useEd25519Signer(fn: (message: Uint8Array, seed: Uint8Array) => Uint8Array): void {
  signer = fn;
}

export function signEd25519(message: Uint8Array, seed: Uint8Array): Uint8Array {
  checkLength(seed, ED25519_SEED_SIZE, 'Ed25519 seed');
  return signer(message, seed);
}

let verifier: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean = (signature, message, publicKey) =>
  ed25519.verify(signature, message, publicKey, { zip215: false });

/**
 * Installs a faster Ed25519 verifier (Node's crypto, in the server). It must apply the RFC 8032 rules
 * (no ZIP-215 leniency); lengths are checked before it is called, and an exception counts as a bad signature.
 */
export function useEd25519Verifier(fn: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean): void {
  verifier = fn;
}

/** The Ed25519 verification installed now (to put it back after installing another for a while). */
export function ed25519VerifierInUse(): (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean {
  return verifier;
}

/** True when `signature` is a valid Ed25519 signature of `message` by `publicKey` (RFC 8032 rules, no ZIP-215 leniency). */
export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  checkLength(publicKey, ED25519_PUBLIC_KEY_SIZE, 'Ed25519 public key');
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
  try {
    return verifier(signature, message, publicKey);
  } catch {
    // noble (and Node) throw on encodings that are not points; for a verifier that is simply a bad signature
    return false;
  }
}

/** Whether a signed-note key name is acceptable: non-empty, valid text, no spaces and no "+". */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !NAME_FORBIDDEN.test(name) && !hasControl(name) && wellFormed(name);
}

/**
 * The signed-note key id: the first 4 bytes of SHA-256(name || 0x0A || type || public key). The type byte is 0x01
 * for note signatures; other signature types over the same kind of key (cosignature/v1: 0x04) pass their own.
 */
export function ed25519KeyId(name: string, publicKey: Uint8Array, algorithm: number = ED25519_ALGORITHM): Uint8Array {
  checkName(name);
  checkLength(publicKey, ED25519_PUBLIC_KEY_SIZE, 'Ed25519 public key');
  return sha256(concatBytes(utf8(name), new Uint8Array([0x0a, algorithm]), publicKey)).slice(0, KEY_ID_SIZE);
}

export interface VerifierKey {
  name: string;
  keyId: Uint8Array;
  publicKey: Uint8Array;
}

export interface SignerKey extends VerifierKey {
  seed: Uint8Array;
}

/** `name+hex(keyid)+base64(0x01 || public key)`, the form in which a log or gateway key is published. */
export function formatVerifierKey(name: string, publicKey: Uint8Array, algorithm: number = ED25519_ALGORITHM): string {
  const keyId = ed25519KeyId(name, publicKey, algorithm);
  return `${name}+${toHex(keyId)}+${toBase64(concatBytes(new Uint8Array([algorithm]), publicKey))}`;
}

/** Parses a verifier key whose type byte is `algorithm` (0x01, a note key, unless given). */
export function parseVerifierKey(text: string, algorithm: number = ED25519_ALGORITHM): VerifierKey {
  const { name, keyId, key } = splitKey(text, 'verifier key');
  const publicKey = keyBytes(key, ED25519_PUBLIC_KEY_SIZE, 'verifier key', algorithm);
  if (toHex(ed25519KeyId(name, publicKey, algorithm)) !== toHex(keyId)) {
    throw new TrustError('bad-key', `verifier key "${name}": key id ${toHex(keyId)} does not match the key`, { name });
  }
  return { name, keyId, publicKey };
}

/** `PRIVATE+KEY+name+hex(keyid)+base64(0x01 || seed)`, the signed-note form of a signing key. Keep it secret. */
export function formatSignerKey(name: string, seed: Uint8Array, algorithm: number = ED25519_ALGORITHM): string {
  const keyId = ed25519KeyId(name, publicKeyFromSeed(seed), algorithm);
  return `${SIGNER_KEY_PREFIX}${name}+${toHex(keyId)}+${toBase64(concatBytes(new Uint8Array([algorithm]), seed))}`;
}

/** Parses a signer key whose type byte is `algorithm` (0x01, a note key, unless given). */
export function parseSignerKey(text: string, algorithm: number = ED25519_ALGORITHM): SignerKey {
  if (!text.startsWith(SIGNER_KEY_PREFIX)) throw new TrustError('bad-key', `a signer key starts with ${SIGNER_KEY_PREFIX}`);
  const { name, keyId, key } = splitKey(text.slice(SIGNER_KEY_PREFIX.length), 'signer key');
  const seed = keyBytes(key, ED25519_SEED_SIZE, 'signer key', algorithm);
  const publicKey = publicKeyFromSeed(seed);
  if (toHex(ed25519KeyId(name, publicKey, algorithm)) !== toHex(keyId)) {
    // the message names the key but never shows any of its bytes
    throw new TrustError('bad-key', `signer key "${name}": key id ${toHex(keyId)} does not match the key`, { name });
  }
  return { name, keyId, publicKey, seed };
}

function splitKey(text: string, what: string): { name: string; keyId: Uint8Array; key: string } {
  // The base64 key may itself contain "+", so only the first two separate fields.
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw new TrustError('bad-key', `a ${what} has the form name+keyid+key`);
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const key = text.slice(second + 1);
  if (!isValidKeyName(name)) throw new TrustError('bad-key', `${what}: "${name}" is not a valid key name`);
  if (!/^[0-9a-f]{8}$/.test(id)) throw new TrustError('bad-key', `${what} "${name}": key id "${id}" is not 8 lower-case hex digits`, { name });
  return { name, keyId: fromHex(id), key };
}

function keyBytes(base64: string, size: number, what: string, algorithm: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(base64);
  } catch {
    throw new TrustError('bad-key', `${what}: the key is not base64`);
  }
  if (bytes.length !== size + 1 || bytes[0] !== algorithm) {
    const type = algorithm.toString(16).padStart(2, '0');
    throw new TrustError('bad-key', `${what}: not an Ed25519 key of this kind (type byte 0x${type} and ${size} bytes)`);
  }
  return bytes.slice(1);
}

function checkName(name: string): void {
  if (!isValidKeyName(name)) throw new TrustError('bad-key', `"${name}" is not a valid key name (non-empty, no spaces, no "+")`);
}

function checkLength(bytes: Uint8Array, size: number, what: string): void {
  if (bytes.length !== size) throw new TrustError('bad-length', `${what} has ${bytes.length} bytes, not ${size}`, { what });
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function wellFormed(text: string): boolean {
  try {
    utf8(text);
    return true;
  } catch {
    return false;
  }
}
