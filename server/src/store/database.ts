// The embedded relational store: one SQLite file (WAL) under the data directory. Lab records go
// through Kysely, which also speaks PostgreSQL; the hot measurement path uses prepared statements.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Generated, type Migration, type MigrationProvider } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import { columnTypes, ddl, dialectOf } from './portable-ddl.js';
import { accreditationMigration } from '../lab/accreditation.js';
import { certificateLanguageMigration, certificatesMigration } from '../certificates/migration.js';
import { calibrationAttachmentsMigration, calibrationMigration } from '../lab/calibration.js';
import { equipmentHealthMigration } from '../lab/equipment-health.js';
import { notificationsMigration } from '../notify/migration.js';
import { runSharesMigration } from '../lab/run-shares.js';
import { securityEventSourcesMigration } from '../trust/security-events.js';
import { overviewIndexesMigration } from '../lab/overview.js';

export interface Tables {
  gateways: {
    id: string;
    lab: string;
    version: string | null;
    session: number | null;
    first_seen: number;
    last_seen: number;
  };
  instruments: {
    id: string;
    gateway: string;
    identity: string;
    channels: string;
    updated_at: number;
  };
  measurements: {
    gateway: string;
    seq: number;
    instrument: string;
    channel: string;
    ts: number;
    value_num: number | null;
    value_text: string | null;
    value_kind: 'number' | 'string' | 'boolean' | 'null';
    unit: string;
    quality: string;
    reason: string | null;
  };
  schema_info: { key: string; value: string; id: Generated<number> };
}

