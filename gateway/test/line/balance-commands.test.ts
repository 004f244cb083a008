// Zero and tare against the simulated MT-SICS balance over TCP: a command the profile does not allow is
// refused and never reaches the balance; an allowed one is sent between two polls and becomes a record (good
// when done, bad with the balance's reason); through the whole gateway, the server's CMD message leads to a
// signed record on the broker.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import mqtt from 'mqtt';
import pino from 'pino';
import {
  birthMessageSchema,
  isSealedBatch,
  openBatch,
  parseBalanceProfile,
  parseVerifierKey,
  topicFor,
  verifyBatch,
  type BirthMessage,
  type Sample,
} from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { type BalanceServer, Simulator } from '@labtrace/device-sim';
import { BalanceInstrument, Gateway, gatewayConfigSchema, type PolledSample } from '../../src/index.js';
import { createIdentity } from '../../src/identity/identity.js';

const USER = 'gw-cmd';
const PASSWORD = 'correct-horse-battery-staple';
const logger = pino({ level: 'silent' });
let broker: Mosquitto;
let sim: Simulator;
let port: number;

const profile = (allowCommands: ('zero' | 'tare')[], p = port) =>
  parseBalanceProfile({
    id: 'bal-cmd',
    identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: 'B-9' },
    dialect: 'mt-sics',
    connection: { transport: 'tcp', host: '127.0.0.1', port: p },
    pollIntervalMs: 100,
    timeoutMs: 2000,
    allowCommands,
    points: [{ name: 'mass', unit: 'g' }],
  });

const balance = (): BalanceServer => sim.instruments.get('bal-cmd')?.server as BalanceServer;

beforeAll(async () => {
  broker = await Mosquitto.create({
    users: [{ username: USER, password: PASSWORD }],
    conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
  });
  await broker.start();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [{ profile: profile([], 1), model: 'constant', port: 0, pin: { mass: 12.5 } }],
  });
  await sim.start();
  port = balance().port;
});

afterAll(async () => {
  await sim.stop();
  await broker.dispose();
});

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a command the profile does not allow is refused and never sent; an allowed one is sent and recorded with its outcome', async () => {
  const source = new BalanceInstrument(profile(['tare']), logger);
  const records: PolledSample[] = [];
  source.on('samples', (s) => records.push(...s.filter((x) => x.channel === 'mass.command')));
  const before = { ...balance().received };
  await source.start();
  try {
    expect(source.command('zero')).toEqual({ queued: false, reason: 'zero: not allowed by the profile of bal-cmd (allowCommands: [tare])' });
    expect(source.getHealth().errors['command_refused']).toBe(1);

    expect(source.command('tare')).toEqual({ queued: true });
    await until(() => records.length >= 1, 'the tare record');
    expect(records[0]).toEqual({ instrument: 'bal-cmd', channel: 'mass.command', ts: expect.any(Number), value: 'tare', unit: '', quality: 'good' });
    expect((balance().received['T'] ?? 0) - (before['T'] ?? 0)).toBe(1);
    expect(balance().received['Z'] ?? 0).toBe(before['Z'] ?? 0);

    // the balance refuses everything for a while: the tare's record says so
    sim.instruments.get('bal-cmd')?.setFault({ kind: 'error-reply', code: 'EL' }, Date.now());
    source.command('tare');
    await until(() => records.length >= 2, 'the second tare record');
    expect(records[1]).toMatchObject({ value: 'tare', quality: 'bad', reason: expect.stringMatching(/^EL: logical error/) });
    sim.instruments.get('bal-cmd')?.clearFault(Date.now());
    // and weighing goes on
    const weights: PolledSample[] = [];
    source.on('samples', (s) => weights.push(...s.filter((x) => x.channel === 'mass' && x.quality === 'good')));
    await until(() => weights.length >= 1, 'a weight after the commands');
    expect(weights[0]?.value).toBe(12.5);
  } finally {
    await source.stop();
    sim.instruments.get('bal-cmd')?.clearFault(Date.now());
  }
});

test('through the gateway: the server’s CMD leads to a signed record of the zero; a tare the profile does not allow never reaches the balance', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-gw-cmd-'));
  const { verifierKey } = createIdentity('gw-cmd', dataDir);
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-cmd', lab: 'lab-c' },
    mqtt: { url: broker.url, username: USER },
    batch: { maxSamples: 10, maxDelayMs: 50 },
    instruments: [{ profile: 'bal.yaml' }],
  });
  const gateway = new Gateway({ config, profiles: [profile(['zero'])], dataDir, password: PASSWORD, instrumentPasswords: new Map() }, logger);
  const samples: Sample[] = [];
  const births: BirthMessage[] = [];
  const server = await mqtt.connectAsync(broker.url, { username: USER, password: PASSWORD, clientId: 'server-cmd' });
  server.on('message', (topic, payload) => {
    if (topic === topicFor('lab-c', 'gw-cmd', 'BIRTH')) births.push(birthMessageSchema.parse(JSON.parse(payload.toString('utf8'))));
    if (topic !== topicFor('lab-c', 'gw-cmd', 'DATA') || !isSealedBatch(payload)) return;
    const { signed, samples: batch } = openBatch(payload);
    verifyBatch(signed, batch, parseVerifierKey(verifierKey), 'gw-cmd');
    samples.push(...batch);
    void server.publishAsync(topicFor('lab-c', 'gw-cmd', 'ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
  });
  await server.subscribeAsync([topicFor('lab-c', 'gw-cmd', 'DATA'), topicFor('lab-c', 'gw-cmd', 'BIRTH')], { qos: 1 });
  const before = { ...balance().received };
  await gateway.start();
  try {
    await until(() => samples.some((s) => s.channel === 'mass' && s.quality === 'good'), 'a weight');
    const cmd = topicFor('lab-c', 'gw-cmd', 'CMD');
    await server.publishAsync(cmd, JSON.stringify({ v: 1, cmd: 'instrument', instrument: 'bal-cmd', command: 'tare' }), { qos: 1 });
    await server.publishAsync(cmd, JSON.stringify({ v: 1, cmd: 'instrument', instrument: 'bal-cmd', command: 'zero' }), { qos: 1 });
    await until(() => samples.some((s) => s.channel === 'mass.command'), 'the zero record');
  } finally {
    await gateway.stop();
    await server.endAsync();
  }
  // the BIRTH tells the server what it may ask for: the zero its profile allows, not the tare
  expect(births.at(-1)?.instruments).toEqual([expect.objectContaining({ id: 'bal-cmd', protocol: 'balance', commands: ['zero'] })]);
  const records = samples.filter((s) => s.channel === 'mass.command');
  expect(records).toEqual([expect.objectContaining({ instrument: 'bal-cmd', value: 'zero', quality: 'good', unit: '' })]);
  expect((balance().received['Z'] ?? 0) - (before['Z'] ?? 0)).toBe(1);
  expect(balance().received['T'] ?? 0).toBe(before['T'] ?? 0);
}, 60_000);
