// Stores samples idempotently (a resent batch changes nothing) and answers the dashboard's reads.
// Layout (migrations 0004 and 0019): a row per sample pointing at a stream (gateway, instrument, channel,
// unit) by an integer id, indexed by (stream, ts); ids are kept in memory after their first use. A sample
// is stored once because its batch is: overlapping batches are refused, and a stored batch enters the
// per-sample index once, in the transaction that marks it indexed. Only a committed batch does: the
// backlog kept in memory is a hint, each entry is checked against the stored, unindexed batch (by its
// header hash) in the transaction that indexes it, so that a batch whose transaction rolled back (a
// full disk) is never served, and one stored after such a rollback is indexed once.
import type { Statement } from 'better-sqlite3';
import {
  encodeRecords,
  fromHex,
  LabtraceError,
  QUALITIES,
  readRecords,
  type LiveSample,
  type Quality,
  type Sample,
  type SignedBatch,
} from '@labtrace/protocols';
import type { LabDatabase } from './database.js';

interface Row {
  gateway: string;
  seq: number;
  instrument: string;
  channel: string;
  ts: number;
  num: number | null;
  text: string | null;
  kind: number;
  unit: string;
  quality: number;
}

/** at most this many of a stream's newest samples are read past samples of clock-skewed batches for its latest value */
const LATEST_SCAN = 50_000;
const QUALITY_CODE: Record<Quality, number> = { good: 0, uncertain: 1, bad: 2 };
/** rows per INSERT statement of the per-sample index (9 parameters each; SQLite allows 32,766) */
const INSERT_ROWS = 64;

/** A gateway's records for the per-sample index. */
export interface IndexGroup {
  gateway: string;
  samples: readonly Sample[];
}

/** Positions of the rows in (stream, arrival) order: one numeric sort of keys stream x 2^21 + position, per 2^21 rows. */
function sortedByStream(rows: readonly { stream: number }[]): Uint32Array {
  const order = new Uint32Array(rows.length);
  const SPAN = 2 ** 21;
  for (let from = 0; from < rows.length; from += SPAN) {
    const part = rows.slice(from, from + SPAN);
    const keys = new Float64Array(part.length);
    part.forEach((row, i) => (keys[i] = row.stream * SPAN + i));
    keys.sort();
    keys.forEach((key, i) => (order[from + i] = from + (key % SPAN)));
  }
  return order;
}

function valueOf(row: Row): LiveSample['value'] {
  switch (row.kind) {
    case 0:
      return null;
    case 1:
      return false;
    case 2:
      return true;
    case 3:
      return row.num;
    default:
      return row.text;
  }
}

export function toLive(row: Row): LiveSample {
  return {
    gateway: row.gateway,
    seq: row.seq,
    instrument: row.instrument,
    channel: row.channel,
    ts: row.ts,
    value: valueOf(row),
    unit: row.unit,
    quality: QUALITIES[row.quality] ?? 'bad',
  };
}

export interface SeriesPoint {
  /** start of the bucket, ms */
  ts: number;
  min: number;
  max: number;
  mean: number;
  count: number;
}

interface Statements {
  insertMany: (groups: readonly IndexGroup[]) => number;
  latest: Statement;
  history: Statement;
  count: Statement;
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

/** The records of a batch from their stored bytes (each behind its 0x00 leaf prefix). */
export function decodeRecords(bytes: Uint8Array): Sample[] {
  const samples: Sample[] = [];
  readRecords(bytes, (record) => void samples.push(record.sample));
  return samples;
}

const SELECT = `SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts, s.num, s.text, s.kind, st.unit, s.quality
  FROM samples s JOIN streams st ON st.id = s.stream JOIN gateway_ids g ON g.id = s.gateway`;

export class MeasurementStore {
  private prepared: Statements | undefined;
  /** batches stored and not yet in the per-sample index, with their records when still in memory (hash: the header's, null after a restart) */
  private readonly toIndex: { gateway: string; batch: number; hash: string | null; count: number; samples: Sample[] | undefined }[] = [];
  /** records held in memory in toIndex */
  private toIndexSamples = 0;
  /** records in toIndex, held or not */
  private toIndexPending = 0;
  private readonly gatewayIds = new Map<string, number>();
  /** stream ids by gateway, instrument, channel and unit */
  private readonly streamIds = new Map<string, Map<string, Map<string, Map<string, number>>>>();

  constructor(private readonly database: LabDatabase) {}

