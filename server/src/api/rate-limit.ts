// A token bucket per client address for the whole API: a client may burst, then gets `perSecond`
// requests a second; beyond that, 429 with Retry-After. Bounded memory: full buckets are forgotten.
import type { RequestHandler } from 'express';
import { LabtraceError } from '@labtrace/protocols';

export interface RateLimitOptions {
  perSecond: number;
  burst: number;
  now?: () => number;
  /** told of each request refused, with the client's address */
  onLimited?: (address: string) => void;
}

export function rateLimit(options: RateLimitOptions): RequestHandler {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req, res, next) => {
    const t = now();
    const key = req.ip ?? 'unknown';
    const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
    bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * options.perSecond);
    bucket.at = t;
    if (bucket.tokens < 1) {
      buckets.set(key, bucket);
      const retryAfter = Math.ceil((1 - bucket.tokens) / options.perSecond);
      res.set('retry-after', String(retryAfter));
      options.onLimited?.(key);
      return next(
        new LabtraceError(
          'E_RATE_LIMITED',
          `too many requests from this address (${options.perSecond} a second after a burst of ${options.burst}); retry in ${retryAfter} s`,
          { reason: 'request.rate-limited', params: { retryAfter } },
        ),
      );
    }
    bucket.tokens -= 1;
    buckets.set(key, bucket);
    if (buckets.size > 10_000) for (const [k, b] of buckets) if (b.tokens >= options.burst - 1) buckets.delete(k);
    next();
  };
}
