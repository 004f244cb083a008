// External broker mode against a real Mosquitto that runs the shipped deploy/mosquitto configuration
// and ACL: the server as a client with a persistent session, gateways as ordinary MQTT clients.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import { LabtraceError, parseTopic, topicFor, type MessageKind } from '@labtrace/protocols';
import { Mosquitto, type MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { defaultClientId, ExternalBroker, type ExternalBrokerOptions } from '../../src/broker/external-broker.js';
import { loadServerConfig } from '../../src/config.js';
import { freePort } from '../helpers/ports.js';

// server/dist/test/broker/external-broker.test.js -> deploy/mosquitto at the repository root
const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));
const LAB = 'lab-t';
const SERVER: MosquittoUser = { username: 'labtrace-server', password: 'server-secret-for-tests' };
/** a second server node: the shipped configuration makes the username the client id, so each node has its own user */
const SERVER2: MosquittoUser = { username: 'labtrace-server-2', password: 'server-2-secret-for-tests' };
const GW1: MosquittoUser = { username: 'gw-1', password: 'gw-1-secret-for-tests' };
const GW2: MosquittoUser = { username: 'gw-2', password: 'gw-2-secret-for-tests' };

let broker: Mosquitto;
const buses: ExternalBroker[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  const acl = readFileSync(`${DEPLOY}labtrace.acl`, 'utf8');
  const serverBlock = acl.slice(acl.indexOf('user labtrace-server\n')).replace('user labtrace-server\n', `user ${SERVER2.username}\n`);
  broker = await Mosquitto.create({
    users: [SERVER, SERVER2, GW1, GW2],
    acl: `${acl}\n${serverBlock}`,
    conf: readFileSync(`${DEPLOY}mosquitto.conf`, 'utf8'),
  });
  await broker.start();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(buses.splice(0).map((b) => b.stop()));
});
afterAll(async () => {
  await broker.dispose();
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nmosquitto:\n${broker.output}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Recorded {
  bus: ExternalBroker;
  /** `connected gw`, `disconnected gw` and `<KIND> <gateway> <payload>`, in the order emitted */
  events: string[];
  /** payloads of the messages of one kind */
  payloads(kind: MessageKind): string[];
  logs: string[];
}

function newBus(options: Partial<ExternalBrokerOptions> = {}): Recorded {
  const logs: string[] = [];
  const bus = new ExternalBroker({
    lab: LAB,
    url: broker.url,
    username: SERVER.username,
    password: SERVER.password,
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
    ...options,
  });
  buses.push(bus);
  const events: string[] = [];
  bus.on('gatewayConnected', (gw) => events.push(`connected ${gw}`));
  bus.on('gatewayDisconnected', (gw) => events.push(`disconnected ${gw}`));
  bus.on('message', (topic, payload) => {
    const t = parseTopic(topic);
    events.push(`${t?.kind} ${t?.gateway} ${payload.toString()}`);
  });
  const payloads = (kind: MessageKind) => events.filter((e) => e.startsWith(`${kind} `)).map((e) => e.split(' ').slice(2).join(' '));
  return { bus, events, payloads, logs };
}

async function startBus(options: Partial<ExternalBrokerOptions> = {}): Promise<Recorded> {
  const recorded = newBus(options);
  await recorded.bus.start();
  return recorded;
}

/** A gateway's MQTT client, as the gateway's uplink connects (client id = gateway id). */
function gateway(user: MosquittoUser, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(broker.url, {
      clientId: user.username,
      username: user.username,
      password: user.password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    });
    clients.push(client);
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

/** Collects `<topic> <payload>` of what a client receives. */
function inbox(client: MqttClient): string[] {
  const received: string[] = [];
  client.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
  return received;
}

const birth = (gw: string) => JSON.stringify({ v: 1, gateway: gw, session: 1, version: 'test', instruments: [] });
const data = (gw: string, batch: number) =>
  JSON.stringify({
    v: 1,
    gateway: gw,
    batch,
    samples: [{ seq: batch, instrument: 'i-1', channel: 'force', ts: 1_700_000_000_000 + batch, value: batch, unit: 'kN', quality: 'good' }],
  });
const ack = (batch: number) => JSON.stringify({ v: 1, batch });

describe('connecting', () => {
  test('a wrong password is refused with a clear message that does not contain it', async () => {
    const { bus } = newBus({ password: 'not-the-password' });
    const err = await bus.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LabtraceError);
    expect((err as LabtraceError).code).toBe('E_AUTH');
    expect((err as Error).message).toMatch(/refused user "labtrace-server".*(username or password|not authorized)/);
    expect((err as Error).message).not.toContain('not-the-password');
    expect(bus.running).toBe(false);
  });

  test('a broker that cannot be reached fails start() after the timeout, naming the address', async () => {
    const port = await freePort(); // nothing listens there
    const { bus } = newBus({ url: `mqtt://127.0.0.1:${port}`, connectTimeoutMs: 2000 });
    const err = await bus.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as LabtraceError).code).toBe('E_CONFIG');
    expect((err as Error).message).toMatch(new RegExp(`cannot reach the MQTT broker at mqtt://127\\.0\\.0\\.1:${port} within 2 s: .*ECONNREFUSED`));
  });

  test('credentials in the url are refused, so that they cannot reach a log', () => {
    expect(() => newBus({ url: `mqtt://labtrace-server:secret@127.0.0.1:${broker.port}` })).toThrow(/not in the url/);
    expect(() => newBus({ url: `http://127.0.0.1:${broker.port}` })).toThrow(/expected mqtt:\/\/ or mqtts:\/\//);
  });
});

describe('a gateway publishes through the lab broker', () => {
  test('BIRTH and DATA reach the bus in order, and the server ACK reaches the gateway', async () => {
    const { bus, events } = await startBus();
    expect(bus.running).toBe(true);
    const gw = await gateway(GW1);
    const acks = inbox(gw);
    await gw.subscribeAsync(topicFor(LAB, 'gw-1', 'ACK'), { qos: 1 });

    await gw.publishAsync(topicFor(LAB, 'gw-1', 'BIRTH'), birth('gw-1'), { qos: 1 });
    // Another lab on the same broker: the ACL lets the gateway publish there, but it is not this server's lab.
    await gw.publishAsync(topicFor('other-lab', 'gw-1', 'DATA'), data('gw-1', 99), { qos: 1 });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', 0), { qos: 1 });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', 1), { qos: 1 });
    await waitFor(() => events.length >= 4, 'BIRTH and two DATA');
    expect(events).toEqual([`connected gw-1`, `BIRTH gw-1 ${birth('gw-1')}`, `DATA gw-1 ${data('gw-1', 0)}`, `DATA gw-1 ${data('gw-1', 1)}`]);
    expect(bus.connectedGateways()).toEqual(['gw-1']);

    await bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(1));
    await waitFor(() => acks.length >= 1, 'the ACK at the gateway');
    expect(acks).toEqual([`${topicFor(LAB, 'gw-1', 'ACK')} ${ack(1)}`]);

    const death = JSON.stringify({ v: 1, gateway: 'gw-1', session: 1 });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'DEATH'), death, { qos: 1 });
    await waitFor(() => events.includes('disconnected gw-1'), 'gatewayDisconnected');
    expect(events.slice(4)).toEqual([`DEATH gw-1 ${death}`, 'disconnected gw-1']);
    expect(bus.connectedGateways()).toEqual([]);
  });
});

