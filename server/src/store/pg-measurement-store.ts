// The measurement store on PostgreSQL: what store/measurement-store.ts does on SQLite (a gateway's verified batch
// stored whole and once, its samples in the per-sample index, the dashboard's reads), asynchronous, and safe with
// several server nodes writing to one database.
//
// - A batch and its samples go in in the caller's transaction (storeBatch takes it), so that the ingest commits the
//   batch, its chain state and its log leaf together. The index is written in that same transaction: PostgreSQL
//   inserts a batch's samples as one statement of arrays (unnest), and commits of concurrent transactions share
//   their WAL flush (group commit), so the deferred index pass that SQLite needs buys nothing here.
// - Nodes: a gateway's batches are serialized by a transaction-scoped advisory lock on the gateway, taken before
//   the overlap check, so that a batch redelivered to another node while the first still commits is seen there as
//   stored (a duplicate, acknowledged) once the first commits, never stored twice. Locks are taken in gateway order
//   when a transaction stores batches of several gateways, so that two nodes cannot deadlock on them.
// - Gateway and stream ids come from unique upserts (the same id on every node) and are kept in memory once known.
// - The index is partitioned by month (store/sample-partitions.ts): partitions are made before the transaction.
//
// The ingest's PostgreSQL path (ingest/ingest.ts) stores through it; the server's composition does not choose
// PostgreSQL yet (docs/scale-out.md says what moves when).
import { encodeRecords, fromHex, LabtraceError, QUALITIES, type LiveSample, type Quality, type Sample, type SignedBatch } from '@labtrace/protocols';
import { sql, type Kysely, type Transaction } from 'kysely';
import { removedByRetention, type SeriesPoint } from './measurement-store.js';
import { valueOfKind } from './sample-index.js';
import { SamplePartitions } from './sample-partitions.js';

/** Anything that runs a query: the store's Kysely or a transaction of it. */
export type Queryable = Kysely<unknown> | Transaction<unknown>;

/** the advisory lock class of a gateway's batches (the second key: hashtext of the gateway) */
const GATEWAY_LOCK_CLASS = 0x6c74_6762; // 'ltgb'
/** at most this many of a stream's newest samples are read past samples of clock-skewed batches for its latest value */
const LATEST_SCAN = 50_000;
const QUALITY_CODE: Record<Quality, number> = { good: 0, uncertain: 1, bad: 2 };

interface Row {
  gateway: string;
  seq: string | number;
  instrument: string;
  channel: string;
  ts: string | number;
  num: number | null;
  text: string | null;
  kind: string | number;
  unit: string;
  quality: string | number;
}

/** A row as a live sample (PostgreSQL's BIGINT arrives as a string). */
function toLive(row: Row): LiveSample {
  return {
    gateway: row.gateway,
    seq: Number(row.seq),
    instrument: row.instrument,
    channel: row.channel,
    ts: Number(row.ts),
    value: valueOfKind(Number(row.kind), row),
    unit: row.unit,
    quality: QUALITIES[Number(row.quality)] ?? 'bad',
  };
}

const SELECT = sql`SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts, s.num, s.text, s.kind, st.unit, s.quality
  FROM samples s JOIN streams st ON st.id = s.stream JOIN gateway_ids g ON g.id = s.gateway`;

/** What storing a batch came to. */
export type StoreOutcome =
  | { kind: 'stored'; samples: number }
  /** the same batch (same header hash) is stored already: acknowledge it again, store nothing */
  | { kind: 'duplicate' }
  /** its numbers (or its batch number, with another header) are stored already under another batch */
  | { kind: 'conflict'; detail: string };

export interface BatchToStore {
  gateway: string;
  samples: readonly Sample[];
  signed: SignedBatch;
  /** the header's hash (base64), as the ingest computes it */
  headerHash: string;
  /** the records' canonical bytes (encoded from the samples when not given) */
  records?: Uint8Array;
  /** arrival, ms */
  now: number;
}

