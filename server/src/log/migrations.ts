// The transparency log's tables (log/transparency-log.ts): entries, subtree hashes and signed checkpoints, and the
// witnesses' cosignatures of those checkpoints (log/cosignatures.ts).
import type { Kysely, Migration } from 'kysely';
import { ddl } from '../store/portable-ddl.js';

export const logMigrations: Record<string, Migration> = {
  '0006_transparency_log': {
    async up(db: Kysely<unknown>) {
      // The lab's transparency log (log/transparency-log.ts): every entry's leaf data and leaf hash, the perfect
      // subtree hashes above the leaves of its RFC 6962 tree (level >= 1), so that proofs take O(log n) reads, and
      // every signed checkpoint, so that a consistency proof can be given from any checkpoint a client saved.
      await ddl(
        db,
        `CREATE TABLE log_entries (idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL, leaf BLOB NOT NULL, at INTEGER NOT NULL)`,
      );
      await ddl(
        db,
        `CREATE TABLE log_hashes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID`,
      );
      await ddl(db, `CREATE TABLE log_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL, at INTEGER NOT NULL)`);
    },
  },
  '0067_log_cosignatures': {
    async up(db: Kysely<unknown>) {
      // The witnesses' cosignatures (C2SP tlog-cosignature) of the signed checkpoints, one per checkpoint size and
      // witness key: `line` is the signature line as the witness sent it, appended to the checkpoint's note when it
      // is served; `witness_time` is the witness's time in it (POSIX seconds), `received_at` when the lab got it (ms).
      await ddl(
        db,
        `CREATE TABLE log_cosignatures (size INTEGER NOT NULL REFERENCES log_checkpoints (size), witness TEXT NOT NULL, key_id TEXT NOT NULL, line TEXT NOT NULL, witness_time INTEGER NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (size, witness, key_id))`,
      );
    },
  },
};
