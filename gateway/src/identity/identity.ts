// The gateway's signing identity: an Ed25519 key pair created once by `labtrace gateway init`. The
// private key stays in the gateway's data directory (mode 0600, C2SP signer-key form); the public key
// (verifier-key form, name+keyid+base64) is what the lab registers on the server at enrollment.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatSignerKey, formatVerifierKey, LabtraceError, parseSignerKey, publicKeyFromSeed, type SignerKey } from '@labtrace/protocols';

export const KEY_FILE = 'gateway.key';
export const PUBLIC_KEY_FILE = 'gateway.pub';

export interface CreatedIdentity {
  keyFile: string;
  verifierKey: string;
}

/** Creates the key pair; refuses to replace an existing key unless `force` (a new key is a rotation). */
export function createIdentity(gatewayId: string, dataDir: string, force = false): CreatedIdentity {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(dataDir, KEY_FILE);
  if (existsSync(keyFile) && !force) {
    throw new LabtraceError(
      'E_CONFIG',
      `${keyFile} already exists: this gateway has a key. Replacing it is a key rotation; use --force only if the old key is lost`,
    );
  }
  const seed = new Uint8Array(randomBytes(32));
  const verifierKey = formatVerifierKey(gatewayId, publicKeyFromSeed(seed));
  // 'wx' unless forced: never follow a file that appeared in between
  writeFileSync(keyFile, `${formatSignerKey(gatewayId, seed)}\n`, { mode: 0o600, flag: force ? 'w' : 'wx' });
  writeFileSync(path.join(dataDir, PUBLIC_KEY_FILE), `${verifierKey}\n`, { mode: 0o644 });
  seed.fill(0);
  return { keyFile, verifierKey };
}

/** Loads the signing key, refusing a key file that others may read. */
export function loadIdentity(dataDir: string): SignerKey {
  const keyFile = path.join(dataDir, KEY_FILE);
  let mode: number;
  try {
    mode = statSync(keyFile).mode & 0o777;
  } catch {
    throw new LabtraceError('E_CONFIG', `${keyFile}: no gateway key; run 'labtrace gateway init' first`);
  }
  if ((mode & 0o077) !== 0)
    throw new LabtraceError('E_CONFIG', `${keyFile}: mode ${mode.toString(8)} lets others read the private key; chmod 600 it`);
  try {
    return parseSignerKey(readFileSync(keyFile, 'utf8').trim());
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${keyFile}: not a gateway signer key (${(err as Error).message})`, { cause: err });
  }
}
