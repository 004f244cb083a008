// The gateway's durable outbox: a batch is committed to disk (SQLite, WAL, synchronous=FULL) before
// it is sent anywhere, and removed only when every sink has confirmed it. It survives a crash or a
// power cut of the gateway, and a server outage of any length up to its bound.
//
// Policy when full (maxSamples held): new samples are refused, never old ones dropped; the gateway
// raises an alarm and counts the refused samples, and polling goes on so that data flows again as
// soon as the server acknowledges.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  fromBase64,
  headerHash,
  LabtraceError,
  openBatch,
  sealBatch,
  toBase64,
  type DataMessage,
  type RawFileHeader,
  type SignerKey,
} from '@labtrace/protocols';

export interface StoredBatch {
  batch: number;
  message: DataMessage;
  /** what goes on the wire: the signed batch in its binary form (LTB1), or JSON for an unsigned one */
  wire: Uint8Array | string;
}

/** A stored payload back into the batch: binary (signed) or JSON (unsigned), decoded only when the message is read. */
function fromPayload(batch: number, payload: Buffer | string): StoredBatch {
  if (typeof payload === 'string') return { batch, message: JSON.parse(payload) as DataMessage, wire: payload };
  const wire = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  let message: DataMessage | undefined;
  return {
    batch,
    wire,
    // the uplink sends the wire as it is; only the historian reads the samples
    get message(): DataMessage {
      if (message === undefined) {
        const { signed, samples } = openBatch(wire, { leaves: false });
        message = { v: 1, gateway: signed.header.gateway, batch, samples, signed };
      }
      return message;
    },
  };
}

export class Outbox {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly markAcked: Database.Statement;
  private readonly pruneAcked: Database.Statement;
  private readonly selectUnacked: Database.Statement;
  private held = 0;
  /** samples in batches each sink has not confirmed */
  private readonly heldBySink = new Map<string, number>();
  private next = 0;
  private readonly signer: (() => SignerKey) | undefined;
  /** batches committed here since the start, and how many of them were signed (the metrics read them) */
  readonly appended = { batches: 0, signed: 0 };

