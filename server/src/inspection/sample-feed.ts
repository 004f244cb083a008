// The stored samples of every node, in the order they were committed: what the one node that inspects the running
// runs reads when the lab's server has several nodes on PostgreSQL. Each node acknowledges only the batches it
// stored itself (an MQTT shared subscription hands each batch to one node), so no node hears every sample; the
// store does. A batch's header enters the transparency log in the transaction that stores the batch, under the
// log's lock, which is held until COMMIT: the log index of stored batches therefore grows in commit order, and
// reading `log_index > last read` in that order never skips a batch committed later with a smaller index.
import { liveSampleOf, readRecords, type LiveSample } from '@labtrace/protocols';
import { sql, type Kysely } from 'kysely';
import type { Logger } from '../log.js';
import type { Tables } from '../store/database.js';

export interface SampleFeedOptions {
  /** how often the store is asked for new batches (default 200 ms) */
  pollMs?: number;
  /** at most this many batches per read (default 200) */
  batchesPerRead?: number;
  /**
   * called after new batches are read and before their samples are handed on: whatever a sample's delivery depends on
   * is read again here (the runs running now). A run started before a batch committed is seen: its start took the
   * gateway's batch lock (Runs), so it committed first.
   */
  beforeDelivery?: () => Promise<void>;
  /**
   * called right after the samples of the batches read up to `position` (a log index) were handed on, in the same
   * turn of the event loop: the inspection stores that position with the alarm events those samples led to
   */
  delivered?: (position: number) => void;
  /** what a failed read is logged as (default: the run inspection's alarm) */
  failure?: string;
}

/** Reads the batches stored after `start()` in log order and hands their samples to `deliver`, until `stop()`. */
export class SampleFeed {
  private last = -1;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = true;
  private readonly pollMs: number;
  private readonly batchesPerRead: number;

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly deliver: (samples: LiveSample[]) => void,
    private readonly logger: Logger,
    options: SampleFeedOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 200;
    this.batchesPerRead = options.batchesPerRead ?? 200;
    this.beforeDelivery = options.beforeDelivery;
    this.delivered = options.delivered;
    this.failure = options.failure ?? 'ALARM: the stored samples could not be read for the run inspection';
  }

  private readonly beforeDelivery: (() => Promise<void>) | undefined;
  private readonly delivered: ((position: number) => void) | undefined;
  private readonly failure: string;

  /** the log index of the last batch handed on (-1: none yet) */
  get position(): number {
    return this.last;
  }

  /**
   * Starts after the batch of log index `after` (the position where the node that read before stopped: what was
   * stored since, a handover's gap included, is read first), or, without one (the very first start), after the batches
   * stored so far (those are the runs' history, which the engines do not replay). Returns the position it starts at.
   */
  async start(after?: number): Promise<number> {
    if (after !== undefined) this.last = after;
    else {
      const row = await this.db
        .selectFrom('batch_headers')
        .select(sql<number | string | null>`MAX(log_index)`.as('last'))
        .executeTakeFirst();
      this.last = row?.last === null || row?.last === undefined ? -1 : Number(row.last);
    }
    this.stopped = false;
    this.schedule();
    return this.last;
  }

  /** Stops polling; a read in progress finishes (and delivers) first. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Reads what is new now (also what the timer does), and resolves when it is delivered. */
  poll(): Promise<void> {
    const next = this.running.then(() => this.readNew());
    this.running = next.catch((err: unknown) => this.logger.error({ err: err instanceof Error ? err.message : String(err) }, this.failure));
    return next;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  private async readNew(): Promise<void> {
    for (;;) {
      const rows = await this.db
        .selectFrom('batch_headers')
        .select(['gateway', 'records', 'log_index'])
        .where('log_index', '>', this.last)
        .orderBy('log_index')
        .limit(this.batchesPerRead)
        .execute();
      if (rows.length > 0) await this.beforeDelivery?.();
      for (const row of rows) {
        this.last = Number(row.log_index);
        if (row.records === null) continue;
        const gateway = row.gateway;
        const samples: LiveSample[] = [];
        readRecords(row.records, ({ sample: s }) => {
          samples.push(liveSampleOf(gateway, s));
          return true;
        });
        if (samples.length > 0) this.deliver(samples);
      }
      if (rows.length > 0) this.delivered?.(this.last);
      if (rows.length < this.batchesPerRead || this.stopped) return;
    }
  }
}
