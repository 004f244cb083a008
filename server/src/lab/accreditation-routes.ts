// REST routes of the lab's accreditations: read by every user and, in short, by the public (the mark on
// a certificate must be checkable); recorded, suspended, reinstated, withdrawn and rescoped by the admin.
import express, { type Request } from 'express';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { principalOf, route } from '../auth/policy.js';
import { timeMsQuery } from '../api/time.js';
import { accreditationInput, eventInput, scopeInput, type Accreditations } from './accreditation.js';

function actorOf(req: Request): { username: string; role: string } {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return { username: principal.username, role: principal.role };
}

const pathId = (req: Request): string => parseWith(idSchema, req.params['id'], 'path: id', 'E_BAD_REQUEST');
/** `?at=` asks how things stood at an earlier (or later) time, in ms since the epoch */
const atQuery = z.strictObject({ at: timeMsQuery.optional() });
const atOf = (req: Request): number | undefined => parseWith(atQuery, req.query, 'query', 'E_BAD_REQUEST').at;

export function accreditationRoutes(accreditations: Accreditations, lab: string): express.Router {
  const router = express.Router();

  route(router, 'GET', '/api/public/accreditation', (req, res) => {
    const at = atOf(req) ?? accreditations.now();
    res.json({ lab, at, accreditations: accreditations.publicList(at) });
  });

  route(router, 'GET', '/api/accreditations', (req, res) => {
    res.json(accreditations.list(atOf(req)));
  });

  route(router, 'GET', '/api/accreditations/:id', (req, res) => {
    const id = pathId(req);
    const view = accreditations.view(id, atOf(req));
    if (!view) throw new LabtraceError('E_NOT_FOUND', `accreditation "${id}" is not known`);
    res.json({ ...view, scopeVersions: accreditations.scopeVersions(id) });
  });

  route(router, 'POST', '/api/accreditations', (req, res) => {
    const input = parseWith(accreditationInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(accreditations.create(actorOf(req), input));
  });

  route(router, 'POST', '/api/accreditations/:id/events', (req, res) => {
    const id = pathId(req);
    const input = parseWith(eventInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(accreditations.event(actorOf(req), id, input));
  });

  route(router, 'POST', '/api/accreditations/:id/scope', (req, res) => {
    const id = pathId(req);
    const input = parseWith(scopeInput, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(accreditations.changeScope(actorOf(req), id, input));
  });

  return router;
}
