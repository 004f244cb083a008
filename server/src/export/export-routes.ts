// Export bundles over HTTP, for auditors (docs/auditor-guide.md): the same bundle as `labtrace export`, by gateway
// and time span or by test run, as one tar archive of the bundle's folder (a folder per gateway for a run that
// used several). A bundle holds whole signed batches, which may carry other instruments' records on the same
// gateway, so it is for the lab's staff and for auditors who see every organization (policy.ts), not for clients
// or auditors limited to some organizations. A client gets its own run's selective-disclosure bundle instead
// (GET /api/runs/:id/disclosure, disclosure.ts): that run's records only, with their proofs.
//
// The bundle is written to a spool folder under the data directory (bundle.ts, a step at a time, yielding to other
// requests), then sent as a tar stream with back-pressure: a slow or paused download holds a few buffers, not the
// bundle, and a download cancelled at any point ends this response only (the spool folder is removed either way).
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import express from 'express';
import { pack as tarPack, type Pack } from 'tar-stream';
import { LabtraceError, type RedactableField } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Viewer } from '../auth/visibility.js';
import type { Logger } from '../log.js';
import type { Kysely } from 'kysely';
import type { Tables } from '../store/database.js';
import { BUNDLE_FILES, exportBundle, type BundleLog, type BundleSelection } from './bundle.js';
import { disclosureBundle, type DisclosedRun } from './disclosure.js';
import type { RunSelection } from './run-selection.js';

/** One file of the bundle into the archive, read from the spool as the archive is read. */
function addFile(archive: Pack, name: string, file: string, size: number, mtime: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    const opened: { source?: ReadStream } = {};
    // the entry first: on an archive destroyed meanwhile (the client went away) it throws, and no file is opened
    const entry = archive.entry({ name, size, mode: 0o644, mtime }, (err) => {
      opened.source?.destroy();
      if (err) reject(err);
      else resolve();
    });
    // both errors reach the callback above; without a listener, an 'error' would end the process
    entry.on('error', () => undefined);
    const source = createReadStream(file);
    opened.source = source;
    source.on('error', (err) => entry.destroy(err));
    source.pipe(entry);
  });
}

/** The spooled bundle folders as one tar archive, fed as the response takes it. */
async function feedTar(archive: Pack, folders: { dir: string; spool: string }[]): Promise<void> {
  const mtime = new Date();
  for (const { dir, spool } of folders) {
    archive.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime });
    for (const name of BUNDLE_FILES) {
      const file = path.join(spool, name);
      await addFile(archive, `${dir}/${name}`, file, (await stat(file)).size, mtime);
    }
  }
  archive.finalize();
}

/** What the export routes need of the server. */
export interface ExportRouteDeps {
  /** the store the bundles are read from (SQLite or PostgreSQL) */
  store: Kysely<Tables>;
  /** the spool folder: in the data directory (a tmpfs /tmp would hold the spool in memory) */
  spoolDir: string;
  log: () => BundleLog | undefined;
  /** a run's gateways and time spans (export/run-selection.ts); `field` names the run in errors */
  runSelections: (
    run: string,
    field: string,
  ) => { state: string; selections: RunSelection[] } | Promise<{ state: string; selections: RunSelection[] }>;
  logger?: Logger | undefined;
  /** a run the viewer may see (undefined: unknown, or another organization's), for the client's disclosure bundle */
  runOf?: ((viewer: Viewer, id: string) => Promise<(DisclosedRun & { organization: string; state: string }) | undefined>) | undefined;
  /** the data-export policy: record fields a client's bundle replaces by commitments (export.clientBundle.redact) */
  redact?: readonly RedactableField[] | undefined;
}

