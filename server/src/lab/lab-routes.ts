// REST routes of the lab records: samples received, methods, test runs and instrument service status.
// A client sees only its organization's samples and runs, a scoped auditor those of its grant (auth/visibility.ts);
// another organization's record answers 404,
// exactly like an unknown one, so that identifiers do not leak.
import express, { type Request } from 'express';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { principalOf, route } from '../auth/policy.js';
import type { RunInspection } from '../inspection/run-inspection.js';
import type { Principal } from '../auth/users.js';
import { canSee, visibleOrganizations } from '../auth/visibility.js';
import type { Review } from './calibration.js';
import type { EquipmentStatus } from './equipment.js';
import type { RunResultsSource } from './contracts.js';
import type { LabRecords } from './lab-records.js';
import { RUN_STATES, type RunEquipment, type Runs } from './runs.js';
import {
  abortInput,
  alarmActionInput,
  instrumentStatusInput,
  labSampleInput,
  methodInput,
  methodVersionInput,
  runInput,
  startInput,
} from './schemas.js';

const runsQuery = z.strictObject({ state: z.enum(RUN_STATES).optional(), sample: idSchema.optional() });
const recordsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100_000).default(10_000) });

function who(req: Request): Principal {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actorOf = (p: Principal) => ({ username: p.username, role: p.role });
const pathId = (req: Request): string => parseWith(idSchema, req.params['id'], 'path: id', 'E_BAD_REQUEST');
// alarm ids read `<rule>/<instrument>/<channel>#<n>`: a client sends them URL-encoded
const alarmIdSchema = z.string().min(1).max(400);

export function labRoutes(deps: {
  records: LabRecords;
  runs: Runs;
  equipment: EquipmentStatus;
  inspection: RunInspection;
  /** the runs to review when an instrument goes out of service (6.4.9) */
  review?: (instrument: string) => Review;
  /**
   * an instrument's identity and calibration status, shown with a run to whoever may see the run (a client
   * witnessing its test sees what measures it, without reading the lab's whole instrument list)
   */
  equipmentOf?: (instrument: string) => Promise<RunEquipment>;
  /** the results of completed runs */
  results?: RunResultsSource;
}): express.Router {
  const { records, runs, equipment, inspection } = deps;
  const router = express.Router();

  route(router, 'GET', '/api/lab-samples', (req, res) => {
    const p = who(req);
    const organizations = visibleOrganizations(p);
    res.json(organizations?.length === 1 ? records.samples(organizations[0]) : records.samples().filter((s) => canSee(p, s.organization)));
  });

  route(router, 'GET', '/api/lab-samples/:id', (req, res) => {
    const p = who(req);
    const id = pathId(req);
    const sample = records.sample(id);
    if (!sample || !canSee(p, sample.organization)) throw new LabtraceError('E_NOT_FOUND', `sample "${id}" is not known`);
    res.json(sample);
  });

  route(router, 'POST', '/api/lab-samples', (req, res) => {
    const input = parseWith(labSampleInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(records.createSample(actorOf(who(req)), input));
  });

  route(router, 'GET', '/api/methods', (_req, res) => {
    res.json(records.methods());
  });

  // every version of a method, oldest first
  route(router, 'GET', '/api/methods/:id', (req, res) => {
    const id = pathId(req);
    const versions = records.methods(id);
    if (versions.length === 0) throw new LabtraceError('E_NOT_FOUND', `method "${id}" is not known`);
    res.json(versions);
  });

  route(router, 'POST', '/api/methods', (req, res) => {
    const input = parseWith(methodInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(records.createMethod(actorOf(who(req)), input));
  });

  route(router, 'POST', '/api/methods/:id/versions', (req, res) => {
    const id = pathId(req);
    const input = parseWith(methodVersionInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(records.addMethodVersion(actorOf(who(req)), id, input));
  });

  route(router, 'GET', '/api/runs', (req, res) => {
    const query = parseWith(runsQuery, req.query, 'query', 'E_BAD_REQUEST');
    res.json(runs.list(who(req), query));
  });

  route(router, 'GET', '/api/runs/:id', async (req, res) => {
    const id = pathId(req);
    const run = runs.get(who(req), id);
    if (!run) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`);
    const equipmentOf = deps.equipmentOf;
    res.json(equipmentOf === undefined ? run : { ...run, equipment: await Promise.all(run.instruments.map((i) => equipmentOf(i.id))) });
  });

  route(router, 'GET', '/api/runs/:id/records', (req, res) => {
    const id = pathId(req);
    const query = parseWith(recordsQuery, req.query, 'query', 'E_BAD_REQUEST');
    const run = runs.get(who(req), id);
    if (!run) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`);
    res.json({ ranges: run.ranges, ...runs.recordsOf(run, query.limit) });
  });

  // a completed run's results, with their uncertainty, conformity and scope (lab/results.ts)
  route(router, 'GET', '/api/runs/:id/results', (req, res) => {
    const id = pathId(req);
    const run = runs.get(who(req), id);
    if (!run) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`);
    const results = run.state === 'completed' ? deps.results?.resultsOf(id) : undefined;
    if (!results) throw new LabtraceError('E_NOT_FOUND', `run ${id} is ${run.state}: results are computed when a run completes`);
    res.json(results);
  });

  // the run's inspection alarms: each as it stands, and every event (raised ... cleared) with who and why
  route(router, 'GET', '/api/runs/:id/alarms', (req, res) => {
    const id = pathId(req);
    if (!runs.get(who(req), id)) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`);
    res.json(inspection.alarmsOf(id));
  });

  for (const action of ['acknowledge', 'clear'] as const)
    route(router, 'POST', `/api/runs/:id/alarms/:alarmId/${action}`, (req, res) => {
      const id = pathId(req);
      const alarmId = parseWith(alarmIdSchema, req.params['alarmId'], 'path: alarmId', 'E_BAD_REQUEST');
      const body = parseWith(alarmActionInput, req.body ?? {}, 'body', 'E_BAD_REQUEST');
      const p = who(req);
      if (!runs.get(p, id)) throw new LabtraceError('E_NOT_FOUND', `run "${id}" is not known`);
      res.json(
        action === 'acknowledge'
          ? inspection.acknowledge(actorOf(p), id, alarmId, body.reason)
          : inspection.clear(actorOf(p), id, alarmId, body.reason),
      );
    });

  route(router, 'POST', '/api/runs', (req, res) => {
    const input = parseWith(runInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(runs.create(actorOf(who(req)), input));
  });

  route(router, 'POST', '/api/runs/:id/start', (req, res) => {
    const id = pathId(req);
    const body = parseWith(startInput, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(runs.start(actorOf(who(req)), id, body.reason));
  });

  route(router, 'POST', '/api/runs/:id/stop', (req, res) => {
    const id = pathId(req);
    const body = parseWith(startInput, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(runs.stop(actorOf(who(req)), id, body.reason));
  });

  route(router, 'POST', '/api/runs/:id/abort', (req, res) => {
    const id = pathId(req);
    const body = parseWith(abortInput, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(runs.abort(actorOf(who(req)), id, body.reason));
  });

  route(router, 'GET', '/api/instruments/:id/status', (req, res) => {
    const id = pathId(req);
    res.json({ instrument: id, current: equipment.status(id) ?? null, blockers: equipment.blockers(id), history: equipment.history(id) });
  });

  route(router, 'POST', '/api/instruments/:id/status', (req, res) => {
    const id = pathId(req);
    const body = parseWith(instrumentStatusInput, req.body, 'body', 'E_BAD_REQUEST');
    const record = equipment.setStatus(actorOf(who(req)), id, body.status, body.reason);
    const review = body.status === 'out-of-service' ? deps.review?.(id) : undefined;
    res.status(201).json(review === undefined ? record : { ...record, review });
  });

  return router;
}
