// Export bundles over HTTP, for auditors (docs/auditor-guide.md): the same bundle as `labtrace export`, by gateway
// and time span or by test run, as one tar archive of the bundle's folder (a folder per gateway for a run that
// used several). A bundle holds whole signed batches, which may carry other instruments' records on the same
// gateway, so it is for the lab's staff and for auditors who see every organization (policy.ts), not for clients
// or auditors limited to some organizations.
import type { Response } from 'express';
import express from 'express';
import { pack as tarPack } from 'tar-stream';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith } from '@labtrace/protocols';
import { isoInstant } from '../api/time.js';
import { route } from '../auth/policy.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { LabDatabase } from '../store/database.js';
import { buildBundle, type BundleFile } from './bundle.js';
import { runSelections } from './run-selection.js';

// strict: 2026-02-31 is refused, not rolled over; the offset (Z or +hh:mm) is required
const isoTime = isoInstant;

const spanQuery = z.strictObject({ gateway: idSchema, from: isoTime, to: isoTime }).refine((q) => q.from <= q.to, {
  message: 'from is later than to',
  path: ['from'],
});

/** A folder of files as a tar archive, sent as the response (written to the response as it is made). */
function sendTar(res: Response, name: string, folders: { dir: string; files: BundleFile[] }[]): void {
  const archive = tarPack();
  res.setHeader('content-type', 'application/x-tar');
  res.setHeader('content-disposition', `attachment; filename="${name}.tar"`);
  archive.pipe(res);
  const mtime = new Date();
  for (const { dir, files } of folders) {
    archive.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime });
    for (const f of files) archive.entry({ name: `${dir}/${f.name}`, mode: 0o644, mtime }, f.content);
  }
  archive.finalize();
}

export function exportRoutes(database: LabDatabase, log: () => TransparencyLog | undefined): express.Router {
  const router = express.Router();
  const opened = (): TransparencyLog => {
    const l = log();
    if (l === undefined) throw new LabtraceError('E_NOT_FOUND', 'the transparency log is not open');
    return l;
  };

  route(router, 'GET', '/api/export', (req, res) => {
    const { gateway, from, to } = parseWith(spanQuery, req.query, 'query', 'E_BAD_REQUEST');
    const bundle = buildBundle(database, opened(), { gateway, from, to });
    const name = `labtrace-bundle-${gateway}-${new Date(from).toISOString().replace(/[:.]/g, '')}`;
    res.setHeader('x-bundle-records', String(bundle.records));
    sendTar(res, name, [{ dir: name, files: bundle.files }]);
  });

  route(router, 'GET', '/api/runs/:id/export', (req, res) => {
    const run = parseWith(idSchema, req.params['id'], 'path: id', 'E_BAD_REQUEST');
    let found;
    try {
      found = runSelections(database, run, 'path: id');
    } catch (err) {
      // a run that has not started has nothing to export: a bad request, not a broken server
      if (err instanceof LabtraceError && err.code === 'E_CONFIG') throw new LabtraceError('E_BAD_REQUEST', err.message);
      throw err;
    }
    if (found.selections.length === 0) throw new LabtraceError('E_BAD_REQUEST', `path: id: run "${run}" has no stored records`);
    const name = `labtrace-bundle-run-${run}`;
    const l = opened();
    const folders = found.selections.map((s) => ({
      dir: found.selections.length === 1 ? name : `${name}/${s.gateway}`,
      files: buildBundle(database, l, { gateway: s.gateway, from: s.from, to: s.to }).files,
    }));
    res.setHeader('x-run-state', found.state);
    sendTar(res, name, folders);
  });

  return router;
}
