// A lab server made to rewrite its history (its database tampered with between two runs: the last entry of a
// cosigned tree replaced and the tree of that size signed again) gets no cosignature from its witness, and the
// witness's evidence, two checkpoints of one size with different roots, verifies offline with the log key alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import {
  bytesEqual,
  ed25519NoteVerifier,
  formatCosignerSignerKey,
  formatSignerKey,
  formatVerifierKey,
  openCheckpoint,
  parseAddCheckpoint,
  parseCosignerSignerKey,
  parseNote,
  parseSignerKey,
  publicKeyFromSeed,
  utf8,
} from '@labtrace/protocols';
import { createLogger } from '../../src/log.js';
import { serverMigrations } from '../../src/migrations.js';
import { LabDatabase } from '../../src/store/database.js';
import { TransparencyLog } from '../../src/log/transparency-log.js';
import { Witness } from '../../src/witness/witness.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const ORIGIN = 'labtrace/lab-t';
const LOG_SEED = new Uint8Array(32).fill(8);
const LOG_VKEY = formatVerifierKey(ORIGIN, publicKeyFromSeed(LOG_SEED));
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-lab-fork-'));
const running: { stop(): Promise<void> }[] = [];

afterAll(async () => {
  for (const r of running.reverse()) await r.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('a rewritten history gets no cosignature, and the witness keeps evidence that verifies with the log key alone', async () => {
  const witness = new Witness(
    {
      key: parseCosignerSignerKey(formatCosignerSignerKey('regulator.example/w', new Uint8Array(32).fill(30))),
      database: path.join(tmp, 'witness.db'),
      host: '127.0.0.1',
      port: 0,
      logs: [{ origin: ORIGIN, keys: [LOG_VKEY] }],
    },
    createLogger('witness', 'silent'),
  );
  await witness.start();
  running.push(witness);
  const keyFile = path.join(tmp, 'log.key');
  writeFileSync(keyFile, `${formatSignerKey(ORIGIN, LOG_SEED)}\n`, { mode: 0o600 });
  const logConfig = { origin: ORIGIN, keyFile, witnesses: [{ url: witness.url, key: witness.verifierKey }] };

  // the honest run: the witness cosigns the lab's checkpoint of size n
  const first: TestServer = await startServer({ log: { ...logConfig, minCheckpointIntervalMs: 100 } });
  const gw = await TestGateway.connect(first, 'gw-a');
  await gw.birth('fork-1');
  for (let b = 0; b < 3; b++) expect(await send(first, gw, gw.seal(records('fork-1', b * 4, 4)))).toBe('acked');
  const latest = (): number => first.server.log?.latestCheckpoint().size ?? -1;
  await waitFor('the witness cosigning the latest checkpoint', () => latest() >= 3 && witness.store.latest(ORIGIN)?.size === latest());
  const cosigned = witness.store.latest(ORIGIN);
  if (cosigned === undefined) throw new Error('nothing cosigned');
  const n = cosigned.size;
  await gw.end();
  await first.stop();

  // the tampering: the last entry of the cosigned tree replaced, and the tree of size n signed again
  const database = new LabDatabase(first.config.dataDir, serverMigrations);
  await database.migrate();
  const k = n - 1;
  database.sqlite.exec(`
    DELETE FROM log_cosignatures WHERE size > ${k};
    DELETE FROM log_checkpoints WHERE size > ${k};
    DELETE FROM log_entries WHERE idx >= ${k};
    DELETE FROM log_hashes WHERE (idx + 1) * (1 << level) > ${k};`);
  const log = new TransparencyLog(database, {
    origin: ORIGIN,
    signer: parseSignerKey(formatSignerKey(ORIGIN, LOG_SEED)),
    minCheckpointIntervalMs: 100,
  });
  log.open();
  log.append('audit-event', [utf8('an entry written in place of another')]);
  expect(log.size).toBe(n);
  expect(log.maybeCheckpoint(Date.now())).toBe(true);
  const forked = log.latestCheckpoint();
  expect(forked.size).toBe(n);
  await database.close();

  // the lab server on the tampered store: its latest checkpoint (no other for an hour) goes to the witness
  const second = await startServer({ dataDir: first.config.dataDir, log: { ...logConfig, minCheckpointIntervalMs: 3_600_000 } });
  running.push(second);
  await waitFor('the witness refusing the rewritten tree', () => witness.store.evidence(ORIGIN).length > 0);
  const state = (await (await second.fetch('/api/log/witnesses', {}, 'auditor')).json()) as { witnesses: { lastError: { code: string } | null }[] };
  expect(state.witnesses[0]?.lastError?.code).toBe('E_CONFLICT');
  // no cosignature of the rewritten checkpoint: it is served with the log's signature only
  const served = await (await second.fetch(`/api/log/checkpoint?size=${n}`, {}, null)).text();
  expect(served).toBe(forked.note);
  expect(parseNote(served).signatures).toHaveLength(1);
  expect(witness.store.latest(ORIGIN)?.size).toBe(n);

  // the evidence, offline with the log key alone: two checkpoints of size n, both signed by the log, different roots
  const [evidence] = witness.store.evidence(ORIGIN);
  expect(evidence?.kind).toBe('fork');
  const logVerifier = ed25519NoteVerifier(LOG_VKEY);
  const a = openCheckpoint(evidence?.cosignedNote ?? '', [logVerifier], { origin: ORIGIN }).checkpoint;
  const b = openCheckpoint(parseAddCheckpoint(evidence?.request ?? '').note, [logVerifier], { origin: ORIGIN }).checkpoint;
  expect([a.size, b.size]).toEqual([n, n]);
  expect(bytesEqual(a.rootHash, b.rootHash)).toBe(false);
}, 60_000);
