// The ingest on a real PostgreSQL 15: gateways publish real sealed batches over MQTT to embedded brokers, one per
// node; each node's Ingest stores them in PostgreSQL (one transaction per batch: gateway lock, chain, batch and
// samples, security events, log leaf) and acknowledges only after COMMIT. A batch redelivered to another node is a
// duplicate there (acknowledged, stored once); what the SQLite path records for gaps, conflicts and forged batches,
// the PostgreSQL path records the same; two nodes (two pools) fed the same batches of three gateways at once store
// each batch once, and the log holds each header once, consistent (by proof) with its checkpoint from before.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import {
  canonicalBytes,
  ed25519NoteVerifier,
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  openCheckpoint,
  parseSignerKey,
  publicKeyFromSeed,
  sealBatch,
  signBatch,
  topicFor,
  verifyConsistency,
  type Sample,
  type SignedBatch,
} from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { Broker } from '../../src/broker/broker.js';
import { hashPassword } from '../../src/index.js';
import { Ingest } from '../../src/ingest/ingest.js';
import { LogStore } from '../../src/log/log-store.js';
import { TransparencyLog } from '../../src/log/transparency-log.js';
import { serverMigrations } from '../../src/migrations.js';
import { LabDatabase, migrateStore } from '../../src/store/database.js';
import { MeasurementStore } from '../../src/store/measurement-store.js';
import { PgMeasurementStore } from '../../src/store/pg-measurement-store.js';
import { Registry } from '../../src/store/registry.js';
import type { Tables } from '../../src/store/tables.js';
import { KeyRegistry } from '../../src/trust/key-registry.js';
import { SecurityEvents } from '../../src/trust/security-events.js';
import { StoreFixture } from '../helpers/test-store.js';
import { GATEWAY_PASSWORD, LAB, TEST_CLOCK_WINDOW_MS, records, seedOf, signerOf, waitFor } from '../helpers/server.js';

useNodeCrypto();

const GATEWAYS = ['gw-a', 'gw-b', 'gw-p'];
const ORIGIN = 'labtrace/pg-ingest-test';
const LOG_KEY = parseSignerKey(formatSignerKey(ORIGIN, new Uint8Array(32).fill(9)));
const silent = pino({ level: 'silent' });
const clock = { maxClockSkewMs: TEST_CLOCK_WINDOW_MS, maxAgeMs: TEST_CLOCK_WINDOW_MS };

const fixture = new StoreFixture('pgi');
const closers: (() => Promise<void>)[] = [];

beforeAll(() => fixture.start(), 120_000);
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await fixture.close();
});

/** An event as both stores keep it, without its id and time. */
interface EventRow {
  kind: string;
  severity: string;
  batch: number | null;
  detail: string;
}

interface Node {
  name: string;
  broker: Broker;
  ingest: Ingest;
  /** the gateway's security events, oldest first */
  events(gateway: string): Promise<EventRow[]>;
}

async function broker(): Promise<Broker> {
  const passwordHash = await hashPassword(GATEWAY_PASSWORD);
  const b = new Broker({
    lab: LAB,
    host: '127.0.0.1',
    port: 0,
    users: GATEWAYS.map((id) => ({ username: id, passwordHash, role: 'gateway' as const, gateway: id })),
    logger: silent,
  });
  await b.start();
  return b;
}

const configuredKeys = GATEWAYS.map((id) => ({ id, key: formatVerifierKey(id, publicKeyFromSeed(seedOf(id))) }));

/** The trust modules (keys, security events) of a node, on a SQLite database of their own. */
async function trust(): Promise<{ database: LabDatabase; keys: KeyRegistry; events: SecurityEvents }> {
  const database = new LabDatabase(fixture.tempDir(), serverMigrations);
  await database.migrate();
  const events = new SecurityEvents(database, silent);
  const keys = new KeyRegistry(database, events);
  await keys.open(configuredKeys);
  return { database, keys, events };
}

/** A node on SQLite: the server's own embedded store. */
async function sqliteNode(name: string): Promise<Node> {
  const { database, keys, events } = await trust();
  const store = new MeasurementStore(database);
  store.open();
  const log = new TransparencyLog(database, { origin: ORIGIN, signer: LOG_KEY });
  log.open();
  const b = await broker();
  const ingest = new Ingest(LAB, b, database, store, new Registry(database), keys, events, silent, clock);
  ingest.useLog(log);
  await ingest.start();
  closers.push(async () => {
    await ingest.stop();
    await b.stop();
    await events.stop();
    await database.close();
  });
  const list = (gateway: string): Promise<EventRow[]> =>
    Promise.resolve(
      events
        .list({ gateway, limit: 1000 })
        .reverse()
        .map(({ kind, severity, batch, detail }) => ({ kind, severity, batch, detail })),
    );
  return { name, broker: b, ingest, events: list };
}

