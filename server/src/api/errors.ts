// The one place where error codes become HTTP statuses.
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler } from 'express';
import { isLabtraceError, LabtraceError, type LabtraceErrorCode, type ReasonParams } from '@labtrace/protocols';
import { isReason, type Reason } from '@labtrace/protocols/api';
import type { Logger } from '../log.js';
import { writeFailureOf } from '../store/capacity.js';

const STATUS: Partial<Record<LabtraceErrorCode, number>> = {
  E_BAD_REQUEST: 400,
  E_AUTH: 401,
  E_FORBIDDEN: 403,
  E_CONFLICT: 409,
  E_NOT_FOUND: 404,
  E_GONE: 410,
  // the InfluxDB measurement store cannot be read (down) or answered with an error
  E_INFLUX_UNAVAILABLE: 503,
  E_WITNESS_UNAVAILABLE: 503,
  E_INFLUX_QUERY: 502,
  E_SUPERVISOR_UNAVAILABLE: 502,
  E_RATE_LIMITED: 429,
  // the store cannot write (disk full, I/O error) or keeps its free-space reserve
  E_STORE_UNAVAILABLE: 503,
};

/** a record that is not known or that the caller may not see (both answer alike, so that identifiers do not leak) */
export const notFound = (type: string, id: string, message = `${type} "${id}" is not known`): LabtraceError =>
  new LabtraceError('E_NOT_FOUND', message, { reason: 'record.not-found', params: { type, id } });

/** what a client is told to wait before it tries again when the store cannot write */
const STORE_RETRY_AFTER_S = 30;

/**
 * The last handler of every request. A coded error answers its status; a write the store could not take is a 503;
 * anything else is a bug: 500 with a request id, logged under the same id with the method, the path (without the
 * query) and the error (never the headers or the body, which may hold credentials). After the response has started
 * there is nothing left to answer: the connection is cut, so that the client sees an incomplete response rather than
 * a complete-looking one.
 * @param onWriteFailure told of each request that failed because the store could not write (health shows it)
 */
export function errorHandler(logger: Logger, onWriteFailure?: (err: unknown) => void): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    void _next;
    const where = { method: req.method, path: req.originalUrl.split('?')[0] };
    // a write the disk could not take, anywhere (a session at login, a lab record): a 503 with a code, not a 500
    const failure = writeFailureOf(err);
    if (failure !== undefined) onWriteFailure?.(err);
    if (res.headersSent) {
      logger.error({ ...where, err: describe(err) }, 'request failed after its response had started; connection closed');
      res.destroy();
      return;
    }
    if (failure !== undefined) {
      logger.error({ ...where, err: failure.message, code: failure.code }, 'request failed: the store cannot write');
      res
        .status(503)
        .set('Retry-After', String(STORE_RETRY_AFTER_S))
        .json({ error: `the store cannot write (${failure.message}); try again later`, code: 'E_STORE_UNAVAILABLE', reason: 'store.unavailable' });
      return;
    }
    if (isLabtraceError(err)) {
      const status = STATUS[err.code] ?? 500;
      if (status >= 500) {
        const requestId = randomUUID();
        logger.error({ requestId, ...where, err: err.message, code: err.code }, 'request failed');
        res.setHeader('x-request-id', requestId);
      }
      res.status(status).json({ error: err.message, code: err.code, ...refusalOf(err) });
      return;
    }
    // body-parser errors carry a status (400 malformed JSON, 413 too large)
    const e = err as { status?: number; type?: string; message?: string };
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      const malformed = e.type === 'entity.parse.failed';
      const tooLarge = e.type === 'entity.too.large';
      res.status(e.status).json({
        error: malformed ? 'request body is not valid JSON' : (e.message ?? 'bad request'),
        code: 'E_BAD_REQUEST',
        ...(malformed ? { reason: 'request.malformed-json' } : tooLarge ? { reason: 'request.too-large' } : {}),
      });
      return;
    }
    const requestId = randomUUID();
    logger.error({ requestId, ...where, err: describe(err) }, 'request failed: a bug');
    res.setHeader('x-request-id', requestId);
    res.status(500).json({ error: `internal error (request ${requestId})`, code: 'E_INTERNAL', reason: 'server.internal', requestId });
  };
}

/**
 * What a client translates of a coded error: its reason and parameters (docs: the contract's REASONS), and for
 * bad input the issues (each with its path, zod code and parameters). A refusal of the input's schema without a
 * reason of its own is `request.invalid`.
 */
function refusalOf(err: LabtraceError): { reason?: Reason; params?: ReasonParams; issues?: unknown } {
  const issues = Array.isArray(err.details) ? { issues: err.details as unknown } : err.details === undefined ? {} : { issues: err.details };
  const refusal = err.refusal;
  if (refusal !== undefined && isReason(refusal.reason))
    return { reason: refusal.reason, ...(refusal.params === undefined ? {} : { params: refusal.params }), ...issues };
  if (err.code === 'E_BAD_REQUEST' && Array.isArray(err.details)) return { reason: 'request.invalid', ...issues };
  return issues;
}

function describe(err: unknown): { message: string; stack?: string } {
  if (err instanceof Error) return { message: `${err.name}: ${err.message}`, ...(err.stack === undefined ? {} : { stack: err.stack }) };
  try {
    return { message: String(err).slice(0, 500) };
  } catch {
    return { message: `a thrown ${typeof err} that cannot be shown` };
  }
}
