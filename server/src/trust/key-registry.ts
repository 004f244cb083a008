// The gateways' public keys and their validity. A key is registered at enrollment (or from the
// server config), retired by a rotation that the old key signs (it stays valid for batches up to the
// rotation, plus a grace period for batches signed while the gateway switched), or revoked from a
// given time (batches whose records reach that time are refused). Read on every batch, so kept in memory.
import {
  rotationBytes,
  type RotationStatement,
  ed25519KeyId,
  formatVerifierKey,
  fromBase64,
  LabtraceError,
  parseVerifierKey,
  toHex,
  verifyEd25519,
  type VerifierKey,
} from '@labtrace/protocols';
import type { Statement } from 'better-sqlite3';
import type { LabDatabase } from '../store/database.js';
import type { SecurityEvents } from './security-events.js';

/** how long after a rotation batches signed with the old key are still accepted */
export const ROTATION_GRACE_MS = 5 * 60_000;

export type KeyStatus = 'active' | 'retired' | 'revoked';

export interface GatewayKey {
  gateway: string;
  keyId: string;
  verifierKey: string;
  status: KeyStatus;
  registeredAt: number;
  /** batches whose latest record is at or after this time are refused (null: no limit) */
  validUntil: number | null;
  reason: string | null;
  replacedBy: string | null;
  key: VerifierKey;
}

interface Row {
  gateway: string;
  key_id: string;
  verifier_key: string;
  status: KeyStatus;
  registered_at: number;
  valid_until: number | null;
  reason: string | null;
  replaced_by: string | null;
}

export type { RotationStatement } from '@labtrace/protocols';

export class KeyRegistry {
  private readonly keys = new Map<string, GatewayKey>();
  private dataVersion: Statement | undefined;
  private seenVersion = -1;

  constructor(
    private readonly database: LabDatabase,
    private readonly events: SecurityEvents,
  ) {}

  /** Loads the keys; registers the ones of the server config not yet known. */
  open(configured: { id: string; key: string }[] = [], now = Date.now()): void {
    const insert = this.database.sqlite.prepare(
      "INSERT OR IGNORE INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)",
    );
    for (const g of configured) {
      const key = parseVerifierKey(g.key);
      insert.run(g.id, toHex(key.keyId), g.key, now);
    }
    this.reload();
  }

  /** Reloads when another connection (the admin command line) changed the database. */
  private fresh(): void {
    this.dataVersion ??= this.database.sqlite.prepare('PRAGMA data_version').pluck();
    const version = this.dataVersion.get() as number;
    if (version !== this.seenVersion) {
      this.seenVersion = version;
      this.reload();
    }
  }

  private reload(): void {
    this.keys.clear();
    for (const row of this.database.sqlite.prepare('SELECT * FROM gateway_keys').all() as Row[]) {
      this.keys.set(`${row.gateway}/${row.key_id}`, {
        gateway: row.gateway,
        keyId: row.key_id,
        verifierKey: row.verifier_key,
        status: row.status,
        registeredAt: row.registered_at,
        validUntil: row.valid_until,
        reason: row.reason,
        replacedBy: row.replaced_by,
        key: parseVerifierKey(row.verifier_key),
      });
    }
  }

  private must(gateway: string, keyId: string): GatewayKey {
    const key = this.get(gateway, keyId);
    if (!key) throw new LabtraceError('E_STORE', `key ${keyId} of ${gateway} is not in the store after it was written`);
    return key;
  }

  get(gateway: string, keyId: string): GatewayKey | undefined {
    this.fresh();
    return this.keys.get(`${gateway}/${keyId}`);
  }

  list(gateway?: string): GatewayKey[] {
    this.fresh();
    return [...this.keys.values()].filter((k) => gateway === undefined || k.gateway === gateway).sort((a, b) => a.registeredAt - b.registeredAt);
  }

  activeKey(gateway: string): GatewayKey | undefined {
    return this.list(gateway).find((k) => k.status === 'active');
  }

