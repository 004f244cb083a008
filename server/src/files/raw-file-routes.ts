// GET /api/raw-files/:sha256: a result file's bytes as the instrument wrote them.
import express from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { routeOf } from '../auth/policy.js';
import type { RawFiles } from './raw-files.js';

export function rawFileRoutes(files: RawFiles): express.Router {
  const router = express.Router();
  routeOf(router, api.rawFile, async (_req, res, { params: { sha256 } }) => {
    const file = await files.get(sha256);
    if (file === undefined) throw new LabtraceError('E_NOT_FOUND', `no result file with SHA-256 ${sha256}`);
    res
      .type('application/octet-stream')
      .set('content-disposition', `attachment; filename="${file.name.replace(/[^\w.-]/g, '_')}"`)
      .set('x-labtrace-instrument', file.instrument)
      .set('x-labtrace-sha256', file.sha256)
      .send(file.data);
  });
  return router;
}
