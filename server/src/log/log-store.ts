// The transparency log's store, asynchronous and written once in Kysely for SQLite and PostgreSQL: the same RFC 6962 /
// RFC 9162 tree, tables (log_entries, log_hashes, log_checkpoints) and C2SP checkpoints as transparency-log.ts, so that
// the same entries give byte-identical roots, proofs and checkpoints (test/log/log-store.test.ts).
//
// One log across several nodes sharing one PostgreSQL: an append runs inside the caller's transaction (the batch, the
// audit entry or the key event and its leaf commit together or not at all). It takes pg_advisory_xact_lock(LOG_LOCK_KEY)
// first, so that appends from every node are serialized until that transaction ends, and then reads the tree size and
// the subtree hashes it continues from the table, never from memory (another node may have grown the tree since). On
// SQLite the write transaction serializes appends already (one process, one connection). The index of an entry is
// also the table's primary key: an index can be neither given twice nor skipped. A checkpoint is signed by whichever
// node holds the lock, for the size it reads from the table and the root it computes from the table; the checkpoint
// table is keyed by size. Nothing of the tree is kept in memory: every node answers from the table.
//
// What remains before this replaces TransparencyLog (the server does not run on PostgreSQL yet):
// - the ingest's PostgreSQL path appends here, last in its batch's transaction (ingest/ingest.ts); the audit trail's
//   anchoring (audit/audit-trail.ts) and the key registry (trust/key-registry.ts) still append through the
//   synchronous TransparencyLog inside their better-sqlite3 transactions, and must move to a Kysely transaction that
//   calls `append(trx, ...)`, as late in the transaction as it can (the lock is held until the transaction ends);
// - the routes (log/log-routes.ts) and the measurement proofs (log/measurement-proof.ts) read through `LogReader`
//   (log/log-reader.ts), which this store is; the checkpoint job (server.ts's housekeeping: maybeCheckpoint) and the
//   certificates' checkpoint (certificates/certificates.ts) must still await these methods; the job should run on
//   one node (a lease), though two nodes running it at once sign nothing twice;
// - TransparencyLog keeps the upper levels of the tree in memory for fast proofs; this store reads O(log n) rows per
//   proof in one query. A cache of committed hashes (they never change) can come back if proofs need it.
import { sql, type Kysely, type Transaction } from 'kysely';
import {
  CompactTree,
  LabtraceError,
  bytesEqual,
  consistencyProof,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatVerifierKey,
  inclusionProof,
  leafHash,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  rootAt,
  signCheckpoint,
  signNote,
  toHex,
  type HashReader,
  type NoteSigner,
  type SignerKey,
} from '@labtrace/protocols';
import { dialectOf, type SqlDialect } from '../store/portable-ddl.js';
import type { Tables } from '../store/tables.js';
import {
  LOG_ENTRY_KINDS,
  MAX_ENTRIES_PER_READ,
  MAX_ENTRY_BYTES,
  type LogEntry,
  type LogEntryKind,
  type StoredCheckpoint,
  type TransparencyLogOptions,
} from './transparency-log.js';

/**
 * The key of the PostgreSQL advisory lock that serializes appends and checkpoints ("lt-tlog1" in ASCII). One log per
 * database: a lab's store holds one transparency log.
 */
export const LOG_LOCK_KEY = '7814921231453349681';

/** rows per multi-row INSERT (5 columns x 500 = 2,500 parameters: under SQLite's and PostgreSQL's limits) */
const ROWS_PER_INSERT = 500;
/** (level, index) pairs per read of hashes */
const HASHES_PER_READ = 400;
const HASH_BYTES = 32;

type Db = Kysely<Tables>;

export class LogStore {
  readonly origin: string;
  readonly minCheckpointIntervalMs: number;
  readonly dialect: SqlDialect;
  readonly #signer: NoteSigner;
  readonly #key: SignerKey;