  /**
   * Registers a gateway's key (enrollment). The key's name must be the gateway id. Any key the
   * gateway had before is retired now: a re-enrolled gateway signs only with its new key.
   */
  register(gateway: string, verifierKey: string, now = Date.now()): GatewayKey {
    const key = parseVerifierKey(verifierKey);
    if (key.name !== gateway) throw new LabtraceError('E_BAD_REQUEST', `key: named "${key.name}", expected the gateway id "${gateway}"`);
    const keyId = toHex(key.keyId);
    const existing = this.get(gateway, keyId);
    if (existing?.status === 'revoked')
      throw new LabtraceError('E_FORBIDDEN', `key ${keyId} of ${gateway} was revoked and cannot be registered again`);
    this.database.sqlite.transaction(() => {
      this.database.sqlite
        .prepare(
          "UPDATE gateway_keys SET status = 'retired', valid_until = ?, replaced_by = ? WHERE gateway = ? AND status = 'active' AND key_id <> ?",
        )
        .run(now, keyId, gateway, keyId);
      this.database.sqlite
        .prepare(
          "INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?) ON CONFLICT DO UPDATE SET status = 'active', valid_until = NULL",
        )
        .run(gateway, keyId, formatVerifierKey(key.name, key.publicKey), now);
    })();
    this.reload();
    return this.must(gateway, keyId);
  }

  /**
   * Rotates a gateway's key: the statement names the new key and is signed by the old (active) key
   * and by the new one (which proves the gateway holds it). The old key is retired from now.
   */
  rotate(statement: RotationStatement, oldSignature: string, newSignature: string, now = Date.now()): GatewayKey {
    const old = this.get(statement.gateway, statement.oldKeyId);
    if (old?.status !== 'active')
      throw new LabtraceError('E_FORBIDDEN', `oldKeyId: ${statement.oldKeyId} is not an active key of gateway ${statement.gateway}`);
    const next = parseVerifierKey(statement.newKey);
    if (next.name !== statement.gateway) throw new LabtraceError('E_BAD_REQUEST', `newKey: named "${next.name}", expected "${statement.gateway}"`);
    const message = rotationBytes(statement);
    if (!verifyEd25519(fromBase64(oldSignature), message, old.key.publicKey))
      throw new LabtraceError('E_FORBIDDEN', 'oldSignature: not a signature of the statement by the old key');
    if (!verifyEd25519(fromBase64(newSignature), message, next.publicKey))
      throw new LabtraceError('E_FORBIDDEN', 'newSignature: not a signature of the statement by the new key');
    if (Math.abs(statement.at - now) > 10 * 60_000)
      throw new LabtraceError('E_BAD_REQUEST', 'at: the statement is more than 10 minutes from the server clock');
    const newKeyId = toHex(ed25519KeyId(next.name, next.publicKey));
    if (this.get(statement.gateway, newKeyId)) throw new LabtraceError('E_CONFLICT', `newKey: ${newKeyId} is already registered`);
    this.database.sqlite.transaction(() => {
      this.database.sqlite
        .prepare("UPDATE gateway_keys SET status = 'retired', valid_until = ?, replaced_by = ?, reason = 'rotated' WHERE gateway = ? AND key_id = ?")
        .run(now + ROTATION_GRACE_MS, newKeyId, statement.gateway, statement.oldKeyId);
      this.database.sqlite
        .prepare("INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)")
        .run(statement.gateway, newKeyId, statement.newKey, now);
      this.events.record(statement.gateway, 'key-rotated', 'notice', `key ${statement.oldKeyId} replaced by ${newKeyId}`, null, now);
    })();
    this.reload();
    return this.must(statement.gateway, newKeyId);
  }

  /** Revokes a key from `from` (ms): batches whose records reach that time are refused from now on. */
  revoke(gateway: string, keyId: string, from: number, reason: string, now = Date.now()): GatewayKey {
    const key = this.get(gateway, keyId);
    if (!key) throw new LabtraceError('E_NOT_FOUND', `gateway ${gateway} has no key ${keyId}`);
    const until = key.validUntil === null ? from : Math.min(key.validUntil, from);
    this.database.sqlite.transaction(() => {
      this.database.sqlite
        .prepare("UPDATE gateway_keys SET status = 'revoked', valid_until = ?, reason = ? WHERE gateway = ? AND key_id = ?")
        .run(until, reason, gateway, keyId);
      this.events.record(gateway, 'key-revoked', 'alarm', `key ${keyId} revoked from ${new Date(until).toISOString()}: ${reason}`, null, now);
    })();
    this.reload();
    return this.must(gateway, keyId);
  }
}
