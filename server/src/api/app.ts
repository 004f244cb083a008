// The REST API and the dashboard's static files.
import { existsSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import express, { type Express } from 'express';
import { LabtraceError, type InstrumentView, type ListChange } from '@labtrace/protocols';
import { api, KEY_ROTATION_DUE_MS } from '@labtrace/protocols/api';
import type { NodeRole } from '../cluster/config.js';
import type { Logger } from '../log.js';
import type { ClockHealth } from '../clock/server-clock.js';
import type { CapacityStatus } from '../store/capacity.js';
import type { Registry } from '../store/registry.js';
import type { SeriesStore } from '../store/series/series-store.js';
import type { Enrollment } from '../trust/enrollment.js';
import type { GatewayKey, KeyRegistry } from '../trust/key-registry.js';
import type { SecurityEvents } from '../trust/security-events.js';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { authRoutes } from '../auth/auth-routes.js';
import { authenticate, principalOf, routeOf } from '../auth/policy.js';
import type { Users } from '../auth/users.js';
import { processFaults } from '../process-faults.js';
import { errorHandler, notFound } from './errors.js';
import { compressResponses, dashboardFiles, securityHeaders } from './static-files.js';
import { rateLimit, type RateLimitOptions } from './rate-limit.js';
import { sendRevalidated } from './revalidate.js';
import { wellFormedBody } from './text.js';

export interface HealthSource {
  version: string;
  brokerRunning(): boolean;
  storeOk(): Promise<boolean>;
  /** the store's engine (the embedded SQLite file, or PostgreSQL shared by the nodes) */
  storeKind?: 'sqlite' | 'postgres';
  connectedGateways(): string[];
  /** a gateway's clock offset against the server's, from its HEALTH messages */
  clockOffsetOf?(gateway: string): { offsetMs: number; measuredAt: number; beyondBound: boolean } | undefined;
  /** whether the store can write: free space against the reserve, the last write failure */
  capacity(): CapacityStatus;
  /** a request failed because the store could not write */
  writeFailed(err: unknown): void;
  /** refused batches in total and by reason, and the gateways whose batches are being refused now */
  refusals(): { total: number; byReason: Record<string, number>; refusing: Map<string, { reason: string; at: number }> };
  /** outbound notifications: deliveries pending and failed for good (notify/) */
  notifications?: (() => Promise<{ pending: number; failed: number; oldestPendingAt: number | null; email: boolean }>) | undefined;
  /** this node's roles among the lab's nodes, and the leases of one-node jobs it holds now */
  node?: (() => { roles: NodeRole[]; leases: string[] }) | undefined;
  /** the server's own clock against NTP and as its gateways see it (clock/server-clock.ts) */
  clock?: (() => ClockHealth) | undefined;
}

export interface AppDeps {
  healthOf: (instrument: string) => InstrumentView['health'];
  /** the instrument's calibration status, shown beside it */
  calibrationOf?: ((instrument: string) => Promise<NonNullable<InstrumentView['calibration']>>) | undefined;
  /** every instrument's calibration status at once, by id (the list reads it in one query; calibrationOf for one missing) */
  calibrationsOf?: (() => Promise<ReadonlyMap<string, NonNullable<InstrumentView['calibration']>>>) | undefined;
  /** measurement reads (embedded SQLite index or InfluxDB) */
  series: SeriesStore;
  registry: Registry;
  health: HealthSource;
  logger: Logger;
  dashboardDir: string;
  trust: { enrollment: Enrollment; keys: KeyRegistry; events: SecurityEvents };
  users: Users;
  audit: AuditTrail;
  /** proxies whose X-Forwarded-* headers are believed (express "trust proxy"), so that req.secure is true behind TLS */
  trustProxy?: string[] | undefined;
  /** per-address request rate on /api (undefined: no limit) */
  rateLimit?: RateLimitOptions | undefined;
  /** POST /api/enroll, per address (default 10 at once, then one every 10 s) */
  enrollRateLimit?: { perSecond: number; burst: number } | undefined;
  /** the lab records' routes (samples, methods, runs) */
  labRoutes?: express.Router | undefined;
  /** certificates, and their public verification (/verify/:id) */
  certificateRoutes?: express.Router | undefined;
  /** announces a change of a list over socket.io (the live hub starts after the app is made) */
  changed?: ((change: ListChange) => void) | undefined;
  /** the transparency log's routes, once the log is open */
  logRoutes?: () => express.Router | undefined;
}

/** a gateway's key as the API shows it */
const gatewayKeyView = (k: GatewayKey) => ({
  keyId: k.keyId,
  verifierKey: k.verifierKey,
  status: k.status,
  registeredAt: k.registeredAt,
  validUntil: k.validUntil,
  lastValidBatch: k.lastValidBatch,
  reason: k.reason,
  replacedBy: k.replacedBy,
  rotationDueAt: k.status === 'active' ? k.registeredAt + KEY_ROTATION_DUE_MS : null,
});

/**
 * The HTTP answer of a node that serves no API (cluster.roles without `api`): its health, for load balancers and
 * probes, and for anything else a 421 (Misdirected Request) that names why, so that a proxy sending a request here
 * by mistake is found at once.
 */
export function healthOnly(app: Express): http.RequestListener {
  return (req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === api.health.path) {
      app(req, res);
      return;
    }
    res.writeHead(421, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      JSON.stringify({
        error: "this node of the lab does not serve the API (cluster.roles without api): use the address of a node that does, or the lab's proxy",
        code: 'E_NOT_SERVED',
        reason: 'node.api-not-served',
      }),
    );
  };
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  if (deps.trustProxy !== undefined) app.set('trust proxy', deps.trustProxy);
  app.use(securityHeaders());
  // JSON and pages made per request, br or gzip; downloads stream as they are (static-files.ts)
  app.use(compressResponses());
  // API answers are per user and per moment: never stored by a browser or a proxy
  app.use('/api', (_req, res, next) => {
    res.setHeader('cache-control', 'no-store');
    next();
  });
  // one limiter (one bucket per address) for the API and the public verification page
  if (deps.rateLimit !== undefined) app.use(['/api', '/verify'], rateLimit(deps.rateLimit));
  app.use(express.json({ limit: '100kb' }));
  // a string no field could store (a lone surrogate) is refused here, by its path, whatever route it is for
  app.use(wellFormedBody());
  app.use(authenticate(deps.users));
  app.use(authRoutes(deps.users, deps.audit, deps.logger));

  routeOf(app, api.health, async (_req, res) => {
    const [storeOk, gateways, notifications] = await Promise.all([
      deps.health.storeOk(),
      deps.registry.gateways(),
      // counted in the store: left out of the answer when it cannot be read (the store is then reported down)
      deps.health.notifications?.().catch(() => undefined),
    ]);
    const connected = new Set(deps.health.connectedGateways());
    const brokerOk = deps.health.brokerRunning();
    const capacity = deps.health.capacity();
    const refusals = deps.health.refusals();
    // degraded: the store cannot be read or written, or keeps its reserve, or a connected gateway's batches are
    // refused. Only the server's own state answers 503: one gateway refused must not take the server out of a
    // load balancer (or its dashboard out of reach)
    const refusing = [...refusals.refusing.keys()].some((id) => connected.has(id));
    const serving = storeOk && brokerOk && capacity.status === 'ok';
    // a clock beyond its bound dates everything wrong: degraded, though the server serves
    const clock = deps.health.clock?.();
    const clockOff = clock !== undefined && (clock.ntp?.status === 'beyond-bound' || clock.gateways.beyondBound);
    res.status(serving ? 200 : 503).json({
      status: serving && !refusing && !clockOff ? 'ok' : 'degraded',
      version: deps.health.version,
      broker: { status: brokerOk ? 'ok' : 'down' },
      store: { ...capacity, status: storeOk ? capacity.status : 'down', kind: deps.health.storeKind ?? 'sqlite' },
      // InfluxDB failing does not make the server unhealthy: it keeps accepting, the batches wait in SQLite
      measurements: deps.series.status(),
      ingest: { refusedBatches: refusals.total, refusedByReason: refusals.byReason },
      gateways: gateways.map((g) => {
        const refused = refusals.refusing.get(g.id);
        return {
          id: g.id,
          connected: connected.has(g.id),
          lastSeen: g.lastSeen,
          version: g.version,
          ...(refused === undefined ? {} : { refusing: { reason: refused.reason, at: refused.at } }),
        };
      }),
      // faults caught at the process level since the start (process-faults.ts): each one is a bug to look into
      faults: processFaults(),
      ...(notifications === undefined ? {} : { notifications }),
      ...(deps.health.node === undefined ? {} : { node: deps.health.node() }),
      ...(clock === undefined ? {} : { clock }),
    });
  });

  routeOf(app, api.listGateways, async (_req, res) => {
    const connected = new Set(deps.health.connectedGateways());
    res.json(
      (await deps.registry.gateways()).map((g) => {
        const clock = deps.health.clockOffsetOf?.(g.id);
        return { ...g, connected: connected.has(g.id), clock: clock === undefined ? null : { ...clock, offsetMs: Math.round(clock.offsetMs) } };
      }),
    );
  });

  // an instrument as the dashboards show it: identity, the newest sample of each channel, health, calibration
  const viewOf = async (
    i: Awaited<ReturnType<Registry['instruments']>>[number],
    connected: ReadonlySet<string>,
    calibrations?: ReadonlyMap<string, NonNullable<InstrumentView['calibration']>>,
  ): Promise<InstrumentView> => {
    const latest: InstrumentView['latest'] = {};
    for (const s of await deps.series.latest(i.id)) latest[s.channel] = { value: s.value, ts: s.ts, quality: s.quality };
    const calibration = calibrations?.get(i.id) ?? (await deps.calibrationOf?.(i.id));
    return {
      ...i,
      latest,
      connected: connected.has(i.gateway),
      health: deps.healthOf(i.id),
      ...(calibration === undefined ? {} : { calibration }),
    };
  };

  routeOf(app, api.listInstruments, async (req, res) => {
    const connected = new Set(deps.health.connectedGateways());
    const [instruments, calibrations] = await Promise.all([deps.registry.instruments(), deps.calibrationsOf?.()]);
    const views: InstrumentView[] = await Promise.all(instruments.map((i) => viewOf(i, connected, calibrations)));
    // read again by the dashboard: 304 while unchanged (revalidate.ts)
    sendRevalidated(req, res, views);
  });

  routeOf(app, api.getInstrument, async (_req, res, { params: { id } }) => {
    const instrument = await deps.registry.instrument(id);
    if (!instrument) throw notFound('instrument', id);
    res.json(await viewOf(instrument, new Set(deps.health.connectedGateways())));
  });

  // time-bucketed min, max and mean of a numeric channel, at most `points` buckets
  routeOf(app, api.instrumentSeries, async (_req, res, { params: { id }, query }) => {
    const instrument = await deps.registry.instrument(id);
    if (!instrument) throw notFound('instrument', id);
    if (!instrument.channels.some((c) => c.name === query.channel))
      throw new LabtraceError('E_NOT_FOUND', `instrument "${id}" has no channel "${query.channel}"`);
    const to = query.to ?? Date.now();
    const from = query.from ?? to - 10 * 60_000;
    if (from > to) throw new LabtraceError('E_BAD_REQUEST', `query: from: ${from} is after to (${to})`);
    res.json({ instrument: id, channel: query.channel, from, to, ...(await deps.series.series(id, query.channel, from, to, query.points)) });
  });

  routeOf(app, api.instrumentHistory, async (_req, res, { params: { id }, query }) => {
    const instrument = await deps.registry.instrument(id);
    if (!instrument) throw notFound('instrument', id);
    if (!instrument.channels.some((c) => c.name === query.channel)) {
      throw new LabtraceError('E_NOT_FOUND', `instrument "${id}" has no channel "${query.channel}"`);
    }
    const to = query.to ?? Date.now();
    const from = query.from ?? to - 10 * 60_000;
    res.json(await deps.series.history(id, query.channel, from, to, query.limit));
  });

  // a gateway enrolls with a one-time token from a lab admin and a proof that it holds its key
  // it needs no sign-in: a limit of its own per address, far below the API's, and refusals counted per address
  const enrollLimit = rateLimit({
    ...(deps.enrollRateLimit ?? { perSecond: 0.1, burst: 10 }),
    onLimited: (address) =>
      deps.trust.events.refuse({
        kind: 'enrollment-attempt',
        severity: 'notice',
        detail: 'enrollment refused: too many attempts from this address',
        address,
      }),
  });
  routeOf(app, api.enroll, enrollLimit, async (req, res, { body }) => {
    res.status(201).json(await deps.trust.enrollment.enroll(body, req.ip));
  });

  routeOf(app, api.gatewayKeys, (_req, res, { params: { id } }) => {
    res.json(deps.trust.keys.list(id).map(gatewayKeyView));
  });

  routeOf(app, api.listGatewayKeys, (_req, res) => {
    res.json(deps.trust.keys.list().map((k) => ({ gateway: k.gateway, ...gatewayKeyView(k) })));
  });

  // a rotation authenticates itself: the statement is signed by the gateway's current key and the new one
  routeOf(app, api.rotateKey, async (_req, res, { params: { id }, body }) => {
    if (body.statement.gateway !== id)
      throw new LabtraceError('E_BAD_REQUEST', `body: statement.gateway: "${body.statement.gateway}" is not "${id}"`);
    const key = await deps.trust.keys.rotate(body.statement, body.oldSignature, body.newSignature);
    res.status(201).json({ keyId: key.keyId, status: key.status, registeredAt: key.registeredAt });
  });

  routeOf(app, api.listSecurityEvents, async (_req, res, { query }) => {
    const from = query.from ?? query.since;
    if (from !== undefined && query.to !== undefined && from > query.to)
      throw new LabtraceError('E_BAD_REQUEST', `query: to: ${query.to} is before from (${from})`);
    res.json(
      await deps.trust.events.page({
        limit: query.limit,
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
        ...(query.gateway === undefined ? {} : { gateway: query.gateway }),
        ...(query.kind === undefined ? {} : { kind: query.kind }),
        ...(from === undefined ? {} : { from }),
        ...(query.to === undefined ? {} : { to: query.to }),
      }),
    );
  });

  // ---- the admin's enrollment tokens and key revocations (docs/trust.md); each in the audit trail ----
  const actor = (req: express.Request): Actor => {
    const p = principalOf(req);
    if (!p) throw new LabtraceError('E_AUTH', 'sign in first');
    return { username: p.username, role: p.role };
  };

  routeOf(app, api.listEnrollmentTokens, async (_req, res) => {
    res.json(await deps.trust.enrollment.pending());
  });

  routeOf(app, api.createEnrollmentToken, async (req, res, { body }) => {
    const by = actor(req);
    // the token and its audit entry in one transaction
    const created = await deps.trust.enrollment.createToken(body.gateway, body.ttlHours * 3_600_000, Date.now(), (trx, made) =>
      deps.audit.recordIn(trx, by, {
        action: 'create',
        recordType: 'enrollment-token',
        recordId: `${body.gateway}/${made.id}`,
        newValue: { gateway: body.gateway, expiresAt: made.expiresAt },
      }),
    );
    deps.changed?.({ list: 'gateways', id: body.gateway });
    res.status(201).json({ id: created.id, gateway: body.gateway, createdAt: created.createdAt, expiresAt: created.expiresAt, token: created.token });
  });

  routeOf(app, api.revokeEnrollmentToken, async (req, res, { params, body }) => {
    const by = actor(req);
    const revoked = await deps.trust.enrollment.revokeToken(params.id, Date.now(), (trx, token) =>
      deps.audit.recordIn(trx, by, {
        action: 'state-change',
        recordType: 'enrollment-token',
        recordId: `${token.gateway}/${token.id}`,
        newValue: { revoked: true, expiresAt: token.expiresAt },
        reason: body.reason,
      }),
    );
    deps.changed?.({ list: 'gateways', id: revoked.gateway });
    res.json(revoked);
  });

  routeOf(app, api.revokeGatewayKey, async (req, res, { params, body }) => {
    const by = actor(req);
    const now = Date.now();
    // the key read, revoked (once: a key already revoked answers 409) and audited in one transaction
    const key = await deps.trust.keys.revoke(params.id, params.keyId, body.from ?? now, body.reason, now, {
      once: true,
      also: (trx, revoked, before) =>
        deps.audit.recordIn(trx, by, {
          action: 'state-change',
          recordType: 'gateway-key',
          recordId: `${params.id}/${params.keyId}`,
          oldValue: { status: before.status },
          newValue: { status: 'revoked', from: revoked.validUntil, lastValidBatch: revoked.lastValidBatch },
          reason: body.reason,
        }),
    });
    deps.changed?.({ list: 'gateways', id: params.id });
    res.json(gatewayKeyView(key));
  });

  if (deps.labRoutes !== undefined) app.use(deps.labRoutes);
  if (deps.certificateRoutes !== undefined) app.use(deps.certificateRoutes);

  // mounted at start: the log is opened with the store
  app.use((req, res, next) => {
    const routes = deps.logRoutes?.();
    if (routes === undefined) return next();
    routes(req, res, next);
  });

  app.use('/api', (req, _res, next) =>
    next(
      new LabtraceError('E_NOT_FOUND', `no route ${req.method} ${req.originalUrl}`, {
        reason: 'request.no-route',
        params: { method: req.method, path: req.originalUrl.split('?')[0] ?? '' },
      }),
    ),
  );

  if (existsSync(path.join(deps.dashboardDir, 'index.html'))) {
    app.use(dashboardFiles(deps.dashboardDir));
  } else {
    app.get('/', (_req, res) => {
      res.type('text').status(503).send(`The dashboard is not built (${deps.dashboardDir} has no index.html). Run: npm run build\n`);
    });
  }

  app.use(errorHandler(deps.logger, (err) => deps.health.writeFailed(err)));
  return app;
}
