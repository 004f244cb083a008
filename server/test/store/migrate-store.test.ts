// `labtrace server migrate-store`: a SQLite lab made by the real server (users, audit trail, measurements, a run,
// its results and certificate, the transparency log) copied into a real PostgreSQL 15 by the command as an operator
// runs it; every table's rows compared here on their own, the log's root and proof checked, and the verification
// shown able to fail: a changed row, a changed log entry, a wrong log key. Refusals and wrong options too.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { leafHash, parseSignerKey, toHex, type Sample, type VerifierKey } from '@labtrace/protocols';
import { TransparencyLog } from '../../src/log/transparency-log.js';
import { serverMigrations } from '../../src/migrations.js';
import { LabDatabase } from '../../src/store/database.js';
import { verifyStoreCopy } from '../../src/store/migrate-store.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import {
  jsonCaller,
  ORGANIZATION,
  postJson,
  records,
  send,
  signerOf,
  startServer,
  TestGateway,
  waitFor,
  type TestServer,
} from '../helpers/server.js';

const CLEAN_ENV = { LABTRACE_DATABASE_URL: '', LABTRACE_DATABASE_PASSWORD_FILE: '', LABTRACE_DATA_DIR: '' };
const DAY = 86_400_000;
const BIG = 2n ** 62n + 3n;

async function migrateStore(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(['server', 'migrate-store', ...args], CLEAN_ENV);
  const output = collect(proc);
  return { code: await exitOf(proc), output: output() };
}

let postgres: TestPostgres;
let dataDir: string;
let sqliteFile: string;
/** the lab's log after the server stopped: its size, its root, and its latest signed checkpoint's size */
let labLog: { size: number; root: string; checkpointSize: number };
let logKey: VerifierKey;

