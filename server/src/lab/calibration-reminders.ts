// The calibration reminders: a warning line in the server's log per instrument whose calibration is due soon or has
// expired, at start and then daily. On several nodes of one PostgreSQL store they are the job of one node at a time
// (`calibration-reminders`), so that the lab's logs carry each reminder once. (The notifier's calibration-due
// notifications are queued once through its outbox, apart from these lines.)
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterTables } from '../cluster/leases.js';
import type { Job } from '../cluster/jobs.js';
import type { Logger } from '../log.js';
import type { Calibration } from './calibration.js';

/** how often the reminders are logged again */
export const REMINDER_INTERVAL_MS = 86_400_000;

/** One warning line per instrument whose calibration is due soon or expired. */
export async function remindCalibrations(calibration: Pick<Calibration, 'reminders'>, logger: Logger): Promise<void> {
  let reminders;
  try {
    reminders = await calibration.reminders();
  } catch (err) {
    logger.error({ part: 'calibration', err: (err as Error).message }, 'the calibration reminders could not be read');
    return;
  }
  for (const r of reminders)
    if (r.status === 'due-soon' || r.status === 'expired')
      logger.warn(
        { part: 'calibration', instrument: r.instrument, status: r.status, dueAt: r.dueAt === null ? null : new Date(r.dueAt).toISOString() },
        r.status === 'expired' ? 'calibration expired: the instrument may not be used for runs' : 'calibration due soon',
      );
}

/** The reminders as a job: logged when this node takes the lease, then every `everyMs`, until it is lost or the node stops. */
export function calibrationRemindersJob<DB extends ClusterTables>(
  calibration: Pick<Calibration, 'reminders'>,
  logger: Logger,
  everyMs = REMINDER_INTERVAL_MS,
): Job<DB> {
  return async ({ signal }) => {
    while (!signal.aborted) {
      await remindCalibrations(calibration, logger);
      await sleep(everyMs, undefined, { signal, ref: false }).catch(() => undefined);
    }
  };
}
