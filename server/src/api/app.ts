// The REST API and the dashboard's static files.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith, type InstrumentView } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import type { MeasurementStore } from '../store/measurement-store.js';
import type { Registry } from '../store/registry.js';
import { errorHandler } from './errors.js';

export interface HealthSource {
  version: string;
  brokerRunning(): boolean;
  storeOk(): Promise<boolean>;
  connectedGateways(): string[];
}

export interface AppDeps {
  healthOf: (instrument: string) => InstrumentView['health'];
  store: MeasurementStore;
  registry: Registry;
  health: HealthSource;
  logger: Logger;
  dashboardDir: string;
}

const historyQuery = z.strictObject({
  channel: idSchema,
  from: z.coerce.number().int().min(0).optional(),
  to: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(600),
});

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet({ contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } }));
  app.use(express.json({ limit: '100kb' }));

  app.get('/api/health', async (_req, res) => {
    const [storeOk, gateways] = await Promise.all([deps.health.storeOk(), deps.registry.gateways()]);
    const connected = new Set(deps.health.connectedGateways());
    const brokerOk = deps.health.brokerRunning();
    const healthy = storeOk && brokerOk;
    res.status(healthy ? 200 : 503).json({
      status: healthy ? 'ok' : 'degraded',
      version: deps.health.version,
      broker: { status: brokerOk ? 'ok' : 'down' },
      store: { status: storeOk ? 'ok' : 'down', kind: 'sqlite' },
      gateways: gateways.map((g) => ({ id: g.id, connected: connected.has(g.id), lastSeen: g.lastSeen, version: g.version })),
    });
  });

  app.get('/api/gateways', async (_req, res) => {
    const connected = new Set(deps.health.connectedGateways());
    res.json((await deps.registry.gateways()).map((g) => ({ ...g, connected: connected.has(g.id) })));
  });

  app.get('/api/instruments', async (_req, res) => {
    const connected = new Set(deps.health.connectedGateways());
    const views: InstrumentView[] = (await deps.registry.instruments()).map((i) => {
      const latest: InstrumentView['latest'] = {};
      for (const s of deps.store.latest(i.id)) latest[s.channel] = { value: s.value, ts: s.ts, quality: s.quality };
      return { ...i, latest, connected: connected.has(i.gateway), health: deps.healthOf(i.id) };
    });
    res.json(views);
  });

  app.get('/api/instruments/:id/history', async (req, res) => {
    const id = parseWith(idSchema, req.params.id, 'path: id', 'E_BAD_REQUEST');
    const query = parseWith(historyQuery, req.query, 'query', 'E_BAD_REQUEST');
    const instrument = await deps.registry.instrument(id);
    if (!instrument) throw new LabtraceError('E_NOT_FOUND', `instrument "${id}" is not known`);
    if (!instrument.channels.some((c) => c.name === query.channel)) {
      throw new LabtraceError('E_NOT_FOUND', `instrument "${id}" has no channel "${query.channel}"`);
    }
    const to = query.to ?? Date.now();
    const from = query.from ?? to - 10 * 60_000;
    res.json(deps.store.history(id, query.channel, from, to, query.limit));
  });

  app.use('/api', (req, _res, next) => next(new LabtraceError('E_NOT_FOUND', `no route ${req.method} ${req.originalUrl}`)));

  if (existsSync(path.join(deps.dashboardDir, 'index.html'))) {
    app.use(express.static(deps.dashboardDir, { index: 'index.html', maxAge: '1h' }));
    app.get('/{*path}', (_req, res) => res.sendFile(path.join(deps.dashboardDir, 'index.html')));
  } else {
    app.get('/', (_req, res) => {
      res.type('text').status(503).send(`The dashboard is not built (${deps.dashboardDir} has no index.html). Run: npm run build\n`);
    });
  }

  app.use(errorHandler(deps.logger));
  return app;
}
