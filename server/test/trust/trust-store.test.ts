// The trust modules through Kysely, the same code on SQLite and on a real PostgreSQL 15: gateway keys registered
// (config, enrollment), rotated, revoked, with their key events and security events; the synchronous view the ingest
// reads (get, refusal) and what refreshes it; security events written in a caller's transaction and told only after it
// commits; refusals aggregated and flushed; enrollment tokens, enrollment and the broker user. On PostgreSQL, two nodes
// (two pools) at once: two rotations of one key (one wins, the other is refused, the key chain does not fork), one
// token enrolled twice, tokens numbered, key events logged once, and how soon a node sees another node's key change.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import {
  enrollmentProofBytes,
  formatSignerKey,
  formatVerifierKey,
  parseKeyEvent,
  parseSignerKey,
  publicKeyFromSeed,
  rotationBytes,
  signEd25519,
  toBase64,
  toHex,
  ed25519KeyId,
  type RotationStatement,
} from '@labtrace/protocols';
import { LogStore } from '../../src/log/log-store.js';
import type { Tables } from '../../src/store/database.js';
import { Enrollment } from '../../src/trust/enrollment.js';
import { KeyRegistry } from '../../src/trust/key-registry.js';
import { SecurityEvents, type SecurityEvent } from '../../src/trust/security-events.js';
import { StoreFixture, type Engine } from '../helpers/test-store.js';

const fixture = new StoreFixture('trust');
const silent = pino({ level: 'silent' });

beforeAll(() => fixture.start(), 120_000);
afterAll(() => fixture.close());

/** `nodes` Kyselys on one fresh, migrated store (SQLite: one file; PostgreSQL: one database, a pool each) */
async function stores(engine: Engine, nodes = 1): Promise<Kysely<Tables>[]> {
  return fixture.stores(engine, nodes);
}

/** One node's trust modules on a store; `heard`: the security events told to listeners, in order. */
function node(db: Kysely<Tables>, clock: () => number = Date.now) {
  const events = new SecurityEvents(db, silent, { windowMs: 60_000, maxKeysPerWindow: 3 }, clock);
  const heard: SecurityEvent[] = [];
  events.on('event', (e) => heard.push(e));
  const keys = new KeyRegistry(db, events);
  const enrollment = new Enrollment(db, keys, events);
  return { events, keys, enrollment, heard };
}

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const keyText = (gateway: string, n: number): string => formatVerifierKey(gateway, publicKeyFromSeed(seed(n)));
const keyIdOf = (gateway: string, n: number): string => toHex(ed25519KeyId(gateway, publicKeyFromSeed(seed(n))));

/** a rotation of `gateway`'s key `from` (seed) to `to` (seed), signed by both */
function rotation(
  gateway: string,
  from: number,
  to: number,
  at: number,
): { statement: RotationStatement; oldSignature: string; newSignature: string } {
  const statement: RotationStatement = {
    v: 1,
    purpose: 'labtrace-key-rotation',
    gateway,
    oldKeyId: keyIdOf(gateway, from),
    newKey: keyText(gateway, to),
    at,
  };
  const message = rotationBytes(statement);
  return { statement, oldSignature: toBase64(signEd25519(message, seed(from))), newSignature: toBase64(signEd25519(message, seed(to))) };
}

/** a stored batch header as the ingest writes it (only what the key registry reads of it) */
async function storedBatch(db: Kysely<Tables>, gateway: string, batch: number, keyId: string, receivedAt: number): Promise<void> {
  await sql`INSERT INTO batch_headers (gateway, batch, first_seq, count, header, signature, received_at)
    VALUES (${gateway}, ${batch}, ${batch * 10}, 10, ${JSON.stringify({ v: 1, gateway, keyId, batch })}, 'sig', ${receivedAt})`.execute(db);
}

