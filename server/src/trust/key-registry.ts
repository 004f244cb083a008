// The gateways' public keys and their validity. A key is registered at enrollment (or from the server config),
// retired by a rotation that the old key signs, or by a new enrollment of its gateway, or revoked. Validity is judged
// by what the server knows, never by the times a key's holder writes into its batches (docs/trust.md, "Key
// validity"): a revoked key delivers no batch that is not already stored; a rotated key delivers batches that arrive
// (server clock) within ROTATION_GRACE_MS of the rotation and are numbered below the first batch its successor
// delivered. Each change is written as a structured key event (protocols/src/trust/key-event.ts), which enters the
// transparency log once its time has come. Read on every batch, so kept in memory.
import {
  canonicalBytes,
  rotationBytes,
  type RotationStatement,
  ed25519KeyId,
  formatVerifierKey,
  fromBase64,
  KEY_EVENT_TYPE,
  KEY_EVENT_VERSION,
  LabtraceError,
  parseVerifierKey,
  ROTATION_GRACE_MS,
  toHex,
  verifyEd25519,
  type KeyEvent,
  type VerifierKey,
} from '@labtrace/protocols';
import type { Statement } from 'better-sqlite3';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { LabDatabase } from '../store/database.js';
import type { SecurityEvents } from './security-events.js';

export { ROTATION_GRACE_MS } from '@labtrace/protocols';

export type KeyStatus = 'active' | 'retired' | 'revoked';

export interface GatewayKey {
  gateway: string;
  keyId: string;
  verifierKey: string;
  status: KeyStatus;
  registeredAt: number;
  /** batches arriving (server clock) at or after this time are refused unless already stored (null: no limit) */
  validUntil: number | null;
  /** a revoked key: the highest batch number under it that stays valid (null: none, or not revoked) */
  lastValidBatch: number | null;
  /** a rotated key: the gateway's highest stored batch at the rotation (the successor's batches are looked for above it) */
  graceFromBatch: number | null;
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
  last_valid_batch: number | null;
  grace_from_batch: number | null;
  reason: string | null;
  replaced_by: string | null;
}

/** Why a batch under a key is refused: the security event's kind and its text. */
export interface KeyRefusal {
  kind: 'revoked-key' | 'retired-key';
  detail: string;
}

/** a key event's fields but its type and version (each kind of event on its own) */
type EventFields = KeyEvent extends infer E ? (E extends KeyEvent ? Omit<E, 'type' | 'v'> : never) : never;

export type { RotationStatement } from '@labtrace/protocols';

const iso = (ms: number): string => new Date(ms).toISOString();

export class KeyRegistry {
  private readonly keys = new Map<string, GatewayKey>();
  private dataVersion: Statement | undefined;
  private seenVersion = -1;

  constructor(
    private readonly database: LabDatabase,
    private readonly events: SecurityEvents,
  ) {}

  /** Loads the keys; registers the ones of the server config not yet known (a logged key event each). */
  open(configured: { id: string; key: string }[] = [], now = Date.now()): void {
    const insert = this.database.sqlite.prepare(
      "INSERT OR IGNORE INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)",
    );
    this.database.sqlite
      .transaction(() => {
        for (const g of configured) {
          const key = parseVerifierKey(g.key);
          const keyId = toHex(key.keyId);
          if (insert.run(g.id, keyId, g.key, now).changes === 1)
            this.keyEvent({ event: 'registered', gateway: g.id, keyId, at: now, key: g.key, source: 'config' });
        }
      })
      .immediate();
    this.reload();
  }

  /** Writes a structured key event; it enters the transparency log at `logAt` (default: its time). */
  private keyEvent(fields: EventFields, logAt = fields.at): void {
    const record = { type: KEY_EVENT_TYPE, v: KEY_EVENT_VERSION, ...fields };
    this.database.sqlite.prepare('INSERT INTO key_events (at, gateway, record) VALUES (?, ?, ?)').run(logAt, fields.gateway, JSON.stringify(record));
  }

