// Retention on a real server, on SQLite and on a real PostgreSQL 15: a gateway's older batches past the configured
// retention lose their records' bytes and their samples in the index, while their headers, signatures and leaf hashes
// stay (the signed root still checks, the header's log proof too); a batch held by a completed run without a
// certificate stays whole; the removal is one `retention` entry of the log, across which the log stays consistent, and
// one audit entry. A dry run changes nothing; a policy below the accreditation minimum is refused at config load; without
// a policy nothing is removed. The job's clock is the server's injected clock: nothing waits for six years to pass.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import {
  bytesEqual,
  canonicalBytes,
  fromBase64,
  hashSlices,
  leafHash,
  parseCheckpoint,
  parseNote,
  readRecords,
  rootOfPacked,
  verifyBundle,
  verifyConsistency,
  verifyEd25519,
  verifyInclusion,
  type BatchHeader,
} from '@labtrace/protocols';
import { loadServerConfig } from '../../src/config.js';
import { exportBundle } from '../../src/export/bundle.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { ServerMetrics, type MetricsSources } from '../../src/metrics/server-metrics.js';
import { ACCREDITATION_MINIMUM_DAYS } from '../../src/retention/config.js';
import { Retention, type RetentionEntry } from '../../src/retention/retention.js';
import { retentionCommand } from '../../src/retention/retention-cli.js';
import type { Tables } from '../../src/store/tables.js';
import { records, send, startServer, TestGateway, type TestServer } from '../helpers/server.js';
import { ENGINES, StoreFixture, type Engine } from '../helpers/test-store.js';

const DAY = 86_400_000;
const fixture = new StoreFixture('retention');

beforeAll(async () => {
  await fixture.start();
}, 120_000);
afterAll(() => fixture.close());

interface StoredRow {
  batch: number;
  first_seq: number;
  count: number;
  header: string;
  signature: string;
  received_at: number;
  records: Uint8Array | null;
  leaves: Uint8Array | null;
  log_index: number | null;
  records_removed_at: number | null;
  index_removed_at: number | null;
}

async function stored(db: Kysely<Tables>, gateway: string): Promise<StoredRow[]> {
  const { rows } = await sql<StoredRow>`SELECT batch, first_seq, count, header, signature, received_at, records, leaves, log_index,
    records_removed_at, index_removed_at FROM batch_headers WHERE gateway = ${gateway} ORDER BY batch`.execute(db);
  return rows.map((r) => ({
    ...r,
    batch: Number(r.batch),
    first_seq: Number(r.first_seq),
    count: Number(r.count),
    received_at: Number(r.received_at),
    log_index: r.log_index === null ? null : Number(r.log_index),
    records_removed_at: r.records_removed_at === null ? null : Number(r.records_removed_at),
    index_removed_at: r.index_removed_at === null ? null : Number(r.index_removed_at),
  }));
}

/** the packed leaf hashes of stored record bytes */
function leavesOf(bytes: Uint8Array): Uint8Array {
  const bounds = [0];
  readRecords(bytes, (_r, _s, end) => void bounds.push(end));
  return hashSlices(bytes, Uint32Array.from(bounds));
}

async function samplesOf(db: Kysely<Tables>): Promise<number[]> {
  const { rows } = await sql<{ seq: unknown }>`SELECT seq FROM samples ORDER BY seq`.execute(db);
  return rows.map((r) => Number(r.seq));
}

/** a completed run of gw-a's sequence numbers first..last, without a certificate (as the runs module writes one) */
async function completedRun(db: Kysely<Tables>, id: string, first: number, last: number): Promise<void> {
  await sql`INSERT INTO organizations (id, name, created_at) VALUES ('ret-org', 'Retention Org', 0) ON CONFLICT DO NOTHING`.execute(db);
  await sql`INSERT INTO lab_samples (id, organization, description, condition, received_at, created_by, created_at)
    VALUES ('ret-s', 'ret-org', 'bar', 'as received', 0, 'ada', 0) ON CONFLICT DO NOTHING`.execute(db);
  await sql`INSERT INTO methods (id, version, standard, title, definition, created_by, created_at)
    VALUES ('ret-m', 1, 'ISO 1', 'M', '{}', 'ada', 0) ON CONFLICT DO NOTHING`.execute(db);
  const instruments = JSON.stringify([{ id: 'ut-1', gateway: 'gw-a', type: 'x' }]);
  await sql`INSERT INTO runs (id, sample, organization, method_id, method_version, instruments, technician, state, accredited, created_by, created_at, started_at, ended_at)
    VALUES (${id}, 'ret-s', 'ret-org', 'ret-m', 1, ${instruments}, 'ada', 'completed', 0, 'ada', 0, 1, 2)`.execute(db);
  await sql`INSERT INTO run_ranges (run, gateway, first_seq, last_seq) VALUES (${id}, 'gw-a', ${first}, ${last})`.execute(db);
}