  /**
   * @param sinks the sinks that must confirm a batch before it is removed (for example ['mqtt'])
   */
  constructor(
    dataDir: string,
    private readonly sinks: readonly string[],
    /** the gateway's key (or where to get the current one, which a rotation changes): every batch is signed and chained before it is stored */
    signer?: SignerKey | (() => SignerKey),
  ) {
    this.signer = typeof signer === 'function' ? signer : signer === undefined ? undefined : () => signer;
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'outbox.sqlite');
    try {
      this.db = new Database(file);
    } catch (err) {
      throw new LabtraceError('E_STORE', `cannot open the outbox ${file}: ${(err as Error).message}`, { cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS batches (batch INTEGER PRIMARY KEY, samples INTEGER NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS acks (sink TEXT NOT NULL, batch INTEGER NOT NULL, PRIMARY KEY (sink, batch));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS chain (gateway TEXT PRIMARY KEY, last_header_hash TEXT NOT NULL);
      -- result files taken, by instrument and SHA-256: the ledger that keeps a file from being taken twice (kept for
      -- good), with the raw bytes until the server confirms it keeps them
      CREATE TABLE IF NOT EXISTS raw_files (instrument TEXT NOT NULL, sha256 TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
        taken_at INTEGER NOT NULL, bytes BLOB, PRIMARY KEY (instrument, sha256));
      CREATE TABLE IF NOT EXISTS sink_failures (sink TEXT NOT NULL, batch INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sink, batch));
    `);
    this.insert = this.db.prepare('INSERT INTO batches (batch, samples, payload, created_at) VALUES (?, ?, ?, ?)');
    this.markAcked = this.db.prepare('INSERT OR IGNORE INTO acks (sink, batch) SELECT ?, batch FROM batches WHERE batch = ?');
    // a batch every sink has confirmed goes, with its confirmations
    this.pruneAcked = this.db.prepare(
      `DELETE FROM batches WHERE batch = ? AND (SELECT COUNT(DISTINCT sink) FROM acks WHERE acks.batch = batches.batch AND sink IN (SELECT value FROM json_each(?))) = ?`,
    );
    this.selectUnacked = this.db.prepare(
      'SELECT batch, payload FROM batches WHERE batch NOT IN (SELECT batch FROM acks WHERE sink = ?) ORDER BY batch',
    );
    const stats = this.db.prepare('SELECT COALESCE(SUM(samples), 0) AS held, COALESCE(MAX(batch), -1) AS last FROM batches').get() as {
      held: number;
      last: number;
    };
    const meta = this.db.prepare("SELECT value FROM meta WHERE key = 'next_batch'").get() as { value: number } | undefined;
    this.held = stats.held;
    for (const sink of sinks) {
      const row = this.db
        .prepare(
          'SELECT COALESCE(SUM(samples), 0) AS n FROM batches WHERE NOT EXISTS (SELECT 1 FROM acks WHERE acks.sink = ? AND acks.batch = batches.batch)',
        )
        .get(sink) as { n: number };
      this.heldBySink.set(sink, row.n);
    }
    // batch numbers never repeat, even when the outbox was emptied before a restart
    this.next = Math.max(stats.last + 1, meta?.value ?? 0);
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, compiled once. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Samples in batches this sink has not confirmed. */
  heldFor(sink: string): number {
    return this.heldBySink.get(sink) ?? 0;
  }

  /** Samples held in batches not yet confirmed by every sink. */
  get heldSamples(): number {
    return this.held;
  }

  /** The sequence number of the last sample ever stored here (kept after its batch is gone), if any. */
  get lastSeq(): number | undefined {
    return (this.stmt("SELECT value FROM meta WHERE key = 'last_seq'").get() as { value: number } | undefined)?.value;
  }

  get batches(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM batches').get() as { n: number }).n;
  }

  /** Commits a new batch to disk (signed and chained, when there is a key) and returns it; the caller sends it only after this returns. */
  append(gateway: string, samples: DataMessage['samples'], now = Date.now()): StoredBatch {
    const message: DataMessage = { v: 1, gateway, batch: this.next, samples };
    let wire: Uint8Array | string;
    const commit = this.db.transaction(() => {
      if (this.signer) {
        const last = this.stmt('SELECT last_header_hash AS h FROM chain WHERE gateway = ?').get(gateway) as { h: string } | undefined;
        const sealed = sealBatch(this.signer(), gateway, message.batch, samples, last ? fromBase64(last.h) : null);
        message.signed = sealed.signed;
        wire = sealed.wire;
        this.stmt(
          'INSERT INTO chain (gateway, last_header_hash) VALUES (?, ?) ON CONFLICT(gateway) DO UPDATE SET last_header_hash = excluded.last_header_hash',
        ).run(gateway, toBase64(headerHash(sealed.signed.header)));
        this.insert.run(message.batch, samples.length, Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), now);
      } else {
        wire = JSON.stringify(message);
        this.insert.run(message.batch, samples.length, wire, now);
      }
      this.stmt("INSERT INTO meta (key, value) VALUES ('next_batch', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(
        message.batch + 1,
      );
      const lastSeq = samples[samples.length - 1]?.seq;
      if (lastSeq !== undefined)
        this.stmt("INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(lastSeq);
      return wire;
    });
    wire = commit();
    this.next++;
    this.appended.batches++;
    if (this.signer) this.appended.signed++;
    this.held += samples.length;
    for (const [sink, n] of this.heldBySink) this.heldBySink.set(sink, n + samples.length);
    return { batch: message.batch, message, wire };
  }

  /** Records a sink's confirmation; returns true when the batch was thereby removed. */
  ack(sink: string, batch: number): boolean {
    const row = this.stmt('SELECT samples FROM batches WHERE batch = ?').get(batch) as { samples: number } | undefined;
    if (!row) return false;
    const removed = this.db.transaction(() => {
      if (this.markAcked.run(sink, batch).changes > 0 && this.heldBySink.has(sink))
        this.heldBySink.set(sink, (this.heldBySink.get(sink) ?? 0) - row.samples);
      const info = this.pruneAcked.run(batch, JSON.stringify(this.sinks), this.sinks.length);
      if (info.changes > 0) this.stmt('DELETE FROM acks WHERE batch = ?').run(batch);
      return info.changes > 0;
    })();
    if (removed) this.held -= row.samples;
    return removed;
  }

  /** When the oldest batch this sink has not confirmed was committed (ms since the epoch), or undefined when there is none. */
  oldestUnacked(sink: string): number | undefined {
    // in batch order: the first rows are the ones the sinks confirm next, so the scan stops early
    const row = this.stmt(
      'SELECT created_at AS at FROM batches WHERE NOT EXISTS (SELECT 1 FROM acks WHERE acks.sink = ? AND acks.batch = batches.batch) ORDER BY batch LIMIT 1',
    ).get(sink) as { at: number } | undefined;
    return row?.at;
  }

  /** One stored batch, if it is still held. */
  get(batch: number): StoredBatch | undefined {
    const row = this.stmt('SELECT payload FROM batches WHERE batch = ?').get(batch) as { payload: Buffer | string } | undefined;
    return row ? fromPayload(batch, row.payload) : undefined;
  }

  /** Every batch a sink has not confirmed, oldest first. */
  unacked(sink: string): StoredBatch[] {
    return (this.selectUnacked.all(sink) as { batch: number; payload: Buffer | string }[]).map((r) => fromPayload(r.batch, r.payload));
  }

  close(): void {
    this.db.close();
  }

  /** The batches after `afterBatch` that a sink has not confirmed, oldest first, at most `limit`: a sink's cursor pages with it. */
  unackedPage(sink: string, afterBatch: number, limit: number): StoredBatch[] {
    const rows = this.stmt(
      'SELECT batch, payload FROM batches WHERE batch > ? AND NOT EXISTS (SELECT 1 FROM acks WHERE acks.sink = ? AND acks.batch = batches.batch) ORDER BY batch LIMIT ?',
    ).all(afterBatch, sink, limit) as { batch: number; payload: Buffer | string }[];
    return rows.map((r) => fromPayload(r.batch, r.payload));
  }

  /**
   * Records, durably, that a sink can never take a batch as it is (a refusal, not an outage). The sink then confirms the batch
   * for itself only, so that it does not block its cursor; the other sinks still deliver it. Recording it again replaces the entry.
   */
  recordSinkFailure(sink: string, batch: number, error: string, now = Date.now()): void {
    this.stmt(
      'INSERT INTO sink_failures (sink, batch, error, at) VALUES (?, ?, ?, ?) ON CONFLICT(sink, batch) DO UPDATE SET error = excluded.error, at = excluded.at',
    ).run(sink, batch, error, now);
  }

  /** Runs `fn` in one transaction: what it stores (a file and its batches) is all on disk, or none of it. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Whether an instrument's result file with this hash was taken before (in this run or an earlier one). */
  fileTaken(instrument: string, sha256: string): boolean {
    return this.stmt('SELECT 1 FROM raw_files WHERE instrument = ? AND sha256 = ?').get(instrument, sha256) !== undefined;
  }

  /** Records a taken file with its raw bytes, held until the server confirms it keeps them. */
  putFile(header: RawFileHeader, bytes: Uint8Array): void {
    this.stmt('INSERT INTO raw_files (instrument, sha256, name, size, taken_at, bytes) VALUES (?, ?, ?, ?, ?, ?)').run(
      header.instrument,
      header.sha256,
      header.name,
      header.size,
      header.takenAt,
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    );
  }

  /**
   * The headers of the files whose bytes the server has not confirmed, oldest first, at most `limit`; their bytes
   * are read one by one with fileBytes (a file already in flight is not read again).
   */
  unsentFiles(gateway: string, limit: number): RawFileHeader[] {
    const rows = this.stmt(
      'SELECT instrument, sha256, name, size, taken_at AS takenAt FROM raw_files WHERE bytes IS NOT NULL ORDER BY taken_at, sha256 LIMIT ?',
    ).all(limit) as { instrument: string; sha256: string; name: string; size: number; takenAt: number }[];
    return rows.map((r) => ({ v: 1, gateway, ...r }));
  }

  /** The bytes of a file the server has not confirmed; undefined once it has (or for a file never taken). */
  fileBytes(sha256: string): Buffer | undefined {
    const row = this.stmt('SELECT bytes FROM raw_files WHERE sha256 = ? AND bytes IS NOT NULL').get(sha256) as { bytes: Buffer } | undefined;
    return row?.bytes;
  }

  /** The server keeps the file: its bytes go, its hash stays in the ledger. Returns true when bytes were held. */
  ackFile(sha256: string): boolean {
    return this.stmt('UPDATE raw_files SET bytes = NULL WHERE sha256 = ? AND bytes IS NOT NULL').run(sha256).changes > 0;
  }

  /** Files whose bytes the server has not confirmed. */
  get unsentFileCount(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM raw_files WHERE bytes IS NOT NULL').get() as { n: number }).n;
  }

  /** The batches a sink refused, oldest first. */
  sinkFailures(sink: string): { batch: number; error: string; at: number }[] {
    return this.stmt('SELECT batch, error, at FROM sink_failures WHERE sink = ? ORDER BY batch').all(sink) as {
      batch: number;
      error: string;
      at: number;
    }[];
  }
}
