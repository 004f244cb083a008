// REST routes of instrument calibration: records, intermediate checks and the status computed from them.
import express, { type Request } from 'express';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { principalOf, route } from '../auth/policy.js';
import { calibrationInput, checkInput, type Calibration } from './calibration.js';

function actorOf(req: Request): { username: string; role: string } {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return { username: principal.username, role: principal.role };
}

const pathId = (req: Request): string => parseWith(idSchema, req.params['id'], 'path: id', 'E_BAD_REQUEST');

export function calibrationRoutes(calibration: Calibration): express.Router {
  const router = express.Router();

  // what is due: instruments due soon, expired, never calibrated or out of service (soonest first)
  route(router, 'GET', '/api/calibration/reminders', (_req, res) => {
    res.json(calibration.reminders());
  });

  route(router, 'GET', '/api/instruments/:id/calibrations', (req, res) => {
    const id = pathId(req);
    res.json({ instrument: id, calibrations: calibration.calibrations(id), checks: calibration.checks(id) });
  });

  route(router, 'POST', '/api/instruments/:id/calibrations', (req, res) => {
    const id = pathId(req);
    const input = parseWith(calibrationInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(calibration.record(actorOf(req), id, input));
  });

  route(router, 'POST', '/api/instruments/:id/checks', (req, res) => {
    const id = pathId(req);
    const input = parseWith(checkInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(calibration.check(actorOf(req), id, input));
  });

  route(router, 'GET', '/api/instruments/:id/calibration-status', (req, res) => {
    res.json(calibration.status(pathId(req)));
  });

  return router;
}
