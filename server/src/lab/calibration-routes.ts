// REST routes of instrument calibration: records, intermediate checks and the status computed from them.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Calibration } from './calibration.js';

function actorOf(req: Request): { username: string; role: string } {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return { username: principal.username, role: principal.role };
}

export function calibrationRoutes(calibration: Calibration): express.Router {
  const router = express.Router();

  // what is due: instruments due soon, expired, never calibrated or out of service (soonest first)
  routeOf(router, api.calibrationReminders, (_req, res) => {
    res.json(calibration.reminders());
  });

  routeOf(router, api.instrumentCalibrations, (_req, res, { params: { id } }) => {
    res.json({ instrument: id, calibrations: calibration.calibrations(id), checks: calibration.checks(id) });
  });

  routeOf(router, api.recordCalibration, (req, res, { params, body }) => {
    res.status(201).json(calibration.record(actorOf(req), params.id, body));
  });

  routeOf(router, api.recordCheck, (req, res, { params, body }) => {
    res.status(201).json(calibration.check(actorOf(req), params.id, body));
  });

  routeOf(router, api.calibrationStatus, (_req, res, { params }) => {
    res.json(calibration.status(params.id));
  });

  return router;
}
