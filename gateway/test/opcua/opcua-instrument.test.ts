// OPC UA instruments against the simulated testing machine of device-sim (a real node-opcua server on a
// free loopback port, LADS-like: DeviceSet / device / FunctionalUnitSet / Frame / FunctionSet / force /
// SensorValue). Pinned values arrive unchanged with their units, by NodeId and by browse path; status
// codes become qualities; Sign and SignAndEncrypt work with trusted certificates and an untrusted server
// certificate is refused; user-name authentication, and X.509 user certificates (trusted, or refused); a server restart recovers without a sample numbered
// twice; a dead endpoint on the same gateway delays no other; `browse` suggests a profile that validates
// and connects. Certificates are made once for the file (their generation is CPU-heavy).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { parse } from 'yaml';
import {
  deviceProfileSchema,
  healthMessageSchema,
  isSealedBatch,
  openBatch,
  parseOpcuaProfile,
  topicFor,
  type OpcuaProfile,
  type OpcuaProfileInput,
  type Sample,
} from '@labtrace/protocols';
import { Mosquitto } from '@labtrace/protocols/test/mosquitto';
import { type OpcuaServer, Simulator, type SimInstrument } from '@labtrace/device-sim';
import { Gateway, gatewayConfigSchema, gatewayPki, OpcuaInstrument, qualityOf, type PolledSample } from '../../src/index.js';
import { browseEndpoint } from '../../src/opcua/browse.js';
import { createIdentity } from '../../src/identity/identity.js';
import { main, printPlan } from '../../src/cli.js';

const logger = pino({ level: 'silent' });
const USER = 'operator';
const PASSWORD = 'tensile-0815';
let dir: string;
let sim: Simulator;
let utm: SimInstrument;
let server: OpcuaServer;
/** a gateway whose certificate the server trusts, and which trusts the server's */
let trustedDataDir: string;
/** a gateway the server trusts, but which was never told to trust the server */
let untrustingDataDir: string;
let ns: number;
/** X.509 user certificates with their keys: one the server trusts as a user's, one it does not */
let userCertificates: Record<'trusted' | 'untrusted', { certificateFile: string; privateKeyFile: string }>;

