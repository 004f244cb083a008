// A key's validity is judged by what the server knows (arrival, batch number, the log), never by the times the key's
// holder writes into its batches: a revoked key gets nothing in by backdating, a rotated key only within its grace and
// below its successor's first batch; the offline verifier applies the same rule to an exported bundle from the log.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  canonicalBytes,
  formatVerifierKey,
  headerHash,
  parseKeyEvent,
  parseVerifierKey,
  publicKeyFromSeed,
  rotationBytes,
  signEd25519,
  toBase64,
  toHex,
  verifyBundle,
  type DataMessage,
  type RotationStatement,
  type Sample,
  type VerifyReport,
} from '@labtrace/protocols';
import { exportBundle } from '../../src/export/bundle.js';
import { LabDatabase } from '../../src/store/database.js';
import { readBundle } from '../../src/export/read-bundle.js';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { seedOf, send, signerOf, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

let t: TestServer;
const gateways: TestGateway[] = [];
const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-keys-'));
const HOUR = 3_600_000;

beforeAll(async () => {
  t = await startServer({ log: { minCheckpointIntervalMs: 100 } });
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.end()));
  await t.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function gateway(id: string, instrument: string): Promise<TestGateway> {
  const gw = await TestGateway.connect(t, id);
  gateways.push(gw);
  await gw.birth(instrument);
  return gw;
}

/** `n` records from sequence number `first`, stamped `ts` (the gateway's clock says so) */
const stamped = (instrument: string, first: number, n: number, ts: number): Sample[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument,
    channel: 'c',
    ts: ts + i,
    value: first + i,
    unit: '',
    quality: 'good' as const,
  }));

const storedBatch = (gateway: string, batch: number): unknown => t.server.ingest.chain.stored(gateway, batch);

/** What a server that accepted the batch would have done: store it and append its header to the log. */
function storeBypassingChecks(gateway: string, message: DataMessage): void {
  const log = t.server.log!;
  const signed = message.signed!;
  t.server.database.sqlite.transaction(() => {
    t.server.store.store(gateway, message.samples, signed, toBase64(headerHash(signed.header)), Date.now());
    t.server.store.setLogIndex(gateway, signed.header.batch, log.append('batch-header', [canonicalBytes(signed)], Date.now()));
  })();
}

/** The gateway's bundle over the last day and the next hour, as the auditor gets it, verified offline. */
async function exported(gateway: string, name: string): Promise<VerifyReport> {
  await t.server.logKeyEvents();
  const size = t.server.log!.size;
  await waitFor('a checkpoint covering the log', () => Number(t.server.log!.latestCheckpoint().note.split('\n')[1]) >= size);
  const dir = path.join(tmp, name);
  await exportBundle(t.server.database, t.server.log!, { outDir: dir, gateway, from: Date.now() - 24 * HOUR, to: Date.now() + HOUR });
  return verifyBundle(readBundle(dir), {});
}

