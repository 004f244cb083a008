// An export bundle made from PostgreSQL is the bundle made from SQLite: the same signed batches, key registration and
// checkpoints stored the way each engine's server stores them (SQLite: the measurement store and the synchronous
// TransparencyLog; PostgreSQL: the PostgreSQL measurement store and the log store, in one transaction per batch as the
// ingest does), exported through Kysely, give the same files byte for byte (but the time the bundle was made), and both
// verify. The bundle is of one state: what another node (PostgreSQL: another pool) or the server's own connection
// (SQLite) stores and checkpoints while the export runs is not in it.
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Kysely, Transaction } from 'kysely';
import pino from 'pino';
import {
  canonicalBytes,
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  parseSignerKey,
  sealBatch,
  toBase64,
  verifyBundle,
  type Sample,
  type SignedBatch,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { BUNDLE_FILES, exportBundle, type BundleLog } from '../../src/export/bundle.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { LogStore } from '../../src/log/log-store.js';
import { TransparencyLog } from '../../src/log/transparency-log.js';
import { serverMigrations } from '../../src/migrations.js';
import { LabDatabase, migrateStore, type Tables } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { PgMeasurementStore, type BatchToStore } from '../../src/store/pg-measurement-store.js';
import { KeyRegistry } from '../../src/trust/key-registry.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { StoreFixture } from '../helpers/test-store.js';

useNodeCrypto();

const silent = pino({ level: 'silent' });
const ORIGIN = 'labtrace.example/bundle-store';
const LOG_KEY_TEXT = formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32)));
const LOG_KEY = parseSignerKey(LOG_KEY_TEXT);
const GW = 'gw-x';
const GW_KEY = parseSignerKey(
  formatSignerKey(
    GW,
    new Uint8Array(32).map((_, i) => (i * 11 + 5) % 256),
  ),
);
const T0 = 1_800_000_000_000;
const REGISTERED = T0 - 60_000;
const PER_BATCH = 5;
/** batches stored before the export: more than one page of the export's reads (8), so that it reads in several steps */
const BATCHES = 20;

const fixture = new StoreFixture('bundle', 'bundle-store');
const closers: (() => Promise<void>)[] = [];

beforeAll(() => fixture.start(), 120_000);
afterAll(async () => {
  for (const close of closers) await close();
  await fixture.close();
});

const tempDir = (): string => fixture.tempDir();

/** the gateway's batches, chained, `PER_BATCH` records each, batch b at T0 + 1000 b */
const batches: { signed: SignedBatch; samples: Sample[]; records: Uint8Array; now: number }[] = [];
{
  let prev: Uint8Array | null = null;
  for (let b = 0; b <= BATCHES; b++) {
    const samples = Array.from({ length: PER_BATCH }, (_, i): Sample => ({
      seq: b * PER_BATCH + i,
      instrument: 'utm-1',
      channel: i % 2 ? 'force' : 'extension',
      ts: T0 + b * 1000 + i,
      value: b + i / 10,
      unit: i % 2 ? 'kN' : 'mm',
      quality: 'good',
    }));
    const { signed, wire } = sealBatch(GW_KEY, GW, b, samples, prev);
    const headerLength = new DataView(wire.buffer, wire.byteOffset).getUint32(4);
    batches.push({ signed, samples, records: wire.subarray(8 + headerLength + 64 + 4), now: T0 + b * 1000 + 500 });
    prev = headerHash(signed.header);
  }
}

/** A lab's store as one engine's server writes it. */
interface Lab {
  /** the Kysely the export is given (the server's) */
  db: Kysely<Tables>;
  log: BundleLog;
  /** stores batch `b` and enters it in the log, as the server's ingest does */
  store: (b: number) => Promise<void>;
  checkpoint: (now: number) => Promise<void>;
  /** the same store through another connection (another node on PostgreSQL; the server's own connection on SQLite) */
  other: { store: (b: number) => Promise<void>; checkpoint: (now: number) => Promise<void> };
  /** PostgreSQL: the database's URL */
  url?: string;
}

