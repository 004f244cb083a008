// One way to open the Redis connection of a feature that spans server nodes (live updates, the embedded broker on
// several nodes): the password from a file or the environment, never in the URL or a log; a failure names the setting.
import { LabtraceError } from '@labtrace/protocols';
import { Redis } from 'ioredis';
import type { Logger } from './log.js';

export interface RedisTarget {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
}

/**
 * The password of a Redis setting: LABTRACE_REDIS_PASSWORD, or else the setting's file; one of them is required
 * (Redis must not take anonymous clients). `field` names the setting in the error (`live.redis`, `mqtt.cluster.redis`).
 */
export function redisPasswordFrom(passwordFile: string | undefined, field: string, readSecret: (file: string, field: string) => string): string {
  const password =
    process.env['LABTRACE_REDIS_PASSWORD'] ?? (passwordFile === undefined ? undefined : readSecret(passwordFile, `${field}.passwordFile`));
  if (password === undefined || password === '')
    throw new LabtraceError(
      'E_CONFIG',
      `${field}.passwordFile: required unless LABTRACE_REDIS_PASSWORD is set (Redis must not take anonymous clients)`,
    );
  return password;
}

/**
 * A connected ioredis client. It reconnects by itself (commands wait for the reconnection rather than fail); an
 * error is logged once per kind, as its code, without the URL's or the password's text. `field` names the setting
 * in the error thrown when the first connection fails, `what` the feature in the log.
 */
export async function openRedis(target: RedisTarget, field: string, what: string, logger?: Logger): Promise<Redis> {
  const { url, username, password } = target;
  const redis = new Redis(url, {
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    lazyConnect: true,
    maxRetriesPerRequest: null,
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    const text = (err as NodeJS.ErrnoException).code ?? err.name;
    if (text !== lastError) logger?.warn({ err: text }, `${what}: Redis connection failed; retrying`);
    lastError = text;
  });
  redis.on('ready', () => {
    lastError = '';
  });
  try {
    await redis.connect();
    return redis;
  } catch (err) {
    redis.disconnect();
    const reason = (err as Error).message.split(password ?? '\u0000').join('***');
    throw new LabtraceError('E_CONFIG', `${field}.url: cannot connect to Redis (${reason})`, { cause: err });
  }
}