async function keyEvents(db: Kysely<Tables>, gateway?: string): Promise<{ event: string; keyId: string; at: number; logged: boolean }[]> {
  const rows = await db
    .selectFrom('key_events')
    .select(['record', 'log_index'])
    .$if(gateway !== undefined, (q) => q.where('gateway', '=', gateway ?? ''))
    .orderBy('id')
    .execute();
  return rows.map((r) => {
    const e = parseKeyEvent(JSON.parse(r.record));
    return { event: e.event, keyId: e.keyId, at: e.at, logged: r.log_index !== null };
  });
}

const enrollBody = (gateway: string, token: string, n: number): Record<string, string> => {
  const key = keyText(gateway, n);
  return { token, gateway, key, proof: toBase64(signEd25519(enrollmentProofBytes({ gateway, key, token }), seed(n))) };
};

const codeOf = (r: PromiseSettledResult<unknown>): string | undefined => (r.status === 'rejected' ? (r.reason as { code?: string }).code : undefined);

describe.each(['sqlite', 'postgres'] as const)('on %s', (engine) => {
  test('keys: configured once, re-enrolled, rotated and revoked; each change with its key events, the view current', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const T = Date.now() - 3_600_000;
    const { keys, heard } = node(db);
    await keys.open([{ id: 'gw-1', key: keyText('gw-1', 1) }], T);
    await keys.open([{ id: 'gw-1', key: keyText('gw-1', 1) }], T + 5);
    expect(keys.get('gw-1', keyIdOf('gw-1', 1))).toMatchObject({ status: 'active', registeredAt: T, validUntil: null });
    expect(await keyEvents(db)).toEqual([{ event: 'registered', keyId: keyIdOf('gw-1', 1), at: T, logged: false }]);

    // enrolled again with another key: the first is retired at once
    expect(await keys.register('gw-1', keyText('gw-1', 2), T + 10)).toMatchObject({ keyId: keyIdOf('gw-1', 2), status: 'active' });
    expect(keys.get('gw-1', keyIdOf('gw-1', 1))).toMatchObject({ status: 'retired', validUntil: T + 10, replacedBy: keyIdOf('gw-1', 2) });
    await expect(keys.register('gw-1', keyText('gw-2', 3), T + 11)).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });

    // rotated: the old key keeps a grace, below its successor's first batch
    await storedBatch(db, 'gw-1', 0, keyIdOf('gw-1', 2), T + 20);
    await storedBatch(db, 'gw-1', 1, keyIdOf('gw-1', 2), T + 21);
    const now = Date.now();
    const r = rotation('gw-1', 2, 3, now);
    const rotated = await keys.rotate(r.statement, r.oldSignature, r.newSignature, now);
    expect(rotated).toMatchObject({ keyId: keyIdOf('gw-1', 3), status: 'active' });
    const old = keys.get('gw-1', keyIdOf('gw-1', 2));
    expect(old).toMatchObject({ status: 'retired', reason: 'rotated', graceFromBatch: 1, replacedBy: keyIdOf('gw-1', 3) });
    expect(heard.map((e) => [e.kind, e.gateway])).toEqual([['key-rotated', 'gw-1']]);
    // a rotation by a key no longer active, or to a key registered already
    await expect(keys.rotate(r.statement, r.oldSignature, r.newSignature, now)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    const bad = rotation('gw-1', 3, 4, now);
    await expect(keys.rotate(bad.statement, bad.newSignature, bad.newSignature, now)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });

    // within the grace: the old key's batch below the successor's first is taken, at or above it refused
    if (old === undefined) throw new Error('the old key is not in the view');
    expect(keys.refusal(old, 5, now + 1)).toBeUndefined();
    await storedBatch(db, 'gw-1', 3, keyIdOf('gw-1', 3), now + 2);
    const inTrx = (batch: number) => db.transaction().execute((trx) => keys.refusalIn(trx, old, batch, now + 3));
    expect(await inTrx(2)).toBeUndefined();
    expect(await inTrx(3)).toMatchObject({
      kind: 'retired-key',
      detail: expect.stringMatching(/batch 3 is not below batch 3, the first its successor delivered/),
    });
    await keys.refresh();
    const viewed = keys.get('gw-1', keyIdOf('gw-1', 2));
    if (viewed === undefined) throw new Error('the old key is not in the view');
    expect(keys.refusal(viewed, 4, now + 3)).toMatchObject({ kind: 'retired-key' });
    expect(keys.refusal(viewed, 2, now + 3)).toBeUndefined();
    expect(keys.refusal(viewed, 2, now + 6 * 60_000)).toMatchObject({ kind: 'retired-key', detail: expect.stringMatching(/grace period is over/) });

    // revoked from a time in the past: the batches that arrived since are counted out
    await storedBatch(db, 'gw-1', 4, keyIdOf('gw-1', 3), now + 100);
    const revoked = await keys.revoke('gw-1', keyIdOf('gw-1', 3), now + 50, 'stolen', now + 200);
    expect(revoked).toMatchObject({ status: 'revoked', validUntil: now + 50, lastValidBatch: 3, reason: 'stolen' });
    expect(keys.refusal(revoked, 9, now + 300)).toMatchObject({ kind: 'revoked-key' });
    expect(heard.at(-1)).toMatchObject({
      kind: 'key-revoked',
      severity: 'alarm',
      detail: expect.stringMatching(/valid for batches up to 3; 1 stored batches under it arrived since and are no longer valid/),
    });
    await expect(keys.revoke('gw-1', keyIdOf('gw-1', 3), now, 'again', now + 300, { once: true })).rejects.toMatchObject({
      code: 'E_CONFLICT',
      refusal: { reason: 'key.already-revoked' },
    });
    await expect(keys.revoke('gw-1', 'ffffffff', now, 'none', now)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(keys.register('gw-1', keyText('gw-1', 3), now + 400)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    expect((await keyEvents(db, 'gw-1')).map((e) => [e.event, e.keyId])).toEqual([
      ['registered', keyIdOf('gw-1', 1)],
      ['retired', keyIdOf('gw-1', 1)],
      ['registered', keyIdOf('gw-1', 2)],
      ['rotated', keyIdOf('gw-1', 2)],
      ['retired', keyIdOf('gw-1', 2)],
      ['revoked', keyIdOf('gw-1', 3)],
    ]);
    expect(keys.list('gw-1').map((k) => k.status)).toEqual(['retired', 'retired', 'revoked']);
    expect(keys.activeKey('gw-1')).toBeUndefined();
  }, 120_000);

  test('key events enter the log store once their time has come, once each', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const { keys } = node(db);
    const log = new LogStore(db, {
      origin: 'labtrace/trust-test',
      signer: parseSignerKey(formatSignerKey('labtrace/trust-test', new Uint8Array(randomBytes(32)))),
    });
    await log.open();
    await keys.open([{ id: 'gw-1', key: keyText('gw-1', 1) }], 1000);
    const now = Date.now();
    const r = rotation('gw-1', 1, 2, now);
    await keys.rotate(r.statement, r.oldSignature, r.newSignature, now);
    expect(await keys.logPendingTo(log, now)).toBe(2); // registered, rotated; the end of the grace is not due
    expect(await keys.logPendingTo(log, now)).toBe(0);
    expect((await keyEvents(db)).map((e) => [e.event, e.logged])).toEqual([
      ['registered', true],
      ['rotated', true],
      ['retired', false],
    ]);
    expect(await keys.logPendingTo(log, now + 6 * 60_000)).toBe(1);
    const entries = await log.entries(0, await log.size());
    expect(entries.map((e) => [e.kind, parseKeyEvent(JSON.parse(new TextDecoder().decode(e.data))).event])).toEqual([
      ['key-event', 'registered'],
      ['key-event', 'rotated'],
      ['key-event', 'retired'],
    ]);
  }, 120_000);

  test('security events: one written in a transaction is told after it commits, never when it rolls back', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const { events, heard } = node(db);
    const committed = await db.transaction().execute(async (trx) => {
      const e = await events.recordIn(trx, 'gw-1', 'forged', 'alarm', 'a batch signed by another key', 7, 5000);
      expect(heard).toEqual([]);
      return e;
    });
    expect(heard).toEqual([]);
    events.announce(committed);
    expect(heard).toEqual([committed]);
    await expect(
      db.transaction().execute(async (trx) => {
        await events.recordIn(trx, 'gw-1', 'altered', 'alarm', 'rolled back', 8, 6000);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const page = await events.page({ limit: 10 });
    expect(page.items).toEqual([
      {
        id: committed.id,
        at: 5000,
        gateway: 'gw-1',
        kind: 'forged',
        severity: 'alarm',
        batch: 7,
        detail: 'a batch signed by another key',
        count: 1,
        lastAt: 5000,
        address: null,
        client: null,
      },
    ]);
    expect((await events.page({ limit: 10, gateway: 'gw-2' })).items).toEqual([]);
  }, 120_000);

  test('refusals: one row per source and window with its count, a capped number of rows, counts written by stop()', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    let now = 1_000_000;
    const { events, heard } = node(db, () => now);
    const refuse = (address: string): void =>
      events.refuse({ kind: 'login-refused', severity: 'notice', detail: 'MQTT login refused: wrong password', address });
    for (let i = 0; i < 1000; i++) refuse(`10.0.0.${i % 50}`);
    // a read writes the counts first
    const first = await events.page({ limit: 10 });
    expect(first.items.map((e) => [e.address, e.count])).toEqual([
      [null, 940],
      ['10.0.0.2', 20],
      ['10.0.0.1', 20],
      ['10.0.0.0', 20],
    ]);
    now += 60_000;
    for (let i = 0; i < 10; i++) refuse('10.0.0.1');
    await events.stop();
    const rows = await db.selectFrom('security_events').select(['at', 'count', 'last_at', 'address']).orderBy('id').execute();
    expect(rows).toEqual([
      { at: 1_000_000, count: 20, last_at: 1_000_000, address: '10.0.0.0' },
      { at: 1_000_000, count: 20, last_at: 1_000_000, address: '10.0.0.1' },
      { at: 1_000_000, count: 20, last_at: 1_000_000, address: '10.0.0.2' },
      { at: 1_000_000, count: 940, last_at: 1_000_000, address: null },
      { at: 1_060_000, count: 10, last_at: 1_060_000, address: '10.0.0.1' },
    ]);
    // each row told once, when written
    expect(heard).toHaveLength(5);
  }, 120_000);

  test('enrollment: tokens made, listed, revoked and registered; a gateway enrolls once and logs in as its broker user', async () => {
    const [db] = (await stores(engine)) as [Kysely<Tables>];
    const { enrollment, keys, events, heard } = node(db);
    const a = await enrollment.createToken('gw-a', 3_600_000, 10_000);
    const b = await enrollment.createToken('gw-b', 3_600_000, 11_000);
    expect([a.id, b.id]).toEqual([1, 2]);
    expect(await enrollment.pending(12_000)).toEqual([
      { id: 2, gateway: 'gw-b', createdAt: 11_000, expiresAt: 11_000 + 3_600_000 },
      { id: 1, gateway: 'gw-a', createdAt: 10_000, expiresAt: 10_000 + 3_600_000 },
    ]);
    expect(await enrollment.revokeToken(2, 13_000)).toEqual({ id: 2, gateway: 'gw-b', createdAt: 11_000, expiresAt: 13_000 });
    await expect(enrollment.revokeToken(2, 14_000)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await enrollment.pending(14_000)).map((t) => t.id)).toEqual([1]);
    await expect(enrollment.createToken('gw a')).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    await expect(enrollment.createToken('gw-a', 1000)).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    // a token from a file: registered once, numbered after the others
    const fromFile = `lt-enroll-${'B'.repeat(43)}`;
    expect(await enrollment.registerToken(fromFile, 'gw-c', 3_600_000, 20_000)).toEqual({ registered: true, expiresAt: 3_620_000, used: false });
    expect(await enrollment.registerToken(fromFile, 'gw-c', 3_600_000, 30_000)).toEqual({ registered: false, expiresAt: 3_620_000, used: false });
    await expect(enrollment.registerToken(fromFile, 'gw-d')).rejects.toMatchObject({ code: 'E_CONFIG' });
    expect((await enrollment.pending(30_000)).map((t) => t.id)).toEqual([3, 1]);

    // enrolled: the key registered, credentials issued, the token used up
    const now = Date.now();
    const token = (await enrollment.createToken('gw-e', 3_600_000, now)).token;
    expect(await enrollment.user('gw-e')).toBeUndefined();
    const enrolled = await enrollment.enroll(enrollBody('gw-e', token, 5), '127.0.0.1', now);
    expect(enrolled).toMatchObject({ gateway: 'gw-e', keyId: keyIdOf('gw-e', 5), mqtt: { username: 'gw-e' } });
    expect(keys.get('gw-e', keyIdOf('gw-e', 5))).toMatchObject({ status: 'active' });
    expect(await enrollment.user('gw-e')).toMatchObject({ username: 'gw-e', role: 'gateway', gateway: 'gw-e', passwordHash: expect.any(String) });
    await expect(enrollment.enroll(enrollBody('gw-e', token, 6), '127.0.0.1', now)).rejects.toMatchObject({ code: 'E_AUTH' });
    await expect(enrollment.enroll(enrollBody('gw-e', `lt-enroll-${'C'.repeat(43)}`, 6), '127.0.0.1', now)).rejects.toMatchObject({ code: 'E_AUTH' });
    await events.stop();
    expect(heard.map((e) => [e.kind, e.gateway])).toEqual([
      ['enrolled', 'gw-e'],
      ['enrollment-refused', 'gw-e'],
      ['enrollment-attempt', ''],
    ]);
  }, 120_000);
});

