// The server's own clock on a real server: against a real NTP server (chronyd on a loopback port), in GET /api/health
// and the metrics; a clock made 10 s wrong raises one `clock-offset` alarm about the server (gateway ""), and a notice
// once set right; NTP stopped raises the unreachable alarm; without NTP, two gateways that agree the server's clock is
// off raise an alarm that says it is inferred from them (one gateway alone does not).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { topicFor } from '@labtrace/protocols';
import { Chrony } from '@labtrace/protocols/test/chrony';
import { LAB, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

interface ClockBody {
  status: string;
  clock?: {
    ntp: { status: string; answering: boolean; offsetMs: number | null; delayMs: number | null; server: string | null; boundMs: number } | null;
    gateways: { count: number; offsetMs: number | null; beyondBound: boolean };
  };
}

const healthOf = async (t: TestServer): Promise<ClockBody> => (await (await t.fetch('/api/health', {}, null)).json()) as ClockBody;
/** the server's own clock events (gateway ""), newest first */
const serverEvents = async (t: TestServer): Promise<{ severity: string; detail: string }[]> =>
  (
    (await (await t.fetch('/api/security-events?kind=clock-offset')).json()) as { items: { gateway: string; severity: string; detail: string }[] }
  ).items
    .filter((e) => e.gateway === '')
    .map(({ severity, detail }) => ({ severity, detail }));
const gauge = async (t: TestServer, name: string): Promise<number | undefined> => {
  const text = await t.server.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('against chronyd', () => {
  let chrony: Chrony;
  let t: TestServer;
  let skewMs = 0;
  beforeAll(async () => {
    chrony = await Chrony.start();
    t = await startServer({ clock: { ntp: { servers: [chrony.server], everySeconds: 3600, maxOffsetMs: 1000, timeoutMs: 300 } } }, undefined, {
      ntpClock: () => Date.now() + skewMs,
    });
  });
  afterAll(async () => {
    await t.stop();
    await chrony.stop();
  });

  test('a clock on time: offset near 0 in the health and the metrics, status ok', async () => {
    await t.server.clock.poll();
    const body = await healthOf(t);
    expect(body.status).toBe('ok');
    expect(body.clock?.ntp).toMatchObject({ status: 'ok', answering: true, server: chrony.server, boundMs: 1000 });
    expect(Math.abs(body.clock?.ntp?.offsetMs ?? Infinity)).toBeLessThanOrEqual((body.clock?.ntp?.delayMs ?? 0) / 2 + 1);
    expect(Math.abs((await gauge(t, 'labtrace_clock_offset_seconds')) ?? Infinity)).toBeLessThan(0.5);
    expect(await gauge(t, 'labtrace_clock_ntp_up')).toBe(1);
    expect(await serverEvents(t)).toEqual([]);
  });

  test('a clock made 10 s ahead: ~10 s, one alarm, health degraded; set right: a notice', async () => {
    skewMs = 10_000;
    await t.server.clock.poll();
    await t.server.clock.poll();
    const body = await healthOf(t);
    expect(body.status).toBe('degraded');
    expect(body.clock?.ntp?.status).toBe('beyond-bound');
    expect(Math.abs((body.clock?.ntp?.offsetMs ?? 0) - 10_000)).toBeLessThan(500);
    expect(Math.abs(((await gauge(t, 'labtrace_clock_offset_seconds')) ?? 0) - 10)).toBeLessThan(0.5);
    const alarms = await serverEvents(t);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({
      severity: 'alarm',
      detail: expect.stringMatching(/^the server's clock is (9\.\d|10\.\d) s ahead of NTP \(127\.0\.0\.1:\d+, bound 1\.0 s\)/),
    });
    skewMs = 0;
    await t.server.clock.poll();
    expect((await healthOf(t)).status).toBe('ok');
    expect((await serverEvents(t))[0]).toMatchObject({
      severity: 'notice',
      detail: expect.stringMatching(/^the server's clock is back within 1\.0 s of NTP/),
    });
  });

  test('NTP stopped: after three rounds without an answer, one alarm; up 0', async () => {
    await chrony.stop();
    for (let i = 0; i < 4; i++) await t.server.clock.poll();
    expect((await healthOf(t)).clock?.ntp).toMatchObject({ status: 'unreachable', answering: false });
    expect(await gauge(t, 'labtrace_clock_ntp_up')).toBe(0);
    const events = await serverEvents(t);
    expect(events.filter((e) => /no NTP server answered/.test(e.detail))).toEqual([
      { severity: 'alarm', detail: expect.stringMatching(/^no NTP server answered for 3 rounds \(127\.0\.0\.1:\d+; .*did not answer in 300 ms\)/) },
    ]);
  });
});

describe('without NTP: the gateways', () => {
  let t: TestServer;
  const gateways: TestGateway[] = [];
  beforeAll(async () => {
    t = await startServer({ ingest: { maxClockOffsetMs: 1000, maxClockSkewMs: 20 * 365 * 86_400_000, maxAgeMs: 20 * 365 * 86_400_000 } });
    for (const id of ['gw-a', 'gw-b', 'gw-s']) gateways.push(await TestGateway.connect(t, id));
  });
  afterAll(async () => {
    for (const gw of gateways) await gw.end();
    await t.stop();
  });

  /** a HEALTH message from a gateway whose clock is `aheadMs` ahead of the server's */
  const health = (gw: TestGateway, id: string, aheadMs: number): Promise<void> =>
    gw.client
      .publishAsync(topicFor(LAB, id, 'HEALTH'), JSON.stringify({ v: 1, gateway: id, ts: Date.now() + aheadMs, instruments: [] }), { qos: 1 })
      .then(() => undefined);
  const measured = async (n: number): Promise<void> => waitFor(`${n} gateways measured`, async () => (await healthOf(t)).clock?.gateways.count === n);

  test('NTP not configured: null; one gateway 10 s behind the server says nothing of its clock, two that agree raise an alarm', async () => {
    const [a, b, s] = gateways as [TestGateway, TestGateway, TestGateway];
    await health(s, 'gw-s', 0);
    await health(a, 'gw-a', -10_000);
    await measured(2);
    await t.server.clock.poll();
    expect((await healthOf(t)).clock?.ntp).toBeNull();
    expect(await serverEvents(t)).toEqual([]);
    await health(b, 'gw-b', -10_000);
    await measured(3);
    const view = await t.server.clock.poll();
    expect(view.gateways.beyondBound).toBe(true);
    expect(Math.abs((view.gateways.offsetMs ?? 0) - 10_000)).toBeLessThan(500);
    expect(await serverEvents(t)).toEqual([
      {
        severity: 'alarm',
        detail: expect.stringMatching(
          /^inferred from the gateways \(NTP is not configured\): the server's clock is (9\.\d|10\.0) s ahead of the median of 3 gateways' \(2 agree, bound 1\.0 s\)/,
        ),
      },
    ]);
    expect((await healthOf(t)).status).toBe('degraded');
  });
});

describe('without NTP: gateways that measure their own clock against NTP', () => {
  let t: TestServer;
  const gateways: TestGateway[] = [];
  beforeAll(async () => {
    t = await startServer({ ingest: { maxClockOffsetMs: 1000, maxClockSkewMs: 20 * 365 * 86_400_000, maxAgeMs: 20 * 365 * 86_400_000 } });
    for (const id of ['gw-a', 'gw-b']) gateways.push(await TestGateway.connect(t, id));
  });
  afterAll(async () => {
    for (const gw of gateways) await gw.end();
    await t.stop();
  });

  test("two gateways 10 s ahead of the server that say they are 10 s ahead of NTP: the server's clock is right, no alarm", async () => {
    for (const [i, id] of ['gw-a', 'gw-b'].entries())
      await gateways[i]?.client.publishAsync(
        topicFor(LAB, id, 'HEALTH'),
        JSON.stringify({
          v: 1,
          gateway: id,
          ts: Date.now() + 10_000,
          instruments: [],
          clock: { offsetMs: 10_000, measuredAt: Date.now() + 10_000, beyondBound: true, answering: true },
        }),
        { qos: 1 },
      );
    await waitFor('2 gateways measured', async () => (await healthOf(t)).clock?.gateways.count === 2);
    const view = await t.server.clock.poll();
    expect(Math.abs(view.gateways.offsetMs ?? Infinity)).toBeLessThan(500);
    expect(view.gateways.beyondBound).toBe(false);
    expect(await serverEvents(t)).toEqual([]);
  });
});
