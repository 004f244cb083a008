// REST routes of the share links of a run (contract: protocols/src/api/shares.ts): the lab's workers list, create
// and revoke them on the run's page; the holder of a link reads the run, its results, its records and its issued
// report through the public routes, which the API's rate limiter covers like every /api route.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import { api, type PublicShare } from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Principal } from '../auth/users.js';
import type { RunResultsSource } from './contracts.js';
import type { LabRecords } from './lab-records.js';
import type { RunShares } from './run-shares.js';
import type { Runs } from './runs.js';

/** the records a link shows at most (the newest of a longer run) */
const SHARED_RECORDS = 20_000;
/** the server itself reading the run a valid link names */
const LAB = { role: 'admin', organization: null } as const;

function who(req: Request): Principal {
  const principal = principalOf(req);
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

export function shareRoutes(deps: {
  shares: RunShares;
  runs: Runs;
  records: LabRecords;
  results?: RunResultsSource;
  /** the run's current issued report: its number, issue time and PDF */
  reportOf: (run: string) => Promise<{ id: string; issuedAt: number; pdf: () => Uint8Array } | undefined>;
}): express.Router {
  const { shares, runs } = deps;
  const router = express.Router();
  const runOf = async (req: Request, id: string): Promise<string> => {
    if (!(await runs.get(who(req), id))) throw notFound('run', id);
    return id;
  };

  routeOf(router, api.listShares, async (req, res, { params }) => {
    res.json(await shares.list(await runOf(req, params.id)));
  });

  routeOf(router, api.createShare, async (req, res, { params, body }) => {
    const p = who(req);
    res.status(201).json(await shares.create({ username: p.username, role: p.role }, await runOf(req, params.id), body));
  });

  routeOf(router, api.revokeShare, async (req, res, { params, body }) => {
    const p = who(req);
    res.json(await shares.revoke({ username: p.username, role: p.role }, await runOf(req, params.id), Number(params.shareId), body.reason));
  });

  routeOf(router, api.publicShare, async (req, res, { params }) => {
    const { run: id, expiresAt } = await shares.open(params.token);
    const run = await runs.get(LAB, id);
    if (!run) throw new LabtraceError('E_NOT_FOUND', 'this share link is not known', { reason: 'share.not-found' });
    const method = await deps.records.method(run.method.id, run.method.version);
    const records = await runs.recordsOf(run, SHARED_RECORDS);
    const report = await deps.reportOf(id);
    const answer: PublicShare = {
      expiresAt,
      run: {
        id: run.id,
        sample: run.sample,
        method: { ...run.method, title: method?.title ?? '' },
        state: run.state,
        accredited: run.accredited,
        createdAt: run.createdAt,
        startedAt: run.startedAt,
        endedAt: run.endedAt,
      },
      results: run.state === 'completed' ? ((await deps.results?.resultsOf(id)) ?? null) : null,
      samples: records.samples,
      truncated: records.truncated,
      report:
        report === undefined
          ? null
          : { id: report.id, issuedAt: report.issuedAt, pdf: `/api/public/shares/${encodeURIComponent(params.token)}/report.pdf` },
    };
    // the link is the credential: nothing of it stays in a shared cache
    res.set('cache-control', 'no-store').set('referrer-policy', 'no-referrer').json(answer);
  });

  routeOf(router, api.publicShareReport, async (_req, res, { params }) => {
    const { run } = await shares.peek(params.token);
    const report = await deps.reportOf(run);
    if (!report)
      throw new LabtraceError('E_NOT_FOUND', `run ${run} has no issued report`, {
        reason: 'record.not-found',
        params: { type: 'certificate', id: run },
      });
    res
      .type('application/pdf')
      .set('cache-control', 'no-store')
      .set('content-disposition', `attachment; filename="${report.id}.pdf"`)
      .send(Buffer.from(report.pdf()));
  });

  return router;
}