  constructor(
    private readonly db: Db,
    options: TransparencyLogOptions,
  ) {
    const interval = options.minCheckpointIntervalMs ?? 1000;
    if (!Number.isSafeInteger(interval) || interval < 0) {
      throw new LabtraceError('E_CONFIG', `transparency log: minCheckpointIntervalMs: ${String(interval)} is not a whole number of ms >= 0`);
    }
    if (options.origin === '' || /[\s\u0085]/u.test(options.origin)) {
      throw new LabtraceError('E_CONFIG', `transparency log: origin: "${options.origin}" must be one non-empty word (a schema-less URL)`);
    }
    this.origin = options.origin;
    this.minCheckpointIntervalMs = interval;
    this.#key = options.signer;
    this.#signer = ed25519NoteSigner(options.signer);
    this.dialect = dialectOf(db as Kysely<unknown>);
  }

  /**
   * Checks that the latest stored checkpoint is this log's (origin and key) and that the stored tree still has its
   * root. A store without a checkpoint gets one (of the tree it holds, the empty tree for a new store), signed under
   * the lock so that two nodes opening a new store at once sign one.
   */
  async open(now = Date.now()): Promise<void> {
    const latest = await latestCheckpointRow(this.db);
    if (latest !== undefined) {
      await this.#checkStored(latest);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      await this.#lock(trx);
      if ((await latestCheckpointRow(trx)) === undefined) await this.#sign(trx, await storedSize(trx), now);
    });
  }

  /** The log key in the C2SP verifier-key form, `name+keyid+base64(0x01 || public key)`. */
  verifierKey(): string {
    return formatVerifierKey(this.#key.name, this.#key.publicKey);
  }

  /** Signs a note other than a checkpoint with the log key (a C2SP signed note): an export bundle's statement. */
  signNote(text: string): string {
    return signNote(text, [this.#signer]);
  }

  /**
   * Appends entries of one kind inside the caller's transaction and returns the index of the first: they are stored
   * if the transaction commits, and leave nothing if it rolls back. On PostgreSQL the transaction holds the log's
   * advisory lock from here until it ends (appends from every node wait for it meanwhile); it must be READ COMMITTED
   * (PostgreSQL's default), so that the size read after the lock is the one the previous holder committed. A failed
   * append leaves the caller's transaction to roll back.
   */
  async append(trx: Transaction<Tables>, kind: LogEntryKind, entries: readonly Uint8Array[], at = Date.now()): Promise<number> {
    if (!(LOG_ENTRY_KINDS as readonly string[]).includes(kind)) bad(`kind: "${String(kind)}" is not one of ${LOG_ENTRY_KINDS.join(', ')}`);
    if (!Array.isArray(entries) || entries.length === 0) bad('entries: expected a non-empty array of byte arrays');
    entries.forEach((data, i) => {
      if (!(data instanceof Uint8Array)) bad(`entries[${i}]: expected a Uint8Array`);
      if (data.length > MAX_ENTRY_BYTES) bad(`entries[${i}]: ${data.length} bytes is more than the ${MAX_ENTRY_BYTES} an entry may have`);
    });
    if (!Number.isSafeInteger(at) || at < 0) bad(`at: ${String(at)} is not a time in ms since the epoch`);
    if (!(trx as Kysely<Tables>).isTransaction) {
      throw new LabtraceError('E_STORE', "transparency log: append runs inside the caller's transaction (db.transaction().execute(...))");
    }
    await this.#lock(trx);
    const first = await storedSize(trx);
    const tree = await withHashes(trx, (read) => CompactTree.restore(first, read));
    const entryRows: { idx: number; kind: string; data: Buffer; leaf: Buffer; at: number }[] = [];
    const hashRows: { level: number; idx: number; hash: Uint8Array }[] = [];
    for (const data of entries as readonly Uint8Array[]) {
      const leaf = leafHash(data);
      const index = tree.size;
      const completed = tree.append(leaf);
      entryRows.push({ idx: index, kind, data: toBuffer(data), leaf: toBuffer(leaf), at });
      // completed[0] is the leaf itself, kept with the entry
      for (const s of completed.slice(1)) hashRows.push({ level: s.level, idx: s.index, hash: s.hash });
    }
    for (let i = 0; i < entryRows.length; i += ROWS_PER_INSERT)
      await trx
        .insertInto('log_entries')
        .values(entryRows.slice(i, i + ROWS_PER_INSERT))
        .execute();
    for (let i = 0; i < hashRows.length; i += ROWS_PER_INSERT)
      await trx
        .insertInto('log_hashes')
        .values(hashRows.slice(i, i + ROWS_PER_INSERT).map((r) => ({ ...r, hash: toBuffer(r.hash) })))
        .execute();
    return first;
  }

  /**
   * Signs a checkpoint of the stored tree if it has grown since the latest stored checkpoint and that one is at least
   * `minCheckpointIntervalMs` old; returns whether it did. Runs in a transaction of its own under the log's lock, so
   * that whichever node calls it signs what the table holds: call it outside any transaction (on SQLite, where the
   * store has one connection, from inside one it would wait for itself).
   */
  async maybeCheckpoint(now = Date.now()): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await this.#lock(trx);
      const latest = await latestCheckpointRow(trx);
      const size = await storedSize(trx);
      if (latest !== undefined) {
        if (size <= latest.size) return false;
        // a clock set back does not hold checkpoints back until it catches up
        if (now >= latest.at && now - latest.at < this.minCheckpointIntervalMs) return false;
      }
      await this.#sign(trx, size, now);
      return true;
    });
  }

  /** The latest signed checkpoint (a signed note), after signing a new one if one is due (see `maybeCheckpoint`). */
  async checkpoint(now = Date.now()): Promise<string> {
    await this.maybeCheckpoint(now);
    return (await this.latestCheckpoint()).note;
  }

  /** The latest signed checkpoint, without signing. */
  async latestCheckpoint(): Promise<StoredCheckpoint> {
    const latest = await latestCheckpointRow(this.db);
    if (latest === undefined) throw new Error('transparency log: no checkpoint (open() signs the first)');
    return latest;
  }

  /** The checkpoint signed at this tree size, if one was. */
  async checkpointAt(size: number): Promise<StoredCheckpoint | undefined> {
    checkCount(size, 'size');
    const row = await this.db.selectFrom('log_checkpoints').select(['size', 'note', 'at']).where('size', '=', size).executeTakeFirst();
    return row === undefined ? undefined : checkpointOf(row);
  }

  /** The number of entries (committed ones, as the table holds them now). */
  async size(): Promise<number> {
    return storedSize(this.db);
  }

  /** Root of the tree of the first `size` entries (default: all). */
  async root(size?: number): Promise<Uint8Array> {
    const n = size === undefined ? await this.size() : await this.#checkSize(size, 'size');
    return withHashes(this.db, (read) => rootAt(n, read));
  }

  /** The leaf hash of entry `index`. */
  async leafHash(index: number): Promise<Uint8Array> {
    checkIndex(index, await this.size(), 'index');
    return this.#hash(0, index);
  }

  /** Inclusion proof of entry `index` in the tree of the first `size` entries (RFC 9162 section 2.1.3). */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    await this.#checkSize(size, 'size');
    checkIndex(index, size, 'index');
    return withHashes(this.db, (read) => inclusionProof(index, size, read));
  }

  /** Consistency proof from the tree of the first `from` entries to that of the first `to` (RFC 9162 section 2.1.4). */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    await this.#checkSize(to, 'to');
    checkCount(from, 'from');
    if (from === 0) bad('from: must be at least 1 (a consistency proof from the empty tree proves nothing)');
    if (from > to) bad(`from: ${from} is larger than to (${to})`);
    return withHashes(this.db, (read) => consistencyProof(from, to, read));
  }

  /** Entries [start, end), at most MAX_ENTRIES_PER_READ of them. */
  async entries(start: number, end: number): Promise<LogEntry[]> {
    checkCount(start, 'start');
    await this.#checkSize(end, 'end');
    if (start > end) bad(`start: ${start} is larger than end (${end})`);
    if (end - start > MAX_ENTRIES_PER_READ) bad(`end: at most ${MAX_ENTRIES_PER_READ} entries per call, [${start}, ${end}) has ${end - start}`);
    const rows = await this.db
      .selectFrom('log_entries')
      .select(['idx', 'kind', 'data', 'at'])
      .where('idx', '>=', start)
      .where('idx', '<', end)
      .orderBy('idx')
      .execute();
    return rows.map((row) => ({ index: count(row.idx), kind: row.kind as LogEntryKind, data: row.data, at: count(row.at) }));
  }

  /** On PostgreSQL: the log's lock until the transaction ends, and READ COMMITTED (see `append`). */
  async #lock(trx: Transaction<Tables>): Promise<void> {
    if (this.dialect !== 'postgres') return;
    // its own statement: under READ COMMITTED each statement reads what was committed when it starts, and the next
    // ones start once the lock is held, after the previous holder committed
    await sql`SELECT pg_advisory_xact_lock(${sql.raw(LOG_LOCK_KEY)}::bigint)`.execute(trx);
    const { rows } = await sql<{ isolation: string }>`SELECT current_setting('transaction_isolation') AS isolation`.execute(trx);
    const isolation = rows[0]?.isolation;
    if (isolation !== 'read committed') {
      throw new LabtraceError(
        'E_STORE',
        `transparency log: appends and checkpoints run in a READ COMMITTED transaction (this one is ${String(isolation)}), so that they read the tree the previous lock holder committed`,
      );
    }
  }

  async #sign(trx: Transaction<Tables>, size: number, now: number): Promise<void> {
    const rootHash = await withHashes(trx, (read) => rootAt(size, read));
    const note = signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, [this.#signer]);
    await trx.insertInto('log_checkpoints').values({ size, note, at: now }).execute();
  }

  async #hash(level: number, index: number): Promise<Uint8Array> {
    const found = await readHashes(this.db, [{ level, index }]);
    const hash = found.get(key(level, index));
    if (hash === undefined)
      throw new LabtraceError('E_STORE', `transparency log: the hash at level ${level}, index ${index} is missing from the store`);
    return hash;
  }

  async #checkSize(size: number, name: string): Promise<number> {
    checkCount(size, name);
    const treeSize = await this.size();
    if (size > treeSize) bad(`${name}: ${size} is larger than the tree size (${treeSize})`);
    return size;
  }

  /** The latest stored checkpoint must be this log's, by this key, and agree with the stored tree. */
  async #checkStored(stored: StoredCheckpoint): Promise<void> {
    const checkpoint = parseCheckpoint(parseNote(stored.note).text);
    if (checkpoint.origin !== this.origin) {
      throw new LabtraceError(
        'E_CONFIG',
        `transparency log: the store holds the log "${checkpoint.origin}", not "${this.origin}"; a log's origin cannot change`,
      );
    }
    try {
      openCheckpoint(stored.note, [ed25519NoteVerifier(this.#key)]);
    } catch {
      throw new LabtraceError(
        'E_CONFIG',
        `transparency log: the latest checkpoint of "${this.origin}" is not signed by the configured log key ${this.verifierKey()}`,
      );
    }
    const size = await this.size();
    if (checkpoint.size > size) {
      throw new LabtraceError(
        'E_STORE',
        `transparency log: a checkpoint was signed at size ${checkpoint.size} but the store holds ${size} entries; the store was rolled back`,
      );
    }
    const root = await withHashes(this.db, (read) => rootAt(checkpoint.size, read));
    if (!bytesEqual(root, checkpoint.rootHash)) {
      throw new LabtraceError(
        'E_STORE',
        `transparency log: the stored tree of size ${checkpoint.size} has root ${toHex(root)}, its checkpoint says ${toHex(checkpoint.rootHash)}`,
      );
    }
  }
}

/** The number of entries the table holds, as this connection or transaction sees it. */
async function storedSize(db: Db): Promise<number> {
  const row = await db
    .selectFrom('log_entries')
    .select((eb) => eb.fn.max('idx').as('last'))
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 0 : count(row.last) + 1;
}

async function latestCheckpointRow(db: Db): Promise<StoredCheckpoint | undefined> {
  const row = await db.selectFrom('log_checkpoints').select(['size', 'note', 'at']).orderBy('size', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? undefined : checkpointOf(row);
}

function checkpointOf(row: { size: unknown; note: string; at: unknown }): StoredCheckpoint {
  return { size: count(row.size), note: row.note, at: count(row.at) };
}

const key = (level: number, index: number): string => `${level}/${index}`;
/** what a read gives while the hashes a computation needs are being found out (its value is never used) */
const PLACEHOLDER = new Uint8Array(HASH_BYTES);

/**
 * Runs a computation over the tree's hashes (CompactTree.restore, rootAt, a proof), which reads them synchronously,
 * with the hashes it needs read from the store first: a first run finds out which (level, index) it asks for, one
 * query reads them all, and the run is repeated with them. A subtree hash that is not stored is computed from its
 * children, which the next round reads. Usually one query: O(log n) rows.
 */
async function withHashes<T>(db: Db, compute: (read: HashReader) => T): Promise<T> {
  const known = new Map<string, Uint8Array | null>();
  for (;;) {
    const wanted = new Map<string, { level: number; index: number }>();
    const result = compute((level, index) => {
      const k = key(level, index);
      const hash = known.get(k);
      if (hash !== undefined) return hash ?? undefined;
      wanted.set(k, { level, index });
      return PLACEHOLDER;
    });
    if (wanted.size === 0) return result;
    const found = await readHashes(db, [...wanted.values()]);
    for (const [k] of wanted) known.set(k, found.get(k) ?? null);
  }
}

/** The stored hashes at these places: leaf hashes (level 0) from log_entries, subtree hashes from log_hashes. */
async function readHashes(db: Db, places: readonly { level: number; index: number }[]): Promise<Map<string, Uint8Array>> {
  const found = new Map<string, Uint8Array>();
  const leaves = places.filter((p) => p.level === 0).map((p) => p.index);
  const subtrees = places.filter((p) => p.level > 0);
  for (let i = 0; i < leaves.length; i += HASHES_PER_READ) {
    const rows = await db
      .selectFrom('log_entries')
      .select(['idx', 'leaf'])
      .where('idx', 'in', leaves.slice(i, i + HASHES_PER_READ))
      .execute();
    for (const row of rows) found.set(key(0, count(row.idx)), row.leaf);
  }
  for (let i = 0; i < subtrees.length; i += HASHES_PER_READ) {
    const chunk = subtrees.slice(i, i + HASHES_PER_READ);
    const rows = await db
      .selectFrom('log_hashes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(chunk.map((p) => eb.and([eb('level', '=', p.level), eb('idx', '=', p.index)]))))
      .execute();
    for (const row of rows) found.set(key(count(row.level), count(row.idx)), row.hash);
  }
  return found;
}

/** A whole number from the store (a number on both drivers through openStore; a string from a pg pool without its int8 parser). */
function count(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' || typeof value === 'bigint' ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new LabtraceError('E_STORE', `transparency log: ${String(value)} read from the store is not a whole number`);
  return n;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) bad(`${name}: ${String(value)} is not a whole number >= 0`);
}

function checkIndex(index: number, size: number, name: string): void {
  checkCount(index, name);
  if (index >= size) bad(`${name}: ${index} is not less than the tree size ${size}`);
}

function bad(message: string): never {
  throw new LabtraceError('E_BAD_REQUEST', message);
}
