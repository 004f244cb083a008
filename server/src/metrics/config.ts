// `metrics:` in server.yaml: how Prometheus scrapes the server (docs/operations.md, "Metrics"). Schema only: the
// registry and the endpoint live in server-metrics.ts.
import path from 'node:path';
import { z } from 'zod';
import { LISTEN_ADDRESS_HINT, parseListen } from '@labtrace/protocols';

/** the shortest bearer token taken: guessing one is then out of reach */
export const MIN_METRICS_TOKEN_CHARS = 32;

/**
 * Without a token and without a listen address, /metrics is not served at all (no anonymous metrics). With a token
 * (`tokenFile`, or LABTRACE_METRICS_TOKEN), GET /metrics on the HTTP port needs `Authorization: Bearer <token>`.
 * With `listen`, the metrics are served there instead, on a listener of their own: a loopback address may go without a
 * token, any other needs one.
 */
export const metricsConfigSchema = z
  .strictObject({
    /** a file holding the bearer token (at least 32 characters); LABTRACE_METRICS_TOKEN overrides it */
    tokenFile: z.string().min(1).optional(),
    /** a listener of their own for the metrics, `host:port` (port 0: any free port) */
    listen: z
      .string()
      .refine((text) => parseListen(text) !== undefined, LISTEN_ADDRESS_HINT)
      .optional(),
  })
  .default({});
export type MetricsConfig = z.output<typeof metricsConfigSchema>;

/** Resolves the token file against the config file's folder. */
export function resolveMetricsConfig(config: MetricsConfig, baseDir: string): MetricsConfig {
  return config.tokenFile === undefined ? config : { ...config, tokenFile: path.resolve(baseDir, config.tokenFile) };
}
