// An export bundle (format labtrace-bundle/v1): one gateway's stored batches over a time range, with all an auditor
// needs to check them offline (protocols/src/verify/verifier.ts, `labtrace verify`):
//   bundle.json       format, the log's origin, the selection, when it was made, the counts, and consistency proofs
//                     from the last CONSISTENCY_CHECKPOINTS stored checkpoints to the exported one (so that an
//                     auditor's saved checkpoint of one of those sizes can be checked against it)
//   checkpoint.txt    the latest signed checkpoint (not a new one: the export does not sign), with the witnesses'
//                     cosignatures of it that the lab holds (signature lines after the log's; log/cosignatures.ts)
//   keys.json         the log's verifier key, and every key of the gateway with its status and validity
//   batches.jsonl     per stored batch overlapping the range: {header, signature, records (base64 of the stored
//                     records, each 0x00 || canonical record bytes), logIndex, logProof (base64 inclusion proof
//                     against the checkpoint's size)}; logIndex and logProof are null for a batch that the checkpoint
//                     does not cover yet (the verifier reports it). A batch whose records retention removed has
//                     records null, leaves (base64 of its records' leaf hashes, 32 bytes each) and removedAt (ms)
//   records.jsonl     per record, what its bytes say: {gateway, seq, instrument, channel, ts, value, unit, quality,
//                     reason?, batch}
//   key-events.jsonl  the log's key events of the gateway within the checkpoint: {index, at, data (base64 of the
//                     leaf data), event (the same, parsed), proof}
//   boundaries.json   {before, after}: the gateway's stored batch just before the range and just after it, in the
//                     checkpoint, as {header, signature, logIndex, logProof}; null where there is none
//   statement.txt     the export statement (protocols/src/verify/export-statement.ts), signed by the log key: what
//                     the bundle holds, against which checkpoint, and which batches bound it; bundle.json is only a
//                     summary for people, the statement is what a verifier holds the files to
//
// The bundle is written file by file as it is read: the store is read in small steps from a snapshot of its own
// (a read transaction through Kysely: on SQLite on a second, read-only connection to the file; on PostgreSQL a
// REPEATABLE READ, READ ONLY transaction on a pooled connection), so that ingest goes on meanwhile and the bundle is
// of one state; each step's lines go to the files with back-pressure, and the export yields to the event loop
// between steps. Neither the server's memory nor its other requests depend on the size of the export. The log's
// proofs are asked of the log (the synchronous TransparencyLog or the log store): a proof against the exported
// checkpoint's size reads only hashes committed before that checkpoint, which never change.
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import {
  BUNDLE_FORMAT,
  LabtraceError,
  batchHeaderHash,
  formatExportStatement,
  headersDigest,
  keyEventsDigest,
  parseCheckpoint,
  parseNote,
  readableRecordLine,
  readRecords,
  toBase64,
  type BatchHeader,
} from '@labtrace/protocols';
import { CosignatureStore } from '../log/cosignatures.js';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

/** Consistency proofs are included from at most this many of the latest stored checkpoints. */
export const CONSISTENCY_CHECKPOINTS = 100;

/** A bundle's files, in the order an archive of it lists them. */
export const BUNDLE_FILES = [
  'bundle.json',
  'checkpoint.txt',
  'keys.json',
  'batches.jsonl',
  'records.jsonl',
  'key-events.jsonl',
  'boundaries.json',
  'statement.txt',
] as const;

/** Batches read per query; a step ends with the batch that reaches RECORDS_PER_STEP, then the export yields. */
const BATCHES_PER_PAGE = 8;
/** Records per step: some ten milliseconds of work (decoding, JSON, proofs), so that other requests wait no longer. */
const RECORDS_PER_STEP = 400;
/** Log entries scanned per step for the gateway's key events. */
const LOG_ENTRIES_PER_STEP = 16_384;

/** What a bundle holds: one gateway's stored batches over a time span. */
export interface BundleSelection {
  gateway: string;
  /** ms since the epoch, inclusive */
  from: number;
  /** ms since the epoch, inclusive */
  to: number;
}

/**
 * What the export asks of the transparency log: the synchronous TransparencyLog (SQLite) or the log store
 * (log/log-store.ts, SQLite or PostgreSQL) alike. Signs nothing but the export statement.
 */
export interface BundleLog {
  readonly origin: string;
  verifierKey(): string;
  signNote(text: string): string;
  inclusionProof(index: number, size: number): Uint8Array[] | Promise<Uint8Array[]>;
  consistencyProof(from: number, to: number): Uint8Array[] | Promise<Uint8Array[]>;
}

