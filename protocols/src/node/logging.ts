// The processes' logger (server, gateway, simulator): pino JSON lines by default, or lines for a person to read with
// LOG_FORMAT=pretty (pino-pretty, written synchronously on the same descriptor, no worker thread). LOG_LEVEL and
// LOG_FORMAT are checked at start: a wrong value stops the process with a message naming the variable, rather
// than a log that says nothing or a crash later.
import pino from 'pino';
import pretty from 'pino-pretty';
import { LabtraceError } from '../errors.js';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface ProcessLoggerOptions {
  /** the descriptor the lines go to: 1 (stdout) or 2 (stderr, where stdout is a command's output) */
  fd: 1 | 2;
  /** the level when LOG_LEVEL is not set */
  level?: string;
  env?: NodeJS.ProcessEnv;
}

/** LOG_LEVEL and LOG_FORMAT, checked. */
export function logSettings(env: NodeJS.ProcessEnv, defaultLevel = 'info'): { level: string; format: LogFormat } {
  const level = env['LOG_LEVEL'] === undefined || env['LOG_LEVEL'] === '' ? defaultLevel : env['LOG_LEVEL'];
  if (!(LEVELS as readonly string[]).includes(level))
    throw new LabtraceError('E_CONFIG', `LOG_LEVEL: "${level}" is not a level (expected one of ${LEVELS.join(', ')})`);
  const format = env['LOG_FORMAT'] === undefined || env['LOG_FORMAT'] === '' ? 'json' : env['LOG_FORMAT'];
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new LabtraceError('E_CONFIG', `LOG_FORMAT: "${format}" is not a log format (expected json or pretty)`);
  return { level, format: format as LogFormat };
}

export function createProcessLogger(name: string, options: ProcessLoggerOptions): pino.Logger {
  const { level, format } = logSettings(options.env ?? process.env, options.level);
  if (format === 'json') return pino({ name, level }, pino.destination(options.fd));
  const stream = pretty({
    destination: options.fd,
    sync: true,
    colorize: (options.fd === 1 ? process.stdout : process.stderr).isTTY,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l o',
    ignore: 'pid,hostname',
  });
  return pino({ name, level }, stream);
}
