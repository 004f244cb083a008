// The transparency log over HTTP: the latest (or an earlier) signed checkpoint, inclusion and consistency
// proofs, and the entries themselves, for auditors and witnesses. Errors go to the app's error handler.
import express from 'express';
import { LabtraceError, toBase64 } from '@labtrace/protocols';
import { api, type LogWitnesses } from '@labtrace/protocols/api';
import { routeOf } from '../auth/policy.js';
import type { LogReader } from './log-reader.js';

export interface LogRouteSources {
  /** the proof of one measurement (see measurement-proof.ts) */
  measurement?: (gateway: string, seq: number) => Promise<unknown>;
  /** every gateway key with its validity */
  gatewayKeys?: () => unknown[];
  /** the checkpoint note of this size with the witnesses' cosignatures it got appended (witness/cosigning.ts) */
  cosigned?: (size: number, note: string) => Promise<string>;
  /** the witnesses' state (GET /api/log/witnesses) */
  witnesses?: () => Promise<LogWitnesses['witnesses']>;
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

  // text/plain, as C2SP checkpoints are served; ?size=N gives the checkpoint signed at that size, if any. The
  // witnesses' cosignatures follow the log's signature line (a note verifier ignores the keys it does not know)
  routeOf(router, api.logCheckpoint, async (_req, res, { query }) => {
    let stored: { size: number; note: string } | undefined;
    if (query.size === undefined) {
      await log.checkpoint();
      stored = await log.latestCheckpoint();
      res.set('cache-control', 'no-cache');
    } else {
      stored = await log.checkpointAt(query.size);
      if (stored === undefined) throw new LabtraceError('E_NOT_FOUND', `no checkpoint was signed at tree size ${query.size}`);
    }
    const note = sources.cosigned === undefined ? stored.note : await sources.cosigned(stored.size, stored.note);
    res.type('text/plain; charset=utf-8').send(note);
  });

  routeOf(router, api.logWitnesses, async (_req, res) => {
    res.json({ witnesses: (await sources.witnesses?.()) ?? [] });
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
