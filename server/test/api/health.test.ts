// /api/health tells whether the lab takes data: degraded when a connected gateway's batches are being refused
// (200), when the store keeps its free-space reserve or cannot write (503); refused batches counted by reason.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

interface Health {
  status: string;
  store: { status: string; freeBytes: number | null; reserveBytes: number; lastError: unknown };
  ingest: { refusedBatches: number; refusedByReason: Record<string, number> };
  gateways: { id: string; connected: boolean; refusing?: { reason: string; at: number } }[];
}

async function health(t: TestServer): Promise<{ status: number; body: Health }> {
  const res = await t.fetch('/api/health', {}, null);
  return { status: res.status, body: (await res.json()) as Health };
}

describe("a connected gateway's batches refused", () => {
  let t: TestServer;
  let gw: TestGateway;
  beforeAll(async () => {
    t = await startServer();
    gw = await TestGateway.connect(t, 'gw-b');
    await gw.birth('ref-1');
  });
  afterAll(async () => {
    await gw.end();
    await t.stop();
  });

  test('health is degraded while they are refused (200: the server itself serves), counts them by reason, and is ok once one is acknowledged', async () => {
    expect(await send(t, gw, { v: 1, gateway: 'gw-b', batch: 0, samples: records('ref-1', 0, 5) })).toMatch(/not signed/);
    const refused = await health(t);
    expect(refused.status).toBe(200);
    expect(refused.body.status).toBe('degraded');
    expect(refused.body.ingest).toEqual({ refusedBatches: 1, refusedByReason: { unsigned: 1 } });
    expect(refused.body.gateways).toEqual([
      expect.objectContaining({ id: 'gw-b', connected: true, refusing: expect.objectContaining({ reason: 'unsigned' }) }),
    ]);
    expect(await send(t, gw, gw.sign(records('ref-1', 0, 5)))).toBe('acked');
    const ok = await health(t);
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('ok');
    expect(ok.body.ingest.refusedBatches).toBe(1);
    expect(ok.body.gateways[0]?.refusing).toBeUndefined();
  });
});

describe('free space below the reserve', () => {
  let t: TestServer;
  let gw: TestGateway;
  beforeAll(async () => {
    // a reserve no disk here has free: the store keeps it from the start
    t = await startServer({ store: { reserveBytes: 2 ** 50, checkIntervalMs: 60_000 } });
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.birth('res-1');
  });
  afterAll(async () => {
    await gw.end();
    await t.stop();
  });

  test('is announced, batches are refused (not acknowledged), and the gateway is asked to resend once there is room', async () => {
    const before = await health(t);
    expect(before.status).toBe(503);
    expect(before.body.store).toMatchObject({ status: 'low-space', reserveBytes: 2 ** 50, freeBytes: expect.any(Number) });
    expect((await t.server.events.page({ kind: 'store-capacity', limit: 100 })).items).toEqual([
      expect.objectContaining({ severity: 'alarm', detail: expect.stringMatching(/below the reserve/) }),
    ]);
    const batch = gw.sign(records('res-1', 0, 10));
    expect(await send(t, gw, batch)).toMatch(/free-space reserve/);
    expect(t.server.store.count()).toBe(0);
    const refused = await health(t);
    expect(refused.body.ingest.refusedByReason).toEqual({ 'store-low-space': 1 });
    expect(refused.body.gateways).toEqual([
      expect.objectContaining({ id: 'gw-a', refusing: expect.objectContaining({ reason: 'store-low-space' }) }),
    ]);
    // space comes back (here: the reserve is lowered), found at the next measurement
    t.server.config.store.reserveBytes = 0;
    t.server.capacity.check();
    await waitFor('a resend command', () => gw.cmds.some((c) => c.cmd === 'resend'));
    expect(gw.cmds).toContainEqual({ v: 1, cmd: 'resend', fromBatch: 0 });
    expect(await send(t, gw, batch)).toBe('acked');
    const after = await health(t);
    expect(after.status).toBe(200);
    expect(after.body.store.status).toBe('ok');
    expect((await t.server.events.page({ kind: 'store-capacity', limit: 100 })).items[0]).toMatchObject({
      severity: 'info',
      detail: expect.stringMatching(/takes writes again/),
    });
  });
});
