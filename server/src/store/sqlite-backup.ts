// The SQLite side of a backup and a restore (store/backup.ts): a snapshot taken with VACUUM INTO while the server
// goes on writing (a WAL reader: it neither blocks nor waits for the writer), and a restore into a staging file beside
// the store's place, renamed into it once its log has verified.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BackupRefused, mib, type RestoreEvent, type RestoreTarget, type RestoredLog, type SnapshotFacts, type SnapshotSource } from './backup.js';

/** A SQLite store's snapshot: the store as of one commit. */
export class SqliteSnapshotSource implements SnapshotSource {
  readonly engine = 'sqlite';
  readonly description: string;

  constructor(private readonly storeFile: string) {
    this.description = `sqlite:${storeFile}`;
  }

  snapshot(file: string, progress: ((line: string) => void) | undefined): Promise<SnapshotFacts> {
    if (!existsSync(this.storeFile)) throw new BackupRefused(`the store ${this.storeFile} does not exist`);
    progress?.(`backup: the store is ${mib(statSync(this.storeFile).size)}`);
    const live = new Database(this.storeFile, { readonly: true, fileMustExist: true });
    try {
      live.pragma('busy_timeout = 30000');
      // one read transaction: the snapshot is the store as of one commit, whatever the server writes meanwhile
      live.prepare('VACUUM INTO ?').run(file);
    } finally {
      live.close();
    }
    return Promise.resolve(factsOf(file));
  }
}

function factsOf(snapshot: string): SnapshotFacts {
  const db = new Database(snapshot, { readonly: true, fileMustExist: true });
  try {
    const hasTable = (name: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
    return {
      migrations: hasTable('kysely_migration') ? db.prepare<[], string>('SELECT name FROM kysely_migration ORDER BY name').pluck().all() : [],
      latest: hasTable('log_checkpoints')
        ? (db.prepare('SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1').get() as { size: number; note: string } | undefined)
        : undefined,
      logEntries: hasTable('log_entries') ? (db.prepare<[], number>('SELECT COUNT(*) FROM log_entries').pluck().get() ?? 0) : 0,
      batches: hasTable('batch_headers') ? (db.prepare<[], number>('SELECT COUNT(*) FROM batch_headers').pluck().get() ?? 0) : 0,
    };
  } finally {
    db.close();
  }
}

/** A restore into a SQLite file that holds no store: written beside it, renamed into place once verified. */
export class SqliteRestoreTarget implements RestoreTarget {
  readonly engine = 'sqlite';
  readonly description: string;
  readonly entryFile: string;
  private db: Database.Database | undefined;

  constructor(private readonly storeFile: string) {
    this.description = `sqlite:${storeFile}`;
    this.entryFile = `${storeFile}.restoring`;
  }

  checkEmpty(): Promise<void> {
    for (const f of [this.storeFile, `${this.storeFile}-wal`])
      if (existsSync(f) && statSync(f).size > 0)
        throw new BackupRefused(`${f} exists: a restore never overwrites a store (stop its server and move it away first)`);
    mkdirSync(path.dirname(this.storeFile), { recursive: true });
    rmSync(this.entryFile, { force: true });
    return Promise.resolve();
  }

  load(): Promise<RestoredLog> {
    const db = new Database(this.entryFile, { fileMustExist: true });
    this.db = db;
    return Promise.resolve({
      checkpoints: () =>
        Promise.resolve(db.prepare('SELECT size, note FROM log_checkpoints ORDER BY size').all() as { size: number; note: string }[]),
      count: () => Promise.resolve(db.prepare<[], number>('SELECT COUNT(*) FROM log_entries').pluck().get() ?? 0),
      entries: () =>
        db.prepare('SELECT idx, data, leaf FROM log_entries ORDER BY idx').iterate() as IterableIterator<{ idx: number; data: Buffer; leaf: Buffer }>,
    });
  }

  commit(event: RestoreEvent): Promise<void> {
    const db = this.db;
    if (db === undefined) throw new Error('commit before load');
    db.prepare(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail, last_at, address, client) VALUES (?, ?, ?, ?, NULL, ?, ?, NULL, NULL)',
    ).run(event.at, '', 'store-restored', event.severity, event.detail, event.at);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    this.db = undefined;
    renameSync(this.entryFile, this.storeFile);
    return Promise.resolve();
  }

  finish(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    for (const f of [this.entryFile, `${this.entryFile}-wal`, `${this.entryFile}-shm`]) rmSync(f, { force: true });
    return Promise.resolve();
  }
}
