// Stores samples idempotently (a resent batch changes nothing) and answers the dashboard's reads.
// Layout (migrations 0004 and 0019): a row per sample pointing at a stream (gateway, instrument, channel,
// unit) by an integer id, indexed by (stream, ts); ids are kept in memory after their first use. A sample
// is stored once because its batch is: overlapping batches are refused, and a stored batch enters the
// per-sample index once, in the transaction that marks it indexed. Only a committed batch does: the
// backlog kept in memory is a hint, each entry is checked against the stored, unindexed batch (by its
// header hash) in the transaction that indexes it, so that a batch whose transaction rolled back (a
// full disk) is never served, and one stored after such a rollback is indexed once.
// With an index worker (index-worker.ts, `store.indexWorker`), the index is in a file of its own written by a worker
// thread: this store then only stores the batches and tells the worker what it committed; reads go through `reads`.
import type { Statement } from 'better-sqlite3';
import { encodeRecords, fromHex, LabtraceError, type LiveSample, type Sample, type SignedBatch } from '@labtrace/protocols';
import type { LabDatabase } from './database.js';
import { IndexWorker, type IndexWorkerOptions } from './index-worker.js';
import { decodeRecords, IndexReader, indexWriter, type IndexGroup, type SeriesPoint } from './sample-index.js';
import type { MeasurementReads } from './series/embedded-series.js';

export { decodeRecords, toLive, type IndexGroup, type SeriesPoint } from './sample-index.js';

interface Statements {
  insertMany: (groups: readonly IndexGroup[]) => number;
  insertHeader: Statement;
  overlap: Statement;
  unindexed: Statement;
  markIndexed: Statement;
}

/** A record asked for whose batch's records retention removed (retention/retention.ts): gone, not missing. */
export function removedByRetention(gateway: string, seq: number, at: number): LabtraceError {
  return new LabtraceError(
    'E_GONE',
    `the records of the batch holding ${gateway}/${seq} were removed by retention on ${new Date(at).toISOString()}; its signed header and leaf hashes are kept`,
  );
}

export class MeasurementStore {
  private prepared: Statements | undefined;
  /** batches stored and not yet in the per-sample index, with their records when still in memory (hash: the header's, null after a restart) */
  private readonly toIndex: {
    gateway: string;
    batch: number;
    hash: string | null;
    count: number;
    samples: Sample[] | undefined;
    /** its batch_headers rowid */
    position: number;
  }[] = [];
  /** records held in memory in toIndex */
  private toIndexSamples = 0;
  /** records in toIndex, held or not */
  private toIndexPending = 0;
  private reader: IndexReader | undefined;
  /** the index worker, when the index is in a file of its own */
  readonly worker: IndexWorker | undefined;

  /** `indexWorker`: the per-sample index in a worker thread, on a file of its own (see index-worker.ts) */
  constructor(
    private readonly database: LabDatabase,
    options: { indexWorker?: IndexWorkerOptions | undefined } = {},
  ) {
    this.worker = options.indexWorker === undefined ? undefined : new IndexWorker(database.file, database.sqlite, options.indexWorker);
  }

  /** The dashboard's reads: the index worker's when there is one (asynchronous), else this store's own. */
  get reads(): MeasurementReads & { count(): number | Promise<number> } {
    return this.worker ?? this;
  }

  /** Prepares the statements; call after the schema is migrated. */
  open(): void {
    const db = this.database.sqlite;
    const writer = indexWriter(db);
    const insertMany = db.transaction((groups: readonly IndexGroup[]): number => {
      try {
        return writer.insert(groups);
      } catch (err) {
        writer.forget();
        throw err;
      }
    });
    this.reader = new IndexReader(db, db);
    this.prepared = {
      insertMany,
      insertHeader: db.prepare(
        'INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash, records, indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)',
      ),
      // a stored batch of the gateway whose sequence range meets [first, last]
      overlap: db.prepare(
        'SELECT batch, first_seq AS firstSeq, count FROM batch_headers WHERE gateway = ? AND first_seq <= ? AND first_seq + count > ? ORDER BY first_seq DESC LIMIT 1',
      ),
      unindexed: db.prepare('SELECT gateway, batch, count FROM batch_headers WHERE indexed = 0 ORDER BY received_at, gateway, batch LIMIT ?'),
      // changes one row only for a committed batch, not yet indexed, whose header is the one expected
      markIndexed: db.prepare(
        'UPDATE batch_headers SET indexed = 1 WHERE gateway = @gateway AND batch = @batch AND indexed = 0 AND (@hash IS NULL OR hash = @hash)',
      ),
    };
    // the index worker indexes what it has not yet, from its own cursor
    if (this.worker !== undefined) {
      this.worker.start();
      return;
    }
    // batches stored before a crash and not yet indexed
    for (const row of this.prepared.unindexed.all(1_000_000) as { gateway: string; batch: number; count: number }[]) {
      this.toIndex.push({ gateway: row.gateway, batch: row.batch, hash: null, count: row.count, samples: undefined, position: 0 });
      this.toIndexPending += row.count;
    }
  }

