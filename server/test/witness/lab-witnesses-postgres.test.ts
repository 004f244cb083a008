// Two lab server nodes on one PostgreSQL and one witness: one node at a time submits the log's checkpoints (the
// holder of the lease witness-cosigning), every node serves the cosigned checkpoint from the shared store, and when the
// submitting node stops the other takes over and the witness cosigns on, consistently.
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import {
  cosignatureVerifier,
  ed25519NoteVerifier,
  formatCosignerSignerKey,
  formatSignerKey,
  formatVerifierKey,
  openCheckpoint,
  openCosignatures,
  parseCosignerSignerKey,
  publicKeyFromSeed,
  utf8,
} from '@labtrace/protocols';
import { createLogger } from '../../src/log.js';
import { Witness } from '../../src/witness/witness.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

const ORIGIN = 'labtrace/lab-t';
const LOG_SEED = new Uint8Array(32).fill(9);
const LOG_VKEY = formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED));
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-witness-pg-'));

let postgres: TestPostgres;
let witness: Witness;
const nodes: TestServer[] = [];

interface State {
  witnesses: { name: string; submitting: boolean; cosigned: { size: number } | null }[];
}

async function stateOf(node: TestServer): Promise<State['witnesses'][number] | undefined> {
  return ((await (await node.fetch('/api/log/witnesses', {}, 'auditor')).json()) as State).witnesses[0];
}

/** Appends an entry through a node and signs a checkpoint of it (as ingest and the housekeeping do). */
async function grow(node: TestServer, text: string): Promise<number> {
  const log = node.server.logStore;
  if (log === undefined) throw new Error('the node has no shared log');
  await node.server.db.transaction().execute((trx) => log.append(trx, 'audit-event', [utf8(text)]));
  await waitFor('a checkpoint of the grown log', async () => (await log.latestCheckpoint()).size === (await log.size()));
  return (await log.latestCheckpoint()).size;
}

beforeAll(async () => {
  postgres = await startPostgres();
  witness = new Witness(
    {
      key: parseCosignerSignerKey(formatCosignerSignerKey('regulator.example/w', new Uint8Array(32).fill(40))),
      database: path.join(tmp, 'witness.db'),
      host: '127.0.0.1',
      port: 0,
      logs: [{ origin: ORIGIN, keys: [LOG_VKEY] }],
    },
    createLogger('witness', 'silent'),
  );
  await witness.start();
  const keyFile = path.join(tmp, 'log.key');
  writeFileSync(keyFile, `${formatSignerKey(ORIGIN, LOG_SEED)}\n`, { mode: 0o600 });
  for (const name of ['node-a', 'node-b'])
    nodes.push(
      await startServer({
        database: { url: postgres.url },
        cluster: { node: name, leases: { pollMs: 100, sessionTimeoutMs: 1000 } },
        log: {
          origin: ORIGIN,
          keyFile,
          minCheckpointIntervalMs: 100,
          witnessMaxBackoffMs: 1000,
          witnesses: [{ url: witness.url, key: witness.verifierKey }],
        },
      }),
    );
}, 120_000);

afterAll(async () => {
  for (const node of nodes) await node.stop();
  await witness.stop();
  await postgres.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

test('one node submits; both serve the cosigned checkpoint; the other node takes over when it stops', async () => {
  const [a, b] = nodes;
  if (a === undefined || b === undefined) throw new Error('two nodes expected');
  const size = await grow(a, 'first');
  await waitFor('the witness cosigning the shared log', () => (witness.store.latest(ORIGIN)?.size ?? -1) >= size, 20_000);
  const submitting = [(await stateOf(a))?.submitting, (await stateOf(b))?.submitting];
  expect(submitting.filter(Boolean)).toHaveLength(1);
  // every node serves the checkpoint with the cosignature the submitting node stored
  const cosigned = witness.store.latest(ORIGIN)?.size ?? -1;
  for (const node of [a, b]) {
    const note = await (await node.fetch(`/api/log/checkpoint?size=${cosigned}`, {}, null)).text();
    expect(openCheckpoint(note, [ed25519NoteVerifier(LOG_VKEY)]).checkpoint.size).toBe(cosigned);
    expect(openCosignatures(note, [cosignatureVerifier(witness.verifierKey)]).cosignatures).toHaveLength(1);
    expect((await stateOf(node))?.cosigned?.size).toBe(cosigned);
  }

  // the submitting node stops: the other takes the lease and submits the next checkpoint with a proof
  const [leaving, staying] = submitting[0] === true ? [a, b] : [b, a];
  await leaving.stop();
  nodes.splice(nodes.indexOf(leaving), 1);
  const next = await grow(staying, 'second');
  await waitFor('the witness cosigning through the other node', () => (witness.store.latest(ORIGIN)?.size ?? -1) >= next, 30_000);
  expect((await stateOf(staying))?.submitting).toBe(true);
  expect(witness.store.evidence(ORIGIN)).toEqual([]);
}, 90_000);