describe('the shipped ACL', () => {
  test("a gateway cannot publish as another gateway, nor forge the server's ACK", async () => {
    const { bus, events } = await startBus();
    const gw1 = await gateway(GW1);
    const gw2 = await gateway(GW2);
    const gw2Acks = inbox(gw2);
    await gw2.subscribeAsync(topicFor(LAB, 'gw-2', 'ACK'), { qos: 1 });

    // Mosquitto acknowledges a refused QoS 1 publish (MQTT 3.1.1 has no way to say no) and drops it.
    await gw1.publishAsync(topicFor(LAB, 'gw-2', 'DATA'), data('gw-2', 7), { qos: 1 });
    await gw1.publishAsync(topicFor(LAB, 'gw-2', 'ACK'), ack(7), { qos: 1 });
    await gw1.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', 8), { qos: 1 });
    // One client's messages arrive in order: once its own DATA is here, the forged one would have been too.
    await waitFor(() => events.some((e) => e.startsWith('DATA gw-1')), "gw-1's own DATA");
    expect(events).toEqual(['connected gw-1', `DATA gw-1 ${data('gw-1', 8)}`]);

    await bus.publish(topicFor(LAB, 'gw-2', 'ACK'), ack(3));
    await waitFor(() => gw2Acks.length >= 1, "the server's ACK at gw-2");
    expect(gw2Acks).toEqual([`${topicFor(LAB, 'gw-2', 'ACK')} ${ack(3)}`]);
  });

  test("a gateway cannot read another gateway's ACK, not even through #", async () => {
    const { bus } = await startBus();
    const gw1 = await gateway(GW1);
    const received = inbox(gw1);
    // Mosquitto may grant or refuse these; either way nothing of gw-2's may arrive.
    await gw1.subscribeAsync([topicFor(LAB, 'gw-2', 'ACK'), '#', topicFor(LAB, 'gw-1', 'ACK')], { qos: 1 }).catch(() => undefined);
    await bus.publish(topicFor(LAB, 'gw-2', 'ACK'), ack(5));
    await bus.publish(topicFor(LAB, 'gw-2', 'CMD'), '{"v":1,"cmd":"rebirth"}');
    await bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(6));
    // The server's messages reach gw-1 in the order published: its own ACK comes last.
    await waitFor(() => received.some((r) => r.startsWith(topicFor(LAB, 'gw-1', 'ACK'))), "gw-1's own ACK");
    expect(received).toEqual([`${topicFor(LAB, 'gw-1', 'ACK')} ${ack(6)}`]);
  });

  test("a gateway's credentials cannot take over another client's connection by its client id", async () => {
    const { bus, events } = await startBus();
    const gw2 = await gateway(GW2);
    const gw2Acks = inbox(gw2);
    await gw2.subscribeAsync(topicFor(LAB, 'gw-2', 'ACK'), { qos: 1 });
    let gw2Closed = false;
    gw2.on('close', () => (gw2Closed = true));

    // gw-1 asks for gw-2's and the server's client ids; the broker gives it its username instead.
    await gateway(GW1, { clientId: 'gw-2' });
    await gateway(GW1, { clientId: `labtrace-server-${LAB}` });
    // Both still connected: gw-2 receives an ACK from the server, and the server a DATA from gw-2.
    await bus.publish(topicFor(LAB, 'gw-2', 'ACK'), ack(1));
    await waitFor(() => gw2Acks.length >= 1, 'the ACK at gw-2');
    await gw2.publishAsync(topicFor(LAB, 'gw-2', 'DATA'), data('gw-2', 1), { qos: 1 });
    await waitFor(() => events.includes(`DATA gw-2 ${data('gw-2', 1)}`), "gw-2's DATA at the server");
    expect(gw2Closed).toBe(false);
    expect(bus.running).toBe(true);
  });
});

