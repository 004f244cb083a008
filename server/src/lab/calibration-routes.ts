// REST routes of instrument calibration: records, intermediate checks and the status computed from them, the
// certificates attached to the records, the instrument register (paged, searched, filtered) and each instrument's
// connection health over time.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api, ATTACHMENT_MAX_BYTES } from '@labtrace/protocols/api';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Calibration } from './calibration.js';
import type { EquipmentHealth } from './equipment-health.js';

function actorOf(req: Request): { username: string; role: string } {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return { username: principal.username, role: principal.role };
}

const notPdf = (why: string) =>
  new LabtraceError('E_BAD_REQUEST', `body: ${why}`, {
    reason: 'calibration.certificate-not-pdf',
    params: { maxBytes: ATTACHMENT_MAX_BYTES },
  });

/** every PDF starts with its header (ISO 32000-1 7.5.2) */
const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');

export interface CalibrationRouteDeps {
  /** the gateways connected now (the register's `connected`) */
  connectedGateways?: () => Iterable<string>;
  /** instrument health over time */
  health?: EquipmentHealth;
  /** whether an instrument is known (the health route answers 404 for an unknown one) */
  instrumentExists?: (id: string) => Promise<boolean>;
}

export function calibrationRoutes(calibration: Calibration, deps: CalibrationRouteDeps = {}): express.Router {
  const router = express.Router();

  // what is due: instruments due soon, expired, never calibrated or out of service (soonest first)
  routeOf(router, api.calibrationReminders, async (_req, res) => {
    res.json(await calibration.reminders());
  });

  routeOf(router, api.instrumentCalibrations, async (_req, res, { params: { id } }) => {
    res.json({ instrument: id, calibrations: await calibration.calibrationsWithAttachments(id), checks: await calibration.checks(id) });
  });

  routeOf(router, api.recordCalibration, async (req, res, { params, body }) => {
    res.status(201).json(await calibration.record(actorOf(req), params.id, body));
  });

  routeOf(router, api.recordCheck, async (req, res, { params, body }) => {
    res.status(201).json(await calibration.check(actorOf(req), params.id, body));
  });

  routeOf(router, api.calibrationStatus, async (_req, res, { params }) => {
    res.json(await calibration.status(params.id));
  });

  // the calibrating lab's certificate, as a PDF in the body (not JSON: the bytes are what is kept and hashed)
  routeOf(
    router,
    api.attachCalibrationCertificate,
    express.raw({ type: () => true, limit: ATTACHMENT_MAX_BYTES }),
    async (req, res, { params, query, body }) => {
      if (!req.is('application/pdf')) throw notPdf(`expected a PDF file sent as application/pdf, not ${req.get('content-type') ?? 'nothing'}`);
      if (!Buffer.isBuffer(body) || body.length === 0) throw notPdf('the file is empty');
      if (!body.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) throw notPdf('the file is not a PDF (it does not start with %PDF-)');
      const attachment = await calibration.attach(actorOf(req), params.id, params.record, {
        filename: query.filename ?? `calibration-${params.record}.pdf`,
        contentType: 'application/pdf',
        data: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      });
      res.status(201).json(attachment);
    },
  );

  routeOf(router, api.calibrationCertificate, async (_req, res, { params }) => {
    const file = await calibration.attachment(params.id, params.record);
    if (file === undefined)
      throw new LabtraceError('E_NOT_FOUND', `calibration record ${params.id}/${params.record} has no certificate attached`, {
        reason: 'record.not-found',
        params: { type: 'calibration-certificate', id: `${params.id}/${params.record}` },
      });
    res
      .status(200)
      .set('content-type', file.contentType)
      .set('content-length', String(file.size))
      .set('digest', `sha-256=${Buffer.from(file.sha256, 'hex').toString('base64')}`)
      .set('x-content-sha256', file.sha256)
      .attachment(file.filename)
      .end(file.data);
  });

  routeOf(router, api.instrumentRegister, async (_req, res, { query }) => {
    res.json(await calibration.register(query, new Set(deps.connectedGateways?.() ?? [])));
  });

  routeOf(router, api.instrumentHealthHistory, async (_req, res, { params: { id }, query }) => {
    if (deps.instrumentExists !== undefined && !(await deps.instrumentExists(id)))
      throw new LabtraceError('E_NOT_FOUND', `instrument "${id}" is not known`, { reason: 'record.not-found', params: { type: 'instrument', id } });
    const to = query.to ?? Date.now();
    const from = query.from ?? to - 86_400_000;
    if (from > to) throw new LabtraceError('E_BAD_REQUEST', `query: from: ${from} is after to (${to})`);
    res.json({ instrument: id, from, to, points: (await deps.health?.history(id, from, to, query.points)) ?? [] });
  });

  return router;
}
