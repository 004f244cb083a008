// The gateways' clock offsets from their HEALTH messages: the estimate (the smallest arrival-minus-sending of the
// last few, so that delayed messages never widen it), and, on a real server, a gateway 10 s ahead raising one alarm,
// shown beside the gateway, and a notice once its clock is set right.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { topicFor } from '@labtrace/protocols';
import { ClockOffsets, OFFSET_MAX_AGE_MS, OFFSET_WINDOW } from '../../src/ingest/clock-offsets.js';
import { LAB, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

describe('ClockOffsets', () => {
  test('the offset is minus the smallest delay: a late message does not move it, an early one would', () => {
    const c = new ClockOffsets(1000);
    // a gateway 300 ms ahead; network delays of 5, 400 (queued) and 20 ms
    expect(c.observe('g', 10_000 + 300, 10_005)).toBeUndefined();
    expect(c.observe('g', 20_000 + 300, 20_400)).toBeUndefined();
    expect(c.observe('g', 30_000 + 300, 30_020)).toBeUndefined();
    expect(c.of('g')).toEqual({ offsetMs: 295, measuredAt: 30_020, beyondBound: false });
    expect(c.of('other')).toBeUndefined();
  });

  test('beyond the bound: one change, then none; back within half of it: one change', () => {
    const c = new ClockOffsets(1000);
    expect(c.observe('g', 1_000 + 1500, 1_000)).toEqual({ kind: 'beyond', offsetMs: 1500 });
    expect(c.observe('g', 2_000 + 1500, 2_000)).toBeUndefined();
    // set right: the old observations leave the window one by one
    const changes = [];
    for (let i = 0; i < OFFSET_WINDOW; i++) changes.push(c.observe('g', 3_000 + i * 1000, 3_000 + i * 1000));
    expect(changes.filter((x) => x !== undefined)).toEqual([{ kind: 'back', offsetMs: 0 }]);
    // the last of the two early observations leaves with the twelfth on time
    expect(changes.at(-1)).toEqual({ kind: 'back', offsetMs: 0 });
    // between half the bound and the bound: no change either way
    const d = new ClockOffsets(1000);
    expect(d.observe('g', 700, 0)).toBeUndefined();
    expect(d.of('g')?.beyondBound).toBe(false);
  });

  test('behind: a negative offset; observations older than the window age are forgotten', () => {
    const c = new ClockOffsets(1000);
    expect(c.observe('g', 0, 5_000)).toEqual({ kind: 'beyond', offsetMs: -5_000 });
    expect(c.observe('g', OFFSET_MAX_AGE_MS + 10_000, OFFSET_MAX_AGE_MS + 10_001)).toEqual({ kind: 'back', offsetMs: -1 });
  });
});

describe('on a server', () => {
  let t: TestServer;
  let gw: TestGateway;

  beforeAll(async () => {
    t = await startServer({ ingest: { maxClockOffsetMs: 1000, maxClockSkewMs: 20 * 365 * 86_400_000, maxAgeMs: 20 * 365 * 86_400_000 } });
    gw = await TestGateway.connect(t, 'gw-a');
  });
  afterAll(async () => {
    await gw.end();
    await t.stop();
  });

  const health = (aheadMs: number): Promise<void> =>
    gw.client
      .publishAsync(topicFor(LAB, 'gw-a', 'HEALTH'), JSON.stringify({ v: 1, gateway: 'gw-a', ts: Date.now() + aheadMs, instruments: [] }), { qos: 1 })
      .then(() => undefined);
  const events = async (): Promise<{ severity: string; detail: string }[]> =>
    ((await (await t.fetch('/api/security-events?kind=clock-offset')).json()) as { items: { severity: string; detail: string }[] }).items;
  const clock = async (): Promise<{ offsetMs: number; beyondBound: boolean } | null> =>
    ((await (await t.fetch('/api/gateways')).json()) as { id: string; clock: { offsetMs: number; beyondBound: boolean } | null }[]).find(
      (g) => g.id === 'gw-a',
    )?.clock ?? null;

  test('a gateway 10 s ahead: one alarm naming the offset, shown beside the gateway; set right: a notice', async () => {
    await gw.birth('clk-1');
    await waitFor('the gateway listed', async () => ((await (await t.fetch('/api/gateways')).json()) as unknown[]).length === 1);
    for (let i = 0; i < 3; i++) await health(10_000);
    await waitFor('the alarm', async () => (await events()).length === 1);
    const [alarm] = await events();
    expect(alarm?.severity).toBe('alarm');
    expect(alarm?.detail).toMatch(/^the gateway's clock is (9\.\d|10\.0) s ahead of the server's \(bound 1\.0 s\)/);
    const seen = await clock();
    expect(seen?.beyondBound).toBe(true);
    expect(seen?.offsetMs).toBeGreaterThan(9_000);
    expect(seen?.offsetMs).toBeLessThanOrEqual(10_000);
    // set right: once the old observations have left the window
    for (let i = 0; i < 12; i++) await health(0);
    await waitFor('the notice', async () => (await events()).length === 2);
    expect((await events())[0]).toMatchObject({ severity: 'notice', detail: expect.stringMatching(/back within 1\.0 s of the server's/) });
    expect((await clock())?.beyondBound).toBe(false);
    expect(Math.abs((await clock())?.offsetMs ?? Infinity)).toBeLessThan(500);
  }, 60_000);
});
