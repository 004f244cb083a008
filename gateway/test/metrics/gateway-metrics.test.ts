// The gateway's metrics port while it polls the Modbus simulator and sends to a real broker (Mosquitto), where a client
// plays the server: unacknowledged batches pile up in the outbox, then acknowledged ones leave it; polls, their latency
// and, once the simulator is gone, errors and the open breaker show. Loaded from a config file, as the gateway is.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { isSealedBatch, openBatch, parseModbusProfile, topicFor, type ModbusProfileInput } from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { parsePrometheusText, valueOf, type PromText } from '@labtrace/protocols/test/prometheus-text';
import { Simulator } from '@labtrace/device-sim';
import { Gateway, loadGatewayConfig } from '../../src/index.js';
import { createIdentity } from '../../src/identity/identity.js';

// the waits below (until) give a loaded machine a minute; the tests get two
jest.setTimeout(120_000);

const USER = 'gw-met';
const PASSWORD = 'correct-horse-battery-staple';
const LAB = 'lab-m';
const TOKEN = 'f'.repeat(8) + '0123456789abcdef0123456789abcdef';

const profileInput = (port: number): ModbusProfileInput => ({
  id: 'climate-m',
  identity: { maker: 'Test', model: 'Chamber', serialNumber: 'M-1' },
  connection: { transport: 'tcp', host: '127.0.0.1', port },
  pollIntervalMs: 50,
  timeoutMs: 200,
  points: [
    { name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' },
    { name: 'setpoint', register: 'holding', address: 2, type: 'int16', scale: 0.1, unit: '°C' },
  ],
});

let broker: Mosquitto;
let sim: Simulator;
let gateway: Gateway;
let server: MqttClient;
let url: string;
/** the batches the playing server has seen, and those it acknowledged */
const seen = new Set<number>();
const acked = new Set<number>();
let acking = false;

const ack = (batch: number): void => {
  acked.add(batch);
  void server.publishAsync(topicFor(LAB, USER, 'ACK'), JSON.stringify({ v: 1, batch }), { qos: 1 });
};

async function scrape(): Promise<PromText> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

async function until(what: string, check: (m: PromText) => boolean, ms = 60_000): Promise<PromText> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = await scrape();
    if (check(m)) return m;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const v = (m: PromText, name: string, labels: Record<string, string> = {}): number => valueOf(m, name, labels) ?? Number.NaN;

beforeAll(async () => {
  broker = await Mosquitto.create({
    users: [{ username: USER, password: PASSWORD }],
    conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
  });
  await broker.start();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [{ profile: parseModbusProfile(profileInput(1)), model: 'constant', port: 0 }],
  });
  await sim.start();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-metrics-'));
  const port = sim.instruments.get('climate-m')?.server.port ?? 0;
  writeFileSync(path.join(dir, 'climate.json'), JSON.stringify(profileInput(port)));
  writeFileSync(path.join(dir, 'metrics.token'), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    [
      `gateway: { id: ${USER}, lab: ${LAB} }`,
      `mqtt: { url: '${broker.url}', username: ${USER} }`,
      'batch: { maxSamples: 10, maxDelayMs: 50 }',
      'instruments: [{ profile: climate.json }]',
      "metrics: { listen: '127.0.0.1:0', tokenFile: metrics.token }",
    ].join('\n'),
  );
  const resolved = await loadGatewayConfig(path.join(dir, 'gateway.yaml'), { LABTRACE_GATEWAY_PASSWORD: PASSWORD });
  createIdentity(USER, resolved.dataDir);
  server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-m' });
  server.on('message', (_topic, payload) => {
    if (!isSealedBatch(payload)) return;
    const batch = openBatch(payload).signed.header.batch;
    seen.add(batch);
    if (acking) ack(batch);
  });
  await server.subscribeAsync(topicFor(LAB, USER, 'DATA'), { qos: 1 });
  gateway = new Gateway(resolved, pino({ level: 'silent' }));
  await gateway.start();
  url = `http://127.0.0.1:${gateway.metrics?.port}/metrics`;
});

afterAll(async () => {
  await gateway.stop();
  await server.endAsync(true);
  await sim.stop();
  await broker.dispose();
});

