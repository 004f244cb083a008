// Whatever the server refuses it records: each refusal over a real MQTT connection to a started server
// appears in GET /api/security-events; a flood of refusals is a bounded number of rows carrying counts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import pino from 'pino';
import { sealBatch, topicFor } from '@labtrace/protocols';
import { LabDatabase } from '../../src/store/database.js';
import { SecurityEvents, type SecurityEvent } from '../../src/trust/security-events.js';
import { LAB, records, send, signerOf, startServer, TestGateway, type TestServer } from '../helpers/server.js';
import { serverMigrations } from '../../src/migrations.js';

let t: TestServer;
const gateways: TestGateway[] = [];
const SOURCES = 10;

beforeAll(async () => {
  t = await startServer({ securityEvents: { windowMs: 3_600_000, maxSourcesPerWindow: SOURCES } });
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.end()));
  await t.stop();
});

async function gateway(id: string): Promise<TestGateway> {
  const gw = await TestGateway.connect(t, id);
  gateways.push(gw);
  return gw;
}

/** The events of a kind as the API serves them to an admin. */
async function served(kind: string, gateway?: string): Promise<SecurityEvent[]> {
  const res = await t.fetch(`/api/security-events?kind=${kind}&limit=500${gateway === undefined ? '' : `&gateway=${gateway}`}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: SecurityEvent[] }).items;
}

const total = (events: SecurityEvent[]): number => events.reduce((n, e) => n + e.count, 0);

/** Waits until the API serves `n` refusals of a kind in all (the broker and ingest record them as they come). */
async function servedCount(kind: string, n: number, gateway?: string): Promise<SecurityEvent[]> {
  let events: SecurityEvent[] = [];
  for (let i = 0; i < 500; i++) {
    events = await served(kind, gateway);
    if (total(events) >= n) return events;
    await new Promise((r) => setTimeout(r, 20));
  }
  return events;
}

describe('refusals over MQTT are security events', () => {
  test('garbage DATA payloads: every one is counted (not only those that parse)', async () => {
    const gw = await gateway('gw-a');
    await gw.birth('garbage-1');
    const sealed = sealBatch(signerOf('gw-a'), 'gw-a', 0, records('garbage-1', 0, 2), null).wire;
    const garbage: (string | Uint8Array)[] = [
      '',
      'not json',
      '{"v":1',
      'null',
      '[]',
      '{}',
      '{"v":2,"gateway":"gw-a","batch":0,"samples":[]}',
      JSON.stringify({ v: 1, gateway: 'gw-a', batch: -1, samples: records('garbage-1', 0, 1) }),
      JSON.stringify({ v: 1, gateway: 'gw-a', batch: 0, samples: [{ seq: 'x' }] }),
      Buffer.from('LTB1 and then nothing a batch holds'),
      sealed.subarray(0, sealed.length - 7),
    ];
    for (const payload of garbage) await gw.client.publishAsync(topicFor(LAB, 'gw-a', 'DATA'), Buffer.from(payload), { qos: 1 });
    const events = await servedCount('malformed', garbage.length, 'gw-a');
    expect(total(events)).toBe(garbage.length);
    // counted on one row for the gateway, which names the first problem
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ gateway: 'gw-a', kind: 'malformed', severity: 'alarm', detail: 'DATA: payload is not JSON' });
  });

  test('a new batch number reusing stored sequence numbers', async () => {
    const gw = await gateway('gw-b');
    await gw.birth('overlap-1');
    expect(await send(t, gw, gw.sign(records('overlap-1', 0, 3)))).toBe('acked');
    const reused = records('overlap-1', 2, 2).map((s) => ({ ...s, ts: s.ts + 10 }));
    expect(await send(t, gw, gw.sign(reused))).toMatch(/sequence numbers 2..2 of gw-b are already stored in batch 0/);
    const [event] = await servedCount('sequence-overlap', 1, 'gw-b');
    expect(event).toMatchObject({
      gateway: 'gw-b',
      severity: 'alarm',
      batch: 1,
      count: 1,
      detail: expect.stringMatching(/already stored in batch 0/),
    });
  });

  test("a signed batch carrying another gateway's instrument, and a BIRTH claiming one", async () => {
    const owner = await gateway('gw-s');
    await owner.birth('owned-by-s');
    const thief = await gateway('gw-p');
    await thief.birth('own-p');
    expect(await send(t, thief, thief.sign(records('owned-by-s', 0, 1)))).toMatch(/instrument "owned-by-s" belongs to gateway gw-s/);
    await thief.birth('owned-by-s');
    const events = await servedCount('foreign-instrument', 2, 'gw-p');
    expect(events.map((e) => e.detail).sort()).toEqual([
      'BIRTH: instrument "owned-by-s" belongs to gateway gw-s',
      'DATA: batch 0 of gw-p: instrument "owned-by-s" belongs to gateway gw-s',
    ]);
    expect(events.every((e) => e.severity === 'alarm' && e.gateway === 'gw-p')).toBe(true);
    // the claim changed nothing
    expect((await t.server.registry.instrument('owned-by-s'))?.gateway).toBe('gw-s');
  });

  test("a publish refused by the broker's ACL", async () => {
    const gw = await gateway('gw-a');
    // mqtt.js sees no refusal of a QoS 0 publish: the broker drops it (MQTT 3.1.1 has no negative PUBACK)
    gw.client.publish(topicFor(LAB, 'gw-b', 'DATA'), 'x', { qos: 0 });
    const [event] = await servedCount('publish-refused', 1, 'gw-a');
    expect(event).toMatchObject({
      gateway: 'gw-a',
      severity: 'alarm',
      client: 'gw-a',
      address: expect.stringMatching(/127\.0\.0\.1/),
      detail: `MQTT publish to ${topicFor(LAB, 'gw-b', 'DATA')} refused (gateway gw-a)`,
    });
  });

  test('a failed MQTT login', async () => {
    await expect(mqtt.connectAsync(t.mqttUrl, { clientId: 'gw-s', username: 'gw-s', password: 'guess', reconnectPeriod: 0 })).rejects.toThrow(
      /Bad username or password/i,
    );
    const [event] = await servedCount('login-refused', 1);
    // an unauthenticated source is not a gateway's event: it is named by its address and the ids it presented
    expect(event).toMatchObject({
      gateway: '',
      severity: 'notice',
      client: 'gw-s (user gw-s)',
      address: expect.stringMatching(/127\.0\.0\.1/),
      detail: 'MQTT login refused: wrong password',
      count: 1,
    });
  });
});

/** One MQTT login with made-up credentials; resolves when the broker has refused it. */
async function failedLogin(clientId: string): Promise<void> {
  await expect(mqtt.connectAsync(t.mqttUrl, { clientId, username: 'intruder', password: 'guess', reconnectPeriod: 0 })).rejects.toThrow(
    /Bad username or password/i,
  );
}

test('a flood of 600 failed logins is a bounded number of rows carrying the count', async () => {
  const before = total(await served('login-refused'));
  const rowsBefore = (await served('login-refused')).length;
  // 30 client ids, 20 attempts each, 20 at a time
  const attempts = Array.from({ length: 600 }, (_, i) => `flood-${i % 30}`);
  for (let i = 0; i < attempts.length; i += 20) await Promise.all(attempts.slice(i, i + 20).map((id) => failedLogin(id)));
  const events = await servedCount('login-refused', before + 600);
  expect(total(events)).toBe(before + 600);
  // at most SOURCES rows of the kind in the window (one of them the earlier test's), the rest counted on one row
  expect(rowsBefore).toBe(1);
  expect(events).toHaveLength(SOURCES + 1);
  const overflow = events.find((e) => e.address === null);
  expect(overflow?.detail).toMatch(/login-refused from more than 10 sources/);
  expect(overflow?.count).toBeGreaterThan(1);
  const first = events.find((e) => e.client === 'flood-0 (user intruder)');
  expect(first?.count).toBe(20);
  expect(first?.lastAt).toBeGreaterThanOrEqual(first?.at ?? Infinity);
}, 120_000);

describe('aggregation windows', () => {
  let database: LabDatabase;
  beforeAll(async () => {
    database = new LabDatabase(mkdtempSync(path.join(tmpdir(), 'labtrace-events-')), serverMigrations);
    await database.migrate();
  });
  afterAll(async () => {
    await database.close();
  });

  test('a new window starts new rows; counts survive a stop; the table grows by at most the cap per window', async () => {
    let now = 1_000_000;
    const events = new SecurityEvents(database, pino({ level: 'silent' }), { windowMs: 60_000, maxKeysPerWindow: 3 }, () => now);
    const refuse = (address: string): void =>
      events.refuse({ kind: 'login-refused', severity: 'notice', detail: 'MQTT login refused: wrong password', address });
    for (let i = 0; i < 1000; i++) refuse(`10.0.0.${i % 50}`);
    now += 60_000;
    for (let i = 0; i < 10; i++) refuse('10.0.0.1');
    await events.stop();
    const rows = database.sqlite.prepare('SELECT at, count, address FROM security_events ORDER BY id').all() as {
      at: number;
      count: number;
      address: string | null;
    }[];
    expect(rows).toEqual([
      { at: 1_000_000, count: 20, address: '10.0.0.0' },
      { at: 1_000_000, count: 20, address: '10.0.0.1' },
      { at: 1_000_000, count: 20, address: '10.0.0.2' },
      { at: 1_000_000, count: 940, address: null },
      { at: 1_060_000, count: 10, address: '10.0.0.1' },
    ]);
  });
});
