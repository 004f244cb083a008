// The transparency log over HTTP: the latest (or an earlier) signed checkpoint, inclusion and consistency
// proofs, and the entries themselves, for auditors and witnesses. Errors go to the app's error handler.
import express from 'express';
import { z } from 'zod';
import { idSchema, LabtraceError, parseWith, toBase64 } from '@labtrace/protocols';
import { route } from '../auth/policy.js';
import type { TransparencyLog } from './transparency-log.js';

/** A tree size or index: decimal digits without leading zeros (not "", "1e3", "0x10" or "-1"). */
const count = z
  .string()
  .regex(/^(?:0|[1-9][0-9]{0,15})$/, 'expected a whole number in decimal')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER, 'too large'));

const checkpointQuery = z.strictObject({ size: count.optional() });
const inclusionQuery = z.strictObject({ index: count, size: count });
const consistencyQuery = z.strictObject({ from: count, to: count });
const entriesQuery = z.strictObject({ start: count, end: count });

export interface LogRouteSources {
  /** the proof of one measurement (see measurement-proof.ts) */
  measurement?: (gateway: string, seq: number) => unknown;
  /** every gateway key with its validity */
  gatewayKeys?: () => unknown[];
}

export function logRoutes(log: TransparencyLog, sources: LogRouteSources = {}): express.Router {
  const router = express.Router();

  route(router, 'GET', '/api/log/keys', (_req, res) => {
    res.json({ log: { verifierKey: log.verifierKey() }, gateways: sources.gatewayKeys?.() ?? [] });
  });

  route(router, 'GET', '/api/log/measurement/:gateway/:seq', (req, res) => {
    const gateway = parseWith(idSchema, req.params['gateway'], 'path: gateway', 'E_BAD_REQUEST');
    const seq = parseWith(count, req.params['seq'], 'path: seq', 'E_BAD_REQUEST');
    if (sources.measurement === undefined) throw new LabtraceError('E_NOT_FOUND', 'measurement proofs are not served here');
    res.json(sources.measurement(gateway, seq));
  });

  // text/plain, as C2SP checkpoints are served; ?size=N gives the checkpoint signed at that size, if any
  route(router, 'GET', '/api/log/checkpoint', (req, res) => {
    const query = parseWith(checkpointQuery, req.query, 'query', 'E_BAD_REQUEST');
    let note: string;
    if (query.size === undefined) {
      note = log.checkpoint();
      res.set('cache-control', 'no-cache');
    } else {
      const stored = log.checkpointAt(query.size);
      if (stored === undefined) throw new LabtraceError('E_NOT_FOUND', `no checkpoint was signed at tree size ${query.size}`);
      note = stored.note;
    }
    res.type('text/plain; charset=utf-8').send(note);
  });

  route(router, 'GET', '/api/log/proof/inclusion', (req, res) => {
    const { index, size } = parseWith(inclusionQuery, req.query, 'query', 'E_BAD_REQUEST');
    const proof = log.inclusionProof(index, size);
    res.json({ index, size, leafHash: toBase64(log.leafHash(index)), proof: proof.map(toBase64) });
  });

  route(router, 'GET', '/api/log/proof/consistency', (req, res) => {
    const { from, to } = parseWith(consistencyQuery, req.query, 'query', 'E_BAD_REQUEST');
    res.json({ from, to, proof: log.consistencyProof(from, to).map(toBase64) });
  });

  route(router, 'GET', '/api/log/entries', (req, res) => {
    const { start, end } = parseWith(entriesQuery, req.query, 'query', 'E_BAD_REQUEST');
    res.json({ entries: log.entries(start, end).map((e) => ({ index: e.index, kind: e.kind, at: e.at, data: toBase64(e.data) })) });
  });

  return router;
}
