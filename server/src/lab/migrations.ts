// The lab records' tables (lab/): samples received, methods, runs and their ranges, instrument status, calibrations and
// checks, accreditations, run results, instrument health, share links; and the indexes of the overview.
import { sql, type Kysely, type Migration } from 'kysely';
import { ddl, dialectOf } from '../store/portable-ddl.js';

/** Append-only: a wrong record is corrected by a newer one (with its reason), never edited or deleted. */
const calibrationMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(
      db,
      `CREATE TABLE calibrations (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, calibrated_at INTEGER NOT NULL,
      laboratory TEXT NOT NULL, certificate TEXT NOT NULL, results TEXT NOT NULL, uncertainty TEXT NOT NULL,
      adjustments TEXT, acceptance TEXT, next_due_at INTEGER NOT NULL, reason TEXT,
      recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX calibrations_by_instrument ON calibrations (instrument, calibrated_at)`);
    await ddl(
      db,
      `CREATE TABLE instrument_checks (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, checked_at INTEGER NOT NULL,
      result TEXT NOT NULL CHECK (result IN ('pass', 'fail')), description TEXT NOT NULL,
      recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX instrument_checks_by_instrument ON instrument_checks (instrument, checked_at)`);
    for (const table of ['calibrations', 'instrument_checks']) {
      await ddl(db, `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`);
      await ddl(db, `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`);
    }
  },
};

/**
 * The certificates calibrating labs issued, attached to their calibration records: the PDF's bytes with their
 * SHA-256, once per record (written once, never deleted, like the record).
 */
const calibrationAttachmentsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(
      db,
      `CREATE TABLE calibration_attachments (
      calibration INTEGER PRIMARY KEY REFERENCES calibrations (id), instrument TEXT NOT NULL, filename TEXT NOT NULL,
      content_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, data BLOB NOT NULL,
      uploaded_by TEXT NOT NULL, uploaded_at INTEGER NOT NULL)`,
    );
    await ddl(
      db,
      `CREATE TRIGGER calibration_attachments_no_delete BEFORE DELETE ON calibration_attachments BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`,
    );
    await ddl(
      db,
      `CREATE TRIGGER calibration_attachments_no_update BEFORE UPDATE ON calibration_attachments BEGIN SELECT RAISE(ABORT, 'calibration_attachments rows are written once'); END`,
    );
  },
};

/**
 * Append-only: an accreditation is written once; its scope changes by a new version and its status by an
 * event (suspension, reinstatement, withdrawal), each with the reason, never by an update in place.
 */
const accreditationMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(
      db,
      `CREATE TABLE accreditations (
      id TEXT PRIMARY KEY, body TEXT NOT NULL, number TEXT NOT NULL, standard TEXT NOT NULL,
      valid_from INTEGER NOT NULL, valid_to INTEGER NOT NULL, recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL,
      CHECK (valid_to > valid_from))`,
    );
    // version 1 is the scope as granted (in force from valid_from); later versions extend or reduce it from when they are recorded
    await ddl(
      db,
      `CREATE TABLE accreditation_scopes (
      accreditation TEXT NOT NULL REFERENCES accreditations(id), version INTEGER NOT NULL, effective_from INTEGER NOT NULL,
      entries TEXT NOT NULL, reason TEXT, recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL,
      PRIMARY KEY (accreditation, version))`,
    );
    await ddl(
      db,
      `CREATE TABLE accreditation_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, accreditation TEXT NOT NULL REFERENCES accreditations(id),
      kind TEXT NOT NULL CHECK (kind IN ('suspend', 'reinstate', 'withdraw')), at INTEGER NOT NULL,
      reason TEXT NOT NULL, recorded_by TEXT NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX accreditation_events_by_accreditation ON accreditation_events (accreditation, at, id)`);
    for (const table of ['accreditations', 'accreditation_scopes', 'accreditation_events']) {
      await ddl(db, `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`);
      await ddl(db, `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`);
    }
  },
};

const equipmentHealthMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(
      db,
      `CREATE TABLE instrument_health (
      id INTEGER PRIMARY KEY AUTOINCREMENT, instrument TEXT NOT NULL, at INTEGER NOT NULL, connected INTEGER NOT NULL,
      polls INTEGER NOT NULL, errors TEXT NOT NULL, latency_p50 REAL, latency_p99 REAL)`,
    );
    await ddl(db, `CREATE INDEX instrument_health_by_instrument ON instrument_health (instrument, at)`);
  },
};