/** A fresh PostgreSQL database, migrated. */
async function pgDatabase(): Promise<string> {
  const url = await fixture.url('postgres');
  await migrateStore(fixture.open(url).db, serverMigrations);
  return url;
}

/** A node on PostgreSQL: its own pool on the shared database, its own broker. */
async function pgNode(name: string, url: string): Promise<Node & { db: Kysely<Tables>; log: LogStore }> {
  const db = fixture.open(url).db;
  // the keys and the counted refusals: the trust modules' own store in this test (the ingest reads their in-memory view)
  const { database, keys, events } = await trust();
  const log = new LogStore(db, { origin: ORIGIN, signer: LOG_KEY, minCheckpointIntervalMs: 0 });
  await log.open();
  const b = await broker();
  const ingest = new Ingest(LAB, b, db, new PgMeasurementStore(db as Kysely<unknown>), new Registry({ db }), keys, events, silent, clock);
  ingest.useLog(log);
  await ingest.start();
  closers.push(async () => {
    await ingest.stop();
    await b.stop();
    await events.stop();
    await database.close();
  });
  const list = async (gateway: string): Promise<EventRow[]> =>
    (
      await db.selectFrom('security_events').select(['kind', 'severity', 'batch', 'detail']).where('gateway', '=', gateway).orderBy('id').execute()
    ).map((r) => ({ ...r, batch: r.batch === null ? null : Number(r.batch) }));
  return { name, broker: b, ingest, events: list, db, log };
}

/** A gateway connected to several nodes at once (so that a batch can be delivered to each): signs and chains its batches. */
class Gateway {
  private prev: Uint8Array | null = null;
  private next = 0;
  readonly acks = new Map<Node, number[]>();
  readonly clients = new Map<Node, MqttClient>();

  constructor(readonly id: string) {}

