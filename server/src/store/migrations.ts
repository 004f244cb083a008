// The measurement store's tables (store/): gateways and their streams, the stored batches and the per-sample index,
// the InfluxDB forwarder's cursors (store/series/) and the store's write probe (store/capacity.ts).
import { sql, type Kysely, type Migration } from 'kysely';
import { columnTypes, ddl, dialectOf } from './portable-ddl.js';
import { partitionSamples } from './sample-partitions.js';

export const storeMigrations: Record<string, Migration> = {
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
  '0002_batch_headers': {
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
  },
  '0004_compact_samples': {
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
  },
  '0005_batch_records': {
    async up(db: Kysely<unknown>) {
      // A verified batch is stored whole (its signed header and its records' canonical bytes) before it
      // is acknowledged; the per-sample table is an index built from those bytes, right away when the
      // server keeps up, a moment later under load, and again after a crash.
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN records BLOB`);
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1`);
      await ddl(db, `CREATE INDEX batch_headers_unindexed ON batch_headers (received_at) WHERE indexed = 0`);
      await ddl(db, `CREATE INDEX batch_headers_by_seq ON batch_headers (gateway, first_seq)`);
    },
  },
  // the store's own table: where each batch's header sits in the transparency log (the log knows nothing of batches)
  '0007_batch_log_index': {
    async up(db: Kysely<unknown>) {
      // where each stored batch's header sits in the transparency log
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN log_index INTEGER`);
    },
  },
  '0009_influx_cursor': {
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
  },
  '0019_samples_rowid': {
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
  },
  '0022_store_probe': {
    async up(db: Kysely<unknown>) {
      // one row, written to find out whether a store that failed a write (disk full) can write again (store/capacity.ts)
      await ddl(db, `CREATE TABLE store_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)`);
    },
  },
  '0043_instrument_protocol': {
    async up(db: Kysely<unknown>) {
      // how the gateway reads the instrument (its profile's protocol), from the BIRTH; null for gateways older than it
      await ddl(db, `ALTER TABLE instruments ADD COLUMN protocol TEXT`);
    },
  },
  '0062_instrument_commands': {
    async up(db: Kysely<unknown>) {
      // the commands the instrument's gateway sends to it when asked (zero, tare), from the BIRTH, as a JSON list; null: none
      await ddl(db, `ALTER TABLE instruments ADD COLUMN commands TEXT`);
    },
  },
  '0042_samples_partitioned': {
    async up(db: Kysely<unknown>) {
      // On PostgreSQL the per-sample index is split by time (store/sample-partitions.ts): a month of samples per
      // partition, each with its own (stream, ts) index, so that a write touches this month's B-tree, a read of a time
      // range reads only the months it spans, and an old month leaves by DROP TABLE rather than by deleting rows.
      // SQLite keeps its one table (a lab's own store: its size is the lab's, and its ingest path is tuned to it).
      if (dialectOf(db) !== 'postgres') return;
      await partitionSamples(db);
    },
  },
  '0063_instrument_positions': {
    async up(db: Kysely<unknown>) {
      // An instrument's place in the register (newest registered first, the cursor of a page) as a column of its own,
      // the same on both engines: it was SQLite's rowid, which PostgreSQL has not (and which VACUUM may renumber in a
      // table whose key is not an INTEGER PRIMARY KEY). The instruments keep the numbers SQLite gave them (on
      // PostgreSQL: numbered in the order they were last announced); new ones are numbered by store/registry.ts.
      await ddl(db, `ALTER TABLE instruments ADD COLUMN position INTEGER`);
      if (dialectOf(db) === 'postgres')
        await sql`UPDATE instruments i SET position = n.rn
          FROM (SELECT id, row_number() OVER (ORDER BY updated_at, id) AS rn FROM instruments) n WHERE n.id = i.id`.execute(db);
      else await sql`UPDATE instruments SET position = rowid`.execute(db);
      await ddl(db, `CREATE UNIQUE INDEX instruments_by_position ON instruments (position)`);
    },
  },
  '0064_batches_by_log_index': {
    async up(db: Kysely<unknown>) {
      // the stored batches in the order their headers entered the log, which is commit order: what the one node that
      // inspects the running runs reads of every node's batches (inspection/sample-feed.ts)
      await ddl(db, `CREATE INDEX batch_headers_by_log_index ON batch_headers (log_index)`);
    },
  },
  '0066_influx_log_cursor': {
    async up(db: Kysely<unknown>) {
      // how far the InfluxDB forwarder has written the stored batches on PostgreSQL, per InfluxDB target: by the log
      // index of their headers, which is commit order there (store/series/stored-batches.ts). A table of its own, not
      // influx_cursor: that one counts SQLite row ids, and a cursor copied from a SQLite lab (migrate-store) must not be
      // read as a log index. (Created on both engines, like every table; SQLite keeps using influx_cursor.)
      await ddl(db, `CREATE TABLE influx_log_cursor (target TEXT PRIMARY KEY, last_log_index INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
    },
  },
  '0068_batch_retention': {
    async up(db: Kysely<unknown>) {
      // Retention (store/retention.ts): a batch past the raw-record retention loses its records' bytes but keeps its
      // header, signature, log index and its records' leaf hashes (`leaves`, 32 bytes each, in order), so that its
      // signed root and the log's proofs still check; `records_removed_at` and `index_removed_at` say when retention
      // removed its records and its samples of the per-sample index. Expired batches are found by arrival.
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN leaves BLOB`);
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN records_removed_at INTEGER`);
      await ddl(db, `ALTER TABLE batch_headers ADD COLUMN index_removed_at INTEGER`);
      await ddl(db, `CREATE INDEX batch_headers_by_arrival ON batch_headers (received_at)`);
    },
  },
};
