// Trusted delivery under faults, through real processes: an enrolled gateway polling the simulator
// and the server with its broker. After each fault an auditor's check of the server's database:
// every stored batch verifies from the stored rows against the gateway's keys, and every sequence
// number up to what the gateway has had acknowledged is stored exactly once, or declared skipped.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { audit, GATEWAY, labtrace, Parts } from '../helpers/parts.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function expectComplete(parts: Parts): ReturnType<typeof audit> {
  const through = parts.ackedThrough();
  const result = audit(parts.serverDb, GATEWAY, through);
  expect(result.failures).toEqual([]);
  expect(result.missing).toEqual([]);
  expect(result.events['sequence-gap'] ?? 0).toBe(0);
  expect(result.events['chain-break'] ?? 0).toBe(0);
  expect(through).toBeGreaterThan(0);
  return result;
}

async function grows(parts: Parts, by = 20): Promise<void> {
  const before = parts.stored();
  await parts.waitFor(`${by} more stored measurements`, () => parts.stored() >= before + by);
}

describe('faults', () => {
  const parts = new Parts();

  beforeAll(async () => {
    await parts.setUp();
    await parts.start('gateway');
  }, 120_000);
  afterAll(async () => {
    await parts.tearDown();
  }, 60_000);

  test('an enrolled gateway delivers signed batches', async () => {
    await grows(parts, 50);
    const keys = await parts.getJson(`/api/gateways/${GATEWAY}/keys`);
    expect(keys).toEqual([expect.objectContaining({ status: 'active', keyId: expect.stringMatching(/^[0-9a-f]{8}$/) })]);
    expectComplete(parts);
  }, 60_000);

  test('kill -9 of the gateway mid-stream, then a restart: the skipped numbers are declared, nothing lost', async () => {
    await grows(parts);
    await parts.stop('gateway', 'SIGKILL');
    await parts.start('gateway');
    await grows(parts, 50);
    await parts.drained();
    const result = expectComplete(parts);
    expect(result.declaredJumps.length).toBeGreaterThanOrEqual(1);
    expect(result.events['sequence-jump']).toBeGreaterThanOrEqual(1);
  }, 120_000);

  test('the connection cut in the middle of a DATA message', async () => {
    for (let i = 0; i < 3; i++) {
      parts.proxy.cutInData();
      await parts.waitFor('a cut inside a DATA message', () => parts.proxy.cuts > i, 30_000);
      await grows(parts);
    }
    await parts.drained();
    expectComplete(parts);
  }, 120_000);

  test('the server stopped for 30 s while the instruments keep producing', async () => {
    await parts.stop('server');
    const heldBefore = parts.outbox().held;
    await sleep(30_000);
    expect(parts.outbox().held).toBeGreaterThan(heldBefore); // kept durably at the gateway meanwhile
    await parts.start('server');
    await parts.drained();
    expectComplete(parts);
  }, 150_000);

  test('the server and its broker killed (-9) and restarted', async () => {
    await grows(parts);
    await parts.stop('server', 'SIGKILL');
    await sleep(2000);
    await parts.start('server');
    await grows(parts, 50);
    await parts.drained();
    expectComplete(parts);
  }, 120_000);

  test('key rotation while the gateway runs: later batches carry the new key, the old one is retired', async () => {
    const out = await labtrace('gateway', 'rotate-key', '--server', parts.base, '--config', parts.files.gateway);
    const [, oldKey, newKey] = /: ([0-9a-f]{8}) -> ([0-9a-f]{8})/.exec(out) ?? [];
    expect(newKey).toBeDefined();
    await parts.waitFor('a batch signed with the new key', () => {
      const db = new Database(parts.serverDb, { readonly: true });
      try {
        return db.prepare("SELECT 1 FROM batch_headers WHERE gateway = ? AND json_extract(header, '$.keyId') = ?").get(GATEWAY, newKey) !== undefined;
      } finally {
        db.close();
      }
    });
    const keys = await parts.getJson<{ keyId: string; status: string }[]>(`/api/gateways/${GATEWAY}/keys`);
    expect(keys.find((k) => k.keyId === oldKey)?.status).toBe('retired');
    expect(keys.find((k) => k.keyId === newKey)?.status).toBe('active');
    await parts.drained();
    expectComplete(parts);
  }, 60_000);

  test('a revoked key: later batches are refused and recorded, and they stay at the gateway (not lost)', async () => {
    const keys = await parts.getJson<{ keyId: string; status: string }[]>(`/api/gateways/${GATEWAY}/keys`);
    const active = keys.find((k) => k.status === 'active')!.keyId;
    await labtrace('server', 'revoke-key', '--gateway', GATEWAY, '--key-id', active, '--reason', 'test: key lost', '--config', parts.files.server);
    await parts.waitFor('a refused batch', async () => {
      const events = await parts.getJson<{ items: unknown[] }>(`/api/security-events?gateway=${GATEWAY}&kind=revoked-key`);
      return events.items.length > 0;
    });
    const stored = parts.stored();
    await sleep(2000);
    expect(parts.stored()).toBe(stored);
    expect(parts.outbox().held).toBeGreaterThan(0);
  }, 60_000);
});

describe('a full outbox', () => {
  const parts = new Parts();

  beforeAll(async () => {
    await parts.setUp({ outboxMaxSamples: 1000 });
    await parts.start('gateway');
  }, 120_000);
  afterAll(async () => {
    await parts.tearDown();
  }, 60_000);

  test('refuses new samples, raises an alarm, and declares the loss in a signed record once there is room', async () => {
    await grows(parts);
    await parts.stop('server');
    await parts.waitFor('the gateway to refuse samples', () => /ALARM: outbox full/.test(parts.output('gateway')), 90_000);
    await sleep(1000);
    await parts.start('server');
    await parts.drained();
    await parts.waitFor('the declared loss', () => audit(parts.serverDb, GATEWAY, parts.ackedThrough()).refusedDeclared > 0, 30_000);
    const result = expectComplete(parts);
    expect(result.events['samples-refused']).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
