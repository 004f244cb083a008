// The lab's transparency log: an append-only RFC 6962 / RFC 9162 Merkle tree of verified batch headers and key
// and certificate events, kept in the SQLite store, with C2SP checkpoints signed by the lab's log key.
// Each entry stores its leaf data and the perfect subtree hashes it completes, so that a restart continues the same
// tree and any proof takes O(log n) reads.
import type { Statement } from 'better-sqlite3';
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
import type { LabDatabase } from '../store/database.js';

export const LOG_ENTRY_KINDS = ['batch-header', 'key-event', 'certificate-event', 'audit-event', 'retention'] as const;
export type LogEntryKind = (typeof LOG_ENTRY_KINDS)[number];

/** At most this many entries per `entries` call (and per HTTP request). */
export const MAX_ENTRIES_PER_READ = 1000;
/** Leaf data larger than this is refused: entries are headers and events, and `entries` returns up to 1,000 at once. */
export const MAX_ENTRY_BYTES = 64 * 1024;

export interface LogEntry {
  index: number;
  kind: LogEntryKind;
  data: Uint8Array;
  /** when it was appended, ms since the epoch */
  at: number;
}

export interface StoredCheckpoint {
  size: number;
  /** the signed note */
  note: string;
  /** when it was signed, ms since the epoch */
  at: number;
}

export interface TransparencyLogOptions {
  /** The log's name in its checkpoints, a schema-less URL such as `labtrace.example/<lab>`. */
  origin: string;
  /** The lab's log key (from `parseSignerKey`). */
  signer: SignerKey;
  /** A new checkpoint is signed at most this often (default 1000 ms). */
  minCheckpointIntervalMs?: number;
}

// Subtree hashes at level `memoryLevel` and above are also kept in memory, one flat array per level, so that a
// proof reads only its lowest levels from the store. The level is the lowest (at least MIN_MEMORY_LEVEL) whose
// hashes fit in MEMORY_BUDGET bytes; it rises as the log grows. Stored hashes never change, and a hash in memory
// counts only below the tree's size, so a rolled-back append leaves nothing stale behind.
const HASH_BYTES = 32;
const MIN_MEMORY_LEVEL = 1;
const MEMORY_BUDGET = 32 * 2 ** 20;

/** rows per multi-row INSERT when appending (5 columns x 64 = 320 parameters, well under SQLite's limit) */
const ROWS_PER_INSERT = 64;

interface Statements {
  lastIndex: Statement<[], number | null>;
  insertEntry: Statement<[number, string, Uint8Array, Uint8Array, number]>;
  insertHash: Statement<[number, number, Uint8Array]>;
  /** ROWS_PER_INSERT rows in one statement: one call into SQLite instead of one per row */
  insertEntries: Statement<unknown[]>;
  insertHashes: Statement<unknown[]>;
  selectHash: Statement<[number, number], Buffer>;
  selectLeaf: Statement<[number], Buffer>;
  selectEntries: Statement<[number, number], { idx: number; kind: string; data: Buffer; at: number }>;
  insertCheckpoint: Statement<[number, string, number]>;
  latestCheckpoint: Statement<[], { size: number; note: string; at: number }>;
  checkpointAt: Statement<[number], { size: number; note: string; at: number }>;
}

export class TransparencyLog {
  readonly origin: string;
  readonly minCheckpointIntervalMs: number;
  readonly #signer: NoteSigner;
  readonly #key: SignerKey;
  #statements: Statements | undefined;
  #tree = new CompactTree();
  #latest: StoredCheckpoint | undefined;
  /** the hashes of each level >= #memoryLevel, `HASH_BYTES` each, valid below size / 2^level */
  #memory: Uint8Array[] = [];
  #memoryLevel = MIN_MEMORY_LEVEL;
  /** entries were appended inside a transaction that may yet roll back (see #sync) */
  #unsettled = false;
  #appendTx: ((kind: LogEntryKind, entries: readonly Uint8Array[], at: number) => void) | undefined;

  constructor(
    private readonly database: LabDatabase,
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
  }

