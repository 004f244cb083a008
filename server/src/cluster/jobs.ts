// Jobs that must run on one node of a lab at a time: each runs on the node that holds its lease (leases.ts), is
// stopped through its AbortSignal when the lease is lost, and moves to another node when that node stops or dies.
//
// The server on PostgreSQL runs these jobs here (server.ts): the run inspection, the InfluxDB copy, the calibration
// reminders and the demo lab. Each one's write that must happen once (an alarm with the feed's position, the copy's
// cursor, a demo run's start) goes through fenced(). The log's checkpoints, a completed run's results and the
// notifications are kept once by the store itself (the log's lock, unique keys), on whichever node does them.
import { EventEmitter } from 'node:events';
import type { Transaction } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import type { ClusterTables, Lease, LeaseLossReason, Leases } from './leases.js';

export interface JobContext<DB extends ClusterTables = ClusterTables> {
  readonly lease: Lease;
  /** aborted when the lease is lost or the runner stops: the job ends as soon as it can */
  readonly signal: AbortSignal;
  /** runs a write that must happen once, in a transaction that commits only while this lease is current */
  readonly fenced: <T>(write: (trx: Transaction<DB>) => Promise<T>) => Promise<T>;
}

/** Resolves when `signal` is aborted (at once if it already is): what a job that only follows awaits. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** a job: runs until it is done or its signal is aborted */
export type Job<DB extends ClusterTables = ClusterTables> = (context: JobContext<DB>) => Promise<void>;

export type JobEnd = 'done' | 'failed' | 'stopping' | `lost:${LeaseLossReason}`;

export interface JobRunnerEvents {
  started: [name: string, lease: Lease];
  /** the job's promise settled; `end` says why it was asked to (or that it returned, or threw) */
  ended: [name: string, lease: Lease, end: JobEnd];
  /** the job threw while it held its lease: the lease is given back, and whichever node wins it next runs it again */
  failed: [name: string, lease: Lease, error: unknown];
}

interface Running {
  lease: Lease;
  controller: AbortController;
  end: JobEnd | undefined;
  settled: Promise<void>;
}

export class JobRunner<DB extends ClusterTables = ClusterTables> extends EventEmitter<JobRunnerEvents> {
  private readonly jobs = new Map<string, Job<DB>>();
  private readonly running = new Map<string, Running>();
  private started = false;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly onAcquired = (lease: Lease): void => this.begin(lease);
  private readonly onLost = (lease: Lease, reason: LeaseLossReason): void => this.abort(lease.name, `lost:${reason}`);

  /** `retryMs`: how long a node waits, after a job of its threw, before it competes for the job's lease again */
  constructor(
    private readonly leases: Leases<DB>,
    private readonly options: { retryMs?: number } = {},
  ) {
    super();
  }

  /** Runs `job` on whichever node holds the lease `name`; one job per name. */
  runOnce(name: string, job: Job<DB>): void {
    if (this.jobs.has(name)) throw new LabtraceError('E_CONFIG', `job ${name} is already registered`);
    this.jobs.set(name, job);
    if (this.started) this.leases.want(name);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.leases.on('acquired', this.onAcquired);
    this.leases.on('lost', this.onLost);
    for (const name of this.jobs.keys()) this.leases.want(name);
    await this.leases.start();
  }

  /** Stops every job, waits for each to end, then gives the leases back so that other nodes take them at once. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const name of this.running.keys()) this.abort(name, 'stopping');
    await Promise.all([...this.running.values()].map((r) => r.settled));
    this.leases.off('acquired', this.onAcquired);
    this.leases.off('lost', this.onLost);
    await this.leases.stop();
  }

  /** the jobs running on this node, with their leases */
  runningJobs(): Lease[] {
    return [...this.running.values()].filter((r) => r.end === undefined).map((r) => r.lease);
  }

  private abort(name: string, end: JobEnd): void {
    const run = this.running.get(name);
    if (run === undefined || run.end !== undefined) return;
    run.end = end;
    run.controller.abort(new LabtraceError('E_LEASE_LOST', `job ${name}: ${end === 'stopping' ? 'the node stops' : `lease ${end}`}`));
  }

  private begin(lease: Lease): void {
    const job = this.jobs.get(lease.name);
    if (job === undefined || !this.started) return;
    const previous = this.running.get(lease.name);
    // the run of an earlier lease on this node is still ending: this one starts after it, never beside it
    const after = previous?.settled ?? Promise.resolve();
    const controller = new AbortController();
    const run: Running = { lease, controller, end: undefined, settled: Promise.resolve() };
    this.running.set(lease.name, run);
    run.settled = after.then(async () => {
      if (run.end === undefined && this.leases.held(lease.name)?.epoch !== lease.epoch) run.end = 'lost:not-held';
      if (run.end !== undefined) {
        this.finish(run);
        return;
      }
      this.emit('started', lease.name, lease);
      const context: JobContext<DB> = {
        lease,
        signal: controller.signal,
        fenced: (write) => this.leases.fenced(lease, write),
      };
      try {
        await job(context);
        run.end ??= 'done';
      } catch (err) {
        if (run.end === undefined) {
          run.end = 'failed';
          this.emit('failed', lease.name, lease, err);
        }
      }
      this.finish(run);
      // a failed job gives its lease back: another node runs it again, or this one after retryMs
      if (run.end === 'failed' && this.started) {
        await this.leases.release(lease.name).catch(() => undefined);
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          if (this.started) this.leases.want(lease.name);
        }, this.options.retryMs ?? 5000);
        this.retryTimers.add(timer);
      }
    });
  }

  private finish(run: Running): void {
    if (this.running.get(run.lease.name) === run) this.running.delete(run.lease.name);
    this.emit('ended', run.lease.name, run.lease, run.end ?? 'done');
  }
}
