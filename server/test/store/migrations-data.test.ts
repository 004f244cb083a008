// The migrations that move or compute data (0004's compact samples, 0021's key events from the key table, 0040's
// verdict column, 0063's instrument positions) give the same rows on SQLite and on PostgreSQL 15: the PostgreSQL
// branches say what SQLite's say.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { migrateStore, type Tables } from '../../src/store/database.js';
import { Registry } from '../../src/store/registry.js';
import { ENGINES, StoreFixture, type Engine } from '../helpers/test-store.js';
import { serverMigrations } from '../../src/migrations.js';

const fixture = new StoreFixture('data');
beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

const open = async (engine: Engine): Promise<Kysely<unknown>> => fixture.open(await fixture.url(engine)).db as Kysely<unknown>;

// PostgreSQL's BIGINT reads as a string in node-postgres: compare numbers as numbers
const numbers = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+$/.test(v) && k !== 'text' ? Number(v) : v]));

describe.each(ENGINES)('on %s', (engine) => {
  test('samples of the first layout read back the same through the readable view after the compact layouts', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations, '0003_trust');
    await sql`INSERT INTO measurements (gateway, seq, instrument, channel, ts, value_num, value_text, value_kind, unit, quality, reason, received_at)
      VALUES ('gw-1', 0, 'utm-1', 'force', 1000, 12.5, NULL, 'number', 'kN', 'good', NULL, 0),
             ('gw-1', 1, 'utm-1', 'door', 1001, 1, NULL, 'boolean', '', 'uncertain', NULL, 0),
             ('gw-1', 2, 'utm-1', 'state', 1002, NULL, 'Überlast', 'string', '', 'bad', 'E_RANGE', 0),
             ('gw-2', 0, 'bal-1', 'mass', 1003, NULL, NULL, 'null', 'g', 'bad', 'timeout', 0)`.execute(db);
    await migrateStore(db, serverMigrations);
    const { rows } = await sql<Record<string, unknown>>`SELECT gateway, seq, value_num, value_text, value_kind, unit, quality, reason
      FROM measurements ORDER BY gateway, seq`.execute(db);
    expect(rows.map(numbers)).toEqual([
      { gateway: 'gw-1', seq: 0, value_num: 12.5, value_text: null, value_kind: 'number', unit: 'kN', quality: 'good', reason: null },
      { gateway: 'gw-1', seq: 1, value_num: 1, value_text: null, value_kind: 'boolean', unit: '', quality: 'uncertain', reason: null },
      { gateway: 'gw-1', seq: 2, value_num: null, value_text: 'Überlast', value_kind: 'string', unit: '', quality: 'bad', reason: 'E_RANGE' },
      { gateway: 'gw-2', seq: 0, value_num: null, value_text: null, value_kind: 'null', unit: 'g', quality: 'bad', reason: 'timeout' },
    ]);
  });

  test('keys known before 0021 become key events, a revoked key keeping the batches signed under it', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations, '0020_security_event_sources');
    await sql`INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at, valid_until, reason, replaced_by)
      VALUES ('gw-1', 'k1', 'pub1', 'retired', 100, 200, NULL, 'k2'),
             ('gw-1', 'k2', 'pub2', 'active', 150, NULL, NULL, NULL),
             ('gw-2', 'k3', 'pub3', 'revoked', 120, 300, 'stolen', NULL)`.execute(db);
    await sql`INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at)
      VALUES ('gw-2', 4, 0, 1, '{"keyId":"k3"}', 's', 1), ('gw-2', 9, 1, 1, '{"keyId":"k3"}', 's', 2),
             ('gw-2', 11, 2, 1, '{"keyId":"other"}', 's', 3)`.execute(db);
    const before = Date.now();
    await migrateStore(db, serverMigrations);
    const { rows } = await sql<{ gateway: string; record: string }>`SELECT gateway, record FROM key_events ORDER BY id`.execute(db);
    const records = rows.map((r) => JSON.parse(r.record) as Record<string, unknown>);
    // the retirement and revocation happen at the migration: their time is then
    for (const r of records.filter((r) => r['event'] !== 'registered')) {
      expect(r['at']).toBeGreaterThanOrEqual(before);
      r['at'] = 'at the migration';
    }
    const common = { type: 'labtrace-key-event', v: 1 };
    expect(records).toEqual([
      { ...common, event: 'registered', gateway: 'gw-1', keyId: 'k1', at: 100, key: 'pub1', source: 'migration' },
      { ...common, event: 'registered', gateway: 'gw-2', keyId: 'k3', at: 120, key: 'pub3', source: 'migration' },
      { ...common, event: 'registered', gateway: 'gw-1', keyId: 'k2', at: 150, key: 'pub2', source: 'migration' },
      { ...common, event: 'retired', gateway: 'gw-1', keyId: 'k1', at: 'at the migration', reason: 'migration', replacedBy: 'k2' },
      { ...common, event: 'revoked', gateway: 'gw-2', keyId: 'k3', at: 'at the migration', reason: 'stolen', from: 300, lastValidBatch: 9 },
    ]);
    // the members in SQLite's order on both (a verifier reading the record sees the same object)
    expect(Object.keys(records[4] ?? {})).toEqual(['type', 'v', 'event', 'gateway', 'keyId', 'at', 'reason', 'from', 'lastValidBatch']);
    const keys = await sql<Record<string, unknown>>`SELECT key_id, valid_until, last_valid_batch FROM gateway_keys ORDER BY key_id`.execute(db);
    expect(keys.rows.map(numbers)).toEqual([
      { key_id: 'k1', valid_until: 200, last_valid_batch: null },
      { key_id: 'k2', valid_until: null, last_valid_batch: null },
      { key_id: 'k3', valid_until: 300, last_valid_batch: 9 },
    ]);
  });

  test("a run's verdict is a column computed from its results", async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations);
    await sql`INSERT INTO organizations (id, name, created_at) VALUES ('org-1', 'Customer', 1)`.execute(db);
    await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
      VALUES ('S-1', 'org-1', 'bar', 'ok', 1, 'tech', 1)`.execute(db);
    await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
      VALUES ('m', 1, 'ISO 6892-1', 'Tensile', '{}', 'qm', 1)`.execute(db);
    await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at)
      VALUES ('R-1', 'S-1', 'org-1', 'm', 1, '[]', 'tech', 'completed', 1, 'tech', 1),
             ('R-2', 'S-1', 'org-1', 'm', 1, '[]', 'tech', 'completed', 1, 'tech', 1)`.execute(db);
    await sql`INSERT INTO run_results (run, computed_at, results) VALUES ('R-1', 2, '{"verdict":"pass","values":[]}'),
      ('R-2', 2, '{"values":[]}')`.execute(db);
    const { rows } = await sql<{ run: string; verdict: string | null }>`SELECT run, verdict FROM run_results ORDER BY run`.execute(db);
    expect(rows).toEqual([
      { run: 'R-1', verdict: 'pass' },
      { run: 'R-2', verdict: null },
    ]);
    // results are written once, on both (the refusal's message: better-sqlite3 makes its errors with the SqliteError of the
    // first test file that loaded it in this process, which `rejects.toThrow` does not take for an Error in a later file)
    await expect(sql`UPDATE run_results SET results = '{"verdict":"fail"}'`.execute(db)).rejects.toHaveProperty(
      'message',
      expect.stringContaining('run results are written once'),
    );
  });

  test('instruments known before 0063 keep their place in the register (SQLite: their row ids), new ones come after', async () => {
    const db = await open(engine);
    await migrateStore(db, serverMigrations, '0062_instrument_commands');
    await sql`INSERT INTO gateways (id, lab, first_seen, last_seen) VALUES ('gw-1', 'lab', 1, 1)`.execute(db);
    // announced in this order (not the ids' order), each later than the one before
    for (const [id, at] of [
      ['ut-c', 10],
      ['ut-a', 20],
      ['ut-b', 30],
    ] as const)
      await sql`INSERT INTO instruments (id, gateway, identity, channels, updated_at) VALUES (${id}, 'gw-1', '{}', '[]', ${at})`.execute(db);
    await migrateStore(db, serverMigrations);
    await new Registry({ db: db as Kysely<Tables> }).recordBirth(
      'lab',
      {
        v: 1,
        gateway: 'gw-2',
        session: 1,
        version: 't',
        instruments: [{ id: 'ut-0', identity: { maker: 'm', model: 'x', serialNumber: '0' }, channels: [] }],
      },
      40,
    );
    const { rows } = await sql<{ id: string; position: number }>`SELECT id, position FROM instruments ORDER BY id`.execute(db);
    expect(rows.map(numbers)).toEqual([
      { id: 'ut-0', position: 4 },
      { id: 'ut-a', position: 2 },
      { id: 'ut-b', position: 3 },
      { id: 'ut-c', position: 1 },
    ]);
    // one place per instrument
    await expect(sql`UPDATE instruments SET position = 1 WHERE id = 'ut-0'`.execute(db)).rejects.toHaveProperty(
      'message',
      expect.stringMatching(/unique/i),
    );
  });
});