async function sqliteLab(): Promise<Lab> {
  const database = new LabDatabase(tempDir(), serverMigrations);
  closers.push(() => database.close());
  await database.migrate();
  const measurements = new MeasurementStore(database);
  measurements.open();
  const log = new TransparencyLog(database, { origin: ORIGIN, signer: LOG_KEY, minCheckpointIntervalMs: 0 });
  log.open(0);
  const keys = new KeyRegistry(database, new SecurityEvents(database, silent));
  await keys.open([{ id: GW, key: formatVerifierKey(GW, GW_KEY.publicKey) }], REGISTERED);
  keys.logPending(log, REGISTERED);
  const store = (b: number): Promise<void> => {
    const { signed, samples, records, now } = batches[b] ?? fail(`no batch ${b}`);
    database.sqlite.transaction(() => {
      measurements.store(GW, samples, signed, toBase64(headerHash(signed.header)), now, records);
      measurements.setLogIndex(GW, b, log.append('batch-header', [canonicalBytes(signed)], now));
    })();
    return Promise.resolve();
  };
  const checkpoint = (now: number): Promise<void> => {
    log.maybeCheckpoint(now);
    return Promise.resolve();
  };
  return { db: database.db, log, store, checkpoint, other: { store, checkpoint } };
}

async function postgresLab(): Promise<Lab> {
  const url = await fixture.url('postgres');
  const node = async (): Promise<{
    db: Kysely<Tables>;
    log: LogStore;
    store: (b: number) => Promise<void>;
    checkpoint: (now: number) => Promise<void>;
  }> => {
    const db = fixture.open(url).db;
    const measurements = new PgMeasurementStore(db as Kysely<unknown>);
    const log = new LogStore(db, { origin: ORIGIN, signer: LOG_KEY, minCheckpointIntervalMs: 0 });
    return {
      db,
      log,
      store: async (b) => {
        const { signed, samples, records, now } = batches[b] ?? fail(`no batch ${b}`);
        const batch: BatchToStore = { gateway: GW, samples, signed, headerHash: toBase64(headerHash(signed.header)), records, now };
        await measurements.prepare([batch]);
        await db.transaction().execute(async (trx) => {
          const raw = trx as unknown as Transaction<unknown>;
          await measurements.lockGateways(raw, [GW]);
          expect((await measurements.storeBatch(raw, batch)).kind).toBe('stored');
          await measurements.setLogIndex(raw, GW, b, await log.append(trx, 'batch-header', [canonicalBytes(signed)], now));
        });
      },
      checkpoint: async (now) => {
        await log.maybeCheckpoint(now);
      },
    };
  };
  const a = await node();
  await migrateStore(a.db, serverMigrations);
  await a.log.open(0);
  const keys = new KeyRegistry(a.db, new SecurityEvents(a.db, silent));
  await keys.open([{ id: GW, key: formatVerifierKey(GW, GW_KEY.publicKey) }], REGISTERED);
  await keys.logPendingTo(a.log, REGISTERED);
  const b = await node();
  await b.log.open(0);
  return { url, db: a.db, log: a.log, store: a.store, checkpoint: a.checkpoint, other: b };
}

function fail(message: string): never {
  throw new Error(message);
}

/** The lab with the batches stored and checkpoints signed along the way (the same on both engines). */
async function filled(engine: 'sqlite' | 'postgres'): Promise<Lab> {
  const lab = engine === 'sqlite' ? await sqliteLab() : await postgresLab();
  for (let b = 0; b < BATCHES; b++) {
    await lab.store(b);
    if (b % 7 === 3) await lab.checkpoint(T0 + b * 1000 + 600);
  }
  await lab.checkpoint(T0 + BATCHES * 1000);
  return lab;
}

const exported = new Map<string, string>();