  /** Prepares the statements; call after the schema is migrated. */
  open(): void {
    const db = this.database.sqlite;
    // rows go in INSERT_ROWS at a time: one statement step per 64 rows costs much less than one per row
    const columns = '(gateway, seq, stream, ts, num, text, kind, quality, reason)';
    const one = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const insertOne = db.prepare(`INSERT INTO samples ${columns} VALUES ${one}`);
    const insertChunk = db.prepare(`INSERT INTO samples ${columns} VALUES ${Array(INSERT_ROWS).fill(one).join(', ')}`);
    const gatewayId = db
      .prepare('INSERT INTO gateway_ids (name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id')
      .pluck();
    const streamId = db
      .prepare(
        'INSERT INTO streams (gateway, instrument, channel, unit) VALUES (?, ?, ?, ?) ON CONFLICT(gateway, instrument, channel, unit) DO UPDATE SET unit = excluded.unit RETURNING id',
      )
      .pluck();
    const params: unknown[] = new Array(INSERT_ROWS * 9);
    const gatewayIdOf = (gateway: string): number => {
      let gw = this.gatewayIds.get(gateway);
      if (gw === undefined) {
        gw = gatewayId.get(gateway) as number;
        this.gatewayIds.set(gateway, gw);
      }
      return gw;
    };
    const insertMany = db.transaction((groups: readonly IndexGroup[]): number => {
      // every row with its gateway and stream ids, then the rows in (stream, time) order: the index on (stream, ts)
      // then meets each stream's last page once per call instead of once per row, which keeps the insert rate
      // when there are thousands of streams (measured in bench/influx.bench.js and bench/ingest.bench.js)
      const rows: { gw: number; stream: number; sample: Sample }[] = [];
      for (const { gateway, samples } of groups) {
        const gw = gatewayIdOf(gateway);
        // stream ids by instrument, then channel and unit: lookups of the decoded strings, no key built per sample
        let byInstrument = this.streamIds.get(gateway);
        if (byInstrument === undefined) {
          byInstrument = new Map();
          this.streamIds.set(gateway, byInstrument);
        }
        for (const s of samples) {
          let byChannel = byInstrument.get(s.instrument);
          if (byChannel === undefined) {
            byChannel = new Map();
            byInstrument.set(s.instrument, byChannel);
          }
          let byUnit = byChannel.get(s.channel);
          if (byUnit === undefined) {
            byUnit = new Map();
            byChannel.set(s.channel, byUnit);
          }
          let stream = byUnit.get(s.unit);
          if (stream === undefined) {
            stream = streamId.get(gateway, s.instrument, s.channel, s.unit) as number;
            byUnit.set(s.unit, stream);
          }
          rows.push({ gw, stream, sample: s });
        }
      }
      const order = sortedByStream(rows);
      const fill = (k: number, at: number): void => {
        const { gw, stream, sample: s } = rows[k] as (typeof rows)[number];
        const v = s.value;
        const kind = v === null ? 0 : v === false ? 1 : v === true ? 2 : typeof v === 'number' ? 3 : 4;
        params[at] = gw;
        params[at + 1] = s.seq;
        params[at + 2] = stream;
        params[at + 3] = s.ts;
        params[at + 4] = kind === 3 ? v : null;
        params[at + 5] = kind === 4 ? v : null;
        params[at + 6] = kind;
        params[at + 7] = QUALITY_CODE[s.quality];
        params[at + 8] = s.reason ?? null;
      };
      let i = 0;
      for (; i + INSERT_ROWS <= order.length; i += INSERT_ROWS) {
        order.subarray(i, i + INSERT_ROWS).forEach((k, at) => fill(k, 9 * at));
        insertChunk.run(params);
      }
      for (const k of order.subarray(i)) {
        fill(k, 0);
        insertOne.run(params.slice(0, 9));
      }
      return rows.length;
    });
    this.prepared = {
      insertMany,
      latest: db.prepare(
        `${SELECT} JOIN (SELECT s2.stream, MAX(s2.ts) AS ts FROM samples s2 WHERE s2.stream IN (SELECT id FROM streams WHERE instrument = ?) GROUP BY s2.stream) l
           ON s.stream = l.stream AND s.ts = l.ts`,
      ),
      history: db.prepare(
        `SELECT * FROM (${SELECT} WHERE s.stream IN (SELECT id FROM streams WHERE instrument = ? AND channel = ?) AND s.ts >= ? AND s.ts <= ?
           ORDER BY s.ts DESC, s.seq DESC LIMIT ?) ORDER BY ts, seq`,
      ),
      count: db.prepare('SELECT COUNT(*) AS n FROM samples'),
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
    // batches stored before a crash and not yet indexed
    for (const row of this.prepared.unindexed.all(1_000_000) as { gateway: string; batch: number; count: number }[]) {
      this.toIndex.push({ gateway: row.gateway, batch: row.batch, hash: null, count: row.count, samples: undefined });
      this.toIndexPending += row.count;
    }
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
    this.stmts.insertHeader.run(
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
    // keep the decoded records for the index unless a large backlog has built up
    const keep = this.toIndexSamples < 500_000;
    this.toIndex.push({ gateway, batch: header.batch, hash: headerHash, count: header.count, samples: keep ? samples : undefined });
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

  /** Reads see every acknowledged batch: what is still waiting for the per-sample index goes in first. */
  private catchUp(): void {
    if (this.toIndex.length === 0) return;
    try {
      this.indexPending();
    } catch {
      // ingest reports a failing index (an ALARM in its log); the read answers from what is indexed
    }
  }

  latest(instrument: string): LiveSample[] {
    this.catchUp();
    // one row per stream (the newest); a channel with several streams (a unit changed) keeps the newest
    const byChannel = new Map<string, LiveSample>();
    for (const s of this.latestRows(instrument).map(toLive)) {
      const seen = byChannel.get(s.channel);
      if (seen === undefined || s.ts > seen.ts) byChannel.set(s.channel, s);
    }
    return [...byChannel.values()];
  }

  private skewedAt: Statement | undefined;

  /**
   * The newest sample of each of an instrument's streams, leaving out the samples dated outside the accepted window
   * around their batch's arrival (clock skew, see Ingest): such a sample is never a latest value.
   * Where the newest is one, the stream is read back from its newest sample (at most LATEST_SCAN rows).
   */
  private latestRows(instrument: string): Row[] {
    const rows = this.stmts.latest.all(instrument) as Row[];
    this.skewedAt ??= this.database.sqlite.prepare(
      'SELECT last_seq AS lastSeq, earliest, latest FROM clock_skew_batches WHERE gateway = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1',
    );
    const skewedAt = this.skewedAt;
    const skewed = (r: Row): boolean => {
      const b = skewedAt.get(r.gateway, r.seq) as { lastSeq: number; earliest: number; latest: number } | undefined;
      return b !== undefined && b.lastSeq >= r.seq && (r.ts < b.earliest || r.ts > b.latest);
    };
    if (!rows.some(skewed)) return rows;
    const db = this.database.sqlite;
    const page = db.prepare(`${SELECT} WHERE s.stream = ? ORDER BY s.ts DESC, s.seq DESC LIMIT ? OFFSET ?`);
    const out: Row[] = [];
    for (const stream of db.prepare('SELECT id FROM streams WHERE instrument = ?').pluck().all(instrument) as number[]) {
      find: for (let offset = 0; offset < LATEST_SCAN; offset += 500) {
        const got = page.all(stream, 500, offset) as Row[];
        for (const r of got)
          if (!skewed(r)) {
            out.push(r);
            break find;
          }
        if (got.length < 500) break;
      }
    }
    return out;
  }

  history(instrument: string, channel: string, from: number, to: number, limit: number): LiveSample[] {
    this.catchUp();
    return (this.stmts.history.all(instrument, channel, from, to, limit) as Row[]).map(toLive);
  }

  /**
   * A channel's numeric values between `from` and `to` in at most `points` time buckets: min, max,
   * mean and count per bucket, so that a chart never receives more points than it can draw. The
   * bucket width is a whole number of milliseconds.
   */
  series(instrument: string, channel: string, from: number, to: number, points: number): { bucketMs: number; points: SeriesPoint[] } {
    this.catchUp();
    const bucketMs = Math.max(1, Math.ceil((to - from + 1) / points));
    const rows = this.database.sqlite
      .prepare(
        `SELECT CAST((s.ts - @from) / @bucket AS INTEGER) AS b, MIN(s.num) AS min, MAX(s.num) AS max, AVG(s.num) AS mean, COUNT(*) AS count
         FROM samples s WHERE s.stream IN (SELECT id FROM streams WHERE instrument = @instrument AND channel = @channel) AND s.ts >= @from AND s.ts <= @to AND s.kind = 3
         GROUP BY b ORDER BY b`,
      )
      .all({ from, bucket: bucketMs, instrument, channel, to }) as { b: number; min: number; max: number; mean: number; count: number }[];
    return { bucketMs, points: rows.map((r) => ({ ts: from + r.b * bucketMs, min: r.min, max: r.max, mean: r.mean, count: r.count })) };
  }

  count(): number {
    this.catchUp();
    return (this.stmts.count.get() as { n: number }).n;
  }
}
