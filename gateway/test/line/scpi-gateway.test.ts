// A SCPI multimeter through the whole gateway: the simulated meter over TCP, the gateway (its key, outbox
// and uplink) and a real broker (Mosquitto). The pinned values arrive numbered and signed, with their units
// and qualities, one cycle's readings together; an error the meter logs reaches the server as uncertain
// readings with the reason, and health carries the count and the problem.
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
  parseScpiProfile,
  parseVerifierKey,
  topicFor,
  verifyBatch,
  type Sample,
} from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { Simulator } from '@labtrace/device-sim';
import { Gateway, gatewayConfigSchema } from '../../src/index.js';
import { createIdentity } from '../../src/identity/identity.js';

const USER = 'gw-scpi';
const PASSWORD = 'correct-horse-battery-staple';
let broker: Mosquitto;
let sim: Simulator;

const profile = (port: number) =>
  parseScpiProfile({
    id: 'dmm-e2e',
    identity: { maker: 'Keysight', model: '34465A', serialNumber: 'MY1' },
    connection: { transport: 'tcp', host: '127.0.0.1', port },
    idn: { manufacturer: 'Keysight Technologies', model: '34465A', serialNumber: 'MY1' },
    pollIntervalMs: 100,
    timeoutMs: 500,
    points: [
      { name: 'volt', query: 'MEAS:VOLT:DC?', unit: 'V' },
      { name: 'res', query: 'MEAS:RES?', unit: 'Ohm' },
    ],
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

test('pinned readings reach the broker numbered and signed with their units; an instrument error arrives as uncertain readings with the reason', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-scpi-e2e-'));
  const { verifierKey } = createIdentity('gw-scpi', dataDir);
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-scpi', lab: 'lab-s' },
    mqtt: { url: broker.url, username: USER },
    batch: { maxSamples: 10, maxDelayMs: 50 },
    instruments: [{ profile: 'dmm.yaml' }],
  });
  const dmm = sim.instruments.get('dmm-e2e');
  const port = dmm?.server.port ?? 0;
  dmm?.pin({ volt: 10.000012, res: 99.875 }, Date.now());
  const gateway = new Gateway(
    { config, profiles: [profile(port)], dataDir, password: PASSWORD, instrumentPasswords: new Map() },
    pino({ level: 'silent' }),
  );

  const samples: Sample[] = [];
  const births: unknown[] = [];
  const healths: unknown[] = [];
  const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-scpi' });
  server.on('message', (topic, payload) => {
    if (topic === topicFor('lab-s', 'gw-scpi', 'DATA') && isSealedBatch(payload)) {
      const { signed, samples: batch } = openBatch(payload);
      verifyBatch(signed, batch, parseVerifierKey(verifierKey), 'gw-scpi');
      samples.push(...batch);
      void server.publishAsync(topicFor('lab-s', 'gw-scpi', 'ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
    } else if (topic === topicFor('lab-s', 'gw-scpi', 'BIRTH')) births.push(JSON.parse(payload.toString()));
    else if (topic === topicFor('lab-s', 'gw-scpi', 'HEALTH')) healths.push(JSON.parse(payload.toString()));
  });
  await server.subscribeAsync(
    (['DATA', 'BIRTH', 'HEALTH'] as const).map((k) => topicFor('lab-s', 'gw-scpi', k)),
    { qos: 1 },
  );
  const waitFor = async (what: string, check: () => boolean): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${samples.length} samples, ${healths.length} health messages`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await gateway.start();
  try {
    await waitFor('good readings', () => samples.some((s) => s.channel === 'res' && s.quality === 'good'));
    dmm?.setFault({ kind: 'error-queue', code: -230, message: 'Data corrupt or stale', count: 1 }, Date.now());
    await waitFor('an uncertain reading', () => samples.some((s) => s.quality === 'uncertain'));
    await waitFor('health with the error', () =>
      healths.some((h) => healthMessageSchema.parse(h).instruments.some((i) => (i.errors['error_-230'] ?? 0) > 0)),
    );
  } finally {
    await gateway.stop();
    await server.endAsync();
    dmm?.clearFault(Date.now());
  }
  const good = samples.filter((s) => s.quality === 'good');
  expect(good.find((s) => s.channel === 'volt')).toMatchObject({ instrument: 'dmm-e2e', value: 10.000012, unit: 'V' });
  expect(good.find((s) => s.channel === 'res')).toMatchObject({ value: 99.875, unit: 'Ohm' });
  for (const s of good) expect(s.value).toBe(s.channel === 'volt' ? 10.000012 : 99.875);
  const uncertain = samples.filter((s) => s.quality === 'uncertain');
  expect(uncertain.map((s) => s.channel).sort()).toEqual(['res', 'volt']);
  expect(uncertain[0]).toMatchObject({ reason: 'instrument error: -230,"Data corrupt or stale"' });
  // numbered without a gap
  const seqs = samples.map((s) => s.seq).sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) + i));
  const birth = birthMessageSchema.parse(births[0]);
  expect(birth.instruments).toEqual([
    {
      id: 'dmm-e2e',
      identity: { maker: 'Keysight', model: '34465A', serialNumber: 'MY1' },
      protocol: 'scpi',
      channels: [
        { name: 'volt', unit: 'V' },
        { name: 'res', unit: 'Ohm' },
      ],
    },
  ]);
  const withError = healths.map((h) => healthMessageSchema.parse(h)).find((h) => h.instruments.some((i) => (i.errors['error_-230'] ?? 0) > 0));
  expect(withError?.instruments[0]).toMatchObject({ instrument: 'dmm-e2e', connected: true, errors: { instrument_error: 1 } });
}, 60_000);
