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
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { execFile, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { formatVerifierKey, openBatch, parseTopic, publicKeyFromSeed, topicFor } from '@labtrace/protocols';
import type { Mosquitto, MosquittoUser } from '@labtrace/protocols/test/mosquitto';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';
import { Gateway, gatewayUsers, NODE_USERS, nodeMqtt, startNodesBroker, waitFor } from '../helpers/mqtt-gateway.js';
import { LAB, seedOf, TEST_CLOCK_WINDOW_MS } from '../helpers/server.js';

const run = promisify(execFile);
const GATEWAYS = ['gw-1', 'gw-2', 'gw-3'];
const GATEWAY_USERS = gatewayUsers(GATEWAYS);
interface Node {
  name: string;
  proc: ChildProcess;
  dataDir: string;
  output(): string;
}

/** `labtrace server` in external broker mode, a member of NODES_GROUP, with its own data directory (its own SQLite store). */
async function startNode(name: string, user: MosquittoUser, brokerUrl: string): Promise<Node> {
  const dir = mkdtempSync(path.join(tmpdir(), `labtrace-${name}-`));
  const httpPort = await freePort();
  const config = path.join(dir, 'server.yaml');
  writeFileSync(
    config,
    stringify({
      lab: LAB,
      dataDir: path.join(dir, 'data'),
      http: { host: '127.0.0.1', port: httpPort },
      mqtt: nodeMqtt(dir, name, user, brokerUrl),
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
  broker = await startNodesBroker(GATEWAY_USERS);
  const [user1, user2] = NODE_USERS;
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
    const [, user2] = NODE_USERS;
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
    const [, user2] = NODE_USERS;
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
