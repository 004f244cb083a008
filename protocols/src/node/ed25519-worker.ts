// A worker thread of parallel-ed25519.ts: checks Ed25519 signatures with Node's crypto (OpenSSL's RFC 8032
// verification, as useNodeCrypto installs it). Two requests:
//   check   a slice of (signature, message, key): one byte per signature back (1 valid, 0 not);
//   ahead   the text of a bundle: its share of the batch headers and signatures found in it, each header made
//           canonical and checked under the key named for its gateway and key id, ahead of the verifier. What it
//           finds is only a guess at what the verifier will ask (an answer counts only for the very same signature,
//           message and key bytes), so it reads the text loosely.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { toHex } from '../trust/bytes.js';
import { parseVerifierKey } from '../trust/ed25519.js';
import { canonicalBytes } from '../trust/jcs.js';
import type { AheadRequest, SignatureSlice } from './parallel-ed25519.js';

// SubjectPublicKeyInfo prefix of a raw 32-byte Ed25519 public key (RFC 8410)
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map<string, KeyObject>();

function keyOf(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  let key = keys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
    if (keys.size > 10_000) keys.clear();
    keys.set(id, key);
  }
  return key;
}

function valid(message: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, message, keyOf(publicKey), signature);
  } catch {
    // a key or signature Node cannot read: not a valid signature
    return false;
  }
}

function check(slice: SignatureSlice): Uint8Array {
  const { signatures, publicKeys, messages, ends } = slice;
  const count = ends.length - 1;
  const answers = new Uint8Array(count);
  for (let i = 0; i < count; i++)
    answers[i] = valid(messages.subarray(ends[i], ends[i + 1]), publicKeys.subarray(32 * i, 32 * i + 32), signatures.subarray(64 * i, 64 * i + 64))
      ? 1
      : 0;
  return answers;
}

const VERIFIER_KEY = /"verifierKey":"([^"\\]+)"/g;
const HEADER = /"header":(\{[^{}]*\}),"signature":"([A-Za-z0-9+/]{86}==)"/g;

/** The headers and signatures in this worker's share of the text ([from, to) of its characters), checked. */
function ahead(request: AheadRequest): SignatureSlice & { valid: Uint8Array } {
  const { bytes, from, to } = request;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const named = new Map<string, Uint8Array>();
  for (const m of text.matchAll(VERIFIER_KEY)) {
    try {
      const key = parseVerifierKey(m[1] ?? '');
      named.set(`${key.name} ${toHex(key.keyId)}`, key.publicKey);
    } catch {
      // not a key: the verifier says so
    }
  }
  const signatures: Uint8Array[] = [];
  const publicKeys: Uint8Array[] = [];
  const messages: Uint8Array[] = [];
  const answers: number[] = [];
  const re = new RegExp(HEADER.source, 'g');
  re.lastIndex = from;
  for (let m = re.exec(text); m !== null && m.index < to; m = re.exec(text)) {
    try {
      const header = JSON.parse(m[1] ?? '') as { gateway?: unknown; keyId?: unknown };
      const publicKey = named.get(`${String(header.gateway)} ${String(header.keyId)}`);
      if (publicKey === undefined) continue;
      const message = canonicalBytes(header);
      const signature = Buffer.from(m[2] ?? '', 'base64');
      if (signature.length !== 64) continue;
      signatures.push(signature);
      publicKeys.push(publicKey);
      messages.push(message);
      answers.push(valid(message, publicKey, signature) ? 1 : 0);
    } catch {
      // not a header: the verifier says so
    }
  }
  const out = {
    id: request.id,
    signatures: new Uint8Array(64 * signatures.length),
    publicKeys: new Uint8Array(32 * publicKeys.length),
    messages: new Uint8Array(messages.reduce((n, m) => n + m.length, 0)),
    ends: new Uint32Array(messages.length + 1),
    valid: Uint8Array.from(answers),
  };
  let at = 0;
  messages.forEach((message, i) => {
    out.signatures.set(signatures[i] as Uint8Array, 64 * i);
    out.publicKeys.set(publicKeys[i] as Uint8Array, 32 * i);
    out.messages.set(message, at);
    at += message.length;
    out.ends[i + 1] = at;
  });
  return out;
}

parentPort?.on('message', (request: (SignatureSlice & { kind: 'check' }) | (AheadRequest & { kind: 'ahead' })) => {
  if (request.kind === 'check') {
    const answers = check(request);
    parentPort?.postMessage({ id: request.id, valid: answers }, [answers.buffer as ArrayBuffer]);
  } else {
    const found = ahead(request);
    parentPort?.postMessage({ id: request.id, found }, [
      found.signatures.buffer as ArrayBuffer,
      found.publicKeys.buffer as ArrayBuffer,
      found.messages.buffer as ArrayBuffer,
      found.ends.buffer as ArrayBuffer,
      found.valid.buffer as ArrayBuffer,
    ]);
  }
});
