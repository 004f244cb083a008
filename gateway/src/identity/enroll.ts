// Talking to the server about the gateway's identity: enrollment with a one-time token (the server
// registers the public key and hands out broker credentials) and key rotation (the new key announced
// in a statement signed by the old key and the new one).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  enrollmentProofBytes,
  formatVerifierKey,
  LabtraceError,
  publicKeyFromSeed,
  rotationBytes,
  signEd25519,
  toBase64,
  toHex,
  type RotationStatement,
} from '@labtrace/protocols';
import { installNewKey, loadIdentity } from './identity.js';

async function post(url: string, body: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `cannot reach ${new URL(url).origin}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const reason = (parsed as { error?: string } | undefined)?.error ?? text.slice(0, 200);
    throw new LabtraceError(res.status === 401 || res.status === 403 ? 'E_AUTH' : 'E_CONFIG', `the server refused (${res.status}): ${reason}`);
  }
  return parsed;
}

function serverUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LabtraceError('E_CONFIG', `--server: "${text}" is not a URL such as https://lab.example:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new LabtraceError('E_CONFIG', `--server: expected http:// or https://, got ${url.protocol}`);
  return url.origin;
}

export interface EnrollOutcome {
  keyId: string;
  username: string;
  passwordFile: string;
}

/**
 * Enrolls with a token: proves possession of the gateway's key, and writes the broker password the
 * server returns to `passwordFile` (mode 0600). The key must exist (`labtrace gateway init`).
 */
export async function enroll(options: {
  server: string;
  token: string;
  gateway: string;
  dataDir: string;
  passwordFile: string;
}): Promise<EnrollOutcome> {
  const key = loadIdentity(options.dataDir);
  const verifierKey = formatVerifierKey(options.gateway, publicKeyFromSeed(key.seed));
  const request = { token: options.token, gateway: options.gateway, key: verifierKey };
  const proof = toBase64(signEd25519(enrollmentProofBytes(request), key.seed));
  const result = (await post(`${serverUrl(options.server)}/api/enroll`, { ...request, proof })) as {
    keyId?: string;
    mqtt?: { username?: string; password?: string };
  };
  const username = result.mqtt?.username;
  const password = result.mqtt?.password;
  if (typeof username !== 'string' || typeof password !== 'string' || typeof result.keyId !== 'string')
    throw new LabtraceError('E_CONFIG', 'the server answered the enrollment without credentials');
  mkdirSync(path.dirname(options.passwordFile), { recursive: true });
  writeFileSync(options.passwordFile, `${password}\n`, { mode: 0o600 });
  return { keyId: result.keyId, username, passwordFile: options.passwordFile };
}

/**
 * Rotates the gateway's key: a new key pair, a statement signed by the old and the new key, sent to
 * the server; only when the server has registered the new key is it installed (the old one is kept
 * as gateway.key.<key id>.retired). A running gateway picks the new key up within a second.
 */
export async function rotateKey(options: { server: string; gateway: string; dataDir: string }): Promise<{ oldKeyId: string; newKeyId: string }> {
  const old = loadIdentity(options.dataDir);
  const seed = new Uint8Array(randomBytes(32));
  const statement: RotationStatement = {
    v: 1,
    purpose: 'labtrace-key-rotation',
    gateway: options.gateway,
    oldKeyId: toHex(old.keyId),
    newKey: formatVerifierKey(options.gateway, publicKeyFromSeed(seed)),
    at: Date.now(),
  };
  const message = rotationBytes(statement);
  const result = (await post(`${serverUrl(options.server)}/api/gateways/${encodeURIComponent(options.gateway)}/keys/rotate`, {
    statement,
    oldSignature: toBase64(signEd25519(message, old.seed)),
    newSignature: toBase64(signEd25519(message, seed)),
  })) as { keyId?: string };
  installNewKey(options.dataDir, options.gateway, seed, statement.oldKeyId);
  seed.fill(0);
  return { oldKeyId: statement.oldKeyId, newKeyId: result.keyId ?? '' };
}
