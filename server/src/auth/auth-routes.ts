// Sign-in, sign-out, password change and API tokens; user and organization administration; the audit trail for auditors.
import type { Request, Response } from 'express';
import express from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { CSV_COLUMNS, csvLine, EXPORT_FORMAT, exportedOf, type ExportHeader, type ExportTrailer } from '../audit/audit-export.js';
import type { Actor, AuditFilter, AuditTrail } from '../audit/audit-trail.js';
import type { Logger } from '../log.js';
import { CSRF_COOKIE, principalOf, routeOf, SESSION_COOKIE } from './policy.js';
import type { ClientContext, Principal, Users } from './users.js';
import { visibleOrganizations } from './visibility.js';

/** Refuses logins from one address beyond `max` attempts in `windowMs` (slows guessing across many accounts). */
export class LoginThrottle {
  private readonly attempts = new Map<string, number[]>();

  constructor(
    private readonly max = 20,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  take(address: string): void {
    const now = this.now();
    const recent = (this.attempts.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.max)
      throw new LabtraceError('E_RATE_LIMITED', 'too many login attempts from this address; wait a minute', {
        reason: 'auth.login-rate-limited',
      });
    recent.push(now);
    this.attempts.set(address, recent);
    if (this.attempts.size > 10_000) this.attempts.clear();
  }
}

function signedIn(req: Request): Principal {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach a handler that calls this
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actorOf = (p: Principal): Actor => ({ username: p.username, role: p.role });
const clientContext = (req: Request): ClientContext => ({ ip: req.ip, userAgent: req.get('user-agent') });

function clearCookies(res: Response): void {
  res.clearCookie(SESSION_COOKIE, { path: '/' });
  res.clearCookie(CSRF_COOKIE, { path: '/' });
}

export function authRoutes(users: Users, audit: AuditTrail, logger: Logger, throttle = new LoginThrottle()): express.Router {
  const router = express.Router();

  // the throttle counts every attempt, a malformed one too
  const throttled: express.RequestHandler = (req, _res, next) => {
    throttle.take(req.ip ?? 'unknown');
    next();
  };
  routeOf(router, api.login, throttled, async (req, res, { body }) => {
    try {
      const result = await users.login(body.username, body.password, clientContext(req));
      const cookie = { path: '/', sameSite: 'strict' as const, secure: req.secure, expires: new Date(result.expiresAt) };
      res.cookie(SESSION_COOKIE, result.token, { ...cookie, httpOnly: true });
      res.cookie(CSRF_COOKIE, result.csrf, cookie);
      logger.info({ user: result.user.username, role: result.user.role, ip: req.ip }, 'login');
      res.json(result);
    } catch (err) {
      if (!(err instanceof LabtraceError) || err.code !== 'E_AUTH') throw err;
      const cause = (err.details as { reason?: string } | undefined)?.reason ?? 'unknown-user';
      // a name that is no user is not logged: it is often a password typed in the wrong field
      logger.warn({ user: cause === 'unknown-user' ? '(unknown user)' : body.username, ip: req.ip, reason: cause }, 'login refused');
      // the client learns only that it was refused, not why
      throw new LabtraceError('E_AUTH', err.message, { reason: 'auth.login-refused' });
    }
  });

  routeOf(router, api.logout, async (req, res) => {
    const principal = signedIn(req);
    await users.logoutAll(actorOf(principal), principal.username, clientContext(req));
    clearCookies(res);
    logger.info({ user: principal.username }, 'logout: every session ended');
    res.status(204).end();
  });

  const meOf = async (principal: Principal) => ({
    ...(await users.get(principal.username)),
    csrf: principal.via === 'cookie' ? principal.csrf : undefined,
  });

  routeOf(router, api.me, async (req, res) => {
    res.json(await meOf(signedIn(req)));
  });

  // the user's own language and time zone; audited, open to every role (policy.ts)
  routeOf(router, api.updatePreferences, async (req, res, { body }) => {
    const principal = signedIn(req);
    await users.setPreferences(actorOf(principal), principal.username, body);
    res.json(await meOf(principal));
  });

  routeOf(router, api.changePassword, async (req, res, { body }) => {
    const principal = signedIn(req);
    await users.changePassword(principal, body.currentPassword, body.newPassword);
    clearCookies(res);
    logger.info({ user: principal.username }, 'password changed; every session ended');
    res.status(204).end();
  });

  routeOf(router, api.createToken, async (req, res, { body }) => {
    const principal = signedIn(req);
    res.status(201).json(await users.createApiToken(actorOf(principal), principal.username, body.name, body.ttlDays * 86_400_000));
  });

  // the caller's own tokens; an admin's view holds every user's (and may revoke any)
  routeOf(router, api.listTokens, async (req, res) => {
    const principal = signedIn(req);
    res.json(await users.apiTokens(principal.role === 'admin' ? undefined : principal.username));
  });

  routeOf(router, api.revokeToken, async (req, res, { params, body }) => {
    const principal = signedIn(req);
    res.json(await users.revokeApiToken(actorOf(principal), params.id, principal.role === 'admin' ? undefined : principal.username, body.reason));
  });

  routeOf(router, api.listUsers, async (_req, res, { query }) => {
    const { disabled, ...rest } = query;
    res.json(await users.page({ ...rest, ...(disabled === undefined ? {} : { disabled: disabled === 'true' }) }));
  });

  routeOf(router, api.createUser, async (req, res, { body }) => {
    const { user, password } = await users.create(actorOf(signedIn(req)), body);
    res.status(201).json({ ...user, ...(password === undefined ? {} : { oneTimePassword: password }) });
  });

  routeOf(router, api.updateUser, async (req, res, { params, body }) => {
    const { reason, ...changes } = body;
    res.json(await users.update(actorOf(signedIn(req)), params.username, changes, reason));
  });

  routeOf(router, api.resetPassword, async (req, res, { params, body }) => {
    const oneTime = await users.setPassword(actorOf(signedIn(req)), params.username, body.password);
    res.json(oneTime === undefined ? {} : { oneTimePassword: oneTime });
  });

  routeOf(router, api.listOrganizations, async (_req, res) => {
    res.json(await users.organizations());
  });

  routeOf(router, api.createOrganization, async (req, res, { body }) => {
    res.status(201).json(await users.createOrganization(actorOf(signedIn(req)), body.id, body.name, body.contact));
  });

  routeOf(router, api.listAudit, async (req, res, { query }) => {
    const { limit, cursor, ...q } = query;
    res.json(await audit.page(filterOf(q, signedIn(req)), { limit, cursor }));
  });

  // the selected entries with their hashes, streamed a page at a time; `labtrace verify-audit` checks the file
  routeOf(router, api.exportAudit, async (req, res, { query }) => {
    const { format, ...q } = query;
    const principal = signedIn(req);
    const filter = filterOf(q, principal);
    const csv = format === 'csv';
    const exportedAt = Date.now();
    res.type(csv ? 'text/csv' : 'application/x-ndjson');
    res.attachment(`audit-trail-${new Date(exportedAt).toISOString().slice(0, 10)}.${csv ? 'csv' : 'jsonl'}`);
    logger.info({ user: principal.username, filter: q, format }, 'audit trail exported');
    const header: ExportHeader = { format: EXPORT_FORMAT, version: 1, exportedAt, filter: q, complete: Object.keys(filter).length === 0 };
    if (!(await send(res, csv ? `${CSV_COLUMNS.join(',')}\n` : `${JSON.stringify(header)}\n`))) return;
    let count = 0;
    let lastHash: string | null = null;
    for await (const page of audit.pages(filter)) {
      const lines = page.map((row) => `${csv ? csvLine(row) : JSON.stringify(exportedOf(row))}\n`).join('');
      if (!(await send(res, lines))) return;
      count += page.length;
      lastHash = page[page.length - 1]?.hash ?? lastHash;
    }
    const trailer: ExportTrailer = { end: true, count, lastHash };
    res.end(csv ? '' : `${JSON.stringify(trailer)}\n`);
  });

  return router;
}

/** the trail's filter from a query, limited for a viewer who sees some organizations only */
function filterOf(
  q: { [K in Exclude<keyof AuditFilter, 'limit' | 'organizations'>]?: AuditFilter[K] | undefined },
  principal: Principal,
): Omit<AuditFilter, 'limit'> {
  const organizations = visibleOrganizations(principal);
  const filter: Omit<AuditFilter, 'limit'> = organizations === undefined ? {} : { organizations };
  for (const [key, value] of Object.entries(q)) if (value !== undefined) Object.assign(filter, { [key]: value });
  return filter;
}

/** Writes a chunk; false when the client went away. Waits for the socket to drain so a slow reader does not fill memory. */
async function send(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  await new Promise<void>((resolve) => {
    const settle = (): void => {
      res.off('drain', settle);
      res.off('close', settle);
      resolve();
    };
    res.on('drain', settle);
    res.on('close', settle);
  });
  return !res.destroyed;
}
