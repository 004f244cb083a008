// The one authorization policy of the REST API: every route has a rule here, and routes are registered
// only through `route()`, which refuses a path without a rule. The same table drives the test matrix
// (every route x every role), so a new route without a rule fails at start-up and in the tests.
import type { IRouter, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import type { RouteContract } from '@labtrace/protocols/api';
import { ROLES, type Principal, type Role, type Users } from './users.js';
import { seesAll } from './visibility.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface RouteRule {
  method: Method;
  path: string;
  /** the roles allowed, or 'public' with the reason it may be */
  allow: 'public' | readonly Role[];
  /** why the route is public */
  why?: string;
  /**
   * 'organization': a client, or an auditor whose grant names organizations, sees only those organizations'
   * records (the handler filters with auth/visibility.ts); 'every-organization': data not bound to one
   * client (raw measurement streams), refused to such a viewer
   */
  scope?: 'organization' | 'every-organization';
  /** a mutating route: true when it writes the audit trail, otherwise where the change is recorded instead */
  audit?: true | string;
  /** open to a user who signed in with a one-time password and has not changed it yet */
  beforePasswordChange?: true;
}

const ALL: readonly Role[] = ROLES;
/** the lab's own staff and auditors: read access to lab-wide data */
const LAB_READERS: readonly Role[] = ['admin', 'technician', 'signatory', 'auditor'];
const ADMIN: readonly Role[] = ['admin'];
/** who records samples, methods and instrument status */
const LAB_WORKERS: readonly Role[] = ['admin', 'technician'];
/** who performs test runs */
const TECHNICIAN: readonly Role[] = ['technician'];
/** who approves and issues reports */
const SIGNATORY: readonly Role[] = ['signatory'];

