// The one place where error codes become HTTP statuses.
import type { ErrorRequestHandler } from 'express';
import { isLabtraceError, type LabtraceErrorCode } from '@labtrace/protocols';
import type { Logger } from '../log.js';

const STATUS: Partial<Record<LabtraceErrorCode, number>> = {
  E_BAD_REQUEST: 400,
  E_AUTH: 401,
  E_FORBIDDEN: 403,
  E_CONFLICT: 409,
  E_NOT_FOUND: 404,
  // the InfluxDB measurement store cannot be read (down) or answered with an error
  E_INFLUX_UNAVAILABLE: 503,
  E_INFLUX_QUERY: 502,
  E_RATE_LIMITED: 429,
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    void _next;
    if (isLabtraceError(err)) {
      const status = STATUS[err.code] ?? 500;
      if (status >= 500) logger.error({ err: err.message, code: err.code, url: req.originalUrl }, 'request failed');
      res.status(status).json({ error: err.message, code: err.code, ...(err.details === undefined ? {} : { issues: err.details }) });
      return;
    }
    // body-parser errors carry a status (400 malformed JSON, 413 too large)
    const e = err as { status?: number; type?: string; message?: string };
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      res
        .status(e.status)
        .json({ error: e.type === 'entity.parse.failed' ? 'request body is not valid JSON' : (e.message ?? 'bad request'), code: 'E_BAD_REQUEST' });
      return;
    }
    logger.error({ err: String(err), url: req.originalUrl }, 'request failed');
    res.status(500).json({ error: 'internal error', code: 'E_INTERNAL' });
  };
}
