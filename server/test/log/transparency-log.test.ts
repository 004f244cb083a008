// The transparency log against an in-memory reference tree and the RFC 6962 vectors, through a real SQLite store:
// roots, proofs and checkpoints; a restart continues the same tree; rolled-back appends leave no trace; mutated
// proofs and checkpoints fail; and the HTTP routes with their errors.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import {
  LabtraceError,
  TrustError,
  consistencyProof,
  ed25519NoteVerifier,
  formatSignerKey,
  formatVerifierKey,
  fromBase64,
  inclusionProof,
  leafHash,
  leafHashReader,
  openCheckpoint,
  parseSignerKey,
  rootOf,
  toBase64,
  verifyConsistency,
  verifyInclusion,
  type SignerKey,
} from '@labtrace/protocols';
import { errorHandler } from '../../src/api/errors.js';
import { createLogger } from '../../src/log.js';
import { logReaderOf } from '../../src/log/log-reader.js';
import { LogStore } from '../../src/log/log-store.js';
import { logRoutes } from '../../src/log/log-routes.js';
import { MAX_ENTRIES_PER_READ, TransparencyLog, type TransparencyLogOptions } from '../../src/log/transparency-log.js';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { LabDatabase } from '../../src/store/database.js';
import { serverMigrations } from '../../src/migrations.js';

useNodeCrypto();

const ORIGIN = 'labtrace.example/lab-test';
const VECTORS_DIR = fileURLToPath(new URL('../../../../protocols/test/vectors/rfc6962/', import.meta.url));

function newKey(name = ORIGIN): SignerKey {
  return parseSignerKey(formatSignerKey(name, new Uint8Array(randomBytes(32))));
}
const KEY = newKey();

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

function bytes(next: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(next() * 256));
}

const dirs: string[] = [];
const opened: LabDatabase[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-log-'));
  dirs.push(dir);
  return dir;
}

async function openLog(
  dir: string,
  options: Partial<TransparencyLogOptions> = {},
  now = 0,
): Promise<{ database: LabDatabase; log: TransparencyLog }> {
  const database = new LabDatabase(dir, serverMigrations);
  opened.push(database);
  await database.migrate();
  const log = new TransparencyLog(database, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0, ...options });
  log.open(now);
  return { database, log };
}

async function close(database: LabDatabase): Promise<void> {
  opened.splice(opened.indexOf(database), 1);
  await database.close();
}

