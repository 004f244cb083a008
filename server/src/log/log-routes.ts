// The transparency log over HTTP: the latest (or an earlier) signed checkpoint, inclusion and consistency
// proofs, and the entries themselves, for auditors and witnesses. Errors go to the app's error handler.
import express from 'express';
import { LabtraceError, toBase64 } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { routeOf } from '../auth/policy.js';
import type { LogReader } from './log-reader.js';

export interface LogRouteSources {
  /** the proof of one measurement (see measurement-proof.ts) */
  measurement?: (gateway: string, seq: number) => Promise<unknown>;
  /** every gateway key with its validity */
  gatewayKeys?: () => unknown[];
}

/** `log`: the in-process log (through logReaderOf) or the shared store (log-store.ts) */
export function logRoutes(log: LogReader, sources: LogRouteSources = {}): express.Router {
  const router = express.Router();

  routeOf(router, api.logKeys, (_req, res) => {
    res.json({ log: { verifierKey: log.verifierKey() }, gateways: sources.gatewayKeys?.() ?? [] });
  });

  routeOf(router, api.measurementProof, async (_req, res, { params: { gateway, seq } }) => {
    if (sources.measurement === undefined) throw new LabtraceError('E_NOT_FOUND', 'measurement proofs are not served here');
    res.json(await sources.measurement(gateway, seq));
  });

  // text/plain, as C2SP checkpoints are served; ?size=N gives the checkpoint signed at that size, if any
  routeOf(router, api.logCheckpoint, async (_req, res, { query }) => {
    let note: string;
    if (query.size === undefined) {
      note = await log.checkpoint();
      res.set('cache-control', 'no-cache');
    } else {
      const stored = await log.checkpointAt(query.size);
      if (stored === undefined) throw new LabtraceError('E_NOT_FOUND', `no checkpoint was signed at tree size ${query.size}`);
      note = stored.note;
    }
    res.type('text/plain; charset=utf-8').send(note);
  });

  routeOf(router, api.inclusionProof, async (_req, res, { query: { index, size } }) => {
    const proof = await log.inclusionProof(index, size);
    res.json({ index, size, leafHash: toBase64(await log.leafHash(index)), proof: proof.map(toBase64) });
  });

  routeOf(router, api.consistencyProof, async (_req, res, { query: { from, to } }) => {
    res.json({ from, to, proof: (await log.consistencyProof(from, to)).map(toBase64) });
  });

  routeOf(router, api.logEntries, async (_req, res, { query: { start, end } }) => {
    res.json({ entries: (await log.entries(start, end)).map((e) => ({ index: e.index, kind: e.kind, at: e.at, data: toBase64(e.data) })) });
  });

  return router;
}
