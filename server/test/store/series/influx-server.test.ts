// The server with `measurements.store: influxdb` against a real influxd: the REST API's reads (series, history, the
// instruments' latest values) come from InfluxDB and match what the embedded store answers for the same batches;
// /api/health shows the backlog and the outage; with influxd down the server keeps acknowledging batches, and its
// reads fail with 503 instead of answering from nothing.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { Influxd } from '@labtrace/protocols/test/influxd';
import { send, startServer, TestGateway, type TestServer } from '../../helpers/server.js';

const T0 = 1_800_000_000_000;
let influxd: Influxd;
let t: TestServer;

interface Health {
  measurements: { kind: string; status: string; backlog: { batches: number; samples: number }; lastError?: string };
}

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await t.fetch(path, {}, 'technician');
  return { status: res.status, body: (await res.json()) as T };
}

/** Waits until /api/health reports the InfluxDB backlog in the given state. */
async function healthUntil(ok: (h: Health) => boolean): Promise<Health> {
  for (;;) {
    const { body } = await get<Health>('/api/health');
    if (ok(body)) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  influxd = await Influxd.create();
  await influxd.start();
  await influxd.createDatabase('lab');
  t = await startServer({ measurements: { store: 'influxdb', influxdb: { url: influxd.url, database: 'lab' } } });
}, 60_000);

afterAll(async () => {
  await t.stop();
  await influxd.dispose();
});

test('the API reads measurements from InfluxDB; an outage holds the backlog and is shown in /api/health', async () => {
  const gw = await TestGateway.connect(t, 'gw-a');
  try {
    await gw.birth('ser-1');
    // the same batch as the embedded store's series test: 100 samples 10 ms apart, values 0..99, one text value
    const samples = Array.from({ length: 100 }, (_, i) => ({
      seq: i,
      instrument: 'ser-1',
      channel: 'c',
      ts: T0 + i * 10,
      value: i === 50 ? ('overload' as unknown as number) : i,
      unit: '',
      quality: 'good' as const,
    }));
    expect(await send(t, gw, gw.seal(samples))).toBe('acked');
    await healthUntil((h) => h.measurements.backlog.batches === 0);

    const series = await get<{ bucketMs: number; points: { ts: number; min: number; max: number; mean: number; count: number }[] }>(
      `/api/instruments/ser-1/series?channel=c&from=${T0}&to=${T0 + 999}&points=10`,
    );
    expect(series.status).toBe(200);
    expect(series.body.bucketMs).toBe(100);
    expect(series.body.points).toHaveLength(10);
    expect(series.body.points[0]).toEqual({ ts: T0, min: 0, max: 9, mean: 4.5, count: 10 });
    expect(series.body.points[5]).toEqual({ ts: T0 + 500, min: 51, max: 59, mean: 55, count: 9 });
    const history = await get<{ seq: number; value: unknown }[]>(`/api/instruments/ser-1/history?channel=c&from=${T0}&to=${T0 + 999}&limit=3`);
    expect(history.body.map((s) => [s.seq, s.value])).toEqual([
      [97, 97],
      [98, 98],
      [99, 99],
    ]);
    const instruments = await get<{ id: string; latest: Record<string, { value: unknown; ts: number }> }[]>('/api/instruments');
    expect(instruments.body.find((i) => i.id === 'ser-1')?.latest).toEqual({ c: { value: 99, ts: T0 + 990, quality: 'good' } });

    // influxd down: batches are still acknowledged (stored in SQLite), the backlog grows and health says so
    await influxd.kill();
    const more = Array.from({ length: 20 }, (_, i) => ({
      seq: 100 + i,
      instrument: 'ser-1',
      channel: 'c',
      ts: T0 + 1000 + i * 10,
      value: 100 + i,
      unit: '',
      quality: 'good' as const,
    }));
    expect(await send(t, gw, gw.seal(more))).toBe('acked');
    const down = await healthUntil((h) => h.measurements.status === 'failing');
    expect(down.measurements.backlog).toEqual({ batches: 1, samples: 20 });
    const unavailable = await get<{ code: string }>(`/api/instruments/ser-1/history?channel=c&from=${T0}&to=${T0 + 2000}`);
    expect(unavailable.status).toBe(503);
    expect(unavailable.body.code).toBe('E_INFLUX_UNAVAILABLE');

    await influxd.start();
    await healthUntil((h) => h.measurements.status === 'ok' && h.measurements.backlog.batches === 0);
    const after = await get<{ seq: number }[]>(`/api/instruments/ser-1/history?channel=c&from=${T0}&to=${T0 + 2000}&limit=1000`);
    expect(after.body.map((s) => s.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i));
  } finally {
    await gw.end();
  }
}, 90_000);
