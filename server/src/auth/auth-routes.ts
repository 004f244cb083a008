// Sign-in, sign-out, password change and API tokens; user and organization administration; the audit trail for auditors.
import type { Request, Response } from 'express';
import express from 'express';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { CSV_COLUMNS, csvLine, EXPORT_FORMAT, exportedOf, type ExportHeader, type ExportTrailer } from '../audit/audit-export.js';
import { AUDIT_ACTIONS, type Actor, type AuditFilter, type AuditTrail } from '../audit/audit-trail.js';
import { line, optionalLine, wellFormed } from '../api/text.js';
import { timeMs, timeMsQuery } from '../api/time.js';
import type { Logger } from '../log.js';
import { CSRF_COOKIE, principalOf, route, SESSION_COOKIE } from './policy.js';
import { passwordSchema, ROLES, usernameSchema, type ClientContext, type Principal, type Users } from './users.js';
import { visibleOrganizations } from './visibility.js';

const loginBody = z.strictObject({ username: z.string().min(1).max(100), password: z.string().min(1).max(200) });
const passwordBody = z.strictObject({ currentPassword: z.string().min(1).max(200), newPassword: passwordSchema });
const tokenBody = z.strictObject({ name: line(100), ttlDays: z.number().int().min(1).max(365).default(90) });
const time = timeMs;
// the customer organizations an auditor's grant covers; null (or left out at creation): all of them
const grantOrganizations = z
  .array(idSchema)
  .min(1, 'at least one organization, or null for all')
  .max(1000)
  .refine((ids) => new Set(ids).size === ids.length, 'an organization is listed twice')
  .nullable();
const newUserBody = z.strictObject({
  username: usernameSchema,
  role: z.enum(ROLES),
  organization: idSchema.optional(),
  password: passwordSchema.optional(),
  grantUntil: time.optional(),
  grantOrganizations: grantOrganizations.optional(),
});
const userChangesBody = z.strictObject({
  role: z.enum(ROLES).optional(),
  organization: idSchema.nullable().optional(),
  disabled: z.boolean().optional(),
  grantUntil: time.nullable().optional(),
  grantOrganizations: grantOrganizations.optional(),
  reason: wellFormed(z.string().trim().min(1, 'required: why the user is changed').max(1000), true),
});
const resetBody = z.strictObject({ password: passwordSchema.optional() });
const organizationBody = z.strictObject({
  id: idSchema,
  name: line(200),
  /** who to contact about its reports: a person, an e-mail address, a telephone number (7.8.2.1 e) */
  contact: line(300).optional(),
});
const auditFilter = {
  actor: optionalLine(100).optional(),
  recordType: optionalLine(100).optional(),
  recordId: optionalLine(200).optional(),
  action: z.enum(AUDIT_ACTIONS).optional(),
  since: timeMsQuery.optional(),
  until: timeMsQuery.optional(),
  /** paging: the entries after this id (the last id of the page before) */
  after: z.coerce.number().int().min(0).optional(),
};
const auditQuery = z.strictObject({ ...auditFilter, limit: z.coerce.number().int().min(1).max(10_000).default(1000) });
const exportQuery = z.strictObject({ ...auditFilter, format: z.enum(['jsonl', 'csv']).default('jsonl') });

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
    if (recent.length >= this.max) throw new LabtraceError('E_RATE_LIMITED', 'too many login attempts from this address; wait a minute');
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

  route(router, 'POST', '/api/auth/login', async (req, res) => {
    throttle.take(req.ip ?? 'unknown');
    const body = parseWith(loginBody, req.body, 'body', 'E_BAD_REQUEST');
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
      throw new LabtraceError('E_AUTH', err.message);
    }
  });

  route(router, 'POST', '/api/auth/logout', (req, res) => {
    const principal = signedIn(req);
    users.logoutAll(actorOf(principal), principal.username, clientContext(req));
    clearCookies(res);
    logger.info({ user: principal.username }, 'logout: every session ended');
    res.status(204).end();
  });

  route(router, 'GET', '/api/auth/me', (req, res) => {
    const principal = signedIn(req);
    res.json({ ...users.get(principal.username), csrf: principal.via === 'cookie' ? principal.csrf : undefined });
  });

  route(router, 'POST', '/api/auth/password', async (req, res) => {
    const principal = signedIn(req);
    const body = parseWith(passwordBody, req.body, 'body', 'E_BAD_REQUEST');
    await users.changePassword(principal, body.currentPassword, body.newPassword);
    clearCookies(res);
    logger.info({ user: principal.username }, 'password changed; every session ended');
    res.status(204).end();
  });

  route(router, 'POST', '/api/auth/tokens', (req, res) => {
    const principal = signedIn(req);
    const body = parseWith(tokenBody, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(users.createApiToken(actorOf(principal), principal.username, body.name, body.ttlDays * 86_400_000));
  });

  route(router, 'GET', '/api/users', (_req, res) => {
    res.json(users.list());
  });

  route(router, 'POST', '/api/users', async (req, res) => {
    const body = parseWith(newUserBody, req.body, 'body', 'E_BAD_REQUEST');
    const { user, password } = await users.create(actorOf(signedIn(req)), body);
    res.status(201).json({ ...user, ...(password === undefined ? {} : { oneTimePassword: password }) });
  });

  route(router, 'PATCH', '/api/users/:username', (req, res) => {
    const username = parseWith(usernameSchema, req.params['username'], 'path: username', 'E_BAD_REQUEST');
    const { reason, ...changes } = parseWith(userChangesBody, req.body, 'body', 'E_BAD_REQUEST');
    res.json(users.update(actorOf(signedIn(req)), username, changes, reason));
  });

  route(router, 'POST', '/api/users/:username/password', async (req, res) => {
    const username = parseWith(usernameSchema, req.params['username'], 'path: username', 'E_BAD_REQUEST');
    const body = parseWith(resetBody, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    const oneTime = await users.setPassword(actorOf(signedIn(req)), username, body.password);
    res.json(oneTime === undefined ? {} : { oneTimePassword: oneTime });
  });

  route(router, 'GET', '/api/organizations', (_req, res) => {
    res.json(users.organizations());
  });

  route(router, 'POST', '/api/organizations', (req, res) => {
    const body = parseWith(organizationBody, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(users.createOrganization(actorOf(signedIn(req)), body.id, body.name, body.contact));
  });

  route(router, 'GET', '/api/audit-trail', (req, res) => {
    const { limit, ...q } = parseWith(auditQuery, req.query, 'query', 'E_BAD_REQUEST');
    res.json(audit.list({ ...filterOf(q, signedIn(req)), limit }));
  });

  // the selected entries with their hashes, streamed a page at a time; `labtrace verify-audit` checks the file
  route(router, 'GET', '/api/audit-trail/export', async (req, res) => {
    const { format, ...q } = parseWith(exportQuery, req.query, 'query', 'E_BAD_REQUEST');
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
    for (const page of audit.pages(filter)) {
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
