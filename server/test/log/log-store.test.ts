// The asynchronous store of the transparency log (src/log/log-store.ts), on SQLite and on a real PostgreSQL 15: the
// same entries give byte-identical roots, proofs, leaf hashes, stored hashes and checkpoints as the synchronous
// TransparencyLog; a rolled-back transaction leaves no leaf; and on PostgreSQL, writers on two pools and in two
// separate Node processes appending at once never fork the log, never give an index twice and never skip one.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import {
  LabtraceError,
  ed25519NoteVerifier,
  formatSignerKey,
  leafHash,
  openCheckpoint,
  parseSignerKey,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type SignerKey,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { LogStore } from '../../src/log/log-store.js';
import { MAX_ENTRIES_PER_READ, TransparencyLog } from '../../src/log/transparency-log.js';
import { serverMigrations } from '../../src/migrations.js';
import { LabDatabase, migrateStore } from '../../src/store/database.js';
import type { OpenedStore } from '../../src/store/dialect.js';
import type { Tables } from '../../src/store/tables.js';
import { WRITER_ORIGIN, runWriter, type WriterResult } from '../helpers/log-writer.js';
import { ENGINES, StoreFixture, type Engine } from '../helpers/test-store.js';

useNodeCrypto();

const ORIGIN = WRITER_ORIGIN;
const WRITER_SCRIPT = fileURLToPath(new URL('../helpers/log-writer.js', import.meta.url));

function newKey(name = ORIGIN): SignerKey {
  return parseSignerKey(formatSignerKey(name, new Uint8Array(randomBytes(32))));
}
const KEY_TEXT = formatSignerKey(ORIGIN, new Uint8Array(randomBytes(32)));
const KEY = parseSignerKey(KEY_TEXT);

/** A small seeded generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const bytes = (next: () => number, length: number): Uint8Array => Uint8Array.from({ length }, () => Math.floor(next() * 256));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const fixture = new StoreFixture('log', 'log-store');
const sqliteDatabases: LabDatabase[] = [];

beforeAll(() => fixture.start(), 120_000);
afterAll(async () => {
  for (const database of sqliteDatabases) await database.close();
  await fixture.close();
});

const tempDir = (): string => fixture.tempDir();

/** A new, migrated store on the engine; its URL opens it again (another pool, another process). */
async function newStore(engine: Engine): Promise<{ url: string; store: OpenedStore }> {
  const url = await fixture.url(engine);
  const store = fixture.open(url);
  await migrateStore(store.db, serverMigrations);
  return { url, store };
}

const reopen = (url: string, poolSize = 10): OpenedStore => fixture.open(url, { poolSize });

async function openLogStore(db: Kysely<Tables>, now = 0, key = KEY, origin = ORIGIN): Promise<LogStore> {
  const log = new LogStore(db, { origin, signer: key, minCheckpointIntervalMs: 0 });
  await log.open(now);
  return log;
}

async function appendNow(
  db: Kysely<Tables>,
  log: LogStore,
  kind: Parameters<LogStore['append']>[1],
  entries: Uint8Array[],
  at?: number,
): Promise<number> {
  return db.transaction().execute((trx) => log.append(trx, kind, entries, at));
}

async function oldLog(now = 0): Promise<{ database: LabDatabase; log: TransparencyLog }> {
  const database = new LabDatabase(tempDir(), serverMigrations);
  sqliteDatabases.push(database);
  await database.migrate();
  const log = new TransparencyLog(database, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0 });
  log.open(now);
  return { database, log };
}

async function rejection(promise: Promise<unknown>): Promise<LabtraceError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(LabtraceError);
    return err as LabtraceError;
  }
  throw new Error('expected a refusal');
}

async function expectBadRequest(promise: Promise<unknown>, ...parts: string[]): Promise<void> {
  const err = await rejection(promise);
  expect(err.code).toBe('E_BAD_REQUEST');
  for (const part of parts) expect(err.message).toContain(part);
}

