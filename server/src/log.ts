import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  // to stderr: stdout is for what a command prints (tokens, key lists)
  return pino({ name, level }, pino.destination(2));
}