describe('two nodes on one PostgreSQL', () => {
  test('two rotations of one key at once: one wins, the other is refused with a code; one active key, one chain', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = node(a);
    const onB = node(b);
    const gateways = ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5', 'gw-6'];
    await onA.keys.open(
      gateways.map((id) => ({ id, key: keyText(id, 1) })),
      1000,
    );
    await onB.keys.refresh();
    const now = Date.now();
    const results = await Promise.all(
      gateways.map((id) => {
        const toB = rotation(id, 1, 2, now);
        const toC = rotation(id, 1, 3, now);
        return Promise.allSettled([
          onA.keys.rotate(toB.statement, toB.oldSignature, toB.newSignature, now),
          onB.keys.rotate(toC.statement, toC.oldSignature, toC.newSignature, now),
        ]);
      }),
    );
    for (const [i, pair] of results.entries()) {
      const id = gateways[i] ?? '';
      expect(pair.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      // refused under the lock (E_CONFLICT), or before it when the winner had committed already (E_FORBIDDEN)
      expect(['E_CONFLICT', 'E_FORBIDDEN']).toContain(pair.map(codeOf).find((c) => c !== undefined));
      const rows = await a.selectFrom('gateway_keys').selectAll().where('gateway', '=', id).orderBy('registered_at').execute();
      const active = rows.filter((r) => r.status === 'active');
      expect(active).toHaveLength(1);
      const winner = active[0]?.key_id;
      expect(rows.find((r) => r.key_id === keyIdOf(id, 1))).toMatchObject({ status: 'retired', replaced_by: winner });
      expect(rows).toHaveLength(2);
      expect((await keyEvents(a, id)).map((e) => e.event)).toEqual(['registered', 'rotated', 'retired']);
    }
    const rotatedEvents = await a.selectFrom('security_events').select('gateway').where('kind', '=', 'key-rotated').execute();
    expect(rotatedEvents).toHaveLength(gateways.length);
  }, 120_000);

  test('one token enrolled on both nodes at once: one enrollment, the other refused', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = node(a);
    const onB = node(b);
    const now = Date.now();
    const tokens = await Promise.all(['gw-1', 'gw-2', 'gw-3'].map((id, i) => (i % 2 ? onA : onB).enrollment.createToken(id, 3_600_000, now)));
    const results = await Promise.all(
      tokens.map((t, i) => {
        const id = `gw-${i + 1}`;
        return Promise.allSettled([
          onA.enrollment.enroll(enrollBody(id, t.token, 4), '10.0.0.1', now),
          onB.enrollment.enroll(enrollBody(id, t.token, 5), '10.0.0.2', now),
        ]);
      }),
    );
    for (const [i, pair] of results.entries()) {
      const id = `gw-${i + 1}`;
      expect(pair.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(pair.map(codeOf).filter((c) => c !== undefined)).toEqual(['E_AUTH']);
      const active = await a.selectFrom('gateway_keys').select('key_id').where('gateway', '=', id).where('status', '=', 'active').execute();
      expect(active).toHaveLength(1);
      expect(await b.selectFrom('gateway_credentials').select('gateway').where('gateway', '=', id).execute()).toHaveLength(1);
      // the broker user is read from the store: either node logs the gateway in
      expect(await onA.enrollment.user(id)).toMatchObject({ gateway: id });
      expect(await onB.enrollment.user(id)).toMatchObject({ gateway: id });
    }
  }, 120_000);

  test('tokens made on both nodes at once are numbered once each', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = node(a);
    const onB = node(b);
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? onA : onB).enrollment.createToken(`gw-${i}`)));
    expect(made.map((t) => t.id).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  }, 120_000);

  test('key events logged from both nodes at once enter the one log once each', async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const signer = parseSignerKey(formatSignerKey('labtrace/trust-test', new Uint8Array(randomBytes(32))));
    const logA = new LogStore(a, { origin: 'labtrace/trust-test', signer });
    const logB = new LogStore(b, { origin: 'labtrace/trust-test', signer });
    await logA.open();
    const onA = node(a);
    const onB = node(b);
    await onA.keys.open(
      Array.from({ length: 12 }, (_, i) => ({ id: `gw-${i}`, key: keyText(`gw-${i}`, 1) })),
      1000,
    );
    const counts = await Promise.all([
      onA.keys.logPendingTo(logA),
      onB.keys.logPendingTo(logB),
      onA.keys.logPendingTo(logA),
      onB.keys.logPendingTo(logB),
    ]);
    expect(counts.reduce((n, c) => n + c, 0)).toBe(12);
    expect(await logB.size()).toBe(12);
    const logged = (await logB.entries(0, 12)).map((e) => parseKeyEvent(JSON.parse(new TextDecoder().decode(e.data))).gateway);
    expect(new Set(logged).size).toBe(12);
  }, 120_000);

  test("a node sees another node's key changes: an unknown key at once (lookup), a revocation at its next refresh or in a transaction", async () => {
    const [a, b] = (await stores('postgres', 2)) as [Kysely<Tables>, Kysely<Tables>];
    const onA = node(a);
    const onB = node(b);
    await onA.keys.open([], 1000);
    await onB.keys.open([], 1000);
    const keyId = keyIdOf('gw-1', 7);
    await onA.keys.register('gw-1', keyText('gw-1', 7), 2000);
    // B's view has not heard of it: a lookup reloads before the ingest would refuse it as unknown
    expect(onB.keys.get('gw-1', keyId)).toBeUndefined();
    expect(await onB.keys.lookup('gw-1', keyId)).toMatchObject({ status: 'active' });
    // revoked on A: B's view holds the old state until it reloads, its transaction sees the revocation at once
    await onA.keys.revoke('gw-1', keyId, 3000, 'lost', 3000);
    const stale = onB.keys.get('gw-1', keyId);
    if (stale === undefined) throw new Error('B lost the key');
    expect(stale.status).toBe('active');
    expect(await b.transaction().execute((trx) => onB.keys.refusalIn(trx, stale, 0, 4000))).toMatchObject({ kind: 'revoked-key' });
    await onB.keys.start();
    try {
      await onB.keys.refresh();
      expect(onB.keys.get('gw-1', keyId)).toMatchObject({ status: 'revoked', reason: 'lost' });
    } finally {
      await onB.keys.stop();
    }
  }, 120_000);
});
