// Sample times are the gateway's clock: a batch dated beyond the accepted skew around its arrival (ahead of the
// server clock by more than ingest.maxClockSkewMs, or older than ingest.maxAgeMs) is stored and acknowledged (signed
// and chained: nothing is lost, nothing is resent forever), recorded as a clock-skew alarm, and its samples outside
// the window are never an instrument's latest value.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { LiveSample, Sample } from '@labtrace/protocols';
import { serverConfigSchema } from '../../src/config.js';
import { send, startServer, TestGateway, type TestServer } from '../helpers/server.js';

let t: TestServer;
let gw: TestGateway;

beforeAll(async () => {
  // the server's defaults: 5 minutes ahead, 30 days back
  t = await startServer({ ingest: {} });
  gw = await TestGateway.connect(t, 'gw-s');
  await gw.birth('skew-1', 'skew-2');
});
afterAll(async () => {
  await gw.end();
  await t.stop();
});

const Y2100 = Date.parse('2100-01-01T00:00:00Z');
const Y1970 = Date.parse('1970-01-01T00:00:01Z');

let seq = 0;
/** the next `n` records of an instrument, stamped `ts` onwards */
const next = (instrument: string, n: number, ts: number, value: number): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ seq: seq++, instrument, channel: 'c', ts: ts + i, value, unit: '', quality: 'good' as const }));

async function latest(instrument: string): Promise<Record<string, { value: unknown; ts: number }>> {
  const all = (await (await t.fetch('/api/instruments')).json()) as { id: string; latest: Record<string, { value: unknown; ts: number }> }[];
  return all.find((i) => i.id === instrument)?.latest ?? {};
}

const skewEvents = (): { batch: number | null; severity: string; detail: string }[] => t.server.events.list({ gateway: 'gw-s', kind: 'clock-skew' });

test('a batch dated 2100 or 1970 is acknowledged and stored once, recorded as clock skew, and never the latest value', async () => {
  const now = Date.now();
  expect(await send(t, gw, gw.sign(next('skew-1', 2, now, 1)))).toBe('acked');
  expect(skewEvents()).toEqual([]);
  expect(await latest('skew-1')).toEqual({ c: { value: 1, ts: now + 1, quality: 'good' } });

  const live: LiveSample[] = [];
  const onSamples = (samples: LiveSample[]): void => void live.push(...samples);
  t.server.ingest.on('samples', onSamples);
  try {
    // the future: acknowledged (the gateway forgets it, no endless resend), stored, recorded
    expect(await send(t, gw, gw.sign(next('skew-1', 2, Y2100, 99)))).toBe('acked');
    expect(t.server.ingest.chain.stored('gw-s', 1)).toBeDefined();
    expect(skewEvents()).toEqual([
      expect.objectContaining({
        batch: 1,
        severity: 'alarm',
        detail: expect.stringMatching(
          /batch 1 of gw-s: its samples are dated 2100-01-01T00:00:00\.000Z \.\. 2100-01-01T00:00:00\.001Z, outside /,
        ) as unknown,
      }),
    ]);
    // the past: an instrument whose only samples are dated 1970 has no latest value
    expect(await send(t, gw, gw.sign(next('skew-2', 2, Y1970, 7)))).toBe('acked');
    expect(skewEvents().map((e) => e.batch)).toEqual([2, 1]);
    // a batch with one sample in the window and one far ahead: the one in the window is a latest value, the other not
    expect(await send(t, gw, gw.sign([...next('skew-2', 1, Date.now(), 8), ...next('skew-2', 1, Y2100 + 5, 9)]))).toBe('acked');
    expect(skewEvents().map((e) => e.batch)).toEqual([3, 2, 1]);
  } finally {
    t.server.ingest.off('samples', onSamples);
  }
  // not pushed live either
  expect(live.map((s) => s.value)).toEqual([8]);
  expect((await latest('skew-1')).c).toEqual({ value: 1, ts: now + 1, quality: 'good' });
  expect((await latest('skew-2')).c).toMatchObject({ value: 8 });
  // stored all the same: the history of 2100 holds them, signed and in the log
  const history = (await (await t.fetch(`/api/instruments/skew-1/history?channel=c&from=${Y2100 - 1}&to=${Y2100 + 10}`)).json()) as LiveSample[];
  expect(history.map((s) => [s.ts, s.value])).toEqual([
    [Y2100, 99],
    [Y2100 + 1, 99],
  ]);

  // the gateway's clock set right: its next batch is the latest value again
  const later = Date.now();
  expect(await send(t, gw, gw.sign(next('skew-1', 1, later, 2)))).toBe('acked');
  expect((await latest('skew-1')).c).toEqual({ value: 2, ts: later, quality: 'good' });
  expect(skewEvents()).toHaveLength(3);
  expect(t.server.ingest.counters.rejected).toBe(0);
});

test('the accepted skew is configured in ingest, checked like every setting', () => {
  expect(serverConfigSchema.parse({}).ingest).toEqual({ maxClockSkewMs: 5 * 60_000, maxAgeMs: 30 * 86_400_000, maxClockOffsetMs: 2000 });
  expect(serverConfigSchema.parse({ ingest: { maxClockSkewMs: 60_000, maxAgeMs: 86_400_000 } }).ingest).toEqual({
    maxClockSkewMs: 60_000,
    maxAgeMs: 86_400_000,
    maxClockOffsetMs: 2000,
  });
  const offset = serverConfigSchema.safeParse({ ingest: { maxClockOffsetMs: 50 } });
  expect(offset.error?.issues[0]?.path).toEqual(['ingest', 'maxClockOffsetMs']);
  const bad = serverConfigSchema.safeParse({ ingest: { maxClockSkewMs: -5 } });
  expect(bad.success).toBe(false);
  expect(bad.error?.issues[0]?.path).toEqual(['ingest', 'maxClockSkewMs']);
});