const migrations: Record<string, Migration> = {
  '0001_skeleton': {
    async up(db: Kysely<unknown>) {
      // 64-bit integers and doubles on both (store/portable-ddl.ts)
      const { integer, real } = columnTypes(db);
      await db.schema
        .createTable('gateways')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('lab', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('session', integer)
        .addColumn('first_seen', integer, (c) => c.notNull())
        .addColumn('last_seen', integer, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('instruments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('gateway', 'text', (c) => c.notNull().references('gateways.id'))
        .addColumn('identity', 'text', (c) => c.notNull())
        .addColumn('channels', 'text', (c) => c.notNull())
        .addColumn('updated_at', integer, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('measurements')
        .addColumn('gateway', 'text', (c) => c.notNull())
        .addColumn('seq', integer, (c) => c.notNull())
        .addColumn('instrument', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('ts', integer, (c) => c.notNull())
        .addColumn('value_num', real)
        .addColumn('value_text', 'text')
        .addColumn('value_kind', 'text', (c) => c.notNull())
        .addColumn('unit', 'text', (c) => c.notNull())
        .addColumn('quality', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('received_at', integer, (c) => c.notNull())
        .addPrimaryKeyConstraint('measurements_pk', ['gateway', 'seq'])
        .execute();
      await db.schema.createIndex('measurements_by_channel').on('measurements').columns(['instrument', 'channel', 'ts']).execute();
    },
  },
};

migrations['0002_batch_headers'] = {
  async up(db: Kysely<unknown>) {
    const { integer } = columnTypes(db);
    await db.schema
      .createTable('batch_headers')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('batch', integer, (c) => c.notNull())
      .addColumn('first_seq', integer, (c) => c.notNull())
      .addColumn('count', integer, (c) => c.notNull())
      .addColumn('header', 'text', (c) => c.notNull())
      .addColumn('signature', 'text', (c) => c.notNull())
      .addColumn('received_at', integer, (c) => c.notNull())
      .addPrimaryKeyConstraint('batch_headers_pk', ['gateway', 'batch'])
      .execute();
  },
};

migrations['0003_trust'] = {
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
};

migrations['0004_compact_samples'] = {
  async up(db: Kysely<unknown>) {
    // Samples in a compact layout: integer ids for gateways and for streams (gateway, instrument,
    // channel, unit), small integers for value kind and quality, the key (gateway, seq) as the table
    // itself (WITHOUT ROWID). Two B-trees per sample instead of three, and rows a third of the size.
    await ddl(db, `CREATE TABLE gateway_ids (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`);
    await ddl(
      db,
      `CREATE TABLE streams (
      id INTEGER PRIMARY KEY, gateway TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL, unit TEXT NOT NULL,
      UNIQUE (gateway, instrument, channel, unit))`,
    );
    await ddl(db, `CREATE INDEX streams_by_channel ON streams (instrument, channel)`);
    await ddl(
      db,
      `CREATE TABLE samples (
      gateway INTEGER NOT NULL, seq INTEGER NOT NULL, stream INTEGER NOT NULL, ts INTEGER NOT NULL,
      num REAL, text TEXT, kind INTEGER NOT NULL, quality INTEGER NOT NULL, reason TEXT,
      PRIMARY KEY (gateway, seq)) WITHOUT ROWID`,
    );
    await ddl(db, `CREATE INDEX samples_by_stream ON samples (stream, ts)`);
    await sql`INSERT INTO gateway_ids (name) SELECT DISTINCT gateway FROM measurements`.execute(db);
    // (a new store has no measurements: on PostgreSQL, which only ever starts empty, these copy nothing)
    if (dialectOf(db) === 'sqlite')
      await sql`INSERT OR IGNORE INTO streams (gateway, instrument, channel, unit) SELECT DISTINCT gateway, instrument, channel, unit FROM measurements`.execute(
        db,
      );
    else
      await sql`INSERT INTO streams (gateway, instrument, channel, unit) SELECT DISTINCT gateway, instrument, channel, unit FROM measurements
        ON CONFLICT DO NOTHING`.execute(db);
    await sql`INSERT INTO samples
      SELECT g.id, m.seq, st.id, m.ts, CASE WHEN m.value_kind IN ('number', 'boolean') THEN m.value_num END, m.value_text,
        CASE m.value_kind WHEN 'null' THEN 0 WHEN 'boolean' THEN (CASE WHEN m.value_num = 1 THEN 2 ELSE 1 END) WHEN 'number' THEN 3 ELSE 4 END,
        CASE m.quality WHEN 'good' THEN 0 WHEN 'uncertain' THEN 1 ELSE 2 END, m.reason
      FROM measurements m JOIN gateway_ids g ON g.name = m.gateway
      JOIN streams st ON st.gateway = m.gateway AND st.instrument = m.instrument AND st.channel = m.channel AND st.unit = m.unit`.execute(db);
    await ddl(db, `DROP TABLE measurements`);
    // the readable form, for reports and auditors' queries
    await ddl(
      db,
      `CREATE VIEW measurements AS
      SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts,
        CASE s.kind WHEN 1 THEN 0 WHEN 2 THEN 1 ELSE s.num END AS value_num, s.text AS value_text,
        CASE s.kind WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'boolean' WHEN 3 THEN 'number' ELSE 'string' END AS value_kind,
        st.unit, CASE s.quality WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality, s.reason
      FROM samples s JOIN gateway_ids g ON g.id = s.gateway JOIN streams st ON st.id = s.stream`,
    );
  },
};

migrations['0005_batch_records'] = {
  async up(db: Kysely<unknown>) {
    // A verified batch is stored whole (its signed header and its records' canonical bytes) before it
    // is acknowledged; the per-sample table is an index built from those bytes, right away when the
    // server keeps up, a moment later under load, and again after a crash.
    await ddl(db, `ALTER TABLE batch_headers ADD COLUMN records BLOB`);
    await ddl(db, `ALTER TABLE batch_headers ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1`);
    await ddl(db, `CREATE INDEX batch_headers_unindexed ON batch_headers (received_at) WHERE indexed = 0`);
    await ddl(db, `CREATE INDEX batch_headers_by_seq ON batch_headers (gateway, first_seq)`);
  },
};

migrations['0006_transparency_log'] = {
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
};

migrations['0007_batch_log_index'] = {
  async up(db: Kysely<unknown>) {
    // where each stored batch's header sits in the transparency log
    await ddl(db, `ALTER TABLE batch_headers ADD COLUMN log_index INTEGER`);
  },
};

migrations['0008_key_events_logged'] = {
  async up(db: Kysely<unknown>) {
    // where a key event entered the transparency log (also events written by the admin command line)
    await ddl(db, `ALTER TABLE security_events ADD COLUMN log_index INTEGER`);
  },
};

migrations['0009_influx_cursor'] = {
  async up(db: Kysely<unknown>) {
    // how far the InfluxDB measurement store has written the stored batches (by batch_headers rowid, which is
    // commit order: batches are only ever appended), per InfluxDB target; and the batches it refused for good
    await ddl(db, `CREATE TABLE influx_cursor (target TEXT PRIMARY KEY, last_rowid INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
    await ddl(
      db,
      `CREATE TABLE influx_failures (
      id INTEGER PRIMARY KEY, target TEXT NOT NULL, batch_rowid INTEGER NOT NULL, gateway TEXT NOT NULL, batch INTEGER NOT NULL,
      samples INTEGER NOT NULL, status INTEGER, error TEXT NOT NULL, at INTEGER NOT NULL)`,
    );
  },
};

migrations['0010_auth'] = {
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
};

migrations['0011_lab_records'] = {
  async up(db: Kysely<unknown>) {
    // Lab records (ISO/IEC 17025 7.4, 7.2, 7.5): items received for testing, test methods in versions, test
    // runs and the gateway sequence ranges each run covers. Nothing is deleted: a change is a new version or
    // a state transition, each with an audit-trail entry. ("lab_samples": "samples" holds measured values.)
    await ddl(
      db,
      `CREATE TABLE lab_samples (
      id TEXT PRIMARY KEY, organization TEXT NOT NULL REFERENCES organizations(id), description TEXT NOT NULL,
      condition TEXT NOT NULL, received_at INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL)`,
    );
    // a method version is never changed: a change is the next version
    await ddl(
      db,
      `CREATE TABLE methods (
      id TEXT NOT NULL, version INTEGER NOT NULL, standard TEXT NOT NULL, title TEXT NOT NULL, definition TEXT NOT NULL,
      created_by TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (id, version))`,
    );
    await ddl(
      db,
      `CREATE TABLE runs (
      id TEXT PRIMARY KEY, sample TEXT NOT NULL REFERENCES lab_samples(id), organization TEXT NOT NULL REFERENCES organizations(id),
      method_id TEXT NOT NULL, method_version INTEGER NOT NULL, instruments TEXT NOT NULL, technician TEXT NOT NULL,
      state TEXT NOT NULL, accredited INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
      started_at INTEGER, ended_at INTEGER, end_reason TEXT,
      FOREIGN KEY (method_id, method_version) REFERENCES methods(id, version))`,
    );
    await ddl(db, `CREATE INDEX runs_by_organization ON runs (organization, created_at)`);
    // the gateway records a run covers: first_seq at the start, last_seq once it ended (NULL while it runs)
    await ddl(
      db,
      `CREATE TABLE run_ranges (
      run TEXT NOT NULL REFERENCES runs(id), gateway TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER,
      PRIMARY KEY (run, gateway)) WITHOUT ROWID`,
    );
    // an instrument's service status, as a history: the newest row is in force (calibration status comes later)
    await ddl(
      db,
      `CREATE TABLE instrument_status (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
      actor TEXT NOT NULL, at INTEGER NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX instrument_status_by_instrument ON instrument_status (instrument, id)`);
    for (const table of ['lab_samples', 'methods', 'runs', 'run_ranges', 'instrument_status'])
      await ddl(db, `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`);
    // versions and status rows are written once
    for (const table of ['methods', 'instrument_status', 'lab_samples'])
      await ddl(db, `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`);
    // a run changes only by its state machine: the fields fixed at creation stay as they were
    await ddl(
      db,
      `CREATE TRIGGER runs_fixed_fields BEFORE UPDATE ON runs
      WHEN NEW.id IS NOT OLD.id OR NEW.sample IS NOT OLD.sample OR NEW.organization IS NOT OLD.organization
        OR NEW.method_id IS NOT OLD.method_id OR NEW.method_version IS NOT OLD.method_version OR NEW.instruments IS NOT OLD.instruments
        OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at OR OLD.state IN ('completed', 'aborted')
      BEGIN SELECT RAISE(ABORT, 'a run changes only by its state machine'); END`,
    );
    await ddl(
      db,
      `CREATE TRIGGER run_ranges_closed BEFORE UPDATE ON run_ranges
      WHEN OLD.last_seq IS NOT NULL OR NEW.first_seq IS NOT OLD.first_seq OR NEW.run IS NOT OLD.run OR NEW.gateway IS NOT OLD.gateway
      BEGIN SELECT RAISE(ABORT, 'a closed run range is never changed'); END`,
    );
  },
};

migrations['0012_run_alarms'] = {
  async up(db: Kysely<unknown>) {
    // The inspection alarms of test runs as an append-only history of events (raised, escalated, recurred,
    // returned, acknowledged, cleared), each with the alarm as it stood after it: an alarm's state is its
    // newest event, so a restart keeps what was raised and who acknowledged or cleared it, with the reason.
    await ddl(
      db,
      `CREATE TABLE run_alarms (
      id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL REFERENCES runs(id), alarm TEXT NOT NULL, event TEXT NOT NULL,
      at INTEGER NOT NULL, rule_id TEXT NOT NULL, severity TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT,
      detail TEXT NOT NULL, person TEXT, reason TEXT)`,
    );
    await ddl(db, `CREATE INDEX run_alarms_by_run ON run_alarms (run, alarm, id)`);
    await ddl(db, `CREATE TRIGGER run_alarms_no_delete BEFORE DELETE ON run_alarms BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`);
    await ddl(
      db,
      `CREATE TRIGGER run_alarms_no_update BEFORE UPDATE ON run_alarms BEGIN SELECT RAISE(ABORT, 'run_alarms rows are written once'); END`,
    );
  },
};

// calibration records and intermediate checks (lab/calibration.ts)
migrations['0013_calibration'] = calibrationMigration;

// accreditations, their scope versions and status events (lab/accreditation.ts)
migrations['0014_accreditation'] = accreditationMigration;

// certificates (test reports) and their events; the customer's contact (certificates/migration.ts)
migrations['0015_certificates'] = certificatesMigration;

migrations['0016_run_results'] = {
  async up(db: Kysely<unknown>) {
    // A completed run's results (lab/results.ts), computed once from its records and kept as they were
    // reported: a later calibration record or method version does not change them.
    await ddl(db, `CREATE TABLE run_results (run TEXT PRIMARY KEY REFERENCES runs(id), computed_at INTEGER NOT NULL, results TEXT NOT NULL)`);
    await ddl(
      db,
      `CREATE TRIGGER run_results_no_delete BEFORE DELETE ON run_results BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`,
    );
    await ddl(db, `CREATE TRIGGER run_results_no_update BEFORE UPDATE ON run_results BEGIN SELECT RAISE(ABORT, 'run results are written once'); END`);
  },
};

migrations['0018_access'] = {
  async up(db: Kysely<unknown>) {
    // an auditor's grant may cover some customer organizations only: a JSON array of their ids, NULL for all
    await ddl(db, `ALTER TABLE users ADD COLUMN grant_organizations TEXT`);
  },
};

migrations['0019_samples_rowid'] = {
  async up(db: Kysely<unknown>) {
    // The per-sample index as a plain table with one index, on (stream, ts): about half again as many rows a
    // second as the table keyed by (gateway, seq) with its second B-tree (bench/ingest.bench.js). Each sample is
    // there once without that key: a batch that meets a stored batch's sequence numbers is refused before it is
    // stored, and a stored batch enters the index once, in the transaction that marks it indexed.
    await ddl(db, `DROP VIEW measurements`);
    await ddl(
      db,
      `CREATE TABLE samples_by_row (
      gateway INTEGER NOT NULL, seq INTEGER NOT NULL, stream INTEGER NOT NULL, ts INTEGER NOT NULL,
      num REAL, text TEXT, kind INTEGER NOT NULL, quality INTEGER NOT NULL, reason TEXT)`,
    );
    await sql`INSERT INTO samples_by_row (gateway, seq, stream, ts, num, text, kind, quality, reason)
      SELECT gateway, seq, stream, ts, num, text, kind, quality, reason FROM samples ORDER BY stream, ts`.execute(db);
    await ddl(db, `DROP TABLE samples`);
    await ddl(db, `ALTER TABLE samples_by_row RENAME TO samples`);
    await ddl(db, `CREATE INDEX samples_by_stream ON samples (stream, ts)`);
    await ddl(
      db,
      `CREATE VIEW measurements AS
      SELECT g.name AS gateway, s.seq, st.instrument, st.channel, s.ts,
        CASE s.kind WHEN 1 THEN 0 WHEN 2 THEN 1 ELSE s.num END AS value_num, s.text AS value_text,
        CASE s.kind WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'boolean' WHEN 3 THEN 'number' ELSE 'string' END AS value_kind,
        st.unit, CASE s.quality WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality, s.reason
      FROM samples s JOIN gateway_ids g ON g.id = s.gateway JOIN streams st ON st.id = s.stream`,
    );
  },
};

// the source and the count of a refusal recorded once per window (trust/security-events.ts)
migrations['0020_security_event_sources'] = securityEventSourcesMigration;
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

migrations['0021_key_events'] = {
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
};

migrations['0022_store_probe'] = {
  async up(db: Kysely<unknown>) {
    // one row, written to find out whether a store that failed a write (disk full) can write again (store/capacity.ts)
    await ddl(db, `CREATE TABLE store_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)`);
  },
};

// the language a certificate is requested in (certificates/migration.ts)
migrations['0023_certificate_language'] = certificateLanguageMigration;
migrations['0024_user_preferences'] = {
  async up(db: Kysely<unknown>) {
    // a user's own language and time zone (PATCH /api/auth/preferences); NULL follows the browser
    await ddl(db, `ALTER TABLE users ADD COLUMN locale TEXT`);
    await ddl(db, `ALTER TABLE users ADD COLUMN time_zone TEXT`);
  },
};
// each user's notification subscriptions, the admin's webhooks and the outbox of deliveries (notify/migration.ts)
migrations['0025_notifications'] = notificationsMigration;
// calibration certificates attached to their records, and instrument health over time (lab/)
migrations['0026_calibration_attachments'] = calibrationAttachmentsMigration;
migrations['0027_instrument_health'] = equipmentHealthMigration;
migrations['0031_runs_by_organization'] = {
  async up(db: Kysely<unknown>) {
    // the runs list of a client, newest first by row id (lab/runs.ts page): an index on the organization alone holds
    // its entries in row id order, so a page reads 50 entries instead of sorting the organization's every run
    await ddl(db, `CREATE INDEX runs_by_organization_rowid ON runs (organization)`);
  },
};
// read-only links that share one run with a client (lab/run-shares.ts)
migrations['0032_run_shares'] = runSharesMigration;
// the indexes of the lab manager's overview (lab/overview.ts)
migrations['0040_overview_indexes'] = overviewIndexesMigration;

class StaticMigrations implements MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(migrations);
  }
}

/**
 * Brings a store (SQLite or PostgreSQL) to the latest schema, or to the named migration; returns the migrations it
 * applied, in order. Kysely's Migrator holds a lock meanwhile (on PostgreSQL an advisory lock, so that two processes
 * migrating one database at once apply each migration once) and records what it applied in kysely_migration.
 * On SQLite its lock is the process's own; `exclusive` runs the whole migration in one write transaction
 * (BEGIN IMMEDIATE), so that a second process waits for it and then finds nothing left to apply.
 */
export async function migrateStore(db: Kysely<Tables> | Kysely<unknown>, to?: string, options: { exclusive?: boolean } = {}): Promise<string[]> {
  const store = db as Kysely<unknown>;
  const exclusive = options.exclusive === true && dialectOf(store) === 'sqlite';
  // (one SQLite connection: the Migrator's statements run inside this transaction)
  if (exclusive) await sql`BEGIN IMMEDIATE`.execute(store);
  const migrator = new Migrator({ db: store, provider: new StaticMigrations() });
  const { error, results } = to === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(to);
  if (exclusive) await sql.raw(error ? 'ROLLBACK' : 'COMMIT').execute(store);
  if (error)
    throw new LabtraceError('E_STORE', `store migration failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
      cause: error,
    });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Opens the SQLite file of a store (WAL, durable commits, foreign keys) as the server runs it. */
export function openSqliteFile(file: string): Database.Database {
  let sqlite: Database.Database;
  try {
    sqlite = new Database(file);
  } catch (err) {
    throw new LabtraceError('E_STORE', `cannot open the store ${file}: ${(err as Error).message}`, { cause: err });
  }
  sqlite.pragma('journal_mode = WAL');
  // FULL: a batch acknowledged to a gateway survives a power cut, not only a process crash.
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  // a page cache large enough for the index of many streams written at once (the default is 2 MiB)
  sqlite.pragma('cache_size = -131072');
  // The WAL is copied back into the database every 2,000 pages (8 MiB) rather than every 1,000: the per-sample
  // index rewrites the same pages (each stream's last) from group to group, and each checkpoint copies them once.
  // It was 10,000 (40 MiB), which let the WAL grow to 10 times the data on a small lab; once checkpointed, the
  // WAL file is cut back to 8 MiB, and an idle one is truncated (store/capacity.ts).
  sqlite.pragma('wal_autocheckpoint = 2000');
  sqlite.pragma(`journal_size_limit = ${8 * 1048576}`);
  return sqlite;
}

export class LabDatabase {
  readonly sqlite: Database.Database;
  readonly db: Kysely<Tables>;

  constructor(readonly dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'labtrace.sqlite');
    this.sqlite = openSqliteFile(file);
    this.db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: this.sqlite }) });
  }

  /** Migrates to the latest schema, or to the named migration (for tests of the migrations). */
  async migrate(to?: string): Promise<void> {
    await migrateStore(this.db, to);
  }

  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.db);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.db.destroy(); // closes the SQLite handle too
  }
}