const rootOfNote = (note: string): { size: number; root: Uint8Array } => {
  const c = parseCheckpoint(parseNote(note).text);
  return { size: c.size, root: c.rootHash };
};

describe.each(ENGINES)('retention on %s', (engine: Engine) => {
  let t: TestServer;
  let gw: TestGateway;
  /** the server's clock: real time until a test moves it */
  let fakeNow: number | undefined;

  beforeAll(async () => {
    t = await startServer(
      {
        retention: { rawBatchesDays: ACCREDITATION_MINIMUM_DAYS, sampleIndexDays: ACCREDITATION_MINIMUM_DAYS + 100 },
        log: { minCheckpointIntervalMs: 100 },
        ...(engine === 'postgres' ? { database: { url: await fixture.url('postgres') } } : {}),
      },
      pino({ level: 'silent' }),
      { clock: () => fakeNow ?? Date.now() },
    );
    expect(t.server.engine).toBe(engine);
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.birth('ut-1');
  }, 120_000);
  afterAll(async () => {
    await gw?.end();
    await t?.stop();
  });

  test('old batches lose their records and index rows, keep header, signature and leaves; the log records it and stays consistent', async () => {
    const db = t.server.db;
    // old: three batches of five (the middle one held by a completed run without a certificate); new: two batches
    for (let b = 0; b < 3; b++) expect(await send(t, gw, gw.sign(records('ut-1', b * 5, 5)))).toBe('acked');
    const oldArrival = Math.max(...(await stored(db, 'gw-a')).map((r) => r.received_at));
    while (Date.now() <= oldArrival) await new Promise((r) => setTimeout(r, 1));
    for (let b = 3; b < 5; b++) expect(await send(t, gw, gw.sign(records('ut-1', b * 5, 5)))).toBe('acked');
    await completedRun(db, 'run-held', 5, 9);
    const before = await stored(db, 'gw-a');
    expect(before.map((r) => r.records !== null)).toEqual([true, true, true, true, true]);
    const newArrival = Math.min(...before.slice(3).map((r) => r.received_at));
    expect(await samplesOf(db)).toEqual(Array.from({ length: 25 }, (_, i) => i));

    const reader = t.server.logReader;
    if (reader === undefined) throw new Error('the log is not open');
    await new Promise((r) => setTimeout(r, 150));
    const checkpointBefore = rootOfNote(await reader.checkpoint());
    expect(checkpointBefore.size).toBeGreaterThanOrEqual(5);

    // six years (2192 days) after the new batches arrived: the old ones are past retention, the new ones are not
    fakeNow = newArrival + ACCREDITATION_MINIMUM_DAYS * DAY;
    try {
      const dry = await t.server.retention.run({ apply: false });
      expect(dry.dryRun).toBe(true);
      expect(dry.rawBatches).toMatchObject({ batches: 2, records: 10, held: 1, receivedBefore: newArrival });
      expect(dry.rawBatches.gateways).toEqual([{ gateway: 'gw-a', batches: 2, records: 10, firstSeq: 0, lastSeq: 14 }]);
      expect(dry.logEntries).toEqual([]);
      // the dry run changed nothing
      expect(await stored(db, 'gw-a')).toEqual(before);
      expect(await samplesOf(db)).toHaveLength(25);
      expect(rootOfNote((await reader.latestCheckpoint()).note).size).toBe(checkpointBefore.size);

      const report = await t.server.retention.run({ apply: true });
      expect(report.rawBatches).toMatchObject({ batches: 2, records: 10, held: 1 });
      expect(report.sampleIndex).toMatchObject({ batches: 2, records: 10 });
      expect(report.logEntries).toHaveLength(1);

      const after = await stored(db, 'gw-a');
      // batches 0 and 2 lost their records' bytes, the held batch 1 and the new batches 3, 4 keep theirs
      expect(after.map((r) => r.records === null)).toEqual([true, false, true, false, false]);
      expect(after.map((r) => r.records_removed_at)).toEqual([fakeNow, null, fakeNow, null, null]);
      for (const i of [1, 3, 4]) expect(after[i]).toEqual(before[i]);
      for (const i of [0, 2]) {
        const [was, now] = [before[i] as StoredRow, after[i] as StoredRow];
        // the header, its signature and its place in the log stay; the leaves are those of the removed records
        expect([now.header, now.signature, now.log_index]).toEqual([was.header, was.signature, was.log_index]);
        expect(Buffer.from(now.leaves as Uint8Array)).toEqual(Buffer.from(leavesOf(was.records as Uint8Array)));
        const header = JSON.parse(now.header) as BatchHeader;
        expect(bytesEqual(rootOfPacked(now.leaves as Uint8Array), fromBase64(header.root))).toBe(true);
      }
      // the index lost the samples of the removed batches only
      expect(await samplesOf(db)).toEqual([...[5, 6, 7, 8, 9], ...Array.from({ length: 10 }, (_, i) => 15 + i)]);

      // a removed record's proof is gone (410), a kept one's is served
      expect((await t.fetch('/api/log/measurement/gw-a/2')).status).toBe(410);
      expect((await t.fetch('/api/log/measurement/gw-a/7')).status).toBe(200);

      // the log: one retention entry naming the policy and what went, and a checkpoint consistent with the one before
      const logIndex = report.logEntries[0] as number;
      const [entry] = await reader.entries(logIndex, logIndex + 1);
      expect(entry?.kind).toBe('retention');
      const logged = JSON.parse(new TextDecoder().decode(entry?.data)) as RetentionEntry;
      expect(logged).toMatchObject({
        type: 'labtrace-retention',
        at: fakeNow,
        policy: { rawBatchesDays: ACCREDITATION_MINIMUM_DAYS, sampleIndexDays: ACCREDITATION_MINIMUM_DAYS + 100, minimumDays: 2192 },
        rawBatches: {
          receivedBefore: newArrival,
          batches: 2,
          records: 10,
          gateways: [{ gateway: 'gw-a', batches: 2, records: 10, firstSeq: 0, lastSeq: 14 }],
        },
        sampleIndex: { batches: 2, samples: 10 },
      });
      fakeNow = undefined;
      await new Promise((r) => setTimeout(r, 150));
      const checkpointAfter = rootOfNote(await reader.checkpoint());
      expect(checkpointAfter.size).toBeGreaterThan(logIndex);
      verifyConsistency(
        checkpointBefore.size,
        checkpointAfter.size,
        checkpointBefore.root,
        checkpointAfter.root,
        await reader.consistencyProof(checkpointBefore.size, checkpointAfter.size),
      );
      // a removed batch's kept header and signature are still the leaf the log proves, and still the gateway's signature
      const removed = after[0] as StoredRow;
      const signed = { header: JSON.parse(removed.header) as BatchHeader, signature: removed.signature };
      verifyInclusion(
        leafHash(canonicalBytes(signed)),
        removed.log_index as number,
        checkpointAfter.size,
        await reader.inclusionProof(removed.log_index as number, checkpointAfter.size),
        checkpointAfter.root,
      );
      expect(verifyEd25519(fromBase64(signed.signature), canonicalBytes(signed.header), gw.key.publicKey)).toBe(true);

      // the audit trail names the removal
      const audit = await t.server.audit.list({ recordType: 'retention', limit: 10 });
      expect(audit.map((e) => [e.action, e.recordId, e.actor])).toEqual([['delete', `log-${logIndex}`, 'system']]);
      expect(audit[0]?.reason).toContain('2192 days');

      // an export of the gateway still verifies: the removed batches' headers, signatures, leaves and log proofs check,
      // their records are reported as removed by retention, the kept ones are read; a changed kept leaf is caught
      const log = t.server.logStore ?? t.server.log;
      if (log === undefined) throw new Error('the log is not open');
      const dir = fixture.tempDir();
      const counts = await exportBundle(db, log, { outDir: dir, gateway: 'gw-a', from: 1_800_000_000_000, to: 1_800_000_000_100 });
      expect(counts).toEqual({ batches: 5, records: 15 });
      const files = readBundle(dir);
      const verified = verifyBundle(files, { logKey: log.verifierKey() });
      expect(verified.problems).toEqual([]);
      expect(verified.ok).toBe(true);
      expect(verified.removedByRetention).toEqual({ batches: 2, records: 10 });
      expect(verified.counts).toMatchObject({ batches: 5, records: 15, signaturesVerified: 5, rootsVerified: 5 });
      const lines = files.batches.split('\n').filter((l) => l !== '');
      const first = JSON.parse(lines[0] as string) as { records: null; leaves: string };
      expect(first.records).toBeNull();
      const leaves = Buffer.from(first.leaves, 'base64');
      leaves[0] = (leaves[0] as number) ^ 1;
      const tampered = [JSON.stringify({ ...first, leaves: leaves.toString('base64') }), ...lines.slice(1)].join('\n') + '\n';
      expect(verifyBundle({ ...files, batches: tampered }, { logKey: log.verifierKey() }).problems.map((p) => p.kind)).toContain('root-mismatch');

      // a second run finds nothing left: no entry
      fakeNow = newArrival + ACCREDITATION_MINIMUM_DAYS * DAY;
      expect((await t.server.retention.run({ apply: true })).logEntries).toEqual([]);
    } finally {
      fakeNow = undefined;
    }
  }, 60_000);

  test('the command line: a dry run changes nothing; --apply beside the running server keeps its log consistent', async () => {
    const dir = fixture.tempDir();
    const file = path.join(dir, 'server.yaml');
    const database = t.config.database.url === undefined ? '' : `database:\n  url: ${t.config.database.url}\n`;
    writeFileSync(file, `lab: lab-t\ndataDir: ${t.config.dataDir}\n${database}retention:\n  rawBatchesDays: 2192\n`);
    const before = await stored(t.server.db, 'gw-a');
    const out: string[] = [];
    expect(await retentionCommand(['--dry-run', '--config', file], (l) => out.push(l))).toBe(0);
    // by the real clock nothing is six years old yet
    expect(out[0]).toMatch(/^raw batches: kept 2192 days \(received before .*\): would remove 0 batches, 0 records; 0 expired batches held/);
    // the index keeps no more than the raw batches do
    expect(out.some((l) => l.startsWith('per-sample index: kept as long as the raw batches (received before'))).toBe(true);
    expect(out[out.length - 1]).toBe('dry run: nothing was changed');
    expect(await stored(t.server.db, 'gw-a')).toEqual(before);
    await expect(retentionCommand(['--config', file])).rejects.toThrow(/give either --dry-run or --apply/);

    // --apply beside the running server, a century on: the new batches go (the held one stays), through the store's
    // log; the server's own log then goes on from it (its next batch and checkpoint), consistent with before
    const reader = t.server.logReader;
    if (reader === undefined) throw new Error('the log is not open');
    const checkpointBefore = rootOfNote(await reader.checkpoint());
    const applied: string[] = [];
    expect(
      await retentionCommand(
        ['--apply', '--config', file],
        (l) => applied.push(l),
        () => Date.now() + 100 * 366 * DAY,
      ),
    ).toBe(0);
    expect(applied[0]).toMatch(/removed 2 batches, 10 records; 1 expired batches held/);
    expect(applied).toContain('  gw-a: 2 batches, 10 records, sequence numbers 15..24');
    const cliEntry = Number(/^log entries: (\d+)$/.exec(applied[applied.length - 1] ?? '')?.[1]);
    expect((await stored(t.server.db, 'gw-a')).map((r) => r.records === null)).toEqual([true, false, true, true, true]);
    expect((await t.server.audit.list({ recordType: 'retention', limit: 10 })).map((e) => e.actor)).toContain(
      `cli:${process.env['USER'] ?? 'unknown'}`,
    );
    expect(await send(t, gw, gw.sign(records('ut-1', 25, 5)))).toBe('acked');
    const newest = (await stored(t.server.db, 'gw-a')).at(-1) as StoredRow;
    expect(newest.log_index).toBeGreaterThan(cliEntry);
    await new Promise((r) => setTimeout(r, 150));
    const checkpointAfter = rootOfNote(await reader.checkpoint());
    expect(checkpointAfter.size).toBeGreaterThan(newest.log_index as number);
    verifyConsistency(
      checkpointBefore.size,
      checkpointAfter.size,
      checkpointBefore.root,
      checkpointAfter.root,
      await reader.consistencyProof(checkpointBefore.size, checkpointAfter.size),
    );
    expect((await reader.entries(cliEntry, cliEntry + 1))[0]?.kind).toBe('retention');

    writeFileSync(file, `lab: lab-t\ndataDir: ${t.config.dataDir}\n${database}`);
    const none: string[] = [];
    expect(await retentionCommand(['--apply', '--config', file], (l) => none.push(l))).toBe(0);
    expect(none).toEqual(['retention: no policy configured (retention.rawBatchesDays, retention.sampleIndexDays): nothing is ever removed']);
  });

  test('without a policy nothing is removed, however old', async () => {
    const db = t.server.db;
    const before = await stored(db, 'gw-a');
    const keepAll = new Retention({
      db,
      log: () => {
        throw new Error('nothing is logged without a policy');
      },
      audit: t.server.audit,
      config: { everyHours: 24 },
      logger: pino({ level: 'silent' }),
      clock: () => Date.now() + 100 * 365 * DAY,
    });
    expect(keepAll.enabled).toBe(false);
    const report = await keepAll.run({ apply: true });
    expect(report.logEntries).toEqual([]);
    expect(report.rawBatches.receivedBefore).toBeNull();
    expect(await stored(db, 'gw-a')).toEqual(before);
  });

  test('a scheduled run that fails is counted, and shown in the metrics, until one succeeds', async () => {
    const db = t.server.db;
    const before = await stored(db, 'gw-a');
    let at = Date.now() + 100 * 365 * DAY;
    const job = new Retention({
      db,
      log: () => {
        throw new Error('the log is not available');
      },
      audit: t.server.audit,
      config: { rawBatchesDays: ACCREDITATION_MINIMUM_DAYS, everyHours: 24 },
      logger: pino({ level: 'silent' }),
      clock: () => at,
    });
    // the gauges read their sources when scraped: the ones below read only the job's status
    const sources = { ingest: t.server.ingest, retention: () => job.status() } as unknown as MetricsSources;
    const metrics = new ServerMetrics({}, sources, pino({ level: 'silent' }));
    const value = async (name: string): Promise<number | undefined> => (await metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value;
    expect(job.status()).toEqual({ enabled: true, failures: 0, lastSuccessAt: null, lastFailureAt: null, lastError: null });
    expect(await value('labtrace_retention_failures')).toBe(0);
    expect(await value('labtrace_retention_last_success_timestamp_seconds')).toBe(0);

    // a century on, everything is due, and the removal cannot log itself: nothing is removed
    await job.runScheduled();
    expect(job.status()).toMatchObject({ failures: 1, lastFailureAt: at, lastSuccessAt: null, lastError: 'the log is not available' });
    expect(await value('labtrace_retention_failures')).toBe(1);
    expect(await stored(db, 'gw-a')).toEqual(before);

    // now, nothing is due: the run succeeds, and the failure stays counted
    at = Date.now();
    await job.runScheduled();
    expect(job.status()).toMatchObject({ failures: 1, lastSuccessAt: at, lastError: null });
    expect(await value('labtrace_retention_last_success_timestamp_seconds')).toBe(at / 1000);
  });
});

test('a retention below the accreditation minimum is refused at config load, naming the field', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-retention-config-'));
  try {
    const file = path.join(dir, 'server.yaml');
    writeFileSync(file, 'retention:\n  rawBatchesDays: 365\n');
    await expect(loadServerConfig(file, {})).rejects.toThrow(/retention\.rawBatchesDays: 365 days is below the accreditation minimum of 2192 days/);
    writeFileSync(file, `retention:\n  sampleIndexDays: ${ACCREDITATION_MINIMUM_DAYS - 1}\n`);
    await expect(loadServerConfig(file, {})).rejects.toThrow(/retention\.sampleIndexDays: 2191 days is below the accreditation minimum/);
    writeFileSync(file, 'retention:\n  rawBatchesDays: 2192\n  sampleIndexDays: 3000\n');
    expect((await loadServerConfig(file, {})).retention).toEqual({ rawBatchesDays: 2192, sampleIndexDays: 3000, everyHours: 24 });
    // the default keeps everything for ever
    writeFileSync(file, 'lab: lab-a\n');
    expect((await loadServerConfig(file, {})).retention).toEqual({ everyHours: 24 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(ACCREDITATION_MINIMUM_DAYS).toBe(6 * 365 + 2);
});
