// Users, roles, customer organizations, sessions and API tokens. Passwords are scrypt hashes; session
// and API tokens are random secrets of which only a SHA-256 hash is stored. A login that fails too
// often locks the account for a while. Every change to a user is written to the audit trail.
import crypto, { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { passwordSchema, ROLES, usernameSchema, type Locale, type Page, type Role } from '@labtrace/protocols/api';
import { sql, type CompiledQuery, type Kysely, type Selectable, type Transaction } from 'kysely';
import { pageOfRows } from '../api/paging.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { SYSTEM_ACTOR } from '../audit/audit-trail.js';
import { hashPassword, verifyPassword } from '../broker/passwords.js';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

// the roles and the shapes of names and passwords are part of the API contract (@labtrace/protocols/api)
export { ROLES, usernameSchema, passwordSchema };
export type { Role };

/** who is making a request, as established from its session cookie or bearer token */
export interface Principal {
  userId: number;
  username: string;
  role: Role;
  organization: string | null;
  via: 'cookie' | 'bearer';
  /** signed in with a one-time password: may only change it (or sign out) */
  mustChange: boolean;
  /** the anti-CSRF token a cookie-authenticated request must echo in a header */
  csrf: string;
  /** an auditor's grant: the customer organizations it covers, null for all (auth/visibility.ts) */
  grantOrganizations: readonly string[] | null;
}

/** where a login or logout came from, for the audit trail (shared accounts show as one user at many addresses) */
/** an API token as listed (never its secret) */
export interface ApiTokenView {
  id: number;
  name: string;
  username: string;
  role: Role;
  createdAt: number;
  expiresAt: number;
}

export interface ClientContext {
  ip?: string | undefined;
  userAgent?: string | undefined;
}

export interface UserView {
  username: string;
  role: Role;
  organization: string | null;
  disabled: boolean;
  grantUntil: number | null;
  /** the organizations an auditor's grant covers; null: all of them */
  grantOrganizations: string[] | null;
  mustChange: boolean;
  lockedUntil: number | null;
  createdAt: number;
  passwordChangedAt: number;
  /** the user's language; null: the browser's */
  locale: Locale | null;
  /** the IANA time zone times are shown in; null: the browser's */
  timeZone: string | null;
}

/** a user's own settings (PATCH /api/auth/preferences): a field left out is kept, null follows the browser */
export interface PreferenceChanges {
  locale?: Locale | null | undefined;
  timeZone?: string | null | undefined;
}

export interface NewUser {
  username: string;
  role: Role;
  organization?: string | undefined;
  password?: string | undefined;
  grantUntil?: number | undefined;
  grantOrganizations?: string[] | null | undefined;
}

export interface UserChanges {
  role?: Role | undefined;
  organization?: string | null | undefined;
  disabled?: boolean | undefined;
  grantUntil?: number | null | undefined;
  grantOrganizations?: string[] | null | undefined;
}

export interface AuthOptions {
  now?: () => number;
  /** a browser session or a login token ends this long after login */
  sessionTtlMs?: number;
  /** consecutive failed logins that lock an account */
  maxFailures?: number;
  lockoutMs?: number;
}

export interface LoginResult {
  token: string;
  csrf: string;
  expiresAt: number;
  user: UserView;
}

/** a user as stored */
type UserRow = Selectable<Tables['users']>;

// one-shot hashing where Node has it (>= 20.12): a request's token is hashed on every request
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256 = (text: string): string => (oneShot ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex'));
/** the anti-CSRF token of a session: derived from its secret, so nothing more is stored and only its holder knows it */
export const csrfOf = (token: string): string => createHash('sha256').update(`csrf:${token}`).digest('base64url');
const view = (row: UserRow): UserView => ({
  username: row.username,
  role: row.role as Role,
  organization: row.organization,
  disabled: row.disabled === 1,
  grantUntil: row.grant_until,
  grantOrganizations: row.grant_organizations === null ? null : (JSON.parse(row.grant_organizations) as string[]),
  mustChange: row.must_change === 1,
  lockedUntil: row.locked_until,
  createdAt: row.created_at,
  passwordChangedAt: row.password_changed_at,
  locale: row.locale === 'zh-CN' || row.locale === 'en' ? row.locale : null,
  timeZone: row.time_zone,
});

/** who acts in a refused login: nobody was authenticated */
const ANONYMOUS: Actor = { username: 'anonymous', role: 'anonymous' };
const UNKNOWN_USER = '(unknown user)';
/** the address and the first 200 characters of the user agent: enough to tell one account used from many places */
const clientOf = (c: ClientContext): { ip: string | null; userAgent: string | null } => ({
  ip: c.ip ?? null,
  userAgent: c.userAgent === undefined ? null : c.userAgent.slice(0, 200),
});

const REFUSED = 'login refused: unknown user, wrong password, or the account is disabled or locked for a while';

/** the advisory lock (two-key form) under which a PostgreSQL transaction changes a user's role or state ('ltus') */
const USERS_LOCK = [0x6c74_7573, 1] as const;

/** what the store of the users is: the store's Kysely (SQLite or PostgreSQL), or the embedded SQLite store itself */
export type UserStore = Kysely<Tables> | LabDatabase;

const isLabDatabase = (store: UserStore): store is LabDatabase => 'sqlite' in store && 'db' in store;

/**
 * The users, their sessions and API tokens, and the customer organizations. Its queries run through Kysely on the
 * store's database (SQLite or PostgreSQL), each change in one transaction with its audit-trail entry
 * (AuditTrail.recordIn); a session or token is read from the store on every request, so that a change made on any
 * node counts at once everywhere. Given the embedded SQLite store, it also has the synchronous twin `getNow`, which
 * the notifier's announceNow calls for a security event heard inside the ingest's synchronous SQLite transaction.
 */
export class Users extends EventEmitter<{ sessionsEnded: [username: string] }> {
  private readonly now: () => number;
  readonly sessionTtlMs: number;
  private readonly maxFailures: number;
  private readonly lockoutMs: number;
  private readonly store: Kysely<Tables>;
  /** the embedded SQLite store, for the synchronous twins; undefined on PostgreSQL */
  private readonly database: LabDatabase | undefined;
  private readonly postgres: boolean;
  /** compared against when the user is unknown, so that a login takes as long either way */
  private dummyHash: Promise<string> | undefined;
  /** the query of every authenticated request, compiled once */
  private byToken: CompiledQuery<UserRow & { session_expires: number }> | undefined;

  constructor(
    store: UserStore,
    private readonly audit: AuditTrail,
    options: AuthOptions = {},
  ) {
    super();
    this.database = isLabDatabase(store) ? store : undefined;
    this.store = isLabDatabase(store) ? store.db : store;
    this.postgres = dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
    this.now = options.now ?? Date.now;
    this.sessionTtlMs = options.sessionTtlMs ?? 8 * 3_600_000;
    this.maxFailures = options.maxFailures ?? 5;
    this.lockoutMs = options.lockoutMs ?? 15 * 60_000;
  }

  /** the user's row; `forUpdate`: held until the transaction ends (PostgreSQL; SQLite has one writer anyway) */
  private async row(db: Kysely<Tables>, username: string, forUpdate = false): Promise<UserRow | undefined> {
    return db
      .selectFrom('users')
      .selectAll()
      .where('username', '=', username)
      .$if(forUpdate && this.postgres, (q) => q.forUpdate())
      .executeTakeFirst();
  }

  private async existing(db: Kysely<Tables>, username: string, forUpdate = false): Promise<UserRow> {
    const row = await this.row(db, username, forUpdate);
    if (!row)
      throw new LabtraceError('E_NOT_FOUND', `user "${username}" is not known`, {
        reason: 'record.not-found',
        params: { type: 'user', id: username },
      });
    return row;
  }

  private sqlite(what: string): LabDatabase['sqlite'] {
    if (this.database === undefined) throw new Error(`users: ${what} needs the embedded SQLite store`);
    return this.database.sqlite;
  }

  async count(): Promise<number> {
    const { n } = await this.store
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  /** A user as shown; `db`: a transaction of the caller's to read in. */
  async get(username: string, db: Kysely<Tables> = this.store): Promise<UserView | undefined> {
    const row = await this.row(db, username);
    return row && view(row);
  }

  /**
   * get() for a module that asks inside its own synchronous SQLite transaction (the notifier's announceNow, for the
   * ingest's security events). Synchronous until the ingest moves; the embedded SQLite store only.
   */
  getNow(username: string): UserView | undefined {
    const row = this.sqlite('getNow').prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && view(row);
  }

  async list(): Promise<UserView[]> {
    return (await this.store.selectFrom('users').selectAll().orderBy('username').execute()).map(view);
  }

  /**
   * A page of users, newest first (by id): `q` a part of the username or the organization (case-insensitive, % and
   * _ taken literally), `role` and `disabled` exact.
   */
  async page(query: {
    limit: number;
    cursor?: string | undefined;
    q?: string | undefined;
    role?: Role | undefined;
    disabled?: boolean | undefined;
  }): Promise<Page<UserView>> {
    const q = query.q?.trim() ?? '';
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`).toLowerCase()}%`;
    const limit = Math.max(1, Math.floor(query.limit));
    const cursor = query.cursor === undefined ? undefined : Number(query.cursor);
    const rows = await this.store
      .selectFrom('users')
      .selectAll()
      // lower() on both sides: SQLite's LIKE ignores the case of ASCII letters, PostgreSQL's does not
      .$if(q !== '', (b) =>
        b.where(sql<boolean>`(lower(username) LIKE ${like} ESCAPE '\\' OR lower(COALESCE(organization, '')) LIKE ${like} ESCAPE '\\')`),
      )
      .$if(query.role !== undefined, (b) => b.where('role', '=', query.role as Role))
      .$if(query.disabled !== undefined, (b) => b.where('disabled', '=', query.disabled ? 1 : 0))
      .$if(cursor !== undefined, (b) => b.where('id', '<', cursor as number))
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    return pageOfRows(rows, query, (r) => r.id, view);
  }

  /**
   * The first start: creates the user `admin` when no admin exists, with the given password or a
   * one-time password that is returned (to be shown once, never logged). Nodes starting at once on one store
   * create one admin: the others find it (undefined), they do not fail.
   */
  async bootstrapAdmin(password?: string): Promise<{ username: string; password: string | undefined } | undefined> {
    if ((await this.admins(this.store)) > 0) return undefined;
    const created = await this.insertUser(SYSTEM_ACTOR, { username: 'admin', role: 'admin', password }, true);
    return created === undefined ? undefined : { username: 'admin', password: created.password };
  }

  /** Creates a user; without a password, a one-time password is generated and returned (it must be changed). */
  async create(actor: Actor, input: NewUser): Promise<{ user: UserView; password: string | undefined }> {
    const created = await this.insertUser(actor, input, false);
    if (created === undefined) throw new Error('unreachable: a user is created or refused');
    return created;
  }

  /** create(); `unlessAdmin`: nothing (undefined) when an admin exists by the time the transaction writes */
  private async insertUser(
    actor: Actor,
    input: NewUser,
    unlessAdmin: boolean,
  ): Promise<{ user: UserView; password: string | undefined } | undefined> {
    const username = parseWith(usernameSchema, input.username, 'username', 'E_BAD_REQUEST');
    if (input.password !== undefined) parseWith(passwordSchema, input.password, 'password', 'E_BAD_REQUEST');
    const grantOrganizations = input.grantOrganizations ?? null;
    const organization = this.checkRoleShape(input.role, input.organization ?? null, input.grantUntil ?? null, grantOrganizations);
    const oneTime = input.password === undefined ? randomBytes(18).toString('base64url') : undefined;
    const hash = await hashPassword(input.password ?? oneTime ?? '');
    const now = this.now();
    const taken = (): LabtraceError =>
      new LabtraceError('E_CONFLICT', `body: username: "${username}" is taken`, {
        reason: 'record.exists',
        params: { type: 'user', id: username },
      });
    const user = await this.store.transaction().execute(async (trx) => {
      await this.checkOrganizations(trx, organization, grantOrganizations);
      if (unlessAdmin && (await this.admins(trx)) > 0) return undefined;
      // one statement decides who has the name: two nodes creating it at once insert one row (the name is UNIQUE)
      const inserted = await trx
        .insertInto('users')
        .values({
          username,
          role: input.role,
          organization,
          password_hash: hash,
          must_change: oneTime === undefined ? 0 : 1,
          grant_until: input.grantUntil ?? null,
          grant_organizations: grantOrganizations === null ? null : JSON.stringify(grantOrganizations),
          created_at: now,
          password_changed_at: now,
        })
        .onConflict((oc) => oc.column('username').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted === undefined) {
        // the first start on another node made the admin meanwhile (it committed before our insert returned)
        if (unlessAdmin && (await this.admins(trx)) > 0) return undefined;
        throw taken();
      }
      const created = view(inserted);
      await this.audit.recordIn(trx, actor, { action: 'create', recordType: 'user', recordId: username, newValue: auditView(created) });
      return created;
    });
    return user === undefined ? undefined : { user, password: oneTime };
  }

  /** Changes a user's role, organization, grant or disabled flag; the reason is required. */
  async update(actor: Actor, username: string, changes: UserChanges, reason: string | undefined): Promise<UserView> {
    const { after, ended } = await this.store.transaction().execute(async (trx) => {
      // PostgreSQL: one change of a user at a time on every node, so that two admins demoting each other at once
      // cannot both pass the last-admin check (SQLite has one writer)
      if (this.postgres) await sql`SELECT pg_advisory_xact_lock(${USERS_LOCK[0]}, ${USERS_LOCK[1]})`.execute(trx);
      const before = await this.existing(trx, username);
      const role = changes.role ?? (before.role as Role);
      const organization = changes.organization === undefined ? before.organization : changes.organization;
      const grantUntil = changes.grantUntil === undefined ? before.grant_until : changes.grantUntil;
      const beforeView = view(before);
      // a grant's organizations go with the auditor role: another role drops them
      const grantOrganizations =
        changes.grantOrganizations !== undefined ? changes.grantOrganizations : role === 'auditor' ? beforeView.grantOrganizations : null;
      this.checkRoleShape(role, organization, grantUntil, grantOrganizations);
      await this.checkOrganizations(trx, organization, grantOrganizations);
      const disabled = changes.disabled === undefined ? before.disabled : changes.disabled ? 1 : 0;
      if (before.role === 'admin' && (role !== 'admin' || disabled === 1) && (await this.admins(trx, true)) <= 1)
        throw new LabtraceError('E_CONFLICT', `user "${username}" is the last active admin`, { reason: 'user.last-admin', params: { username } });
      const updated = await trx
        .updateTable('users')
        .set({
          role,
          organization,
          grant_until: grantUntil,
          grant_organizations: grantOrganizations === null ? null : JSON.stringify(grantOrganizations),
          disabled,
        })
        .where('id', '=', before.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const changed = view(updated);
      // what the user may do or see changed: an auditor reviews these on their own (action=privilege-change)
      const privilege =
        role !== before.role ||
        organization !== before.organization ||
        grantUntil !== before.grant_until ||
        JSON.stringify(grantOrganizations) !== JSON.stringify(beforeView.grantOrganizations);
      await this.audit.recordIn(trx, actor, {
        action: privilege ? 'privilege-change' : 'update',
        recordType: 'user',
        recordId: username,
        oldValue: auditView(beforeView),
        newValue: auditView(changed),
        reason,
      });
      // a changed role or a disabled account takes effect now, not when the session expires
      const end = privilege || disabled === 1;
      if (end) await this.endSessions(trx, before.id);
      return { after: changed, ended: end };
    });
    if (ended) this.emit('sessionsEnded', username);
    return after;
  }

  /** A user's own language and time zone (null: follow the browser); the change is in the audit trail. */
  async setPreferences(actor: Actor, username: string, changes: PreferenceChanges): Promise<UserView> {
    return this.store.transaction().execute(async (trx) => {
      const before = view(await this.existing(trx, username, true));
      const locale = changes.locale === undefined ? before.locale : changes.locale;
      const timeZone = changes.timeZone === undefined ? before.timeZone : changes.timeZone;
      const after = await trx
        .updateTable('users')
        .set({ locale, time_zone: timeZone })
        .where('username', '=', username)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, {
        action: 'update',
        recordType: 'user-preferences',
        recordId: username,
        oldValue: { locale: before.locale, timeZone: before.timeZone },
        newValue: { locale, timeZone },
        reason: actor.username === username ? 'changed by the user' : `changed by ${actor.username}`,
      });
      return view(after);
    });
  }

  /** Sets a user's password (an admin's reset, or a one-time one when none is given) and ends the user's sessions. */
  async setPassword(actor: Actor, username: string, password?: string): Promise<string | undefined> {
    if (password !== undefined) parseWith(passwordSchema, password, 'password', 'E_BAD_REQUEST');
    const oneTime = password === undefined ? randomBytes(18).toString('base64url') : undefined;
    const hash = await hashPassword(password ?? oneTime ?? '');
    await this.store.transaction().execute(async (trx) => {
      const row = await this.existing(trx, username, true);
      await trx
        .updateTable('users')
        .set({
          password_hash: hash,
          must_change: actor.username === username && oneTime === undefined ? 0 : 1,
          password_changed_at: this.now(),
          failed_logins: 0,
          locked_until: null,
        })
        .where('id', '=', row.id)
        .execute();
      await this.audit.recordIn(trx, actor, { action: 'password-set', recordType: 'user', recordId: username });
      await this.endSessions(trx, row.id);
    });
    this.emit('sessionsEnded', username);
    return oneTime;
  }

  /** A user's own password change: the current password proves it is them. Ends every session. */
  async changePassword(principal: Principal, current: string, next: string): Promise<void> {
    const row = await this.existing(this.store, principal.username);
    if (!(await verifyPassword(current, row.password_hash)))
      throw new LabtraceError('E_AUTH', 'body: currentPassword: wrong password', { reason: 'auth.wrong-password' });
    if (current === next) throw new LabtraceError('E_BAD_REQUEST', 'body: newPassword: must differ from the current password');
    await this.setPassword({ username: principal.username, role: principal.role }, principal.username, next);
  }

  /**
   * Signs a user in. Every attempt leaves an audit entry (never the password): a success as the user, a
   * refusal as `anonymous` with its cause, and the attempt that locks the account a `lockout` entry too. Failures
   * are counted in the store by one conditional update each, so that guesses sent at once, to one node or to
   * several, are all counted and the one that reaches the limit locks the account.
   */
  async login(username: string, password: string, context: ClientContext = {}): Promise<LoginResult> {
    const now = this.now();
    const row = await this.row(this.store, username);
    const from = clientOf(context);
    const refusal = (cause: string): LabtraceError => new LabtraceError('E_AUTH', REFUSED, { details: { reason: cause } });
    const refused = (trx: Transaction<Tables>, cause: string, recordId = username): Promise<unknown> =>
      this.audit.recordIn(trx, ANONYMOUS, { action: 'login-failed', recordType: 'session', recordId, newValue: { ...from, cause } });
    const refuse = async (cause: string, recordId = username): Promise<LabtraceError> => {
      await this.store.transaction().execute((trx) => refused(trx, cause, recordId));
      return refusal(cause);
    };
    if (!row) {
      this.dummyHash ??= hashPassword(randomBytes(16).toString('base64url'));
      await verifyPassword(password, await this.dummyHash);
      // not the name typed: it may be a password typed in the wrong field
      throw await refuse('unknown-user', UNKNOWN_USER);
    }
    // a locked account is refused without looking at the password, so that guessing goes no further
    if (row.locked_until !== null && row.locked_until > now) throw await refuse('locked');
    const ok = await verifyPassword(password, row.password_hash);
    if (!ok) {
      throw await this.store.transaction().execute(async (trx) => {
        // counted in the store, unless the account was locked meanwhile (by a guess sent at the same time)
        const counted = await trx
          .updateTable('users')
          .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1), locked_until: null }))
          .where('id', '=', row.id)
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
          .returning(['failed_logins'])
          .executeTakeFirst();
        if (counted === undefined) {
          await refused(trx, 'locked');
          return refusal('locked');
        }
        const failures = Number(counted.failed_logins);
        const lock = failures >= this.maxFailures;
        if (!lock) {
          await refused(trx, 'password');
          return refusal('password');
        }
        await trx
          .updateTable('users')
          .set({ failed_logins: 0, locked_until: now + this.lockoutMs })
          .where('id', '=', row.id)
          .execute();
        await refused(trx, 'locked-now');
        await this.audit.recordIn(trx, SYSTEM_ACTOR, {
          action: 'lockout',
          recordType: 'user',
          recordId: username,
          newValue: { failures, lockedUntil: now + this.lockoutMs },
          reason: `${failures} wrong passwords in a row`,
        });
        return refusal('locked-now');
      });
    }
    if (!this.usable(row, now)) throw await refuse(row.disabled === 1 ? 'disabled' : 'grant-ended');
    const token = `lts_${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + this.sessionTtlMs;
    const cause = await this.store.transaction().execute(async (trx) => {
      // the account as checked above, unless it changed meanwhile (locked by guesses sent at once, disabled, or its
      // password changed, on any node): then no session is made
      const reset = await trx
        .updateTable('users')
        .set({ failed_logins: 0, locked_until: null })
        .where('id', '=', row.id)
        .where('password_hash', '=', row.password_hash)
        .where('disabled', '=', 0)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .returning(['id'])
        .executeTakeFirst();
      if (reset === undefined) {
        const current = await this.row(trx, username);
        const why =
          current === undefined || current.password_hash !== row.password_hash ? 'password' : current.disabled === 1 ? 'disabled' : 'locked';
        await refused(trx, why);
        return why;
      }
      await trx
        .insertInto('sessions')
        .values({ token_hash: sha256(token), user_id: row.id, kind: 'session', name: null, created_at: now, expires_at: expiresAt })
        .execute();
      await this.audit.recordIn(
        trx,
        { username: row.username, role: row.role },
        { action: 'login', recordType: 'session', recordId: row.username, newValue: { ...from, expiresAt } },
      );
      return undefined;
    });
    if (cause !== undefined) throw refusal(cause);
    return { token, csrf: csrfOf(token), expiresAt, user: view(row) };
  }

  /** An API token for a machine or a script, acting as the user; shown once. */
  async createApiToken(actor: Actor, username: string, name: string, ttlMs: number): Promise<{ token: string; expiresAt: number; id: number }> {
    const token = `lta_${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    const expiresAt = now + ttlMs;
    const id = await this.store.transaction().execute(async (trx) => {
      const row = await this.existing(trx, username);
      const inserted = await trx
        .insertInto('sessions')
        .values({ token_hash: sha256(token), user_id: row.id, kind: 'api', name, created_at: now, expires_at: expiresAt })
        .returning(['id'])
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, { action: 'token-created', recordType: 'user', recordId: username, newValue: { name, expiresAt } });
      return Number(inserted.id);
    });
    return { token, expiresAt, id };
  }

  /** API tokens that have not expired, newest first: one user's, or (undefined) everyone's. Never their secrets. */
  async apiTokens(username?: string, db: Kysely<Tables> = this.store, id?: number): Promise<ApiTokenView[]> {
    const rows = await db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['s.id as id', 's.name as name', 'u.username as username', 'u.role as role', 's.created_at as createdAt', 's.expires_at as expiresAt'])
      .where('s.kind', '=', 'api')
      .where('s.expires_at', '>', this.now())
      .$if(username !== undefined, (q) => q.where('u.username', '=', username as string))
      .$if(id !== undefined, (q) => q.where('s.id', '=', id as number))
      .orderBy('s.id', 'desc')
      .execute();
    return rows.map((r) => ({ ...r, id: Number(r.id), role: r.role as Role, name: r.name ?? '' }));
  }

  /**
   * Revokes an API token at once (its row is deleted: the token no longer authenticates). `owner`: the token must
   * be this user's (a non-admin revokes only their own); another's answers 404 like an unknown one.
   */
  async revokeApiToken(actor: Actor, id: number, owner: string | undefined, reason: string | undefined): Promise<ApiTokenView> {
    return this.store.transaction().execute(async (trx) => {
      const notFound = (): LabtraceError =>
        new LabtraceError('E_NOT_FOUND', `no API token ${id}`, { reason: 'record.not-found', params: { type: 'token', id: String(id) } });
      const [token] = await this.apiTokens(owner, trx, id);
      if (token === undefined) throw notFound();
      // revoked on two nodes at once: one deletes the row, the other finds it gone (and records nothing)
      const deleted = await trx.deleteFrom('sessions').where('id', '=', id).where('kind', '=', 'api').executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw notFound();
      await this.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'api-token',
        recordId: `${token.username}/${id}`,
        oldValue: { name: token.name, expiresAt: token.expiresAt },
        newValue: { revoked: true },
        reason,
      });
      return token;
    });
  }

  /** The principal a session or API token stands for, if it is valid now. */
  async authenticate(token: string, via: Principal['via']): Promise<Principal | undefined> {
    const now = this.now();
    // read on every request: a change to the user, from any node or the command line, counts at once. The query is
    // built once (its only parameter: the token's hash), so that a request costs the lookup alone
    this.byToken ??= this.store
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .selectAll('u')
      .select('s.expires_at as session_expires')
      .where('s.token_hash', '=', '')
      .compile();
    const byToken: CompiledQuery<UserRow & { session_expires: number }> = { ...this.byToken, parameters: [sha256(token)] };
    const [row] = (await this.store.executeQuery(byToken)).rows;
    if (!row || row.session_expires <= now || !this.usable(row, now)) return undefined;
    return {
      userId: row.id,
      username: row.username,
      role: row.role as Role,
      organization: row.organization,
      via,
      mustChange: row.must_change === 1,
      // only a cookie needs one (a bearer token is never sent by a browser on its own)
      csrf: via === 'cookie' ? csrfOf(token) : '',
      grantOrganizations: row.grant_organizations === null ? null : (JSON.parse(row.grant_organizations) as string[]),
    };
  }

  /** Logout: ends every session and API token of the user, and says so in the audit trail. */
  async logoutAll(actor: Actor, username: string, context: ClientContext = {}): Promise<void> {
    await this.store.transaction().execute(async (trx) => {
      await this.endSessions(trx, (await this.existing(trx, username)).id);
      await this.audit.recordIn(trx, actor, { action: 'logout', recordType: 'session', recordId: username, newValue: clientOf(context) });
    });
    this.emit('sessionsEnded', username);
  }

  /** Removes expired sessions (they are refused anyway; this keeps the table small). */
  async prune(): Promise<void> {
    await this.store.deleteFrom('sessions').where('expires_at', '<=', this.now()).execute();
  }

  /** A customer organization; its contact (7.8.2.1 e) is printed on its reports. */
  async createOrganization(
    actor: Actor,
    id: string,
    name: string,
    contact?: string,
  ): Promise<{ id: string; name: string; contact: string | null; createdAt: number }> {
    parseWith(idSchema, id, 'organization id', 'E_BAD_REQUEST');
    const createdAt = this.now();
    await this.store.transaction().execute(async (trx) => {
      // one statement decides: two nodes creating the organization at once insert one row
      const inserted = await trx
        .insertInto('organizations')
        .values({ id, name, contact: contact ?? null, created_at: createdAt })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning(['id'])
        .executeTakeFirst();
      if (inserted === undefined)
        throw new LabtraceError('E_CONFLICT', `body: id: organization "${id}" exists`, {
          reason: 'record.exists',
          params: { type: 'organization', id },
        });
      await this.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'organization',
        recordId: id,
        newValue: contact === undefined ? { id, name } : { id, name, contact },
      });
    });
    return { id, name, contact: contact ?? null, createdAt };
  }

  async organizations(): Promise<{ id: string; name: string; contact: string | null; createdAt: number }[]> {
    const rows = await this.store.selectFrom('organizations').select(['id', 'name', 'contact', 'created_at']).orderBy('id').execute();
    return rows.map((o) => ({ id: o.id, name: o.name, contact: o.contact, createdAt: o.created_at }));
  }

  private usable(row: UserRow, now: number): boolean {
    return row.disabled === 0 && (row.grant_until === null || row.grant_until > now);
  }

  /** the admins (`active`: those not disabled) */
  private async admins(db: Kysely<Tables>, active = false): Promise<number> {
    const { n } = await db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'admin')
      .$if(active, (q) => q.where('disabled', '=', 0))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  /** Deletes the user's sessions and API tokens; the caller tells of it ('sessionsEnded') once its transaction committed. */
  private async endSessions(trx: Transaction<Tables>, userId: number): Promise<void> {
    await trx.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  /** A client belongs to exactly one organization, others to none; an auditor's grant has an end and may cover some organizations. */
  private checkRoleShape(role: Role, organization: string | null, grantUntil: number | null, grantOrganizations: string[] | null): string | null {
    if (role === 'client') {
      if (organization === null) throw new LabtraceError('E_BAD_REQUEST', 'body: organization: required for a client');
    } else if (organization !== null) throw new LabtraceError('E_BAD_REQUEST', `body: organization: only a client belongs to an organization`);
    if (role === 'auditor' && grantUntil === null)
      throw new LabtraceError('E_BAD_REQUEST', 'body: grantUntil: an auditor is granted access until a time');
    if (grantOrganizations !== null && role !== 'auditor')
      throw new LabtraceError('E_BAD_REQUEST', 'body: grantOrganizations: only an auditor has a grant');
    return organization;
  }

  /** The organizations named (a client's, an auditor's grant) exist. */
  private async checkOrganizations(db: Kysely<Tables>, organization: string | null, grantOrganizations: string[] | null): Promise<void> {
    const named = [...(organization === null ? [] : [organization]), ...(grantOrganizations ?? [])];
    if (named.length === 0) return;
    const known = new Set((await db.selectFrom('organizations').select('id').where('id', 'in', named).execute()).map((o) => o.id));
    if (organization !== null && !known.has(organization))
      throw new LabtraceError('E_BAD_REQUEST', `body: organization: "${organization}" is not known`);
    (grantOrganizations ?? []).forEach((id, i) => {
      if (!known.has(id)) throw new LabtraceError('E_BAD_REQUEST', `body: grantOrganizations[${i}]: "${id}" is not known`);
    });
  }
}

/** a user as the audit trail records it: never the password hash */
function auditView(user: UserView): Record<string, unknown> {
  return {
    username: user.username,
    role: user.role,
    organization: user.organization,
    disabled: user.disabled,
    grantUntil: user.grantUntil,
    grantOrganizations: user.grantOrganizations,
  };
}