export function exportRoutes({ store, spoolDir: spoolRoot, log, runSelections, logger, runOf, redact = [] }: ExportRouteDeps): express.Router {
  const router = express.Router();
  // what a killed server left in the spool is removed at start
  let swept: Promise<void> | undefined;
  const opened = (): BundleLog => {
    const l = log();
    if (l === undefined) throw new LabtraceError('E_NOT_FOUND', 'the transparency log is not open');
    return l;
  };

  /**
   * Spools the bundles of the selections, then streams them as one tar archive. The response's end, whether the
   * client took it all or went away, ends the work: the spool is removed, nothing is thrown past the response.
   */
  async function sendBundles(
    req: Request,
    res: Response,
    name: string,
    selections: { dir: string; selection: BundleSelection }[],
    headers: (records: number) => Record<string, string>,
  ): Promise<void> {
    const l = opened();
    swept ??= rm(spoolRoot, { recursive: true, force: true }).catch(() => undefined);
    await swept;
    await mkdir(spoolRoot, { recursive: true });
    const spool = await mkdtemp(path.join(spoolRoot, 'bundle-'));
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort(new LabtraceError('E_BAD_REQUEST', 'the client closed the connection'));
    };
    res.once('close', onClose);
    try {
      const folders: { dir: string; spool: string }[] = [];
      let records = 0;
      for (const [i, { dir, selection }] of selections.entries()) {
        const folder = path.join(spool, String(i));
        records += (await exportBundle(store, l, { ...selection, outDir: folder, signal: gone.signal })).records;
        folders.push({ dir, spool: folder });
      }
      for (const [k, v] of Object.entries(headers(records))) res.setHeader(k, v);
      res.setHeader('content-type', 'application/x-tar');
      res.setHeader('content-disposition', `attachment; filename="${name}.tar"`);
      const archive = tarPack();
      archive.on('error', () => undefined); // a destroyed archive (the client went away) is the pipeline's error
      // settled, never rejected: its failure is looked at once the response has ended
      const feeding = feedTar(archive, folders).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
      try {
        await pipeline(Readable.from(archive), res);
      } catch (err) {
        archive.destroy();
        await feeding;
        if (!gone.signal.aborted) throw err;
      }
      const failed = await feeding;
      if (failed !== undefined && !gone.signal.aborted) throw failed;
      if (gone.signal.aborted) logger?.info({ url: req.originalUrl }, 'export download cancelled by the client');
    } catch (err) {
      if (!gone.signal.aborted) throw err;
      logger?.info({ url: req.originalUrl }, 'export cancelled by the client before it was sent');
    } finally {
      res.off('close', onClose);
      await rm(spool, { recursive: true, force: true });
    }
  }

  routeOf(router, api.exportBundle, async (req, res, { query: { gateway, from, to } }) => {
    const name = `labtrace-bundle-${gateway}-${new Date(from).toISOString().replace(/[:.]/g, '')}`;
    await sendBundles(req, res, name, [{ dir: name, selection: { gateway, from, to } }], (records) => ({
      'x-bundle-records': String(records),
    }));
  });

  routeOf(router, api.exportRun, async (req, res, { params: { id: run } }) => {
    let found;
    try {
      found = await runSelections(run, 'path: id');
    } catch (err) {
      // a run that has not started has nothing to export: a bad request, not a broken server
      if (err instanceof LabtraceError && err.code === 'E_CONFIG') throw new LabtraceError('E_BAD_REQUEST', err.message);
      throw err;
    }
    if (found.selections.length === 0) throw new LabtraceError('E_BAD_REQUEST', `path: id: run "${run}" has no stored records`);
    const name = `labtrace-bundle-run-${run}`;
    const several = found.selections.length > 1;
    await sendBundles(
      req,
      res,
      name,
      found.selections.map((s) => ({ dir: several ? `${name}/${s.gateway}` : name, selection: { gateway: s.gateway, from: s.from, to: s.to } })),
      () => ({ 'x-run-state': found.state }),
    );
  });

  // the client's bundle of its own run: another organization's run answers 404, like an unknown one (runs.ts)
  routeOf(router, api.exportDisclosure, async (req, res, { params: { id } }) => {
    const principal = principalOf(req);
    const run = principal === undefined || runOf === undefined ? undefined : await runOf(principal, id);
    if (principal === undefined || run === undefined) throw new LabtraceError('E_NOT_FOUND', `path: id: there is no run "${id}"`);
    if (run.state === 'planned') throw new LabtraceError('E_BAD_REQUEST', `path: id: run "${id}" has not started: it has no records`);
    const bundle = await disclosureBundle(store, opened(), run, redact);
    if (bundle.records === 0 && bundle.pending === 0) throw new LabtraceError('E_BAD_REQUEST', `path: id: run "${id}" has no stored records`);
    logger?.info(
      {
        user: principal.username,
        role: principal.role,
        organization: run.organization,
        run: id,
        records: bundle.records,
        redactedRecords: bundle.redacted,
        redact: [...redact],
        pending: bundle.pending,
      },
      'client disclosure bundle exported',
    );
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-disposition', `attachment; filename="labtrace-disclosure-run-${id}.json"`);
    res.setHeader('x-run-state', run.state);
    res.setHeader('x-bundle-records', String(bundle.records));
    // records of batches the checkpoint does not cover yet: the next checkpoint (within seconds) brings them
    res.setHeader('x-bundle-pending', String(bundle.pending));
    res.send(bundle.text);
  });

  return router;
}