const identity = { maker: 'Labtrace Test', model: 'UTM-OPC', serialNumber: 'U-1' };

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function profile(
  input: Partial<Omit<OpcuaProfileInput, 'protocol' | 'connection'>> & { connection?: Partial<OpcuaProfileInput['connection']> },
): OpcuaProfile {
  const { connection, ...rest } = input;
  return parseOpcuaProfile({
    id: 'utm-opc',
    identity,
    subscription: { publishingIntervalMs: 50, samplingIntervalMs: 20, queueSize: 100 },
    points: [
      { name: 'force', nodeId: `ns=${ns};s=utm-opc.Frame.force.SensorValue`, unit: 'N' },
      {
        name: 'extension',
        browsePath: `/${ns}:DeviceSet/${ns}:utm-opc/${ns}:FunctionalUnitSet/${ns}:Frame/${ns}:FunctionSet/${ns}:extension/${ns}:SensorValue`,
        unit: 'mm',
      },
    ],
    ...rest,
    connection: { transport: 'opcua', endpointUrl: server.endpointUrl, timeoutMs: 3000, ...connection },
  });
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts a source, collects its samples until `done` holds, stops it. */
async function run(
  source: OpcuaInstrument,
  done: (samples: PolledSample[]) => boolean,
  what: string,
  act?: (samples: PolledSample[]) => Promise<void>,
): Promise<PolledSample[]> {
  const samples: PolledSample[] = [];
  source.on('samples', (batch) => samples.push(...batch));
  await source.start();
  try {
    if (act) await act(samples);
    await until(what, () => done(samples));
  } finally {
    await source.stop();
  }
  return samples;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-opcua-'));
  trustedDataDir = path.join(dir, 'gw-trusted');
  untrustingDataDir = path.join(dir, 'gw-untrusting');
  const trusted = await gatewayPki(trustedDataDir);
  const untrusting = await gatewayPki(untrustingDataDir);
  // the server trusts both gateways' certificates: a refusal can only come from the gateway's side
  const simPki = path.join(dir, 'sim-pki');
  mkdirSync(path.join(simPki, 'trusted', 'certs'), { recursive: true });
  copyFileSync(trusted.certificateFile, path.join(simPki, 'trusted', 'certs', 'gateway-trusted.pem'));
  copyFileSync(untrusting.certificateFile, path.join(simPki, 'trusted', 'certs', 'gateway-untrusting.pem'));
  // X.509 users: the server trusts the certificate of the first gateway as a user's, not the second's
  mkdirSync(path.join(simPki, 'users', 'trusted', 'certs'), { recursive: true });
  copyFileSync(trusted.certificateFile, path.join(simPki, 'users', 'trusted', 'certs', 'user-trusted.pem'));
  userCertificates = {
    trusted: { certificateFile: trusted.certificateFile, privateKeyFile: trusted.privateKeyFile },
    untrusted: { certificateFile: untrusting.certificateFile, privateKeyFile: untrusting.privateKeyFile },
  };
  // a profile for the simulator: its nodes are laid out by the simulator; the ids it serves are asked of it
  // the simulator lays its nodes out by point name (a browse path is no id of its own); the ids it serves are asked of it
  const simProfile = parseOpcuaProfile({
    id: 'utm-opc',
    identity,
    connection: { transport: 'opcua', endpointUrl: 'opc.tcp://127.0.0.1:4840' },
    points: [
      { name: 'force', browsePath: '/2:force', unit: 'N' },
      { name: 'extension', browsePath: '/2:extension', unit: 'mm' },
    ],
  });
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20, control: { host: '127.0.0.1', port: 0 } },
    instruments: [
      {
        profile: simProfile,
        model: 'constant',
        port: 0,
        opcua: { pkiDir: simPki, secure: true, trustAllClients: false, allowAnonymous: true, users: [{ username: USER, password: PASSWORD }] },
      },
    ],
  });
  await sim.start();
  const instrument = sim.instruments.get('utm-opc');
  if (instrument === undefined) throw new Error('no simulated instrument');
  utm = instrument;
  server = utm.server as OpcuaServer;
  ns = Number(/^ns=(\d+);/.exec(server.nodeIdOf('force'))?.[1]);
  await trusted.manager.trustCertificate(pemToDer(readFileSync(path.join(simPki, 'own', 'certs', 'certificate.pem'), 'utf8')));
}, 120_000);

afterAll(async () => {
  await sim.stop();
});

describe('status codes', () => {
  test('Good is good, Uncertain* uncertain and Bad* bad, both with the status name as the reason', () => {
    expect(qualityOf({ value: 0, name: 'Good' })).toEqual({ quality: 'good' });
    expect(qualityOf({ value: 0x408f0000, name: 'UncertainLastUsableValue' })).toEqual({ quality: 'uncertain', reason: 'UncertainLastUsableValue' });
    expect(qualityOf({ value: 0x808b0000, name: 'BadSensorFailure' })).toEqual({ quality: 'bad', reason: 'BadSensorFailure' });
  });
});

test('pinned values arrive unchanged with their units, by NodeId and by browse path, stamped with the source time', async () => {
  const before = Date.now();
  utm.pin({ force: 1234.5678, extension: 12.345 }, Date.now());
  const samples = await run(
    new OpcuaInstrument(profile({}), { logger, dataDir: trustedDataDir }),
    (s) => s.some((x) => x.channel === 'force' && x.value === 1234.5678) && s.some((x) => x.channel === 'extension' && x.value === 12.345),
    'the pinned force and extension',
  );
  const force = samples.find((s) => s.channel === 'force' && s.value === 1234.5678);
  expect(force).toMatchObject({ instrument: 'utm-opc', unit: 'N', quality: 'good' });
  expect(samples.find((s) => s.channel === 'extension' && s.value === 12.345)).toMatchObject({ unit: 'mm', quality: 'good' });
  // the server's source timestamp, taken when the simulator wrote the pinned value
  expect(force?.ts).toBeGreaterThanOrEqual(before - 1);
});

