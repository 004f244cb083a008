import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import {
  addCosignatures,
  consistencyProof,
  cosignatureVerifier,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatAddCheckpoint,
  formatSignerKey,
  formatVerifierKey,
  leafHash,
  leafHashReader,
  openCheckpoint,
  openCosignatures,
  parseAddCheckpoint,
  parseCosignerSignerKey,
  formatCosignerSignerKey,
  publicKeyFromSeed,
  rootOf,
  signCheckpoint,
  utf8,
  type NoteSigner,
} from '@labtrace/protocols';
import { createLogger } from '../../src/log.js';
import { Witness } from '../../src/witness/witness.js';

const ORIGIN = 'lab.example/log';
const LOG_SEED = new Uint8Array(32).fill(5);
const logSigner = ed25519NoteSigner(formatSignerKey(ORIGIN, LOG_SEED));
const logVkey = formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED));
const logVerifier = ed25519NoteVerifier(logVkey);
const witnessKey = parseCosignerSignerKey(formatCosignerSignerKey('regulator.example/witness', new Uint8Array(32).fill(9)));

/** A log held in memory: leaves by the test, checkpoints signed by the log key, proofs computed from the leaves. */
class TestLog {
  readonly leaves: Uint8Array[] = [];
  constructor(
    private readonly prefix: string,
    private readonly signer: NoteSigner = logSigner,
  ) {}
  grow(to: number): void {
    while (this.leaves.length < to) this.leaves.push(leafHash(utf8(`${this.prefix} ${this.leaves.length}`)));
  }
  note(size: number): string {
    return signCheckpoint({ origin: ORIGIN, size, rootHash: rootOf(this.leaves.slice(0, size)), extensions: [] }, [this.signer]);
  }
  request(oldSize: number, size: number): string {
    const proof = oldSize === 0 ? [] : consistencyProof(oldSize, size, leafHashReader(this.leaves));
    return formatAddCheckpoint({ oldSize, proof, note: this.note(size) });
  }
}

let dir: string;
let witness: Witness;

function newWitness(): Witness {
  return new Witness(
    {
      key: witnessKey,
      database: path.join(dir, 'witness.db'),
      host: '127.0.0.1',
      port: 0,
      logs: [{ origin: ORIGIN, keys: [logVkey] }],
      now: () => 1_760_000_000,
    },
    createLogger('witness', 'silent'),
  );
}

async function submit(body: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-'));
  witness = newWitness();
  await witness.start();
});

