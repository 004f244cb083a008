// A gateway as far as the server and an external MQTT broker can tell (tests with several server nodes on one
// Mosquitto): it signs and chains its batches and keeps each one until the server's ACK, as the real gateway does.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { headerHash, parseTopic, sealBatch, topicFor, type CmdMessage, type SignerKey } from '@labtrace/protocols';
import { Mosquitto, type MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { LAB, records, signerOf } from './server.js';

// server/dist/test/helpers/mqtt-gateway.js -> deploy/mosquitto at the repository root
export const DEPLOY_MOSQUITTO = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));

/** The shipped ACL, with the block of the server user repeated for a second node's user (labtrace-server-2). */
export function aclWithSecondNode(): string {
  const shipped = readFileSync(`${DEPLOY_MOSQUITTO}labtrace.acl`, 'utf8');
  const at = shipped.indexOf('user labtrace-server\n');
  if (at < 0) throw new Error('the shipped ACL has no "user labtrace-server" block');
  const block = shipped.slice(at).replace('user labtrace-server\n', 'user labtrace-server-2\n');
  return `${shipped}\n${block}`;
}

/** the shared subscription group of the server nodes */
export const NODES_GROUP = 'labtrace-nodes';
/** the shipped configuration replaces a client id by the username: each node needs its own user (and session) */
export const NODE_USERS: readonly [MosquittoUser, MosquittoUser] = [
  { username: 'labtrace-server', password: 'node-1-secret-for-tests' },
  { username: 'labtrace-server-2', password: 'node-2-secret-for-tests' },
];
export const gatewayUsers = (ids: readonly string[]): MosquittoUser[] => ids.map((id) => ({ username: id, password: `${id}-secret-for-tests` }));

/** Mosquitto 2 running the shipped configuration and ACL (plus the second node's user), with the two nodes' and the gateways' users, started. */
export async function startNodesBroker(gateways: MosquittoUser[]): Promise<Mosquitto> {
  const broker = await Mosquitto.create({
    users: [...NODE_USERS, ...gateways],
    acl: aclWithSecondNode(),
    conf: readFileSync(`${DEPLOY_MOSQUITTO}mosquitto.conf`, 'utf8'),
  });
  await broker.start();
  return broker;
}

/**
 * A node's `mqtt.external` section: the node's user, its password in a file in `dir` (readable by its owner only),
 * its client id `labtrace-<name>`, a member of NODES_GROUP.
 */
export function nodeMqtt(
  dir: string,
  name: string,
  user: MosquittoUser,
  brokerUrl: string,
): { external: { url: string; username: string; passwordFile: string; clientId: string; sharedGroup: string } } {
  const passwordFile = path.join(dir, 'mqtt.password');
  writeFileSync(passwordFile, `${user.password}\n`, { mode: 0o600 });
  return { external: { url: brokerUrl, username: user.username, passwordFile, clientId: `labtrace-${name}`, sharedGroup: NODES_GROUP } };
}

/** the real gateway's window of unacknowledged batches (MAX_IN_FLIGHT) */
export const WINDOW = 32;
/** the real gateway resends after 30 s (RESEND_AFTER_MS); shorter here, still far above an ACK's time on loopback */
export const ACK_TIMEOUT_MS = 10_000;
export const SAMPLES_PER_BATCH = 5;
export const PRODUCE_EVERY_MS = 100;
/** the samples' times: one every 100 ms of the instrument's clock (the live stream passes at most one per 100 ms) */
const SAMPLE_TIME_0 = 1_800_000_000_000;
const SAMPLE_EVERY_MS = 100;

/** Polls `check` every 50 ms until it holds. */
export async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A gateway as far as the server and the broker can tell: it signs and chains its batches, keeps each one until
 * the server's ACK, publishes at most WINDOW unacknowledged ones at a time, in order, publishes again a batch
 * whose ACK has not come within its ACK timeout, and follows the server's commands (rebirth, resend), as the real
 * gateway's uplink does. Its outbox is in memory: the gateway process is not what is killed here.
 */