describe('a revoked key', () => {
  let gw: TestGateway;
  let keyId: string;
  let backdated: DataMessage;

  test('after `labtrace server revoke-key`, a batch under it is refused whatever its times, and recorded; a stored one is acknowledged again', async () => {
    gw = await gateway('gw-p', 'rev-1');
    keyId = toHex(signerOf('gw-p').keyId);
    expect(await send(t, gw, gw.sign(stamped('rev-1', 0, 2, Date.now())))).toBe('acked');
    const second = gw.sign(stamped('rev-1', 2, 2, Date.now()));
    expect(await send(t, gw, second)).toBe('acked');
    // the bundle verifies before anything is revoked
    expect((await exported('gw-p', 'before')).problems).toEqual([]);

    // the admin revokes the key with the command line (its own process and database connection)
    const config = path.join(tmp, 'server.yaml');
    writeFileSync(config, `lab: lab-t\ndataDir: ${JSON.stringify(t.config.dataDir)}\n`);
    const revoking = runLabtrace(['server', 'revoke-key', '--gateway', 'gw-p', '--key-id', keyId, '--reason', 'gateway stolen', '--config', config]);
    const output = collect(revoking);
    expect(await exitOf(revoking)).toBe(0);
    expect(output()).toMatch(new RegExp(`revoked gw-p ${keyId} from .*: no new batch under it is accepted; valid for batches up to 1`));

    // the same key signing records stamped an hour earlier than the revocation
    backdated = gw.sign(stamped('rev-1', 4, 2, Date.now() - HOUR), 2);
    expect(await send(t, gw, backdated)).toMatch(
      new RegExp(`batch 2 of gw-p: key ${keyId} is revoked from .*: no batch under it is accepted unless already stored, whatever times it carries`),
    );
    expect(t.server.events.list({ gateway: 'gw-p', kind: 'revoked-key' })).toEqual([
      expect.objectContaining({ severity: 'alarm', batch: 2, detail: expect.stringMatching(/is revoked/) as unknown }),
    ]);
    expect(storedBatch('gw-p', 2)).toBeUndefined();
    // stamped now, or a day back: refused the same
    expect(await send(t, gw, gw.sign(stamped('rev-1', 4, 2, Date.now()), 2))).toMatch(/is revoked/);
    expect(await send(t, gw, gw.sign(stamped('rev-1', 4, 2, Date.now() - 24 * HOUR), 2))).toMatch(/is revoked/);
    expect(t.server.events.list({ gateway: 'gw-p', kind: 'revoked-key' })).toHaveLength(3);
    // a batch stored before the revocation, sent again (its ACK was lost): acknowledged again, not stored twice
    expect(await send(t, gw, second)).toBe('acked');
    // the revocation is a structured key event naming the last valid batch
    expect(t.server.keys.get('gw-p', keyId)).toMatchObject({ status: 'revoked', lastValidBatch: 1 });
  }, 60_000);

  test('the verifier refuses the same backdated batch in an exported bundle, from what the log proves', async () => {
    const clean = await exported('gw-p', 'revoked');
    expect(clean.problems).toEqual([]);
    expect(clean.trust.gatewayKeys).toEqual([
      expect.objectContaining({
        keyId,
        status: 'revoked',
        lastValidBatch: 1,
        logged: expect.objectContaining({ status: 'revoked', lastValidBatch: 1 }),
      }),
    ]);
    const revocation = clean.keyEvents.find((e) => e.kind === 'revoked');
    expect(revocation).toBeDefined();
    // a server that judged the key by the batch's times would have stored it: its header enters the log after the revocation
    storeBypassingChecks('gw-p', backdated);
    const report = await exported('gw-p', 'forged');
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({
        kind: 'key-not-valid',
        where: expect.stringMatching(/\(batch 2 of gw-p, seq 4\.\.5\)/) as unknown,
        message: expect.stringMatching(
          new RegExp(`entered the log at index \\d+, after the key event at index ${revocation!.index} that ended key ${keyId}`),
        ) as unknown,
      }),
    ]);
  });
});

