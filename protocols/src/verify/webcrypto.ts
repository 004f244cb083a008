// The bundle verifier with the platform's own Ed25519 (WebCrypto) where there is one: in a browser, a bundle of a
// one-hour run holds some 18,000 signed batches, and the pure-JavaScript verification of that many signatures takes
// a minute where the browser's native one takes about a second. WebCrypto is asynchronous and the verifier is not, so:
//   1. the verifier runs once with a recording Ed25519 check that answers "valid" and keeps every (signature,
//      message, key) it was asked about; the keys named in keys.json (the log's and the gateways') are imported
//      beforehand, so that each check with one of them starts at once, on the browser's crypto thread, while the
//      verifier goes on hashing on its own (two cores at work); a check with any other key starts after the run;
//   2. all of them are awaited;
//   3. when every one is valid, the first run's report is the report (the verifier got the true answers); otherwise
//      the verifier runs again, answered from those results (and by the pure-JavaScript check for any call the
//      first run did not make), so a report with a bad signature is exactly the one the synchronous verifier gives.
// Like `labtrace verify` with Node's crypto (OpenSSL), the check is the platform's RFC 8032 verification.
import { ed25519 } from '@noble/curves/ed25519.js';
import { toBase64 } from '../trust/bytes.js';
import { parseVerifierKey, useEd25519Verifier } from '../trust/ed25519.js';
import { verifyBundle, type BundleFiles, type VerifyOptions, type VerifyReport } from './verifier.js';

/** the part of WebCrypto's SubtleEd25519 used here (the package is built without the DOM's types) */
export interface SubtleEd25519 {
  importKey(format: 'raw', keyData: Uint8Array, algorithm: { name: 'Ed25519' }, extractable: false, usages: ['verify']): Promise<unknown>;
  verify(algorithm: { name: 'Ed25519' }, key: unknown, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
}

type Verify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

/** the protocols package's default check (RFC 8032, no ZIP-215 leniency) */
const pureJs: Verify = (signature, message, publicKey) => ed25519.verify(signature, message, publicKey, { zip215: false });

/** RFC 8032 test 1's public key: importing it says whether the platform has Ed25519 */
const PROBE = new Uint8Array('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

async function hasEd25519(subtle: SubtleEd25519): Promise<boolean> {
  try {
    await subtle.importKey('raw', PROBE, { name: 'Ed25519' }, false, ['verify']);
    return true;
  } catch {
    return false;
  }
}

const callId = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): string =>
  `${toBase64(publicKey)} ${toBase64(signature)} ${toBase64(message)}`;

interface Call {
  signature: Uint8Array;
  message: Uint8Array;
  publicKey: Uint8Array;
}

/** a check's answer: an unusable key or signature is invalid */
const settled = (p: Promise<boolean>): Promise<boolean> => p.catch(() => false);

/** Checks signatures with crypto.subtle, a slice at a time (keys imported once each). */
async function verifyAll(subtle: SubtleEd25519, calls: Call[], keys: Map<string, Promise<unknown>>): Promise<boolean[]> {
  const keyOf = (raw: Uint8Array): Promise<unknown> => {
    const id = toBase64(raw);
    let key = keys.get(id);
    if (key === undefined) {
      key = subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
      keys.set(id, key);
    }
    return key;
  };
  const out: boolean[] = [];
  const SLICE = 2000;
  for (let i = 0; i < calls.length; i += SLICE) {
    const slice = calls.slice(i, i + SLICE);
    out.push(
      ...(await Promise.all(
        slice.map(async (c) => settled(keyOf(c.publicKey).then((key) => subtle.verify({ name: 'Ed25519' }, key, c.signature, c.message)))),
      )),
    );
  }
  return out;
}

/** the raw public keys keys.json names (the log's, the gateways'), read leniently: the verifier judges the file */
function namedKeys(keysJson: string, logKey: string | undefined): Uint8Array[] {
  const texts: unknown[] = [logKey];
  try {
    const keys = JSON.parse(keysJson) as { log?: { verifierKey?: unknown }; gateways?: { verifierKey?: unknown }[] };
    texts.push(keys.log?.verifierKey);
    if (Array.isArray(keys.gateways)) for (const g of keys.gateways) texts.push(g?.verifierKey);
  } catch {
    // an unreadable keys.json: the verifier reports it
  }
  const out: Uint8Array[] = [];
  for (const text of texts) {
    if (typeof text !== 'string') continue;
    try {
      out.push(parseVerifierKey(text).publicKey);
    } catch {
      // a bad key: the verifier reports it
    }
  }
  return out;
}

/**
 * verifyBundle, with the signatures checked by crypto.subtle when the platform has Ed25519 (else as verifyBundle
 * does). The report is the one verifyBundle gives. Not re-entrant: it installs the package's Ed25519 check while it
 * runs (a worker verifies one bundle at a time).
 */
export async function verifyBundleWithWebCrypto(
  files: BundleFiles,
  options: VerifyOptions = {},
  subtle: SubtleEd25519 | undefined = (globalThis as { crypto?: { subtle?: SubtleEd25519 } }).crypto?.subtle,
): Promise<VerifyReport> {
  if (subtle === undefined || !(await hasEd25519(subtle))) {
    useEd25519Verifier(pureJs);
    return verifyBundle(files, options);
  }
  // the named keys, imported before the run: a check with one of them starts as soon as the verifier asks for it
  const keys = new Map<string, Promise<unknown>>();
  const ready = new Map<string, unknown>();
  for (const raw of namedKeys(files.keys, options.logKey)) {
    const id = toBase64(raw);
    if (keys.has(id)) continue;
    const key = subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    keys.set(id, key);
    try {
      ready.set(id, await key);
    } catch {
      // unusable here: its checks wait for the end of the run and fail there
    }
  }
  const calls: Call[] = [];
  const started: (Promise<boolean> | undefined)[] = [];
  let first: VerifyReport;
  try {
    useEd25519Verifier((signature, message, publicKey) => {
      const key = ready.get(toBase64(publicKey));
      // crypto.subtle copies what it is given when called: the verifier may reuse its buffers
      started.push(key === undefined ? undefined : settled(subtle.verify({ name: 'Ed25519' }, key, signature, message)));
      calls.push({ signature: signature.slice(), message: message.slice(), publicKey: publicKey.slice() });
      return true;
    });
    first = verifyBundle(files, options);
  } finally {
    useEd25519Verifier(pureJs);
  }
  const later = calls.filter((_, i) => started[i] === undefined);
  const laterValid = await verifyAll(subtle, later, keys);
  const startedValid = await Promise.all(started.map((p) => p ?? Promise.resolve(true)));
  let next = 0;
  const valid = startedValid.map((v, i) => (started[i] === undefined ? (laterValid[next++] ?? false) : v));
  if (valid.every(Boolean)) return first;
  const answers = new Map<string, boolean>();
  calls.forEach((c, i) => answers.set(callId(c.signature, c.message, c.publicKey), valid[i] ?? false));
  try {
    useEd25519Verifier(
      (signature, message, publicKey) => answers.get(callId(signature, message, publicKey)) ?? pureJs(signature, message, publicKey),
    );
    return verifyBundle(files, options);
  } finally {
    useEd25519Verifier(pureJs);
  }
}
