// The per-sample index's two halves, on whichever SQLite file holds it: the writer (stream ids, rows sorted by stream,
// 64 rows per INSERT) and the reads (latest, history, time-bucketed series, count). MeasurementStore runs both on the
// store's own file (the index built on the main thread); the index worker (index-worker.ts) runs the writer on a file
// of its own in a worker thread, and its host runs the reads on a read-only connection to that file.
import type { Database, Statement } from 'better-sqlite3';
import { QUALITIES, readRecords, type LiveSample, type Quality, type Sample } from '@labtrace/protocols';

export interface Row {
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

export interface SeriesPoint {
  /** start of the bucket, ms */
  ts: number;
  min: number;
  max: number;
  mean: number;
  count: number;
}

/**
 * The index's tables in a file of its own (the same layout as the store's migrations 0004 and 0019 give it in the
 * store's file), and its cursor: the store's batch_headers rowid up to which every committed batch is in the index,
 * moved in the transaction that inserts the batches' rows.
 */
export const INDEX_FILE_DDL = [
  'CREATE TABLE IF NOT EXISTS gateway_ids (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)',
  `CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY, gateway TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL, unit TEXT NOT NULL,
    UNIQUE (gateway, instrument, channel, unit))`,
  'CREATE INDEX IF NOT EXISTS streams_by_channel ON streams (instrument, channel)',
  `CREATE TABLE IF NOT EXISTS samples (
    gateway INTEGER NOT NULL, seq INTEGER NOT NULL, stream INTEGER NOT NULL, ts INTEGER NOT NULL,
    num REAL, text TEXT, kind INTEGER NOT NULL, quality INTEGER NOT NULL, reason TEXT)`,
  'CREATE INDEX IF NOT EXISTS samples_by_stream ON samples (stream, ts)',
  `CREATE VIEW IF NOT EXISTS measurements AS
    SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts,
      CASE s.kind WHEN 1 THEN 0 WHEN 2 THEN 1 ELSE s.num END AS value_num, s.text AS value_text,
      CASE s.kind WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'boolean' WHEN 3 THEN 'number' ELSE 'string' END AS value_kind,
      st.unit, CASE s.quality WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality, s.reason
    FROM samples s JOIN gateway_ids g ON g.id = s.gateway JOIN streams st ON st.id = s.stream`,
  'CREATE TABLE IF NOT EXISTS index_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL)',
];

/** The records of a batch from their stored bytes (each behind its 0x00 leaf prefix). */
export function decodeRecords(bytes: Uint8Array): Sample[] {
  const samples: Sample[] = [];
  readRecords(bytes, (record) => void samples.push(record.sample));
  return samples;
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

export interface IndexWriter {
  insert(groups: readonly IndexGroup[]): number;
  /** forgets the ids kept in memory: call after a transaction that inserted rows rolled back (ids taken in it are gone) */
  forget(): void;
}

/**
 * Inserts records into the per-sample index of `db` (the caller's transaction): stream and gateway ids, kept in memory
 * after their first use, then the rows in (stream, time) order: the index on (stream, ts) then meets each stream's
 * last page once per call instead of once per row, which keeps the insert rate when there are thousands of streams
 * (measured in bench/influx.bench.js and bench/ingest.bench.js). Returns the rows inserted.
 */
export function indexWriter(db: Database): IndexWriter {
  // rows go in INSERT_ROWS at a time: one statement step per 64 rows costs much less than one per row
  const columns = '(gateway, seq, stream, ts, num, text, kind, quality, reason)';
  const one = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const insertOne = db.prepare(`INSERT INTO samples ${columns} VALUES ${one}`);
  const insertChunk = db.prepare(`INSERT INTO samples ${columns} VALUES ${Array(INSERT_ROWS).fill(one).join(', ')}`);
  const gatewayId = db.prepare('INSERT INTO gateway_ids (name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id').pluck();
  const streamId = db
    .prepare(
      'INSERT INTO streams (gateway, instrument, channel, unit) VALUES (?, ?, ?, ?) ON CONFLICT(gateway, instrument, channel, unit) DO UPDATE SET unit = excluded.unit RETURNING id',
    )
    .pluck();
  const gatewayIds = new Map<string, number>();
  /** stream ids by gateway, instrument, channel and unit */
  const streamIds = new Map<string, Map<string, Map<string, Map<string, number>>>>();
  const params: unknown[] = new Array(INSERT_ROWS * 9);
  const gatewayIdOf = (gateway: string): number => {
    let gw = gatewayIds.get(gateway);
    if (gw === undefined) {
      gw = gatewayId.get(gateway) as number;
      gatewayIds.set(gateway, gw);
    }
    return gw;
  };
  const forget = (): void => {
    gatewayIds.clear();
    streamIds.clear();
  };
  const insert = (groups: readonly IndexGroup[]): number => {
    const rows: { gw: number; stream: number; sample: Sample }[] = [];
    try {
      for (const { gateway, samples } of groups) {
        const gw = gatewayIdOf(gateway);
        // stream ids by instrument, then channel and unit: lookups of the decoded strings, no key built per sample
        let byInstrument = streamIds.get(gateway);
        if (byInstrument === undefined) {
          byInstrument = new Map();
          streamIds.set(gateway, byInstrument);
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
    } catch (err) {
      forget();
      throw err;
    }
    return rows.length;
  };
  return { insert, forget };
}

/** A stored value by its kind (0 null, 1 false, 2 true, 3 number, 4 text), the same on SQLite and PostgreSQL. */
export function valueOfKind(kind: number, row: { num: number | null; text: string | null }): LiveSample['value'] {
  switch (kind) {
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
    value: valueOfKind(row.kind, row),
    unit: row.unit,
    quality: QUALITIES[row.quality] ?? 'bad',
  };
}

const SELECT = `SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts, s.num, s.text, s.kind, st.unit, s.quality
  FROM samples s JOIN streams st ON st.id = s.stream JOIN gateway_ids g ON g.id = s.gateway`;

/**
 * The dashboard's reads of the per-sample index in `db`; `store`: the store's file, whose clock_skew_batches say which
 * samples are never a latest value (the same connection when the index is in the store's file).
 */
export class IndexReader {
  private readonly latestStmt: Statement;
  private readonly historyStmt: Statement;
  private readonly countStmt: Statement;
  private skewedAt: Statement | undefined;

  constructor(
    private readonly db: Database,
    private readonly store: Database,
  ) {
    this.latestStmt = db.prepare(
      `${SELECT} JOIN (SELECT s2.stream, MAX(s2.ts) AS ts FROM samples s2 WHERE s2.stream IN (SELECT id FROM streams WHERE instrument = ?) GROUP BY s2.stream) l
         ON s.stream = l.stream AND s.ts = l.ts`,
    );
    this.historyStmt = db.prepare(
      `SELECT * FROM (${SELECT} WHERE s.stream IN (SELECT id FROM streams WHERE instrument = ? AND channel = ?) AND s.ts >= ? AND s.ts <= ?
         ORDER BY s.ts DESC, s.seq DESC LIMIT ?) ORDER BY ts, seq`,
    );
    this.countStmt = db.prepare('SELECT COUNT(*) AS n FROM samples');
  }

  latest(instrument: string): LiveSample[] {
    // one row per stream (the newest); a channel with several streams (a unit changed) keeps the newest
    const byChannel = new Map<string, LiveSample>();
    for (const s of this.latestRows(instrument).map(toLive)) {
      const seen = byChannel.get(s.channel);
      if (seen === undefined || s.ts > seen.ts) byChannel.set(s.channel, s);
    }
    return [...byChannel.values()];
  }

  /**
   * The newest sample of each of an instrument's streams, leaving out the samples dated outside the accepted window
   * around their batch's arrival (clock skew, see Ingest): such a sample is never a latest value.
   * Where the newest is one, the stream is read back from its newest sample (at most LATEST_SCAN rows).
   */
  private latestRows(instrument: string): Row[] {
    const rows = this.latestStmt.all(instrument) as Row[];
    this.skewedAt ??= this.store.prepare(
      'SELECT last_seq AS lastSeq, earliest, latest FROM clock_skew_batches WHERE gateway = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1',
    );
    const skewedAt = this.skewedAt;
    const skewed = (r: Row): boolean => {
      const b = skewedAt.get(r.gateway, r.seq) as { lastSeq: number; earliest: number; latest: number } | undefined;
      return b !== undefined && b.lastSeq >= r.seq && (r.ts < b.earliest || r.ts > b.latest);
    };
    if (!rows.some(skewed)) return rows;
    const page = this.db.prepare(`${SELECT} WHERE s.stream = ? ORDER BY s.ts DESC, s.seq DESC LIMIT ? OFFSET ?`);
    const out: Row[] = [];
    for (const stream of this.db.prepare('SELECT id FROM streams WHERE instrument = ?').pluck().all(instrument) as number[]) {
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
    return (this.historyStmt.all(instrument, channel, from, to, limit) as Row[]).map(toLive);
  }

  /**
   * A channel's numeric values between `from` and `to` in at most `points` time buckets: min, max,
   * mean and count per bucket, so that a chart never receives more points than it can draw. The
   * bucket width is a whole number of milliseconds.
   */
  series(instrument: string, channel: string, from: number, to: number, points: number): { bucketMs: number; points: SeriesPoint[] } {
    const bucketMs = Math.max(1, Math.ceil((to - from + 1) / points));
    const rows = this.db
      .prepare(
        `SELECT CAST((s.ts - @from) / @bucket AS INTEGER) AS b, MIN(s.num) AS min, MAX(s.num) AS max, AVG(s.num) AS mean, COUNT(*) AS count
         FROM samples s WHERE s.stream IN (SELECT id FROM streams WHERE instrument = @instrument AND channel = @channel) AND s.ts >= @from AND s.ts <= @to AND s.kind = 3
         GROUP BY b ORDER BY b`,
      )
      .all({ from, bucket: bucketMs, instrument, channel, to }) as { b: number; min: number; max: number; mean: number; count: number }[];
    return { bucketMs, points: rows.map((r) => ({ ts: from + r.b * bucketMs, min: r.min, max: r.max, mean: r.mean, count: r.count })) };
  }

  count(): number {
    return (this.countStmt.get() as { n: number }).n;
  }
}
