// The demo lab on several nodes of one PostgreSQL store: the job `demo` of one node at a time (cluster/jobs.ts).
// Each node acknowledges only the batches it stored itself, so the holder's demo follows every node's stored
// samples in commit order (SampleFeed), not its own ingest; each of the demo's writes (a sample, a run planned,
// started or stopped, the machine's calibration) runs in the lease's fenced transaction, so that a node that lost
// the lease writes nothing. Its method is recorded once whoever starts first (DemoLab.start). When the node stops
// or loses the lease, the next holder's demo ends the run left running and starts the next at the next specimen.
import type { Kysely } from 'kysely';
import { untilAborted, type Job } from '../cluster/jobs.js';
import { SampleFeed, type SampleFeedOptions } from '../inspection/sample-feed.js';
import type { Logger } from '../log.js';
import type { Tables } from '../store/database.js';
import { DemoLab, type DemoOptions, type DemoParts } from './demo.js';

export interface DemoJobParts {
  /** the store the stored samples are read from */
  db: Kysely<Tables>;
  lab: Omit<DemoParts, 'transact'>;
  logger: Logger;
  options: DemoOptions;
  /** how the stored samples are read (SampleFeed's poll interval, batches per read) */
  feed?: Pick<SampleFeedOptions, 'pollMs' | 'batchesPerRead'>;
}

/** The demo as a job: a DemoLab of its own for each time this node holds the lease, until the lease is lost or the node stops. */
export function demoJob(parts: DemoJobParts): Job<Tables> {
  return async ({ signal, fenced }) => {
    const demo = new DemoLab({ ...parts.lab, transact: fenced }, parts.logger, parts.options);
    const feed = new SampleFeed(parts.db, (samples) => demo.onSamples(samples), parts.logger, {
      ...parts.feed,
      failure: 'the stored samples could not be read for the demo lab',
    });
    try {
      await demo.start();
      await feed.start();
      parts.logger.info({ after: feed.position }, 'the demo lab follows the stored samples on this node');
      await untilAborted(signal);
    } finally {
      // also after a failed start: nothing of the demo stays running on a node that no longer holds its lease
      await feed.stop();
      await demo.stop();
    }
  };
}