/** A stored batch at its place in the transparency log (batchesAfter). */
export interface LoggedBatch {
  logIndex: number;
  gateway: string;
  batch: number;
  /** the records' canonical bytes (null: stored before records were kept) */
  records: Uint8Array | null;
  /** for a batch stored with clock skew: the window of sample times accepted around its arrival (ms) */
  accepted: { earliest: number; latest: number } | null;
}

export class PgMeasurementStore {
  private readonly gatewayIds = new Map<string, number>();
  /** stream ids by gateway, instrument, channel and unit (lookups of the decoded strings: no key built per sample) */
  private readonly streamIds = new Map<string, Map<string, Map<string, Map<string, number>>>>();
  readonly partitions: SamplePartitions;

  constructor(private readonly db: Kysely<unknown>) {
    this.partitions = new SamplePartitions(db);
  }

  /**
   * To call before the transaction that stores these batches: the month partitions their samples fall in, and the
   * ids of their gateways and streams (upserts that commit on their own: an id without samples is harmless).
   */
  async prepare(batches: readonly Pick<BatchToStore, 'gateway' | 'samples'>[]): Promise<void> {
    const times: number[] = [];
    for (const { gateway, samples } of batches) {
      await this.gatewayId(gateway);
      for (const s of samples) times.push(s.ts);
      await this.streamIdsOf(gateway, samples);
    }
    await this.partitions.ensure(times);
  }

  /** Serializes the gateways' batches with every other node's, for the rest of the transaction (in gateway order). */
  async lockGateways(trx: Transaction<unknown>, gateways: Iterable<string>): Promise<void> {
    for (const gateway of [...new Set(gateways)].sort())
      await sql`SELECT pg_advisory_xact_lock(${GATEWAY_LOCK_CLASS}, hashtext(${gateway}))`.execute(trx);
  }

  /**
   * Stores a verified batch whole, in the caller's transaction, which must hold the gateway's lock (lockGateways):
   * its signed header, its records' bytes and its samples in the index. A batch already stored with the same header
   * is a duplicate; one whose numbers meet a stored batch's is a conflict. Nothing is written in either case.
   */
  async storeBatch(trx: Transaction<unknown>, batch: BatchToStore): Promise<StoreOutcome> {
    const { gateway, signed, headerHash, samples, now } = batch;
    const { header } = signed;
    const same = await sql<{ hash: string }>`SELECT hash FROM batch_headers WHERE gateway = ${gateway} AND batch = ${header.batch}`.execute(trx);
    const stored = same.rows[0];
    if (stored !== undefined)
      return stored.hash === headerHash
        ? { kind: 'duplicate' }
        : { kind: 'conflict', detail: `a different batch ${header.batch} of ${gateway} (header ${stored.hash}) is already stored` };
    const last = header.firstSeq + header.count - 1;
    const clash = await sql<{ batch: string; first_seq: string; count: string }>`SELECT batch, first_seq, count FROM batch_headers
      WHERE gateway = ${gateway} AND first_seq <= ${last} AND first_seq + count > ${header.firstSeq} ORDER BY first_seq DESC LIMIT 1`.execute(trx);
    const c = clash.rows[0];
    if (c !== undefined) {
      const [cFirst, cCount] = [Number(c.first_seq), Number(c.count)];
      return {
        kind: 'conflict',
        detail: `sequence numbers ${Math.max(header.firstSeq, cFirst)}..${Math.min(last, cFirst + cCount - 1)} of ${gateway} are already stored in batch ${c.batch}`,
      };
    }
    const bytes = batch.records ?? encodeRecords(gateway, fromHex(header.keyId), samples).bytes;
    await sql`INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at, hash, records, indexed)
      VALUES (${gateway}, ${header.batch}, ${header.firstSeq}, ${header.count}, ${JSON.stringify(header)}, ${signed.signature}, ${now},
        ${headerHash}, ${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)}, 1)`.execute(trx);
    await this.index(trx, gateway, samples);
    return { kind: 'stored', samples: samples.length };
  }

  /** Records where a stored batch's header entered the transparency log (the caller's transaction). */
  async setLogIndex(trx: Queryable, gateway: string, batch: number, index: number): Promise<void> {
    await sql`UPDATE batch_headers SET log_index = ${index} WHERE gateway = ${gateway} AND batch = ${batch}`.execute(trx);
  }

