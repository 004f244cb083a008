// The index worker's thread (see index-worker.ts): the only writer of the index file. It reads the store's committed
// batches after its cursor (batch_headers by rowid, commit order) on a read-only connection of its own, decodes their
// records and inserts them into the index, a slice of batches per transaction, with the cursor moved in the same
// transaction; then it tells its host how far it has come. A batch whose transaction rolled back is never seen by
// another connection, so it never reaches the index; a crash of the thread loses the slice it was writing, which the
// next thread writes again from the committed cursor.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Sample } from '@labtrace/protocols';
import { decodeRecords, INDEX_FILE_DDL, indexWriter, type IndexGroup } from './sample-index.js';

export interface IndexWorkerData {
  /** the store's SQLite file (read only) */
  store: string;
  /** the index's file (created if missing) */
  index: string;
  /** records per index transaction, about */
  sliceSamples: number;
  /** the page size of a new index file */
  pageSize: number;
}

/** host -> thread */
export type ToIndexWorker = { type: 'wake' } | { type: 'stop' };
/** thread -> host: where the cursor stands (at start, after each transaction), or a failed transaction */
export type FromIndexWorker =
  { type: 'ready'; position: number; rebuilt: boolean } | { type: 'indexed'; position: number; samples: number } | { type: 'failed'; error: string };

if (parentPort === null) throw new Error('index-worker-thread runs as a worker thread');
const port: MessagePort = parentPort;
const data = workerData as IndexWorkerData;

const index = new Database(data.index);
if ((index.pragma('page_count', { simple: true }) as number) === 0) index.pragma(`page_size = ${data.pageSize}`);
index.pragma('journal_mode = WAL');
// derived data: its commits need no flush of their own (a lost commit is indexed again from the stored batches)
index.pragma('synchronous = NORMAL');
index.pragma('cache_size = -131072');
index.pragma(`wal_autocheckpoint = ${Math.max(1, Math.round((2000 * 4096) / (index.pragma('page_size', { simple: true }) as number)))}`);
index.pragma(`journal_size_limit = ${8 * 1048576}`);
for (const ddl of INDEX_FILE_DDL) index.exec(ddl);

const store = new Database(data.store, { readonly: true, fileMustExist: true });

const cursorOf = (): number => (index.prepare('SELECT position FROM index_cursor WHERE id = 1').pluck().get() as number | undefined) ?? 0;
const setCursor = index.prepare('INSERT INTO index_cursor (id, position) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET position = excluded.position');
let cursor = cursorOf();
const last = (store.prepare('SELECT MAX(rowid) FROM batch_headers').pluck().get() as number | null) ?? 0;
let rebuilt = false;
if (cursor > last || (cursor === 0 && (index.prepare('SELECT EXISTS (SELECT 1 FROM samples)').pluck().get() as number) === 1)) {
  // an index ahead of the store (the store restored from a copy, or another store's index): built again from scratch
  index.transaction(() => {
    for (const table of ['samples', 'streams', 'gateway_ids', 'index_cursor']) index.exec(`DELETE FROM ${table}`);
  })();
  cursor = 0;
  rebuilt = true;
}
const writer = indexWriter(index);
const batches = store.prepare(
  'SELECT rowid AS position, gateway, first_seq AS firstSeq, count, records FROM batch_headers WHERE rowid > ? ORDER BY rowid LIMIT ?',
);
let legacy: Database.Statement | undefined;

/** A batch stored before records were kept (migration 0005): its rows from the store's own index. */
function legacyRows(gateway: string, firstSeq: number, count: number): Sample[] {
  let statement = legacy;
  if (statement === undefined) {
    try {
      statement = store.prepare(
        'SELECT seq, instrument, channel, ts, value_num AS num, value_text AS text, value_kind AS kind, unit, quality, reason FROM measurements WHERE gateway = ? AND seq >= ? AND seq < ? ORDER BY seq',
      );
    } catch {
      // a store without its own per-sample tables: nothing to read
      return [];
    }
    legacy = statement;
  }
  return (
    statement.all(gateway, firstSeq, firstSeq + count) as {
      seq: number;
      instrument: string;
      channel: string;
      ts: number;
      num: number | null;
      text: string | null;
      kind: string;
      unit: string;
      quality: Sample['quality'];
      reason: string | null;
    }[]
  ).map((r) => ({
    seq: r.seq,
    instrument: r.instrument,
    channel: r.channel,
    ts: r.ts,
    value: r.kind === 'number' ? r.num : r.kind === 'boolean' ? r.num === 1 : r.kind === 'string' ? r.text : null,
    unit: r.unit,
    quality: r.quality,
    ...(r.reason === null ? {} : { reason: r.reason }),
  }));
}

/** Indexes one slice of the committed batches after the cursor; returns whether any was found. */
function slice(): boolean {
  const groups: IndexGroup[] = [];
  let done = 0;
  let position = cursor;
  // pages of batches until about sliceSamples records
  page: while (done < data.sliceSamples) {
    const rows = batches.all(position, 256) as { position: number; gateway: string; firstSeq: number; count: number; records: Buffer | null }[];
    for (const row of rows) {
      const samples = row.records === null ? legacyRows(row.gateway, row.firstSeq, row.count) : decodeRecords(row.records);
      groups.push({ gateway: row.gateway, samples });
      done += samples.length;
      position = row.position;
      if (done >= data.sliceSamples) break page;
    }
    if (rows.length < 256) break;
  }
  if (position === cursor) return false;
  try {
    index.transaction(() => {
      writer.insert(groups);
      setCursor.run(position);
    })();
  } catch (err) {
    writer.forget();
    throw err;
  }
  cursor = position;
  port.postMessage({ type: 'indexed', position, samples: done } satisfies FromIndexWorker);
  return true;
}

let scheduled = false;
let stopping = false;
let retry: NodeJS.Timeout | undefined;

/** Slices until nothing committed is left, one per turn of the thread's event loop (a stop is heard in between). */
function run(): void {
  scheduled = false;
  if (stopping) return;
  let more: boolean;
  try {
    more = slice();
  } catch (err) {
    port.postMessage({ type: 'failed', error: (err as Error).message } satisfies FromIndexWorker);
    // tried again a moment later (a full disk, an I/O error); the cursor is where the last commit left it
    retry = setTimeout(() => {
      retry = undefined;
      wake();
    }, 1000);
    return;
  }
  if (more) wake();
}

function wake(): void {
  if (scheduled || stopping || retry !== undefined) return;
  scheduled = true;
  setImmediate(run);
}

port.on('message', (message: ToIndexWorker) => {
  if (message.type === 'wake') wake();
  else {
    stopping = true;
    if (retry !== undefined) clearTimeout(retry);
    store.close();
    index.close();
    // ends this thread only
    process.exit(0);
  }
});

port.postMessage({ type: 'ready', position: cursor, rebuilt } satisfies FromIndexWorker);
wake();