describe('the persistent session', () => {
  test('DATA published while the server is away is delivered, in order, when it comes back', async () => {
    const first = await startBus();
    await first.bus.stop();
    expect(first.bus.running).toBe(false);

    const gw = await gateway(GW1);
    // PUBACK from the broker: the message is queued in the server's session.
    for (const batch of [100, 101, 102]) await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', batch), { qos: 1 });

    const second = await startBus();
    const mine = () => second.payloads('DATA').filter((p) => [100, 101, 102].some((b) => p === data('gw-1', b)));
    await waitFor(() => mine().length >= 3, 'the three queued DATA');
    expect(mine()).toEqual([data('gw-1', 100), data('gw-1', 101), data('gw-1', 102)]);
    expect(second.bus.connectedGateways()).toContain('gw-1');
  });

  test('after a broker restart the bus reconnects by itself, with its session, and keeps receiving', async () => {
    const { bus, events, logs } = await startBus();
    await broker.restart();

    // A gateway that comes back after the restart publishes; the server gets it whether its own
    // reconnection comes before or after (the session, saved at shutdown, queues it meanwhile).
    const gw = await gateway(GW1);
    const acks = inbox(gw);
    await gw.subscribeAsync(topicFor(LAB, 'gw-1', 'ACK'), { qos: 1 });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', 200), { qos: 1 });
    await waitFor(() => events.includes(`DATA gw-1 ${data('gw-1', 200)}`), 'DATA after the restart');
    await waitFor(() => bus.running, 'the bus to be connected');
    expect(logs.join('')).toMatch(/lost the connection to the external MQTT broker/);
    expect(logs.join('')).toMatch(/reconnected to the external MQTT broker; its session kept/);

    await bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(200));
    await waitFor(() => acks.length >= 1, 'the ACK after the restart');
    expect(logs.join('')).not.toContain(SERVER.password);
  });

  test('an ACK published while the broker is down is sent once it is back', async () => {
    const { bus } = await startBus();
    // A gateway with a persistent session of its own, so that its subscription outlives the restart.
    const gw = await gateway(GW1, { clean: false, reconnectPeriod: 250 });
    const acks = inbox(gw);
    await gw.subscribeAsync(topicFor(LAB, 'gw-1', 'ACK'), { qos: 1 });

    await broker.stop();
    await waitFor(() => !bus.running, 'the bus to notice');
    const published = bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(300));
    await broker.start();
    await published;
    await waitFor(() => acks.length >= 1, 'the ACK at the gateway');
    expect(acks).toEqual([`${topicFor(LAB, 'gw-1', 'ACK')} ${ack(300)}`]);
  });

  test('stop() returns while the broker is down', async () => {
    const { bus } = await startBus();
    await broker.stop();
    try {
      await bus.stop();
      expect(bus.running).toBe(false);
    } finally {
      await broker.start();
    }
  });
});