test('a Bad status becomes a bad sample with the status name as the reason; Uncertain uncertain; Good again good', async () => {
  utm.pin({ force: 10.5, extension: 1 }, Date.now());
  const source = new OpcuaInstrument(profile({}), { logger, dataDir: trustedDataDir });
  const samples = await run(
    source,
    (s) => s.some((x) => x.channel === 'force' && x.quality === 'good' && x.value === 11.5),
    'bad, uncertain, then good again',
    async (s) => {
      await until('the first force', () => s.some((x) => x.channel === 'force' && x.value === 10.5));
      // on demand, as an operator would: the simulator's control API
      const put = await fetch(`http://127.0.0.1:${sim.control?.port ?? 0}/instruments/utm-opc/status`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'force', status: 'BadSensorFailure' }),
      });
      expect(put.status).toBe(200);
      await until('the bad sample', () => s.some((x) => x.channel === 'force' && x.quality === 'bad'));
      server.setStatus('force', 'UncertainLastUsableValue');
      await until('the uncertain sample', () => s.some((x) => x.channel === 'force' && x.quality === 'uncertain'));
      server.setStatus('force', undefined);
      utm.pin({ force: 11.5 }, Date.now());
    },
  );
  expect(samples.find((s) => s.channel === 'force' && s.quality === 'bad')).toMatchObject({ value: null, unit: 'N', reason: 'BadSensorFailure' });
  expect(samples.find((s) => s.channel === 'force' && s.quality === 'uncertain')).toMatchObject({ value: 10.5, reason: 'UncertainLastUsableValue' });
  expect(source.getHealth().errors['status_BadSensorFailure']).toBe(1);
});

test('a value that is not a finite number (NaN on the wire) is a bad sample with the reason, never a number', async () => {
  utm.pin({ extension: Number.NaN, force: 3.5 }, Date.now());
  const samples = await run(
    new OpcuaInstrument(profile({}), { logger, dataDir: trustedDataDir }),
    (s) => s.some((x) => x.channel === 'extension') && s.some((x) => x.channel === 'force'),
    'the NaN extension',
  );
  expect(samples.find((s) => s.channel === 'extension')).toMatchObject({
    value: null,
    quality: 'bad',
    reason: 'not a finite number: NaN',
    unit: 'mm',
  });
});

test.each([
  ['SignAndEncrypt', 42.25],
  ['Sign', 41.5],
] as const)('%s with certificates trusted both ways delivers the values', async (securityMode, force) => {
  utm.pin({ force }, Date.now());
  const source = new OpcuaInstrument(profile({ connection: { securityMode, securityPolicy: 'Basic256Sha256' } }), {
    logger,
    dataDir: trustedDataDir,
  });
  const samples = await run(source, (s) => s.some((x) => x.channel === 'force' && x.value === force), `the force over ${securityMode}`);
  expect(samples.find((s) => s.value === force)).toMatchObject({ unit: 'N', quality: 'good' });
});

