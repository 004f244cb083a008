// The trust tables (trust/): gateways' keys and key events, enrollment tokens, broker credentials, security events.
import { sql, type Kysely, type Migration } from 'kysely';
import { ddl, dialectOf } from '../store/portable-ddl.js';

// 0021's copy of the known keys into key events, in PostgreSQL's words (json_build_object, LEAST, ->>): the same rows
// as SQLite's statements below (the record's JSON has the same members in the same order, spaced as PostgreSQL writes it)
async function keyEventsFromKeysPostgres(db: Kysely<unknown>, now: number): Promise<void> {
  await sql`UPDATE gateway_keys SET valid_until = LEAST(COALESCE(valid_until, registered_at), ${now}::bigint) WHERE status <> 'active'`.execute(db);
  await sql`UPDATE gateway_keys SET last_valid_batch = (SELECT MAX(b.batch) FROM batch_headers b
    WHERE b.gateway = gateway_keys.gateway AND (b.header::jsonb ->> 'keyId') = gateway_keys.key_id) WHERE status = 'revoked'`.execute(db);
  await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}::bigint, gateway, json_build_object('type', 'labtrace-key-event', 'v', 1,
    'event', 'registered', 'gateway', gateway, 'keyId', key_id, 'at', registered_at, 'key', verifier_key, 'source', 'migration')::text
    FROM gateway_keys ORDER BY registered_at, gateway, key_id`.execute(db);
  await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}::bigint, gateway, json_build_object('type', 'labtrace-key-event', 'v', 1,
    'event', 'retired', 'gateway', gateway, 'keyId', key_id, 'at', ${now}::bigint, 'reason', 'migration', 'replacedBy', replaced_by)::text
    FROM gateway_keys WHERE status = 'retired' ORDER BY registered_at, gateway, key_id`.execute(db);
  await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}::bigint, gateway, json_build_object('type', 'labtrace-key-event', 'v', 1,
    'event', 'revoked', 'gateway', gateway, 'keyId', key_id, 'at', ${now}::bigint, 'reason', COALESCE(reason, ''), 'from', valid_until,
    'lastValidBatch', last_valid_batch)::text
    FROM gateway_keys WHERE status = 'revoked' ORDER BY registered_at, gateway, key_id`.execute(db);
}

/** The columns that let a refusal name its source and count its repetitions. */
const securityEventSourcesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(db, `ALTER TABLE security_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1`);
    await ddl(db, `ALTER TABLE security_events ADD COLUMN last_at INTEGER`);
    await ddl(db, `ALTER TABLE security_events ADD COLUMN address TEXT`);
    await ddl(db, `ALTER TABLE security_events ADD COLUMN client TEXT`);
  },
};

export const trustMigrations: Record<string, Migration> = {
  // 0003 also creates the ingest's chain state (gateway_chain, ingest/chain.ts) and adds the hash of a batch header to the
  // store's batch_headers: the chain of batches was introduced with the gateways' keys
  '0003_trust': {
    async up(db: Kysely<unknown>) {
      // a gateway's keys: active, retired by a rotation (valid for batches up to valid_until) or revoked
      await ddl(
        db,
        `CREATE TABLE gateway_keys (
      gateway TEXT NOT NULL, key_id TEXT NOT NULL, verifier_key TEXT NOT NULL, status TEXT NOT NULL,
      registered_at INTEGER NOT NULL, valid_until INTEGER, reason TEXT, replaced_by TEXT,
      PRIMARY KEY (gateway, key_id))`,
      );
      // where each gateway's chain of batches stands: the next batch and sequence number expected
      await ddl(
        db,
        `CREATE TABLE gateway_chain (
      gateway TEXT PRIMARY KEY, next_batch INTEGER NOT NULL, next_seq INTEGER NOT NULL, last_header_hash TEXT NOT NULL)`,
      );
      await ddl(
        db,
        `CREATE TABLE security_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, gateway TEXT NOT NULL, kind TEXT NOT NULL,
      severity TEXT NOT NULL, batch INTEGER, detail TEXT NOT NULL)`,
      );
      await ddl(db, `CREATE INDEX security_events_by_gateway ON security_events (gateway, at)`);
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN hash TEXT`);
      // one-time enrollment tokens, kept as SHA-256 hashes
      await ddl(
        db,
        `CREATE TABLE enrollment_tokens (
      token_hash TEXT PRIMARY KEY, gateway TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER)`,
      );
      // broker credentials handed out at enrollment (scrypt hashes)
      await ddl(
        db,
        `CREATE TABLE gateway_credentials (
      gateway TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL)`,
      );
    },
  },
  // where a key event entered the transparency log
  '0008_key_events_logged': {
    async up(db: Kysely<unknown>) {
      // where a key event entered the transparency log (also events written by the admin command line)
      await ddl(db, `ALTER TABLE security_events ADD COLUMN log_index INTEGER`);
    },
  },
  // the source and the count of a refusal recorded once per window (trust/security-events.ts)
  '0020_security_event_sources': securityEventSourcesMigration,
  // 0021 also creates the ingest's record of batches with samples outside the accepted clock skew (clock_skew_batches):
  // it came with the key validity by server arrival time that decides which of a batch's samples are taken
  '0021_key_events': {
    async up(db: Kysely<unknown>) {
      // the transparency log's key events as structured records (protocols/src/trust/key-event.ts), appended to the
      // log once their time has come (a rotation's end of grace is written ahead)
      await ddl(
        db,
        `CREATE TABLE key_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, gateway TEXT NOT NULL, record TEXT NOT NULL, log_index INTEGER)`,
      );
      await ddl(db, `CREATE INDEX key_events_unlogged ON key_events (at) WHERE log_index IS NULL`);
      // a key's validity by what the server knows: valid_until is now the server arrival time from which no new batch
      // under it is taken; a rotated key's grace is looked for above the gateway's highest stored batch at the rotation;
      // a revoked key keeps its batches up to last_valid_batch
      await ddl(db, `ALTER TABLE gateway_keys ADD COLUMN grace_from_batch INTEGER`);
      await ddl(db, `ALTER TABLE gateway_keys ADD COLUMN last_valid_batch INTEGER`);
      // batches with sample times outside the accepted window around their arrival [earliest, latest]: stored; their
      // samples outside it are kept out of an instrument's latest values
      await ddl(
        db,
        `CREATE TABLE clock_skew_batches (
      gateway TEXT NOT NULL, batch INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
      earliest INTEGER NOT NULL, latest INTEGER NOT NULL, PRIMARY KEY (gateway, batch))`,
      );
      await ddl(db, `CREATE INDEX clock_skew_by_seq ON clock_skew_batches (gateway, first_seq)`);
      // keys known before: their state as structured events, from the key table (the text events already in the log
      // stay there, and are not read any more). A key retired or revoked before keeps the batches stored under it.
      const now = Date.now();
      if (dialectOf(db) === 'postgres') {
        await keyEventsFromKeysPostgres(db, now);
        return;
      }
      await sql`UPDATE gateway_keys SET valid_until = MIN(COALESCE(valid_until, registered_at), ${now}) WHERE status <> 'active'`.execute(db);
      await sql`UPDATE gateway_keys SET last_valid_batch = (SELECT MAX(b.batch) FROM batch_headers b
      WHERE b.gateway = gateway_keys.gateway AND json_extract(b.header, '$.keyId') = gateway_keys.key_id) WHERE status = 'revoked'`.execute(db);
      await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}, gateway, json_object('type', 'labtrace-key-event', 'v', 1,
      'event', 'registered', 'gateway', gateway, 'keyId', key_id, 'at', registered_at, 'key', verifier_key, 'source', 'migration')
      FROM gateway_keys ORDER BY registered_at, gateway, key_id`.execute(db);
      await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}, gateway, json_object('type', 'labtrace-key-event', 'v', 1,
      'event', 'retired', 'gateway', gateway, 'keyId', key_id, 'at', ${now}, 'reason', 'migration', 'replacedBy', replaced_by)
      FROM gateway_keys WHERE status = 'retired' ORDER BY registered_at, gateway, key_id`.execute(db);
      await sql`INSERT INTO key_events (at, gateway, record) SELECT ${now}, gateway, json_object('type', 'labtrace-key-event', 'v', 1,
      'event', 'revoked', 'gateway', gateway, 'keyId', key_id, 'at', ${now}, 'reason', COALESCE(reason, ''), 'from', valid_until,
      'lastValidBatch', last_valid_batch)
      FROM gateway_keys WHERE status = 'revoked' ORDER BY registered_at, gateway, key_id`.execute(db);
    },
  },
  // an enrollment token's number as a column of its own, the same on both engines (it was SQLite's rowid, which
  // PostgreSQL has not): the rows numbered as SQLite had them, in their order elsewhere; new ones numbered by the
  // enrollment module under a lock (trust/enrollment.ts)
  '0045_enrollment_token_ids': {
    async up(db: Kysely<unknown>) {
      await ddl(db, `ALTER TABLE enrollment_tokens ADD COLUMN id INTEGER`);
      if (dialectOf(db) === 'postgres')
        await sql`UPDATE enrollment_tokens t SET id = n.rn FROM (SELECT token_hash, row_number() OVER (ORDER BY created_at, token_hash) AS rn
          FROM enrollment_tokens) n WHERE n.token_hash = t.token_hash`.execute(db);
      else await sql`UPDATE enrollment_tokens SET id = rowid`.execute(db);
      await ddl(db, `CREATE UNIQUE INDEX enrollment_tokens_by_id ON enrollment_tokens (id)`);
    },
  },
};