  private async gatewayId(gateway: string): Promise<number> {
    let id = this.gatewayIds.get(gateway);
    if (id === undefined) {
      const { rows } = await sql<{ id: string }>`INSERT INTO gateway_ids (name) VALUES (${gateway})
        ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`.execute(this.db);
      id = Number((rows[0] as { id: string }).id);
      this.gatewayIds.set(gateway, id);
    }
    return id;
  }

  private streamIdOf(gateway: string, s: Pick<Sample, 'instrument' | 'channel' | 'unit'>): number | undefined {
    return this.streamIds.get(gateway)?.get(s.instrument)?.get(s.channel)?.get(s.unit);
  }

  private rememberStream(gateway: string, s: Pick<Sample, 'instrument' | 'channel' | 'unit'>, id: number): void {
    let byInstrument = this.streamIds.get(gateway);
    if (byInstrument === undefined) this.streamIds.set(gateway, (byInstrument = new Map<string, Map<string, Map<string, number>>>()));
    let byChannel = byInstrument.get(s.instrument);
    if (byChannel === undefined) byInstrument.set(s.instrument, (byChannel = new Map<string, Map<string, number>>()));
    let byUnit = byChannel.get(s.channel);
    if (byUnit === undefined) byChannel.set(s.channel, (byUnit = new Map<string, number>()));
    byUnit.set(s.unit, id);
  }

  /**
   * The stream ids of a gateway's samples, made where missing (one statement for the new ones). The rows go in sorted:
   * two nodes making the same streams at once then take their keys' locks in one order and cannot deadlock.
   */
  private async streamIdsOf(gateway: string, samples: readonly Sample[]): Promise<void> {
    const missing = new Map<string, Pick<Sample, 'instrument' | 'channel' | 'unit'>>();
    for (const s of samples)
      if (this.streamIdOf(gateway, s) === undefined) {
        const key = JSON.stringify([s.instrument, s.channel, s.unit]);
        if (!missing.has(key)) missing.set(key, s);
      }
    if (missing.size === 0) return;
    const list = [...missing.values()];
    const { rows } = await sql<{
      id: string;
      instrument: string;
      channel: string;
      unit: string;
    }>`INSERT INTO streams (gateway, instrument, channel, unit)
      SELECT ${gateway}, i, c, u FROM unnest(${list.map((s) => s.instrument)}::text[], ${list.map((s) => s.channel)}::text[], ${list.map((s) => s.unit)}::text[]) AS n(i, c, u)
      ORDER BY i, c, u
      ON CONFLICT (gateway, instrument, channel, unit) DO UPDATE SET unit = excluded.unit
      RETURNING id, instrument, channel, unit`.execute(this.db);
    for (const r of rows) this.rememberStream(gateway, r, Number(r.id));
  }