test('an X.509 user certificate the server trusts signs in; one it does not trust is refused as an identity, with no sample', async () => {
  utm.pin({ force: 9.125 }, Date.now());
  const connection = (which: 'trusted' | 'untrusted') =>
    ({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', auth: { kind: 'certificate', ...userCertificates[which] } }) as const;
  const good = await run(
    new OpcuaInstrument(profile({ connection: connection('trusted') }), { logger, dataDir: trustedDataDir }),
    (s) => s.some((x) => x.value === 9.125),
    'the force with a user certificate',
  );
  expect(good.find((s) => s.value === 9.125)).toMatchObject({ quality: 'good' });

  const refused = new OpcuaInstrument(profile({ connection: connection('untrusted') }), { logger, dataDir: trustedDataDir });
  const samples: PolledSample[] = [];
  refused.on('samples', (b) => samples.push(...b));
  await refused.start();
  try {
    await until('the refusal', () => (refused.getHealth().errors['auth'] ?? 0) > 0);
  } finally {
    await refused.stop();
  }
  expect(refused.getHealth().connected).toBe(false);
  expect(refused.getHealth().problem).toContain('refused the user identity');
  expect(samples).toEqual([]);
});

test('a server certificate not trusted is refused: a clear health reason, and the certificate placed in rejected/ for an operator', async () => {
  const source = new OpcuaInstrument(profile({ connection: { securityMode: 'SignAndEncrypt' } }), { logger, dataDir: untrustingDataDir });
  const samples: PolledSample[] = [];
  source.on('samples', (b) => samples.push(...b));
  await source.start();
  try {
    await until('the refusal', () => (source.getHealth().errors['certificate_untrusted'] ?? 0) > 0);
  } finally {
    await source.stop();
  }
  const health = source.getHealth();
  expect(health.connected).toBe(false);
  const pki = await gatewayPki(untrustingDataDir);
  expect(health.problem).toContain('not trusted');
  expect(health.problem).toContain(pki.rejectedDir);
  expect(readdirSync(pki.rejectedDir).length).toBeGreaterThan(0);
  expect(samples).toEqual([]);
});

test('user-name authentication: the right password connects, a wrong one is reported and never logged', async () => {
  const passwordFile = path.join(dir, 'opcua-password');
  writeFileSync(passwordFile, PASSWORD);
  utm.pin({ force: 7.75 }, Date.now());
  const auth = { kind: 'username', username: USER, passwordFile } as const;
  const good = await run(
    new OpcuaInstrument(profile({ connection: { auth } }), { logger, dataDir: trustedDataDir, password: PASSWORD }),
    (s) => s.some((x) => x.value === 7.75),
    'the force with a user name',
  );
  expect(good.find((s) => s.value === 7.75)).toMatchObject({ quality: 'good' });

  const lines: string[] = [];
  const recording = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  const wrong = new OpcuaInstrument(profile({ connection: { auth } }), { logger: recording, dataDir: trustedDataDir, password: 'not-the-password' });
  await wrong.start();
  try {
    await until('the refusal', () => (wrong.getHealth().errors['auth'] ?? 0) > 0);
  } finally {
    await wrong.stop();
  }
  expect(wrong.getHealth()).toMatchObject({ connected: false });
  expect(wrong.getHealth().problem).toContain('refused the user identity');
  expect(lines.join('\n')).not.toContain('not-the-password');
});

test('a server restart: session and subscription come back, a value sent again is not taken twice, new values arrive', async () => {
  utm.pin({ force: 100.5, extension: 1.5 }, Date.now());
  const source = new OpcuaInstrument(profile({}), { logger, dataDir: trustedDataDir });
  const samples = await run(
    source,
    (s) => s.some((x) => x.channel === 'force' && x.value === 200.5),
    'the force after the restart',
    async (s) => {
      await until('the force before the restart', () => s.some((x) => x.channel === 'force' && x.value === 100.5));
      utm.setFault({ kind: 'disconnect', ms: 500 }, Date.now());
      await until('the lost connection', () => !source.getHealth().connected);
      await until('the reconnection', () => source.getHealth().connected, 60_000);
      // the restarted server sends its current values again, with their source times: dropped
      await until('the repeated values', () => (source.getHealth().errors['duplicate'] ?? 0) >= 2);
      utm.pin({ force: 200.5 }, Date.now());
    },
  );
  const keys = samples.map((s) => `${s.channel}@${s.ts}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(samples.filter((s) => s.channel === 'force' && s.value === 100.5)).toHaveLength(1);
  expect(samples.filter((s) => s.channel === 'extension' && s.value === 1.5)).toHaveLength(1);
  expect(source.getHealth().errors['connect']).toBeGreaterThan(0);
}, 90_000);

/** A TCP relay between the gateway and the server: cut() drops both sides' sockets, and refuses new ones for a while. */
async function relay(target: number): Promise<{ port: number; cut(ms: number): void; close(): void }> {
  const open = new Set<net.Socket>();
  let downUntil = 0;
  const server = net.createServer((inbound) => {
    if (Date.now() < downUntil) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(target, '127.0.0.1');
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      open.add(a);
      a.on('data', (d) => b.write(d));
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut(ms) {
      downUntil = Date.now() + ms;
      for (const s of open) s.destroy();
    },
    close() {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}

test('a cut connection while the server keeps the session: the values that changed meanwhile all arrive, none twice', async () => {
  const link = await relay(server.port);
  utm.pin({ force: 1000.5, extension: 2 }, Date.now());
  // sampling interval 0: the server reports every change (exception-based), none is skipped between two samples
  const source = new OpcuaInstrument(
    profile({
      connection: { endpointUrl: `opc.tcp://127.0.0.1:${link.port}` },
      subscription: { publishingIntervalMs: 50, samplingIntervalMs: 0, queueSize: 100 },
    }),
    { logger, dataDir: trustedDataDir },
  );
  const during = [1001.5, 1002.5, 1003.5];
  try {
    const samples = await run(
      source,
      // every value: a gap is filled by Republish, which may end after the newest value came
      (s) => [...during, 1004.5].every((v) => s.some((x) => x.channel === 'force' && x.value === v)),
      'every force written during and after the cut',
      async (s) => {
        await until('the force before the cut', () => s.some((x) => x.channel === 'force' && x.value === 1000.5));
        link.cut(1500);
        await until('the lost connection', () => !source.getHealth().connected);
        // the server samples each of these while the gateway is away, and queues them in the subscription
        for (const force of during) {
          utm.pin({ force }, Date.now());
          await until(`the server holding ${force}`, () => server.valueOf('force') === force);
        }
        await until('the reconnection', () => source.getHealth().connected, 60_000);
        utm.pin({ force: 1004.5 }, Date.now());
      },
    );
    // in the order of their source times (a republished notification may come after a newer one)
    const forces = samples
      .filter((x) => x.channel === 'force')
      .sort((a, b) => a.ts - b.ts)
      .map((x) => x.value);
    expect(forces).toEqual([1000.5, ...during, 1004.5]);
    const keys = samples.map((x) => `${x.channel}@${x.ts}`);
    expect(new Set(keys).size).toBe(keys.length);
  } finally {
    link.close();
  }
}, 90_000);

