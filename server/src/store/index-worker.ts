// The per-sample index in a worker thread, on a SQLite file of its own (`<store>.index.sqlite` beside the store), so
// that inserting its rows (the main cost of ingest: a few µs a record) runs on another core and never holds the
// store's write lock. (`store.indexWorker: true` in server.yaml; without it MeasurementStore indexes in the store's file.)
//
// - One writer per file: the main thread writes the store (batches, chain, log), the worker thread the index file
//   (samples, streams, gateway_ids and its cursor). The worker reads the store's committed batches after its cursor
//   (batch_headers rowid, which is commit order: batches are only appended) on a read-only connection, and moves the
//   cursor in the transaction that inserts their rows: a batch is indexed once, and a batch whose transaction rolled
//   back was never visible to it, so it is never indexed.
// - The index is derived data: a missing index file is built again from the stored batches (batch_headers.records);
//   an index ahead of the store (a store restored from a copy) is dropped and built again. A crashed worker thread is
//   started again and goes on from its committed cursor.
// - Reads (latest, history, series, count) see every acknowledged batch: each waits until the worker's cursor reaches
//   the store's last committed batch at the time of the read, then reads the index file on a read-only connection.
// - The ACK never waits for the index (it follows the durable commit of the batch in the store). Back-pressure: when
//   the records committed since the start and not yet indexed exceed maxBacklogSamples, ingest holds its next group
//   commit (hasRoom / whenRoom) until the worker is back under half of it, so that a worker that cannot keep up slows
//   ingest instead of letting the backlog grow without bound.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { LabtraceError, type LiveSample } from '@labtrace/protocols';
import type { Logger } from '../log.js';
import { STORE_PAGE_SIZE } from './database.js';
import type { FromIndexWorker, IndexWorkerData, ToIndexWorker } from './index-worker-thread.js';
import { IndexReader, type SeriesPoint } from './sample-index.js';

export interface IndexWorkerOptions {
  /** the index's file (default: the store's file name with .index.sqlite for .sqlite, beside it) */
  file?: string;
  /** records committed and not yet indexed above which ingest waits for the worker (default 1,000,000) */
  maxBacklogSamples?: number;
  /** records per index transaction in the worker, about (default 100,000) */
  sliceSamples?: number;
  logger?: Logger;
}

/** The index file of a store's file: labtrace.sqlite -> labtrace.index.sqlite. */
export function indexFileOf(storeFile: string): string {
  const dir = path.dirname(storeFile);
  const base = path.basename(storeFile);
  return path.join(dir, `${base.endsWith('.sqlite') ? base.slice(0, -'.sqlite'.length) : base}.index.sqlite`);
}

const RESTART_MS = 100;
const RESTART_MAX_MS = 5000;

export class IndexWorker {
  readonly file: string;
  private readonly maxBacklog: number;
  private readonly sliceSamples: number;
  private readonly logger: Logger | undefined;
  private worker: Worker | undefined;
  private stopping = false;
  private restartMs = RESTART_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  /** the worker's committed cursor (batch_headers rowid), as last reported */
  private cursor = 0;
  /** the position of the last batch committed in the store, as known here */
  private committedUpTo = 0;
  /** records committed since the start, and the running total at each committed position (for the backlog) */
  private committedSamples = 0;
  private indexedSamples = 0;
  private readonly marks: { position: number; total: number }[] = [];
  private waiters: { position: number; resolve: () => void }[] = [];
  private roomWaiters: (() => void)[] = [];
  private reader: IndexReader | undefined;
  private readConnection: Database.Database | undefined;
  private failing: string | undefined;
  private stopped: Promise<void> | undefined;
  /** times the worker thread was started again after it ended without being asked to */
  restarts = 0;

  constructor(
    /** the store's file and its main connection (clock_skew_batches, the last committed batch) */
    private readonly storeFile: string,
    private readonly store: Database.Database,
    options: IndexWorkerOptions = {},
  ) {
    this.file = options.file ?? indexFileOf(storeFile);
    this.maxBacklog = options.maxBacklogSamples ?? 1_000_000;
    this.sliceSamples = options.sliceSamples ?? 100_000;
    this.logger = options.logger;
  }

  /** Starts the worker thread; it indexes what the store holds after its cursor (everything, for a new index file). */
  start(): void {
    if (this.worker !== undefined) return;
    this.stopping = false;
    this.failing = undefined;
    this.committedUpTo = this.lastStored();
    this.spawn();
  }

  private lastStored(): number {
    return (this.store.prepare('SELECT MAX(rowid) FROM batch_headers').pluck().get() as number | null) ?? 0;
  }