/** Every row of the log's tables, in key order, as hex: what two stores of the same log must hold alike. */
async function tableRows(read: (query: string) => Promise<Record<string, unknown>[]>): Promise<string[]> {
  const show = (v: unknown): string => (v instanceof Uint8Array ? hex(v) : String(v));
  const rows = [
    ...(await read('SELECT idx, kind, data, leaf, at FROM log_entries ORDER BY idx')),
    ...(await read('SELECT level, idx, hash FROM log_hashes ORDER BY level, idx')),
    ...(await read('SELECT size, note, at FROM log_checkpoints ORDER BY size')),
  ];
  return rows.map((r) => Object.values(r).map(show).join(' '));
}

test('on one SQLite file, the store continues the log TransparencyLog wrote, and TransparencyLog continues it after', async () => {
  const dir = tempDir();
  const next = random(17);
  const all: Uint8Array[] = [];
  const batch = (n: number): Uint8Array[] => {
    const b = Array.from({ length: n }, () => bytes(next, 30));
    all.push(...b);
    return b;
  };
  const first = new LabDatabase(dir, serverMigrations);
  await first.migrate();
  const old = new TransparencyLog(first, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0 });
  old.open(0);
  old.append('batch-header', batch(21));
  old.maybeCheckpoint(1);
  await first.close();
  const second = new LabDatabase(dir, serverMigrations);
  sqliteDatabases.push(second);
  const log = await openLogStore(second.db, 2);
  expect(await log.size()).toBe(21);
  expect(await appendNow(second.db, log, 'key-event', batch(12))).toBe(21);
  expect(await log.maybeCheckpoint(3)).toBe(true);
  await second.close();
  sqliteDatabases.splice(sqliteDatabases.indexOf(second), 1);
  const third = new LabDatabase(dir, serverMigrations);
  sqliteDatabases.push(third);
  const again = new TransparencyLog(third, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0 });
  again.open(4);
  expect(again.size).toBe(33);
  expect(again.append('audit-event', batch(5))).toBe(33);
  expect(hex(again.root())).toBe(hex(rootOf(all.map(leafHash))));
  const checkpoint = openCheckpoint(again.checkpoint(5), [ed25519NoteVerifier(again.verifierKey())], { origin: ORIGIN }).checkpoint;
  expect(checkpoint.size).toBe(38);
  // the checkpoint the store signed at 33 is consistent with the one TransparencyLog signs at 38
  const signedByStore = again.checkpointAt(33)?.note ?? '';
  const at33 = openCheckpoint(signedByStore, [ed25519NoteVerifier(again.verifierKey())], { origin: ORIGIN }).checkpoint;
  verifyConsistency(33, 38, at33.rootHash, checkpoint.rootHash, again.consistencyProof(33, 38));
});

