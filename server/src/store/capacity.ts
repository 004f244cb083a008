// Whether the store can take writes: the free space of the data directory's filesystem against a
// reserve, and the last write that failed (disk full, I/O error, file size limit) until one succeeds.
// A full disk is announced before it happens (health, a security event, a log line) and ingest stops
// taking batches at the reserve instead of failing in the middle of a write. It also keeps the WAL
// small: a WAL that stopped growing is checkpointed and truncated.
//
// On the SQLite LabDatabase the probe and the events are synchronous (the ingest's synchronous transactions call
// writeFailed and writeSucceeded). On any other store (PostgreSQL) the data directory still holds the raw result files
// and the export spool, so its free space is measured the same; the probe goes through Kysely and the events through
// the events' asynchronous API, one after the other (settled() waits for them); there is no WAL to watch.
import { EventEmitter } from 'node:events';
import { statfsSync, statSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Logger } from '../log.js';
import type { SecurityEvents, SecurityEventKind, Severity } from '../trust/security-events.js';
import { LabDatabase, type Tables } from './database.js';

/**
 * SQLite's, PostgreSQL's (SQLSTATE 53100 disk_full, 58030 io_error) and the system's codes of a write the disk or the
 * file system could not take.
 */
const WRITE_FAILURE = /^(SQLITE_FULL|SQLITE_IOERR(_\w+)?|53100|58030|ENOSPC|EFBIG|EDQUOT|EIO)$/;

/** The write failure in an error or its causes (SQLite's, PostgreSQL's or the system's code), or undefined. */
export function writeFailureOf(err: unknown): { code: string; message: string } | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (typeof code === 'string' && WRITE_FAILURE.test(code)) return { code, message: typeof message === 'string' ? message : code };
  }
  return undefined;
}

export type CapacityState = 'ok' | 'low-space' | 'cannot-write';

export interface CapacityStatus {
  /** cannot-write: the last write failed and none succeeded since; low-space: free space is below the reserve */
  status: CapacityState;
  /** free space for the server on the data directory's filesystem (null: not measured) */
  freeBytes: number | null;
  reserveBytes: number;
  /** size of SQLite's write-ahead log (null: not a SQLite store) */
  walBytes: number | null;
  lastError: { code: string; message: string; at: number } | null;
}

export interface CapacityOptions {
  /** free space kept on the filesystem: below it new batches are refused */
  reserveBytes: number;
  /** how often free space is measured (and a failed store tried again) */
  checkIntervalMs: number;
}

/** The store whose capacity is watched, when it is not the SQLite LabDatabase (PostgreSQL). */
export interface CapacityStore {
  /** the store: the write probe goes through it */
  db: Kysely<Tables>;
  /** the data directory (raw result files, export spool): free space is measured on its filesystem */
  dataDir: string;
}

interface CapacityEvents {
  /** the store takes writes again (space above the reserve, a write succeeded) */
  accepting: [];
}

export class StoreCapacity extends EventEmitter<CapacityEvents> {
  private timer: NodeJS.Timeout | undefined;
  private freeBytes: number | null = null;
  private failure: { code: string; message: string; at: number } | null = null;
  private lastFailureAt = 0;
  /** the WAL's size and the commits seen at the last check (this connection's changes, other connections' commits) */
  private lastWal = { bytes: -1, writes: '' };
  private announced: CapacityState = 'ok';
  private probe: Statement | undefined;
  private changes: Statement | undefined;
  private readonly db: Kysely<Tables>;
  private readonly dataDir: string;
  /** the SQLite database (synchronous probe and events, the WAL); undefined on another store */
  private readonly database: LabDatabase | undefined;
  /** the asynchronous probe under way (another store) */
  private probing: Promise<void> | undefined;
  /** the last event written through the asynchronous API (another store): the next waits for it */
  private recording: Promise<void> = Promise.resolve();

  /** `store`: the SQLite LabDatabase, or another store (PostgreSQL) and the data directory */
  constructor(
    store: LabDatabase | CapacityStore,
    private readonly options: CapacityOptions,
    private readonly events: SecurityEvents,
    private readonly logger: Logger,
  ) {
    super();
    this.db = store.db;
    this.dataDir = store.dataDir;
    this.database = store instanceof LabDatabase ? store : undefined;
  }

  start(): Promise<void> {
    this.check();
    this.timer = setInterval(() => this.check(), this.options.checkIntervalMs);
    return Promise.resolve();
  }

  /** Stops the checks, and waits for a probe and the events still being written (another store). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.settled();
  }

  /** Resolves once the probe and the events under way are written (another store; at once on SQLite). */
  async settled(): Promise<void> {
    for (;;) {
      const probing = this.probing;
      const recording = this.recording;
      await probing;
      await recording;
      if (probing === this.probing && recording === this.recording) return;
    }
  }

  /** Whether ingest may write a batch now: not below the reserve (a store whose last write failed is tried). */
  accepting(): boolean {
    return this.freeBytes === null || this.freeBytes >= this.options.reserveBytes;
  }

  status(): CapacityStatus {
    return {
      status: this.state(),
      freeBytes: this.freeBytes,
      reserveBytes: this.options.reserveBytes,
      walBytes: this.database === undefined ? null : Math.max(0, this.walBytes()),
      lastError: this.failure,
    };
  }

  /** A write to the store failed: the store cannot write until one succeeds. Returns whether it was a write failure. */
  writeFailed(err: unknown): boolean {
    const failure = writeFailureOf(err);
    if (failure === undefined) return false;
    this.failure = { ...failure, at: Date.now() };
    this.lastFailureAt = this.failure.at;
    this.announce();
    return true;
  }

