// deploy/cluster/haproxy.cfg in front of two real server nodes (`labtrace server`, each with its own data folder),
// run by Debian's haproxy as shipped, with only its listening address, its nodes' addresses and its runtime API
// socket moved to loopback ports and a temporary folder. It spreads requests over both nodes, carries a socket.io
// connection from its polling handshake to a WebSocket and keeps it, drains a node through the runtime API (no new
// clients, the open WebSocket stays), and moves every request to the other node when one is killed with SIGKILL.
//
// Which node answered: each node's data folder has its own report-signing key (GET /api/public/keys, public), read
// from each node directly first. The nodes do not share a store yet, so a token is valid on the node that issued it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import { stringify } from 'yaml';
import { freePort } from '../helpers/ports.js';
import { collect, LAB_ADMIN_PASSWORD, REPO_ROOT, runLabtrace, waitFor } from '../helpers/lab-process.js';

const SHIPPED = path.join(REPO_ROOT, 'deploy', 'cluster', 'haproxy.cfg');
const BACKEND = 'labtrace_nodes';
const COOKIE = 'LABTRACE_NODE';

const tmp = mkdtempSync(path.join(tmpdir(), 'labtrace-haproxy-'));

/**
 * The shipped configuration with loopback addresses: `bind :<port>` listens on 127.0.0.1:<listen>, each `server
 * <name> <host:port>` points at the node of that name, and the runtime API socket is `socket`. Comments and every
 * other line are kept as they are; each of the three must be found (the test runs the shipped file, not its own).
 */
function localConfig(text: string, listen: number, nodes: Map<string, number>, socket: string): string {
  const found = { bind: 0, socket: 0, servers: new Set<string>() };
  const lines = text.split('\n').map((line) => {
    if (/^\s*#/.test(line)) return line;
    let m = /^(\s*bind\s+):\d+(\s.*)?$/.exec(line);
    if (m) {
      found.bind++;
      return `${m[1]}127.0.0.1:${listen}${m[2] ?? ''}`;
    }
    m = /^(\s*stats socket\s+)\S+(\s.*)?$/.exec(line);
    if (m) {
      found.socket++;
      return `${m[1]}${socket}${m[2] ?? ''}`;
    }
    m = /^(\s*server\s+(\S+)\s+)\S+(\s.*)?$/.exec(line);
    if (m) {
      const name = m[2] ?? '';
      const port = nodes.get(name);
      if (port === undefined) throw new Error(`haproxy.cfg: server ${name} is not a node of this test`);
      found.servers.add(name);
      return `${m[1]}127.0.0.1:${port}${m[3] ?? ''}`;
    }
    return line;
  });
  if (found.bind !== 1 || found.socket !== 1 || found.servers.size !== nodes.size)
    throw new Error(`haproxy.cfg: expected one bind, one stats socket and servers ${[...nodes.keys()].join(', ')}`);
  return lines.join('\n');
}

interface Node {
  name: string;
  port: number;
  proc: ChildProcess;
  output(): string;
  /** its report-signing keys as GET /api/public/keys gives them: what tells the nodes apart */
  identity: string;
}

const nodes = new Map<string, Node>();
let haproxy: ChildProcess | undefined;
let haproxyOutput: () => string = () => '';
let base = '';
let adminSocket = '';
const sockets: Socket[] = [];

async function startNode(name: string): Promise<Node> {
  const port = await freePort();
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'server.yaml');
  writeFileSync(
    config,
    stringify({
      lab: 'lab-cluster',
      dataDir: path.join(dir, 'data'),
      http: { host: '127.0.0.1', port },
      mqtt: { host: '127.0.0.1', port: await freePort() },
      laboratory: { name: 'labtrace proxy test laboratory', address: '1 Test Street, 12345 Testtown' },
    }),
  );
  const proc = runLabtrace(['server', '--config', config], { LABTRACE_ADMIN_PASSWORD: LAB_ADMIN_PASSWORD });
  const output = collect(proc);
  await waitFor(
    `node ${name} to be healthy`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`node ${name} exited:\n${output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    120_000,
  );
  const identity = await (await fetch(`http://127.0.0.1:${port}/api/public/keys`)).text();
  const node = { name, port, proc, output, identity };
  nodes.set(name, node);
  return node;
}

/** The node that answered a response, by the keys it served. */
function nodeOf(body: string): string {
  for (const node of nodes.values()) if (node.identity === body) return node.name;
  throw new Error(`no node serves these keys: ${body}`);
}

/** A GET of the public keys through the proxy: its status, and which node answered. */
async function throughProxy(cookie?: string): Promise<{ status: number; node: string | undefined; setCookie: string[] }> {
  const res = await fetch(`${base}/api/public/keys`, cookie === undefined ? {} : { headers: { cookie } });
  const body = await res.text();
  return { status: res.status, node: res.status === 200 ? nodeOf(body) : undefined, setCookie: res.headers.getSetCookie() };
}

/** Which nodes answered `n` requests made without the stickiness cookie (new clients), by name, in order. */
async function newClients(n: number): Promise<(string | undefined)[]> {
  const answered: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) answered.push((await throughProxy()).node);
  return answered;
}