  /** Stops the index worker, if any (what it has not indexed yet, it indexes after the next start). */
  async close(): Promise<void> {
    await this.worker?.stop();
  }

  private get stmts(): Statements {
    if (!this.prepared) throw new LabtraceError('E_STORE', 'measurement store used before open()');
    return this.prepared;
  }

  /**
   * Stores a gateway's verified batch durably, whole: its signed header and its records' canonical
   * bytes (the caller's transaction). A batch whose sequence numbers meet a stored batch's is refused.
   * The per-sample index follows (indexPending).
   */
  store(gateway: string, samples: Sample[], signed: SignedBatch, headerHash: string, now = Date.now(), records?: Uint8Array): void {
    const { header } = signed;
    const last = header.firstSeq + header.count - 1;
    const clash = this.stmts.overlap.get(gateway, last, header.firstSeq) as { batch: number; firstSeq: number; count: number } | undefined;
    if (clash)
      throw new LabtraceError(
        'E_CONFLICT',
        `sequence numbers ${Math.max(header.firstSeq, clash.firstSeq)}..${Math.min(last, clash.firstSeq + clash.count - 1)} of ${gateway} are already stored in batch ${clash.batch}`,
      );
    const bytes = records ?? encodeRecords(gateway, fromHex(header.keyId), samples).bytes;
    const { lastInsertRowid } = this.stmts.insertHeader.run(
      gateway,
      header.batch,
      header.firstSeq,
      header.count,
      JSON.stringify(header),
      signed.signature,
      now,
      headerHash,
      bytes,
    );
    // keep the decoded records for the index unless a large backlog has built up (the worker reads the stored bytes)
    const keep = this.worker === undefined && this.toIndexSamples < 500_000;
    this.toIndex.push({
      gateway,
      batch: header.batch,
      hash: headerHash,
      count: header.count,
      samples: keep ? samples : undefined,
      position: Number(lastInsertRowid),
    });
    if (keep) this.toIndexSamples += samples.length;
    this.toIndexPending += header.count;
  }

  /** Where the backlog stands, before a transaction that stores batches: see forgetFrom. */
  backlogMark(): number {
    return this.toIndex.length;
  }

  /**
   * Forgets the batches stored since `mark` (backlogMark), after the transaction or savepoint that stored
   * them rolled back. Called before anything indexes (the index runs between transactions, never inside one).
   */
  forgetFrom(mark: number): void {
    for (const t of this.toIndex.splice(mark)) {
      if (t.samples !== undefined) this.toIndexSamples -= t.samples.length;
      this.toIndexPending -= t.count;
    }
  }

  /** Records where a stored batch's header entered the transparency log. */
  setLogIndex(gateway: string, batch: number, index: number): void {
    this.database.sqlite.prepare('UPDATE batch_headers SET log_index = ? WHERE gateway = ? AND batch = ?').run(index, gateway, batch);
  }

  /** The stored batch holding a gateway's sequence number: its signed header, record bytes and log index. */
  batchOf(gateway: string, seq: number): { signed: SignedBatch; records: Uint8Array; logIndex: number | null } | undefined {
    const row = this.database.sqlite
      .prepare(
        'SELECT header, signature, records, log_index AS logIndex, first_seq AS firstSeq, count, records_removed_at AS removedAt FROM batch_headers WHERE gateway = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1',
      )
      .get(gateway, seq) as
      | {
          header: string;
          signature: string;
          records: Buffer | null;
          logIndex: number | null;
          firstSeq: number;
          count: number;
          removedAt: number | null;
        }
      | undefined;
    if (!row || seq >= row.firstSeq + row.count) return undefined;
    if (row.records === null && row.removedAt !== null) throw removedByRetention(gateway, seq, row.removedAt);
    if (row.records === null) return undefined;
    return {
      signed: { header: JSON.parse(row.header) as SignedBatch['header'], signature: row.signature },
      records: new Uint8Array(row.records.buffer, row.records.byteOffset, row.records.byteLength),
      logIndex: row.logIndex,
    };
  }

