// How long `labtrace server migrate-store` takes to copy a SQLite lab into PostgreSQL and verify the copy, and how much
// memory it holds meanwhile: a lab of BENCH_MIGRATE_STORE_ROWS samples in the per-sample index (written straight into
// a migrated store, in batches of 500 as ingest writes them) and BENCH_MIGRATE_STORE_ENTRIES transparency-log
// entries (appended by the log itself, a checkpoint signed halfway), copied into a
// PostgreSQL 15 on this machine (started for the run, fsync off: this measures the copy's work, not the disk's).
// (the function `labtrace server migrate-store` runs, without its printing). The copy, the sequences and the verification (both sides read back and digested, the log recomputed) are one
// transaction, timed as one; the RSS is sampled every 100 ms. Environment: BENCH_MIGRATE_STORE_ROWS (1,000,000),
// BENCH_MIGRATE_STORE_ENTRIES (20,000). Writes bench/results/migrate-store.json.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { TextEncoder } from 'node:util';
import Database from 'better-sqlite3';
import { formatSignerKey, parseSignerKey } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { TransparencyLog } from '../server/dist/src/log/transparency-log.js';
import { serverMigrations } from '../server/dist/src/migrations.js';
import { LabDatabase, migrateStore } from '../server/dist/src/store/database.js';
import { openStore, parseDatabaseUrl } from '../server/dist/src/store/dialect.js';
import { copySqliteToPostgres } from '../server/dist/src/store/migrate-store.js';
import { startPostgres } from '../server/dist/test/helpers/postgres.js';
import { envReader } from './lib/env.js';
import { round1, writeResult } from './lib/result.js';

const NAME = 'migrate-store';
const { envInt } = envReader(NAME);
const params = {
  rows: envInt('BENCH_MIGRATE_STORE_ROWS', 1_000_000, 1000, 100_000_000),
  entries: envInt('BENCH_MIGRATE_STORE_ENTRIES', 20_000, 10, 10_000_000),
};

useNodeCrypto();
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-bench-mstore-'));
const postgres = await startPostgres();
try {
  // the lab
  const made = Date.now();
  const database = new LabDatabase(dir, serverMigrations);
  await database.migrate();
  const sqlite = database.sqlite;
  sqlite.prepare("INSERT INTO gateway_ids (id, name) VALUES (1, 'gw-a')").run();
  for (let s = 1; s <= 20; s++)
    sqlite.prepare("INSERT INTO streams (id, gateway, instrument, channel, unit) VALUES (?, 'gw-a', ?, 'c', 'kN')").run(s, `i-${s}`);
  const insert = sqlite.prepare(
    'INSERT INTO samples (gateway, seq, stream, ts, num, text, kind, quality, reason) VALUES (1, ?, ?, ?, ?, NULL, 3, 0, NULL)',
  );
  const batch = sqlite.transaction((first, n) => {
    for (let i = first; i < first + n; i++) insert.run(i, 1 + (i % 20), 1_800_000_000_000 + i, Math.sin(i) * 100);
  });
  for (let first = 0; first < params.rows; first += 500) batch(first, Math.min(500, params.rows - first));
  const origin = 'labtrace/bench';
  const keyFile = path.join(dir, 'log.key');
  const seed = new Uint8Array(32).map((_, i) => i + 1);
  writeFileSync(keyFile, `${formatSignerKey(origin, seed)}\n`, { mode: 0o600 });
  const log = new TransparencyLog(database, { origin, signer: parseSignerKey(formatSignerKey(origin, seed)), minCheckpointIntervalMs: 0 });
  log.open(0);
  const entry = (i) => new TextEncoder().encode(JSON.stringify({ type: 'labtrace-bench', i, pad: 'x'.repeat(200) }));
  for (let i = 0; i < params.entries; i += 100) {
    log.append(
      'audit-event',
      Array.from({ length: Math.min(100, params.entries - i) }, (_, k) => entry(i + k)),
    );
    if (i + 100 >= params.entries / 2 && i < params.entries / 2) log.maybeCheckpoint(1);
  }
  await database.close();
  console.log(`${NAME}: a lab of ${params.rows} samples and ${params.entries} log entries made in ${((Date.now() - made) / 1000).toFixed(1)} s`);

  // the copy, as the command runs it
  let peakRss = process.memoryUsage().rss;
  const baseRss = peakRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const source = new Database(path.join(dir, 'labtrace.sqlite'), { readonly: true, fileMustExist: true });
  const target = openStore(parseDatabaseUrl(postgres.url, 'url', dir), { poolSize: 2 });
  let copy;
  try {
    await migrateStore(target.db, serverMigrations);
    copy = await copySqliteToPostgres(source, target.db, { logKey: parseSignerKey(formatSignerKey(origin, seed)), migrations: serverMigrations });
  } finally {
    source.close();
    await target.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  if (!copy.verification.ok) throw new Error(`the copy does not verify: ${copy.verification.problems.join('; ')}`);
  const results = {
    rows: params.rows,
    logEntries: params.entries,
    seconds: round1(seconds),
    copySeconds: round1(copy.timings.copyMs / 1000),
    verifySeconds: round1(copy.timings.verifyMs / 1000),
    samplesPerSecond: Math.round(params.rows / seconds),
    cpuSeconds: round1((used.user + used.system) / 1e6),
    peakRssMiB: round1(peakRss / 2 ** 20),
    rssGrowthMiB: round1((peakRss - baseRss) / 2 ** 20),
  };
  console.log(results);
  writeResult(NAME, { params, results });
} finally {
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