test('browse: the LADS structure becomes a profile suggestion that validates, plans and connects', async () => {
  utm.pin({ force: 5.5, extension: 6.5 }, Date.now());
  const found = await browseEndpoint(server.endpointUrl, { dataDir: trustedDataDir });
  expect(found).toHaveLength(1);
  const [first] = found;
  if (first === undefined) throw new Error('no device');
  expect(first.device.points.map((p) => [p.functionalUnit, p.function, p.unit])).toEqual([
    ['Frame', 'force', 'N'],
    ['Frame', 'extension', 'mm'],
  ]);
  // what `labtrace gateway browse` prints is that YAML, and the profile schema accepts it
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string) => printed.push(chunk) > 0;
  try {
    await main(['browse', server.endpointUrl, '--data-dir', trustedDataDir]);
  } finally {
    process.stdout.write = write;
  }
  expect(printed.join('')).toBe(first.text);
  expect(first.text).toContain('Frame / force / SensorValue [N]');
  const parsed = deviceProfileSchema.parse(parse(printed.join('')));
  expect(parsed.protocol).toBe('opcua');
  if (parsed.protocol !== 'opcua') throw new Error('not an OPC UA profile');
  expect(parsed.identity).toEqual(identity);
  const file = path.join(dir, 'suggested.yaml');
  writeFileSync(file, first.text);
  const plan: string[] = [];
  await printPlan(file, (l) => plan.push(l));
  expect(plan.join('\n')).toContain('2 monitored item(s)');
  const samples = await run(
    new OpcuaInstrument(parsed, { logger, dataDir: trustedDataDir }),
    (s) => s.some((x) => x.channel === 'force' && x.value === 5.5) && s.some((x) => x.channel === 'extension' && x.value === 6.5),
    'the values through the suggested profile',
  );
  expect(samples.find((s) => s.channel === 'force')).toMatchObject({ unit: 'N', quality: 'good' });
});