afterEach(async () => {
  for (const database of opened.splice(0)) await database.close();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function open(log: TransparencyLog, note: string): { size: number; rootHash: Uint8Array } {
  return openCheckpoint(note, [ed25519NoteVerifier(log.verifierKey())], { origin: ORIGIN }).checkpoint;
}

function expectBadRequest(fn: () => unknown, ...parts: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LabtraceError);
  expect((caught as LabtraceError).code).toBe('E_BAD_REQUEST');
  for (const part of parts) expect((caught as LabtraceError).message).toContain(part);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('against an in-memory reference tree', () => {
  test('roots and proofs at every size 1..300, each verified against the signed checkpoint of its size', async () => {
    const { log } = await openLog(tempDir());
    const next = random(6962);
    const leaves: Uint8Array[] = [];
    const checkpoints = new Map<number, Uint8Array>();
    expect(open(log, log.checkpoint(0))).toMatchObject({ size: 0 });
    let now = 1;
    while (leaves.length < 300) {
      // appends of 1 to 9 entries, so that every size from 1 to 300 is a checkpoint somewhere
      const count = Math.min(300 - leaves.length, 1 + Math.floor(next() * 9));
      const batch = Array.from({ length: count }, () => bytes(next, Math.floor(next() * 200)));
      const first = log.append('batch-header', batch);
      expect(first).toBe(leaves.length);
      leaves.push(...batch);
      expect(log.maybeCheckpoint(now++)).toBe(true);
      const checkpoint = open(log, log.checkpoint(now));
      expect(checkpoint.size).toBe(leaves.length);
      checkpoints.set(checkpoint.size, checkpoint.rootHash);
    }
    const hashes = leaves.map(leafHash);
    const reference = leafHashReader(hashes);
    for (let size = 1; size <= 300; size++) {
      const root = rootOf(hashes.slice(0, size));
      expect(hex(log.root(size))).toBe(hex(root));
      const signed = checkpoints.get(size);
      if (signed !== undefined) expect(hex(signed)).toBe(hex(root));
      for (let k = 0; k < 3; k++) {
        const index = Math.floor(next() * size);
        const proof = log.inclusionProof(index, size);
        expect(proof.map(hex)).toEqual(inclusionProof(index, size, reference).map(hex));
        expect(hex(log.leafHash(index))).toBe(hex(hashes[index]!));
        verifyInclusion(log.leafHash(index), index, size, proof, signed ?? root);
        const from = 1 + Math.floor(next() * size);
        const consistency = log.consistencyProof(from, size);
        expect(consistency.map(hex)).toEqual(consistencyProof(from, size, reference).map(hex));
        verifyConsistency(from, size, checkpoints.get(from) ?? rootOf(hashes.slice(0, from)), signed ?? root, consistency);
      }
    }
    expect(hex(log.root())).toBe(hex(rootOf(hashes)));
    const served = log.entries(0, 300);
    expect(served.map((e) => e.index)).toEqual(leaves.map((_, i) => i));
    expect(served.map((e) => hex(e.data))).toEqual(leaves.map(hex));
    expect(new Set(served.map((e) => e.kind))).toEqual(new Set(['batch-header']));
  });
});

describe('persistence', () => {
  test('append, close, reopen, continue: the same tree and the same checkpoints as one uninterrupted log', async () => {
    const next = random(42);
    const leaves = Array.from({ length: 157 }, () => bytes(next, 1 + Math.floor(next() * 300)));
    const cuts = [0, 1, 2, 33, 64, 65, 157];

    const single = await openLog(tempDir());
    single.log.append('key-event', leaves);

    const dir = tempDir();
    const notes: string[] = [];
    for (let i = 1; i < cuts.length; i++) {
      const { database, log } = await openLog(dir, {}, i * 10);
      expect(log.size).toBe(cuts[i - 1]);
      // the checkpoint of the previous session is still the latest, and still verifies
      if (notes.length > 0) expect(log.checkpoint(i * 10)).toBe(notes[notes.length - 1]);
      log.append('key-event', leaves.slice(cuts[i - 1], cuts[i]));
      expect(log.maybeCheckpoint(i * 10 + 1)).toBe(true);
      notes.push(log.latestCheckpoint().note);
      await close(database);
    }
    const { log } = await openLog(dir, {}, 1000);
    expect(log.size).toBe(157);
    for (let size = 1; size <= 157; size++) expect(hex(log.root(size))).toBe(hex(single.log.root(size)));
    for (const note of notes) {
      const checkpoint = open(log, note);
      expect(log.checkpointAt(checkpoint.size)?.note).toBe(note);
      expect(hex(checkpoint.rootHash)).toBe(hex(single.log.root(checkpoint.size)));
    }
    // and it goes on growing as the uninterrupted one does
    const more = Array.from({ length: 40 }, () => bytes(next, 50));
    expect(log.append('certificate-event', more)).toBe(157);
    single.log.append('certificate-event', more);
    expect(hex(log.root())).toBe(hex(single.log.root()));
    expect(log.inclusionProof(170, 197).map(hex)).toEqual(single.log.inclusionProof(170, 197).map(hex));
  });

  test('an append rolled back with the caller transaction or its savepoint leaves no trace, in the store or in memory', async () => {
    const { database, log } = await openLog(tempDir());
    const sqlite = database.sqlite;
    const next = random(7);
    const kept: Uint8Array[] = [];
    const keep = (n: number): Uint8Array[] => {
      const batch = Array.from({ length: n }, () => bytes(next, 20));
      kept.push(...batch);
      return batch;
    };
    log.append('batch-header', keep(5));
    expect(() =>
      sqlite.transaction(() => {
        log.append('batch-header', [bytes(next, 20), bytes(next, 20)]);
        throw new Error('the caller fails after the append');
      })(),
    ).toThrow('the caller fails');
    expect(log.size).toBe(5);
    // as the ingest's group commit does: one transaction, a savepoint per batch, one of which fails
    sqlite.transaction(() => {
      sqlite.transaction(() => log.append('batch-header', keep(3)))();
      try {
        sqlite.transaction(() => {
          log.append('batch-header', [bytes(next, 20)]);
          throw new Error('this batch fails');
        })();
      } catch {
        // rolled back alone
      }
      sqlite.transaction(() => log.append('batch-header', keep(4)))();
    })();
    expect(log.size).toBe(12);
    expect(hex(log.root())).toBe(hex(rootOf(kept.map(leafHash))));
    expect(log.entries(0, 12).map((e) => hex(e.data))).toEqual(kept.map(hex));
    // a failure inside the append itself (here, a row already there) rolls its own entries back
    sqlite.prepare('INSERT INTO log_hashes (level, idx, hash) VALUES (1, 6, ?)').run(new Uint8Array(32));
    expect(() => log.append('batch-header', [bytes(next, 20), bytes(next, 20)])).toThrow();
    expect(log.size).toBe(12);
    sqlite.prepare('DELETE FROM log_hashes WHERE level = 1 AND idx = 6').run();
    log.append('batch-header', keep(9));
    expect(hex(log.root())).toBe(hex(rootOf(kept.map(leafHash))));
    // and a checkpoint is never signed inside a transaction
    expect(() => sqlite.transaction(() => log.maybeCheckpoint(10_000))()).toThrow('outside a transaction');
  });

  test('a store that lost entries after a checkpoint, or another origin or key, is refused at open', async () => {
    const dir = tempDir();
    const { database, log } = await openLog(dir);
    log.append('batch-header', [new Uint8Array([1]), new Uint8Array([2])]);
    log.maybeCheckpoint(5);
    await close(database);
    const other = new LabDatabase(dir, serverMigrations);
    opened.push(other);
    expect(() => new TransparencyLog(other, { origin: 'labtrace.example/other', signer: KEY }).open()).toThrow("a log's origin cannot change");
    expect(() => new TransparencyLog(other, { origin: ORIGIN, signer: newKey() }).open()).toThrow('not signed by the configured log key');
    other.sqlite.prepare('DELETE FROM log_entries WHERE idx = 1').run();
    expect(() => new TransparencyLog(other, { origin: ORIGIN, signer: KEY }).open()).toThrow('the store was rolled back');
  });
});

describe('checkpoints', () => {
  test('a checkpoint opens with the verifier key, names the origin and size, and carries the root', async () => {
    const { log } = await openLog(tempDir(), { minCheckpointIntervalMs: 1000 }, 1_000_000);
    const leaves = [new Uint8Array([1, 2, 3]), new Uint8Array([4])];
    log.append('batch-header', leaves);
    const note = log.checkpoint(1_001_000);
    const { checkpoint, verified } = openCheckpoint(note, [ed25519NoteVerifier(log.verifierKey())], { origin: ORIGIN });
    expect(checkpoint).toMatchObject({ origin: ORIGIN, size: 2, extensions: [] });
    expect(hex(checkpoint.rootHash)).toBe(hex(rootOf(leaves.map(leafHash))));
    expect(verified.map((s) => s.name)).toEqual([KEY.name]);
    expect(log.verifierKey()).toMatch(/^labtrace\.example\/lab-test\+[0-9a-f]{8}\+/);
    expect(note.split('\n').slice(0, 3)).toEqual([ORIGIN, '2', toBase64(checkpoint.rootHash)]);
    // another log's name is refused even with the right key
    expect(() => openCheckpoint(note, [ed25519NoteVerifier(log.verifierKey())], { origin: 'labtrace.example/other' })).toThrow(TrustError);
  });

  test('signed only when the tree has grown and at most once per minCheckpointIntervalMs', async () => {
    const { log } = await openLog(tempDir(), { minCheckpointIntervalMs: 1000 }, 10_000);
    expect(log.latestCheckpoint()).toMatchObject({ size: 0, at: 10_000 });
    expect(log.maybeCheckpoint(20_000)).toBe(false); // not grown
    log.append('key-event', [new Uint8Array([1])], 20_000);
    expect(log.maybeCheckpoint(20_001)).toBe(true); // grown, and the last one is 10 s old
    log.append('key-event', [new Uint8Array([2])], 20_100);
    expect(log.maybeCheckpoint(20_500)).toBe(false);
    expect(open(log, log.checkpoint(21_000)).size).toBe(1); // 999 ms after the last
    expect(open(log, log.checkpoint(21_001)).size).toBe(2);
    expect(log.maybeCheckpoint(30_000)).toBe(false);
    // a clock set back does not hold checkpoints back
    log.append('key-event', [new Uint8Array([3])], 30_000);
    expect(log.maybeCheckpoint(5_000)).toBe(true);
    expect([0, 1, 2, 3].map((size) => log.checkpointAt(size)?.at)).toEqual([10_000, 20_001, 21_001, 5_000]);
  });

  test('a consistency proof between two saved checkpoints verifies', async () => {
    const { log } = await openLog(tempDir());
    const next = random(9162);
    log.append(
      'batch-header',
      Array.from({ length: 37 }, () => bytes(next, 100)),
    );
    log.maybeCheckpoint(1);
    const older = open(log, log.latestCheckpoint().note);
    log.append(
      'batch-header',
      Array.from({ length: 1000 }, () => bytes(next, 100)),
    );
    log.maybeCheckpoint(2);
    const newer = open(log, log.latestCheckpoint().note);
    expect([older.size, newer.size]).toEqual([37, 1037]);
    verifyConsistency(older.size, newer.size, older.rootHash, newer.rootHash, log.consistencyProof(older.size, newer.size));
    // and not the other way round, nor with the roots swapped
    expect(() => verifyConsistency(older.size, newer.size, newer.rootHash, older.rootHash, log.consistencyProof(37, 1037))).toThrow(TrustError);
  });
});

describe('RFC 6962 vectors, through the stored tree', () => {
  interface RootsVector {
    leafInputsHex: string[];
    rootsBySize: string[];
  }
  interface InclusionVector {
    leafIdx: number;
    treeSize: number;
    root: string;
    leafHash: string;
    proof: string[] | null;
  }
  interface ConsistencyVector {
    size1: number;
    size2: number;
    root1: string;
    root2: string;
    proof: string[] | null;
  }
  const read = async <T>(relative: string): Promise<T> => {
    const { readFile } = await import('node:fs/promises');
    return JSON.parse(await readFile(VECTORS_DIR + relative, 'utf8')) as T;
  };
  const b64hex = (text: string): string => hex(fromBase64(text));

  test('roots of sizes 0..8 and the happy-path inclusion and consistency proofs', async () => {
    const roots = await read<RootsVector>('roots.json');
    const { log } = await openLog(tempDir());
    expect(hex(log.root())).toBe(roots.rootsBySize[0]);
    for (const leaf of roots.leafInputsHex) {
      log.append('batch-header', [new Uint8Array(Buffer.from(leaf, 'hex'))]);
      expect(hex(log.root())).toBe(roots.rootsBySize[log.size]);
    }
    roots.rootsBySize.forEach((root, size) => expect(hex(log.root(size))).toBe(root));

    const folders = readdirSync(VECTORS_DIR + 'inclusion').filter((f) => /^\d+$/.test(f));
    expect(folders.length).toBeGreaterThanOrEqual(5);
    for (const folder of folders) {
      const v = await read<InclusionVector>(`inclusion/${folder}/happy-path.json`);
      expect(b64hex(v.root)).toBe(hex(log.root(v.treeSize)));
      expect(hex(log.leafHash(v.leafIdx))).toBe(b64hex(v.leafHash));
      expect(log.inclusionProof(v.leafIdx, v.treeSize).map(hex)).toEqual((v.proof ?? []).map(b64hex));
    }
    const consistency = readdirSync(VECTORS_DIR + 'consistency').filter((f) => /^\d+$/.test(f));
    expect(consistency.length).toBeGreaterThanOrEqual(5);
    for (const folder of consistency) {
      const v = await read<ConsistencyVector>(`consistency/${folder}/happy-path.json`);
      expect(b64hex(v.root1)).toBe(hex(log.root(v.size1)));
      expect(b64hex(v.root2)).toBe(hex(log.root(v.size2)));
      expect(log.consistencyProof(v.size1, v.size2).map(hex)).toEqual((v.proof ?? []).map(b64hex));
    }
  });
});

describe('a large log', () => {
  test('100,000 entries: proofs at random indices and sizes verify against the checkpoint', async () => {
    const { log } = await openLog(tempDir());
    const total = 100_000;
    const chunk = 10_000;
    const entry = (i: number): Uint8Array => {
      const data = new Uint8Array(24);
      new DataView(data.buffer).setUint32(0, i);
      return data;
    };
    const midCheckpoints: { size: number; rootHash: Uint8Array }[] = [];
    for (let first = 0; first < total; first += chunk) {
      log.append(
        'batch-header',
        Array.from({ length: chunk }, (_, k) => entry(first + k)),
      );
      log.maybeCheckpoint(first + 1);
      midCheckpoints.push(open(log, log.latestCheckpoint().note));
    }
    const latest = open(log, log.checkpoint());
    expect(latest.size).toBe(total);
    const next = random(100_000);
    for (let k = 0; k < 300; k++) {
      const index = Math.floor(next() * total);
      verifyInclusion(leafHash(entry(index)), index, total, log.inclusionProof(index, total), latest.rootHash);
      const earlier = midCheckpoints[Math.floor(next() * midCheckpoints.length)]!;
      if (index < earlier.size)
        verifyInclusion(leafHash(entry(index)), index, earlier.size, log.inclusionProof(index, earlier.size), earlier.rootHash);
      verifyConsistency(earlier.size, total, earlier.rootHash, latest.rootHash, log.consistencyProof(earlier.size, total));
    }
    const tail = log.entries(total - MAX_ENTRIES_PER_READ, total);
    expect(tail).toHaveLength(MAX_ENTRIES_PER_READ);
    expect(hex(tail[999]!.data)).toBe(hex(entry(total - 1)));
  });
});

describe('mutations fail', () => {
  test('a served proof with any one bit flipped fails; a checkpoint with a changed root fails to open', async () => {
    const { log } = await openLog(tempDir());
    const next = random(1);
    const leaves = Array.from({ length: 1000 }, () => bytes(next, 64));
    log.append('batch-header', leaves.slice(0, 300));
    log.maybeCheckpoint(1);
    const old = open(log, log.latestCheckpoint().note);
    log.append('batch-header', leaves.slice(300));
    log.maybeCheckpoint(2);
    const note = log.latestCheckpoint().note;
    const { size, rootHash } = open(log, note);
    const index = 517;
    const proof = log.inclusionProof(index, size);
    const consistency = log.consistencyProof(old.size, size);
    verifyInclusion(leafHash(leaves[index]!), index, size, proof, rootHash);
    verifyConsistency(old.size, size, old.rootHash, rootHash, consistency);
    const flip = (hashes: Uint8Array[], at: number, bit: number): Uint8Array[] =>
      hashes.map((h, i) => {
        if (i !== at) return h;
        const copy = Uint8Array.from(h);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        return copy;
      });
    for (let at = 0; at < proof.length; at++) {
      const bit = Math.floor(next() * 256);
      expect(() => verifyInclusion(leafHash(leaves[index]!), index, size, flip(proof, at, bit), rootHash)).toThrow(TrustError);
    }
    for (let at = 0; at < consistency.length; at++) {
      expect(() => verifyConsistency(old.size, size, old.rootHash, rootHash, flip(consistency, at, Math.floor(next() * 256)))).toThrow(TrustError);
    }
    // a proof for another leaf, another index, or one hash short
    expect(() => verifyInclusion(leafHash(leaves[index + 1]!), index, size, proof, rootHash)).toThrow(TrustError);
    expect(() => verifyInclusion(leafHash(leaves[index]!), index + 1, size, proof, rootHash)).toThrow(TrustError);
    expect(() => verifyInclusion(leafHash(leaves[index]!), index, size, proof.slice(1), rootHash)).toThrow(TrustError);

    const lines = note.split('\n');
    const changed = [lines[0], lines[1], toBase64(flip([rootHash], 0, 3)[0]!), ...lines.slice(3)].join('\n');
    expect(() => open(log, changed)).toThrow(/does not verify/);
    const grown = [lines[0], '1001', ...lines.slice(2)].join('\n');
    expect(() => open(log, grown)).toThrow(/does not verify/);
    // signed by another key with the log's name: not signed by the log
    expect(() => openCheckpoint(note, [ed25519NoteVerifier(formatVerifierKey(ORIGIN, newKey().publicKey))])).toThrow(/not signed by any known key/);
  });
});

describe('argument checks name the parameter and the problem', () => {
  test('every method', async () => {
    const { log } = await openLog(tempDir());
    log.append(
      'batch-header',
      Array.from({ length: 10 }, (_, i) => Uint8Array.of(i)),
    );
    expectBadRequest(() => log.inclusionProof(10, 10), 'index: 10 is not less than the tree size 10');
    expectBadRequest(() => log.inclusionProof(3, 11), 'size: 11 is larger than the tree size (10)');
    expectBadRequest(() => log.inclusionProof(-1, 5), 'index: -1');
    expectBadRequest(() => log.inclusionProof(1.5, 5), 'index: 1.5 is not a whole number');
    expectBadRequest(() => log.inclusionProof(0, 0), 'index: 0 is not less than the tree size 0');
    expectBadRequest(() => log.consistencyProof(0, 5), 'from: must be at least 1');
    expectBadRequest(() => log.consistencyProof(6, 5), 'from: 6 is larger than to (5)');
    expectBadRequest(() => log.consistencyProof(1, 11), 'to: 11 is larger than the tree size (10)');
    expectBadRequest(() => log.entries(5, 4), 'start: 5 is larger than end (4)');
    expectBadRequest(() => log.entries(0, 11), 'end: 11 is larger than the tree size (10)');
    expectBadRequest(() => log.root(11), 'size: 11 is larger');
    expectBadRequest(() => log.leafHash(10), 'index: 10 is not less');
    expectBadRequest(() => log.append('batch-header', []), 'entries: expected a non-empty array');
    expectBadRequest(() => log.append('nonsense' as 'key-event', [Uint8Array.of(1)]), 'kind: "nonsense" is not one of');
    expectBadRequest(() => log.append('key-event', ['text' as unknown as Uint8Array]), 'entries[0]: expected a Uint8Array');
    expectBadRequest(() => log.append('key-event', [Uint8Array.of(1), new Uint8Array(65 * 1024)]), 'entries[1]: 66560 bytes is more than');
    expect(log.entries(4, 4)).toEqual([]);
    expect(log.consistencyProof(5, 5)).toEqual([]);
    expect(log.size).toBe(10);
  });

  test('entries are served at most 1000 at a time', async () => {
    const { log } = await openLog(tempDir());
    log.append(
      'batch-header',
      Array.from({ length: 1500 }, (_, i) => Uint8Array.of(i & 0xff)),
    );
    expect(log.entries(0, 1000)).toHaveLength(1000);
    expectBadRequest(() => log.entries(0, 1001), 'end: at most 1000 entries per call');
  });
});

// the routes over the in-process log, and over the store several nodes share (log-store.ts) on the same file
describe.each(['the in-process log', 'the shared log store'])('HTTP routes over %s', (reader) => {
  let server: Server;
  let base: string;
  let log: TransparencyLog;
  let database: LabDatabase;
  const leaves = Array.from({ length: 21 }, (_, i) => new TextEncoder().encode(`{"entry":${i}}`));

  beforeAll(async () => {
    database = new LabDatabase(tempDir(), serverMigrations);
    await database.migrate();
    log = new TransparencyLog(database, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0 });
    log.open();
    log.append('batch-header', leaves.slice(0, 13));
    log.append('key-event', leaves.slice(13));
    const app = express();
    if (reader === 'the in-process log') app.use(logRoutes(logReaderOf(log)));
    else {
      const store = new LogStore(database.db, { origin: ORIGIN, signer: KEY, minCheckpointIntervalMs: 0 });
      await store.open();
      app.use(logRoutes(store));
    }
    app.use(errorHandler(createLogger('test', 'silent')));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    await database.close();
  });

  async function getJson(route: string): Promise<{ status: number; body: any }> {
    const res = await fetch(base + route);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    return { status: res.status, body: await res.json() };
  }

  test('GET /api/log/checkpoint serves the latest signed checkpoint as text', async () => {
    const res = await fetch(`${base}/api/log/checkpoint`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const checkpoint = open(log, await res.text());
    expect(checkpoint.size).toBe(21);
    expect(hex(checkpoint.rootHash)).toBe(hex(rootOf(leaves.map(leafHash))));
    const older = await fetch(`${base}/api/log/checkpoint?size=0`);
    expect(open(log, await older.text()).size).toBe(0);
    const none = await getJson('/api/log/checkpoint?size=5');
    expect(none).toEqual({ status: 404, body: { code: 'E_NOT_FOUND', error: 'no checkpoint was signed at tree size 5' } });
  });

  test('GET /api/log/proof/inclusion and /consistency verify against the checkpoints', async () => {
    const { rootHash } = open(log, await (await fetch(`${base}/api/log/checkpoint`)).text());
    const { status, body } = await getJson('/api/log/proof/inclusion?index=17&size=21');
    expect(status).toBe(200);
    expect(body).toMatchObject({ index: 17, size: 21, leafHash: toBase64(leafHash(leaves[17]!)) });
    verifyInclusion(leafHash(leaves[17]!), 17, 21, (body.proof as string[]).map(fromBase64), rootHash);
    const consistency = await getJson('/api/log/proof/consistency?from=0&to=21');
    expect(consistency.status).toBe(400);
    const good = await getJson('/api/log/proof/consistency?from=13&to=21');
    expect(good.body).toMatchObject({ from: 13, to: 21 });
    verifyConsistency(13, 21, rootOf(leaves.slice(0, 13).map(leafHash)), rootHash, (good.body.proof as string[]).map(fromBase64));
  });

  test('GET /api/log/entries', async () => {
    const { status, body } = await getJson('/api/log/entries?start=12&end=14');
    expect(status).toBe(200);
    expect(body.entries).toEqual([
      { index: 12, kind: 'batch-header', at: expect.any(Number), data: toBase64(leaves[12]!) },
      { index: 13, kind: 'key-event', at: expect.any(Number), data: toBase64(leaves[13]!) },
    ]);
  });

  test('bad queries are 400 and name the parameter', async () => {
    const cases: [string, string][] = [
      ['/api/log/proof/inclusion?index=abc&size=21', 'query: index: expected a whole number'],
      ['/api/log/proof/inclusion?index=1', 'query: size:'],
      ['/api/log/proof/inclusion?index=-1&size=21', 'query: index:'],
      ['/api/log/proof/inclusion?index=1e3&size=21', 'query: index:'],
      ['/api/log/proof/inclusion?index=01&size=21', 'query: index:'],
      ['/api/log/proof/inclusion?index=1&index=2&size=21', 'query: index:'],
      ['/api/log/proof/inclusion?index=99999999999999999&size=21', 'query: index:'],
      ['/api/log/proof/inclusion?index=21&size=21', 'index: 21 is not less than the tree size 21'],
      ['/api/log/proof/inclusion?index=2&size=22', 'size: 22 is larger than the tree size (21)'],
      ['/api/log/proof/inclusion?index=2&size=21&colour=red', 'colour'],
      ['/api/log/proof/consistency?from=5&to=4', 'from: 5 is larger than to (4)'],
      ['/api/log/proof/consistency?from=5', 'query: to:'],
      ['/api/log/entries?start=3&end=2', 'start: 3 is larger than end (2)'],
      ['/api/log/entries?start=0&end=22', 'end: 22 is larger than the tree size (21)'],
      ['/api/log/entries?start=&end=2', 'query: start:'],
      ['/api/log/checkpoint?size=x', 'query: size:'],
    ];
    for (const [route, message] of cases) {
      const { status, body } = await getJson(route);
      expect({ route, status, code: body.code }).toEqual({ route, status: 400, code: 'E_BAD_REQUEST' });
      expect(String(body.error)).toContain(message);
    }
  });
});