/** the table of the links (database.ts registers it as 0032_run_shares) */
const runSharesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // the token's SHA-256 only: the store never holds a working link
    await ddl(
      db,
      `CREATE TABLE run_shares (
      id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL REFERENCES runs(id), token_hash TEXT NOT NULL UNIQUE,
      note TEXT, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      revoked_by TEXT, revoked_at INTEGER, revoke_reason TEXT, first_used_at INTEGER, uses INTEGER NOT NULL DEFAULT 0)`,
    );
    await ddl(db, `CREATE INDEX run_shares_by_run ON run_shares (run, id)`);
    await ddl(db, `CREATE TRIGGER run_shares_no_delete BEFORE DELETE ON run_shares BEGIN SELECT RAISE(ABORT, 'share links are never deleted'); END`);
    // a revocation is final, and what a link was made for never changes
    await ddl(
      db,
      `CREATE TRIGGER run_shares_fixed BEFORE UPDATE ON run_shares
      WHEN NEW.run IS NOT OLD.run OR NEW.token_hash IS NOT OLD.token_hash OR NEW.created_at IS NOT OLD.created_at
        OR NEW.expires_at IS NOT OLD.expires_at OR NEW.created_by IS NOT OLD.created_by
        OR (OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS NOT OLD.revoked_at OR NEW.revoke_reason IS NOT OLD.revoke_reason))
      BEGIN SELECT RAISE(ABORT, 'a share link changes only by its use and its revocation'); END`,
    );
  },
};

/** The indexes the overview's queries read (migration 0040_overview_indexes). */
const overviewIndexesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(db, `CREATE INDEX runs_by_start ON runs (started_at)`);
    // covering: the counts, durations and utilisation read no run row
    await ddl(db, `CREATE INDEX runs_by_end ON runs (ended_at, state, started_at, instruments)`);
    await ddl(db, `CREATE INDEX runs_by_state ON runs (state)`);
    // the verdict as a column computed from the results (never stored twice), indexed: read without parsing each document
    // (PostgreSQL 15 computes a generated column when the row is written, STORED, from the results as JSON)
    if (dialectOf(db) === 'sqlite')
      await ddl(db, `ALTER TABLE run_results ADD COLUMN verdict TEXT GENERATED ALWAYS AS (json_extract(results, '$.verdict')) VIRTUAL`);
    else await ddl(db, `ALTER TABLE run_results ADD COLUMN verdict TEXT GENERATED ALWAYS AS ((results::jsonb) ->> 'verdict') STORED`);
    await ddl(db, `CREATE INDEX run_results_verdict ON run_results (run, verdict)`);
    await ddl(db, `CREATE INDEX certificates_by_issue ON certificates (issued_at)`);
    // open alarms: raised and never cleared (a cleared alarm stays cleared: its condition coming back raises a new one)
    await ddl(db, `CREATE INDEX run_alarms_by_event ON run_alarms (event, run, alarm)`);
    // the oldest draft: requests oldest first, until one without a certificate
    await ddl(db, `CREATE INDEX certificate_requests_by_time ON certificate_requests (requested_at)`);
    // the audit entries not anchored yet in the transparency log: the housekeeping's anchoring reads these only,
    // instead of every entry of a large audit trail at each round (which blocked the server's requests)
    await ddl(db, `CREATE INDEX audit_trail_unanchored ON audit_trail (id) WHERE log_index IS NULL`);
  },
};

/**
 * A sample's and a method version's place in their lists (newest first, the cursor of a page) as a column of its own,
 * the same on both engines: it was SQLite's rowid, which PostgreSQL has not. The rows keep the numbers SQLite gave
 * them (on PostgreSQL: numbered in the order they were made); new ones are numbered by lab/lab-records.ts under a
 * lock. The rows are written once, so their refusing trigger is lifted for the numbering and put back as it was.
 */
const labRecordPositionsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    const postgres = dialectOf(db) === 'postgres';
    for (const [table, key] of [
      ['lab_samples', 'id'],
      ['methods', 'id, version'],
    ] as const) {
      await ddl(db, `ALTER TABLE ${table} ADD COLUMN position INTEGER`);
      await sql.raw(`DROP TRIGGER ${table}_no_update${postgres ? ` ON ${table}` : ''}`).execute(db);
      if (postgres)
        await sql
          .raw(
            `UPDATE ${table} t SET position = n.rn FROM (SELECT ${key}, row_number() OVER (ORDER BY created_at, ${key}) AS rn FROM ${table}) n
          WHERE ${key
            .split(', ')
            .map((c) => `n.${c} = t.${c}`)
            .join(' AND ')}`,
          )
          .execute(db);
      else await sql.raw(`UPDATE ${table} SET position = rowid`).execute(db);
      await ddl(db, `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`);
      await ddl(db, `CREATE UNIQUE INDEX ${table}_by_position ON ${table} (position)`);
    }
  },
};

export const labMigrations: Record<string, Migration> = {
  '0011_lab_records': {
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
  },
  // calibration records and intermediate checks (lab/calibration.ts)
  '0013_calibration': calibrationMigration,
  // accreditations, their scope versions and status events (lab/accreditation.ts)
  '0014_accreditation': accreditationMigration,
  '0016_run_results': {
    async up(db: Kysely<unknown>) {
      // A completed run's results (lab/results.ts), computed once from its records and kept as they were
      // reported: a later calibration record or method version does not change them.
      await ddl(db, `CREATE TABLE run_results (run TEXT PRIMARY KEY REFERENCES runs(id), computed_at INTEGER NOT NULL, results TEXT NOT NULL)`);
      await ddl(
        db,
        `CREATE TRIGGER run_results_no_delete BEFORE DELETE ON run_results BEGIN SELECT RAISE(ABORT, 'lab records are never deleted'); END`,
      );
      await ddl(
        db,
        `CREATE TRIGGER run_results_no_update BEFORE UPDATE ON run_results BEGIN SELECT RAISE(ABORT, 'run results are written once'); END`,
      );
    },
  },
  // calibration certificates attached to their records (lab/calibration.ts), instrument health over time (lab/equipment-health.ts)
  '0026_calibration_attachments': calibrationAttachmentsMigration,
  '0027_instrument_health': equipmentHealthMigration,
  '0031_runs_by_organization': {
    async up(db: Kysely<unknown>) {
      // the runs list of a client, newest first by row id (lab/runs.ts page): an index on the organization alone holds
      // its entries in row id order, so a page reads 50 entries instead of sorting the organization's every run
      await ddl(db, `CREATE INDEX runs_by_organization_rowid ON runs (organization)`);
    },
  },
  // read-only links that share one run with a client (lab/run-shares.ts)
  '0032_run_shares': runSharesMigration,
  // the indexes of the lab manager's overview (lab/overview.ts); it also indexes the tables of other modules
  // (certificates, run alarms, audit trail) for the overview's queries: the overview's change, kept whole
  '0040_overview_indexes': overviewIndexesMigration,
  // samples and method versions numbered in a column of their own, for their pages on both engines (lab/lab-records.ts)
  '0047_lab_record_positions': labRecordPositionsMigration,
  '0050_runs_by_number': {
    async up(db: Kysely<unknown>) {
      // the runs list pages by the run's number, the N of run-N (lab/runs.ts, RUN_NUMBER: the same text, so that a page
      // reads its entries from the index): PostgreSQL has no row id, which SQLite's list paged by and which equals N.
      // On PostgreSQL an id of another shape numbers 0 rather than fail its insert.
      const number =
        dialectOf(db) === 'postgres'
          ? `(CASE WHEN id ~ '^run-[0-9]{1,18}$' THEN CAST(substr(id, 5) AS BIGINT) ELSE 0 END)`
          : 'CAST(substr(id, 5) AS INTEGER)';
      await sql.raw(`CREATE INDEX runs_by_number ON runs (${number})`).execute(db);
      await sql.raw(`CREATE INDEX runs_by_organization_number ON runs (organization, ${number})`).execute(db);
      // the list's tabs filter by state: an index on the state alone ordered its runs by row id
      await sql.raw(`CREATE INDEX runs_by_state_number ON runs (state, ${number})`).execute(db);
    },
  },
};