  private spawn(): void {
    const data: IndexWorkerData = { store: this.storeFile, index: this.file, sliceSamples: this.sliceSamples, pageSize: STORE_PAGE_SIZE };
    const worker = new Worker(new URL('./index-worker-thread.js', import.meta.url), { workerData: data });
    this.worker = worker;
    worker.on('message', (message: FromIndexWorker) => this.onMessage(message));
    worker.on('error', (err) => {
      this.logger?.error({ err: err.message }, 'ALARM: the per-sample index worker failed; it is started again');
      this.fail(err.message);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.stopping) return;
      // ended without being asked to: started again, from its committed cursor
      this.restarts++;
      this.logger?.error({ code }, 'ALARM: the per-sample index worker ended; it is started again from its cursor');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (!this.stopping) this.spawn();
      }, this.restartMs);
      this.restartMs = Math.min(this.restartMs * 2, RESTART_MAX_MS);
    });
  }

  private onMessage(message: FromIndexWorker): void {
    switch (message.type) {
      case 'ready':
        if (message.rebuilt) this.logger?.warn({ file: this.file }, 'the per-sample index is built again from the stored batches');
        this.openReader();
        this.advance(message.position);
        return;
      case 'indexed':
        this.restartMs = RESTART_MS;
        if (this.failing !== undefined) this.logger?.info('the per-sample index is updated again');
        this.failing = undefined;
        this.advance(message.position);
        return;
      case 'failed':
        this.logger?.error({ err: message.error }, 'ALARM: the per-sample index could not be updated; stored batches are kept');
        this.fail(message.error);
        return;
    }
  }

  private openReader(): void {
    if (this.reader !== undefined || !existsSync(this.file)) return;
    this.readConnection = new Database(this.file, { readonly: true, fileMustExist: true });
    this.reader = new IndexReader(this.readConnection, this.store);
  }

  private advance(position: number): void {
    this.cursor = Math.max(this.cursor, position);
    let passed = 0;
    while (passed < this.marks.length && (this.marks[passed] as { position: number }).position <= this.cursor) passed++;
    if (passed > 0) this.indexedSamples = (this.marks[passed - 1] as { total: number }).total;
    this.marks.splice(0, passed);
    const ready = this.waiters.filter((w) => w.position <= this.cursor);
    this.waiters = this.waiters.filter((w) => w.position > this.cursor);
    for (const w of ready) w.resolve();
    if (this.hasRoom(true)) this.releaseRoom();
  }

  /** A failing worker holds nobody up: reads answer from what is indexed, ingest goes on (the batches are stored). */
  private fail(error: string): void {
    this.failing = error;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
    this.releaseRoom();
  }

  private releaseRoom(): void {
    const waiting = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * After a durable commit in the store: the batches stored in it, up to `position` (their batch_headers rowid), with
   * `samples` records. Wakes the worker.
   */
  committed(position: number, samples: number): void {
    if (position <= this.committedUpTo) return;
    this.committedUpTo = position;
    this.committedSamples += samples;
    this.marks.push({ position, total: this.committedSamples });
    this.worker?.postMessage({ type: 'wake' } satisfies ToIndexWorker);
  }

  /** records committed since the start and not yet in the index */
  get backlogSamples(): number {
    return this.committedSamples - this.indexedSamples;
  }

  /** the position (batch_headers rowid) up to which every committed batch is in the index */
  get indexedUpTo(): number {
    return this.cursor;
  }

  get lastError(): string | undefined {
    return this.failing;
  }

  /** Whether ingest may commit more now; `resume`: the lower mark at which it goes on after waiting. */
  hasRoom(resume = false): boolean {
    return this.failing !== undefined || this.backlogSamples <= (resume ? this.maxBacklog / 2 : this.maxBacklog);
  }

  /** Resolves once the backlog is back under half its bound (at once when there is room), or the worker fails. */
  whenRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves once every batch committed in the store up to now is in the index (or the worker fails meanwhile). */
  caughtUp(): Promise<void> {
    if (this.stopping) return Promise.reject(new LabtraceError('E_STORE', 'the per-sample index worker is stopped'));
    // (the store's connection inside a transaction of its own would see batches not committed: not waited for)
    const position = Math.max(this.committedUpTo, this.store.inTransaction ? 0 : this.lastStored());
    if (position <= this.cursor && this.reader !== undefined) return Promise.resolve();
    this.worker?.postMessage({ type: 'wake' } satisfies ToIndexWorker);
    return new Promise((resolve) => this.waiters.push({ position, resolve }));
  }

  private async read<T>(read: (reader: IndexReader) => T): Promise<T> {
    await this.caughtUp();
    this.openReader();
    if (this.reader === undefined)
      throw new LabtraceError('E_STORE', `the per-sample index ${this.file} is not open: ${this.failing ?? 'not started'}`);
    return read(this.reader);
  }

  latest(instrument: string): Promise<LiveSample[]> {
    return this.read((r) => r.latest(instrument));
  }

  history(instrument: string, channel: string, from: number, to: number, limit: number): Promise<LiveSample[]> {
    return this.read((r) => r.history(instrument, channel, from, to, limit));
  }

  series(instrument: string, channel: string, from: number, to: number, points: number): Promise<{ bucketMs: number; points: SeriesPoint[] }> {
    return this.read((r) => r.series(instrument, channel, from, to, points));
  }

  count(): Promise<number> {
    return this.read((r) => r.count());
  }

  /** Stops the worker thread after the slice it is writing (the rest is indexed at the next start). */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.stopped ??= (async () => {
      const worker = this.worker;
      if (worker !== undefined) {
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ type: 'stop' } satisfies ToIndexWorker);
        await exited;
      }
      this.worker = undefined;
      this.fail('stopped');
      this.readConnection?.close();
      this.readConnection = undefined;
      this.reader = undefined;
    })();
    return this.stopped.finally(() => (this.stopped = undefined));
  }
}