afterEach(async () => {
  await witness.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('witness add-checkpoint over HTTP', () => {
  test('cosigns a chain of checkpoints, each consistent with the one before', async () => {
    const log = new TestLog('good');
    log.grow(11);
    for (const [oldSize, size] of [
      [0, 3],
      [3, 7],
      [7, 7],
      [7, 11],
    ] as const) {
      const res = await submit(log.request(oldSize, size));
      expect(res.status).toBe(200);
      const cosigned = openCosignatures(addCosignatures(log.note(size), res.body), [cosignatureVerifier(witness.verifierKey)]);
      expect(cosigned.checkpoint.size).toBe(size);
      expect(cosigned.cosignatures.map((c) => c.timestamp)).toEqual([1_760_000_000]);
    }
    expect(witness.store.latest(ORIGIN)?.size).toBe(11);
  });

  test('answers 409 with its latest size when the old size is stale, and remembers it across a restart', async () => {
    const log = new TestLog('good');
    log.grow(5);
    expect((await submit(log.request(0, 5))).status).toBe(200);
    const stale = await submit(log.request(0, 5));
    expect(stale).toEqual({ status: 409, body: '5\n', type: 'text/x.tlog.size' });
    await witness.stop();
    witness = newWitness();
    await witness.start();
    expect(await submit(log.request(3, 5))).toEqual({ status: 409, body: '5\n', type: 'text/x.tlog.size' });
  });

  test('answers 422 to a proof that does not verify and keeps the request as evidence', async () => {
    const log = new TestLog('good');
    log.grow(9);
    expect((await submit(log.request(0, 4))).status).toBe(200);
    const good = parseAddCheckpoint(log.request(4, 9));
    const first = good.proof[0];
    if (first === undefined) throw new Error('a proof from 4 to 9 has hashes');
    first[0] = (first[0] ?? 0) ^ 1;
    const bad = formatAddCheckpoint({ oldSize: 4, proof: good.proof, note: good.note });
    const res = await submit(bad);
    expect(res.status).toBe(422);
    expect(witness.store.latest(ORIGIN)?.size).toBe(4);
    expect(witness.store.evidence(ORIGIN).map((e) => [e.kind, e.request])).toEqual([['bad-proof', bad]]);
  });

  test('refuses a fork (same size, other root) and keeps two log-signed checkpoints that prove it', async () => {
    const honest = new TestLog('good');
    const rewritten = new TestLog('rewritten');
    honest.grow(6);
    rewritten.grow(6);
    expect((await submit(honest.request(0, 6))).status).toBe(200);
    const fork = rewritten.request(6, 6);
    expect(await submit(fork)).toEqual({ status: 409, body: '6\n', type: 'text/x.tlog.size' });
    const [evidence] = witness.store.evidence(ORIGIN);
    expect(evidence?.kind).toBe('fork');
    // offline, with only the log's public key: two valid checkpoints of one size with different roots
    const a = openCheckpoint(evidence?.cosignedNote ?? '', [logVerifier]).checkpoint;
    const b = openCheckpoint(parseAddCheckpoint(evidence?.request ?? '').note, [logVerifier]).checkpoint;
    expect(a.size).toBe(b.size);
    expect(Buffer.from(a.rootHash).equals(Buffer.from(b.rootHash))).toBe(false);
    // and a rewritten history of a larger size cannot be proved consistent with the cosigned one
    rewritten.grow(8);
    expect((await submit(rewritten.request(6, 8))).status).toBe(422);
    expect(witness.store.latest(ORIGIN)?.size).toBe(6);
  });

  test('404 for an unknown log, 403 for a checkpoint not signed by the log key, 400 for a malformed body or an old size above the new', async () => {
    const stranger = ed25519NoteSigner(formatSignerKey('other.example/log', new Uint8Array(32).fill(6)));
    const otherOrigin = formatAddCheckpoint({
      oldSize: 0,
      proof: [],
      note: signCheckpoint({ origin: 'other.example/log', size: 1, rootHash: leafHash(utf8('x')), extensions: [] }, [stranger]),
    });
    expect((await submit(otherOrigin)).status).toBe(404);
    const forged = new TestLog('good', ed25519NoteSigner(formatSignerKey(ORIGIN, new Uint8Array(32).fill(7))));
    forged.grow(2);
    expect((await submit(forged.request(0, 2))).status).toBe(403);
    expect((await submit('old 0\n')).status).toBe(400);
    const log = new TestLog('good');
    log.grow(3);
    expect((await submit(formatAddCheckpoint({ oldSize: 5, proof: [leafHash(utf8('p'))], note: log.note(3) }))).status).toBe(400);
    expect((await submit(`old 0\n\n${'x'.repeat(70 * 1024)}`)).status).toBe(413);
    expect(witness.store.latest(ORIGIN)).toBeUndefined();
  });

  test('concurrent submissions from the same old size: one is cosigned, the other gets 409, and the size never rolls back', async () => {
    const log = new TestLog('good');
    log.grow(20);
    expect((await submit(log.request(0, 8))).status).toBe(200);
    const answers = await Promise.all([submit(log.request(8, 20)), submit(log.request(8, 12)), submit(log.request(8, 15))]);
    const accepted = answers.filter((a) => a.status === 200);
    expect(accepted).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(2);
    const latest = witness.store.latest(ORIGIN)?.size;
    expect(answers.filter((a) => a.status === 409).map((a) => a.body)).toEqual([`${latest}\n`, `${latest}\n`]);
  });
});