describe('a rotated key', () => {
  const newSeed = new Uint8Array(32).fill(21);

  function rotation(gateway: string, at: number): { statement: RotationStatement; oldSignature: string; newSignature: string } {
    const statement: RotationStatement = {
      v: 1,
      purpose: 'labtrace-key-rotation',
      gateway,
      oldKeyId: toHex(signerOf(gateway).keyId),
      newKey: formatVerifierKey(gateway, publicKeyFromSeed(newSeed)),
      at,
    };
    const bytes = rotationBytes(statement);
    return { statement, oldSignature: toBase64(signEd25519(bytes, seedOf(gateway))), newSignature: toBase64(signEd25519(bytes, newSeed)) };
  }

  test('within the grace (arrival time) and below the first batch of its successor only; the verifier follows the rotation and a later revocation', async () => {
    const gw = await gateway('gw-a', 'rot-1');
    const oldKey = gw.key;
    const oldKeyId = toHex(oldKey.keyId);
    expect(await send(t, gw, gw.sign(stamped('rot-1', 0, 2, Date.now())))).toBe('acked');
    const res = await t.fetch('/api/gateways/gw-a/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rotation('gw-a', Date.now())),
    });
    expect(res.status).toBe(201);
    const newKeyId = ((await res.json()) as { keyId: string }).keyId;
    // a batch the old key signed while the gateway switched, dated an hour back: within the grace, accepted
    expect(await send(t, gw, gw.sign(stamped('rot-1', 2, 2, Date.now() - HOUR)))).toBe('acked');
    gw.key = signerOf('gw-a', newSeed);
    expect(await send(t, gw, gw.sign(stamped('rot-1', 4, 2, Date.now())))).toBe('acked');
    // the old key after its successor's first batch: refused, whatever its times
    gw.key = oldKey;
    const late = gw.sign(stamped('rot-1', 6, 2, Date.now() - HOUR), 3);
    expect(await send(t, gw, late)).toMatch(
      new RegExp(`key ${oldKeyId} is retired .*: batch 3 is not below batch 2, the first its successor delivered`),
    );
    expect(t.server.events.list({ gateway: 'gw-a', kind: 'retired-key' })).toHaveLength(1);
    gw.key = signerOf('gw-a', newSeed);

    // the structured key events in the log: registered (server config) and rotated; the end of the grace is not due yet
    const logged = t.server.log!.entries(0, t.server.log!.size).filter((e) => e.kind === 'key-event');
    const records = logged.map((e) => parseKeyEvent(JSON.parse(new TextDecoder().decode(e.data))));
    expect(records.filter((r) => r.gateway === 'gw-a').map((r) => r.event)).toEqual(['registered', 'rotated']);
    expect(records.find((r) => r.event === 'rotated')).toMatchObject({ keyId: oldKeyId, newKeyId, graceUntil: expect.any(Number) as unknown });

    // the new key revoked later: the bundle holds a rotation and a revocation, and every batch verifies
    await t.server.keys.revoke('gw-a', newKeyId, Date.now(), 'test: rotation then revocation');
    const report = await exported('gw-a', 'rotated');
    expect(report.problems).toEqual([]);
    expect(report.keyEvents.map((e) => e.kind)).toEqual(['registered', 'rotated', 'revoked']);
    expect(report.trust.gatewayKeys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ keyId: oldKeyId, status: 'retired', logged: expect.objectContaining({ status: 'retired', closedAt: null }) }),
        expect.objectContaining({ keyId: newKeyId, status: 'revoked', logged: expect.objectContaining({ status: 'revoked', lastValidBatch: 2 }) }),
      ]),
    );
    // the refused old-key batch, stored by a server that let it in: the verifier sees it follows its successor's batch 2
    storeBypassingChecks('gw-a', late);
    const forged = await exported('gw-a', 'rotated-forged');
    expect(forged.problems.map((p) => [p.kind, p.message])).toEqual(
      expect.arrayContaining([
        [
          'key-not-valid',
          expect.stringMatching(
            new RegExp(`key ${oldKeyId} is retired, replaced by ${newKeyId}: batch 3 entered the log at index \\d+, after batch 2 of its successor`),
          ),
        ],
      ]),
    );
  });

  test('after the grace: the old key is refused, and the end of the grace is a log entry that no batch under it may follow', async () => {
    const gw = await gateway('gw-b', 'rot-2');
    const oldKey = gw.key;
    const oldKeyId = toHex(oldKey.keyId);
    expect(await send(t, gw, gw.sign(stamped('rot-2', 0, 2, Date.now())))).toBe('acked');
    // rotated six minutes ago (server time): the grace is over
    const { statement, oldSignature, newSignature } = rotation('gw-b', Date.now() - 6 * 60_000);
    await t.server.keys.rotate(statement, oldSignature, newSignature, Date.now() - 6 * 60_000);
    const old = gw.sign(stamped('rot-2', 2, 2, Date.now() - 10 * 60_000));
    expect(await send(t, gw, old)).toMatch(new RegExp(`key ${oldKeyId} is retired from .*: its grace period is over`));
    const report = await exported('gw-b', 'grace');
    expect(report.problems).toEqual([]);
    const over = report.keyEvents.find((e) => e.kind === 'retired');
    expect(over).toBeDefined();
    storeBypassingChecks('gw-b', old);
    const forged = await exported('gw-b', 'grace-forged');
    expect(forged.problems).toEqual([
      expect.objectContaining({
        kind: 'key-not-valid',
        message: expect.stringMatching(new RegExp(`after the key event at index ${over!.index} that ended key ${oldKeyId}`)) as unknown,
      }),
    ]);
  });
});

