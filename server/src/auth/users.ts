// Users, roles, customer organizations, sessions and API tokens. Passwords are scrypt hashes; session
// and API tokens are random secrets of which only a SHA-256 hash is stored. A login that fails too
// often locks the account for a while. Every change to a user is written to the audit trail.
import crypto, { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { passwordSchema, ROLES, usernameSchema, type Locale, type Page, type Role } from '@labtrace/protocols/api';
import { pageOfRows, pageSql } from '../api/paging.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { SYSTEM_ACTOR } from '../audit/audit-trail.js';
import { hashPassword, verifyPassword } from '../broker/passwords.js';
import type { LabDatabase } from '../store/database.js';

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

interface UserRow {
  id: number;
  username: string;
  role: Role;
  organization: string | null;
  password_hash: string;
  must_change: number;
  disabled: number;
  grant_until: number | null;
  grant_organizations: string | null;
  failed_logins: number;
  locked_until: number | null;
  created_at: number;
  password_changed_at: number;
  locale: string | null;
  time_zone: string | null;
}

// one-shot hashing where Node has it (>= 20.12): a request's token is hashed on every request
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256 = (text: string): string => (oneShot ? oneShot('sha256', text, 'hex') : createHash('sha256').update(text).digest('hex'));
/** the anti-CSRF token of a session: derived from its secret, so nothing more is stored and only its holder knows it */
export const csrfOf = (token: string): string => createHash('sha256').update(`csrf:${token}`).digest('base64url');
const view = (row: UserRow): UserView => ({
  username: row.username,
  role: row.role,
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

export class Users extends EventEmitter<{ sessionsEnded: [username: string] }> {
  private readonly now: () => number;
  readonly sessionTtlMs: number;
  private readonly maxFailures: number;
  private readonly lockoutMs: number;
  /** the statement of every authenticated request, prepared once (the tables exist only after the migration) */
  private byToken: Statement<[string], UserRow & { session_expires: number }> | undefined;
  /** compared against when the user is unknown, so that a login takes as long either way */
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    options: AuthOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.sessionTtlMs = options.sessionTtlMs ?? 8 * 3_600_000;
    this.maxFailures = options.maxFailures ?? 5;
    this.lockoutMs = options.lockoutMs ?? 15 * 60_000;
  }

  private row(username: string): UserRow | undefined {
    return this.database.sqlite.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
  }

  private existing(username: string): UserRow {
    const row = this.row(username);
    if (!row)
      throw new LabtraceError('E_NOT_FOUND', `user "${username}" is not known`, {
        reason: 'record.not-found',
        params: { type: 'user', id: username },
      });
    return row;
  }

  /** Runs `fn` in one transaction of the store: a change made elsewhere (a gateway's key) and its audit entry together. */
  transaction<T>(fn: () => T): T {
    return this.database.sqlite.transaction(fn)();
  }

  count(): number {
    return (this.database.sqlite.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  get(username: string): UserView | undefined {
    const row = this.row(username);
    return row && view(row);
  }

  list(): UserView[] {
    return (this.database.sqlite.prepare('SELECT * FROM users ORDER BY username').all() as UserRow[]).map(view);
  }

  /**
   * A page of users, newest first (by id): `q` a part of the username or the organization (case-insensitive, % and
   * _ taken literally), `role` and `disabled` exact.
   */
  page(query: {
    limit: number;
    cursor?: string | undefined;
    q?: string | undefined;
    role?: Role | undefined;
    disabled?: boolean | undefined;
  }): Page<UserView> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const q = query.q?.trim() ?? '';
    if (q !== '') {
      const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push("(username LIKE ? ESCAPE '\\' OR COALESCE(organization, '') LIKE ? ESCAPE '\\')");
      args.push(like, like);
    }
    if (query.role !== undefined) {
      where.push('role = ?');
      args.push(query.role);
    }
    if (query.disabled !== undefined) {
      where.push('disabled = ?');
      args.push(query.disabled ? 1 : 0);
    }
    const page = pageSql(query, 'id');
    const rows = this.database.sqlite
      .prepare(`SELECT * FROM users WHERE ${[...where, page.where].join(' AND ')} ${page.orderLimit}`)
      .all(...args, ...page.params) as UserRow[];
    return pageOfRows(rows, query, (r) => r.id, view);
  }

  /**
   * The first start: creates the user `admin` when no admin exists, with the given password or a
   * one-time password that is returned (to be shown once, never logged).
   */
  async bootstrapAdmin(password?: string): Promise<{ username: string; password: string | undefined } | undefined> {
    const admins = (this.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'").get() as { n: number }).n;
    if (admins > 0) return undefined;
    const created = await this.create(SYSTEM_ACTOR, { username: 'admin', role: 'admin', password });
    return { username: 'admin', password: created.password };
  }

  /** Creates a user; without a password, a one-time password is generated and returned (it must be changed). */
  async create(actor: Actor, input: NewUser): Promise<{ user: UserView; password: string | undefined }> {
    const username = parseWith(usernameSchema, input.username, 'username', 'E_BAD_REQUEST');
    if (input.password !== undefined) parseWith(passwordSchema, input.password, 'password', 'E_BAD_REQUEST');
    const grantOrganizations = input.grantOrganizations ?? null;
    const organization = this.checkRoleScope(input.role, input.organization ?? null, input.grantUntil ?? null, grantOrganizations);
    const oneTime = input.password === undefined ? randomBytes(18).toString('base64url') : undefined;
    const hash = await hashPassword(input.password ?? oneTime ?? '');
    const now = this.now();
    const db = this.database.sqlite;
    db.transaction(() => {
      if (this.row(username))
        throw new LabtraceError('E_CONFLICT', `body: username: "${username}" is taken`, {
          reason: 'record.exists',
          params: { type: 'user', id: username },
        });
      db.prepare(
        `INSERT INTO users (username, role, organization, password_hash, must_change, grant_until, grant_organizations, created_at, password_changed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        username,
        input.role,
        organization,
        hash,
        oneTime === undefined ? 0 : 1,
        input.grantUntil ?? null,
        grantOrganizations === null ? null : JSON.stringify(grantOrganizations),
        now,
        now,
      );
      const created = view(this.existing(username));
      this.audit.record(actor, { action: 'create', recordType: 'user', recordId: username, newValue: auditView(created) });
    })();
    return { user: view(this.existing(username)), password: oneTime };
  }

  /** Changes a user's role, organization, grant or disabled flag; the reason is required. */
  update(actor: Actor, username: string, changes: UserChanges, reason: string | undefined): UserView {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const before = this.existing(username);
      const role = changes.role ?? before.role;
      const organization = changes.organization === undefined ? before.organization : changes.organization;
      const grantUntil = changes.grantUntil === undefined ? before.grant_until : changes.grantUntil;
      const beforeView = view(before);
      // a grant's organizations go with the auditor role: another role drops them
      const grantOrganizations =
        changes.grantOrganizations !== undefined ? changes.grantOrganizations : role === 'auditor' ? beforeView.grantOrganizations : null;
      this.checkRoleScope(role, organization, grantUntil, grantOrganizations);
      const disabled = changes.disabled === undefined ? before.disabled : changes.disabled ? 1 : 0;
      if (before.role === 'admin' && (role !== 'admin' || disabled === 1) && this.activeAdmins() <= 1)
        throw new LabtraceError('E_CONFLICT', `user "${username}" is the last active admin`, { reason: 'user.last-admin', params: { username } });
      db.prepare('UPDATE users SET role = ?, organization = ?, grant_until = ?, grant_organizations = ?, disabled = ? WHERE id = ?').run(
        role,
        organization,
        grantUntil,
        grantOrganizations === null ? null : JSON.stringify(grantOrganizations),
        disabled,
        before.id,
      );
      const after = view(this.existing(username));
      // what the user may do or see changed: an auditor reviews these on their own (action=privilege-change)
      const privilege =
        role !== before.role ||
        organization !== before.organization ||
        grantUntil !== before.grant_until ||
        JSON.stringify(grantOrganizations) !== JSON.stringify(beforeView.grantOrganizations);
      this.audit.record(actor, {
        action: privilege ? 'privilege-change' : 'update',
        recordType: 'user',
        recordId: username,
        oldValue: auditView(beforeView),
        newValue: auditView(after),
        reason,
      });
      // a changed role or a disabled account takes effect now, not when the session expires
      if (privilege || disabled === 1) this.endSessions(before.id, username);
      return after;
    })();
  }

  /** A user's own language and time zone (null: follow the browser); the change is in the audit trail. */
  setPreferences(actor: Actor, username: string, changes: PreferenceChanges): UserView {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const before = view(this.existing(username));
      const locale = changes.locale === undefined ? before.locale : changes.locale;
      const timeZone = changes.timeZone === undefined ? before.timeZone : changes.timeZone;
      db.prepare('UPDATE users SET locale = ?, time_zone = ? WHERE username = ?').run(locale, timeZone, username);
      this.audit.record(actor, {
        action: 'update',
        recordType: 'user-preferences',
        recordId: username,
        oldValue: { locale: before.locale, timeZone: before.timeZone },
        newValue: { locale, timeZone },
        reason: actor.username === username ? 'changed by the user' : `changed by ${actor.username}`,
      });
      return view(this.existing(username));
    })();
  }

  /** Sets a user's password (an admin's reset, or a one-time one when none is given) and ends the user's sessions. */
  async setPassword(actor: Actor, username: string, password?: string): Promise<string | undefined> {
    if (password !== undefined) parseWith(passwordSchema, password, 'password', 'E_BAD_REQUEST');
    const oneTime = password === undefined ? randomBytes(18).toString('base64url') : undefined;
    const hash = await hashPassword(password ?? oneTime ?? '');
    const db = this.database.sqlite;
    db.transaction(() => {
      const row = this.existing(username);
      db.prepare(
        'UPDATE users SET password_hash = ?, must_change = ?, password_changed_at = ?, failed_logins = 0, locked_until = NULL WHERE id = ?',
      ).run(hash, actor.username === username && oneTime === undefined ? 0 : 1, this.now(), row.id);
      this.audit.record(actor, { action: 'password-set', recordType: 'user', recordId: username });
      this.endSessions(row.id, username);
    })();
    return oneTime;
  }

  /** A user's own password change: the current password proves it is them. Ends every session. */
  async changePassword(principal: Principal, current: string, next: string): Promise<void> {
    const row = this.existing(principal.username);
    if (!(await verifyPassword(current, row.password_hash)))
      throw new LabtraceError('E_AUTH', 'body: currentPassword: wrong password', { reason: 'auth.wrong-password' });
    if (current === next) throw new LabtraceError('E_BAD_REQUEST', 'body: newPassword: must differ from the current password');
    await this.setPassword({ username: principal.username, role: principal.role }, principal.username, next);
  }

  /**
   * Signs a user in. Every attempt leaves an audit entry (never the password): a success as the user, a
   * refusal as `anonymous` with its cause, and the attempt that locks the account a `lockout` entry too.
   */
  async login(username: string, password: string, context: ClientContext = {}): Promise<LoginResult> {
    const now = this.now();
    const row = this.row(username);
    const from = clientOf(context);
    const refuse = (cause: string, recordId = username): LabtraceError => {
      this.audit.record(ANONYMOUS, { action: 'login-failed', recordType: 'session', recordId, newValue: { ...from, cause } });
      return new LabtraceError('E_AUTH', REFUSED, { details: { reason: cause } });
    };
    if (!row) {
      this.dummyHash ??= hashPassword(randomBytes(16).toString('base64url'));
      await verifyPassword(password, await this.dummyHash);
      // not the name typed: it may be a password typed in the wrong field
      throw refuse('unknown-user', UNKNOWN_USER);
    }
    // a locked account is refused without looking at the password, so that guessing goes no further
    if (row.locked_until !== null && row.locked_until > now) throw refuse('locked');
    const ok = await verifyPassword(password, row.password_hash);
    const db = this.database.sqlite;
    if (!ok) {
      const failures = row.failed_logins + 1;
      const lock = failures >= this.maxFailures;
      throw db.transaction(() => {
        db.prepare('UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?').run(
          lock ? 0 : failures,
          lock ? now + this.lockoutMs : null,
          row.id,
        );
        const err = refuse(lock ? 'locked-now' : 'password');
        if (lock)
          this.audit.record(SYSTEM_ACTOR, {
            action: 'lockout',
            recordType: 'user',
            recordId: username,
            newValue: { failures, lockedUntil: now + this.lockoutMs },
            reason: `${failures} wrong passwords in a row`,
          });
        return err;
      })();
    }
    if (!this.usable(row, now)) throw refuse(row.disabled === 1 ? 'disabled' : 'grant-ended');
    const token = `lts_${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + this.sessionTtlMs;
    db.transaction(() => {
      db.prepare('UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?').run(row.id);
      db.prepare("INSERT INTO sessions (token_hash, user_id, kind, created_at, expires_at) VALUES (?, ?, 'session', ?, ?)").run(
        sha256(token),
        row.id,
        now,
        expiresAt,
      );
      this.audit.record(
        { username: row.username, role: row.role },
        { action: 'login', recordType: 'session', recordId: row.username, newValue: { ...from, expiresAt } },
      );
    })();
    return { token, csrf: csrfOf(token), expiresAt, user: view(row) };
  }

  /** An API token for a machine or a script, acting as the user; shown once. */
  createApiToken(actor: Actor, username: string, name: string, ttlMs: number): { token: string; expiresAt: number; id: number } {
    const db = this.database.sqlite;
    const token = `lta_${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    const expiresAt = now + ttlMs;
    db.transaction(() => {
      const row = this.existing(username);
      db.prepare("INSERT INTO sessions (token_hash, user_id, kind, name, created_at, expires_at) VALUES (?, ?, 'api', ?, ?, ?)").run(
        sha256(token),
        row.id,
        name,
        now,
        expiresAt,
      );
      this.audit.record(actor, { action: 'token-created', recordType: 'user', recordId: username, newValue: { name, expiresAt } });
    })();
    return { token, expiresAt, id: Number(db.prepare('SELECT rowid FROM sessions WHERE token_hash = ?').pluck().get(sha256(token))) };
  }

  /** API tokens that have not expired, newest first: one user's, or (undefined) everyone's. Never their secrets. */
  apiTokens(username?: string): ApiTokenView[] {
    const rows = this.database.sqlite
      .prepare(
        `SELECT s.rowid AS id, s.name, u.username, u.role, s.created_at AS createdAt, s.expires_at AS expiresAt
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.kind = 'api' AND s.expires_at > ? ${username === undefined ? '' : 'AND u.username = ?'} ORDER BY s.rowid DESC`,
      )
      .all(...(username === undefined ? [this.now()] : [this.now(), username])) as ApiTokenView[];
    return rows.map((r) => ({ ...r, name: r.name ?? '' }));
  }

  /**
   * Revokes an API token at once (its row is deleted: the token no longer authenticates). `owner`: the token must
   * be this user's (a non-admin revokes only their own); another's answers 404 like an unknown one.
   */
  revokeApiToken(actor: Actor, id: number, owner: string | undefined, reason: string | undefined): ApiTokenView {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const token = this.apiTokens(owner).find((t) => t.id === id);
      if (token === undefined)
        throw new LabtraceError('E_NOT_FOUND', `no API token ${id}`, { reason: 'record.not-found', params: { type: 'token', id: String(id) } });
      db.prepare("DELETE FROM sessions WHERE rowid = ? AND kind = 'api'").run(id);
      this.audit.record(actor, {
        action: 'state-change',
        recordType: 'api-token',
        recordId: `${token.username}/${id}`,
        oldValue: { name: token.name, expiresAt: token.expiresAt },
        newValue: { revoked: true },
        reason,
      });
      return token;
    })();
  }

  /** The principal a session or API token stands for, if it is valid now. */
  authenticate(token: string, via: Principal['via']): Principal | undefined {
    const now = this.now();
    // read on every request (a few microseconds): a change to the user, from this process or the command line, counts at once
    this.byToken ??= this.database.sqlite.prepare(
      'SELECT u.*, s.expires_at AS session_expires FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?',
    );
    const row = this.byToken.get(sha256(token));
    if (!row || row.session_expires <= now || !this.usable(row, now)) return undefined;
    return {
      userId: row.id,
      username: row.username,
      role: row.role,
      organization: row.organization,
      via,
      mustChange: row.must_change === 1,
      // only a cookie needs one (a bearer token is never sent by a browser on its own)
      csrf: via === 'cookie' ? csrfOf(token) : '',
      grantOrganizations: row.grant_organizations === null ? null : (JSON.parse(row.grant_organizations) as string[]),
    };
  }

  /** Logout: ends every session and API token of the user, and says so in the audit trail. */
  logoutAll(actor: Actor, username: string, context: ClientContext = {}): void {
    const db = this.database.sqlite;
    db.transaction(() => {
      this.endSessions(this.existing(username).id, username);
      this.audit.record(actor, { action: 'logout', recordType: 'session', recordId: username, newValue: clientOf(context) });
    })();
  }

  /** Removes expired sessions (they are refused anyway; this keeps the table small). */
  prune(): void {
    this.database.sqlite.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(this.now());
  }

  /** A customer organization; its contact (7.8.2.1 e) is printed on its reports. */
  createOrganization(
    actor: Actor,
    id: string,
    name: string,
    contact?: string,
  ): { id: string; name: string; contact: string | null; createdAt: number } {
    parseWith(idSchema, id, 'organization id', 'E_BAD_REQUEST');
    const db = this.database.sqlite;
    const createdAt = this.now();
    db.transaction(() => {
      if (db.prepare('SELECT 1 FROM organizations WHERE id = ?').get(id))
        throw new LabtraceError('E_CONFLICT', `body: id: organization "${id}" exists`, {
          reason: 'record.exists',
          params: { type: 'organization', id },
        });
      db.prepare('INSERT INTO organizations (id, name, contact, created_at) VALUES (?, ?, ?, ?)').run(id, name, contact ?? null, createdAt);
      this.audit.record(actor, {
        action: 'create',
        recordType: 'organization',
        recordId: id,
        newValue: contact === undefined ? { id, name } : { id, name, contact },
      });
    })();
    return { id, name, contact: contact ?? null, createdAt };
  }

  organizations(): { id: string; name: string; contact: string | null; createdAt: number }[] {
    return (
      this.database.sqlite.prepare('SELECT id, name, contact, created_at FROM organizations ORDER BY id').all() as {
        id: string;
        name: string;
        contact: string | null;
        created_at: number;
      }[]
    ).map((o) => ({ id: o.id, name: o.name, contact: o.contact, createdAt: o.created_at }));
  }

  private usable(row: UserRow, now: number): boolean {
    return row.disabled === 0 && (row.grant_until === null || row.grant_until > now);
  }

  private activeAdmins(): number {
    return (this.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0").get() as { n: number }).n;
  }

  private endSessions(userId: number, username: string): void {
    this.database.sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(userId);
    this.emit('sessionsEnded', username);
  }

  /** A client belongs to exactly one organization, others to none; an auditor's grant has an end and may cover some organizations. */
  private checkRoleScope(role: Role, organization: string | null, grantUntil: number | null, grantOrganizations: string[] | null): string | null {
    if (role === 'client') {
      if (organization === null) throw new LabtraceError('E_BAD_REQUEST', 'body: organization: required for a client');
      if (!this.database.sqlite.prepare('SELECT 1 FROM organizations WHERE id = ?').get(organization))
        throw new LabtraceError('E_BAD_REQUEST', `body: organization: "${organization}" is not known`);
    } else if (organization !== null) throw new LabtraceError('E_BAD_REQUEST', `body: organization: only a client belongs to an organization`);
    if (role === 'auditor' && grantUntil === null)
      throw new LabtraceError('E_BAD_REQUEST', 'body: grantUntil: an auditor is granted access until a time');
    if (grantOrganizations !== null) {
      if (role !== 'auditor') throw new LabtraceError('E_BAD_REQUEST', 'body: grantOrganizations: only an auditor has a grant');
      const known = this.database.sqlite.prepare('SELECT 1 FROM organizations WHERE id = ?');
      grantOrganizations.forEach((id, i) => {
        if (!known.get(id)) throw new LabtraceError('E_BAD_REQUEST', `body: grantOrganizations[${i}]: "${id}" is not known`);
      });
    }
    return organization;
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
