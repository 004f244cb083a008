// Enrollment: a lab admin creates a one-time token for a gateway id; the gateway presents it with
// its public key and a signature made with that key (proof that it holds the private key). The key is
// registered and the gateway receives its own broker credentials. Tokens are stored only as hashes.
import { createHash, randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { enrollBody } from '@labtrace/protocols/api';
import { enrollmentProofBytes, fromBase64, idSchema, LabtraceError, parseVerifierKey, parseWith, toHex, verifyEd25519 } from '@labtrace/protocols';
import { hashPassword } from '../broker/passwords.js';
import type { BrokerUser } from '../broker/config.js';
import type { LabDatabase } from '../store/database.js';
import type { KeyRegistry } from './key-registry.js';
import type { SecurityEvents } from './security-events.js';

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

interface TokenRow {
  token_hash: string;
  gateway: string;
  expires_at: number;
  used_at: number | null;
}

export class Enrollment {
  private readonly users = new Map<string, BrokerUser>();

  constructor(
    private readonly database: LabDatabase,
    private readonly keys: KeyRegistry,
    private readonly events: SecurityEvents,
  ) {}

  open(): void {
    for (const row of this.database.sqlite.prepare('SELECT gateway, username, password_hash FROM gateway_credentials').all() as {
      gateway: string;
      username: string;
      password_hash: string;
    }[]) {
      this.users.set(row.username, { username: row.username, passwordHash: row.password_hash, role: 'gateway', gateway: row.gateway });
    }
  }

  /** The broker user an enrolled gateway connects as. */
  user(username: string): BrokerUser | undefined {
    return this.users.get(username);
  }

  /** Creates a one-time token for a gateway id; only its hash is kept. */
  createToken(gateway: string, ttlMs = DEFAULT_TOKEN_TTL_MS, now = Date.now()): { token: string; expiresAt: number; id: number; createdAt: number } {
    parseWith(idSchema, gateway, 'gateway', 'E_BAD_REQUEST');
    if (!Number.isInteger(ttlMs) || ttlMs < 60_000 || ttlMs > 30 * 24 * 3_600_000)
      throw new LabtraceError('E_BAD_REQUEST', 'ttl: between 1 minute and 30 days');
    const token = `lt-enroll-${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + ttlMs;
    const info = this.database.sqlite
      .prepare('INSERT INTO enrollment_tokens (token_hash, gateway, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(tokenHash(token), gateway, now, expiresAt);
    return { token, expiresAt, id: Number(info.lastInsertRowid), createdAt: now };
  }

  /** The tokens still usable (neither used nor expired nor revoked), newest first; never the tokens themselves. */
  pending(now = Date.now()): PendingToken[] {
    return this.database.sqlite
      .prepare(
        'SELECT rowid AS id, gateway, created_at AS createdAt, expires_at AS expiresAt FROM enrollment_tokens WHERE used_at IS NULL AND expires_at > ? ORDER BY rowid DESC',
      )
      .all(now) as PendingToken[];
  }

  /**
   * Revokes a token not used yet: it expires now (an enrollment with it is refused as expired). A token used,
   * expired or unknown answers 404: there is nothing left to revoke.
   */
  revokeToken(id: number, now = Date.now()): PendingToken {
    const token = this.pending(now).find((t) => t.id === id);
    if (token === undefined)
      throw new LabtraceError('E_NOT_FOUND', `no pending enrollment token ${id}`, {
        reason: 'record.not-found',
        params: { type: 'enrollment-token', id: String(id) },
      });
    this.database.sqlite.prepare('UPDATE enrollment_tokens SET expires_at = ? WHERE rowid = ? AND used_at IS NULL').run(now, id);
    return { ...token, expiresAt: now };
  }

  /**
   * Registers a token made elsewhere (a deployment's secret, such as the compose lab's) for a gateway id. Idempotent:
   * a token already registered is left as it is, used or not, so that running this at every start never revives it.
   */
  registerToken(
    token: string,
    gateway: string,
    ttlMs = DEFAULT_TOKEN_TTL_MS,
    now = Date.now(),
  ): { registered: boolean; expiresAt: number; used: boolean } {
    if (!enrollRequestSchema.shape.token.safeParse(token).success)
      throw new LabtraceError('E_BAD_REQUEST', 'token: expected an enrollment token "lt-enroll-" and 43 characters of base64url');
    parseWith(idSchema, gateway, 'gateway', 'E_BAD_REQUEST');
    if (!Number.isInteger(ttlMs) || ttlMs < 60_000 || ttlMs > 30 * 24 * 3_600_000)
      throw new LabtraceError('E_BAD_REQUEST', 'ttl: between 1 minute and 30 days');
    const hash = tokenHash(token);
    const existing = this.database.sqlite.prepare('SELECT * FROM enrollment_tokens WHERE token_hash = ?').get(hash) as TokenRow | undefined;
    if (existing !== undefined) {
      if (existing.gateway !== gateway)
        throw new LabtraceError('E_CONFIG', `token: this enrollment token was registered for "${existing.gateway}", not "${gateway}"`);
      return { registered: false, expiresAt: existing.expires_at, used: existing.used_at !== null };
    }
    const expiresAt = now + ttlMs;
    this.database.sqlite
      .prepare('INSERT INTO enrollment_tokens (token_hash, gateway, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(hash, gateway, now, expiresAt);
    return { registered: true, expiresAt, used: false };
  }

  /** `address`: where the request came from, recorded with a refusal. */
  async enroll(body: unknown, address?: string, now = Date.now()): Promise<EnrollResult> {
    const request = parseWith(enrollRequestSchema, body, 'body', 'E_BAD_REQUEST');
    const hash = tokenHash(request.token);
    const row = this.database.sqlite.prepare('SELECT * FROM enrollment_tokens WHERE token_hash = ?').get(hash) as TokenRow | undefined;
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
    const refuse = (code: 'E_AUTH' | 'E_FORBIDDEN' | 'E_BAD_REQUEST', message: string, severity: 'notice' | 'alarm' = 'alarm'): never => {
      this.events.record(row.gateway, 'enrollment-refused', severity, `${message}${address === undefined ? '' : ` (from ${address})`}`, null, now);
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
    this.database.sqlite.transaction(() => {
      // one use only, even when two requests race: the update must change the row
      const used = this.database.sqlite.prepare('UPDATE enrollment_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL').run(now, hash);
      if (used.changes !== 1) throw new LabtraceError('E_AUTH', 'token: this enrollment token was already used');
      this.keys.register(request.gateway, request.key, now);
      this.database.sqlite
        .prepare(
          'INSERT INTO gateway_credentials (gateway, username, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(gateway) DO UPDATE SET password_hash = excluded.password_hash, created_at = excluded.created_at',
        )
        .run(request.gateway, request.gateway, passwordHash, now);
      this.events.record(request.gateway, 'enrolled', 'notice', `key ${keyId} registered, broker credentials issued`, null, now);
    })();
    this.users.set(request.gateway, { username: request.gateway, passwordHash, role: 'gateway', gateway: request.gateway });
    return { gateway: request.gateway, keyId, mqtt: { username: request.gateway, password } };
  }
}