describe.each(['sqlite', 'postgres'] as const)('%s', (engine) => {
  test('the bundle verifies; made while another connection stores a batch and signs a checkpoint, it holds none of that', async () => {
    const lab = await filled(engine);
    const dir = tempDir();
    // the first proof the export asks for comes while it reads its snapshot: another writer then stores the next
    // batch (inside the range) and signs a checkpoint covering it, committed before the export reads on
    let wrote = false;
    const log: BundleLog = {
      origin: lab.log.origin,
      verifierKey: () => lab.log.verifierKey(),
      signNote: (text) => lab.log.signNote(text),
      inclusionProof: async (index, size) => {
        if (!wrote) {
          wrote = true;
          await lab.other.store(BATCHES);
          await lab.other.checkpoint(T0 + BATCHES * 1000 + 900);
        }
        return lab.log.inclusionProof(index, size);
      },
      consistencyProof: (from, to) => lab.log.consistencyProof(from, to),
    };
    const counts = await exportBundle(lab.db, log, { outDir: dir, gateway: GW, from: T0, to: T0 + 10 * BATCHES * 1000 });
    expect(wrote).toBe(true);
    expect(counts).toEqual({ batches: BATCHES, records: BATCHES * PER_BATCH });
    const files = readBundle(dir);
    const report = verifyBundle(files, { logKey: lab.log.verifierKey() });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.counts).toMatchObject({ batches: BATCHES, records: BATCHES * PER_BATCH, signaturesVerified: BATCHES, rootsVerified: BATCHES });
    expect(report.keyEvents.map((e) => e.kind)).toEqual(['registered']);
    // the checkpoint of the snapshot: the key event and the batches stored before the export, not the one stored during it
    expect(Number(files.checkpoint.split('\n')[1])).toBe(1 + BATCHES);
    const bundle = JSON.parse(files.bundle) as { created: string; consistency: { from: number }[]; counts: { notInCheckpoint: number } };
    expect(bundle.counts.notInCheckpoint).toBe(0);
    expect(bundle.consistency.map((c) => c.from)).toEqual([19, 12, 5]);
    for (const name of BUNDLE_FILES) {
      const text = readFileSync(path.join(dir, name), 'utf8');
      exported.set(`${engine}/${name}`, name === 'bundle.json' ? JSON.stringify({ ...bundle, created: undefined }) : text);
    }
  }, 120_000);
});

test('the bundle made from PostgreSQL is, file by file, the bundle made from SQLite', () => {
  for (const name of BUNDLE_FILES) {
    const sqlite = exported.get(`sqlite/${name}`);
    expect(sqlite).toBeDefined();
    expect({ name, text: exported.get(`postgres/${name}`) }).toEqual({ name, text: sqlite });
  }
});

test("labtrace export reads the PostgreSQL store that server.yaml's database names, and its bundle verifies", async () => {
  const lab = await filled('postgres');
  const dir = tempDir();
  writeFileSync(path.join(dir, 'log.key'), `${LOG_KEY_TEXT}\n`);
  const config = path.join(dir, 'server.yaml');
  writeFileSync(config, `dataDir: ${dir}\nlog:\n  origin: ${ORIGIN}\n  keyFile: ${path.join(dir, 'log.key')}\ndatabase:\n  url: ${lab.url ?? ''}\n`);
  const out = path.join(dir, 'bundle');
  const from = new Date(T0).toISOString();
  const to = new Date(T0 + 10 * BATCHES * 1000).toISOString();
  const proc = runLabtrace(['export', '--config', config, '--out', out, '--gateway', GW, '--from', from, '--to', to], {
    LABTRACE_DATABASE_URL: '',
    LABTRACE_DATABASE_PASSWORD_FILE: '',
    LABTRACE_DATA_DIR: '',
  });
  const output = collect(proc);
  expect({ code: await exitOf(proc), output: output() }).toEqual({
    code: 0,
    output: expect.stringContaining(`exported ${BATCHES * PER_BATCH} records in ${BATCHES} batches of ${GW}`) as unknown,
  });
  // the summary of the progress, on stderr, with the time taken
  expect(output()).toMatch(new RegExp(`^export of ${GW}: ${BATCHES * PER_BATCH} records in ${BATCHES} batches \\(\\d+ s\\)$`, 'm'));
  const report = verifyBundle(readBundle(out), { logKey: lab.log.verifierKey() });
  expect(report.problems).toEqual([]);
  expect(report.counts).toMatchObject({ batches: BATCHES, records: BATCHES * PER_BATCH, signaturesVerified: BATCHES });
  // the same bundle as the export through the server's store
  expect(readFileSync(path.join(out, 'statement.txt'), 'utf8')).toBe(exported.get('postgres/statement.txt'));
}, 120_000);