  /** The samples into the per-sample index: one INSERT of arrays, in (stream, ts) order. */
  private async index(trx: Transaction<unknown>, gateway: string, samples: readonly Sample[]): Promise<void> {
    if (samples.length === 0) return;
    const gw = this.gatewayIds.get(gateway);
    if (gw === undefined) throw new LabtraceError('E_STORE', `measurement store: prepare() was not called for ${gateway}`);
    const n = samples.length;
    const streams = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const s = samples[i] as Sample;
      const id = this.streamIdOf(gateway, s);
      if (id === undefined)
        throw new LabtraceError('E_STORE', `measurement store: prepare() was not called for ${gateway}'s stream ${s.instrument}/${s.channel}`);
      streams[i] = id;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (streams[a] as number) - (streams[b] as number) || a - b);
    const seq = new Array<number>(n);
    const stream = new Array<number>(n);
    const ts = new Array<number>(n);
    const num = new Array<number | null>(n);
    const text = new Array<string | null>(n);
    const kind = new Array<number>(n);
    const quality = new Array<number>(n);
    const reason = new Array<string | null>(n);
    order.forEach((k, i) => {
      const s = samples[k] as Sample;
      const v = s.value;
      const kd = v === null ? 0 : v === false ? 1 : v === true ? 2 : typeof v === 'number' ? 3 : 4;
      seq[i] = s.seq;
      stream[i] = streams[k] as number;
      ts[i] = s.ts;
      num[i] = kd === 3 ? (v as number) : null;
      text[i] = kd === 4 ? (v as string) : null;
      kind[i] = kd;
      quality[i] = QUALITY_CODE[s.quality];
      reason[i] = s.reason ?? null;
    });
    await sql`INSERT INTO samples (gateway, seq, stream, ts, num, text, kind, quality, reason)
      SELECT ${gw}, * FROM unnest(${seq}::bigint[], ${stream}::bigint[], ${ts}::bigint[], ${num}::float8[], ${text}::text[],
        ${kind}::bigint[], ${quality}::bigint[], ${reason}::text[])`.execute(trx);
  }

  /** The stored batch holding a gateway's sequence number: its signed header, record bytes and log index. */
  async batchOf(gateway: string, seq: number): Promise<{ signed: SignedBatch; records: Uint8Array; logIndex: number | null } | undefined> {
    const { rows } = await sql<{
      header: string;
      signature: string;
      records: Buffer | null;
      log_index: string | null;
      first_seq: string;
      count: string;
      records_removed_at: string | null;
    }>`
      SELECT header, signature, records, log_index, first_seq, count, records_removed_at FROM batch_headers
      WHERE gateway = ${gateway} AND first_seq <= ${seq} ORDER BY first_seq DESC LIMIT 1`.execute(this.db);
    const row = rows[0];
    if (!row || seq >= Number(row.first_seq) + Number(row.count)) return undefined;
    if (row.records === null && row.records_removed_at !== null) throw removedByRetention(gateway, seq, Number(row.records_removed_at));
    if (row.records === null) return undefined;
    return {
      signed: { header: JSON.parse(row.header) as SignedBatch['header'], signature: row.signature },
      records: new Uint8Array(row.records.buffer, row.records.byteOffset, row.records.byteLength),
      logIndex: row.log_index === null ? null : Number(row.log_index),
    };
  }

  /**
   * Stored batches whose headers entered the transparency log after `logIndex`, in log order, at most `limit`: their
   * records' bytes and, for a batch stored with clock skew, the window its samples' times were accepted in. A header
   * enters the log under the log's lock in the batch's own transaction, held until COMMIT: the log index grows in
   * commit order, so that reading on from the last index read never skips a batch committed later. (A batch stored
   * without a log, which the server on PostgreSQL never does, has no index and is not read here.)
   */
  async batchesAfter(logIndex: number, limit: number): Promise<LoggedBatch[]> {
    const { rows } = await sql<{
      log_index: string;
      gateway: string;
      batch: string;
      records: Buffer | null;
      earliest: string | null;
      latest: string | null;
    }>`SELECT b.log_index, b.gateway, b.batch, b.records, k.earliest, k.latest FROM batch_headers b
      LEFT JOIN clock_skew_batches k ON k.gateway = b.gateway AND k.batch = b.batch
      WHERE b.log_index > ${logIndex} ORDER BY b.log_index LIMIT ${limit}`.execute(this.db);
    return rows.map((r) => ({
      logIndex: Number(r.log_index),
      gateway: r.gateway,
      batch: Number(r.batch),
      records: r.records === null ? null : new Uint8Array(r.records.buffer, r.records.byteOffset, r.records.byteLength),
      accepted: r.earliest === null || r.latest === null ? null : { earliest: Number(r.earliest), latest: Number(r.latest) },
    }));
  }

  /** The stored batches, and their samples, whose headers entered the log after `logIndex`. */
  async countAfter(logIndex: number): Promise<{ batches: number; samples: number }> {
    const { rows } = await sql<{ batches: string; samples: string }>`SELECT COUNT(*) AS batches, COALESCE(SUM(count), 0) AS samples
      FROM batch_headers WHERE log_index > ${logIndex}`.execute(this.db);
    return { batches: Number(rows[0]?.batches ?? 0), samples: Number(rows[0]?.samples ?? 0) };
  }

  /** The newest sample of each of an instrument's channels, leaving out samples dated outside their batch's accepted window. */
  async latest(instrument: string): Promise<LiveSample[]> {
    // per stream, its newest row: an index scan from the newest month back, stopped at the first row
    const { rows } = await sql<Row & { stream: string }>`SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts, s.num, s.text, s.kind,
        st.unit, s.quality, st.id AS stream
      FROM streams st CROSS JOIN LATERAL (SELECT * FROM samples s WHERE s.stream = st.id ORDER BY s.ts DESC, s.seq DESC LIMIT 1) s
      JOIN gateway_ids g ON g.id = s.gateway WHERE st.instrument = ${instrument}`.execute(this.db);
    const byChannel = new Map<string, LiveSample>();
    for (const row of rows) {
      const chosen = (await this.skewed(row)) ? await this.newestUnskewed(Number(row.stream)) : row;
      if (chosen === undefined) continue;
      const s = toLive(chosen);
      const seen = byChannel.get(s.channel);
      if (seen === undefined || s.ts > seen.ts) byChannel.set(s.channel, s);
    }
    return [...byChannel.values()];
  }

  private async skewed(r: Row): Promise<boolean> {
    const { rows } = await sql<{ last_seq: string; earliest: string; latest: string }>`SELECT last_seq, earliest, latest FROM clock_skew_batches
      WHERE gateway = ${r.gateway} AND first_seq <= ${Number(r.seq)} ORDER BY first_seq DESC LIMIT 1`.execute(this.db);
    const b = rows[0];
    const ts = Number(r.ts);
    return b !== undefined && Number(b.last_seq) >= Number(r.seq) && (ts < Number(b.earliest) || ts > Number(b.latest));
  }

  private async newestUnskewed(stream: number): Promise<Row | undefined> {
    for (let offset = 0; offset < LATEST_SCAN; offset += 500) {
      const { rows } = await sql<Row>`${SELECT} WHERE s.stream = ${stream} ORDER BY s.ts DESC, s.seq DESC LIMIT 500 OFFSET ${offset}`.execute(
        this.db,
      );
      for (const r of rows) if (!(await this.skewed(r))) return r;
      if (rows.length < 500) return undefined;
    }
    return undefined;
  }

  /** A channel's samples between `from` and `to` (ms, inclusive): the newest `limit`, oldest first. */
  async history(instrument: string, channel: string, from: number, to: number, limit: number): Promise<LiveSample[]> {
    const { rows } =
      await sql<Row>`SELECT * FROM (${SELECT} WHERE s.stream IN (SELECT id FROM streams WHERE instrument = ${instrument} AND channel = ${channel})
      AND s.ts >= ${from} AND s.ts <= ${to} ORDER BY s.ts DESC, s.seq DESC LIMIT ${limit}) newest ORDER BY ts, seq`.execute(this.db);
    return rows.map(toLive);
  }

  /** A channel's numeric values between `from` and `to` in at most `points` buckets (as MeasurementStore.series). */
  async series(instrument: string, channel: string, from: number, to: number, points: number): Promise<{ bucketMs: number; points: SeriesPoint[] }> {
    const bucketMs = Math.max(1, Math.ceil((to - from + 1) / points));
    const { rows } = await sql<{ b: string; min: number; max: number; mean: number; count: string }>`
      SELECT (s.ts - ${from}::bigint) / ${bucketMs}::bigint AS b, MIN(s.num) AS min, MAX(s.num) AS max, AVG(s.num) AS mean, COUNT(*) AS count
      FROM samples s WHERE s.stream IN (SELECT id FROM streams WHERE instrument = ${instrument} AND channel = ${channel})
        AND s.ts >= ${from} AND s.ts <= ${to} AND s.kind = 3
      GROUP BY b ORDER BY b`.execute(this.db);
    return {
      bucketMs,
      points: rows.map((r) => ({ ts: from + Number(r.b) * bucketMs, min: r.min, max: r.max, mean: r.mean, count: Number(r.count) })),
    };
  }

  /** Samples in the index. */
  async count(): Promise<number> {
    const { rows } = await sql<{ n: string }>`SELECT COUNT(*) AS n FROM samples`.execute(this.db);
    return Number(rows[0]?.n ?? 0);
  }
}
