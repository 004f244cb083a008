// The gateway's own clock against a real NTP server (chronyd on a loopback port), the gateway made 10 s ahead: its
// HEALTH messages (read from a real broker) carry the offset, its metrics port serves it, its log has one alarm;
// clock.ntp in the config file is checked like the rest.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { healthMessageSchema, parseModbusProfile, topicFor, type HealthMessage, type ModbusProfileInput } from '@labtrace/protocols';
import { Chrony } from '@labtrace/protocols/test/chrony';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { parsePrometheusText, valueOf } from '@labtrace/protocols/test/prometheus-text';
import { Simulator } from '@labtrace/device-sim';
import { Gateway, loadGatewayConfig } from '../../src/index.js';
import { createIdentity } from '../../src/identity/identity.js';

jest.setTimeout(60_000);

const USER = 'gw-clk';
const PASSWORD = 'correct-horse-battery-staple';
const LAB = 'lab-c';

const profileInput = (port: number): ModbusProfileInput => ({
  id: 'climate-c',
  identity: { maker: 'Test', model: 'Chamber', serialNumber: 'C-1' },
  connection: { transport: 'tcp', host: '127.0.0.1', port },
  pollIntervalMs: 200,
  timeoutMs: 200,
  points: [{ name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' }],
});

let chrony: Chrony;
let broker: Mosquitto;
let sim: Simulator;
let gateway: Gateway;
let server: MqttClient;
let dir: string;
const healths: HealthMessage[] = [];
const logLines: { level: number; msg: string; kind?: string }[] = [];

beforeAll(async () => {
  chrony = await Chrony.start();
  broker = await Mosquitto.create({
    users: [{ username: USER, password: PASSWORD }],
    conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
  });
  await broker.start();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 50 },
    instruments: [{ profile: parseModbusProfile(profileInput(1)), model: 'constant', port: 0 }],
  });
  await sim.start();
  dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-clock-'));
  writeFileSync(path.join(dir, 'climate.json'), JSON.stringify(profileInput(sim.instruments.get('climate-c')?.server.port ?? 0)));
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    [
      `gateway: { id: ${USER}, lab: ${LAB} }`,
      `mqtt: { url: '${broker.url}', username: ${USER} }`,
      'instruments: [{ profile: climate.json }]',
      "metrics: { listen: '127.0.0.1:0' }",
      `clock: { ntp: { servers: ['${chrony.server}'], everySeconds: 1, maxOffsetMs: 1000, timeoutMs: 500 } }`,
    ].join('\n'),
  );
  const resolved = await loadGatewayConfig(path.join(dir, 'gateway.yaml'), { LABTRACE_GATEWAY_PASSWORD: PASSWORD });
  createIdentity(USER, resolved.dataDir);
  server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-c' });
  server.on('message', (_topic, payload) => healths.push(healthMessageSchema.parse(JSON.parse(payload.toString()))));
  await server.subscribeAsync(topicFor(LAB, USER, 'HEALTH'), { qos: 1 });
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as { level: number; msg: string }) });
  gateway = new Gateway(resolved, logger, () => Date.now() + 10_000);
  await gateway.start();
});

afterAll(async () => {
  await gateway.stop();
  await server.endAsync(true);
  await sim.stop();
  await broker.dispose();
  await chrony.stop();
});

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a gateway clock 10 s ahead of NTP: in its HEALTH messages, its metrics, and one alarm in its log', async () => {
  const health = await until('a HEALTH message with the clock', () => healths.find((h) => h.clock !== undefined));
  expect(health.clock).toMatchObject({ beyondBound: true, answering: true });
  expect(Math.abs((health.clock?.offsetMs ?? 0) - 10_000)).toBeLessThan(500);
  const text = await (await fetch(`http://127.0.0.1:${gateway.metrics?.port}/metrics`)).text();
  const m = parsePrometheusText(text);
  expect(Math.abs((valueOf(m, 'labtrace_clock_offset_seconds', {}) ?? 0) - 10)).toBeLessThan(0.5);
  expect(valueOf(m, 'labtrace_clock_ntp_up', {})).toBe(1);
  // several rounds later (one a second), still one alarm
  await until(
    'three more rounds',
    async () => ((await gateway.clock.ntp.poll()).measuredAt ?? 0) > (health.clock?.measuredAt ?? 0) + 2000 || undefined,
  );
  const alarms = logLines.filter((l) => l.kind === 'clock-offset');
  expect(alarms).toEqual([
    expect.objectContaining({
      level: 50,
      msg: expect.stringMatching(/^ALARM: clock-offset: the gateway's clock is (9\.\d|10\.\d) s ahead of NTP \(bound 1\.0 s\)/),
    }),
  ]);
});

test('clock.ntp is checked: a server that is no host:port, a bound below 1 ms', async () => {
  for (const [ntp, message] of [
    ["{ servers: ['ntp.example:99999'] }", /clock\.ntp\.servers\.0|clock\.ntp\.servers\[0\]/],
    ['{ servers: [], maxOffsetMs: 0 }', /clock\.ntp\.maxOffsetMs/],
  ] as const) {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        `gateway: { id: ${USER}, lab: ${LAB} }`,
        `mqtt: { url: '${broker.url}', username: ${USER} }`,
        'instruments: [{ profile: climate.json }]',
        `clock: { ntp: ${ntp} }`,
      ].join('\n'),
    );
    await expect(loadGatewayConfig(file, { LABTRACE_GATEWAY_PASSWORD: PASSWORD })).rejects.toThrow(message);
  }
});
