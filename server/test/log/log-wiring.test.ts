// The log inside the server: every stored batch's signed header becomes an entry in the same commit,
// key events too, and an auditor's client checks the server's checkpoint and proofs over HTTP.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import {
  canonicalBytes,
  decodeRecord,
  ed25519NoteVerifier,
  fromBase64,
  leafHash,
  openCheckpoint,
  parseKeyEvent,
  parseVerifierKey,
  rootFromInclusionProof,
  toBase64,
  verifyEd25519,
  verifyInclusion,
  type BatchHeader,
} from '@labtrace/protocols';
import pino from 'pino';
import { LabDatabase } from '../../src/store/database.js';
import { KeyRegistry } from '../../src/trust/key-registry.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

let t: TestServer;
let gw: TestGateway;

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
  gw = await TestGateway.connect(t, 'gw-a');
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

test('verified batches enter the log; the checkpoint and an inclusion proof verify against the log key', async () => {
  const log = t.server.log!;
  // the test users' audit entries come first: anchored now, so that nothing else enters the log meanwhile
  await t.server.audit.anchor(log);
  const base = log.size;
  await gw.birth('log-1');
  const first = gw.seal(records('log-1', 0, 3));
  expect(await send(t, gw, first)).toBe('acked');
  const second = gw.sign(records('log-1', 3, 2));
  expect(await send(t, gw, second)).toBe('acked');
  expect(log.size).toBe(base + 2);
  // a refused batch does not enter the log
  expect(await send(t, gw, { ...second, batch: 2, samples: records('log-1', 5, 2) })).not.toBe('acked');
  expect(log.size).toBe(base + 2);
  await waitFor(`a checkpoint of size ${base + 2}`, () => new RegExp(`\n${base + 2}\n`).test(log.latestCheckpoint()?.note ?? ''));
  const note = await (await t.fetch(`/api/log/checkpoint`)).text();
  const opened = openCheckpoint(note, [ed25519NoteVerifier(log.verifierKey())], { origin: 'labtrace/lab-t' });
  expect(opened.checkpoint.size).toBe(base + 2);
  const entries = (await (await t.fetch(`/api/log/entries?start=${base}&end=${base + 2}`)).json()) as {
    entries: { kind: string; data: string }[];
  };
  expect(entries.entries.map((e) => e.kind)).toEqual(['batch-header', 'batch-header']);
  expect(JSON.parse(new TextDecoder().decode(fromBase64(entries.entries[1]!.data)))).toEqual(second.signed);
  expect(fromBase64(entries.entries[1]!.data)).toEqual(canonicalBytes(second.signed));
  const proof = (await (await t.fetch(`/api/log/proof/inclusion?index=${base + 1}&size=${base + 2}`)).json()) as { proof: string[] };
  expect(() =>
    verifyInclusion(leafHash(fromBase64(entries.entries[1]!.data)), base + 1, base + 2, proof.proof.map(fromBase64), opened.checkpoint.rootHash),
  ).not.toThrow();
  expect((await t.fetch(`/api/log/proof/inclusion?index=${base + 5}&size=${base + 2}`)).status).toBe(400);
});

test('key events enter the log as structured records, also those written by another process (the admin command line)', async () => {
  const before = t.server.log!.size;
  await t.server.keys.revoke('gw-b', t.server.keys.activeKey('gw-b')!.keyId, Date.now(), 'test');
  // as the command line does: its own connection to the database
  const other = new LabDatabase(t.config.dataDir, serverMigrations);
  await other.migrate();
  try {
    await new KeyRegistry(other, new SecurityEvents(other, pino({ level: 'silent' }))).revoke(
      'gw-s',
      t.server.keys.activeKey('gw-s')!.keyId,
      Date.now(),
      'by the admin',
    );
  } finally {
    await other.close();
  }
  await waitFor('two key events in the log', () => t.server.log!.size === before + 2);
  const entries = t.server.log!.entries(before, before + 2);
  expect(entries.map((e) => e.kind)).toEqual(['key-event', 'key-event']);
  const records = entries.map((e) => parseKeyEvent(JSON.parse(new TextDecoder().decode(e.data))));
  expect(records).toEqual([
    expect.objectContaining({ type: 'labtrace-key-event', v: 1, event: 'revoked', gateway: 'gw-b', reason: 'test' }),
    expect.objectContaining({ type: 'labtrace-key-event', v: 1, event: 'revoked', gateway: 'gw-s', reason: 'by the admin' }),
  ]);
});

test("one measurement's proof verifies offline: record -> batch root (gateway's key) -> log root (checkpoint, log key)", async () => {
  // parsed here (not by fetch) so that canonical JSON sees plain objects of this realm
  const proof = JSON.parse(await (await t.fetch(`/api/log/measurement/gw-a/1`)).text()) as {
    record: { bytes: string; sample: { seq: number; value: number } };
    batch: { header: BatchHeader; signature: string; index: number; proof: string[] };
    log: { index: number; size: number; proof: string[] };
    checkpoint: string;
  };
  const keys = (await (await t.fetch(`/api/log/keys`)).json()) as {
    log: { verifierKey: string };
    gateways: { gateway: string; verifierKey: string }[];
  };
  // the record: its bytes say what the JSON says
  const record = fromBase64(proof.record.bytes);
  expect(decodeRecord(record).sample).toEqual(proof.record.sample);
  expect(proof.record.sample.seq).toBe(1);
  // record -> batch root, and the header signed by the gateway's key
  const root = rootFromInclusionProof(leafHash(record), proof.batch.index, proof.batch.header.count, proof.batch.proof.map(fromBase64));
  expect(toBase64(root)).toBe(proof.batch.header.root);
  const gatewayKey = parseVerifierKey(keys.gateways.find((k) => k.gateway === 'gw-a')!.verifierKey);
  expect(verifyEd25519(fromBase64(proof.batch.signature), canonicalBytes(proof.batch.header), gatewayKey.publicKey)).toBe(true);
  // batch header -> log root, in a checkpoint signed by the log key
  const opened = openCheckpoint(proof.checkpoint, [ed25519NoteVerifier(keys.log.verifierKey)]);
  const entry = canonicalBytes({ header: proof.batch.header, signature: proof.batch.signature });
  expect(() =>
    verifyInclusion(leafHash(entry), proof.log.index, proof.log.size, proof.log.proof.map(fromBase64), opened.checkpoint.rootHash),
  ).not.toThrow();
  // one changed value breaks the first step
  const tampered = record.slice();
  tampered[tampered.length - 6] = tampered[tampered.length - 6]! ^ 1;
  const bad = rootFromInclusionProof(leafHash(tampered), proof.batch.index, proof.batch.header.count, proof.batch.proof.map(fromBase64));
  expect(toBase64(bad)).not.toBe(proof.batch.header.root);
  expect((await t.fetch(`/api/log/measurement/gw-a/999999`)).status).toBe(404);
  expect((await t.fetch(`/api/log/measurement/gw-a/x1`)).status).toBe(400);
});