/** One command on haproxy's runtime API socket; its answer. */
function runtime(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(adminSocket);
    let out = '';
    conn.on('data', (d: Buffer) => (out += d.toString()));
    conn.on('error', reject);
    conn.on('end', () => resolve(out));
    conn.on('connect', () => conn.write(`${command}\n`));
  });
}

/** The status haproxy gives each node of the backend in `show stat` (UP, DOWN, DRAIN, MAINT, ...). */
async function statusOf(): Promise<Map<string, string>> {
  const csv = (await runtime('show stat')).trim().split('\n');
  const header = (csv[0] ?? '').replace(/^# /, '').split(',');
  const col = (name: string): number => header.indexOf(name);
  const status = new Map<string, string>();
  for (const line of csv.slice(1)) {
    const f = line.split(',');
    if (f[col('pxname')] === BACKEND && nodes.has(f[col('svname')] ?? '')) status.set(f[col('svname')] ?? '', f[col('status')] ?? '');
  }
  return status;
}

async function waitForStatus(node: string, wanted: string): Promise<void> {
  await waitFor(`haproxy to see ${node} ${wanted}`, async () => ((await statusOf()).get(node) === wanted ? true : undefined), 60_000);
}

/** Signs in through the proxy: the token (valid on the node that issued it) and the cookie that pins to that node. */
async function signInThroughProxy(): Promise<{ token: string; node: string; cookie: string }> {
  const res = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: LAB_ADMIN_PASSWORD }),
  });
  expect(res.status).toBe(200);
  const { token } = (await res.json()) as { token: string };
  const pin = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`));
  if (pin === undefined) throw new Error(`the proxy set no ${COOKIE} cookie`);
  const cookie = pin.split(';')[0] ?? '';
  const node = cookie.slice(COOKIE.length + 1);
  expect(nodes.has(node)).toBe(true);
  return { token, node, cookie };
}

interface Live {
  socket: Socket;
  disconnects: string[];
  pings: number;
}

/** A socket.io client through the proxy, as the dashboard opens it: HTTP long-polling first, then the WebSocket. */
async function connectLive(token: string, cookie: string): Promise<Live> {
  const socket = io(base, { auth: { token }, extraHeaders: { cookie }, transports: ['polling', 'websocket'], reconnection: false });
  sockets.push(socket);
  const live: Live = { socket, disconnects: [], pings: 0 };
  socket.on('disconnect', (reason) => live.disconnects.push(reason));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  socket.io.engine.on('ping', () => live.pings++);
  await waitFor('the upgrade to a WebSocket', () => (socket.io.engine.transport.name === 'websocket' ? true : undefined), 30_000);
  return live;
}

async function hello(socket: Socket): Promise<{ version: string }> {
  return (await socket.timeout(10_000).emitWithAck('hello')) as { version: string };
}

beforeAll(async () => {
  await Promise.all([startNode('node-1'), startNode('node-2')]);
  expect(nodes.get('node-1')?.identity).not.toBe(nodes.get('node-2')?.identity);

  const listen = await freePort();
  adminSocket = path.join(tmp, 'admin.sock');
  const config = path.join(tmp, 'haproxy.cfg');
  const ports = new Map([...nodes.values()].map((n) => [n.name, n.port]));
  writeFileSync(config, localConfig(readFileSync(SHIPPED, 'utf8'), listen, ports, adminSocket));
  // -db: in the foreground, not as a daemon, so that its PID is the one to stop
  haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxyOutput = collect(haproxy);
  base = `http://127.0.0.1:${listen}`;
  await waitFor(
    'haproxy to see both nodes up',
    async () => {
      if (haproxy?.exitCode !== null) throw new Error(`haproxy exited:\n${haproxyOutput()}`);
      const status = await statusOf().catch(() => new Map<string, string>());
      return status.get('node-1') === 'UP' && status.get('node-2') === 'UP' ? true : undefined;
    },
    60_000,
  );
}, 240_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  const stop = async (proc: ChildProcess | undefined): Promise<void> => {
    if (proc?.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(proc.pid, 'SIGTERM');
    await exited;
  };
  await stop(haproxy);
  for (const node of nodes.values()) await stop(node.proc);
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('haproxy in front of two server nodes', () => {
  let live: Live;
  let pinned: { token: string; node: string; cookie: string };
  /** the engine.io session id of the socket.io client: in its polling requests' query */
  let engineId = '';

  test("new clients are spread over both nodes; the proxy checks each node's health route", async () => {
    const answered = await newClients(10);
    expect(answered.every((n) => n !== undefined)).toBe(true);
    expect(new Set(answered)).toEqual(new Set(['node-1', 'node-2']));
    // a response to a client without the cookie pins it to the node that answered
    const first = await throughProxy();
    expect(first.setCookie).toEqual([expect.stringMatching(new RegExp(`^${COOKIE}=${first.node};.*HttpOnly`, 'i'))]);
    // haproxy's own checks are HTTP ones (layer 7) answered 200, on the route the shipped file names: the health route
    const stat = await runtime('show stat');
    const header = (stat.split('\n')[0] ?? '').replace(/^# /, '').split(',');
    for (const name of nodes.keys()) {
      const row =
        stat
          .split('\n')
          .find((l) => l.startsWith(`${BACKEND},${name},`))
          ?.split(',') ?? [];
      expect([row[header.indexOf('check_status')], row[header.indexOf('check_code')]]).toEqual(['L7OK', '200']);
    }
    const uri = /^\s*http-check send .*\buri (\S+)/m.exec(readFileSync(SHIPPED, 'utf8'))?.[1];
    expect(uri).toBe('/api/health');
  });

  test('a client pinned by the cookie stays on its node: a token a node issued works through the proxy', async () => {
    pinned = await signInThroughProxy();
    const other = [...nodes.keys()].find((n) => n !== pinned.node) ?? '';
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${pinned.token}`, cookie: pinned.cookie } });
      expect(res.status).toBe(200);
    }
    // the same token without the cookie reaches the other node too, which does not know it (no shared store yet)
    const direct = await fetch(`http://127.0.0.1:${nodes.get(other)?.port}/api/auth/me`, {
      headers: { authorization: `Bearer ${pinned.token}` },
    });
    expect(direct.status).toBe(401);
  });

  test('socket.io connects through the proxy, upgrades to a WebSocket and stays connected past a ping', async () => {
    live = await connectLive(pinned.token, pinned.cookie);
    engineId = live.socket.io.engine.id;
    expect(await hello(live.socket)).toEqual({ version: expect.any(String) });
    // socket.io pings every 25 s: the tunnel must outlive an idle gap of that length (`timeout tunnel`)
    await waitFor('a ping from the node over the WebSocket', () => (live.pings > 0 ? true : undefined), 60_000);
    expect(live.socket.connected).toBe(true);
    expect(live.disconnects).toEqual([]);
    expect(live.socket.io.engine.transport.name).toBe('websocket');
    expect(live.socket.io.engine.id).toBe(engineId);
    expect(await hello(live.socket)).toEqual({ version: expect.any(String) });
  }, 90_000);

  test('a node drained through the runtime API takes no new clients; its open WebSocket and pinned clients go on, until maintenance', async () => {
    const drained = pinned.node;
    const other = [...nodes.keys()].find((n) => n !== drained) ?? '';
    expect(await runtime(`set server ${BACKEND}/${drained} state drain`)).toBe('\n');
    await waitForStatus(drained, 'DRAIN');
    expect(await newClients(8)).toEqual(Array(8).fill(other));
    // the WebSocket open on it still answers, on the same session
    expect(live.socket.connected).toBe(true);
    expect(await hello(live.socket)).toEqual({ version: expect.any(String) });
    expect(live.disconnects).toEqual([]);
    // a client pinned to it before still reaches it (its session is there)
    expect((await throughProxy(pinned.cookie)).node).toBe(drained);
    // maintenance moves the pinned clients too (what a restart after the drain needs)
    expect(await runtime(`set server ${BACKEND}/${drained} state maint`)).toBe('\n');
    await waitForStatus(drained, 'MAINT');
    expect((await throughProxy(pinned.cookie)).node).toBe(other);

    expect(await runtime(`set server ${BACKEND}/${drained} state ready`)).toBe('\n');
    await waitForStatus(drained, 'UP');
    expect(new Set(await newClients(8))).toEqual(new Set(['node-1', 'node-2']));
  }, 90_000);

  test('a node killed with SIGKILL: requests succeed on the other at once, and the health check marks it down', async () => {
    const killed = pinned.node;
    const other = [...nodes.keys()].find((n) => n !== killed) ?? '';
    const proc = nodes.get(killed)?.proc;
    if (proc?.pid === undefined) throw new Error(`node ${killed} has no process`);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(proc.pid, 'SIGKILL');
    await exited;

    // before the health check notices: a request sent to the dead node is retried on the other (redispatch)
    expect(await newClients(6)).toEqual(Array(6).fill(other));
    await waitForStatus(killed, 'DOWN');
    expect(await newClients(6)).toEqual(Array(6).fill(other));
    // a client pinned to the dead node is served by the other, and pinned to it from now on
    const moved = await throughProxy(pinned.cookie);
    expect(moved.status).toBe(200);
    expect(moved.node).toBe(other);
    expect(moved.setCookie).toEqual([expect.stringMatching(new RegExp(`^${COOKIE}=${other};`))]);
    // the WebSocket to the dead node is closed, not left hanging
    await waitFor('the WebSocket on the dead node to close', () => (live.disconnects.length > 0 ? true : undefined), 60_000);
    expect(live.socket.connected).toBe(false);
  }, 90_000);

  test("the proxy's log names requests, never what opens a report: a share link's token, a verification code, a session id", async () => {
    const shareToken = 'Q'.repeat(20) + 'share-token-for-tests' + 'Q'.repeat(2); // the 43 characters of a share token
    const code = '0123456789abcdef';
    for (const route of [`/api/public/shares/${shareToken}`, `/share/${shareToken}`, `/verify/LT-2027-000001?code=${code}`])
      await (await fetch(`${base}${route}`)).arrayBuffer();
    const log = await waitFor('the requests in the log', () => {
      const text = haproxyOutput();
      return text.includes('GET /verify/LT-2027-000001') ? text : undefined;
    });
    expect(log).toContain('GET /api/public/keys');
    expect(log).toContain('GET /api/public/shares/<token>');
    expect(log).toContain('GET /share/<token>');
    expect(log).toMatch(/GET \/socket\.io\//);
    for (const secret of [shareToken, code, engineId, LAB_ADMIN_PASSWORD, pinned.token]) expect(log.includes(secret)).toBe(false);
  });
});
