// The gateway's signing identity: an Ed25519 key pair created once by `labtrace gateway init`. The
// private key stays in the gateway's data directory (mode 0600, C2SP signer-key form); the public key
// (verifier-key form, name+keyid+base64) is what the lab registers on the server at enrollment.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
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

/**
 * The gateway's current signing key, re-read when the key file changes (a rotation by
 * `labtrace gateway rotate-key` while the gateway runs); checked at most once a second.
 */
export class KeyHolder {
  private key: SignerKey;
  private stamp: string;
  private checkedAt = 0;

  constructor(private readonly dataDir: string) {
    this.key = loadIdentity(dataDir);
    this.stamp = this.fileStamp();
  }

  private fileStamp(): string {
    const s = statSync(path.join(this.dataDir, KEY_FILE));
    return `${s.ino}/${s.mtimeMs}/${s.size}`;
  }

  current(now = Date.now()): SignerKey {
    if (now - this.checkedAt < 1000) return this.key;
    this.checkedAt = now;
    try {
      const stamp = this.fileStamp();
      if (stamp !== this.stamp) {
        this.key = loadIdentity(this.dataDir);
        this.stamp = stamp;
      }
    } catch {
      // a key file being replaced: keep signing with the key in memory until the new one is readable
    }
    return this.key;
  }
}

/** Replaces the key file atomically (a rotation); the old key is kept beside it, named by its key id. */
export function installNewKey(dataDir: string, gatewayId: string, seed: Uint8Array, oldKeyIdHex: string): string {
  const keyFile = path.join(dataDir, KEY_FILE);
  const retired = path.join(dataDir, `${KEY_FILE}.${oldKeyIdHex}.retired`);
  writeFileSync(retired, readFileSync(keyFile), { mode: 0o600 });
  const tmp = `${keyFile}.tmp`;
  writeFileSync(tmp, `${formatSignerKey(gatewayId, seed)}\n`, { mode: 0o600 });
  renameSync(tmp, keyFile);
  const verifierKey = formatVerifierKey(gatewayId, publicKeyFromSeed(seed));
  writeFileSync(path.join(dataDir, PUBLIC_KEY_FILE), `${verifierKey}\n`, { mode: 0o644 });
  return verifierKey;
}
