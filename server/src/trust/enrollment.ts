// Enrollment: a lab admin creates a one-time token for a gateway id; the gateway presents it with
// its public key and a signature made with that key (proof that it holds the private key). The key is
// registered and the gateway receives its own broker credentials. Tokens are stored only as hashes.
// Its queries run through Kysely on the store's database (SQLite or PostgreSQL). The broker asks user() once per
// connection (never per message): it reads the gateway's credentials from the store, so that a gateway enrolled
// or enrolled again on another node logs in on this one at once.
import { createHash, randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { enrollBody } from '@labtrace/protocols/api';
import { enrollmentProofBytes, fromBase64, idSchema, LabtraceError, parseVerifierKey, parseWith, toHex, verifyEd25519 } from '@labtrace/protocols';
import { hashPassword } from '../broker/passwords.js';
import type { BrokerUser } from '../broker/config.js';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { KeyRegistry } from './key-registry.js';
import type { SecurityEvents } from './security-events.js';
import { holdWriteLock, storeOf, type TrustStore } from './store.js';

export const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;

/** what a gateway sends to enroll: part of the API contract (POST /api/enroll) */
export const enrollRequestSchema = enrollBody;
export type EnrollRequest = z.output<typeof enrollRequestSchema>;

export interface EnrollResult {
  gateway: string;
  keyId: string;
  mqtt: { username: string; password: string };
}

const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** an enrollment token waiting for its gateway, as listed */
export interface PendingToken {
  id: number;
  gateway: string;
  createdAt: number;
  expiresAt: number;
}

/** the advisory lock (two-key form) under which a PostgreSQL transaction numbers a new token */
const TOKEN_LOCK = [0x6c74_656e, 1] as const; // 'lten'

/** a token made: the token itself is shown once */
export interface CreatedToken {
  token: string;
  expiresAt: number;
  id: number;
  createdAt: number;
}

/** another record of a change written in its transaction (the audit entry) */
export type Also<T> = (trx: Transaction<Tables>, result: T) => Promise<unknown>;

const unreachable = (): never => {
  throw new LabtraceError('E_STORE', 'the token was not written');
};

const checkTtl = (ttlMs: number): void => {
  if (!Number.isInteger(ttlMs) || ttlMs < 60_000 || ttlMs > 30 * 24 * 3_600_000)
    throw new LabtraceError('E_BAD_REQUEST', 'ttl: between 1 minute and 30 days');
};

export class Enrollment {
  private readonly db: Kysely<Tables>;

  /** `store`: the SQLite LabDatabase or a Kysely store (SQLite or PostgreSQL) */
  constructor(
    store: TrustStore,
    private readonly keys: KeyRegistry,
    private readonly events: SecurityEvents,
  ) {
    this.db = storeOf(store).db;
  }

  /** Nothing to load: the credentials are read from the store at each login (kept for the start order). */
  open(): Promise<void> {
    return Promise.resolve();
  }

  /** The broker user an enrolled gateway connects as (read from the store: once per connection). */
  async user(username: string): Promise<BrokerUser | undefined> {
    const row = await this.db
      .selectFrom('gateway_credentials')
      .select(['gateway', 'username', 'password_hash'])
      .where('username', '=', username)
      .executeTakeFirst();
    return row === undefined ? undefined : { username: row.username, passwordHash: row.password_hash, role: 'gateway', gateway: row.gateway };
  }

  /** Creates a one-time token for a gateway id; only its hash is kept. */
  async createToken(gateway: string, ttlMs = DEFAULT_TOKEN_TTL_MS, now = Date.now(), also?: Also<CreatedToken>): Promise<CreatedToken> {
    parseWith(idSchema, gateway, 'gateway', 'E_BAD_REQUEST');
    checkTtl(ttlMs);
    const token = `lt-enroll-${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + ttlMs;
    let made: CreatedToken | undefined;
    await this.insertToken(tokenHash(token), gateway, now, expiresAt, async (trx, id) => {
      made = { token, expiresAt, id, createdAt: now };
      await also?.(trx, made);
    });
    return made ?? unreachable();
  }

  private async insertToken(
    hash: string,
    gateway: string,
    now: number,
    expiresAt: number,
    also?: (trx: Transaction<Tables>, id: number) => Promise<void>,
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      // numbered after the highest: on PostgreSQL under a lock, so that two nodes never give one number twice
      if (dialectOf(this.db as unknown as Kysely<unknown>) === 'postgres')
        await sql`SELECT pg_advisory_xact_lock(${TOKEN_LOCK[0]}, ${TOKEN_LOCK[1]})`.execute(trx);
      else await holdWriteLock(trx);
      const top = await trx
        .selectFrom('enrollment_tokens')
        .select((eb) => eb.fn.max<number | null>('id').as('top'))
        .executeTakeFirst();
      const id = (top?.top ?? 0) + 1;
      await trx
        .insertInto('enrollment_tokens')
        .values({ id, token_hash: hash, gateway, created_at: now, expires_at: expiresAt, used_at: null })
        .execute();
      await also?.(trx, id);
      return id;
    });
  }

  /** The tokens still usable (neither used nor expired nor revoked), newest first; never the tokens themselves. */
  async pending(now = Date.now()): Promise<PendingToken[]> {
    const rows = await this.db
      .selectFrom('enrollment_tokens')
      .select(['id', 'gateway', 'created_at', 'expires_at'])
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => ({ id: Number(r.id), gateway: r.gateway, createdAt: r.created_at, expiresAt: r.expires_at }));
  }

  /**
   * Revokes a token not used yet: it expires now (an enrollment with it is refused as expired). A token used,
   * expired or unknown answers 404: there is nothing left to revoke.
   */
  async revokeToken(id: number, now = Date.now(), also?: Also<PendingToken>): Promise<PendingToken> {
    return this.db.transaction().execute(async (trx) => {
      // one conditional update: a token used meanwhile (on any node) is not revoked
      const row = await trx
        .updateTable('enrollment_tokens')
        .set({ expires_at: now })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning(['gateway', 'created_at'])
        .executeTakeFirst();
      if (row === undefined)
        throw new LabtraceError('E_NOT_FOUND', `no pending enrollment token ${id}`, {
          reason: 'record.not-found',
          params: { type: 'enrollment-token', id: String(id) },
        });
      const token = { id, gateway: row.gateway, createdAt: row.created_at, expiresAt: now };
      await also?.(trx, token);
      return token;
    });
  }

  /**
   * Registers a token made elsewhere (a deployment's secret, such as the compose lab's) for a gateway id. Idempotent:
   * a token already registered is left as it is, used or not, so that running this at every start never revives it.
   */
  async registerToken(
    token: string,
    gateway: string,
    ttlMs = DEFAULT_TOKEN_TTL_MS,
    now = Date.now(),
  ): Promise<{ registered: boolean; expiresAt: number; used: boolean }> {
    if (!enrollRequestSchema.shape.token.safeParse(token).success)
      throw new LabtraceError('E_BAD_REQUEST', 'token: expected an enrollment token "lt-enroll-" and 43 characters of base64url');
    parseWith(idSchema, gateway, 'gateway', 'E_BAD_REQUEST');
    checkTtl(ttlMs);
    const hash = tokenHash(token);
    const expiresAt = now + ttlMs;
    const existing = await this.db.selectFrom('enrollment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    let inserted = false;
    if (existing === undefined)
      try {
        await this.insertToken(hash, gateway, now, expiresAt);
        inserted = true;
      } catch (err) {
        // registered meanwhile by another node (the token hash is the key): read what it registered
        if ((await this.db.selectFrom('enrollment_tokens').select('token_hash').where('token_hash', '=', hash).executeTakeFirst()) === undefined)
          throw err;
      }
    if (inserted) return { registered: true, expiresAt, used: false };
    const found = existing ?? (await this.db.selectFrom('enrollment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirstOrThrow());
    if (found.gateway !== gateway)
      throw new LabtraceError('E_CONFIG', `token: this enrollment token was registered for "${found.gateway}", not "${gateway}"`);
    return { registered: false, expiresAt: found.expires_at, used: found.used_at !== null };
  }

  /** `address`: where the request came from, recorded with a refusal. */
  async enroll(body: unknown, address?: string, now = Date.now()): Promise<EnrollResult> {
    const request = parseWith(enrollRequestSchema, body, 'body', 'E_BAD_REQUEST');
    const hash = tokenHash(request.token);
    const row = await this.db.selectFrom('enrollment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    if (!row) {
      // Anyone can send a made-up token under any gateway id: that is noise from an address, counted per window,
      // not an alarm of the gateway it names.
      this.events.refuse({
        kind: 'enrollment-attempt',
        severity: 'notice',
        detail: 'enrollment refused: unknown token',
        address,
        client: request.gateway,
      });
      throw new LabtraceError('E_AUTH', 'token: unknown enrollment token');
    }
    // A genuine token: the refusal concerns the gateway it was issued for, whatever gateway the request names.
    const refuse = async (
      code: 'E_AUTH' | 'E_FORBIDDEN' | 'E_BAD_REQUEST',
      message: string,
      severity: 'notice' | 'alarm' = 'alarm',
    ): Promise<never> => {
      const event = await this.db
        .transaction()
        .execute((trx) =>
          this.events.recordIn(
            trx,
            row.gateway,
            'enrollment-refused',
            severity,
            `${message}${address === undefined ? '' : ` (from ${address})`}`,
            null,
            now,
          ),
        );
      this.events.announce(event);
      throw new LabtraceError(code, message);
    };
    if (row.used_at !== null) return refuse('E_AUTH', 'token: this enrollment token was already used');
    if (row.expires_at <= now) return refuse('E_AUTH', 'token: this enrollment token has expired', 'notice');
    if (row.gateway !== request.gateway) return refuse('E_FORBIDDEN', `gateway: the token was issued for "${row.gateway}", not "${request.gateway}"`);
    let key;
    try {
      key = parseVerifierKey(request.key);
    } catch (err) {
      return refuse('E_BAD_REQUEST', `key: ${(err as Error).message}`);
    }
    if (key.name !== request.gateway) return refuse('E_BAD_REQUEST', `key: named "${key.name}", expected the gateway id "${request.gateway}"`);
    if (!verifyEd25519(fromBase64(request.proof), enrollmentProofBytes(request), key.publicKey))
      return refuse('E_FORBIDDEN', 'proof: not a signature of the request by the key being enrolled');
    const password = randomBytes(24).toString('base64url');
    const passwordHash = await hashPassword(password);
    const keyId = toHex(key.keyId);
    const event = await this.db.transaction().execute(async (trx) => {
      // one use only, even when two requests (on two nodes) race: the update must change the row
      const used = await trx
        .updateTable('enrollment_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', hash)
        .where('used_at', 'is', null)
        .returning('token_hash')
        .executeTakeFirst();
      if (used === undefined) throw new LabtraceError('E_AUTH', 'token: this enrollment token was already used');
      await this.keys.registerIn(trx, request.gateway, request.key, now);
      await trx
        .insertInto('gateway_credentials')
        .values({ gateway: request.gateway, username: request.gateway, password_hash: passwordHash, created_at: now })
        .onConflict((oc) =>
          oc.column('gateway').doUpdateSet((eb) => ({ password_hash: eb.ref('excluded.password_hash'), created_at: eb.ref('excluded.created_at') })),
        )
        .execute();
      return this.events.recordIn(trx, request.gateway, 'enrolled', 'notice', `key ${keyId} registered, broker credentials issued`, null, now);
    });
    await this.keys.refresh();
    this.events.announce(event);
    return { gateway: request.gateway, keyId, mqtt: { username: request.gateway, password } };
  }
}
