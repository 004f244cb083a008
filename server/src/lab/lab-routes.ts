// REST routes of the lab records: samples received, methods, test runs and instrument service status.
// A client sees only its organization's samples and runs, a scoped auditor those of its grant (auth/visibility.ts);
// another organization's record answers 404,
// exactly like an unknown one, so that identifiers do not leak.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import { sendRevalidated } from '../api/revalidate.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { RunInspection } from '../inspection/run-inspection.js';
import type { Principal } from '../auth/users.js';
import { canSee, visibleOrganizations } from '../auth/visibility.js';
import type { Review } from './calibration.js';
import type { EquipmentStatus } from './equipment.js';
import type { RunResultsSource } from './contracts.js';
import type { LabRecords } from './lab-records.js';
import type { RunEquipment, Runs } from './runs.js';

function who(req: Request): Principal {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actorOf = (p: Principal) => ({ username: p.username, role: p.role });

export function labRoutes(deps: {
  records: LabRecords;
  runs: Runs;
  equipment: EquipmentStatus;
  inspection: RunInspection;
  /** the runs to review when an instrument goes out of service (6.4.9) */
  review?: (instrument: string) => Promise<Review>;
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

  // a page of the samples the principal may see, newest first, searched and filtered as the query asks
  routeOf(router, api.listSamples, async (req, res, { query }) => {
    res.json(await records.samplesPage(query, visibleOrganizations(who(req))));
  });

  routeOf(router, api.getSample, async (req, res, { params: { id } }) => {
    const p = who(req);
    const sample = await records.sample(id);
    if (!sample || !canSee(p, sample.organization)) throw notFound('sample', id);
    res.json(sample);
  });

  routeOf(router, api.createSample, async (req, res, { body }) => {
    res.status(201).json(await records.createSample(actorOf(who(req)), body));
  });

  // a page of methods, each in its newest version (its versions: getMethod)
  routeOf(router, api.listMethods, async (_req, res, { query }) => {
    res.json(await records.methodsPage(query));
  });

  // every version of a method, oldest first
  routeOf(router, api.getMethod, async (_req, res, { params: { id } }) => {
    const versions = await records.methods(id);
    if (versions.length === 0) throw notFound('method', id);
    res.json(versions);
  });

  routeOf(router, api.createMethod, async (req, res, { body }) => {
    res.status(201).json(await records.createMethod(actorOf(who(req)), body));
  });

  routeOf(router, api.addMethodVersion, async (req, res, { params, body }) => {
    res.status(201).json(await records.addMethodVersion(actorOf(who(req)), params.id, body));
  });

  routeOf(router, api.listRuns, async (req, res, { query }) => {
    // read again by the dashboard: 304 while unchanged (api/revalidate.ts)
    sendRevalidated(req, res, await runs.page(who(req), query));
  });

  // the open alarms of the runs the caller may see: the navigation's badge and the tab's title
  routeOf(router, api.openAlarmCount, async (req, res) => {
    res.json(await runs.openAlarms(who(req)));
  });

  routeOf(router, api.getRun, async (req, res, { params: { id } }) => {
    const run = await runs.get(who(req), id);
    if (!run) throw notFound('run', id);
    const equipmentOf = deps.equipmentOf;
    res.json(equipmentOf === undefined ? run : { ...run, equipment: await Promise.all(run.instruments.map((i) => equipmentOf(i.id))) });
  });

  routeOf(router, api.runRecords, async (req, res, { params: { id }, query }) => {
    const run = await runs.get(who(req), id);
    if (!run) throw notFound('run', id);
    res.json({ ranges: run.ranges, ...(await runs.recordsOf(run, query.limit)) });
  });

  // a completed run's results, with their uncertainty, conformity and scope (lab/results.ts)
  routeOf(router, api.runResults, async (req, res, { params: { id } }) => {
    const run = await runs.get(who(req), id);
    if (!run) throw notFound('run', id);
    const results = run.state === 'completed' ? await deps.results?.resultsOf(id) : undefined;
    if (!results)
      throw new LabtraceError('E_NOT_FOUND', `run ${id} is ${run.state}: results are computed when a run completes`, {
        reason: 'run.results-not-ready',
        params: { id, state: run.state },
      });
    res.json(results);
  });

  // the run's inspection alarms: each as it stands, and every event (raised ... cleared) with who and why
  routeOf(router, api.runAlarms, async (req, res, { params: { id } }) => {
    if (!(await runs.get(who(req), id))) throw notFound('run', id);
    res.json(await inspection.alarmsOf(id));
  });

  for (const action of ['acknowledge', 'clear'] as const)
    routeOf(router, action === 'acknowledge' ? api.acknowledgeAlarm : api.clearAlarm, async (req, res, { params: { id, alarmId }, body }) => {
      const p = who(req);
      if (!(await runs.get(p, id))) throw notFound('run', id);
      res.json(
        action === 'acknowledge'
          ? await inspection.acknowledge(actorOf(p), id, alarmId, body.reason)
          : await inspection.clear(actorOf(p), id, alarmId, body.reason),
      );
    });

  routeOf(router, api.createRun, async (req, res, { body }) => {
    res.status(201).json(await runs.create(actorOf(who(req)), body));
  });

  routeOf(router, api.startRun, async (req, res, { params, body }) => {
    res.json(await runs.start(actorOf(who(req)), params.id, body.reason));
  });

  routeOf(router, api.stopRun, async (req, res, { params, body }) => {
    const run = await runs.stop(actorOf(who(req)), params.id, body.reason);
    // answered once the results are kept (the completion's listener computes them; this waits for that work), so
    // that a client told "completed" finds them; a failure is the listener's to log and a later read computes them
    await deps.results?.resultsOf(run.id).catch(() => undefined);
    res.json(run);
  });

  routeOf(router, api.abortRun, async (req, res, { params, body }) => {
    res.json(await runs.abort(actorOf(who(req)), params.id, body.reason));
  });

  routeOf(router, api.instrumentStatus, async (_req, res, { params: { id } }) => {
    const [current, blockers, history] = await Promise.all([equipment.status(id), equipment.blockers(id), equipment.history(id)]);
    res.json({ instrument: id, current: current ?? null, blockers, history });
  });

  routeOf(router, api.setInstrumentStatus, async (req, res, { params: { id }, body }) => {
    const record = await equipment.setStatus(actorOf(who(req)), id, body.status, body.reason);
    const review = body.status === 'out-of-service' ? await deps.review?.(id) : undefined;
    res.status(201).json(review === undefined ? record : { ...record, review });
  });

  return router;
}