/** A lab made by the server: users and tokens, an organization, instruments, a calibration, a run measured and completed, its certificate issued. */
async function makeLab(): Promise<void> {
  const t: TestServer = await startServer();
  const call = jsonCaller(
    () => t,
    () => '',
  );
  dataDir = t.config.dataDir;
  const gw = await TestGateway.connect(t, 'gw-a');
  try {
    await gw.birth('utm-1');
    await waitFor('the instrument', () => (t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get() as { n: number }).n === 1);
    const now = Date.now();
    expect(
      (
        await call(
          '/api/instruments/utm-1/calibrations',
          postJson({
            calibratedAt: now - 10 * DAY,
            laboratory: 'Reference Lab',
            certificate: 'CAL-utm-1',
            results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
            uncertainty: { value: 0.1, unit: 'kN', k: 2 },
            nextDueAt: now + 300 * DAY,
          }),
        )
      ).status,
    ).toBe(201);
    expect(
      (
        await call(
          '/api/lab-samples',
          postJson({ id: 'B-1', organization: ORGANIZATION, description: 'steel bar', condition: 'intact', receivedAt: now }),
        )
      ).status,
    ).toBe(201);
    expect(
      (
        await call(
          '/api/methods',
          postJson({
            id: 'tensile',
            standard: 'ISO 6892-1:2019',
            title: 'Tensile testing at room temperature',
            definition: {
              measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
              instrumentTypes: ['x'],
              decisionRule: { kind: 'simple-acceptance' },
              results: [{ name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, limits: { min: 40 } }],
            },
          }),
        )
      ).status,
    ).toBe(201);
    // thousands of samples in signed batches, some before the run
    let seq = 0;
    for (let b = 0; b < 6; b++) {
      expect(await send(t, gw, gw.sign(records('utm-1', seq, 500, b + 0.25)))).toBe('acked');
      seq += 500;
    }
    const run = await call<{ id: string }>('/api/runs', postJson({ sample: 'B-1', method: 'tensile', instruments: ['utm-1'] }));
    expect(run.status).toBe(201);
    expect((await call(`/api/runs/${run.body.id}/start`, postJson({}))).status).toBe(200);
    const ts = Date.now();
    const samples: Sample[] = [10.2, 35.7, 42.031, 41.9, 0.4].map((value, i) => ({
      seq: seq++,
      instrument: 'utm-1',
      channel: 'c',
      ts: ts + i,
      value,
      unit: 'kN',
      quality: 'good',
    }));
    expect(await send(t, gw, gw.sign(samples))).toBe('acked');
    expect((await call(`/api/runs/${run.body.id}/stop`, postJson({}))).status).toBe(200);
    expect((await call(`/api/runs/${run.body.id}/results`)).status).toBe(200);
    const draft = await call<{ id: string }>('/api/certificates', postJson({ run: run.body.id }));
    expect(draft.status).toBe(201);
    expect((await call(`/api/certificates/${draft.body.id}/issue`, postJson({}), 'signatory')).status).toBe(200);
    // a checkpoint of everything so far, then more batches that no checkpoint covers yet
    t.server.log?.maybeCheckpoint(Date.now() + 60_000);
    for (let b = 0; b < 3; b++) {
      expect(await send(t, gw, gw.sign(records('utm-1', seq, 100, -b)))).toBe('acked');
      seq += 100;
    }
  } finally {
    await gw.end();
    await t.stop();
  }
  sqliteFile = path.join(dataDir, 'labtrace.sqlite');
  const signer = parseSignerKey(readFileSync(path.join(dataDir, 'log.key'), 'utf8').trim());
  logKey = { name: signer.name, keyId: signer.keyId, publicKey: signer.publicKey };
  // values the server rarely writes, which must still cross exactly: 64-bit integers beyond 2^53, a subnormal
  // double, text with quotes, backslashes, JSON and characters outside the BMP, bytes that are not UTF-8
  const database = new LabDatabase(dataDir, serverMigrations);
  database.sqlite.defaultSafeIntegers(true);
  database.sqlite.prepare('INSERT INTO store_probe (id, at) VALUES (?, ?)').run(BIG, -(2n ** 63n));
  const insertSample = database.sqlite.prepare(
    'INSERT INTO samples (gateway, seq, stream, ts, num, text, kind, quality, reason) VALUES (1, ?, 1, ?, ?, ?, 3, 0, ?)',
  );
  insertSample.run(1_000_000n, BIG, -1.5e300, null, 'a "quoted" \\ back\\slash {"json": [1, 2.5, null]} \u{1F9EA}');
  insertSample.run(1_000_001n, 1n, 5e-324, 'text, with, commas}{', null);
  database.sqlite.prepare("INSERT INTO influx_cursor (target, last_rowid, updated_at) VALUES ('x', ?, 0)").run(2n ** 53n + 1n);
  database.sqlite.defaultSafeIntegers(false);
  // entries appended by the log itself after its latest checkpoint: the proof has a way to go
  const origin = signer.name;
  const log = new TransparencyLog(database, { origin, signer, minCheckpointIntervalMs: 1000 });
  log.open();
  log.append('audit-event', [new Uint8Array([0xff, 0x00, 0x80]), new TextEncoder().encode('{"after":"the checkpoint"}')]);
  labLog = { size: log.size, root: toHex(log.root()), checkpointSize: log.latestCheckpoint().size };
  await database.close();
}

/** Every table's rows, each as text, sorted: SQLite's and PostgreSQL's read back independently of the command. */
async function rowsOf(url: string): Promise<{ sqlite: Map<string, string[]>; postgres: Map<string, string[]> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const sqliteRows = new Map<string, string[]>();
  const postgresRows = new Map<string, string[]>();
  const cell = (v: unknown): string => {
    if (v === null) return 'NULL';
    if (Buffer.isBuffer(v)) return `x${v.toString('hex')}`;
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
    throw new Error(`unexpected value ${typeof v}`);
  };
  const source = new Database(sqliteFile, { readonly: true });
  try {
    const tables = (
      source
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_%'")
        .pluck()
        .all() as string[]
    ).sort();
    for (const table of tables) {
      const columns = (source.prepare('SELECT name FROM pragma_table_xinfo(?)').pluck().all(table) as string[]).sort();
      const list = columns.map((c) => `"${c}"`).join(', ');
      sqliteRows.set(
        table,
        (source.prepare(`SELECT ${list} FROM "${table}"`).safeIntegers(true).raw(true).all() as unknown[][]).map((r) => r.map(cell).join('|')).sort(),
      );
      const { rows } = await client.query<unknown[]>({ text: `SELECT ${list} FROM "${table}"`, rowMode: 'array' });
      postgresRows.set(table, rows.map((r) => r.map(cell).join('|')).sort());
    }
  } finally {
    source.close();
    await client.end();
  }
  return { sqlite: sqliteRows, postgres: postgresRows };
}