describe.each(ENGINES)('on %s', (engine) => {
  test('the same entries give the same roots, proofs, leaf hashes, entries, stored hashes and checkpoints as TransparencyLog', async () => {
    const { url, store } = await newStore(engine);
    const log = await openLogStore(store.db, 0);
    const old = await oldLog(0);
    const next = random(9162);
    const kinds = ['batch-header', 'key-event', 'certificate-event', 'audit-event'] as const;
    let now = 1;
    let leaves = 0;
    while (leaves < 260) {
      const count = 1 + Math.floor(next() * 9);
      const batch = Array.from({ length: count }, () => bytes(next, Math.floor(next() * 300)));
      const kind = kinds[Math.floor(next() * kinds.length)] ?? 'batch-header';
      const first = await appendNow(store.db, log, kind, batch, now);
      expect(first).toBe(old.log.append(kind, batch, now));
      leaves += count;
      // a checkpoint after most appends, at the same sizes and times: Ed25519 is deterministic, so the same notes
      if (next() < 0.7) expect(await log.maybeCheckpoint(now)).toBe(old.log.maybeCheckpoint(now));
      now++;
    }
    expect(await log.size()).toBe(old.log.size);
    expect((await log.latestCheckpoint()).note).toBe(old.log.latestCheckpoint().note);
    for (let size = 1; size <= leaves; size++) {
      expect(hex(await log.root(size))).toBe(hex(old.log.root(size)));
      expect((await log.checkpointAt(size))?.note).toBe(old.log.checkpointAt(size)?.note);
      expect(hex(await log.leafHash(size - 1))).toBe(hex(old.log.leafHash(size - 1)));
      for (let k = 0; k < 2; k++) {
        const index = Math.floor(next() * size);
        expect((await log.inclusionProof(index, size)).map(hex)).toEqual(old.log.inclusionProof(index, size).map(hex));
        const from = 1 + Math.floor(next() * size);
        expect((await log.consistencyProof(from, size)).map(hex)).toEqual(old.log.consistencyProof(from, size).map(hex));
      }
    }
    expect(hex(await log.root())).toBe(hex(old.log.root()));
    for (let start = 0; start < leaves; start += 100) {
      const end = Math.min(leaves, start + 100);
      const entries = (await log.entries(start, end)).map((e) => ({ ...e, data: hex(e.data) }));
      expect(entries).toEqual(old.log.entries(start, end).map((e) => ({ ...e, data: hex(e.data) })));
    }
    // the same rows in the same tables
    const sqliteRows = await tableRows((q) => Promise.resolve(old.database.sqlite.prepare(q).all() as Record<string, unknown>[]));
    const storeRows = await tableRows(async (q) => (await sql.raw<Record<string, unknown>>(q).execute(store.db)).rows);
    expect(storeRows).toEqual(sqliteRows);
    // and the stored log continues from another opening as from this one
    const again = await openLogStore(reopen(url).db, now);
    const more = [bytes(next, 40), bytes(next, 41)];
    expect(await appendNow(store.db, again, 'audit-event', more, now)).toBe(old.log.append('audit-event', more, now));
    expect(hex(await log.root())).toBe(hex(old.log.root()));
  });

  test('a transaction that rolls back after its append leaves no leaf, no hash and no index used', async () => {
    const { store } = await newStore(engine);
    const log = await openLogStore(store.db);
    const next = random(7);
    const kept: Uint8Array[] = [];
    const keep = (n: number): Uint8Array[] => {
      const batch = Array.from({ length: n }, () => bytes(next, 20));
      kept.push(...batch);
      return batch;
    };
    expect(await appendNow(store.db, log, 'batch-header', keep(5))).toBe(0);
    await expect(
      store.db.transaction().execute(async (trx) => {
        await log.append(trx, 'batch-header', [bytes(next, 20), bytes(next, 20), bytes(next, 20)]);
        throw new Error('the caller fails after the append');
      }),
    ).rejects.toThrow('the caller fails');
    expect(await log.size()).toBe(5);
    // two appends in one transaction (a group of batches): the second continues the first
    const firsts = await store.db
      .transaction()
      .execute(async (trx) => [await log.append(trx, 'batch-header', keep(3)), await log.append(trx, 'key-event', keep(4))]);
    expect(firsts).toEqual([5, 8]);
    expect(await log.size()).toBe(12);
    expect(hex(await log.root())).toBe(hex(rootOf(kept.map(leafHash))));
    expect((await log.entries(0, 12)).map((e) => hex(e.data))).toEqual(kept.map(hex));
    // only the hashes of the kept tree: a tree of 12 leaves has 6 + 3 + 1 subtrees above its leaves
    const hashes = await sql<{ n: number }>`SELECT count(*) AS n FROM log_hashes`.execute(store.db);
    expect(Number(hashes.rows[0]?.n)).toBe(10);
    // a failure inside the append itself (a hash row already there) fails the caller's transaction, leaving nothing
    await sql`INSERT INTO log_hashes (level, idx, hash) VALUES (1, 6, ${Buffer.alloc(32)})`.execute(store.db);
    // (the error's message, not toThrow: better-sqlite3's SqliteError may come from another test file's realm in a worker)
    await expect(appendNow(store.db, log, 'batch-header', [bytes(next, 20), bytes(next, 20)])).rejects.toMatchObject({
      message: expect.stringMatching(/unique constraint|duplicate key/i) as unknown as string,
    });
    expect(await log.size()).toBe(12);
    await sql`DELETE FROM log_hashes WHERE level = 1 AND idx = 6`.execute(store.db);
    expect(await appendNow(store.db, log, 'batch-header', keep(9))).toBe(12);
    expect(hex(await log.root())).toBe(hex(rootOf(kept.map(leafHash))));
  });

  test('a checkpoint is signed only when the tree has grown and at most once per minCheckpointIntervalMs', async () => {
    const { store } = await newStore(engine);
    const log = new LogStore(store.db, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 1000 });
    await log.open(10_000);
    expect(await log.latestCheckpoint()).toMatchObject({ size: 0, at: 10_000 });
    expect(await log.maybeCheckpoint(20_000)).toBe(false); // not grown
    await appendNow(store.db, log, 'key-event', [new Uint8Array([1])], 20_000);
    expect(await log.maybeCheckpoint(20_001)).toBe(true);
    await appendNow(store.db, log, 'key-event', [new Uint8Array([2])], 20_100);
    expect(await log.maybeCheckpoint(20_500)).toBe(false);
    const opened = async (note: string): Promise<number> =>
      openCheckpoint(note, [ed25519NoteVerifier(log.verifierKey())], { origin: ORIGIN }).checkpoint.size;
    expect(await opened(await log.checkpoint(21_000))).toBe(1); // 999 ms after the last
    expect(await opened(await log.checkpoint(21_001))).toBe(2);
    expect(await log.maybeCheckpoint(30_000)).toBe(false);
    // a clock set back does not hold checkpoints back
    await appendNow(store.db, log, 'key-event', [new Uint8Array([3])], 30_000);
    expect(await log.maybeCheckpoint(5_000)).toBe(true);
    expect(await Promise.all([0, 1, 2, 3].map(async (size) => (await log.checkpointAt(size))?.at))).toEqual([10_000, 20_001, 21_001, 5_000]);
    // a second opening of the store signs nothing more: the empty tree's checkpoint is there
    await openLogStore(store.db, 99_999);
    expect(await log.checkpointAt(0)).toMatchObject({ at: 10_000 });
  });

  test('a store that lost entries after a checkpoint, or another origin or key, is refused at open', async () => {
    const { store } = await newStore(engine);
    const log = await openLogStore(store.db);
    await appendNow(store.db, log, 'batch-header', [new Uint8Array([1]), new Uint8Array([2])]);
    await log.maybeCheckpoint(5);
    expect((await rejection(openLogStore(store.db, 0, KEY, 'labtrace.example/other'))).message).toContain("a log's origin cannot change");
    expect((await rejection(openLogStore(store.db, 0, newKey()))).message).toContain('not signed by the configured log key');
    await sql`DELETE FROM log_entries WHERE idx = 1`.execute(store.db);
    expect((await rejection(openLogStore(store.db))).message).toContain('the store was rolled back');
  });

  test('bad input is refused with the field and the problem', async () => {
    const { store } = await newStore(engine);
    const log = await openLogStore(store.db);
    await appendNow(store.db, log, 'batch-header', [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
    const append = (kind: string, entries: unknown, at?: number): Promise<number> =>
      store.db.transaction().execute((trx) => log.append(trx, kind as 'batch-header', entries as Uint8Array[], at));
    await expectBadRequest(append('other', [new Uint8Array(1)]), 'kind: "other" is not one of batch-header');
    await expectBadRequest(append('batch-header', []), 'entries: expected a non-empty array');
    await expectBadRequest(append('batch-header', ['text']), 'entries[0]: expected a Uint8Array');
    await expectBadRequest(append('batch-header', [new Uint8Array(64 * 1024 + 1)]), 'entries[0]: 65537 bytes');
    await expectBadRequest(append('batch-header', [new Uint8Array(1)], -1), 'at: -1');
    // outside a transaction: refused, nothing stored
    const outside = await rejection(log.append(store.db as never, 'batch-header', [new Uint8Array(1)]));
    expect(outside.code).toBe('E_STORE');
    expect(outside.message).toContain("inside the caller's transaction");
    await expectBadRequest(log.inclusionProof(3, 3), 'index: 3 is not less than the tree size 3');
    await expectBadRequest(log.inclusionProof(0, 4), 'size: 4 is larger than the tree size (3)');
    await expectBadRequest(log.consistencyProof(0, 3), 'from: must be at least 1');
    await expectBadRequest(log.consistencyProof(3, 2), 'from: 3 is larger than to (2)');
    await expectBadRequest(log.root(1.5), 'size: 1.5 is not a whole number');
    await expectBadRequest(log.leafHash(3), 'index: 3 is not less than the tree size 3');
    await expectBadRequest(log.entries(2, 1), 'start: 2 is larger than end (1)');
    await expectBadRequest(log.entries(0, 4), 'end: 4 is larger than the tree size (3)');
    await expectBadRequest(log.checkpointAt(-1), 'size: -1');
    expect(await log.size()).toBe(3);
    expect(MAX_ENTRIES_PER_READ).toBe(1000);
  });
});

/** What every writer reported, checked against the final log: no fork, every index once, nothing rolled back. */
async function checkLog(db: Kysely<Tables>, results: readonly WriterResult[]): Promise<void> {
  const log = new LogStore(db, { origin: ORIGIN, signer: KEY });
  await log.open();
  const size = await log.size();
  const committed = results.flatMap((r) => r.committed);
  expect(size).toBe(committed.reduce((n, c) => n + c.data.length, 0));
  // every index once: the committed appends, in index order, tile [0, size) without a gap or an overlap
  const ordered = [...committed].sort((a, b) => a.first - b.first);
  let expectedFirst = 0;
  for (const c of ordered) {
    expect(c.first).toBe(expectedFirst);
    expectedFirst += c.data.length;
  }
  const entries: string[] = [];
  for (let start = 0; start < size; start += MAX_ENTRIES_PER_READ) {
    const page = await log.entries(start, Math.min(size, start + MAX_ENTRIES_PER_READ));
    page.forEach((e, i) => expect(e.index).toBe(start + i));
    entries.push(...page.map((e) => hex(e.data)));
  }
  expect(entries).toEqual(ordered.flatMap((c) => c.data));
  // nothing of a rolled-back transaction is in the log
  const stored = new Set(entries);
  for (const data of results.flatMap((r) => r.rolledBack)) expect(stored.has(data)).toBe(false);
  // the tree: the root, every stored subtree hash, and every leaf hash are the reference tree's
  const leaves = entries.map((e) => leafHash(Buffer.from(e, 'hex')));
  const finalRoot = await log.root();
  expect(hex(finalRoot)).toBe(hex(rootOf(leaves)));
  const { rows } = await sql<{ level: number; idx: number; hash: Buffer }>`SELECT level, idx, hash FROM log_hashes ORDER BY level, idx`.execute(db);
  const expected: string[] = [];
  for (let level = 1; 2 ** level <= size; level++)
    for (let index = 0; (index + 1) * 2 ** level <= size; index++)
      expected.push(`${level}/${index}/${hex(rootOf(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level)))}`);
  expect(rows.map((r) => `${r.level}/${r.idx}/${hex(r.hash)}`)).toEqual(expected);
  // never a fork: every checkpoint any writer signed verifies, has the reference root of its size, and is consistent
  // with the final tree by the protocols' verifier
  const { rows: checkpoints } = await sql<{ size: number; note: string }>`SELECT size, note FROM log_checkpoints ORDER BY size`.execute(db);
  expect(checkpoints.length).toBeGreaterThan(1);
  for (const row of checkpoints) {
    const { checkpoint } = openCheckpoint(row.note, [ed25519NoteVerifier(log.verifierKey())], { origin: ORIGIN });
    expect(checkpoint.size).toBe(row.size);
    expect(hex(checkpoint.rootHash)).toBe(hex(rootOf(leaves.slice(0, checkpoint.size))));
    if (checkpoint.size > 0)
      verifyConsistency(checkpoint.size, size, checkpoint.rootHash, finalRoot, await log.consistencyProof(checkpoint.size, size));
  }
  // and an entry of each writer is provable in the final tree
  for (const c of committed.slice(0, 20))
    verifyInclusion(await log.leafHash(c.first), c.first, size, await log.inclusionProof(c.first, size), finalRoot);
}

describe('on postgres, several writers at once', () => {
  test('two pools, three writers each, appending and signing at once: one log, every index once, no fork', async () => {
    const { url } = await newStore('postgres');
    const a = reopen(url, 3);
    const b = reopen(url, 3);
    const [logA, logB] = await Promise.all([openLogStore(a.db), openLogStore(b.db)]);
    const results = await Promise.all([
      ...[0, 1, 2].map((n) => runWriter(a.db, logA, `a.${n}`, 40)),
      ...[0, 1, 2].map((n) => runWriter(b.db, logB, `b.${n}`, 40)),
    ]);
    // every writer committed three appends in four, and rolled one back
    for (const r of results) expect([r.committed.length, r.rolledBack.length > 0]).toEqual([30, true]);
    await checkLog(a.db, results);
  });

  test('two separate Node processes appending and signing at once: one log, every index once, no fork', async () => {
    const { url, store } = await newStore('postgres');
    const runProcess = (id: string): Promise<WriterResult[]> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [WRITER_SCRIPT, url, id, '30'], {
          env: { ...process.env, LABTRACE_TEST_LOG_KEY: KEY_TEXT },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('exit', (code) => {
          if (code === 0) resolve(JSON.parse(out) as WriterResult[]);
          else reject(new Error(`writer ${id} exited with ${String(code)}: ${err}`));
        });
      });
    const results = (await Promise.all([runProcess('p1'), runProcess('p2')])).flat();
    expect(results.map((r) => r.id).sort()).toEqual(['p1.0', 'p1.1', 'p1.2', 'p2.0', 'p2.1', 'p2.2']);
    await checkLog(store.db, results);
  });

  test('a node killed holding the lock mid-append: its entry is gone, the next writer takes its index, checkpoints stay consistent', async () => {
    const { url, store } = await newStore('postgres');
    const log = await openLogStore(store.db);
    const before = await runWriter(store.db, log, 'before', 8);
    const size = before.committed.reduce((n, c) => n + c.data.length, 0);
    // a checkpoint of the tree before the failover (the writer may have signed it already)
    await log.maybeCheckpoint(5_000);
    expect((await log.latestCheckpoint()).size).toBe(size);
    const held = Buffer.from('the entry of a node that dies').toString('hex');
    const child = spawn(process.execPath, [WRITER_SCRIPT, url, 'hold', held], {
      env: { ...process.env, LABTRACE_TEST_LOG_KEY: KEY_TEXT },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const heldIndex = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = /^(\{.*\})\n/m.exec(out)?.[1];
        if (line !== undefined) resolve((JSON.parse(line) as { held: number }).held);
      });
      child.on('exit', (code) => reject(new Error(`the holding writer exited with ${String(code)} before appending: ${err}`)));
    });
    expect(heldIndex).toBe(size);
    // another node appends meanwhile: it waits for the lock, which the dead node's connection gives back
    const waiting = appendNow(store.db, log, 'batch-header', [Buffer.from('the next entry')]);
    child.kill('SIGKILL');
    await exited;
    const next = await waiting;
    expect(next).toBe(heldIndex);
    expect(await log.maybeCheckpoint(6_000)).toBe(true);
    const after = await runWriter(store.db, log, 'after', 8);
    const results: WriterResult[] = [
      before,
      { id: 'next', committed: [{ first: next, data: [Buffer.from('the next entry').toString('hex')] }], rolledBack: [held], signed: 0 },
      after,
    ];
    await checkLog(store.db, results);
  });

  test('an append in a REPEATABLE READ transaction is refused: it could read a tree older than the lock', async () => {
    const { store } = await newStore('postgres');
    const log = await openLogStore(store.db);
    const err = await rejection(
      store.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute((trx) => log.append(trx, 'batch-header', [new Uint8Array([1])])),
    );
    expect(err.code).toBe('E_STORE');
    expect(err.message).toContain('READ COMMITTED');
    expect(await log.size()).toBe(0);
  });
});
