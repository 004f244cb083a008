// REST routes of the lab's accreditations: read by every user and, in short, by the public (the mark on
// a certificate must be checkable); recorded, suspended, reinstated, withdrawn and rescoped by the admin.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Accreditations } from './accreditation.js';

function actorOf(req: Request): { username: string; role: string } {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return { username: principal.username, role: principal.role };
}

export function accreditationRoutes(accreditations: Accreditations, lab: string): express.Router {
  const router = express.Router();

  routeOf(router, api.publicAccreditation, (_req, res, { query }) => {
    const at = query.at ?? accreditations.now();
    res.json({ lab, at, accreditations: accreditations.publicList(at) });
  });

  routeOf(router, api.listAccreditations, (_req, res, { query }) => {
    res.json(accreditations.list(query.at));
  });

  routeOf(router, api.getAccreditation, (_req, res, { params: { id }, query }) => {
    const view = accreditations.view(id, query.at);
    if (!view) throw notFound('accreditation', id);
    res.json({ ...view, scopeVersions: accreditations.scopeVersions(id) });
  });

  routeOf(router, api.createAccreditation, (req, res, { body }) => {
    res.status(201).json(accreditations.create(actorOf(req), body));
  });

  routeOf(router, api.accreditationEvent, (req, res, { params, body }) => {
    res.status(201).json(accreditations.event(actorOf(req), params.id, body));
  });

  routeOf(router, api.changeAccreditationScope, (req, res, { params, body }) => {
    res.status(201).json(accreditations.changeScope(actorOf(req), params.id, body));
  });

  return router;
}
