// `live:` in server.yaml: live updates across server nodes. Schema only: the hub lives in live-hub.ts.
import path from 'node:path';
import { z } from 'zod';

/**
 * live updates across server nodes (docs/scale-out.md): socket.io's Redis streams adapter, so that a dashboard on
 * one node receives what another node ingested. Without it, each node pushes to its own dashboards only.
 */
export const liveConfigSchema = z
  .strictObject({
    redis: z
      .strictObject({
        url: z
          .string()
          .regex(
            /^rediss?:\/\/[^\s/@]+(\/\d{1,2})?$/,
            'expected a URL such as redis://redis:6379 (no user or password in it: use username and passwordFile)',
          ),
        username: z.string().min(1).max(128).optional(),
        /** file holding the Redis password; LABTRACE_REDIS_PASSWORD overrides it */
        passwordFile: z.string().min(1).optional(),
        /** the Redis stream the nodes of one lab share */
        stream: z
          .string()
          .regex(/^[\w.:-]{1,64}$/, 'expected 1 to 64 letters, digits, _ . : or -')
          .default('labtrace:live'),
      })
      .optional(),
  })
  .default({});
export type LiveConfig = z.output<typeof liveConfigSchema>;

/** the Redis password file, relative to the config file's folder */
export function resolveLiveConfig(live: LiveConfig, baseDir: string): LiveConfig {
  return live.redis?.passwordFile === undefined
    ? live
    : { ...live, redis: { ...live.redis, passwordFile: path.resolve(baseDir, live.redis.passwordFile) } };
}