describe('revocation from a time in the past, and logs of earlier versions', () => {
  test('revoked --from the time of a theft: the batches that arrived since stay stored and fail verification', async () => {
    const gw = await gateway('gw-s', 'from-1');
    const keyId = toHex(gw.key.keyId);
    expect(await send(t, gw, gw.sign(stamped('from-1', 0, 2, Date.now())))).toBe('acked');
    await new Promise((r) => setTimeout(r, 20));
    const theft = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    // the thief's batch, dated before the theft: it arrived after it
    expect(await send(t, gw, gw.sign(stamped('from-1', 2, 2, theft - HOUR)))).toBe('acked');
    expect((await t.server.keys.revoke('gw-s', keyId, theft, 'stolen')).lastValidBatch).toBe(0);
    expect(t.server.events.list({ gateway: 'gw-s', kind: 'key-revoked' })[0]?.detail).toMatch(
      /valid for batches up to 0; 1 stored batches under it arrived since and are no longer valid/,
    );
    const report = await exported('gw-s', 'from');
    expect(report.problems.map((p) => [p.kind, p.message])).toEqual([
      ['key-not-valid', `key ${keyId} is revoked, valid for batches up to 0, this is batch 1`],
    ]);
  });

  test('key events written as text by an earlier version: listed, not read; the keys are carried over as structured events', async () => {
    const database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-keymig-')), serverMigrations);
    await database.migrate('0019_samples_rowid');
    const key = (gateway: string, seed: number): { text: string; id: string } => {
      const text = formatVerifierKey(gateway, publicKeyFromSeed(new Uint8Array(32).fill(seed)));
      return { text, id: toHex(parseVerifierKey(text).keyId) };
    };
    const [a, b, c] = [key('gw-1', 1), key('gw-1', 2), key('gw-2', 3)];
    const insertKey = database.sqlite.prepare(
      'INSERT INTO gateway_keys (gateway, key_id, verifier_key, status, registered_at, valid_until, reason, replaced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    insertKey.run('gw-1', b.id, b.text, 'retired', 500, 1000, 'rotated', a.id);
    insertKey.run('gw-1', a.id, a.text, 'active', 1000, null, null, null);
    insertKey.run('gw-2', c.id, c.text, 'revoked', 600, 900, 'lost', null);
    const insertBatch = database.sqlite.prepare(
      "INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at) VALUES ('gw-2', ?, ?, 1, ?, 'sig', 700)",
    );
    for (const batch of [0, 1]) insertBatch.run(batch, batch, JSON.stringify({ v: 1, gateway: 'gw-2', keyId: c.id, batch }));
    await database.migrate();
    const records = (database.sqlite.prepare('SELECT record FROM key_events ORDER BY id').pluck().all() as string[]).map((r) =>
      parseKeyEvent(JSON.parse(r)),
    );
    await database.close();
    expect(records.map((r) => [r.event, r.gateway, r.keyId])).toEqual([
      ['registered', 'gw-1', b.id],
      ['registered', 'gw-2', c.id],
      ['registered', 'gw-1', a.id],
      ['retired', 'gw-1', b.id],
      ['revoked', 'gw-2', c.id],
    ]);
    expect(records[3]).toMatchObject({ reason: 'migration', replacedBy: a.id });
    // a revoked key keeps the batches stored under it
    expect(records[4]).toMatchObject({ reason: 'lost', from: 900, lastValidBatch: 1 });

    // in a real log: a text key event as earlier servers wrote it is listed and not read, and the bundle verifies
    const legacy = {
      id: 1,
      at: Date.now(),
      gateway: 'gw-s',
      kind: 'key-revoked',
      severity: 'alarm',
      batch: null,
      detail: 'key 00000000 revoked from 2020-01-01T00:00:00.000Z: old',
    };
    t.server.database.sqlite.transaction(() => t.server.log!.append('key-event', [canonicalBytes(legacy)], Date.now()))();
    const report = await exported('gw-s', 'legacy');
    expect(report.keyEvents.map((e) => e.kind)).toEqual(['registered', 'revoked', 'legacy text event']);
    expect(report.problems.map((p) => p.kind)).toEqual(['key-not-valid']);
  });
});
