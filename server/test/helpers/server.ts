// An in-process server on free loopback ports with a temporary data directory, and test gateways
// that sign and chain their batches as a real gateway does.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import {
  formatSignerKey,
  formatVerifierKey,
  headerHash,
  parseSignerKey,
  publicKeyFromSeed,
  sealBatch,
  signBatch,
  topicFor,
  type CmdMessage,
  type DataMessage,
  type Sample,
  type SignerKey,
} from '@labtrace/protocols';
import { hashPassword, LabtraceServer, ROLES, serverConfigSchema, type Role, type ServerConfig } from '../../src/index.js';
import type { ServerOptions } from '../../src/server.js';
import { testDatabaseUrl } from './test-store.js';

export const LAB = 'lab-t';
export const GATEWAY_PASSWORD = 'gateway-secret-for-tests';
/** the password of every test user (the user is named after its role; the client belongs to ORGANIZATION) */
export const USER_PASSWORD = 'user-secret-for-tests';
export const ORGANIZATION = 'org-a';

export interface TestServer {
  server: LabtraceServer;
  config: ServerConfig;
  base: string;
  mqttUrl: string;
  password: string;
  readerPassword: string;
  /** an API token per role */
  tokens: Record<Role, string>;
  /** fetch on the server's base URL as a role (admin unless told), or anonymously with role null */
  fetch(path: string, init?: RequestInit, role?: Role | null): Promise<Response>;
  stop(): Promise<void>;
}

/** Creates one user per role (admin exists already) and an API token for each. */
export async function addTestUsers(server: LabtraceServer): Promise<Record<Role, string>> {
  const system = { username: 'test-setup', role: 'system' };
  if ((await server.users.organizations()).length === 0)
    await server.users.createOrganization(system, ORGANIZATION, 'Client A', 'quality@client-a.example');
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) {
    if ((await server.users.get(role)) === undefined)
      await server.users.create(system, {
        username: role,
        role,
        password: USER_PASSWORD,
        ...(role === 'client' ? { organization: ORGANIZATION } : {}),
        ...(role === 'auditor' ? { grantUntil: Date.now() + 86_400_000 } : {}),
      });
    tokens[role] = (await server.users.createApiToken(system, role, 'tests', 86_400_000)).token;
  }
  return tokens;
}

/** The signing key of a test gateway (deterministic per id). */
export function seedOf(gateway: string): Uint8Array {
  return new Uint8Array(32).map((_, i) => (gateway.charCodeAt(i % gateway.length) * 7 + i) % 256);
}

export function signerOf(gateway: string, seed = seedOf(gateway)): SignerKey {
  return parseSignerKey(formatSignerKey(gateway, seed));
}

export const TEST_GATEWAYS = ['gw-a', 'gw-b', 'gw-s', 'gw-p'];

/** the sample times test servers accept around their clock, either way (20 years) */
export const TEST_CLOCK_WINDOW_MS = 20 * 365 * 86_400_000;

export async function startServer(
  overrides: Partial<Record<keyof ServerConfig, unknown>> = {},
  logger: pino.Logger = pino({ level: 'silent' }),
  options: Omit<ServerOptions, 'adminPassword'> = {},
): Promise<TestServer> {
  const readerPassword = 'reader-secret-for-tests';
  const gatewayHash = await hashPassword(GATEWAY_PASSWORD);
  const url = 'database' in overrides ? undefined : await testDatabaseUrl();
  const config = serverConfigSchema.parse({
    lab: LAB,
    dataDir: mkdtempSync(path.join(tmpdir(), 'labtrace-srv-')),
    http: { host: '127.0.0.1', port: 0 },
    mqtt: { host: '127.0.0.1', port: 0 },
    broker: {
      users: [
        ...TEST_GATEWAYS.map((id) => ({ username: id, passwordHash: gatewayHash, role: 'gateway', gateway: id })),
        { username: 'viewer', passwordHash: await hashPassword(readerPassword), role: 'reader' },
      ],
    },
    gateways: TEST_GATEWAYS.map((id) => ({ id, key: formatVerifierKey(id, publicKeyFromSeed(seedOf(id))) })),
    // test instruments come from BIRTH messages without calibration records; the calibration tests turn the
    // requirement on (an expired calibration blocks a run either way)
    calibration: { requireForRuns: false },
    // the name and address its reports print
    laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown' },
    // test records are dated at a fixed time (`records`, 2027-01-15), whatever the clock says: no clock-skew events
    // for them; the clock-skew tests pass the server's defaults
    ingest: { maxClockSkewMs: TEST_CLOCK_WINDOW_MS, maxAgeMs: TEST_CLOCK_WINDOW_MS },
    ...(url === undefined ? {} : { database: { url } }),
    ...overrides,
  });
  const server = new LabtraceServer(config, logger, { ...options, adminPassword: USER_PASSWORD });
  await server.start();
  const tokens = await addTestUsers(server);
  const base = `http://127.0.0.1:${server.httpPort}`;
  const t: TestServer = {
    tokens,
    fetch: (p, init = {}, role = 'admin') => {
      const headers = new Headers(init.headers);
      if (role !== null) headers.set('authorization', `Bearer ${t.tokens[role]}`);
      return fetch(`${base}${p}`, { ...init, headers });
    },
    server,
    config,
    base,
    mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
    password: GATEWAY_PASSWORD,
    readerPassword,
    stop: () => server.stop(),
  };
  return t;
}

export const records = (instrument: string, first: number, n: number, value = 1): Sample[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: first + i,
    instrument,
    channel: 'c',
    ts: 1_800_000_000_000 + first + i,
    value,
    unit: '',
    quality: 'good' as const,
  }));