  /** A write to the store was committed. */
  writeSucceeded(): void {
    if (this.failure === null) return;
    this.failure = null;
    this.announce();
    if (this.accepting()) this.emit('accepting');
  }

  /**
   * Measures free space, tries a store that failed, and truncates a WAL that stopped growing. On another store than
   * SQLite the probe runs on (settled() waits for it).
   */
  check(): void {
    try {
      const fs = statfsSync(this.dataDir);
      this.freeBytes = fs.bavail * fs.bsize;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'free space of the data directory could not be measured');
      this.freeBytes = null;
    }
    const database = this.database;
    if (database === undefined) {
      if (this.failure !== null) this.probeAsync();
      this.announce();
      return;
    }
    if (this.failure !== null) this.tryWrite(database);
    const wal = this.walBytes();
    // idle: nothing committed since the last check. The WAL's size alone does not tell: once it is checkpointed,
    // SQLite writes it again from its start, and its file keeps its size under a steady load
    const writes = this.writes();
    if (wal > 0 && wal === this.lastWal.bytes && writes === this.lastWal.writes) {
      // idle since the last check: copy the WAL into the database and truncate it. Without waiting: a reader in
      // another process (an auditor's query, the command line) would otherwise hold the event loop; next time then
      const sqlite = database.sqlite;
      const timeout = sqlite.pragma('busy_timeout', { simple: true }) as number;
      try {
        sqlite.pragma('busy_timeout = 0');
        sqlite.pragma('wal_checkpoint(TRUNCATE)');
      } catch (err) {
        this.writeFailed(err);
      } finally {
        sqlite.pragma(`busy_timeout = ${timeout}`);
      }
    }
    this.lastWal = { bytes: this.walBytes(), writes: this.writes() };
    this.announce();
  }

  private tryWrite(database: LabDatabase): void {
    try {
      this.probe ??= database.sqlite.prepare('INSERT INTO store_probe (id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at');
      this.probe.run(Date.now());
      this.writeSucceeded();
    } catch (err) {
      if (!this.writeFailed(err)) this.logger.warn({ err: (err as Error).message }, 'store probe failed');
    }
  }

  /** The probe through Kysely, one at a time: a write that succeeds tells the store takes writes again. */
  private probeAsync(): void {
    if (this.probing !== undefined) return;
    const at = Date.now();
    this.probing = this.db
      .insertInto('store_probe')
      .values({ id: 1, at })
      .onConflict((oc) => oc.column('id').doUpdateSet({ at }))
      .execute()
      .then(
        () => this.writeSucceeded(),
        (err: unknown) => {
          if (!this.writeFailed(err)) this.logger.warn({ err: (err as Error).message }, 'store probe failed');
        },
      )
      .finally(() => {
        this.probing = undefined;
      });
  }

  private state(): CapacityState {
    if (this.failure !== null) return 'cannot-write';
    return this.accepting() ? 'ok' : 'low-space';
  }

  /** What changes with every commit to the store: this connection's row changes and other connections' commits. */
  private writes(): string {
    if (this.database === undefined) return '';
    const sqlite = this.database.sqlite;
    this.changes ??= sqlite.prepare('SELECT total_changes() AS n').pluck();
    return `${String(this.changes.get())}:${String(sqlite.pragma('data_version', { simple: true }))}`;
  }

  private walBytes(): number {
    if (this.database === undefined) return 0;
    try {
      return statSync(`${this.database.file}-wal`).size;
    } catch {
      return 0;
    }
  }

  /**
   * One security event (and log line) per change of state. A disk that is nearly full takes some writes and
   * refuses others by turns: the return from cannot-write is announced once no write failed for a whole check
   * interval, so that such an episode is one alarm and one all-clear, not one of each per write.
   */
  private announce(): void {
    const now = this.state();
    if (now === this.announced) return;
    if (now === 'ok' && this.announced === 'cannot-write' && Date.now() - this.lastFailureAt < this.options.checkIntervalMs) return;
    const was = this.announced;
    this.announced = now;
    const free = this.freeBytes === null ? 'unknown' : mib(this.freeBytes);
    const reserve = mib(this.options.reserveBytes);
    const detail =
      now === 'cannot-write'
        ? `the store cannot write (${this.failure?.code ?? ''}: ${this.failure?.message ?? ''}); free space ${free}, reserve ${reserve}: batches are not acknowledged (the gateways keep them)`
        : now === 'low-space'
          ? `free space ${free} is below the reserve of ${reserve}: new batches are refused (the gateways keep them) until space is freed`
          : `the store takes writes again (was ${was}); free space ${free}, reserve ${reserve}`;
    const severity: Severity = now === 'ok' ? 'info' : 'alarm';
    const freeBytes = this.freeBytes;
    // the store cannot take the event either: a log line instead
    const logInstead = (): void => {
      if (now === 'ok') this.logger.info({ kind: 'store-capacity', free: freeBytes }, detail);
      else this.logger.error({ kind: 'store-capacity', free: freeBytes, state: now }, `ALARM: ${detail}`);
    };
    if (this.database !== undefined)
      try {
        // logged by the events (an alarm at error level)
        this.events.record('', 'store-capacity', severity, detail);
      } catch {
        logInstead();
      }
    else {
      const at = Date.now();
      this.recording = this.recording.then(() => this.recordAsync('store-capacity', severity, detail, at).catch(logInstead));
    }
    if (now === 'ok' && was === 'low-space') this.emit('accepting');
  }

  /** An event in a transaction of its own, then logged and told (as the events' record does on SQLite). */
  private async recordAsync(kind: SecurityEventKind, severity: Severity, detail: string, at: number): Promise<void> {
    const event = await this.db.transaction().execute((trx) => this.events.recordIn(trx, '', kind, severity, detail, null, at));
    this.events.announce(event);
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
