// GET /metrics: what a Prometheus scrape reads after a known load through the broker (the counters equal the load
// offered), its protection (a bearer token, or a listener of its own on loopback; without either, not served) and the
// configuration errors, each naming its field.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import { parsePrometheusText, valueOf, type PromText } from '@labtrace/protocols/test/prometheus-text';
import { serverConfigSchema } from '../../src/index.js';
import { metricsEndpointOf } from '../../src/metrics/server-metrics.js';
import { records, send, startServer, TestGateway, waitFor, type TestServer } from '../helpers/server.js';

const TOKEN = 'a'.repeat(16) + '0123456789abcdef0123456789abcdef';
const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-metrics-'));
const tokenFile = path.join(dir, 'metrics.token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

/** the metric names deploy/grafana/labtrace.json queries (server/dist/test/metrics -> the repository root) */
function dashboardMetrics(): string[] {
  const text = readFileSync(fileURLToPath(new URL('../../../../deploy/grafana/labtrace.json', import.meta.url)), 'utf8');
  const dashboard = JSON.parse(text) as { panels: { targets?: { expr: string }[] }[] };
  const names = dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((target) => target.expr.match(/\blabtrace_[a-z0-9_]+/g) ?? []);
  return [...new Set(names)];
}

async function scrape(url: string, token: string | undefined = TOKEN): Promise<PromText> {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

describe('with a token: GET /metrics on the HTTP port', () => {
  let t: TestServer;
  let gw: TestGateway;
  let socket: Socket | undefined;
  const BATCHES = 7;
  const PER_BATCH = 5;

  beforeAll(async () => {
    t = await startServer({ metrics: { tokenFile } });
    gw = await TestGateway.connect(t, 'gw-a');
    await gw.birth('m-1');
  });
  afterAll(async () => {
    socket?.disconnect();
    await gw.end();
    await t.stop();
  });

  test('the ingest counters equal the batches and measurements offered; refusals by reason; ACK latencies', async () => {
    for (let b = 0; b < BATCHES; b++) expect(await send(t, gw, gw.seal(records('m-1', b * PER_BATCH, PER_BATCH)))).toBe('acked');
    // one batch sent again (a duplicate: acknowledged, not stored twice) and two refused: unsigned, and not of its topic's gateway
    const again = gw.sign(records('m-1', BATCHES * PER_BATCH, PER_BATCH));
    expect(await send(t, gw, again)).toBe('acked');
    expect(await send(t, gw, again)).toBe('acked');
    expect(await send(t, gw, { v: 1, gateway: 'gw-a', batch: BATCHES + 1, samples: records('m-1', 100, 2) })).toMatch(/not signed/);
    expect(await send(t, gw, { v: 1, gateway: 'gw-a', batch: 'x', samples: [] })).toMatch(/^DATA: /);

    const url = `${t.base}/metrics`;
    // the ACK is published before its latency is observed: the gateway may read it first
    await waitFor('every ACK observed', async () => valueOf(await scrape(url), 'labtrace_ingest_ack_latency_seconds_count') === BATCHES + 2);
    const m = await scrape(url);
    expect(m.types.get('labtrace_ingest_batches_received_total')).toBe('counter');
    // received: every DATA message that parses as a batch (the malformed one does not)
    expect(valueOf(m, 'labtrace_ingest_batches_received_total')).toBe(BATCHES + 3);
    expect(valueOf(m, 'labtrace_ingest_measurements_received_total')).toBe((BATCHES + 2) * PER_BATCH + 2);
    expect(valueOf(m, 'labtrace_ingest_batches_stored_total')).toBe(BATCHES + 1);
    expect(valueOf(m, 'labtrace_ingest_measurements_stored_total')).toBe((BATCHES + 1) * PER_BATCH);
    expect(valueOf(m, 'labtrace_ingest_duplicate_measurements_total')).toBe(PER_BATCH);
    expect(valueOf(m, 'labtrace_ingest_batches_refused_total', { reason: 'unsigned' })).toBe(1);
    expect(valueOf(m, 'labtrace_ingest_batches_refused_total', { reason: 'malformed' })).toBe(1);
    expect(m.types.get('labtrace_ingest_ack_latency_seconds')).toBe('histogram');
    expect(valueOf(m, 'labtrace_ingest_ack_latency_seconds_bucket', { le: '+Inf' })).toBe(BATCHES + 2);
    expect(valueOf(m, 'labtrace_ingest_ack_latency_seconds_sum')).toBeGreaterThan(0);
    // the log: the batches' headers are entries (and the server's own: key events, audit anchors)
    expect(valueOf(m, 'labtrace_log_size_entries')).toBeGreaterThanOrEqual(BATCHES + 1);
    expect(valueOf(m, 'labtrace_log_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'labtrace_store_free_bytes')).toBeGreaterThan(0);
    expect(valueOf(m, 'labtrace_store_accepting')).toBe(1);
    // the default metrics, on this server's own registry, with the prefix
    expect(valueOf(m, 'labtrace_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'labtrace_process_resident_memory_bytes')).toBeGreaterThan(0);
    // no InfluxDB here: no backlog series
    expect(m.samples.some((s) => s.name.startsWith('labtrace_influx_'))).toBe(false);
    // no NTP configured: the clock's gauges are named, without a value (not an offset of 0 s)
    expect(m.types.get('labtrace_clock_offset_seconds')).toBe('gauge');
    expect(valueOf(m, 'labtrace_clock_offset_seconds')).toBeUndefined();
    expect(valueOf(m, 'labtrace_clock_ntp_up')).toBeUndefined();
  });

  test('socket.io clients are counted', async () => {
    expect(valueOf(await scrape(`${t.base}/metrics`), 'labtrace_live_clients')).toBe(0);
    socket = io(t.base, { transports: ['websocket'], auth: { token: t.tokens.admin }, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket?.once('connect', resolve);
      socket?.once('connect_error', reject);
    });
    expect(valueOf(await scrape(`${t.base}/metrics`), 'labtrace_live_clients')).toBe(1);
  });

  test('HTTP requests are labelled by route template and status class, never by their URL', async () => {
    expect((await t.fetch('/api/instruments/m-1')).status).toBe(200);
    expect((await t.fetch('/api/instruments/no-such-instrument')).status).toBe(404);
    expect((await t.fetch('/api/instruments/m-1', {}, null)).status).toBe(401);
    expect((await t.fetch('/api/no-such-route/m-1')).status).toBe(404);
    const m = await scrape(`${t.base}/metrics`);
    const http = m.samples.filter((s) => s.name === 'labtrace_http_request_duration_seconds_count');
    expect(valueOf(m, 'labtrace_http_request_duration_seconds_count', { method: 'GET', route: '/api/instruments/:id', status_class: '2xx' })).toBe(1);
    // the unknown instrument, and the request without a credential
    expect(valueOf(m, 'labtrace_http_request_duration_seconds_count', { method: 'GET', route: '/api/instruments/:id', status_class: '4xx' })).toBe(2);
    // a path no route matches: the URL is not used instead
    expect(valueOf(m, 'labtrace_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(http.some((s) => /m-1|no-such/.test(s.labels['route'] ?? ''))).toBe(false);
    // the scrapes themselves are not timed as requests of the app
    expect(http.some((s) => s.labels['route'] === '/metrics')).toBe(false);
  });

  test("the Grafana dashboard's server metrics are all served", async () => {
    const served = new Set((await scrape(`${t.base}/metrics`)).samples.map((s) => s.name));
    const used = dashboardMetrics().filter((name) => !name.startsWith('labtrace_gateway_'));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !served.has(name))).toEqual([]);
  });

  test('without the token, or with a wrong one: 401, and nothing of the metrics', async () => {
    for (const headers of [
      {},
      { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { authorization: `Bearer ${t.tokens.admin}` },
    ]) {
      const res = await fetch(`${t.base}/metrics`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = await res.text();
      expect(body).not.toMatch(/labtrace_|# HELP|# TYPE/);
    }
    // the token does not open the API
    expect((await fetch(`${t.base}/api/instruments`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(401);
  });
});

describe('without metrics configured', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer();
  });
  afterAll(() => t.stop());

  test('/metrics is not served, not even to the admin', async () => {
    for (const res of [
      await fetch(`${t.base}/metrics`),
      await t.fetch('/metrics'),
      await fetch(`${t.base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    ]) {
      expect(res.status).toBe(404);
      expect(await res.text()).not.toMatch(/labtrace_/);
    }
    // and nothing collected for them: no event-loop monitor (it cannot be stopped), no request timing
    expect(t.server.metrics.served).toBe(false);
    const names = (await t.server.metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.filter((n) => n.startsWith('labtrace_nodejs_') || n.startsWith('labtrace_process_'))).toEqual([]);
    expect(await t.fetch('/api/health')).toHaveProperty('status', 200);
    expect(await t.server.metrics.registry.getSingleMetricAsString('labtrace_http_request_duration_seconds')).not.toMatch(/_count\{/);
  });
});

describe('a listener of their own (metrics.listen)', () => {
  test('on loopback without a token: served there, and not on the HTTP port', async () => {
    const t = await startServer({ metrics: { listen: '127.0.0.1:0' } });
    try {
      const port = t.server.metrics.listenPort;
      expect(port).toBeGreaterThan(0);
      const m = await scrape(`http://127.0.0.1:${port}/metrics`, undefined);
      expect(valueOf(m, 'labtrace_ingest_batches_received_total')).toBe(0);
      expect((await fetch(`http://127.0.0.1:${port}/api/health`)).status).toBe(404);
      expect((await fetch(`${t.base}/metrics`)).status).toBe(404);
    } finally {
      await t.stop();
    }
    // the listener is closed with the server
    await expect(fetch(`http://127.0.0.1:${t.server.metrics.listenPort ?? 1}/metrics`)).rejects.toThrow();
  });

  test('with a token too: the listener asks for it', async () => {
    const t = await startServer({ metrics: { listen: '127.0.0.1:0', tokenFile } });
    try {
      const url = `http://127.0.0.1:${t.server.metrics.listenPort}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      expect(valueOf(await scrape(url), 'labtrace_live_clients')).toBe(0);
    } finally {
      await t.stop();
    }
  });
});

describe('configuration errors name the field', () => {
  const endpoint = (metrics: unknown, env: NodeJS.ProcessEnv = {}) => metricsEndpointOf(serverConfigSchema.parse({ metrics }).metrics, env);

  test('the schema: listen must be host:port, no unknown field', () => {
    expect(() => serverConfigSchema.parse({ metrics: { listen: '9464' } })).toThrow(/host:port/);
    expect(serverConfigSchema.safeParse({ metrics: { listen: '127.0.0.1:70000' } }).error?.issues[0]?.path).toEqual(['metrics', 'listen']);
    expect(serverConfigSchema.safeParse({ metrics: { token: TOKEN } }).error?.issues[0]).toMatchObject({
      path: ['metrics'],
      code: 'unrecognized_keys',
    });
  });

  test('a token shorter than 32 characters, from the file or the environment, is refused; its content is never shown', () => {
    const short = path.join(dir, 'short.token');
    writeFileSync(short, 'secret-but-too-short\n');
    expect(() => endpoint({ tokenFile: short })).toThrow(/^metrics\.tokenFile: .*short\.token: the metrics token has 20 characters; at least 32/);
    expect(() => endpoint({ tokenFile: short })).not.toThrow(/secret-but-too-short/);
    expect(() => endpoint({}, { LABTRACE_METRICS_TOKEN: 'tiny-secret' })).toThrow(
      /^environment: LABTRACE_METRICS_TOKEN: the metrics token has 11 characters/,
    );
    expect(() => endpoint({ tokenFile: path.join(dir, 'missing.token') })).toThrow(/^metrics\.tokenFile: .*missing\.token: file not found/);
    // the variable overrides the file
    expect(endpoint({ tokenFile: short }, { LABTRACE_METRICS_TOKEN: TOKEN }).token).toBe(TOKEN);
    expect(endpoint({ tokenFile }).token).toBe(TOKEN);
  });

  test('a listener off loopback needs a token', () => {
    expect(() => endpoint({ listen: '0.0.0.0:9464' })).toThrow(
      /^metrics\.listen: 0\.0\.0\.0 is not a loopback address: metrics served there need a token/,
    );
    expect(endpoint({ listen: '0.0.0.0:9464', tokenFile }).listen).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(endpoint({ listen: '[::1]:9464' })).toEqual({ token: undefined, listen: { host: '::1', port: 9464 } });
  });
});