export const POLICY: readonly RouteRule[] = [
  { method: 'GET', path: '/api/health', allow: 'public', why: 'liveness probes and the lab launcher; it reveals gateway ids and versions only' },
  {
    method: 'POST',
    path: '/api/auth/login',
    allow: 'public',
    why: 'how a session starts',
    audit: true,
  },
  { method: 'POST', path: '/api/auth/logout', allow: ALL, audit: true, beforePasswordChange: true },
  { method: 'GET', path: '/api/auth/me', allow: ALL, beforePasswordChange: true },
  { method: 'POST', path: '/api/auth/password', allow: ALL, audit: true, beforePasswordChange: true },
  // the user's own language and time zone: nothing another user sees, so open to every role, even before a password change
  { method: 'PATCH', path: '/api/auth/preferences', allow: ALL, audit: true, beforePasswordChange: true },
  { method: 'POST', path: '/api/auth/tokens', allow: LAB_READERS, audit: true },
  // a user's own API tokens (an admin's view: every user's); none of them is ever shown again after creation
  { method: 'GET', path: '/api/auth/tokens', allow: LAB_READERS },
  { method: 'POST', path: '/api/auth/tokens/:id/revoke', allow: LAB_READERS, audit: true },
  { method: 'GET', path: '/api/users', allow: ADMIN },
  { method: 'POST', path: '/api/users', allow: ADMIN, audit: true },
  { method: 'PATCH', path: '/api/users/:username', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/users/:username/password', allow: ADMIN, audit: true },
  // the lab's workers pick the customer when they register a received sample
  { method: 'GET', path: '/api/organizations', allow: LAB_WORKERS },
  { method: 'POST', path: '/api/organizations', allow: ADMIN, audit: true },
  // an auditor whose grant covers some organizations sees the lab's records and those organizations' (auth/visibility.ts)
  { method: 'GET', path: '/api/audit-trail', allow: ['admin', 'auditor'], scope: 'organization' },
  // the lab's standing with its supervisor (standing/standing-routes.ts): read by the admin and auditors; a response
  // to a finding is the lab's word to its regulator, given by the admin, and recorded in the audit trail
  { method: 'GET', path: '/api/standing', allow: ['admin', 'auditor'] },
  { method: 'GET', path: '/api/standing/report', allow: ['admin', 'auditor'] },
  { method: 'GET', path: '/api/standing/report.pdf', allow: ['admin', 'auditor'] },
  { method: 'POST', path: '/api/standing/findings/:id/response', allow: ADMIN, audit: true },
  { method: 'GET', path: '/api/audit-trail/export', allow: ['admin', 'auditor'], scope: 'organization' },
  { method: 'GET', path: '/api/gateways', allow: LAB_READERS },
  { method: 'GET', path: '/api/instruments', allow: LAB_READERS },
  { method: 'GET', path: '/api/instruments/:id/series', allow: LAB_READERS, scope: 'every-organization' },
  { method: 'GET', path: '/api/instruments/:id/history', allow: LAB_READERS, scope: 'every-organization' },
  {
    method: 'POST',
    path: '/api/enroll',
    allow: 'public',
    why: 'a gateway authenticates with its one-time enrollment token and a signature by the key it enrolls',
    audit: 'a security event and a key-event entry in the transparency log',
  },
  { method: 'GET', path: '/api/gateways/:id/keys', allow: LAB_READERS },
  { method: 'GET', path: '/api/gateway-keys', allow: LAB_READERS },
  {
    method: 'POST',
    path: '/api/gateways/:id/keys/rotate',
    allow: 'public',
    why: 'the statement is signed by the gateway key in force and by the new key; nothing else could authenticate a gateway here',
    audit: 'a security event and a key-event entry in the transparency log',
  },
  { method: 'GET', path: '/api/security-events', allow: LAB_READERS },
  // the admin enrolls gateways (one-time tokens, shown once) and revokes their keys; each is in the audit trail,
  // a revocation also a key event in the transparency log and a security event
  { method: 'GET', path: '/api/gateways/enrollment-tokens', allow: ADMIN },
  { method: 'POST', path: '/api/gateways/enrollment-tokens', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/gateways/enrollment-tokens/:id/revoke', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/gateways/:id/keys/:keyId/revoke', allow: ADMIN, audit: true },
  // The transparency log is meant to be checked by anyone holding a checkpoint (clients, witnesses, a
  // public verifier): its entries are batch headers (hashes, counts, ranges), key events and audit
  // anchors (hashes), never measured values or who changed what.
  { method: 'GET', path: '/api/log/keys', allow: 'public', why: 'verifier keys are public by design' },
  { method: 'GET', path: '/api/log/checkpoint', allow: 'public', why: 'signed checkpoints are meant to be gossiped' },
  { method: 'GET', path: '/api/log/witnesses', allow: LAB_READERS },
  { method: 'GET', path: '/api/log/proof/inclusion', allow: 'public', why: 'proofs are hashes only' },
  { method: 'GET', path: '/api/log/proof/consistency', allow: 'public', why: 'proofs are hashes only' },
  { method: 'GET', path: '/api/log/entries', allow: 'public', why: 'entries hold hashes, counts and key events, no measured values' },
  // export bundles (export/export-routes.ts): whole signed batches, which may hold any organization's records
  { method: 'GET', path: '/api/export', allow: LAB_READERS, scope: 'every-organization' },
  { method: 'GET', path: '/api/runs/:id/export', allow: LAB_READERS, scope: 'every-organization' },
  // a run's selective-disclosure bundle (export/disclosure.ts): that run's records only, for its client
  { method: 'GET', path: '/api/runs/:id/disclosure', allow: ALL, scope: 'organization' },
  // a measurement proof carries the measured value: lab readers (and, later, the client it belongs to)
  { method: 'GET', path: '/api/log/measurement/:gateway/:seq', allow: LAB_READERS, scope: 'every-organization' },
  // an instrument's result file as written: measured values of any organization, as a measurement proof
  { method: 'GET', path: '/api/raw-files/:sha256', allow: LAB_READERS, scope: 'every-organization' },
  // lab records: samples received, methods, test runs. A client reads its own organization's samples and
  // runs (another's answer 404 like unknown ones); technicians do the work; methods are public to users.
  { method: 'GET', path: '/api/lab-samples', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/lab-samples/:id', allow: ALL, scope: 'organization' },
  { method: 'POST', path: '/api/lab-samples', allow: LAB_WORKERS, audit: true },
  { method: 'GET', path: '/api/methods', allow: ALL },
  { method: 'GET', path: '/api/methods/:id', allow: ALL },
  { method: 'POST', path: '/api/methods', allow: LAB_WORKERS, audit: true },
  { method: 'POST', path: '/api/methods/:id/versions', allow: LAB_WORKERS, audit: true },
  { method: 'GET', path: '/api/runs', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/runs/:id', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/runs/:id/records', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/runs/:id/results', allow: ALL, scope: 'organization' },
  { method: 'POST', path: '/api/runs', allow: TECHNICIAN, audit: true },
  { method: 'POST', path: '/api/runs/:id/start', allow: TECHNICIAN, audit: true },
  { method: 'POST', path: '/api/runs/:id/stop', allow: TECHNICIAN, audit: true },
  { method: 'POST', path: '/api/runs/:id/abort', allow: TECHNICIAN, audit: true },
  // inspection alarms of a run: seen like the run; acknowledged and cleared (with a reason) by the lab's workers
  { method: 'GET', path: '/api/runs/:id/alarms', allow: ALL, scope: 'organization' },
  { method: 'POST', path: '/api/runs/:id/alarms/:alarmId/acknowledge', allow: LAB_WORKERS, audit: true },
  { method: 'POST', path: '/api/runs/:id/alarms/:alarmId/clear', allow: LAB_WORKERS, audit: true },
  { method: 'GET', path: '/api/alarms/open-count', allow: ALL, scope: 'organization' },
  // read-only links to one run for a client without an account (lab/run-shares.ts): made and revoked by the lab's
  // workers; the holder of a link reads the run, its results and its issued report until it expires or is revoked
  { method: 'GET', path: '/api/runs/:id/shares', allow: LAB_WORKERS },
  { method: 'POST', path: '/api/runs/:id/shares', allow: LAB_WORKERS, audit: true },
  { method: 'POST', path: '/api/runs/:id/shares/:shareId/revoke', allow: LAB_WORKERS, audit: true },
  {
    method: 'GET',
    path: '/api/public/shares/:token',
    allow: 'public',
    why: "the link's 256-bit token is the credential: one run, read-only, until it expires or the lab revokes it; its first use is audited",
  },
  {
    method: 'GET',
    path: '/api/public/shares/:token/report.pdf',
    allow: 'public',
    why: "the issued report of the shared run, to the holder of the link's token while the link works",
  },
  { method: 'GET', path: '/api/instruments/:id/status', allow: LAB_READERS },
  { method: 'POST', path: '/api/instruments/:id/status', allow: LAB_WORKERS, audit: true },
  { method: 'POST', path: '/api/instruments/:id/commands', allow: LAB_WORKERS, audit: true },
  // calibration records and intermediate checks (6.4): recorded by the lab's workers, read by its staff and auditors
  { method: 'GET', path: '/api/calibration/reminders', allow: LAB_READERS },
  { method: 'GET', path: '/api/instruments/:id/calibrations', allow: LAB_READERS },
  { method: 'POST', path: '/api/instruments/:id/calibrations', allow: LAB_WORKERS, audit: true },
  { method: 'POST', path: '/api/instruments/:id/checks', allow: LAB_WORKERS, audit: true },
  { method: 'GET', path: '/api/instruments/:id/calibration-status', allow: LAB_READERS },
  // the certificate a calibrating lab issued, attached once to its record; read like the record
  { method: 'PUT', path: '/api/instruments/:id/calibrations/:record/certificate', allow: LAB_WORKERS, audit: true },
  { method: 'GET', path: '/api/instruments/:id/calibrations/:record/certificate', allow: LAB_READERS },
  // the instrument register (paged, searched, filtered), one instrument, and its connection health over time
  { method: 'GET', path: '/api/instrument-register', allow: LAB_READERS },
  { method: 'GET', path: '/api/instruments/:id', allow: LAB_READERS },
  { method: 'GET', path: '/api/instruments/:id/health', allow: LAB_READERS },
  // the lab's accreditations (docs/accreditation.md): public information to its users, and in short to anyone
  // holding a certificate; recorded and changed by the admin only
  {
    method: 'GET',
    path: '/api/public/accreditation',
    allow: 'public',
    why: 'a certificate reader checks the accreditation mark: body, number, status and validity, as the bodies publish them',
  },
  { method: 'GET', path: '/api/accreditations', allow: ALL },
  { method: 'GET', path: '/api/accreditations/:id', allow: ALL },
  { method: 'POST', path: '/api/accreditations', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/accreditations/:id/events', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/accreditations/:id/scope', allow: ADMIN, audit: true },
  // certificates (test reports, 7.8): requested by a technician or signatory, approved, issued, amended and
  // revoked by a signatory only (who neither performed nor created the run); read like the run (a client: its
  // organization's issued ones)
  { method: 'GET', path: '/api/certificates', allow: ALL, scope: 'organization' },
  { method: 'POST', path: '/api/certificates', allow: ['technician', 'signatory'], audit: true },
  { method: 'GET', path: '/api/certificates/:id', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/certificates/:id/pdf', allow: ALL, scope: 'organization' },
  { method: 'GET', path: '/api/certificates/:id/json', allow: ALL, scope: 'organization' },
  // a draft printed as it would be issued (marked as a draft, neither signed nor logged): the lab's staff review it
  { method: 'GET', path: '/api/certificates/:id/preview.pdf', allow: LAB_READERS, scope: 'organization' },
  { method: 'GET', path: '/api/certificates/:id/dcc.xml', allow: ALL, scope: 'organization' },
  { method: 'POST', path: '/api/certificates/:id/issue', allow: SIGNATORY, audit: true },
  { method: 'POST', path: '/api/certificates/:id/amend', allow: SIGNATORY, audit: true },
  { method: 'POST', path: '/api/certificates/:id/revoke', allow: SIGNATORY, audit: true },
  // anyone holding a report checks it: its status, digests and issue date; with the verification code printed on
  // the report (its QR link), also who it is for, the item, the results and the verdict. The number alone (they
  // follow each other) never shows content or customer.
  { method: 'GET', path: '/api/public/keys', allow: 'public', why: 'the certificate key is public by design: anyone verifies reports with it' },
  {
    method: 'GET',
    path: '/api/public/certificates/:id',
    allow: 'public',
    why: "a report holder checks its status: status, digests and issue date; with the report's verification code, also its customer, item, results and verdict",
  },
  {
    method: 'GET',
    path: '/verify/:id',
    allow: 'public',
    why: "the verification page the QR code on a report links to (zh-CN and en): status and digests; with the report's code, its customer, item, results and verdict",
  },
  {
    method: 'POST',
    path: '/verify/:id',
    allow: 'public',
    why: 'compares an uploaded file with the issued one and answers match or not; nothing is stored',
    audit: 'reads only; nothing is stored',
  },
  // ---- notifications (notify/, docs/notifications.md) ----
  // each user's own subscriptions; webhooks and the delivery log are the admin's; a test goes to the caller's own
  // address or webhook (an admin's: any webhook)
  { method: 'GET', path: '/api/notifications/subscriptions', allow: ALL },
  {
    method: 'PUT',
    path: '/api/notifications/subscriptions',
    allow: ALL,
    audit: "the user's own notification choices, kept with the time in notification_settings; no lab record changes",
  },
  { method: 'GET', path: '/api/notifications/webhooks', allow: ADMIN },
  { method: 'POST', path: '/api/notifications/webhooks', allow: ADMIN, audit: true },
  { method: 'PATCH', path: '/api/notifications/webhooks/:id', allow: ADMIN, audit: true },
  { method: 'DELETE', path: '/api/notifications/webhooks/:id', allow: ADMIN, audit: true },
  { method: 'GET', path: '/api/notifications/deliveries', allow: ADMIN },
  { method: 'POST', path: '/api/notifications/deliveries/:id/retry', allow: ADMIN, audit: true },
  { method: 'POST', path: '/api/notifications/test', allow: ALL, audit: 'the test message is a row of the delivery log' },
  // ---- end of notifications ----
  // the lab manager's overview (lab/overview.ts): lab-wide figures (instruments, gateways, every customer's runs), so
  // an auditor whose grant names some organizations only is refused; clients and technicians have no overview
  { method: 'GET', path: '/api/overview', allow: ['admin', 'signatory', 'auditor'], scope: 'every-organization' },
];

const rules = new Map(POLICY.map((r) => [`${r.method} ${r.path}`, r]));

export function ruleFor(method: string, path: string): RouteRule {
  const rule = rules.get(`${method} ${path}`);
  if (!rule) throw new LabtraceError('E_CONFIG', `no authorization rule for ${method} ${path}: add one to POLICY in auth/policy.ts`);
  return rule;
}

export const SESSION_COOKIE = 'labtrace_session';
export const CSRF_COOKIE = 'labtrace_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const principals = new WeakMap<Request, Principal>();

/** the authenticated principal of a request (undefined for anonymous requests) */
export function principalOf(req: Request): Principal | undefined {
  return principals.get(req);
}

/**
 * A cookie's value, or undefined when the header lacks it. A value that is not valid percent-encoding (a cookie
 * anyone can send, e.g. `%E0%A4%A`) is no credential: it counts as absent, so the request is anonymous.
 */
export function cookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The credential a request or a socket handshake carries: a bearer token first, else the session cookie. */
export function credentialOf(headers: {
  authorization?: string | undefined;
  cookie?: string | undefined;
}): { token: string; via: Principal['via'] } | undefined {
  const auth = headers.authorization;
  if (auth !== undefined && auth.startsWith('Bearer ')) return { token: auth.slice(7).trim(), via: 'bearer' };
  const session = cookie(headers.cookie, SESSION_COOKIE);
  return session === undefined ? undefined : { token: session, via: 'cookie' };
}

/** Establishes who is asking; a missing or invalid credential leaves the request anonymous (the rule decides). */
export function authenticate(users: Users): RequestHandler {
  return (req, _res, next) => {
    const credential = credentialOf(req.headers);
    if (credential === undefined) return next();
    // a store that cannot answer fails the request (500 through the error handler); it never lets it through
    users.authenticate(credential.token, credential.via).then((principal) => {
      if (principal) principals.set(req, principal);
      next();
    }, next);
  };
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Enforces a rule: 401 without a valid credential, 403 for a role the rule does not allow or a missing CSRF token. */
export function authorize(rule: RouteRule): RequestHandler {
  return (req, _res, next) => {
    if (rule.allow === 'public') return next();
    const principal = principals.get(req);
    if (!principal)
      return next(
        new LabtraceError('E_AUTH', 'sign in first: a session cookie or an Authorization: Bearer token is required', {
          reason: 'auth.sign-in-required',
        }),
      );
    const where = { method: rule.method, path: rule.path };
    if (!rule.allow.includes(principal.role))
      return next(
        new LabtraceError('E_FORBIDDEN', `the role ${principal.role} may not ${rule.method} ${rule.path}`, {
          reason: 'auth.role-forbidden',
          params: { role: principal.role, ...where },
        }),
      );
    if (rule.scope === 'every-organization' && !seesAll(principal))
      return next(
        new LabtraceError('E_FORBIDDEN', `your grant covers some organizations only: ${rule.method} ${rule.path} shows every client's data`, {
          reason: 'auth.grant-too-narrow',
          params: where,
        }),
      );
    if (principal.mustChange && rule.beforePasswordChange !== true)
      return next(
        new LabtraceError('E_FORBIDDEN', 'change your one-time password first (POST /api/auth/password)', {
          reason: 'auth.password-change-required',
        }),
      );
    // a browser sends the cookie on cross-site requests too; only our own pages can read the CSRF cookie to echo it
    if (principal.via === 'cookie' && !SAFE.has(req.method) && req.get(CSRF_HEADER) !== principal.csrf)
      return next(
        new LabtraceError('E_FORBIDDEN', `a request authenticated by cookie must send the ${CSRF_HEADER} header`, { reason: 'auth.csrf-missing' }),
      );
    next();
  };
}

/** Registers a route under its rule; throws when the policy has none. */
export function route(router: IRouter, method: Method, path: string, ...handlers: RequestHandler[]): void {
  const guard = authorize(ruleFor(method, path));
  const all = [guard, ...handlers];
  if (method === 'GET') router.get(path, all);
  else if (method === 'POST') router.post(path, all);
  else if (method === 'PATCH') router.patch(path, all);
  else if (method === 'PUT') router.put(path, all);
  else router.delete(path, all);
}

/** a route's input as its contract's schemas parsed it */
export interface ContractInput<C extends RouteContract> {
  params: z.output<C['params']>;
  query: z.output<C['query']>;
  body: z.output<C['body']>;
}

/** the handler of a route registered from its contract: it gets the parsed input */
export type ContractHandler<C extends RouteContract> = (req: Request, res: Response, input: ContractInput<C>) => unknown;

/**
 * A request's path parameters, query and body parsed by a contract's schemas: a 400 naming each field at fault
 * (`body: points[2].min: ...`, with issues carrying zod's code and parameters) for the first part that fails.
 * A GET has no body to read.
 */
export function inputOf<C extends RouteContract>(contract: C, req: Request): ContractInput<C> {
  const params = parseWith(contract.params, { ...req.params }, 'path', 'E_BAD_REQUEST') as z.output<C['params']>;
  const query = parseWith(contract.query, req.query ?? {}, 'query', 'E_BAD_REQUEST') as z.output<C['query']>;
  const body = (contract.method === 'GET' ? {} : parseWith(contract.body, req.body ?? {}, 'body', 'E_BAD_REQUEST')) as z.output<C['body']>;
  return { params, query, body };
}

/**
 * Registers a route from its contract: the rule of the contract's method and path guards it, then any
 * middleware given (a rate limit, a raw body parser), then the input is parsed by the contract's schemas and
 * the handler runs with it. Throws when the policy has no rule for the route.
 */
export function routeOf<C extends RouteContract>(
  router: IRouter,
  contract: C,
  ...handlers: [...before: RequestHandler[], handler: ContractHandler<C>]
): void {
  const handler = handlers[handlers.length - 1] as ContractHandler<C>;
  const before = handlers.slice(0, -1) as RequestHandler[];
  route(router, contract.method, contract.path, ...before, async (req, res) => {
    await handler(req, res, inputOf(contract, req));
  });
}

/** The routes registered on a router or app (and the routers mounted in it), for the policy's tests. */
export function routesOf(router: unknown): { method: string; path: string }[] {
  interface Layer {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  }
  const stack = (router as { router?: { stack?: Layer[] } }).router?.stack ?? (router as { stack?: Layer[] }).stack ?? [];
  const out: { method: string; path: string }[] = [];
  for (const layer of stack) {
    if (layer.route) {
      for (const [m, on] of Object.entries(layer.route.methods))
        if (on && m !== '_all') out.push({ method: m.toUpperCase(), path: layer.route.path });
    } else if (layer.handle?.stack) out.push(...routesOf(layer.handle));
  }
  return out;
}