/** The store a bundle is read from: its Kysely, or anything holding it (the server's SQLite LabDatabase). */
export type BundleStore = Kysely<Tables> | { readonly db: Kysely<Tables> };

export interface ExportOptions extends BundleSelection {
  outDir: string;
  /** stops the export between two steps (the request that asked for it is gone); the files are left incomplete */
  signal?: AbortSignal | undefined;
  /** told after each step: the gateway's batches looked at (of `total`, all its stored batches), and those taken */
  progress?: ((p: { looked: number; total: number; batches: number; records: number }) => void) | undefined;
}

interface BatchRow {
  batch: number;
  firstSeq: number;
  header: string;
  signature: string;
  records: Buffer | null;
  logIndex: number | null;
  /** retention removed the records: their packed leaf hashes and when (store/batch-retention.ts) */
  leaves: Buffer | null;
  removedAt: number | null;
}

/** A JSON Lines file written a step at a time, waiting when the disk is slower than the store. */
class LinesFile {
  private readonly stream: WriteStream;
  private failure: Error | undefined;
  count = 0;

  constructor(file: string) {
    this.stream = createWriteStream(file);
    // kept, and thrown by the next write: an 'error' without a listener would end the process
    this.stream.on('error', (err) => (this.failure ??= err));
  }

  async write(lines: string[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (lines.length === 0) return;
    this.count += lines.length;
    if (!this.stream.write(`${lines.join('\n')}\n`)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    if (!this.stream.writableEnded) await new Promise<void>((resolve) => this.stream.end(() => resolve()));
    if (this.failure) throw this.failure;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/**
 * Runs `read` in a read transaction that sees one state of the store across the turns of the event loop between the
 * export's steps, while the server's connections go on writing. SQLite: a second, read-only connection to the file
 * (the server's one connection must not be held across those turns; WAL lets it write meanwhile), its transaction
 * deferred, so that the snapshot is the state at the first read. PostgreSQL: REPEATABLE READ, READ ONLY, on one
 * connection of the pool for the export's length.
 */
export async function inSnapshot<T>(store: Kysely<Tables>, read: (db: Kysely<Tables>) => Promise<T>): Promise<T> {
  if (dialectOf(store as unknown as Kysely<unknown>) === 'postgres')
    return store.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
  const { rows } = await sql<{ file: string }>`SELECT file FROM pragma_database_list WHERE name = 'main'`.execute(store);
  const file = rows[0]?.file;
  if (file === undefined || file === '') throw new LabtraceError('E_STORE', 'export: the SQLite store has no file to read a snapshot from');
  const snapshot = new Kysely<Tables>({ dialect: new SqliteDialect({ database: new Database(file, { readonly: true, fileMustExist: true }) }) });
  try {
    return await snapshot.transaction().execute(read);
  } finally {
    await snapshot.destroy();
  }
}

async function step(signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  await nextTurn();
  signal?.throwIfAborted();
}

/** Writes a bundle's files into `outDir` (made if missing), a step at a time from one snapshot of the store. */
export async function exportBundle(store: BundleStore, log: BundleLog, options: ExportOptions): Promise<{ batches: number; records: number }> {
  const { gateway, from, to, outDir } = options;
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to)
    throw new LabtraceError('E_CONFIG', `export: the time range ${from}..${to} is empty`);
  await mkdir(outDir, { recursive: true });
  const lines = {
    batches: new LinesFile(path.join(outDir, 'batches.jsonl')),
    records: new LinesFile(path.join(outDir, 'records.jsonl')),
    keyEvents: new LinesFile(path.join(outDir, 'key-events.jsonl')),
  };
  try {
    const read = await inSnapshot(store instanceof Kysely ? store : store.db, (snapshot) => readSnapshot(snapshot, log, options, lines));
    await Promise.all(Object.values(lines).map((l) => l.close()));
    const { note, size, included, records, uncovered, consistency, keys, boundaries, statement } = read;
    const bundle = {
      format: BUNDLE_FORMAT,
      origin: log.origin,
      selection: { gateway, from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      created: new Date().toISOString(),
      checkpointSize: size,
      counts: { batches: included, records, notInCheckpoint: uncovered },
      consistency,
    };
    const whole: [string, string][] = [
      ['bundle.json', `${JSON.stringify(bundle, null, 2)}\n`],
      ['checkpoint.txt', note],
      ['keys.json', `${JSON.stringify({ log: { origin: log.origin, verifierKey: log.verifierKey() }, gateways: keys }, null, 2)}\n`],
      ['boundaries.json', `${JSON.stringify(boundaries, null, 2)}\n`],
      ['statement.txt', statement],
    ];
    await Promise.all(whole.map(([name, content]) => writeFile(path.join(outDir, name), content)));
    return { batches: included, records };
  } finally {
    for (const l of Object.values(lines)) l.destroy();
  }
}

/** Reads the bundle from the snapshot: the line files written as it goes, the rest returned. */
async function readSnapshot(
  snapshot: Kysely<Tables>,
  log: BundleLog,
  { gateway, from, to, signal, progress }: ExportOptions,
  lines: { batches: LinesFile; records: LinesFile; keyEvents: LinesFile },
): Promise<{
  note: string;
  size: number;
  included: number;
  records: number;
  uncovered: number;
  consistency: { from: number; to: number; proof: string[] }[];
  keys: object[];
  boundaries: { before: object | null; after: object | null };
  statement: string;
}> {
  const stored = await snapshot.selectFrom('log_checkpoints').select('note').orderBy('size', 'desc').limit(1).executeTakeFirst();
  if (stored === undefined) throw new LabtraceError('E_STORE', 'export: the transparency log has no signed checkpoint');
  const checkpoint = parseCheckpoint(parseNote(stored.note).text);
  const size = checkpoint.size;
  // the cosignatures of this checkpoint as the snapshot holds them: a verifier may require some witnesses' (--witness)
  const note = await new CosignatureStore(snapshot).cosigned(size, stored.note);
  const proof = async (index: number): Promise<string[]> => (await log.inclusionProof(index, size)).map(toBase64);
  const included: { header: BatchHeader; signature: string }[] = [];
  // the batches just outside the range (in the checkpoint): the last before it, the first after it
  let before: { header: BatchHeader; signature: string; logIndex: number } | undefined;
  let after: { header: BatchHeader; signature: string; logIndex: number } | undefined;
  let uncovered = 0;
  let position = { firstSeq: Number.MIN_SAFE_INTEGER, batch: Number.MIN_SAFE_INTEGER };
  const total =
    progress === undefined
      ? 0
      : Number(
          (
            await snapshot
              .selectFrom('batch_headers')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('gateway', '=', gateway)
              .executeTakeFirst()
          )?.n ?? 0,
        );
  let looked = 0;
  let recordCount = 0;
  for (;;) {
    const at = position;
    const rows: BatchRow[] = (
      await snapshot
        .selectFrom('batch_headers')
        .select(['batch', 'first_seq', 'header', 'signature', 'records', 'log_index', 'leaves', 'records_removed_at'])
        .where('gateway', '=', gateway)
        .where((eb) => eb.or([eb('first_seq', '>', at.firstSeq), eb.and([eb('first_seq', '=', at.firstSeq), eb('batch', '>', at.batch)])]))
        .orderBy('first_seq')
        .orderBy('batch')
        .limit(BATCHES_PER_PAGE)
        .execute()
    ).map((r) => ({
      batch: Number(r.batch),
      firstSeq: Number(r.first_seq),
      header: r.header,
      signature: r.signature,
      records: r.records === null ? null : Buffer.from(r.records),
      logIndex: r.log_index === null ? null : Number(r.log_index),
      leaves: r.leaves === null ? null : Buffer.from(r.leaves),
      removedAt: r.records_removed_at === null ? null : Number(r.records_removed_at),
    }));
    const batchLines: string[] = [];
    const recordLines: string[] = [];
    let taken = 0;
    for (const row of rows) {
      if (recordLines.length >= RECORDS_PER_STEP) break; // the next step starts with this batch
      taken++;
      const header = JSON.parse(row.header) as BatchHeader;
      if (header.tsMax < from || header.tsMin > to) {
        if (row.logIndex === null || row.logIndex >= size) continue;
        const witness = { header, signature: row.signature, logIndex: row.logIndex };
        if (included.length === 0 && header.tsMax < from) before = witness;
        else after ??= witness;
        continue;
      }
      after = undefined;
      included.push({ header, signature: row.signature });
      const inLog = row.logIndex !== null && row.logIndex < size;
      if (row.records === null && row.leaves !== null && row.removedAt !== null) {
        // removed by retention: the header, signature and leaf hashes prove what was there; no records to read
        if (!inLog) uncovered++;
        batchLines.push(
          JSON.stringify({
            header,
            signature: row.signature,
            records: null,
            leaves: row.leaves.toString('base64'),
            removedAt: row.removedAt,
            logIndex: inLog ? row.logIndex : null,
            logProof: inLog && row.logIndex !== null ? await proof(row.logIndex) : null,
          }),
        );
        continue;
      }
      if (row.records === null) throw new LabtraceError('E_STORE', `export: batch ${row.batch} of ${gateway} was stored without its records`);
      const bytes = row.records;
      if (!inLog) uncovered++;
      batchLines.push(
        JSON.stringify({
          header,
          signature: row.signature,
          records: bytes.toString('base64'),
          logIndex: inLog ? row.logIndex : null,
          logProof: inLog && row.logIndex !== null ? await proof(row.logIndex) : null,
        }),
      );
      readRecords(bytes, (record) => void recordLines.push(readableRecordLine(record.gateway, record.sample, header.batch)));
    }
    await lines.batches.write(batchLines);
    await lines.records.write(recordLines);
    looked += taken;
    recordCount += recordLines.length;
    progress?.({ looked, total, batches: included.length, records: recordCount });
    const last = rows[taken - 1];
    if (last === undefined || (taken === rows.length && rows.length < BATCHES_PER_PAGE)) break;
    position = { firstSeq: last.firstSeq, batch: last.batch };
    await step(signal);
  }
  const keyEventData: Uint8Array[] = [];
  for (let low = 0; low < size; low += LOG_ENTRIES_PER_STEP) {
    await step(signal);
    const keyEventLines: string[] = [];
    const events = await snapshot
      .selectFrom('log_entries')
      .select(['idx', 'data', 'at'])
      .where('kind', '=', 'key-event')
      .where('idx', '>=', low)
      .where('idx', '<', Math.min(size, low + LOG_ENTRIES_PER_STEP))
      .orderBy('idx')
      .execute();
    for (const e of events) {
      const data = Buffer.from(e.data);
      const index = Number(e.idx);
      let event: unknown;
      try {
        event = JSON.parse(data.toString('utf8'));
      } catch {
        event = null;
      }
      const eventGateway = typeof event === 'object' && event !== null ? (event as { gateway?: unknown }).gateway : undefined;
      if (eventGateway !== gateway) continue;
      keyEventData.push(new Uint8Array(data));
      keyEventLines.push(JSON.stringify({ index, at: Number(e.at), data: data.toString('base64'), event, proof: await proof(index) }));
    }
    await lines.keyEvents.write(keyEventLines);
  }
  await step(signal);
  const consistency: { from: number; to: number; proof: string[] }[] = [];
  const earlier = await snapshot
    .selectFrom('log_checkpoints')
    .select('size')
    .where('size', '>', 0)
    .where('size', '<', size)
    .orderBy('size', 'desc')
    .limit(CONSISTENCY_CHECKPOINTS)
    .execute();
  for (const c of earlier) {
    const at = Number(c.size);
    consistency.push({ from: at, to: size, proof: (await log.consistencyProof(at, size)).map(toBase64) });
  }
  const keys = (
    await snapshot
      .selectFrom('gateway_keys')
      .select(['key_id', 'verifier_key', 'status', 'registered_at', 'valid_until', 'last_valid_batch', 'reason', 'replaced_by'])
      .where('gateway', '=', gateway)
      .orderBy('registered_at')
      .orderBy('key_id')
      .execute()
  ).map((k) => ({
    gateway,
    keyId: k.key_id,
    verifierKey: k.verifier_key,
    status: k.status,
    registeredAt: Number(k.registered_at),
    validUntil: k.valid_until === null ? null : Number(k.valid_until),
    lastValidBatch: k.last_valid_batch === null ? null : Number(k.last_valid_batch),
    reason: k.reason,
    replacedBy: k.replaced_by,
  }));
  const witness = async (w: typeof before): Promise<object | null> => (w === undefined ? null : { ...w, logProof: await proof(w.logIndex) });
  const boundaries = { before: await witness(before), after: await witness(after) };
  const firstBatch = included[0];
  const lastBatch = included[included.length - 1];
  const bySeq = [...included].sort((a, b) => a.header.firstSeq - b.header.firstSeq);
  const lastEnd = included.reduce<number | null>((m, b) => Math.max(m ?? 0, b.header.firstSeq + b.header.count - 1), null);
  const records = lines.records.count;
  const statement = log.signNote(
    formatExportStatement({
      format: BUNDLE_FORMAT,
      origin: log.origin,
      gateway,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      checkpoint: { size, root: toBase64(checkpoint.rootHash) },
      batches: { count: included.length, first: firstBatch?.header.batch ?? null, last: lastBatch?.header.batch ?? null },
      seq: { first: bySeq[0]?.header.firstSeq ?? null, last: lastEnd },
      records,
      headers: headersDigest(included),
      keyEvents: { count: keyEventData.length, root: keyEventsDigest(keyEventData) },
      before: before === undefined ? null : { batch: before.header.batch, hash: batchHeaderHash(before.header) },
      after: after === undefined ? null : { batch: after.header.batch, hash: batchHeaderHash(after.header) },
    }),
  );
  return { note, size, included: included.length, records, uncovered, consistency, keys, boundaries, statement };
}
