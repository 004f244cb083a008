import type pino from 'pino';
import { createProcessLogger } from '@labtrace/protocols/node';

export type Logger = pino.Logger;

/** A process's logger: JSON lines, or LOG_FORMAT=pretty; at LOG_LEVEL, else `level`. */
export function createLogger(name: string, level?: string): Logger {
  // to stderr: stdout is for what a command prints (tokens, key lists)
  return createProcessLogger(name, { fd: 2, ...(level === undefined ? {} : { level }) });
}
