import type pino from 'pino';
import { createProcessLogger } from '@labtrace/protocols/node';

export type Logger = pino.Logger;

/** A process's logger: JSON lines on stdout, or LOG_FORMAT=pretty; at LOG_LEVEL (default info). */
export function createLogger(name: string): Logger {
  return createProcessLogger(name, { fd: 1 });
}
