// A balance through the whole gateway: the simulated balance over TCP, the gateway (its key, outbox and
// uplink) and a real broker (Mosquitto). The pinned weight arrives numbered and signed, with its unit
// and quality; the birth message names the balance's channel and unit; health reports the balance.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import pino from 'pino';
import {
  birthMessageSchema,
  healthMessageSchema,
  isSealedBatch,
  openBatch,
  parseBalanceProfile,
  parseVerifierKey,
  topicFor,
  verifyBatch,
  type Sample,
} from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { Simulator } from '@labtrace/device-sim';
import { Gateway, gatewayConfigSchema } from '../../src/index.js';
import { createIdentity } from '../../src/identity/identity.js';

const USER = 'gw-bal';
const PASSWORD = 'correct-horse-battery-staple';
let broker: Mosquitto;
let sim: Simulator;

const profile = (port: number) =>
  parseBalanceProfile({
    id: 'bal-e2e',
    identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-1' },
    dialect: 'mt-sics',
    connection: { transport: 'tcp', host: '127.0.0.1', port },
    pollIntervalMs: 100,
    timeoutMs: 500,
    points: [{ name: 'mass', unit: 'g' }],
  });

beforeAll(async () => {
  broker = await Mosquitto.create({
    users: [{ username: USER, password: PASSWORD }],
    conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
  });
  await broker.start();
  sim = new Simulator({ config: { host: '127.0.0.1', tickMs: 20 }, instruments: [{ profile: profile(1), model: 'constant', port: 0 }] });
  await sim.start();
});

afterAll(async () => {
  await sim.stop();
  await broker.dispose();
});

test('a pinned weight reaches the broker numbered and signed, with its unit and quality; birth and health name the balance', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-bal-e2e-'));
  const { verifierKey } = createIdentity('gw-bal', dataDir);
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-bal', lab: 'lab-b' },
    mqtt: { url: broker.url, username: USER },
    batch: { maxSamples: 10, maxDelayMs: 50 },
    instruments: [{ profile: 'bal.yaml' }],
  });
  const port = sim.instruments.get('bal-e2e')?.server.port ?? 0;
  sim.instruments.get('bal-e2e')?.pin({ mass: 200.0003 }, Date.now());
  const gateway = new Gateway(
    { config, profiles: [profile(port)], dataDir, password: PASSWORD, instrumentPasswords: new Map() },
    pino({ level: 'silent' }),
  );

  const samples: Sample[] = [];
  const births: unknown[] = [];
  const healths: unknown[] = [];
  const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-bal' });
  server.on('message', (topic, payload) => {
    if (topic === topicFor('lab-b', 'gw-bal', 'DATA') && isSealedBatch(payload)) {
      const { signed, samples: batch } = openBatch(payload);
      verifyBatch(signed, batch, parseVerifierKey(verifierKey), 'gw-bal');
      samples.push(...batch);
      void server.publishAsync(topicFor('lab-b', 'gw-bal', 'ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
    } else if (topic === topicFor('lab-b', 'gw-bal', 'BIRTH')) births.push(JSON.parse(payload.toString()));
    else if (topic === topicFor('lab-b', 'gw-bal', 'HEALTH')) healths.push(JSON.parse(payload.toString()));
  });
  await server.subscribeAsync(
    (['DATA', 'BIRTH', 'HEALTH'] as const).map((k) => topicFor('lab-b', 'gw-bal', k)),
    { qos: 1 },
  );
  await gateway.start();
  try {
    const deadline = Date.now() + 20_000;
    while (!(samples.some((s) => s.quality === 'good') && healths.length > 0)) {
      if (Date.now() > deadline) throw new Error(`timed out: ${samples.length} samples, ${healths.length} health messages`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await gateway.stop();
    await server.endAsync();
  }
  const weights = samples.filter((s) => s.instrument === 'bal-e2e');
  expect(weights[0]).toMatchObject({ channel: 'mass', value: 200.0003, unit: 'g', quality: 'uncertain', reason: 'unstable' });
  expect(weights.find((s) => s.quality === 'good')).toMatchObject({ channel: 'mass', value: 200.0003, unit: 'g' });
  // numbered without a gap
  const seqs = samples.map((s) => s.seq).sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) + i));
  const birth = birthMessageSchema.parse(births[0]);
  expect(birth.instruments).toEqual([
    {
      id: 'bal-e2e',
      identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-1' },
      protocol: 'balance',
      channels: [{ name: 'mass', unit: 'g' }],
    },
  ]);
  const health = healthMessageSchema.parse(healths[healths.length - 1]);
  expect(health.instruments.find((h) => h.instrument === 'bal-e2e')).toMatchObject({ connected: true });
}, 60_000);
