// The process-wide rule for a fault that no request or connection caught. An unhandled promise rejection is
// logged and counted (GET /api/health shows the count) and the server goes on: one request's forgotten promise
// must not stop the lab. An uncaught exception is logged and ends the process, because its state is unknown
// after one; `labtrace lab` (lab.ts) or the service manager starts it again.
import type { Logger } from './log.js';

let unhandledRejections = 0;

/** The faults counted since the process started. */
export function processFaults(): { unhandledRejections: number } {
  return { unhandledRejections };
}

/** An error's name, message and stack for the log; anything else as a short string. */
function describe(reason: unknown): { message: string; stack?: string } {
  if (reason instanceof Error)
    return { message: `${reason.name}: ${reason.message}`, ...(reason.stack === undefined ? {} : { stack: reason.stack }) };
  try {
    return { message: String(reason).slice(0, 500) };
  } catch {
    return { message: `a thrown ${typeof reason} that cannot be shown` };
  }
}

/** Installs the rule on this process; returns the function that removes it. */
export function guardProcess(logger: Logger): () => void {
  const onRejection = (reason: unknown): void => {
    unhandledRejections++;
    logger.error({ err: describe(reason), count: unhandledRejections }, 'unhandled promise rejection (counted in /api/health)');
  };
  const onException = (err: unknown, origin: string): void => {
    logger.fatal({ err: describe(err), origin }, 'uncaught exception: the process stops');
    process.exit(1);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