/** A gateway speaking MQTT to the test server: signs and chains its batches, collects ACKs and CMDs. */
export class TestGateway {
  readonly acks: number[] = [];
  readonly cmds: CmdMessage[] = [];
  private prev: Uint8Array | null = null;
  private nextBatch = 0;

  private constructor(
    readonly id: string,
    readonly client: MqttClient,
    public key: SignerKey,
  ) {
    client.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as { batch: number } & CmdMessage;
      if (topic.endsWith('/ACK')) this.acks.push(body.batch);
      else this.cmds.push(body);
    });
  }

  static async connect(
    t: Pick<TestServer, 'mqttUrl' | 'password'>,
    id: string,
    options: { password?: string; username?: string; key?: SignerKey; url?: string; mqtt?: mqtt.IClientOptions } = {},
  ): Promise<TestGateway> {
    const client = await mqtt.connectAsync(options.url ?? t.mqttUrl, {
      clientId: id,
      username: options.username ?? id,
      password: options.password ?? t.password,
      reconnectPeriod: 0,
      ...options.mqtt,
    });
    await client.subscribeAsync([topicFor(LAB, id, 'ACK'), topicFor(LAB, id, 'CMD')], { qos: 1 });
    return new TestGateway(id, client, options.key ?? signerOf(id));
  }

  async birth(...instruments: string[]): Promise<void> {
    await this.announce(
      instruments.map((i) => ({ id: i, identity: { maker: 'm', model: 'x', serialNumber: '1' }, channels: [{ name: 'c', unit: '' }] })),
    );
  }

  /** A BIRTH with the instruments as given (identity, channels). */
  async announce(
    instruments: { id: string; identity: Record<string, string>; channels: { name: string; unit: string }[]; commands?: ('zero' | 'tare')[] }[],
  ): Promise<void> {
    await this.client.publishAsync(
      topicFor(LAB, this.id, 'BIRTH'),
      JSON.stringify({ v: 1, gateway: this.id, session: 1, version: 't', instruments }),
      { qos: 1 },
    );
  }

  /** The next batch of the chain, signed (not yet sent). */
  sign(samples: Sample[], batch = this.nextBatch): DataMessage {
    const signed = signBatch(this.key, this.id, batch, samples, this.prev);
    this.prev = headerHash(signed.header);
    this.nextBatch = batch + 1;
    return { v: 1, gateway: this.id, batch, samples, signed };
  }

  /** The next batch of the chain in its binary wire form (what the real gateway sends). */
  seal(samples: Sample[], batch = this.nextBatch): Uint8Array {
    const { signed, wire } = sealBatch(this.key, this.id, batch, samples, this.prev);
    this.prev = headerHash(signed.header);
    this.nextBatch = batch + 1;
    return wire;
  }

  async publish(message: unknown): Promise<void> {
    const payload = message instanceof Uint8Array ? Buffer.from(message) : JSON.stringify(message);
    await this.client.publishAsync(topicFor(LAB, this.id, 'DATA'), payload, { qos: 1 });
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }

  /** The same gateway connected again (to a restarted server, say), continuing its chain where this one left it. */
  async reconnect(t: Pick<TestServer, 'mqttUrl' | 'password'>): Promise<TestGateway> {
    const next = await TestGateway.connect(t, this.id, { key: this.key });
    next.prev = this.prev;
    next.nextBatch = this.nextBatch;
    return next;
  }
}

/** Publishes and waits for the outcome: 'acked' or the reason it was rejected. */
export async function send(t: Pick<TestServer, 'server'>, gw: TestGateway, message: unknown): Promise<string> {
  const acksBefore = gw.acks.length;
  let reason: string | undefined;
  const onRejected = (g: string, r: string): void => {
    if (g === gw.id) reason = r;
  };
  t.server.ingest.on('rejected', onRejected);
  try {
    await gw.publish(message);
    for (let i = 0; i < 500; i++) {
      if (reason !== undefined) return reason;
      if (gw.acks.length > acksBefore) return 'acked';
      await new Promise((r) => setTimeout(r, 10));
    }
    return 'timeout';
  } finally {
    t.server.ingest.off('rejected', onRejected);
  }
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A second customer organization, `org-b`, with its client user `client-b`; returns an API token of that user. */
export async function addOtherClient(t: TestServer): Promise<string> {
  const system = { username: 'test-setup', role: 'system' };
  await t.server.users.createOrganization(system, 'org-b', 'Client B', 'lab-contact@client-b.example');
  await t.server.users.create(system, { username: 'client-b', role: 'client', password: USER_PASSWORD, organization: 'org-b' });
  return (await t.server.users.createApiToken(system, 'client-b', 'tests', 86_400_000)).token;
}

/** A POST with a JSON body. */
export const postJson = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/**
 * REST calls answering `{status, body}`, as a role (technician unless told) or as the other client
 * (`client-b`, see addOtherClient); the server and the token are looked up at each call.
 */
export function jsonCaller(
  server: () => TestServer,
  otherClientToken: () => string,
): <T = Record<string, unknown>>(path: string, init?: RequestInit, role?: Role | 'client-b') => Promise<{ status: number; body: T }> {
  return async <T>(path: string, init: RequestInit = {}, role: Role | 'client-b' = 'technician') => {
    const t = server();
    const res =
      role === 'client-b'
        ? await fetch(`${t.base}${path}`, {
            ...init,
            headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${otherClientToken()}` },
          })
        : await t.fetch(path, init, role);
    return { status: res.status, body: (await res.json()) as T };
  };
}