test('the shipped configuration closes a connection that declares a packet above max_packet_size, at its header', async () => {
  const { hostname, port } = new URL(broker.url);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const received: Buffer[] = [];
  socket.on('data', (b: Buffer) => received.push(b));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // CONNECT, remaining length 200 MiB (4 length bytes), and nothing of its body
  socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]));
  await closed;
  expect(Buffer.concat(received)).toHaveLength(0);
});

describe('several nodes in a shared subscription group (sharedGroup)', () => {
  const GROUP = 'nodes';
  const node2 = { username: SERVER2.username, password: SERVER2.password };
  const dataOf = (r: Recorded) => r.payloads('DATA').filter((p) => p.includes('"gw-1"'));

  test("each DATA reaches one member, BIRTH every member, and either member's ACK reaches the gateway", async () => {
    const a = await startBus({ sharedGroup: GROUP });
    const b = await startBus({ sharedGroup: GROUP, ...node2 });
    expect(a.bus.sharedIngest).toBe(true);
    const gw = await gateway(GW1);
    const acks = inbox(gw);
    await gw.subscribeAsync(topicFor(LAB, 'gw-1', 'ACK'), { qos: 1 });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'BIRTH'), birth('gw-1'), { qos: 1 });
    for (let batch = 0; batch < 6; batch++) await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', batch), { qos: 1 });
    await waitFor(() => dataOf(a).length + dataOf(b).length >= 6, 'six DATA over the two members');
    // the BIRTH came before the DATA on each member (one publisher's messages stay in order)
    expect(a.payloads('BIRTH')).toEqual([birth('gw-1')]);
    expect(b.payloads('BIRTH')).toEqual([birth('gw-1')]);
    expect([...dataOf(a), ...dataOf(b)].sort()).toEqual([0, 1, 2, 3, 4, 5].map((n) => data('gw-1', n)).sort());
    expect(dataOf(a).length).toBeGreaterThan(0);
    expect(dataOf(b).length).toBeGreaterThan(0);

    await a.bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(0));
    await b.bus.publish(topicFor(LAB, 'gw-1', 'ACK'), ack(1));
    await waitFor(() => acks.length >= 2, 'both ACKs at the gateway');
    expect(acks.sort()).toEqual([ack(0), ack(1)].map((p) => `${topicFor(LAB, 'gw-1', 'ACK')} ${p}`));
  });

  test('a node joining the group with a session kept from a run without it gets only its share', async () => {
    // the node ran alone before: its persistent session holds the plain DATA subscription
    const alone = await startBus({ ...node2 });
    await alone.bus.stop();
    const a = await startBus({ sharedGroup: GROUP });
    const b = await startBus({ sharedGroup: GROUP, ...node2 });
    const gw = await gateway(GW1);
    for (let batch = 10; batch < 14; batch++) await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', batch), { qos: 1 });
    // a HEALTH reaches both members after the DATA before it: then every DATA is where it goes
    const health = JSON.stringify({ v: 1, gateway: 'gw-1', instruments: [] });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'HEALTH'), health, { qos: 1 });
    await waitFor(() => a.payloads('HEALTH').length > 0 && b.payloads('HEALTH').length > 0, 'HEALTH on both members');
    expect([...dataOf(a), ...dataOf(b)].sort()).toEqual([10, 11, 12, 13].map((n) => data('gw-1', n)).sort());
  });

  test('a member that stops leaves the group: the others take every batch meanwhile', async () => {
    const a = await startBus({ sharedGroup: GROUP });
    const b = await startBus({ sharedGroup: GROUP, ...node2 });
    await b.bus.stop();
    const gw = await gateway(GW1);
    for (let batch = 20; batch < 24; batch++) await gw.publishAsync(topicFor(LAB, 'gw-1', 'DATA'), data('gw-1', batch), { qos: 1 });
    await waitFor(() => dataOf(a).length >= 4, 'every DATA at the member still running');
    expect(dataOf(a)).toEqual([20, 21, 22, 23].map((n) => data('gw-1', n)));
    // and nothing waited for the stopped member in its session
    const back = await startBus({ sharedGroup: GROUP, ...node2 });
    const health = JSON.stringify({ v: 1, gateway: 'gw-1', instruments: [] });
    await gw.publishAsync(topicFor(LAB, 'gw-1', 'HEALTH'), health, { qos: 1 });
    await waitFor(() => back.payloads('HEALTH').length > 0, 'HEALTH at the member that came back');
    expect(dataOf(back)).toEqual([]);
  });

  test('the default client id of a member names its host; without a group it stays what it was', () => {
    expect(defaultClientId('lab-a', undefined, 'node-1.example')).toBe('labtrace-server-lab-a');
    expect(defaultClientId('lab-a', 'nodes', 'node-1.example')).toBe('labtrace-server-lab-a-node-1.example');
    expect(defaultClientId('lab-a', 'nodes', 'näde 2')).toBe('labtrace-server-lab-a-n-de-2');
  });

  test('server.yaml: a sharedGroup or clientId that is not one MQTT topic level is refused, naming the field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-share-'));
    const load = (external: string) => {
      const file = path.join(dir, 'server.yaml');
      writeFileSync(file, `mqtt:\n  external:\n    url: mqtt://127.0.0.1:1883\n    username: labtrace-server\n${external}`);
      return loadServerConfig(file, {});
    };
    for (const group of ['a/b', 'a+', '#', '', 'x'.repeat(65)])
      await expect(load(`    sharedGroup: '${group}'\n`)).rejects.toThrow(/mqtt\.external\.sharedGroup: expected 1 to 64 letters/);
    await expect(load(`    clientId: 'node 1'\n`)).rejects.toThrow(/mqtt\.external\.clientId: expected 1 to 128 letters/);
    const config = await load(`    sharedGroup: lab-a.nodes\n    clientId: labtrace-node-1\n`);
    expect(config.mqtt.external).toMatchObject({ sharedGroup: 'lab-a.nodes', clientId: 'labtrace-node-1' });
  });
});
