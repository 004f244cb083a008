// The certificates' tables (certificates/): requests, issued certificates and their events, the language of a request.
import { sql, type Kysely, type Migration } from 'kysely';
import { columnTypes, ddl, dialectOf } from '../store/portable-ddl.js';

/** Written once each; a certificate's status is the sum of its events. */
const certificatesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // 7.8.2.1 e: the customer's contact, printed on its reports
    await ddl(db, `ALTER TABLE organizations ADD COLUMN contact TEXT`);
    // a requested certificate (a draft): its number is reserved at the request
    await ddl(
      db,
      `CREATE TABLE certificate_requests (
      id TEXT PRIMARY KEY, run TEXT NOT NULL REFERENCES runs(id), organization TEXT NOT NULL, amends TEXT, reason TEXT,
      requested_by TEXT NOT NULL, requested_at INTEGER NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX certificate_requests_by_organization ON certificate_requests (organization, requested_at)`);
    // an issued certificate: its three renderings as issued, the signed statement and its place in the log
    await ddl(
      db,
      `CREATE TABLE certificates (
      id TEXT PRIMARY KEY REFERENCES certificate_requests(id), run TEXT NOT NULL, organization TEXT NOT NULL, amends TEXT UNIQUE,
      issued_by TEXT NOT NULL, issued_at INTEGER NOT NULL, content BLOB NOT NULL, json BLOB NOT NULL, pdf BLOB NOT NULL, dcc BLOB NOT NULL,
      statement TEXT NOT NULL, signature TEXT NOT NULL, key_id TEXT NOT NULL, json_file_digest TEXT NOT NULL, log_index INTEGER NOT NULL)`,
    );
    // issue, amend (on the new certificate) and revoke, as they entered the log
    await ddl(
      db,
      `CREATE TABLE certificate_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, certificate TEXT NOT NULL REFERENCES certificate_requests(id),
      kind TEXT NOT NULL CHECK (kind IN ('issue', 'amend', 'revoke')), at INTEGER NOT NULL, actor TEXT NOT NULL, reason TEXT,
      log_index INTEGER NOT NULL)`,
    );
    await ddl(db, `CREATE INDEX certificate_events_by_certificate ON certificate_events (certificate, id)`);
    for (const table of ['certificate_requests', 'certificates', 'certificate_events']) {
      await ddl(db, `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, 'certificates are never deleted'); END`);
      await ddl(db, `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} rows are written once'); END`);
    }
  },
};

/** The language a report was requested in (migration 0023_certificate_language): zh-CN, en or bilingual; NULL before. */
const certificateLanguageMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await ddl(db, `ALTER TABLE certificate_requests ADD COLUMN language TEXT`);
  },
};

/**
 * The number of a request (migration 0056_certificate_request_seq), the one its id ends in: the order of requests,
 * which a list pages by on both engines (PostgreSQL has no rowid). Until now SQLite's rowid gave that order, and the
 * number was the count of requests before it plus one; the existing requests get their rowid.
 */
const certificateRequestSeqMigration: Migration = {
  async up(db: Kysely<unknown>) {
    const { integer } = columnTypes(db);
    await db.schema.alterTable('certificate_requests').addColumn('seq', integer).execute();
    // requests are written once: the trigger that says so steps aside for the numbering of the existing ones
    const postgres = dialectOf(db) === 'postgres';
    await sql.raw(`DROP TRIGGER certificate_requests_no_update${postgres ? ' ON certificate_requests' : ''}`).execute(db);
    if (postgres)
      await sql`UPDATE certificate_requests SET seq = n.seq FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY requested_at, id) AS seq FROM certificate_requests) n
        WHERE n.id = certificate_requests.id`.execute(db);
    else await sql`UPDATE certificate_requests SET seq = rowid`.execute(db);
    await ddl(
      db,
      `CREATE TRIGGER certificate_requests_no_update BEFORE UPDATE ON certificate_requests BEGIN SELECT RAISE(ABORT, 'certificate_requests rows are written once'); END`,
    );
    await ddl(db, `CREATE UNIQUE INDEX certificate_requests_by_seq ON certificate_requests (seq)`);
  },
};

export const certificateMigrations: Record<string, Migration> = {
  // certificates (test reports) and their events; 0015 also adds the customer's contact to organizations (auth/): printed
  // on the reports, it came with them
  '0015_certificates': certificatesMigration,
  // the language a certificate is requested in
  '0023_certificate_language': certificateLanguageMigration,
  // the number of a request, the order lists page by on both engines
  '0056_certificate_request_seq': certificateRequestSeqMigration,
};