test('without the token, or with a wrong one: 401 and nothing of the metrics; other paths 404', async () => {
  for (const headers of [{}, { authorization: `Bearer ${TOKEN}0` }, { authorization: TOKEN }]) {
    const res = await fetch(url, { headers });
    expect(res.status).toBe(401);
    expect(await res.text()).not.toMatch(/labtrace_|# TYPE/);
  }
  expect((await fetch(url.replace('/metrics', '/'), { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
});

test('unacknowledged batches pile up in the outbox; acknowledged ones leave it; polls and their latency are counted', async () => {
  const first = await until('a few batches signed and sent', (m) => v(m, 'labtrace_gateway_batches_sent_total') >= 5);
  expect(v(first, 'labtrace_gateway_uplink_connected')).toBe(1);
  expect(v(first, 'labtrace_gateway_batches_acknowledged_total')).toBe(0);
  expect(v(first, 'labtrace_gateway_batches_signed_total')).toBe(v(first, 'labtrace_gateway_batches_stored_total'));
  expect(v(first, 'labtrace_gateway_batches_signed_total')).toBeGreaterThanOrEqual(5);
  // nothing acknowledged: every sample polled is held, the oldest batch ages
  expect(v(first, 'labtrace_gateway_outbox_measurements', { sink: 'mqtt' })).toBeGreaterThanOrEqual(5 * 2);
  expect(v(first, 'labtrace_gateway_outbox_oldest_unacked_age_seconds', { sink: 'mqtt' })).toBeGreaterThan(0);
  const polls = v(first, 'labtrace_gateway_polls_total', { instrument: 'climate-m' });
  expect(polls).toBeGreaterThan(0);
  expect(v(first, 'labtrace_gateway_poll_latency_seconds_count', { instrument: 'climate-m' })).toBeGreaterThan(0);
  expect(v(first, 'labtrace_gateway_breaker_state', { instrument: 'climate-m', state: 'closed' })).toBe(1);
  expect(v(first, 'labtrace_gateway_instrument_connected', { instrument: 'climate-m' })).toBe(1);
  // the simulator answers every read
  expect(first.samples.filter((s) => s.name === 'labtrace_gateway_poll_errors_total')).toEqual([]);

  const held = v(first, 'labtrace_gateway_outbox_measurements', { sink: 'mqtt' });
  const backlog = seen.size;
  acking = true;
  for (const batch of seen) ack(batch);
  const after = await until(
    'the backlog acknowledged',
    (m) =>
      v(m, 'labtrace_gateway_batches_acknowledged_total') >= backlog &&
      v(m, 'labtrace_gateway_outbox_measurements', { sink: 'mqtt' }) < held &&
      v(m, 'labtrace_gateway_outbox_oldest_unacked_age_seconds', { sink: 'mqtt' }) < 1,
  );
  // each acknowledged batch counted once, never more than the server acknowledged
  expect(v(after, 'labtrace_gateway_batches_acknowledged_total')).toBeLessThanOrEqual(acked.size);
  // the polls go on and are counted (waited for: the acknowledgements may all arrive before the next poll)
  await until('more polls counted', (m) => v(m, 'labtrace_gateway_polls_total', { instrument: 'climate-m' }) > polls);
});

test('a device that stops answering: poll errors counted, the breaker opens', async () => {
  await sim.stop();
  const m = await until('the breaker open', (s) => v(s, 'labtrace_gateway_breaker_state', { instrument: 'climate-m', state: 'open' }) === 1);
  const errors = m.samples.filter((s) => s.name === 'labtrace_gateway_poll_errors_total' && s.labels['instrument'] === 'climate-m');
  expect(errors.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThanOrEqual(3);
  expect(v(m, 'labtrace_gateway_breaker_state', { instrument: 'climate-m', state: 'closed' })).toBe(0);
  expect(v(m, 'labtrace_gateway_instrument_connected', { instrument: 'climate-m' })).toBe(0);
});

test("the Grafana dashboard's gateway metrics are all served (errors included, after the device stopped)", async () => {
  // gateway/dist/test/metrics -> the repository root
  const text = readFileSync(fileURLToPath(new URL('../../../../deploy/grafana/labtrace.json', import.meta.url)), 'utf8');
  const dashboard = JSON.parse(text) as { panels: { targets?: { expr: string }[] }[] };
  const used = new Set(
    dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((target) => target.expr.match(/\blabtrace_gateway_[a-z0-9_]+/g) ?? []),
  );
  expect(used.size).toBeGreaterThan(5);
  const served = new Set((await scrape()).samples.map((s) => s.name));
  expect([...used].filter((name) => !served.has(name))).toEqual([]);
});

test('without NTP configured the clock gauges are named, without a value (not an offset of 0 s)', async () => {
  const m = await scrape();
  expect(m.types.get('labtrace_clock_offset_seconds')).toBe('gauge');
  expect(m.samples.filter((s) => s.name.startsWith('labtrace_clock_'))).toEqual([]);
});