test('one dead OPC UA endpoint does not delay another instrument on the same gateway; health names the dead one and why', async () => {
  // a peer that accepts and never answers: the worst kind of dead endpoint
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const USER_MQTT = 'gw-opc';
  const MQTT_PASSWORD = 'correct-horse-battery-staple';
  const broker = await Mosquitto.create({
    users: [{ username: USER_MQTT, password: MQTT_PASSWORD }],
    conf: ['allow_anonymous false', 'persistence false', 'listener 1883'].join('\n'),
  });
  await broker.start();
  utm.pin({ force: 321.5, extension: 1 }, Date.now());
  const dead = parseOpcuaProfile({
    id: 'utm-dead',
    identity: { ...identity, serialNumber: 'U-dead' },
    connection: { transport: 'opcua', endpointUrl: `opc.tcp://127.0.0.1:${silentPort}`, timeoutMs: 60_000 },
    points: [{ name: 'force', nodeId: 'ns=2;s=force', unit: 'N' }],
  });
  const config = gatewayConfigSchema.parse({
    gateway: { id: 'gw-opc', lab: 'lab-o' },
    mqtt: { url: broker.url, username: USER_MQTT },
    batch: { maxSamples: 10, maxDelayMs: 50 },
    instruments: [{ profile: 'dead.yaml' }, { profile: 'live.yaml' }],
  });
  // the gateway's own data directory for its key and outbox; its OPC UA PKI is the trusted one's
  const gatewayDir = path.join(dir, 'gw-e2e');
  createIdentity('gw-opc', gatewayDir);
  cpSync(path.join(trustedDataDir, 'opcua-pki'), path.join(gatewayDir, 'opcua-pki'), { recursive: true });
  const gateway = new Gateway(
    { config, profiles: [dead, profile({})], dataDir: gatewayDir, password: MQTT_PASSWORD, instrumentPasswords: new Map() },
    logger,
  );
  const samples: Sample[] = [];
  const healths: unknown[] = [];
  const client = await mqtt.connectAsync(broker.url, { username: USER_MQTT, password: MQTT_PASSWORD, clientId: 'server-opc' });
  client.on('message', (topic, payload) => {
    if (topic === topicFor('lab-o', 'gw-opc', 'DATA') && isSealedBatch(payload)) {
      const { signed, samples: batch } = openBatch(payload);
      samples.push(...batch);
      void client.publishAsync(topicFor('lab-o', 'gw-opc', 'ACK'), JSON.stringify({ v: 1, batch: signed.header.batch }), { qos: 1 });
    } else if (topic === topicFor('lab-o', 'gw-opc', 'HEALTH')) healths.push(JSON.parse(payload.toString()));
  });
  const liveHealth = () => healths.find((m) => healthMessageSchema.parse(m).instruments.some((h) => h.instrument === 'utm-opc' && h.connected));
  await client.subscribeAsync([topicFor('lab-o', 'gw-opc', 'DATA'), topicFor('lab-o', 'gw-opc', 'HEALTH')], { qos: 1 });
  await gateway.start();
  try {
    // the live machine's value arrives while the dead one's first connection attempt still hangs
    await until('the live force', () => samples.some((s) => s.instrument === 'utm-opc' && s.value === 321.5));
    expect(sockets.length).toBeGreaterThan(0);
    expect(gateway.sources.find((s) => s.id === 'utm-dead')?.getHealth().connected).toBe(false);
    await until('a health message with the live one connected', () => liveHealth() !== undefined);
  } finally {
    await gateway.stop();
    await client.endAsync();
    await broker.dispose();
    for (const s of sockets) s.destroy();
    silent.close();
  }
  const live = samples.find((s) => s.instrument === 'utm-opc' && s.value === 321.5);
  expect(live).toMatchObject({ channel: 'force', unit: 'N', quality: 'good' });
  const health = healthMessageSchema.parse(liveHealth());
  expect(health.instruments.find((h) => h.instrument === 'utm-dead')).toMatchObject({ connected: false, problem: 'not connected yet' });
}, 90_000);
