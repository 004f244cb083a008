// The gateways' public keys and their validity. A key is registered at enrollment (or from the server config),
// retired by a rotation that the old key signs, or by a new enrollment of its gateway, or revoked. Validity is judged
// by what the server knows, never by the times a key's holder writes into its batches (docs/trust.md, "Key
// validity"): a revoked key delivers no batch that is not already stored; a rotated key delivers batches that arrive
// (server clock) within ROTATION_GRACE_MS of the rotation and are numbered below the first batch its successor
// delivered. Each change is written as a structured key event (protocols/src/trust/key-event.ts), which enters the
// transparency log once its time has come. Read on every batch, so kept in memory.
//
// The keys are changed through Kysely on the store's database (SQLite or PostgreSQL), each change in one transaction
// with its key events and security event. On PostgreSQL a change of a gateway's keys first takes a transaction-scoped
// advisory lock on the gateway and reads the key rows after it, so that two nodes changing one gateway's keys at once
// never fork its key chain (two rotations of one key: one wins, the other is refused with E_CONFLICT).
//
// get() and refusal() are synchronous: the ingest asks them on every batch, inside its group transaction. They answer
// from a view of the keys in memory, which this process updates after each change it commits and which refresh()
// reloads from the store. How soon a node sees a change made elsewhere:
// - SQLite (one file, maybe another process: the admin command line): at once; get() and list() compare SQLite's
//   data_version (a counter of the connection, not a query of a table) and reload when another connection committed.
// - PostgreSQL (several nodes): within `refreshMs` (default 1 s, start() reloads that often); lookup() reloads at once
//   (at most every MISS_REFRESH_MS) for a key it does not know, before the ingest refuses a batch as under an unknown
//   key; refusalIn(trx, ...) reads the key's state in the caller's transaction, exact whatever the view holds.
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
import { sql, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import type { LogStore } from '../log/log-store.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { Logger } from '../log.js';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { SecurityEvent, SecurityEvents } from './security-events.js';
import { holdWriteLock, storeOf, type TrustStore } from './store.js';

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

type Row = Selectable<Tables['gateway_keys']>;

/** Why a batch under a key is refused: the security event's kind and its text. */
export interface KeyRefusal {
  kind: 'revoked-key' | 'retired-key';
  detail: string;
}

/** a key event's fields but its type and version (each kind of event on its own) */
type EventFields = KeyEvent extends infer E ? (E extends KeyEvent ? Omit<E, 'type' | 'v'> : never) : never;

export type { RotationStatement } from '@labtrace/protocols';

export interface KeyRegistryOptions {
  /** how often start() reloads the view from the store (default 1000 ms) */
  refreshMs?: number;
  /** where a failed periodic reload is logged */
  logger?: Logger;
}

export interface RevokeOptions {
  /** refuse (E_CONFLICT) a key already revoked, rather than revoke it again */
  once?: boolean;
  /** another record of the revocation written in its transaction (the audit entry): the key after and before */
  also?: (trx: Transaction<Tables>, after: GatewayKey, before: GatewayKey) => Promise<unknown>;
}

/** the advisory lock class (two-key form, the second key: hashtext of the gateway) of a gateway's key changes */
const KEY_LOCK_CLASS = 0x6c74_6b79; // 'ltky'
/** a key the view does not know reloads it at most this often (lookup) */
export const MISS_REFRESH_MS = 250;

const iso = (ms: number): string => new Date(ms).toISOString();
const viewKey = (gateway: string, keyId: string): string => `${gateway}/${keyId}`;

function toKey(row: Row): GatewayKey {
  const status = row.status as KeyStatus;
  return {
    gateway: row.gateway,
    keyId: row.key_id,
    verifierKey: row.verifier_key,
    status,
    registeredAt: row.registered_at,
    validUntil: row.valid_until,
    lastValidBatch: status === 'revoked' ? row.last_valid_batch : null,
    graceFromBatch: row.grace_from_batch,
    reason: row.reason,
    replacedBy: row.replaced_by,
    key: parseVerifierKey(row.verifier_key),
  };
}

/** the key id a stored batch header names, in the dialect's JSON words */
function headerKeyId(db: Kysely<Tables>): RawBuilder<string> {
  return dialectOf(db as unknown as Kysely<unknown>) === 'postgres'
    ? sql<string>`(header::jsonb ->> 'keyId')`
    : sql<string>`json_extract(header, '$.keyId')`;
}

export class KeyRegistry {
  private keys = new Map<string, GatewayKey>();
  /** the first batch stored under the successor of each rotated key still in its grace (PostgreSQL's view) */
  private successorFirsts = new Map<string, number>();
  private readonly db: Kysely<Tables>;
  private readonly sqlite: LabDatabase | undefined;
  private dataVersion: Statement | undefined;
  private seenVersion = -1;
  /** a reload not started yet (calls meanwhile share it), and the one running */
  private queued: Promise<void> | undefined;
  private running: Promise<void> = Promise.resolve();
  /** when a key the view did not know last made lookup() reload it */
  private lastMissRefresh = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  /** `store`: the SQLite LabDatabase (with the synchronous twins) or a Kysely store (SQLite or PostgreSQL) */
  constructor(
    store: TrustStore,
    private readonly events: SecurityEvents,
    private readonly options: KeyRegistryOptions = {},
  ) {
    ({ db: this.db, sqlite: this.sqlite } = storeOf(store));
  }

  private get postgres(): boolean {
    return dialectOf(this.db as unknown as Kysely<unknown>) === 'postgres';
  }

  /** Loads the keys; registers the ones of the server config not yet known (a logged key event each). */
  async open(configured: { id: string; key: string }[] = [], now = Date.now()): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const g of configured) {
        const key = parseVerifierKey(g.key);
        const keyId = toHex(key.keyId);
        // two nodes starting with the same config at once: one inserts, and writes the key event
        const inserted = await trx
          .insertInto('gateway_keys')
          .values({ gateway: g.id, key_id: keyId, verifier_key: g.key, status: 'active', registered_at: now })
          .onConflict((oc) => oc.columns(['gateway', 'key_id']).doNothing())
          .returning('key_id')
          .executeTakeFirst();
        if (inserted !== undefined) await keyEventIn(trx, { event: 'registered', gateway: g.id, keyId, at: now, key: g.key, source: 'config' });
      }
    });
    await this.refresh();
  }

  /**
   * Reloads the view every `refreshMs` (the changes other nodes make), until stop(). Not on the SQLite LabDatabase,
   * whose get() sees another connection's change at once (data_version).
   */
  start(): Promise<void> {
    if (this.sqlite !== undefined) return Promise.resolve();
    this.timer ??= setInterval(() => {
      this.refresh().catch((err: unknown) => this.options.logger?.error({ err: (err as Error).message }, 'the gateway keys could not be reloaded'));
    }, this.options.refreshMs ?? 1000).unref();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
  }

  /**
   * Reloads the view from the store: what every node committed before the call is in the view when it resolves.
   * Calls made while a reload waits share it.
   */
  refresh(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const next = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.reload();
      });
    this.queued = next;
    this.running = next;
    return next;
  }

  private async reload(): Promise<void> {
    const now = Date.now();
    const rows = await this.db.selectFrom('gateway_keys').selectAll().execute();
    const firsts = new Map<string, number>();
    for (const row of rows)
      if (row.status === 'retired' && row.replaced_by !== null && (row.valid_until ?? 0) > now) {
        const first = await successorFirstIn(this.db, row.gateway, row.grace_from_batch, row.replaced_by);
        if (first !== undefined) firsts.set(viewKey(row.gateway, row.key_id), first);
      }
    this.keys = new Map(rows.map((r) => [viewKey(r.gateway, r.key_id), toKey(r)]));
    this.successorFirsts = firsts;
  }

  /** SQLite: reloads (synchronously) when another connection (the admin command line) changed the database. */
  private fresh(): void {
    if (this.sqlite === undefined) return;
    this.dataVersion ??= this.sqlite.sqlite.prepare('PRAGMA data_version').pluck();
    const version = this.dataVersion.get() as number;
    if (version !== this.seenVersion) {
      this.seenVersion = version;
      const rows = this.sqlite.sqlite.prepare('SELECT * FROM gateway_keys').all() as Row[];
      this.keys = new Map(rows.map((r) => [viewKey(r.gateway, r.key_id), toKey(r)]));
    }
  }

  private must(gateway: string, keyId: string): GatewayKey {
    const key = this.get(gateway, keyId);
    if (!key) throw new LabtraceError('E_STORE', `key ${keyId} of ${gateway} is not in the store after it was written`);
    return key;
  }

  /** The key from the view (synchronous: the ingest asks on every batch). */
  get(gateway: string, keyId: string): GatewayKey | undefined {
    this.fresh();
    return this.keys.get(viewKey(gateway, keyId));
  }

  /**
   * The key, reloading the view first when it does not know it (a key registered on another node a moment ago),
   * at most every MISS_REFRESH_MS: a gateway sending under unknown keys costs the store little.
   */
  async lookup(gateway: string, keyId: string): Promise<GatewayKey | undefined> {
    const known = this.get(gateway, keyId);
    const now = Date.now();
    if (known !== undefined || now - this.lastMissRefresh < MISS_REFRESH_MS) return known;
    this.lastMissRefresh = now;
    await this.refresh();
    return this.get(gateway, keyId);
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
   * clock), may be stored; undefined if so. The batch's own times play no part. Synchronous, from the view; a
   * rotated key's successor's first batch is read from the SQLite store (its synchronous twin, only for a key in its
   * grace), or from the view on PostgreSQL (refusalIn reads it in the caller's transaction).
   */
  refusal(key: GatewayKey, batch: number, now = Date.now()): KeyRefusal | undefined {
    return judge(key, batch, now, () =>
      this.sqlite !== undefined ? this.successorFirstNow(key) : this.successorFirsts.get(viewKey(key.gateway, key.keyId)),
    );
  }

  /**
   * refusal() by what the store holds in the caller's transaction `trx`: the key's state as any node committed it
   * (a revocation made elsewhere a moment ago holds), and its successor's first batch. One read by primary key per
   * batch, one more for a rotated key in its grace.
   */
  async refusalIn(trx: Transaction<Tables>, key: GatewayKey, batch: number, now = Date.now()): Promise<KeyRefusal | undefined> {
    const row = await keyRow(trx, key.gateway, key.keyId);
    const current = row === undefined ? key : toKey(row);
    if (current.status === 'active') return undefined;
    const first = current.replacedBy === null ? undefined : await successorFirstIn(trx, current.gateway, current.graceFromBatch, current.replacedBy);
    return judge(current, batch, now, () => first);
  }

  /** The lowest batch number stored under the key that replaced this one, above the gateway's chain at the rotation. */
  private successorFirstNow(key: GatewayKey): number | undefined {
    if (key.replacedBy === null || this.sqlite === undefined) return undefined;
    const first = this.sqlite.sqlite
      .prepare("SELECT MIN(batch) FROM batch_headers WHERE gateway = ? AND batch > ? AND json_extract(header, '$.keyId') = ?")
      .pluck()
      .get(key.gateway, key.graceFromBatch ?? -1, key.replacedBy) as number | null;
    return first ?? undefined;
  }

  /**
   * Takes the gateway's key lock until the transaction ends: on PostgreSQL an advisory lock on the gateway; SQLite
   * has one writer at a time, whose lock the transaction takes first (holdWriteLock).
   */
  private async lockGateway(trx: Transaction<Tables>, gateway: string): Promise<void> {
    if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${KEY_LOCK_CLASS}, hashtext(${gateway}))`.execute(trx);
    else await holdWriteLock(trx);
  }

  /**
   * Registers a gateway's key (enrollment). The key's name must be the gateway id. Any key the
   * gateway had before is retired now: a re-enrolled gateway signs only with its new key.
   */
  async register(gateway: string, verifierKey: string, now = Date.now()): Promise<GatewayKey> {
    const keyId = await this.db.transaction().execute((trx) => this.registerIn(trx, gateway, verifierKey, now));
    await this.refresh();
    return this.must(gateway, keyId);
  }

  /**
   * register() in the caller's transaction (enrollment: the token's use, the key and the credentials commit
   * together); returns the key id. The caller refreshes the view once the transaction committed.
   */
  async registerIn(trx: Transaction<Tables>, gateway: string, verifierKey: string, now = Date.now()): Promise<string> {
    const key = parseVerifierKey(verifierKey);
    if (key.name !== gateway) throw new LabtraceError('E_BAD_REQUEST', `key: named "${key.name}", expected the gateway id "${gateway}"`);
    const keyId = toHex(key.keyId);
    const text = formatVerifierKey(key.name, key.publicKey);
    await this.lockGateway(trx, gateway);
    const existing = await keyRow(trx, gateway, keyId);
    if (existing?.status === 'revoked')
      throw new LabtraceError('E_FORBIDDEN', `key ${keyId} of ${gateway} was revoked and cannot be registered again`);
    const others = await trx
      .selectFrom('gateway_keys')
      .select('key_id')
      .where('gateway', '=', gateway)
      .where('status', '=', 'active')
      .where('key_id', '<>', keyId)
      .orderBy('registered_at')
      .execute();
    for (const other of others)
      await keyEventIn(trx, { event: 'retired', gateway, keyId: other.key_id, at: now, reason: 're-enrolled', replacedBy: keyId });
    await trx
      .updateTable('gateway_keys')
      .set({ status: 'retired', valid_until: now, replaced_by: keyId, grace_from_batch: null })
      .where('gateway', '=', gateway)
      .where('status', '=', 'active')
      .where('key_id', '<>', keyId)
      .execute();
    await trx
      .insertInto('gateway_keys')
      .values({ gateway, key_id: keyId, verifier_key: text, status: 'active', registered_at: now })
      .onConflict((oc) => oc.columns(['gateway', 'key_id']).doUpdateSet({ status: 'active', valid_until: null, replaced_by: null }))
      .execute();
    await keyEventIn(trx, { event: 'registered', gateway, keyId, at: now, key: text, source: 'enrollment' });
    return keyId;
  }

  /**
   * Rotates a gateway's key: the statement names the new key and is signed by the old (active) key
   * and by the new one (which proves the gateway holds it). The old key is retired from now, with a grace period
   * (server arrival time) for the batches it signed while the gateway switched. Of two rotations of one key at once
   * (two nodes), one wins; the other is refused with E_CONFLICT.
   */
  async rotate(statement: RotationStatement, oldSignature: string, newSignature: string, now = Date.now()): Promise<GatewayKey> {
    const gateway = statement.gateway;
    const oldRow = await keyRow(this.db, gateway, statement.oldKeyId);
    if (oldRow?.status !== 'active')
      throw new LabtraceError('E_FORBIDDEN', `oldKeyId: ${statement.oldKeyId} is not an active key of gateway ${gateway}`);
    const old = toKey(oldRow);
    const next = parseVerifierKey(statement.newKey);
    if (next.name !== gateway) throw new LabtraceError('E_BAD_REQUEST', `newKey: named "${next.name}", expected "${gateway}"`);
    const message = rotationBytes(statement);
    if (!verifyEd25519(fromBase64(oldSignature), message, old.key.publicKey))
      throw new LabtraceError('E_FORBIDDEN', 'oldSignature: not a signature of the statement by the old key');
    if (!verifyEd25519(fromBase64(newSignature), message, next.publicKey))
      throw new LabtraceError('E_FORBIDDEN', 'newSignature: not a signature of the statement by the new key');
    if (Math.abs(statement.at - now) > 10 * 60_000)
      throw new LabtraceError('E_BAD_REQUEST', 'at: the statement is more than 10 minutes from the server clock');
    const newKeyId = toHex(ed25519KeyId(next.name, next.publicKey));
    if ((await keyRow(this.db, gateway, newKeyId)) !== undefined) throw new LabtraceError('E_CONFLICT', `newKey: ${newKeyId} is already registered`);
    const graceUntil = now + ROTATION_GRACE_MS;
    const event = await this.db.transaction().execute(async (trx) => {
      await this.lockGateway(trx, gateway);
      // read again under the lock: another rotation, enrollment or revocation may have come first
      const current = await keyRow(trx, gateway, statement.oldKeyId);
      if (current?.status !== 'active')
        throw new LabtraceError('E_CONFLICT', `oldKeyId: ${statement.oldKeyId} of gateway ${gateway} was ${current?.status ?? 'removed'} meanwhile`);
      if ((await keyRow(trx, gateway, newKeyId)) !== undefined) throw new LabtraceError('E_CONFLICT', `newKey: ${newKeyId} is already registered`);
      const chainTop = await lastStoredBatchIn(trx, gateway, null);
      await trx
        .updateTable('gateway_keys')
        .set({ status: 'retired', valid_until: graceUntil, replaced_by: newKeyId, reason: 'rotated', grace_from_batch: chainTop ?? -1 })
        .where('gateway', '=', gateway)
        .where('key_id', '=', statement.oldKeyId)
        .execute();
      await trx
        .insertInto('gateway_keys')
        .values({ gateway, key_id: newKeyId, verifier_key: statement.newKey, status: 'active', registered_at: now })
        .execute();
      await keyEventIn(trx, { event: 'rotated', gateway, keyId: statement.oldKeyId, at: now, newKeyId, newKey: statement.newKey, graceUntil });
      // the end of the grace enters the log when it comes: no batch under the old key is logged after it
      await keyEventIn(trx, {
        event: 'retired',
        gateway,
        keyId: statement.oldKeyId,
        at: graceUntil,
        reason: 'rotation-grace-over',
        replacedBy: newKeyId,
      });
      return this.events.recordIn(trx, gateway, 'key-rotated', 'notice', `key ${statement.oldKeyId} replaced by ${newKeyId}`, null, now);
    });
    await this.committed(event);
    return this.must(gateway, newKeyId);
  }

  /** After a change committed: the view reloaded, then its security event told. */
  private async committed(event: SecurityEvent): Promise<void> {
    await this.refresh();
    this.events.announce(event);
  }

  /**
   * Revokes a key, from now: no batch under it that is not already stored is accepted any more. With `from`
   * earlier than now, the batches already stored under it that arrived (server clock) from then on become invalid
   * too: the key's last valid batch is the last one that arrived before `from`. A `from` in the future means now.
   */
  async revoke(gateway: string, keyId: string, from: number, reason: string, now = Date.now(), options: RevokeOptions = {}): Promise<GatewayKey> {
    const event = await this.db.transaction().execute(async (trx) => {
      await this.lockGateway(trx, gateway);
      const key = await keyRow(trx, gateway, keyId);
      if (key === undefined)
        throw new LabtraceError('E_NOT_FOUND', `gateway ${gateway} has no key ${keyId}`, {
          reason: 'record.not-found',
          params: { type: 'gateway-key', id: `${gateway}/${keyId}` },
        });
      // read under the lock: of two revocations at once (two nodes), the second finds the key revoked
      if (options.once === true && key.status === 'revoked')
        throw new LabtraceError('E_CONFLICT', `key ${keyId} of ${gateway} is already revoked`, {
          reason: 'key.already-revoked',
          params: { gateway, keyId },
        });
      const start = Math.min(from, now, key.valid_until ?? Number.MAX_SAFE_INTEGER);
      const lastValid = await lastStoredBatchIn(trx, gateway, keyId, start);
      const counted = await trx
        .selectFrom('batch_headers')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('gateway', '=', gateway)
        .where('received_at', '>=', start)
        .where(headerKeyId(trx), '=', keyId)
        .executeTakeFirst();
      const after = Number(counted?.n ?? 0);
      const revoked = await trx
        .updateTable('gateway_keys')
        .set({ status: 'revoked', valid_until: start, last_valid_batch: lastValid, reason })
        .where('gateway', '=', gateway)
        .where('key_id', '=', keyId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await keyEventIn(trx, { event: 'revoked', gateway, keyId, at: now, reason, from: start, lastValidBatch: lastValid });
      await options.also?.(trx, toKey(revoked), toKey(key));
      return this.events.recordIn(
        trx,
        gateway,
        'key-revoked',
        'alarm',
        `key ${keyId} revoked from ${iso(start)}: ${reason}; valid for ${lastValid === null ? 'no batch' : `batches up to ${lastValid}`}${after > 0 ? `; ${after} stored batches under it arrived since and are no longer valid` : ''}`,
        null,
        now,
      );
    });
    await this.committed(event);
    return this.must(gateway, keyId);
  }

  /**
   * Appends the key events whose time has come and that are not in the log yet (also those written by the admin
   * command line), in order; returns how many. The synchronous twin (SQLite) for the synchronous TransparencyLog.
   */
  logPending(log: TransparencyLog, now = Date.now()): number {
    const db = this.sync().sqlite;
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

  /**
   * logPending() into the asynchronous log store (one log across nodes): in one transaction, each pending key event
   * appended and marked. On PostgreSQL the pending rows are held (FOR UPDATE): a node running this at the same time
   * waits, then finds them logged, so that no key event enters the log twice.
   */
  async logPendingTo(log: LogStore, now = Date.now()): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await holdWriteLock(trx);
      const pending = await trx
        .selectFrom('key_events')
        .select(['id', 'record'])
        .where('log_index', 'is', null)
        .where('at', '<=', now)
        .orderBy('at')
        .orderBy('id')
        .$if(this.postgres, (q) => q.forUpdate())
        .execute();
      for (const e of pending) {
        const index = await log.append(trx, 'key-event', [canonicalBytes(JSON.parse(e.record) as KeyEvent)], now);
        await trx.updateTable('key_events').set({ log_index: index }).where('id', '=', e.id).execute();
      }
      return pending.length;
    });
  }

  private sync(): LabDatabase {
    if (this.sqlite === undefined) throw new Error('key registry: the synchronous twins need the SQLite store');
    return this.sqlite;
  }
}

/** Why a batch under the key is refused now, or undefined; `successorFirst` is asked only for a key in its grace. */
function judge(key: GatewayKey, batch: number, now: number, successorFirst: () => number | undefined): KeyRefusal | undefined {
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
  const first = key.replacedBy === null ? undefined : successorFirst();
  if (first !== undefined && batch >= first)
    return {
      kind: 'retired-key',
      detail: `key ${key.keyId} is retired${since}${replaced}: batch ${batch} is not below batch ${first}, the first its successor delivered`,
    };
  return undefined;
}

async function keyRow(db: Kysely<Tables>, gateway: string, keyId: string): Promise<Row | undefined> {
  return db.selectFrom('gateway_keys').selectAll().where('gateway', '=', gateway).where('key_id', '=', keyId).executeTakeFirst();
}

/** Writes a structured key event; it enters the transparency log at `logAt` (default: its time). */
async function keyEventIn(trx: Transaction<Tables>, fields: EventFields, logAt = fields.at): Promise<void> {
  const record = { type: KEY_EVENT_TYPE, v: KEY_EVENT_VERSION, ...fields };
  await trx
    .insertInto('key_events')
    .values({ at: logAt, gateway: fields.gateway, record: JSON.stringify(record), log_index: null })
    .execute();
}

/** The lowest batch number stored under `successor` above `fromBatch` (the gateway's chain at the rotation). */
async function successorFirstIn(db: Kysely<Tables>, gateway: string, fromBatch: number | null, successor: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('batch_headers')
    .select((eb) => eb.fn.min<number>('batch').as('first'))
    .where('gateway', '=', gateway)
    .where('batch', '>', fromBatch ?? -1)
    .where(headerKeyId(db), '=', successor)
    .executeTakeFirst();
  return row?.first ?? undefined;
}

/** The gateway's highest stored batch number under a key (any key when null) that arrived before `before`. */
async function lastStoredBatchIn(
  trx: Transaction<Tables>,
  gateway: string,
  keyId: string | null,
  before = Number.MAX_SAFE_INTEGER,
): Promise<number | null> {
  const row = await trx
    .selectFrom('batch_headers')
    .select((eb) => eb.fn.max<number>('batch').as('top'))
    .where('gateway', '=', gateway)
    .where('received_at', '<', before)
    .$if(keyId !== null, (q) => q.where(headerKeyId(trx), '=', keyId ?? ''))
    .executeTakeFirst();
  return row?.top ?? null;
}