  /**
   * Continues the tree stored in the database and loads the latest checkpoint, after checking that it is this
   * log's (origin and key) and that the stored tree still has its root. The first open signs a checkpoint of the
   * empty tree, so that there is always one to serve.
   */
  open(now = Date.now()): void {
    const sqlite = this.database.sqlite;
    this.#statements = {
      lastIndex: sqlite.prepare<[], number | null>('SELECT max(idx) FROM log_entries').pluck(),
      insertEntry: sqlite.prepare('INSERT INTO log_entries (idx, kind, data, leaf, at) VALUES (?, ?, ?, ?, ?)'),
      insertHash: sqlite.prepare('INSERT INTO log_hashes (level, idx, hash) VALUES (?, ?, ?)'),
      insertEntries: sqlite.prepare(
        `INSERT INTO log_entries (idx, kind, data, leaf, at) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?, ?)').join(', ')}`,
      ),
      insertHashes: sqlite.prepare(`INSERT INTO log_hashes (level, idx, hash) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?)').join(', ')}`),
      selectHash: sqlite.prepare<[number, number], Buffer>('SELECT hash FROM log_hashes WHERE level = ? AND idx = ?').pluck(),
      selectLeaf: sqlite.prepare<[number], Buffer>('SELECT leaf FROM log_entries WHERE idx = ?').pluck(),
      selectEntries: sqlite.prepare('SELECT idx, kind, data, at FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      insertCheckpoint: sqlite.prepare('INSERT INTO log_checkpoints (size, note, at) VALUES (?, ?, ?)'),
      latestCheckpoint: sqlite.prepare('SELECT size, note, at FROM log_checkpoints ORDER BY size DESC LIMIT 1'),
      checkpointAt: sqlite.prepare('SELECT size, note, at FROM log_checkpoints WHERE size = ?'),
    };
    const statements = this.#statements;
    this.#appendTx = sqlite.transaction((kind: LogEntryKind, entries: readonly Uint8Array[], at: number) => {
      // rows gathered and written ROWS_PER_INSERT at a time, the rest one by one
      const entryRows: unknown[] = [];
      const hashRows: unknown[] = [];
      const flush = (rows: unknown[], columns: number, many: Statement<unknown[]>, one: Statement<never[]>, all: boolean): void => {
        const chunk = ROWS_PER_INSERT * columns;
        let at = 0;
        for (; rows.length - at >= chunk; at += chunk) many.run(...rows.slice(at, at + chunk));
        if (all) for (; at < rows.length; at += columns) one.run(...(rows.slice(at, at + columns) as never[]));
        rows.splice(0, at);
      };
      for (const data of entries) {
        const index = this.#tree.size;
        const leaf = leafHash(data);
        const completed = this.#tree.append(leaf);
        entryRows.push(index, kind, data, leaf, at);
        // completed[0] is the leaf itself, kept with the entry
        for (let i = 1; i < completed.length; i++) {
          const s = completed[i];
          if (s === undefined) continue;
          hashRows.push(s.level, s.index, s.hash);
          if (s.level >= this.#memoryLevel) this.#remember(s.level, s.index, s.hash);
        }
        if (entryRows.length >= ROWS_PER_INSERT * 5) flush(entryRows, 5, statements.insertEntries, statements.insertEntry, false);
        if (hashRows.length >= ROWS_PER_INSERT * 3) flush(hashRows, 3, statements.insertHashes, statements.insertHash, false);
      }
      flush(entryRows, 5, statements.insertEntries, statements.insertEntry, true);
      flush(hashRows, 3, statements.insertHashes, statements.insertHash, true);
    });
    this.#restore();
    const latest = statements.latestCheckpoint.get();
    if (latest !== undefined) this.#checkStored(latest);
    this.#latest = latest;
    if (latest === undefined) this.#sign(now);
  }

  /** The number of entries. */
  get size(): number {
    this.#sync();
    return this.#tree.size;
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
   * Appends entries of one kind and returns the index of the first. One transaction: inside the caller's
   * transaction it is a savepoint, so the entries are stored, or rolled back, with what the caller stores.
   */
  append(kind: LogEntryKind, entries: readonly Uint8Array[], at = Date.now()): number {
    const appendTx = this.#opened().appendTx;
    if (!(LOG_ENTRY_KINDS as readonly string[]).includes(kind)) bad(`kind: "${String(kind)}" is not one of ${LOG_ENTRY_KINDS.join(', ')}`);
    if (!Array.isArray(entries) || entries.length === 0) bad('entries: expected a non-empty array of byte arrays');
    entries.forEach((data, i) => {
      if (!(data instanceof Uint8Array)) bad(`entries[${i}]: expected a Uint8Array`);
      if (data.length > MAX_ENTRY_BYTES) bad(`entries[${i}]: ${data.length} bytes is more than the ${MAX_ENTRY_BYTES} an entry may have`);
    });
    if (!Number.isSafeInteger(at) || at < 0) bad(`at: ${String(at)} is not a time in ms since the epoch`);
    this.#sync();
    const first = this.#tree.size;
    // inside the caller's transaction the entries are stored only if it commits: until the store is seen
    // outside any transaction, the tree in memory is checked against it before use
    if (this.database.sqlite.inTransaction) this.#unsettled = true;
    try {
      appendTx(kind, entries, at);
    } catch (err) {
      // the savepoint is rolled back: so is the tree in memory
      this.#restore();
      throw err;
    }
    return first;
  }

  /**
   * Signs a checkpoint of the current tree if it has grown since the latest one and that one is at least
   * `minCheckpointIntervalMs` old; returns whether it did. Call it after the appends are committed: inside a
   * transaction it throws, since a signed checkpoint of a tree that is then rolled back would be a fork.
   */
  maybeCheckpoint(now = Date.now()): boolean {
    this.#opened();
    if (this.database.sqlite.inTransaction) {
      throw new LabtraceError('E_STORE', 'transparency log: a checkpoint is signed only outside a transaction, once the entries are committed');
    }
    this.#sync();
    const latest = this.#latest;
    if (latest !== undefined) {
      if (this.#tree.size <= latest.size) return false;
      // a clock set back does not hold checkpoints back until it catches up
      if (now >= latest.at && now - latest.at < this.minCheckpointIntervalMs) return false;
    }
    this.#sign(now);
    return true;
  }

  /** The latest signed checkpoint (a signed note), after signing a new one if one is due (see `maybeCheckpoint`). */
  checkpoint(now = Date.now()): string {
    if (!this.database.sqlite.inTransaction) this.maybeCheckpoint(now);
    return this.latestCheckpoint().note;
  }

  /** The latest signed checkpoint, without signing. */
  latestCheckpoint(): StoredCheckpoint {
    this.#opened();
    const latest = this.#latest;
    if (latest === undefined) throw new Error('transparency log: no checkpoint (open() signs the first)');
    return latest;
  }

  /** The checkpoint signed at this tree size, if one was. */
  checkpointAt(size: number): StoredCheckpoint | undefined {
    const { statements } = this.#opened();
    checkCount(size, 'size');
    return statements.checkpointAt.get(size);
  }

  /** Root of the tree of the first `size` entries (default: all). */
  root(size?: number): Uint8Array {
    this.#opened();
    this.#sync();
    if (size === undefined || size === this.#tree.size) return this.#tree.root();
    this.#checkSize(size, 'size');
    return rootAt(size, this.#read);
  }

  /** The leaf hash of entry `index`. */
  leafHash(index: number): Uint8Array {
    this.#opened();
    this.#checkIndex(index, this.size, 'index');
    return this.#hash(0, index);
  }

  /** Inclusion proof of entry `index` in the tree of the first `size` entries (RFC 9162 section 2.1.3). */
  inclusionProof(index: number, size: number): Uint8Array[] {
    this.#opened();
    this.#checkSize(size, 'size');
    this.#checkIndex(index, size, 'index');
    return inclusionProof(index, size, this.#read);
  }

  /** Consistency proof from the tree of the first `from` entries to that of the first `to` (RFC 9162 section 2.1.4). */
  consistencyProof(from: number, to: number): Uint8Array[] {
    this.#opened();
    this.#checkSize(to, 'to');
    checkCount(from, 'from');
    if (from === 0) bad('from: must be at least 1 (a consistency proof from the empty tree proves nothing)');
    if (from > to) bad(`from: ${from} is larger than to (${to})`);
    return consistencyProof(from, to, this.#read);
  }

  /** Entries [start, end), at most MAX_ENTRIES_PER_READ of them. */
  entries(start: number, end: number): LogEntry[] {
    const { statements } = this.#opened();
    checkCount(start, 'start');
    this.#checkSize(end, 'end');
    if (start > end) bad(`start: ${start} is larger than end (${end})`);
    if (end - start > MAX_ENTRIES_PER_READ) bad(`end: at most ${MAX_ENTRIES_PER_READ} entries per call, [${start}, ${end}) has ${end - start}`);
    return statements.selectEntries.all(start, end).map((row) => ({ index: row.idx, kind: row.kind as LogEntryKind, data: row.data, at: row.at }));
  }

  #opened(): { statements: Statements; appendTx: (kind: LogEntryKind, entries: readonly Uint8Array[], at: number) => void } {
    if (this.#statements === undefined || this.#appendTx === undefined) throw new Error('transparency log: call open() first');
    return { statements: this.#statements, appendTx: this.#appendTx };
  }

  /** The stored size; differs from the tree in memory only after a transaction around an append was rolled back. */
  #storedSize(): number {
    const last = this.#opened().statements.lastIndex.get();
    return last === null || last === undefined ? 0 : last + 1;
  }

  #sync(): void {
    // the tree in memory is the stored one unless entries were appended inside a transaction not yet seen to end
    const inTransaction = this.database.sqlite.inTransaction;
    if (!this.#unsettled && !inTransaction) return;
    if (this.#storedSize() !== this.#tree.size) this.#restore();
    if (!inTransaction) this.#unsettled = false;
  }

  #restore(): void {
    const size = this.#storedSize();
    if (this.#memory.length === 0) this.#load(size);
    this.#tree = CompactTree.restore(size, this.#read);
  }

  /** Loads the levels kept in memory from the store. */
  #load(size: number): void {
    let level = MIN_MEMORY_LEVEL;
    while (memoryBytes(size, level) > MEMORY_BUDGET) level++;
    this.#memoryLevel = level;
    this.#memory = [];
    const rows = this.database.sqlite
      .prepare<[number], [number, number, Buffer]>('SELECT level, idx, hash FROM log_hashes WHERE level >= ?')
      .raw()
      .iterate(level);
    for (const [l, index, hash] of rows) this.#remember(l, index, hash);
  }

  #remember(level: number, index: number, hash: Uint8Array): void {
    let hashes = this.#memory[level];
    const end = (index + 1) * HASH_BYTES;
    if (hashes === undefined || hashes.length < end) {
      const grown = new Uint8Array(Math.max(end, 2 * (hashes?.length ?? 0), 64 * HASH_BYTES));
      if (hashes !== undefined) grown.set(hashes);
      hashes = grown;
      this.#memory[level] = hashes;
    }
    hashes.set(hash, index * HASH_BYTES);
    // the log has outgrown the budget: the lowest level in memory is read from the store from now on
    if (index === 0 && level > this.#memoryLevel && memoryBytes(2 ** level, this.#memoryLevel) > MEMORY_BUDGET) {
      this.#memory[this.#memoryLevel] = new Uint8Array(0);
      this.#memoryLevel++;
    }
  }

  readonly #read: HashReader = (level, index) => {
    if (level >= this.#memoryLevel && index < Math.floor(this.#tree.size / 2 ** level)) {
      const hashes = this.#memory[level];
      if (hashes !== undefined && hashes.length >= (index + 1) * HASH_BYTES) return hashes.slice(index * HASH_BYTES, (index + 1) * HASH_BYTES);
    }
    const { statements } = this.#opened();
    return level === 0 ? statements.selectLeaf.get(index) : statements.selectHash.get(level, index);
  };

  #hash(level: number, index: number): Uint8Array {
    const hash = this.#read(level, index);
    if (hash === undefined)
      throw new LabtraceError('E_STORE', `transparency log: the hash at level ${level}, index ${index} is missing from the store`);
    return hash;
  }

  #sign(now: number): void {
    const { statements } = this.#opened();
    const size = this.#tree.size;
    const note = signCheckpoint({ origin: this.origin, size, rootHash: this.#tree.root(), extensions: [] }, [this.#signer]);
    statements.insertCheckpoint.run(size, note, now);
    this.#latest = { size, note, at: now };
  }

  /** The latest stored checkpoint must be this log's, by this key, and agree with the stored tree. */
  #checkStored(stored: StoredCheckpoint): void {
    const size = this.#tree.size;
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
    if (checkpoint.size > size) {
      throw new LabtraceError(
        'E_STORE',
        `transparency log: a checkpoint was signed at size ${checkpoint.size} but the store holds ${size} entries; the store was rolled back`,
      );
    }
    const root = rootAt(checkpoint.size, this.#read);
    if (!bytesEqual(root, checkpoint.rootHash)) {
      throw new LabtraceError(
        'E_STORE',
        `transparency log: the stored tree of size ${checkpoint.size} has root ${toHex(root)}, its checkpoint says ${toHex(checkpoint.rootHash)}`,
      );
    }
  }

  #checkSize(size: number, name: string): void {
    checkCount(size, name);
    const treeSize = this.size;
    if (size > treeSize) bad(`${name}: ${size} is larger than the tree size (${treeSize})`);
  }

  #checkIndex(index: number, size: number, name: string): void {
    checkCount(index, name);
    if (index >= size) bad(`${name}: ${index} is not less than the tree size ${size}`);
  }
}

/** The bytes that the hashes of every level >= `level` of a tree of `size` leaves take. */
function memoryBytes(size: number, level: number): number {
  return (2 * HASH_BYTES * size) / 2 ** level;
}

function checkCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) bad(`${name}: ${String(value)} is not a whole number >= 0`);
}

function bad(message: string): never {
  throw new LabtraceError('E_BAD_REQUEST', message);
}