  async connect(nodes: Node[]): Promise<this> {
    for (const node of nodes) {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${node.broker.port}`, {
        clientId: this.id,
        username: this.id,
        password: GATEWAY_PASSWORD,
        reconnectPeriod: 0,
      });
      const acks: number[] = [];
      client.on('message', (topic, payload) => {
        if (topic.endsWith('/ACK')) acks.push((JSON.parse(payload.toString()) as { batch: number }).batch);
      });
      await client.subscribeAsync([topicFor(LAB, this.id, 'ACK'), topicFor(LAB, this.id, 'CMD')], { qos: 1 });
      this.clients.set(node, client);
      this.acks.set(node, acks);
      closers.push(() => client.endAsync(true));
    }
    return this;
  }

  async birth(...instruments: string[]): Promise<void> {
    const body = JSON.stringify({
      v: 1,
      gateway: this.id,
      session: 1,
      version: 't',
      instruments: instruments.map((i) => ({ id: i, identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: '' }] })),
    });
    for (const [node, client] of this.clients) {
      // handled (the registry holds the instruments) before any DATA is sent
      const born = new Promise<void>((resolve) => {
        const onBirth = (gateway: string): void => {
          if (gateway !== this.id) return;
          node.ingest.off('birth', onBirth);
          resolve();
        };
        node.ingest.on('birth', onBirth);
      });
      await client.publishAsync(topicFor(LAB, this.id, 'BIRTH'), body, { qos: 1 });
      await born;
    }
  }

  /** The next batch of the chain (or the one numbered `batch`, continuing from the last sealed), sealed in its wire form. */
  seal(samples: Sample[], batch = this.next): Uint8Array {
    const { signed, wire } = sealBatch(signerOf(this.id), this.id, batch, samples, this.prev);
    this.prev = headerHash(signed.header);
    this.next = batch + 1;
    return wire;
  }

  publish(node: Node, payload: Uint8Array | object): Promise<void> {
    const client = this.clients.get(node);
    if (client === undefined) throw new Error(`${this.id} is not connected to ${node.name}`);
    const body = payload instanceof Uint8Array ? Buffer.from(payload) : JSON.stringify(payload);
    return client.publishAsync(topicFor(LAB, this.id, 'DATA'), body, { qos: 1 }).then(() => undefined);
  }

  /** Publishes to a node and waits for its answer: 'acked' or the reason it was refused. */
  async send(node: Node, payload: Uint8Array | object): Promise<string> {
    const acks = this.acks.get(node) ?? [];
    const before = acks.length;
    let reason: string | undefined;
    const onRejected = (g: string, r: string): void => {
      if (g === this.id) reason = r;
    };
    node.ingest.on('rejected', onRejected);
    try {
      await this.publish(node, payload);
      await waitFor(`an answer from ${node.name}`, () => reason !== undefined || acks.length > before, 20_000);
      return reason ?? 'acked';
    } finally {
      node.ingest.off('rejected', onRejected);
    }
  }
}

async function count(db: Kysely<Tables>, table: string, gateway?: string): Promise<number> {
  const where = gateway === undefined ? sql.raw('') : sql`WHERE gateway = ${gateway}`;
  const { rows } = await sql<{ n: string }>`SELECT COUNT(*) AS n FROM ${sql.table(table)} ${where}`.execute(db);
  return Number(rows[0]?.n);
}

describe('one PostgreSQL node', () => {
  let node: Awaited<ReturnType<typeof pgNode>>;
  let other: Awaited<ReturnType<typeof pgNode>>;
  let gw: Gateway;
  beforeAll(async () => {
    const url = await pgDatabase();
    node = await pgNode('node A', url);
    other = await pgNode('node B', url);
    gw = await new Gateway('gw-a').connect([node, other]);
    await gw.birth('pg-1');
  }, 60_000);

  test('batches are stored once, with their log leaf and chain, and acknowledged only after COMMIT', async () => {
    // the commit of every batch takes 300 ms more than its statements: an ACK published before COMMIT would reach the
    // gateway while the batch is not yet visible to other connections
    await sql`CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$`.execute(
      node.db,
    );
    await sql`CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON batch_headers DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION test_slow_commit()`.execute(node.db);
    const seen: number[] = [];
    const acks = gw.acks.get(node) ?? [];
    const client = gw.clients.get(node);
    const visible: Promise<void>[] = [];
    const onAck = (topic: string, payload: Buffer): void => {
      if (!topic.endsWith('/ACK')) return;
      const { batch } = JSON.parse(payload.toString()) as { batch: number };
      // read at once, on another node's pool
      visible.push(
        other.db
          .selectFrom('batch_headers')
          .select('batch')
          .where('gateway', '=', 'gw-a')
          .where('batch', '=', batch)
          .execute()
          .then((rows) => {
            if (rows.length === 1) seen.push(batch);
          }),
      );
    };
    client?.on('message', onAck);
    try {
      for (let b = 0; b < 3; b++) expect(await gw.send(node, gw.seal(records('pg-1', b * 4, 4)))).toBe('acked');
      await Promise.all(visible);
    } finally {
      client?.off('message', onAck);
      await sql`DROP TRIGGER test_slow_commit ON batch_headers`.execute(node.db);
      await sql`DROP FUNCTION test_slow_commit()`.execute(node.db);
    }
    expect(acks).toEqual([0, 1, 2]);
    expect(seen).toEqual([0, 1, 2]);
    expect(await count(node.db, 'batch_headers', 'gw-a')).toBe(3);
    expect(await count(node.db, 'samples')).toBe(12);
    expect(node.ingest.counters).toMatchObject({ batches: 3, samples: 12, duplicates: 0 });
    // each header entered the log once, at its batch's log index
    const headers = await node.db.selectFrom('batch_headers').select(['batch', 'header', 'signature', 'log_index']).orderBy('batch').execute();
    const entries = await node.log.entries(0, await node.log.size());
    expect(entries).toHaveLength(3);
    for (const h of headers) {
      const signed: SignedBatch = { header: JSON.parse(h.header) as SignedBatch['header'], signature: h.signature };
      const entry = entries.find((e) => e.index === Number(h.log_index));
      expect(entry?.kind).toBe('batch-header');
      expect(Buffer.from(entry?.data ?? []).equals(Buffer.from(canonicalBytes(signed)))).toBe(true);
    }
    const chain = await node.db.selectFrom('gateway_chain').selectAll().where('gateway', '=', 'gw-a').executeTakeFirst();
    expect(chain).toMatchObject({ next_batch: 3, next_seq: 12 });
    // a clean chain: no events
    expect(await node.events('gw-a')).toEqual([]);
  });

  test('a batch redelivered after COMMIT, to the same node or another, is acknowledged again and not stored twice', async () => {
    const wire = gw.seal(records('pg-1', 12, 4));
    expect(await gw.send(node, wire)).toBe('acked');
    expect(await gw.send(node, wire)).toBe('acked');
    expect(await gw.send(other, wire)).toBe('acked');
    expect(gw.acks.get(other)).toEqual([3]);
    expect(await count(node.db, 'batch_headers', 'gw-a')).toBe(4);
    expect(await count(node.db, 'samples')).toBe(16);
    expect(await node.log.size()).toBe(4);
    expect(node.ingest.counters).toMatchObject({ batches: 4, duplicates: 4 });
    expect(other.ingest.counters).toMatchObject({ batches: 0, duplicates: 4 });
    const events = await node.events('gw-a');
    expect(events).toEqual([
      { kind: 'duplicate', severity: 'info', batch: 3, detail: 'DATA: batch 3 of gw-a was already stored; acknowledged again' },
      { kind: 'duplicate', severity: 'info', batch: 3, detail: 'DATA: batch 3 of gw-a was already stored; acknowledged again' },
    ]);
  });
  test('batches that gather while a transaction runs are stored together; one that cannot be written is refused alone', async () => {
    await sql`CREATE FUNCTION test_refuse_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: batch % cannot be written', NEW.batch; END $$`.execute(
      node.db,
    );
    await sql`CREATE TRIGGER test_refuse_batch BEFORE INSERT ON batch_headers FOR EACH ROW WHEN (NEW.batch = 6) EXECUTE FUNCTION test_refuse_batch()`.execute(
      node.db,
    );
    const wires = [4, 5, 6, 7, 8, 9].map((b) => gw.seal(records('pg-1', b * 4, 4), b));
    const refused: string[] = [];
    const onRejected = (_: string, reason: string): void => void refused.push(reason);
    node.ingest.on('rejected', onRejected);
    const acks = gw.acks.get(node) ?? [];
    const before = acks.length;
    try {
      // all at once: those that arrive while a transaction of the gateway runs wait for the next, together
      await Promise.all(wires.map((wire) => gw.publish(node, wire)));
      await waitFor('the answers to batches 4..9', () => acks.length >= before + 5 && refused.length >= 1, 30_000);
    } finally {
      node.ingest.off('rejected', onRejected);
      await sql`DROP TRIGGER test_refuse_batch ON batch_headers`.execute(node.db);
      await sql`DROP FUNCTION test_refuse_batch()`.execute(node.db);
    }
    expect(refused).toEqual([expect.stringMatching(/^DATA: batch 6 of gw-a: test: batch 6 cannot be written/)]);
    expect(acks.slice(before)).toEqual([4, 5, 7, 8, 9]);
    expect(await count(node.db, 'batch_headers', 'gw-a')).toBe(9);
    // sent again, it is stored and closes the gap
    expect(await gw.send(node, wires[2]!)).toBe('acked');
    expect(await count(node.db, 'batch_headers', 'gw-a')).toBe(10);
    expect(await count(node.db, 'samples')).toBe(40);
    const chain = await node.db.selectFrom('gateway_chain').selectAll().where('gateway', '=', 'gw-a').executeTakeFirst();
    expect(chain).toMatchObject({ next_batch: 10, next_seq: 40 });
    expect((await node.events('gw-a')).slice(2).map((e) => `${e.kind}/${e.batch}`)).toEqual(['batch-gap/7', 'gap-filled/6']);
    // every stored header in the log once, at its batch's index
    const headers = await node.db.selectFrom('batch_headers').select(['log_index']).where('gateway', '=', 'gw-a').execute();
    expect(new Set(headers.map((h) => h.log_index)).size).toBe(10);
    expect(await node.log.size()).toBe(10);
  });
});