  /** Stored batches not yet in the per-sample index. */
  get indexBacklog(): number {
    return this.toIndex.length;
  }

  /** Records of stored batches not yet in the per-sample index. */
  get indexBacklogSamples(): number {
    return this.toIndexPending;
  }

  /**
   * Moves stored batches into the per-sample index, oldest first, until about `maxSamples` are
   * done, in one transaction; returns how many batches remain. The index is derived data: its commits
   * need no flush to disk of their own (a crash re-indexes from the stored batches).
   */
  indexPending(maxSamples = Number.POSITIVE_INFINITY): number {
    if (this.toIndex.length === 0) return 0;
    if (this.worker !== undefined) {
      // committed (the caller's transaction is): told to the worker, which reads them from the store
      const last = this.toIndex[this.toIndex.length - 1] as { position: number };
      this.worker.committed(last.position, this.toIndexPending);
      this.toIndex.length = 0;
      this.toIndexPending = 0;
      return 0;
    }
    const db = this.database.sqlite;
    db.pragma('synchronous = NORMAL');
    let taken = 0;
    try {
      db.transaction(() => {
        let done = 0;
        const groups: IndexGroup[] = [];
        for (const next of this.toIndex) {
          if (done >= maxSamples) break;
          taken++;
          // a batch that was rolled back, or is indexed already, is not indexed (again)
          if (this.stmts.markIndexed.run({ gateway: next.gateway, batch: next.batch, hash: next.hash }).changes !== 1) continue;
          let samples = next.samples;
          if (samples === undefined) {
            const row = db.prepare('SELECT records FROM batch_headers WHERE gateway = ? AND batch = ?').get(next.gateway, next.batch) as
              { records: Buffer | null } | undefined;
            samples = row?.records ? decodeRecords(row.records) : [];
          }
          groups.push({ gateway: next.gateway, samples });
          done += samples.length;
        }
        this.stmts.insertMany(groups);
      })();
    } finally {
      db.pragma('synchronous = FULL');
    }
    // only once the transaction committed: a failure (its commit included) leaves the backlog as it was
    for (const t of this.toIndex.splice(0, taken)) {
      if (t.samples !== undefined) this.toIndexSamples -= t.samples.length;
      this.toIndexPending -= t.count;
    }
    return this.toIndex.length;
  }

  /**
   * Whether ingest may commit more batches now: false while the index worker is more than its bound behind
   * (then `whenIndexRoom` resolves once it has caught up enough). Always true without a worker.
   */
  hasIndexRoom(): boolean {
    return this.worker?.hasRoom() ?? true;
  }

  whenIndexRoom(): Promise<void> {
    return this.worker?.whenRoom() ?? Promise.resolve();
  }

  /** Reads see every acknowledged batch: what is still waiting for the per-sample index goes in first. */
  private catchUp(): IndexReader {
    if (this.worker !== undefined) throw new LabtraceError('E_STORE', 'the per-sample index is in its worker: read it through `reads`');
    if (this.toIndex.length > 0)
      try {
        this.indexPending();
      } catch {
        // ingest reports a failing index (an ALARM in its log); the read answers from what is indexed
      }
    if (this.reader === undefined) throw new LabtraceError('E_STORE', 'measurement store used before open()');
    return this.reader;
  }

  latest(instrument: string): LiveSample[] {
    return this.catchUp().latest(instrument);
  }

  history(instrument: string, channel: string, from: number, to: number, limit: number): LiveSample[] {
    return this.catchUp().history(instrument, channel, from, to, limit);
  }

  /**
   * A channel's numeric values between `from` and `to` in at most `points` time buckets: min, max,
   * mean and count per bucket, so that a chart never receives more points than it can draw. The
   * bucket width is a whole number of milliseconds.
   */
  series(instrument: string, channel: string, from: number, to: number, points: number): { bucketMs: number; points: SeriesPoint[] } {
    return this.catchUp().series(instrument, channel, from, to, points);
  }

  count(): number {
    return this.catchUp().count();
  }
}