function kyselyOn(url: string): Kysely<unknown> {
  return new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
}

beforeAll(async () => {
  postgres = await startPostgres();
  await makeLab();
}, 120_000);
afterAll(async () => {
  await postgres.stop();
});

describe('a lab copied into PostgreSQL', () => {
  let url: string;
  let first: { code: number | null; output: string };

  beforeAll(async () => {
    url = await postgres.createDatabase('copied');
    first = await migrateStore(['--from', `sqlite:${sqliteFile}`, '--to', url]);
  }, 120_000);

  test('the command copies, verifies and commits; it prints each table, the log size and root', () => {
    expect(first.output).toContain('verified: ');
    expect(first.code).toBe(0);
    expect(first.output).toMatch(/^samples\s+\d+\s+\d+\s+match [0-9a-f]{64}$/m);
    expect(first.output).toContain(
      `transparency log: ${labLog.size} entries, root ${labLog.root}; checkpoint of ${logKey.name} at size ${labLog.checkpointSize}`,
    );
    expect(first.output).toMatch(
      new RegExp(`consistency proof ${labLog.checkpointSize} -> ${labLog.size} verifies, the [1-9]\\d* stored checkpoints agree`),
    );
    expect(labLog.checkpointSize).toBeLessThan(labLog.size);
    expect(first.output).not.toMatch(/MISMATCH/);
  });

  test("every table's rows are equal, read on each side on their own", async () => {
    const { sqlite, postgres: copied } = await rowsOf(url);
    expect([...copied.keys()]).toEqual([...sqlite.keys()]);
    for (const [table, rows] of sqlite) expect({ table, rows: copied.get(table) }).toEqual({ table, rows });
    // the lab is all there: measurements, a run, users, the audit trail, a certificate, the log
    const count = (table: string): number => sqlite.get(table)?.length ?? 0;
    expect(count('samples')).toBeGreaterThan(3000);
    expect(count('batch_headers')).toBe(10);
    expect(count('runs')).toBe(1);
    expect(count('run_results')).toBe(1);
    expect(count('certificates')).toBe(1);
    expect(count('users')).toBeGreaterThanOrEqual(5);
    expect(count('audit_trail')).toBeGreaterThan(5);
    expect(count('calibrations')).toBe(1);
    expect(count('log_entries')).toBe(labLog.size);
    // the values that test the types: 64-bit integers, a subnormal, text with quotes and backslashes, bytes
    expect(copied.get('store_probe')).toEqual([`${-(2n ** 63n)}|${BIG}`]);
    expect(copied.get('samples')?.some((r) => r.includes('a "quoted" \\ back\\slash {"json": [1, 2.5, null]} \u{1F9EA}'))).toBe(true);
    expect(copied.get('samples')?.some((r) => r.includes('|5e-324|'))).toBe(true);
    expect(copied.get('influx_cursor')?.[0]).toContain(String(2n ** 53n + 1n));
  });

  test('--verify-only checks the committed copy again', async () => {
    const again = await migrateStore([
      '--verify-only',
      '--from',
      `sqlite:${sqliteFile}`,
      '--to',
      url,
      '--log-key-file',
      path.join(dataDir, 'log.key'),
    ]);
    expect(again.output).toContain('verified: ');
    expect(again.code).toBe(0);
  });

  test('new rows get new ids: every sequence is past the copied ids (and past 2^53)', async () => {
    const db = kyselyOn(url);
    try {
      await db
        .transaction()
        .execute(async (trx) => {
          const max = async (table: string): Promise<bigint> =>
            BigInt((await sql<{ m: string }>`SELECT max(id) AS m FROM ${sql.id(table)}`.execute(trx)).rows[0]?.m ?? 0);
          const maxUser = await max('users');
          const user = await sql<{ id: string }>`INSERT INTO users (username, role, password_hash, created_at, password_changed_at)
            VALUES ('new-user', 'technician', 'x', 0, 0) RETURNING id`.execute(trx);
          expect(BigInt(user.rows[0]?.id ?? 0)).toBe(maxUser + 1n);
          const maxAudit = await max('audit_trail');
          const audit = await sql<{ id: string }>`INSERT INTO audit_trail (at, actor, actor_role, action, record_type, record_id, prev_hash, hash)
            VALUES (0, 'a', 'admin', 'create', 'user', 'new-user', 'p', 'h') RETURNING id`.execute(trx);
          expect(BigInt(audit.rows[0]?.id ?? 0)).toBe(maxAudit + 1n);
          const probe = await sql<{ id: string }>`INSERT INTO store_probe (at) VALUES (1) RETURNING id`.execute(trx);
          expect(BigInt(probe.rows[0]?.id ?? 0)).toBe(BIG + 1n);
          throw new Error('rolled back');
        })
        .catch((err: Error) => {
          if (err.message !== 'rolled back') throw err;
        });
    } finally {
      await db.destroy();
    }
  });

  describe('the verification fails when the copy differs, naming the table or the log', () => {
    const source = (): Database.Database => new Database(sqliteFile, { readonly: true });

    async function tampered(change: (trx: Kysely<unknown>) => Promise<unknown>, key: VerifierKey = logKey): Promise<string[]> {
      const db = kyselyOn(url);
      const sqlite = source();
      let problems: string[] = [];
      try {
        await db
          .transaction()
          .execute(async (trx) => {
            await change(trx);
            const report = await verifyStoreCopy(sqlite, trx, { logKey: key });
            problems = report.problems;
            expect(report.ok).toBe(problems.length === 0);
            throw new Error('rolled back');
          })
          .catch((err: Error) => {
            if (err.message !== 'rolled back') throw err;
          });
      } finally {
        sqlite.close();
        await db.destroy();
      }
      return problems;
    }

    test('untouched, it passes', async () => {
      expect(await tampered(() => Promise.resolve())).toEqual([]);
    });

    test('one changed row', async () => {
      const problems = await tampered((trx) => sql`UPDATE users SET role = 'admin' WHERE username = 'client'`.execute(trx));
      expect(problems).toEqual([expect.stringMatching(/^table users: the rows differ/)]);
    });

    test('one missing row', async () => {
      const problems = await tampered((trx) => sql`DELETE FROM samples WHERE seq = 1000001`.execute(trx));
      expect(problems).toEqual([expect.stringMatching(/^table samples: \d+ rows in PostgreSQL, \d+ in SQLite$/)]);
    });

    test('one log entry changed with its leaf hash: the root at the signed checkpoint differs', async () => {
      const data = new TextEncoder().encode('{"forged":true}');
      const problems = await tampered((trx) =>
        sql`UPDATE log_entries SET data = ${Buffer.from(data)}, leaf = ${Buffer.from(leafHash(data))} WHERE idx = 1`.execute(trx),
      );
      expect(problems.some((p) => p.startsWith('table log_entries: the rows differ'))).toBe(true);
      expect(
        problems.some((p) => /^transparency log: the copied log's root at size \d+ is [0-9a-f]{64}, the lab's signed checkpoint says/.test(p)),
      ).toBe(true);
    });

    test("a copied subtree hash changed: the consistency proof from the lab's checkpoint fails", async () => {
      const problems = await tampered((trx) => sql`UPDATE log_hashes SET hash = ${Buffer.alloc(32, 7)}`.execute(trx));
      expect(problems.some((p) => p.startsWith('table log_hashes: the rows differ'))).toBe(true);
      expect(problems).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^transparency log: the consistency proof from the signed checkpoint \\(size ${labLog.checkpointSize}\\) to size ${labLog.size} does not verify`,
          ),
        ),
      );
    });

    test('an older checkpoint changed: it no longer agrees with the copied tree at its size', async () => {
      const problems = await tampered((trx) =>
        sql`UPDATE log_checkpoints SET note = (SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1)
          WHERE size = (SELECT min(size) FROM log_checkpoints)`.execute(trx),
      );
      expect(problems.some((p) => p.startsWith('table log_checkpoints: the rows differ'))).toBe(true);
      expect(problems).toContainEqual(
        expect.stringMatching(/^transparency log: the copied checkpoint at size \d+ says root [0-9a-f]{64}, the copied tree has/),
      );
    });

    test('another log key: the checkpoint is not the lab’s', async () => {
      const other = signerOf('not-the-log');
      const problems = await tampered(() => Promise.resolve(), { name: other.name, keyId: other.keyId, publicKey: other.publicKey });
      expect(problems).toEqual([
        expect.stringMatching(/^transparency log: the latest checkpoint \(size \d+, log "[^"]+"\) is not signed by the log key not-the-log/),
      ]);
    });

    test('a committed change makes --verify-only exit 1 naming the table', async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query("UPDATE gateways SET version = 'changed'");
      await client.end();
      const r = await migrateStore(['--verify-only', '--from', `sqlite:${sqliteFile}`, '--to', url]);
      expect(r.code).toBe(1);
      expect(r.output).toMatch(/^gateways\s+1\s+1\s+MISMATCH/m);
      expect(r.output).toContain('MISMATCH: table gateways: the rows differ');
      expect(r.output).toContain('NOT VERIFIED: 1 problem');
    });
  });

  test('a target that holds lab data is refused, and left as it is', async () => {
    const r = await migrateStore(['--from', `sqlite:${sqliteFile}`, '--to', url]);
    expect(r.code).toBe(3);
    expect(r.output).toMatch(
      /refused: --to: the PostgreSQL store already holds lab data \(in [a-z_, ]*users[a-z_, ]*\).*drop and create the database, then rerun/,
    );
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM log_entries');
    await client.end();
    expect(Number(rows[0]?.n)).toBe(labLog.size);
  });
});

test('a copy that does not verify is rolled back: the target stays empty, and a rerun can copy', async () => {
  const url = await postgres.createDatabase('rolled_back');
  const other = signerOf('not-the-log');
  const wrongKey = `${other.name}+${toHex(other.keyId)}+${Buffer.concat([Buffer.from([1]), Buffer.from(other.publicKey)]).toString('base64')}`;
  const r = await migrateStore(['--from', `sqlite:${sqliteFile}`, '--to', url, '--log-key', wrongKey]);
  expect(r.code).toBe(1);
  expect(r.output).toContain('MISMATCH: transparency log: the latest checkpoint');
  expect(r.output).toContain('it was rolled back and the PostgreSQL store is empty again');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ n: string }>(
    'SELECT (SELECT count(*) FROM samples) + (SELECT count(*) FROM users) + (SELECT count(*) FROM log_entries) AS n',
  );
  await client.end();
  expect(Number(rows[0]?.n)).toBe(0);
  const rerun = await migrateStore(['--from', `sqlite:${sqliteFile}`, '--to', url]);
  expect(rerun.code).toBe(0);
}, 120_000);

test('the PostgreSQL password comes from a file and appears in no output', async () => {
  const password = 'pg-pw-for-the-copy-41c7';
  const secured = await startPostgres({ password });
  try {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'labtrace-pw-')), 'db.password');
    writeFileSync(file, `${password}\n`);
    const r = await migrateStore(['--from', `sqlite:${sqliteFile}`, '--to', secured.url, '--password-file', file]);
    expect(r.output).toContain('verified: ');
    expect(r.code).toBe(0);
    expect(r.output).not.toContain(password);
  } finally {
    await secured.stop();
  }
}, 120_000);

test("a store with batches outside its per-sample index (the index worker's, or a backlog) is refused, naming how many", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-unindexed-'));
  const file = path.join(dir, 'labtrace.sqlite');
  copyFileSync(sqliteFile, file);
  const db = new Database(file);
  const batches = db.prepare('UPDATE batch_headers SET indexed = 0').run().changes;
  db.close();
  expect(batches).toBeGreaterThan(0);
  const url = await postgres.createDatabase('from_unindexed');
  const r = await migrateStore(['--from', `sqlite:${file}`, '--to', url, '--log-key', formatKey()]);
  expect(r.code).toBe(3);
  expect(r.output).toContain(`refused: ${batches} stored batches are not in the store's per-sample index`);
  expect(r.output).toContain('start the server with store.indexWorker off');
});

test('a source not at the latest schema is refused with what to run', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-old-'));
  const old = new LabDatabase(dir, serverMigrations);
  await old.migrate('0006_transparency_log');
  await old.close();
  const url = await postgres.createDatabase('from_old');
  const file = path.join(dir, 'labtrace.sqlite');
  const r = await migrateStore(['--from', `sqlite:${file}`, '--to', url, '--log-key', formatKey()]);
  expect(r.code).toBe(3);
  expect(r.output).toContain(`refused: --from: the SQLite store is not at the latest schema`);
  expect(r.output).toContain(`run "labtrace server migrate --database-url sqlite:${file}" first`);
});

function formatKey(): string {
  return `${logKey.name}+${toHex(logKey.keyId)}+${Buffer.concat([Buffer.from([1]), Buffer.from(logKey.publicKey)]).toString('base64')}`;
}

const wrongOptions: { args: () => string[]; message: RegExp }[] = [
  { args: () => ['--to', 'postgres://u@127.0.0.1:1/x'], message: /--from: missing/ },
  { args: () => ['--from', 'postgres://u@127.0.0.1:1/x', '--to', 'postgres://u@127.0.0.1:1/x'], message: /--from: expected sqlite:<file>/ },
  {
    args: () => ['--from', 'sqlite:/nonexistent/lab.sqlite', '--to', 'postgres://u@127.0.0.1:1/x'],
    message: /--from: \/nonexistent\/lab.sqlite: file not found/,
  },
  { args: () => ['--from', `sqlite:${sqliteFile}`], message: /--to: missing/ },
  { args: () => ['--from', `sqlite:${sqliteFile}`, '--to', `sqlite:${sqliteFile}`], message: /--to: expected postgres:\/\// },
  { args: () => ['--from', `sqlite:${sqliteFile}`, '--to', 'postgres://u:secret-pw@/x'], message: /--to: not a valid URL/ },
  {
    args: () => ['--from', `sqlite:${sqliteFile}`, '--to', 'postgres://u@127.0.0.1:1/x', '--log-key', 'nonsense'],
    message: /--log-key: not a log key/,
  },
  {
    args: () => ['--from', `sqlite:${sqliteFile}`, '--to', 'postgres://u@127.0.0.1:1/x', '--log-key-file', '/nonexistent/log.key'],
    message: /--log-key-file: \/nonexistent\/log.key: file not found/,
  },
  {
    args: () => ['--from', `sqlite:${sqliteFile}`, '--to', 'postgres://u@127.0.0.1:1/x', '--password-file', '/nonexistent/pw'],
    message: /--password-file: .*file not found/,
  },
  { args: () => ['--form', `sqlite:${sqliteFile}`], message: /Unknown option '--form'/ },
];

test.each(wrongOptions)('a wrong option exits 2 naming it: $message', async ({ args, message }) => {
  const r = await migrateStore(args());
  expect(r.code).toBe(2);
  expect(r.output).toMatch(message);
  expect(r.output).not.toContain('secret-pw');
});
