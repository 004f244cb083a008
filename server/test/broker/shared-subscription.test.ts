// Several server nodes sharing the gateways' batches through an MQTT shared subscription, with real processes on
// loopback: Mosquitto 2 running the shipped configuration and ACL (plus a user for the second node), two
// `labtrace server` processes in external broker mode with the same mqtt.external.sharedGroup, and three gateways
// publishing signed, chained batches.
//
// Each node has its own SQLite store here; a shared PostgreSQL store comes later. What follows from separate
// stores, and only from them: each node's chain of a gateway's batches has gaps (the other node's batches; they
// are recorded as batch-gap alarms), and a batch stored by a node that dies before its ACK leaves is stored again
// by the other node when the gateway resends it. A shared store makes that second store a duplicate it drops.
//
// What Mosquitto 2 (2.0.11 here) does with a member that dies, found by the second test: it keeps the QoS 1
// messages in flight to the dead member in that member's session, and it goes on handing the dead member its turn
// of the round robin for new messages too, queued in its session until it comes back (or the session expires:
// persistent_client_expiration). None of them reaches the other member. They are not lost: a gateway keeps every
// batch until an ACK, and publishes it again after its ACK timeout; each resend is a new message in the round robin,
// which may fall to the dead member again (one batch went out 8 times in a run of this test), so the outboxes drain
// through the living node over several rounds. Meanwhile a gateway's batches wait for its ACK timeout (30 s in the
// real gateway); removing the dead member's session ends that at once (the third test).
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execFile, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import {
  formatVerifierKey,
  headerHash,
  openBatch,
  parseTopic,
  publicKeyFromSeed,
  sealBatch,
  topicFor,
  type CmdMessage,
  type SignerKey,
} from '@labtrace/protocols';
import { Mosquitto, type MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
import { LAB, records, seedOf, signerOf, TEST_CLOCK_WINDOW_MS } from '../helpers/server.js';

// server/dist/test/broker/shared-subscription.test.js -> deploy/mosquitto at the repository root
const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));
const run = promisify(execFile);
const GROUP = 'labtrace-nodes';
const GATEWAYS = ['gw-1', 'gw-2', 'gw-3'];
/** the shipped configuration replaces a client id by the username: each node needs its own user (and session) */
const NODE_USERS: MosquittoUser[] = [
  { username: 'labtrace-server', password: 'node-1-secret-for-tests' },
  { username: 'labtrace-server-2', password: 'node-2-secret-for-tests' },
];
const GATEWAY_USERS: MosquittoUser[] = GATEWAYS.map((id) => ({ username: id, password: `${id}-secret-for-tests` }));
/** the real gateway's window of unacknowledged batches (MAX_IN_FLIGHT) */
const WINDOW = 32;
/** the real gateway resends after 30 s (RESEND_AFTER_MS); shorter here, still far above an ACK's time on loopback */
const ACK_TIMEOUT_MS = 10_000;
const SAMPLES_PER_BATCH = 5;
const PRODUCE_EVERY_MS = 100;