  /**
   * Appends the key events whose time has come and that are not in the log yet (also those written by the admin
   * command line), in order; returns how many.
   */
  logPending(log: TransparencyLog, now = Date.now()): number {
    const db = this.database.sqlite;
    const pending = db.prepare('SELECT id, at, record FROM key_events WHERE log_index IS NULL AND at <= ? ORDER BY at, id').all(now) as {
      id: number;
      at: number;
      record: string;
    }[];
    if (pending.length === 0) return 0;
    const mark = db.prepare('UPDATE key_events SET log_index = ? WHERE id = ?');
    db.transaction(() => {
      for (const e of pending) mark.run(log.append('key-event', [canonicalBytes(JSON.parse(e.record) as KeyEvent)], now), e.id);
    }).immediate();
    return pending.length;
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
        lastValidBatch: row.status === 'revoked' ? row.last_valid_batch : null,
        graceFromBatch: row.grace_from_batch,
        reason: row.reason,
        replacedBy: row.replaced_by,
        key: parseVerifierKey(row.verifier_key),
      });
    }
  }

  /** Reloads the in-memory view of the keys from the store (keys registered, rotated or revoked elsewhere). */
  refresh(): Promise<void> {
    this.reload();
    return Promise.resolve();
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
   * Whether a new batch (one not already stored) numbered `batch`, signed by this key and arriving now (server
   * clock), may be stored; undefined if so. The batch's own times play no part.
   */
  refusal(key: GatewayKey, batch: number, now = Date.now()): KeyRefusal | undefined {
    if (key.status === 'active') return undefined;
    const since = key.validUntil === null ? '' : ` from ${iso(key.validUntil)} (server time)`;
    if (key.status === 'revoked')
      return {
        kind: 'revoked-key',
        detail: `key ${key.keyId} is revoked${since}: no batch under it is accepted unless already stored, whatever times it carries`,
      };
    const replaced = key.replacedBy === null ? '' : `, replaced by ${key.replacedBy}`;
    if (key.validUntil === null || now >= key.validUntil)
      return { kind: 'retired-key', detail: `key ${key.keyId} is retired${since}${replaced}: its grace period is over` };
    const first = this.successorFirstBatch(key);
    if (first !== undefined && batch >= first)
      return {
        kind: 'retired-key',
        detail: `key ${key.keyId} is retired${since}${replaced}: batch ${batch} is not below batch ${first}, the first its successor delivered`,
      };
    return undefined;
  }

  /** The lowest batch number stored under the key that replaced this one, above the gateway's chain at the rotation. */
  private successorFirstBatch(key: GatewayKey): number | undefined {
    if (key.replacedBy === null) return undefined;
    const first = this.database.sqlite
      .prepare("SELECT MIN(batch) FROM batch_headers WHERE gateway = ? AND batch > ? AND json_extract(header, '$.keyId') = ?")
      .pluck()
      .get(key.gateway, key.graceFromBatch ?? -1, key.replacedBy) as number | null;
    return first ?? undefined;
  }

  /** The gateway's highest stored batch number under a key (any key when null) that arrived before `before`. */
  private lastStoredBatch(gateway: string, keyId: string | null, before = Number.MAX_SAFE_INTEGER): number | null {
    return this.database.sqlite
      .prepare("SELECT MAX(batch) FROM batch_headers WHERE gateway = ? AND received_at < ? AND (? IS NULL OR json_extract(header, '$.keyId') = ?)")
      .pluck()
      .get(gateway, before, keyId, keyId) as number | null;
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
    const text = formatVerifierKey(key.name, key.publicKey);
    this.database.sqlite
      .transaction(() => {
        for (const other of this.list(gateway))
          if (other.status === 'active' && other.keyId !== keyId)
            this.keyEvent({ event: 'retired', gateway, keyId: other.keyId, at: now, reason: 're-enrolled', replacedBy: keyId });
        this.database.sqlite
          .prepare(
            "UPDATE gateway_keys SET status = 'retired', valid_until = ?, replaced_by = ?, grace_from_batch = NULL WHERE gateway = ? AND status = 'active' AND key_id <> ?",
          )
          .run(now, keyId, gateway, keyId);
        this.database.sqlite
          .prepare(
            "INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?) ON CONFLICT DO UPDATE SET status = 'active', valid_until = NULL, replaced_by = NULL",
          )
          .run(gateway, keyId, text, now);
        this.keyEvent({ event: 'registered', gateway, keyId, at: now, key: text, source: 'enrollment' });
      })
      .immediate();
    this.reload();
    return this.must(gateway, keyId);
  }

  /**
   * Rotates a gateway's key: the statement names the new key and is signed by the old (active) key
   * and by the new one (which proves the gateway holds it). The old key is retired from now, with a grace period
   * (server arrival time) for the batches it signed while the gateway switched.
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
    const graceUntil = now + ROTATION_GRACE_MS;
    this.database.sqlite
      .transaction(() => {
        const chainTop = this.lastStoredBatch(statement.gateway, null);
        this.database.sqlite
          .prepare(
            "UPDATE gateway_keys SET status = 'retired', valid_until = ?, replaced_by = ?, reason = 'rotated', grace_from_batch = ? WHERE gateway = ? AND key_id = ?",
          )
          .run(graceUntil, newKeyId, chainTop ?? -1, statement.gateway, statement.oldKeyId);
        this.database.sqlite
          .prepare("INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at) VALUES (?, ?, ?, 'active', ?)")
          .run(statement.gateway, newKeyId, statement.newKey, now);
        this.keyEvent({
          event: 'rotated',
          gateway: statement.gateway,
          keyId: statement.oldKeyId,
          at: now,
          newKeyId,
          newKey: statement.newKey,
          graceUntil,
        });
        // the end of the grace enters the log when it comes: no batch under the old key is logged after it
        this.keyEvent({
          event: 'retired',
          gateway: statement.gateway,
          keyId: statement.oldKeyId,
          at: graceUntil,
          reason: 'rotation-grace-over',
          replacedBy: newKeyId,
        });
        this.events.record(statement.gateway, 'key-rotated', 'notice', `key ${statement.oldKeyId} replaced by ${newKeyId}`, null, now);
      })
      .immediate();
    this.reload();
    return this.must(statement.gateway, newKeyId);
  }

  /**
   * Revokes a key, from now: no batch under it that is not already stored is accepted any more. With `from`
   * earlier than now, the batches already stored under it that arrived (server clock) from then on become invalid
   * too: the key's last valid batch is the last one that arrived before `from`. A `from` in the future means now.
   */
  revoke(gateway: string, keyId: string, from: number, reason: string, now = Date.now()): GatewayKey {
    const key = this.get(gateway, keyId);
    if (!key) throw new LabtraceError('E_NOT_FOUND', `gateway ${gateway} has no key ${keyId}`);
    const start = Math.min(from, now, key.validUntil ?? Number.MAX_SAFE_INTEGER);
    this.database.sqlite
      .transaction(() => {
        const lastValid = this.lastStoredBatch(gateway, keyId, start);
        const after = this.database.sqlite
          .prepare("SELECT COUNT(*) FROM batch_headers WHERE gateway = ? AND received_at >= ? AND json_extract(header, '$.keyId') = ?")
          .pluck()
          .get(gateway, start, keyId) as number;
        this.database.sqlite
          .prepare("UPDATE gateway_keys SET status = 'revoked', valid_until = ?, last_valid_batch = ?, reason = ? WHERE gateway = ? AND key_id = ?")
          .run(start, lastValid, reason, gateway, keyId);
        this.keyEvent({ event: 'revoked', gateway, keyId, at: now, reason, from: start, lastValidBatch: lastValid });
        this.events.record(
          gateway,
          'key-revoked',
          'alarm',
          `key ${keyId} revoked from ${iso(start)}: ${reason}; valid for ${lastValid === null ? 'no batch' : `batches up to ${lastValid}`}${after > 0 ? `; ${after} stored batches under it arrived since and are no longer valid` : ''}`,
          null,
          now,
        );
      })
      .immediate();
    this.reload();
    return this.must(gateway, keyId);
  }
}
