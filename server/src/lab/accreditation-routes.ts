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

  routeOf(router, api.publicAccreditation, async (_req, res, { query }) => {
    const at = query.at ?? accreditations.now();
    res.json({ lab, at, accreditations: await accreditations.publicList(at) });
  });

  routeOf(router, api.listAccreditations, async (_req, res, { query }) => {
    res.json(await accreditations.list(query.at));
  });

  routeOf(router, api.getAccreditation, async (_req, res, { params: { id }, query }) => {
    const view = await accreditations.view(id, query.at);
    if (!view) throw notFound('accreditation', id);
    res.json({ ...view, scopeVersions: await accreditations.scopeVersions(id) });
  });

  routeOf(router, api.createAccreditation, async (req, res, { body }) => {
    res.status(201).json(await accreditations.create(actorOf(req), body));
  });

  routeOf(router, api.accreditationEvent, async (req, res, { params, body }) => {
    res.status(201).json(await accreditations.event(actorOf(req), params.id, body));
  });

  routeOf(router, api.changeAccreditationScope, async (req, res, { params, body }) => {
    res.status(201).json(await accreditations.changeScope(actorOf(req), params.id, body));
  });

  return router;
}