/** The shipped ACL, with the block of the server user repeated for the second node's user. */
function aclWithSecondNode(): string {
  const shipped = readFileSync(`${DEPLOY}labtrace.acl`, 'utf8');
  const at = shipped.indexOf('user labtrace-server\n');
  if (at < 0) throw new Error('the shipped ACL has no "user labtrace-server" block');
  const block = shipped.slice(at).replace('user labtrace-server\n', 'user labtrace-server-2\n');
  return `${shipped}\n${block}`;
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A gateway as far as the server and the broker can tell: it signs and chains its batches, keeps each one until
 * the server's ACK, publishes at most WINDOW unacknowledged ones at a time, in order, publishes again a batch
 * whose ACK has not come within ACK_TIMEOUT_MS, and follows the server's commands (rebirth, resend), as the real
 * gateway's uplink does. Its outbox is in memory: the gateway process is not what is killed here.
 */
class Gateway {
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
  ) {
    client.on('message', (topic, payload) => {
      const kind = parseTopic(topic)?.kind;
      if (kind === 'ACK') this.onAck((JSON.parse(payload.toString()) as { batch: number }).batch);
      else if (kind === 'CMD') this.onCommand(JSON.parse(payload.toString()) as CmdMessage);
    });
    this.timers.push(setInterval(() => this.resendOverdue(), 1000));
  }

  static async connect(url: string, user: MosquittoUser): Promise<Gateway> {
    const client = await mqtt.connectAsync(url, {
      clientId: user.username,
      username: user.username,
      password: user.password,
      clean: true,
      reconnectPeriod: 1000,
    });
    await client.subscribeAsync([topicFor(LAB, user.username, 'ACK'), topicFor(LAB, user.username, 'CMD')], { qos: 1 });
    const gateway = new Gateway(user.username, client, signerOf(user.username));
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
          records(this.instrument, batch * SAMPLES_PER_BATCH, SAMPLES_PER_BATCH),
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
    for (const [batch, at] of this.inFlight) if (now - at >= ACK_TIMEOUT_MS) this.publish(batch);
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

interface Node {
  name: string;
  proc: ChildProcess;
  dataDir: string;
  output(): string;
}

/** `labtrace server` in external broker mode, a member of GROUP, with its own data directory (its own SQLite store). */
async function startNode(name: string, user: MosquittoUser, brokerUrl: string): Promise<Node> {
  const dir = mkdtempSync(path.join(tmpdir(), `labtrace-${name}-`));
  const passwordFile = path.join(dir, 'mqtt.password');
  writeFileSync(passwordFile, `${user.password}\n`, { mode: 0o600 });
  const httpPort = await freePort();
  const config = path.join(dir, 'server.yaml');
  writeFileSync(
    config,
    stringify({
      lab: LAB,
      dataDir: path.join(dir, 'data'),
      http: { host: '127.0.0.1', port: httpPort },
      mqtt: { external: { url: brokerUrl, username: user.username, passwordFile, clientId: `labtrace-${name}`, sharedGroup: GROUP } },
      gateways: GATEWAYS.map((id) => ({ id, key: formatVerifierKey(id, publicKeyFromSeed(seedOf(id))) })),
      calibration: { requireForRuns: false },
      laboratory: { name: 'labtrace test laboratory', address: '1 Test Street, 12345 Testtown' },
      ingest: { maxClockSkewMs: TEST_CLOCK_WINDOW_MS, maxAgeMs: TEST_CLOCK_WINDOW_MS },
    }),
  );
  const proc = runLabtrace(['server', '--config', config], { LABTRACE_ADMIN_PASSWORD: 'admin-secret-for-tests', LOG_LEVEL: 'info' });
  const output = collect(proc);
  const node: Node = { name, proc, dataDir: path.join(dir, 'data'), output };
  nodes.push(node);
  const deadline = Date.now() + 60_000;
  // started: connected to the broker and subscribed (start() waits for the SUBACK before the HTTP port opens)
  while (
    !(await fetch(`http://127.0.0.1:${httpPort}/api/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return node;
}

/** `<gateway> <batch>` of every batch in a node's store; readable also after the node was killed. */
function storedBatches(node: Node): Set<string> {
  const db = new Database(path.join(node.dataDir, 'labtrace.sqlite'), { readonly: true });
  try {
    const rows = db.prepare('SELECT gateway, batch FROM batch_headers').all() as { gateway: string; batch: number }[];
    return new Set(rows.map((r) => `${r.gateway} ${r.batch}`));
  } finally {
    db.close();
  }
}

/** the details of the batch-gap events a node recorded */
function gapDetails(node: Node): string[] {
  const db = new Database(path.join(node.dataDir, 'labtrace.sqlite'), { readonly: true });
  try {
    return (db.prepare("SELECT detail FROM security_events WHERE kind = 'batch-gap'").all() as { detail: string }[]).map((r) => r.detail);
  } finally {
    db.close();
  }
}

const both = (a: Set<string>, b: Set<string>): string[] => [...a].filter((k) => b.has(k)).sort();

let broker: Mosquitto;
const nodes: Node[] = [];
let node1: Node;
let node2: Node;
let gateways: Gateway[] = [];

beforeAll(async () => {
  broker = await Mosquitto.create({
    users: [...NODE_USERS, ...GATEWAY_USERS],
    acl: aclWithSecondNode(),
    conf: readFileSync(`${DEPLOY}mosquitto.conf`, 'utf8'),
  });
  await broker.start();
  const [user1, user2] = NODE_USERS as [MosquittoUser, MosquittoUser];
  [node1, node2] = await Promise.all([startNode('node-1', user1, broker.url), startNode('node-2', user2, broker.url)]);
  gateways = await Promise.all(GATEWAY_USERS.map((u) => Gateway.connect(broker.url, u)));
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.end()));
  for (const node of nodes) {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) continue;
    const exited = exitOf(node.proc);
    node.proc.kill('SIGTERM');
    await exited;
  }
  await broker.dispose();
}, 60_000);

describe('two server nodes in one shared subscription group', () => {
  test('each batch is stored by exactly one node, both nodes ingest, and every batch is acknowledged', async () => {
    await Promise.all(gateways.map((g) => g.produce(30)));
    await waitFor('every batch acknowledged', () => gateways.every((g) => g.outbox.size === 0), 60_000);

    const all = new Set(gateways.flatMap((g) => g.made.map((b) => `${g.id} ${b}`)));
    expect(all.size).toBe(90);
    for (const g of gateways) expect([...g.acked.keys()].sort((a, b) => a - b)).toEqual(g.made);
    const one = storedBatches(node1);
    const two = storedBatches(node2);
    expect(new Set([...one, ...two])).toEqual(all);
    expect(both(one, two)).toEqual([]);
    // spread over both: Mosquitto hands a group's messages to its members in turn
    expect(one.size).toBeGreaterThan(0);
    expect(two.size).toBeGreaterThan(0);
    // the gaps in each node's chain (the other node's batches) ask no gateway for a resend, and say so
    for (const g of gateways) expect(g.commands.filter((c) => c.cmd === 'resend')).toEqual([]);
    const gaps = [...gapDetails(node1), ...gapDetails(node2)];
    expect(gaps.length).toBeGreaterThan(0);
    for (const detail of gaps) expect(detail).toMatch(/shares the gateways’ batches with other nodes/);
  }, 120_000);

  test('kill -9 of one node mid-stream: the outboxes drain through the other, no acknowledged batch is lost', async () => {
    const before = new Map(gateways.map((g) => [g.id, g.acked.size]));
    const producing = Promise.all(gateways.map((g) => g.produce(40)));
    await waitFor('batches acknowledged after the first test', () => gateways.every((g) => g.acked.size >= (before.get(g.id) ?? 0) + 12), 60_000);
    node2.proc.kill('SIGKILL');
    const killedAt = Date.now();
    const ackedBeforeKill = new Map(gateways.map((g) => [g.id, new Set(g.acked.keys())]));
    expect(await exitOf(node2.proc)).toBeNull();
    expect(node2.proc.signalCode).toBe('SIGKILL');

    await producing;
    await waitFor('the outboxes to drain', () => gateways.every((g) => g.outbox.size === 0), 240_000);

    const all = new Set(gateways.flatMap((g) => g.made.map((b) => `${g.id} ${b}`)));
    expect(all.size).toBe(210);
    for (const g of gateways) expect([...g.acked.keys()].sort((a, b) => a - b)).toEqual(g.made);
    const one = storedBatches(node1);
    const two = storedBatches(node2); // the killed node's file
    // every batch acknowledged is stored: nothing acknowledged was lost with the killed node
    expect(new Set([...one, ...two])).toEqual(all);
    // Stored by both nodes: only a batch the killed node stored whose ACK never reached the gateway, which the
    // gateway therefore published again and the other node stored (separate stores; a shared one drops it)
    for (const key of both(one, two)) {
      const [id = '', batch] = key.split(' ');
      const g = gateways.find((x) => x.id === id);
      expect({ key, ackedBeforeKill: ackedBeforeKill.get(id)?.has(Number(batch)), sends: (g?.sends.get(Number(batch)) ?? 0) > 1 }).toEqual({
        key,
        ackedBeforeKill: false,
        sends: true,
      });
    }

    // Mosquitto kept the dead member's share in its session, also of batches first published after the kill:
    // connected as that member, one receives them. Each was stored by the living node all the same, after the
    // gateway published it again.
    const [, user2] = NODE_USERS as [MosquittoUser, MosquittoUser];
    const queued: { gateway: string; batch: number }[] = [];
    let marker = false;
    const session = await mqtt.connectAsync(broker.url, { clientId: user2.username, ...user2, clean: false, reconnectPeriod: 0 });
    session.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t?.kind === 'DATA') queued.push({ gateway: t.gateway, batch: openBatch(payload).signed.header.batch });
      if (t?.kind === 'BIRTH') marker = true;
    });
    // A BIRTH published now reaches the session (its plain BIRTH subscription) after everything queued before it.
    await gateways[0]?.birth();
    await waitFor("the dead member's queued messages", () => marker, 20_000);
    await session.endAsync();
    const afterKill = queued.filter((q) => (gateways.find((g) => g.id === q.gateway)?.firstSent.get(q.batch) ?? 0) > killedAt);
    expect(afterKill.length).toBeGreaterThan(0);
    for (const q of afterKill) {
      const sends = gateways.find((g) => g.id === q.gateway)?.sends.get(q.batch) ?? 0;
      expect({ ...q, inLivingNode: one.has(`${q.gateway} ${q.batch}`), resent: sends > 1 }).toEqual({ ...q, inLivingNode: true, resent: true });
    }
  }, 360_000);

  test("once the dead node's session is removed, the living node takes every batch at once", async () => {
    // What an operator does for a node that does not come back (docs/scale-out.md): one connection with its client
    // id and a clean session, which makes Mosquitto drop the session and with it the member of the group.
    const [, user2] = NODE_USERS as [MosquittoUser, MosquittoUser];
    const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-u', user2.username, '-P', user2.password];
    await run('mosquitto_sub', [...args, '-i', user2.username, '-t', topicFor(LAB, '+', 'DATA'), '-E']);
    const first = new Map(gateways.map((g) => [g.id, g.made.length]));
    await Promise.all(gateways.map((g) => g.produce(10)));
    await waitFor('every batch acknowledged', () => gateways.every((g) => g.outbox.size === 0), 60_000);
    const one = storedBatches(node1);
    for (const g of gateways)
      for (const batch of g.made.slice(first.get(g.id))) {
        // published once: none of them waited in the dead member's session for a resend
        expect({ batch, sends: g.sends.get(batch), stored: one.has(`${g.id} ${batch}`) }).toEqual({ batch, sends: 1, stored: true });
      }
  }, 120_000);
});
