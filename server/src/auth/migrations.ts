// The tables of users, customer organizations and sessions (auth/users.ts).
import { sql, type Kysely, type Migration } from 'kysely';
import { ddl, dialectOf } from '../store/portable-ddl.js';

export const authMigrations: Record<string, Migration> = {
  // 0010 also creates the audit trail's table (audit/audit-trail.ts): it came with the users whose actions it records,
  // and a migration is kept whole under the name a store recorded it by
  '0010_auth': {
    async up(db: Kysely<unknown>) {
      // customer organizations: a client user belongs to one and sees only its own work
      await ddl(db, `CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL)`);
      // people and machine identities; passwords as scrypt hashes, an auditor's access ends at grant_until
      await ddl(
        db,
        `CREATE TABLE users (
      id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
      organization TEXT REFERENCES organizations(id), password_hash TEXT NOT NULL, must_change INTEGER NOT NULL DEFAULT 0,
      disabled INTEGER NOT NULL DEFAULT 0, grant_until INTEGER, failed_logins INTEGER NOT NULL DEFAULT 0, locked_until INTEGER,
      created_at INTEGER NOT NULL, password_changed_at INTEGER NOT NULL)`,
      );
      // browser sessions and API tokens, kept as SHA-256 hashes of the secret
      await ddl(
        db,
        `CREATE TABLE sessions (
      token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), kind TEXT NOT NULL, name TEXT,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      );
      await ddl(db, `CREATE INDEX sessions_by_user ON sessions (user_id)`);
      // the user-action audit trail: append-only, each entry hashed over the previous one, anchored in the log
      await ddl(
        db,
        `CREATE TABLE audit_trail (
      id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, actor_role TEXT NOT NULL, action TEXT NOT NULL,
      record_type TEXT NOT NULL, record_id TEXT NOT NULL, old_value TEXT, new_value TEXT, reason TEXT,
      prev_hash TEXT NOT NULL, hash TEXT NOT NULL, log_index INTEGER)`,
      );
      await ddl(db, `CREATE INDEX audit_trail_by_record ON audit_trail (record_type, record_id, at)`);
      await ddl(db, `CREATE INDEX audit_trail_by_actor ON audit_trail (actor, at)`);
      await ddl(
        db,
        `CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
      BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END`,
      );
      // the only change allowed: recording where an entry was anchored in the transparency log, once
      await ddl(
        db,
        `CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
      WHEN OLD.log_index IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
        OR NEW.actor_role IS NOT OLD.actor_role OR NEW.action IS NOT OLD.action OR NEW.record_type IS NOT OLD.record_type
        OR NEW.record_id IS NOT OLD.record_id OR NEW.old_value IS NOT OLD.old_value OR NEW.new_value IS NOT OLD.new_value
        OR NEW.reason IS NOT OLD.reason OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.hash IS NOT OLD.hash
      BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END`,
      );
    },
  },
  '0018_access': {
    async up(db: Kysely<unknown>) {
      // an auditor's grant may cover some customer organizations only: a JSON array of their ids, NULL for all
      await ddl(db, `ALTER TABLE users ADD COLUMN grant_organizations TEXT`);
    },
  },
  '0024_user_preferences': {
    async up(db: Kysely<unknown>) {
      // a user's own language and time zone (PATCH /api/auth/preferences); NULL follows the browser
      await ddl(db, `ALTER TABLE users ADD COLUMN locale TEXT`);
      await ddl(db, `ALTER TABLE users ADD COLUMN time_zone TEXT`);
    },
  },
  '0046_session_ids': {
    async up(db: Kysely<unknown>) {
      // an API token is named by a number (GET /api/auth/tokens, its revocation, its audit entries): it was SQLite's
      // rowid, which PostgreSQL has not. The table is made again with the number as a column of its own; on SQLite the
      // rowids are kept as the ids, so that a token keeps its number and its audit entries still name it.
      await ddl(
        db,
        `CREATE TABLE sessions_new (
      id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL REFERENCES users(id),
      kind TEXT NOT NULL, name TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      );
      if (dialectOf(db) === 'sqlite')
        await sql`INSERT INTO sessions_new (id, token_hash, user_id, kind, name, created_at, expires_at)
          SELECT rowid, token_hash, user_id, kind, name, created_at, expires_at FROM sessions ORDER BY rowid`.execute(db);
      else
        await sql`INSERT INTO sessions_new (token_hash, user_id, kind, name, created_at, expires_at)
          SELECT token_hash, user_id, kind, name, created_at, expires_at FROM sessions ORDER BY created_at, token_hash`.execute(db);
      await ddl(db, `DROP TABLE sessions`);
      await ddl(db, `ALTER TABLE sessions_new RENAME TO sessions`);
      await ddl(db, `CREATE INDEX sessions_by_user ON sessions (user_id)`);
    },
  },
};
