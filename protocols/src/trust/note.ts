// C2SP signed-note: a text, a blank line, then one line per signature, `— <key name> base64(keyid || signature)`.
// Verifiers ignore signatures by keys they do not know, but a known key with a bad signature fails the note.
import { bytesEqual, concatBytes, fromBase64, fromUtf8, hasLoneSurrogate, toBase64, toHex, utf8 } from './bytes.js';
import {
  KEY_ID_SIZE,
  isValidKeyName,
  parseSignerKey,
  parseVerifierKey,
  signEd25519,
  verifyEd25519,
  type SignerKey,
  type VerifierKey,
} from './ed25519.js';
import { TrustError } from './errors.js';

/** The line prefix of a signature: an em dash (U+2014) and a space. */
export const SIGNATURE_PREFIX = '\u2014 ';
/** Beyond this a note is refused rather than parsed, as Go's sumdb/note does. */
export const MAX_NOTE_SIGNATURES = 100;

export interface NoteSigner {
  readonly name: string;
  readonly keyId: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Uint8Array;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  /** The signature without the key id. */
  signature: Uint8Array;
}

export interface Note {
  text: string;
  signatures: NoteSignature[];
}

export interface OpenedNote {
  text: string;
  /** Signatures by known keys, each checked. */
  verified: NoteSignature[];
  /** Signatures by keys the caller did not pass, not checked. */
  unverified: NoteSignature[];
}

/** A signer from a signer key or its `PRIVATE+KEY+...` text. */
export function ed25519NoteSigner(key: SignerKey | string): NoteSigner {
  const k = typeof key === 'string' ? parseSignerKey(key) : key;
  return { name: k.name, keyId: k.keyId, sign: (message) => signEd25519(message, k.seed) };
}

/** A verifier from a verifier key or its `name+keyid+base64` text. */
export function ed25519NoteVerifier(key: VerifierKey | string): NoteVerifier {
  const k = typeof key === 'string' ? parseVerifierKey(key) : key;
  return { name: k.name, keyId: k.keyId, verify: (message, signature) => verifyEd25519(signature, message, k.publicKey) };
}

/** Signs `text` (non-empty, ending in a newline) with every signer and returns the signed note. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  if (signers.length === 0) throw new TrustError('bad-note', 'a signed note needs at least one signer');
  const message = utf8(text);
  const signatures = signers.map((s): NoteSignature => {
    if (!isValidKeyName(s.name)) throw new TrustError('bad-key', `"${s.name}" is not a valid key name`);
    if (s.keyId.length !== KEY_ID_SIZE) throw new TrustError('bad-key', `signer "${s.name}" has a key id of ${s.keyId.length} bytes`);
    return { name: s.name, keyId: s.keyId, signature: s.sign(message) };
  });
  return formatNote({ text, signatures });
}

export function formatNote(note: Note): string {
  checkText(note.text);
  const lines = note.signatures.map((s) => `${SIGNATURE_PREFIX}${s.name} ${toBase64(concatBytes(s.keyId, s.signature))}\n`);
  return `${note.text}\n${lines.join('')}`;
}

/** Splits a signed note into its text and signature lines without checking any signature. */
export function parseNote(message: string | Uint8Array): Note {
  const whole = typeof message === 'string' ? message : fromUtf8(message);
  if (hasLoneSurrogate(whole)) throw malformed('the note is not valid text');
  for (let i = 0; i < whole.length; i++) {
    const c = whole.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw malformed(`control character 0x${c.toString(16).padStart(2, '0')} at offset ${i}`);
  }
  const split = whole.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = whole.slice(0, split + 1);
  const block = whole.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) throw malformed('the signature lines must be present and end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`more than ${MAX_NOTE_SIGNATURES} signature lines`);
  const signatures = lines.map((line, i): NoteSignature => {
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed(`${where} does not start with "${SIGNATURE_PREFIX}"`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) throw malformed(`${where} has no space between key name and signature`);
    const name = rest.slice(0, space);
    if (!isValidKeyName(name)) throw malformed(`${where}: "${name}" is not a valid key name`);
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(rest.slice(space + 1));
    } catch {
      throw malformed(`${where}: the signature is not standard base64`);
    }
    if (bytes.length <= KEY_ID_SIZE) throw malformed(`${where}: the signature is shorter than a key id`);
    return { name, keyId: bytes.slice(0, KEY_ID_SIZE), signature: bytes.slice(KEY_ID_SIZE) };
  });
  return { text, signatures };
}

/**
 * Parses a signed note and checks every signature by a key in `verifiers` (matched by name and key id). Throws
 * E_AUTH when a known key's signature is bad or when no known key signed; signatures by other keys are returned
 * unchecked in `unverified`.
 */
export function openNote(message: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const note = parseNote(message);
  const signed = utf8(note.text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const s of note.signatures) {
    const id = `${s.name} ${toHex(s.keyId)}`;
    const verifier = verifiers.find((v) => v.name === s.name && bytesEqual(v.keyId, s.keyId));
    if (verifier === undefined) {
      unverified.push(s);
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    if (!verifier.verify(signed, s.signature)) {
      throw new TrustError('signature-invalid', `signature by ${s.name} (key id ${toHex(s.keyId)}) does not verify`, {
        name: s.name,
        keyId: toHex(s.keyId),
      });
    }
    verified.push(s);
  }
  if (verified.length === 0) {
    const known = verifiers.map((v) => `${v.name}+${toHex(v.keyId)}`).join(', ');
    throw new TrustError('no-known-signature', `the note is not signed by any known key (${known === '' ? 'none given' : known})`, {
      signers: note.signatures.map((s) => `${s.name}+${toHex(s.keyId)}`),
    });
  }
  return { text: note.text, verified, unverified };
}

function checkText(text: string): void {
  if (text === '' || !text.endsWith('\n')) throw malformed('the note text must be non-empty and end with a newline');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw malformed(`control character 0x${c.toString(16).padStart(2, '0')} in the note text`);
  }
  if (hasLoneSurrogate(text)) throw malformed('the note text is not valid text');
}

function malformed(problem: string): TrustError {
  return new TrustError('bad-note', `malformed signed note: ${problem}`);
}