describe('the same input on SQLite and on PostgreSQL gives the same answers and the same security events', () => {
  let lite: Node;
  let pgn: Awaited<ReturnType<typeof pgNode>>;
  let gw: Gateway;

  beforeAll(async () => {
    lite = await sqliteNode('SQLite');
    pgn = await pgNode('PostgreSQL', await pgDatabase());
    gw = await new Gateway('gw-b').connect([lite, pgn]);
    await gw.birth('cmp-1');
  }, 60_000);

  /** Sends the same payload to both nodes, one after the other; both answers are kept. */
  async function both(step: string, payload: Uint8Array | object): Promise<string> {
    const a = await gw.send(lite, payload);
    const b = await gw.send(pgn, payload);
    expect(`${step}: ${b}`).toBe(`${step}: ${a}`);
    return a;
  }

  test('gaps, gap filled, a conflicting batch, a sequence gap, a broken chain, a forged and an altered batch', async () => {
    const b0 = gw.seal(records('cmp-1', 0, 3), 0);
    const b1 = gw.seal(records('cmp-1', 3, 3), 1);
    const b2 = gw.seal(records('cmp-1', 6, 3), 2);
    expect(await both('first', b0)).toBe('acked');
    // batch 2 before batch 1: stored, a gap
    expect(await both('ahead', b2)).toBe('acked');
    // batch 1 closes it
    expect(await both('fill', b1)).toBe('acked');
    // another batch under number 1: a conflict, refused
    expect(await both('conflict', signedMessage(1, records('cmp-1', 3, 3, 5), null))).toMatch(/a different batch 1 \(header .*\) is already stored/);
    // numbers 9..11 skipped, undeclared: stored, a sequence gap
    const b3 = gw.seal(records('cmp-1', 12, 3), 3);
    expect(await both('sequence gap', b3)).toBe('acked');
    // a batch that does not name its predecessor's header: stored, a broken chain
    expect(await both('chain break', signedMessage(4, records('cmp-1', 15, 3), null))).toBe('acked');
    // a header signed by another key under the registered key id: forged, refused
    const samples = records('cmp-1', 18, 3);
    const genuine = signBatch(signerOf('gw-b'), 'gw-b', 5, samples, null);
    const forged = signBatch(signerOf('gw-b', new Uint8Array(32).fill(3)), 'gw-b', 5, samples, null);
    expect(
      await both('forged', { v: 1, gateway: 'gw-b', batch: 5, samples, signed: { header: genuine.header, signature: forged.signature } }),
    ).toMatch(/bad signature/);
    // one value changed after signing: altered, refused
    const changed = samples.map((s, i) => (i === 0 ? { ...s, value: 7 } : s));
    expect(await both('altered', { v: 1, gateway: 'gw-b', batch: 5, samples: changed, signed: genuine })).toMatch(
      /do not hash to the signed Merkle root/,
    );
    // an unknown key: refused
    expect(await both('unknown key', { v: 1, gateway: 'gw-b', batch: 5, samples, signed: forged })).toMatch(/key [0-9a-f]{8} is not registered/);
    // the batch redelivered: a duplicate
    expect(await both('duplicate', b2)).toBe('acked');

    const onSqlite = await lite.events('gw-b');
    const onPostgres = await pgn.events('gw-b');
    expect(onPostgres).toEqual(onSqlite);
    expect(onSqlite.map((e) => `${e.kind}/${e.batch}`)).toEqual([
      'batch-gap/2',
      'gap-filled/1',
      'conflict/1',
      'sequence-gap/3',
      'chain-break/4',
      'forged/5',
      'altered/5',
      'unknown-key/5',
      'duplicate/2',
    ]);
    // numbers already stored under another batch: refused as an overlap (a counted refusal, recorded by the trust module)
    expect(await both('overlap', signedMessage(6, records('cmp-1', 16, 3), null))).toMatch(
      /sequence numbers 16\.\.17 of gw-b are already stored in batch 4/,
    );
    expect(await count(pgn.db, 'batch_headers', 'gw-b')).toBe(5);
    const chain = await pgn.db.selectFrom('gateway_chain').selectAll().where('gateway', '=', 'gw-b').executeTakeFirst();
    expect(chain).toMatchObject({ next_batch: 5, next_seq: 18 });
    expect(lite.ingest.chain.state('gw-b')).toMatchObject({ nextBatch: 5, nextSeq: 18 });
  });
});

