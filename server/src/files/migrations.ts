// The result files' table (owned by files/, touched by no other module): each file's raw bytes under its SHA-256.
import type { Kysely, Migration } from 'kysely';
import { ddl } from '../store/portable-ddl.js';

export const fileMigrations: Record<string, Migration> = {
  '0044_raw_files': {
    async up(db: Kysely<unknown>) {
      // content-addressed: the same file sent again (a resend, another gateway) is one row; kept for good, like the
      // batches whose records name it
      await ddl(
        db,
        `CREATE TABLE raw_files (
      sha256 TEXT PRIMARY KEY, gateway TEXT NOT NULL, instrument TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
      taken_at INTEGER NOT NULL, received_at INTEGER NOT NULL, data BLOB NOT NULL)`,
      );
    },
  },
};