export class Gateway {
  /** batches not yet acknowledged, by number */
  readonly outbox = new Map<number, Uint8Array>();
  /** when each batch was first published, and how often */
  readonly firstSent = new Map<number, number>();
  readonly sends = new Map<number, number>();
  /** when the first ACK of each batch came */
  readonly acked = new Map<number, number>();
  readonly commands: CmdMessage[] = [];
  /** batches stored in the outbox and not yet published, in order */
  private readonly unsent: number[] = [];
  /** when each unacknowledged batch was last published */
  private readonly inFlight = new Map<number, number>();
  private prev: Uint8Array | null = null;
  private next = 0;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    readonly id: string,
    private readonly client: MqttClient,
    private readonly key: SignerKey,
    private readonly ackTimeoutMs: number,
  ) {
    client.on('message', (topic, payload) => {
      const kind = parseTopic(topic)?.kind;
      if (kind === 'ACK') this.onAck((JSON.parse(payload.toString()) as { batch: number }).batch);
      else if (kind === 'CMD') this.onCommand(JSON.parse(payload.toString()) as CmdMessage);
    });
    this.timers.push(setInterval(() => this.resendOverdue(), 1000));
  }

  /** `ackTimeoutMs`: how long a published batch waits for its ACK before it is published again */
  static async connect(url: string, user: MosquittoUser, ackTimeoutMs = ACK_TIMEOUT_MS): Promise<Gateway> {
    const client = await mqtt.connectAsync(url, {
      clientId: user.username,
      username: user.username,
      password: user.password,
      clean: true,
      reconnectPeriod: 1000,
    });
    await client.subscribeAsync([topicFor(LAB, user.username, 'ACK'), topicFor(LAB, user.username, 'CMD')], { qos: 1 });
    const gateway = new Gateway(user.username, client, signerOf(user.username), ackTimeoutMs);
    await gateway.birth();
    return gateway;
  }

  get instrument(): string {
    return `${this.id}-ut`;
  }

  /** every batch made so far */
  get made(): number[] {
    return Array.from({ length: this.next }, (_, i) => i);
  }

  birth(): Promise<unknown> {
    const instruments = [{ id: this.instrument, identity: { maker: 'm', model: 'x', serialNumber: this.id }, channels: [{ name: 'c', unit: '' }] }];
    return this.client.publishAsync(
      topicFor(LAB, this.id, 'BIRTH'),
      JSON.stringify({ v: 1, gateway: this.id, session: 1, version: 't', instruments }),
      {
        qos: 1,
      },
    );
  }

  /** Makes `count` more batches, one every PRODUCE_EVERY_MS; resolves when the last is in the outbox. */
  produce(count: number): Promise<void> {
    return new Promise((resolve) => {
      let left = count;
      const timer = setInterval(() => {
        const batch = this.next++;
        const { signed, wire } = sealBatch(
          this.key,
          this.id,
          batch,
          records(this.instrument, batch * SAMPLES_PER_BATCH, SAMPLES_PER_BATCH).map((s) => ({ ...s, ts: SAMPLE_TIME_0 + s.seq * SAMPLE_EVERY_MS })),
          this.prev,
        );
        this.prev = headerHash(signed.header);
        this.outbox.set(batch, wire);
        this.unsent.push(batch);
        this.pump();
        if (--left === 0) {
          clearInterval(timer);
          resolve();
        }
      }, PRODUCE_EVERY_MS);
      this.timers.push(timer);
    });
  }

  private publish(batch: number): void {
    const wire = this.outbox.get(batch);
    if (wire === undefined) return;
    this.inFlight.set(batch, Date.now());
    if (!this.firstSent.has(batch)) this.firstSent.set(batch, Date.now());
    this.sends.set(batch, (this.sends.get(batch) ?? 0) + 1);
    this.client.publish(topicFor(LAB, this.id, 'DATA'), Buffer.from(wire), { qos: 1 });
  }

  private pump(): void {
    while (this.inFlight.size < WINDOW && this.unsent.length > 0) {
      const batch = this.unsent.shift();
      if (batch !== undefined) this.publish(batch);
    }
  }

  private resendOverdue(): void {
    const now = Date.now();
    for (const [batch, at] of this.inFlight) if (now - at >= this.ackTimeoutMs) this.publish(batch);
  }

  private onAck(batch: number): void {
    if (!this.acked.has(batch)) this.acked.set(batch, Date.now());
    this.outbox.delete(batch);
    this.inFlight.delete(batch);
    this.pump();
  }

  private onCommand(cmd: CmdMessage): void {
    this.commands.push(cmd);
    if (cmd.cmd === 'rebirth') {
      void this.birth();
      return;
    }
    if (cmd.cmd !== 'resend') return;
    for (const batch of [...this.inFlight.keys()].sort((a, b) => a - b)) if (batch >= cmd.fromBatch) this.publish(batch);
  }

  async end(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await this.client.endAsync(true);
  }
}