/** A JSON DATA message of gw-b signed by its key, with the previous header given. */
function signedMessage(batch: number, samples: Sample[], prev: Uint8Array | null): object {
  return { v: 1, gateway: 'gw-b', batch, samples, signed: signBatch(signerOf('gw-b'), 'gw-b', batch, samples, prev) };
}

describe('two nodes on one PostgreSQL', () => {
  test('fed the same batches of three gateways at once, they store each once; the log holds each header once, consistent with its earlier checkpoint', async () => {
    const url = await pgDatabase();
    const a = await pgNode('node A', url);
    const b = await pgNode('node B', url);
    const gateways = await Promise.all(GATEWAYS.map((id) => new Gateway(id).connect([a, b])));
    for (const gw of gateways) await gw.birth(`${gw.id}-i`);
    const PER_BATCH = 50;
    const BATCHES = 20;
    const wires = gateways.map((gw) => Array.from({ length: BATCHES }, (_, n) => gw.seal(records(`${gw.id}-i`, n * PER_BATCH, PER_BATCH, n))));
    // the first batch of each, then a checkpoint
    await Promise.all(gateways.map(async (gw, g) => expect(await gw.send(a, wires[g]![0]!)).toBe('acked')));
    expect(await a.log.maybeCheckpoint()).toBe(true);
    const before = await a.log.latestCheckpoint();
    // the rest to both nodes at once, every batch of every gateway
    await Promise.all(gateways.flatMap((gw, g) => wires[g]!.slice(1).flatMap((wire) => [gw.publish(a, wire), gw.publish(b, wire)])));
    for (const gw of gateways)
      for (const node of [a, b]) {
        const acks = gw.acks.get(node) ?? [];
        await waitFor(`the ACKs of ${gw.id} from ${node.name}`, () => acks.length >= (node === a ? BATCHES : BATCHES - 1), 60_000);
      }
    // every batch acknowledged by both nodes, in order (each node's pipeline per gateway)
    for (const gw of gateways) {
      expect(gw.acks.get(a)).toEqual(Array.from({ length: BATCHES }, (_, n) => n));
      expect(gw.acks.get(b)).toEqual(Array.from({ length: BATCHES - 1 }, (_, n) => n + 1));
    }
    // each stored once: one node stored it, the other found it stored
    const total = GATEWAYS.length * BATCHES;
    expect(await count(a.db, 'batch_headers')).toBe(total);
    expect(await count(a.db, 'samples')).toBe(total * PER_BATCH);
    expect(a.ingest.counters.batches + b.ingest.counters.batches).toBe(total);
    expect(a.ingest.counters.duplicates + b.ingest.counters.duplicates).toBe((total - GATEWAYS.length) * PER_BATCH);
    const twice = await sql`SELECT gateway, seq FROM samples GROUP BY gateway, seq HAVING COUNT(*) > 1`.execute(a.db);
    expect(twice.rows).toEqual([]);
    for (const gw of GATEWAYS) {
      const chain = await a.db.selectFrom('gateway_chain').selectAll().where('gateway', '=', gw).executeTakeFirst();
      expect(chain).toMatchObject({ next_batch: BATCHES, next_seq: BATCHES * PER_BATCH });
      // no gap, break or conflict: only duplicates
      expect((await a.events(gw)).filter((e) => e.kind !== 'duplicate')).toEqual([]);
    }
    // the log: each header once, at its batch's log index
    const size = await b.log.size();
    expect(size).toBe(total);
    const entries = await b.log.entries(0, size);
    const headers = await a.db.selectFrom('batch_headers').select(['header', 'signature', 'log_index']).execute();
    expect(new Set(headers.map((h) => Number(h.log_index))).size).toBe(total);
    for (const h of headers) {
      const data = canonicalBytes({ header: JSON.parse(h.header) as SignedBatch['header'], signature: h.signature });
      const matching = entries.filter((e) => Buffer.from(e.data).equals(Buffer.from(data)));
      expect(matching.map((e) => e.index)).toEqual([Number(h.log_index)]);
    }
    // a checkpoint after, signed by the other node, consistent with the one before (checked by proof)
    expect(await b.log.maybeCheckpoint()).toBe(true);
    const after = await b.log.latestCheckpoint();
    const verifier = ed25519NoteVerifier(LOG_KEY);
    const c1 = openCheckpoint(before.note, [verifier]).checkpoint;
    const c2 = openCheckpoint(after.note, [verifier]).checkpoint;
    expect([c1.size, c2.size]).toEqual([GATEWAYS.length, total]);
    const proof = await b.log.consistencyProof(c1.size, c2.size);
    expect(() => verifyConsistency(c1.size, c2.size, c1.rootHash, c2.rootHash, proof)).not.toThrow();
  }, 120_000);
});
