// The embedded MQTT broker (Aedes): TCP and WebSocket (/mqtt) listeners, authentication by
// scrypt-hashed credentials and topic authorization per role. Anonymous clients are refused.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { LabtraceError, parseTopic } from '@labtrace/protocols';
import { DEFAULT_MAX_PACKET_BYTES, type BrokerUser } from './config.js';
import type { Logger } from '../log.js';
import type { Refusal } from '../trust/security-events.js';
import type { BusEvents, MessageBus } from './bus.js';
import { PacketLimit, type Oversize } from './packet-limit.js';
import { verifyPassword } from './passwords.js';
import type { Redis } from 'ioredis';
import { openRedis, type RedisTarget } from '../redis.js';

// CommonJS modules without type declarations of their own (mqemitter-redis's name another ioredis major)
const requireCjs = createRequire(import.meta.url);
type MqEmitterRedis = (options: { pubConn: Redis; subConn: Redis }) => unknown;
type PersistenceRedis = (options: { conn: Redis }) => unknown;

/** the largest packet before authentication: a CONNECT with credentials and a will fits many times over */
export const MAX_CONNECT_BYTES = 65_536;

export interface BrokerOptions {
  lab: string;
  host: string;
  port: number;
  users: BrokerUser[];
  /**
   * users created at run time (enrolled gateways), looked up after the configured ones: once per connection (at
   * login), never per message; it may read the store (a gateway enrolled on another node logs in here at once)
   */
  lookupUser?: (username: string) => BrokerUser | undefined | Promise<BrokerUser | undefined>;
  /** an MQTT over TLS listener besides the plain one */
  tls?: { host: string; port: number; certFile: string; keyFile: string };
  /** the largest packet of an authenticated client (default 8 MiB) */
  maxPacketBytes?: number;
  /** open connections from one address (default 64) */
  maxConnectionsPerAddress?: number;
  /** where refusals are recorded (security events): logins, publishes, subscriptions, connections */
  refused?: (refusal: Refusal) => void;
  /**
   * several nodes form one broker over this Redis (mqtt.cluster.redis): messages between nodes over mqemitter-redis,
   * sessions and QoS 1 messages in flight in aedes-persistence-redis. Each node still reports (event `message`) only
   * the publishes of the clients connected to it, so each batch is ingested once, by the node that received it.
   */
  cluster?: RedisTarget;
  logger: Logger;
}

/** A string from the wire as a record keeps it: bounded. */
const clip = (text: string): string => (text.length > 128 ? `${text.slice(0, 128)}...` : text);

function authError(message: string, returnCode: 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

export class Broker extends EventEmitter<BusEvents> implements MessageBus {
  private aedes: Aedes | undefined;
  private tcp: net.Server | undefined;
  private tlsServer: tls.Server | undefined;
  private wss: WebSocketServer | undefined;
  /** authenticated user of each connection; keyed by the connection, not its id, because a
   * reconnecting gateway takes over its id while the old connection is still closing */
  private readonly sessions = new WeakMap<Client, BrokerUser>();
  /** the current connection of each connected gateway */
  private readonly gatewayClients = new Map<string, Client>();
  private readonly users: Map<string, BrokerUser>;
  /** client ids only gateways may use: a reader taking one would knock the gateway off (MQTT takeover) */
  private readonly gatewayIds: Set<string>;
  /** the remote address of each connection (its guard) */
  private readonly addresses = new WeakMap<Duplex, string>();
  /** open connections per remote address */
  private readonly openPerAddress = new Map<string, number>();
  /** the Redis connections of a cluster node (emitter publish, emitter subscribe, persistence) */
  private readonly redis: Redis[] = [];

  constructor(private readonly options: BrokerOptions) {
    super();
    this.users = new Map(options.users.map((u) => [u.username, u]));
    this.gatewayIds = new Set(options.users.flatMap((u) => (u.role === 'gateway' && u.gateway !== undefined ? [u.gateway] : [])));
  }

  private async user(username: string): Promise<BrokerUser | undefined> {
    return this.users.get(username) ?? (await this.options.lookupUser?.(username));
  }

  /** A client id only gateways may use: a configured or enrolled gateway's id. */
  private async isGatewayId(id: string): Promise<boolean> {
    return this.gatewayIds.has(id) || (await this.options.lookupUser?.(id))?.role === 'gateway';
  }

  /** The rest of a login once its user is looked up: the password, then the client id the user may take. */
  private login(
    client: Client,
    username: string | undefined,
    password: Readonly<Buffer> | undefined,
    user: BrokerUser | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const { logger } = this.options;
    // one security event per source and window (a flood of attempts is a count, not a flood of rows)
    const refuse = (why: string): void =>
      this.refuse({
        kind: 'login-refused',
        severity: 'notice',
        detail: `MQTT login refused: ${why}`,
        address: this.addressOf(client),
        client: clip(`${client.id ?? ''}${username === undefined ? '' : ` (user ${username})`}`),
      });
    if (!user || password === undefined) {
      logger.debug({ clientId: client.id, username: username ?? null }, 'MQTT connection refused: unknown user or no password');
      refuse(username === undefined ? 'no username' : password === undefined ? 'no password' : 'unknown user');
      done(authError('bad username or password', 4), false);
      return;
    }
    Promise.all([verifyPassword(password.toString('utf8'), user.passwordHash), user.role === 'gateway' ? false : this.isGatewayId(client.id)]).then(
      ([ok, reserved]) => {
        if (!ok) {
          logger.debug({ clientId: client.id, username }, 'MQTT connection refused: wrong password');
          refuse('wrong password');
          return done(authError('bad username or password', 4), false);
        }
        if (user.role !== 'gateway' && reserved) {
          logger.debug({ clientId: client.id, username }, 'MQTT connection refused: a client id of a gateway');
          refuse('a client id of a gateway');
          return done(authError('client id reserved for a gateway', 5), false);
        }
        if (user.role === 'gateway' && client.id !== user.gateway) {
          logger.debug({ clientId: client.id, username }, 'MQTT connection refused: a gateway must use its id as client id');
          refuse('a gateway must use its id as client id');
          return done(authError('client id must be the gateway id', 5), false);
        }
        this.sessions.set(client, user);
        // authenticated: packets up to the configured size from now on
        if (client.conn instanceof PacketLimit) client.conn.limit = this.options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
        done(null, true);
      },
      (err: unknown) => done(authError(`authentication failed: ${String(err)}`, 4), false),
    );
  }

  get tlsPort(): number | undefined {
    const addr = this.tlsServer?.address();
    return typeof addr === 'object' && addr !== null ? addr.port : undefined;
  }

  get port(): number {
    const addr = this.tcp?.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.options.port;
  }

  get running(): boolean {
    return this.aedes !== undefined && !this.aedes.closed;
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** open connections on every listener, logged in or not */
  get openConnections(): number {
    let n = 0;
    for (const count of this.openPerAddress.values()) n += count;
    return n;
  }

  connectedGateways(): string[] {
    return [...this.gatewayClients.keys()];
  }

  private refuse(refusal: Refusal): void {
    this.options.refused?.(refusal);
  }

  private addressOf(client: Client): string | undefined {
    return this.addresses.get(client.conn);
  }

  /**
   * Every connection, from any listener, before Aedes reads it: counted against its address's limit,
   * and read through the packet size check (the pre-authentication limit until its login succeeds).
   */
  private admit(conn: Duplex, address: string, handle: (conn: Duplex) => Client): Client {
    const maxPacket = this.options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    const guard: PacketLimit = new PacketLimit(conn, Math.min(MAX_CONNECT_BYTES, maxPacket), (o: Oversize) => {
      const client = (guard as { client?: Client }).client;
      const user = client === undefined ? undefined : this.sessions.get(client);
      const what = o.malformed
        ? 'a packet length of more than 4 bytes (not MQTT)'
        : `a packet of ${o.declared >= o.limit ? 'more than ' : ''}${o.limit} bytes`;
      this.refuse({
        kind: 'oversize-packet',
        severity: user === undefined ? 'notice' : 'alarm',
        detail: `connection closed: it declared ${what}${user === undefined ? ' before authenticating' : ' (mqtt.maxPacketBytes; a gateway sending such batches needs a larger limit or a smaller batch.maxSamples)'}`,
        ...(user?.gateway === undefined ? {} : { gateway: user.gateway }),
        address,
        ...(client?.id ? { client: clip(client.id) } : {}),
      });
    });
    this.addresses.set(guard, address);
    const max = this.options.maxConnectionsPerAddress ?? 64;
    const open = this.openPerAddress.get(address) ?? 0;
    if (open >= max) {
      this.refuse({
        kind: 'connection-refused',
        severity: 'notice',
        detail: `more than ${max} connections from this address (mqtt.maxConnectionsPerAddress)`,
        address,
      });
      guard.destroy();
      return handle(guard);
    }
    this.openPerAddress.set(address, open + 1);
    conn.once('close', () => {
      const n = (this.openPerAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.openPerAddress.delete(address);
      else this.openPerAddress.set(address, n);
    });
    return handle(guard);
  }

  async start(): Promise<void> {
    const { lab, logger } = this.options;
    const shared = this.options.cluster === undefined ? {} : await this.openCluster(this.options.cluster);
    const aedes = await Aedes.createBroker({
      ...shared,
      authenticate: (client, username, password, done) => {
        (username === undefined ? Promise.resolve(undefined) : this.user(username)).then(
          (user) => this.login(client, username, password, user, done),
          (err: unknown) => {
            logger.error({ clientId: client.id, err: String(err) }, 'MQTT login: the user could not be looked up');
            done(authError('server unavailable', 3), false);
          },
        );
      },
      authorizePublish: (client, packet, callback) => {
        if (client === null) return callback(null); // the server itself
        const user = this.sessions.get(client);
        const topic = parseTopic(packet.topic);
        const allowed =
          user?.role === 'gateway' &&
          topic !== undefined &&
          topic.lab === lab &&
          topic.gateway === user.gateway &&
          (topic.kind === 'BIRTH' || topic.kind === 'DATA' || topic.kind === 'DEATH' || topic.kind === 'HEALTH' || topic.kind === 'FILE');
        if (!allowed) {
          logger.warn({ clientId: client.id, topic: packet.topic }, 'MQTT publish refused');
          this.refuse({
            kind: 'publish-refused',
            severity: user?.role === 'gateway' ? 'alarm' : 'notice',
            detail: `MQTT publish to ${clip(packet.topic)} refused (${user?.role ?? 'unauthenticated'} ${clip(user?.username ?? '')})`,
            ...(user?.gateway === undefined ? {} : { gateway: user.gateway }),
            address: this.addressOf(client),
            client: clip(client.id),
          });
          return callback(new Error(`not allowed to publish to ${packet.topic}`));
        }
        callback(null);
      },
      authorizeSubscribe: (client, subscription, callback) => {
        const user = this.sessions.get(client);
        const filter = subscription.topic;
        let allowed = false;
        if (user?.role === 'gateway') {
          const topic = parseTopic(filter);
          allowed = topic !== undefined && topic.lab === lab && topic.gateway === user.gateway && (topic.kind === 'ACK' || topic.kind === 'CMD');
        } else if (user?.role === 'reader') {
          allowed = filter === `labtrace/v1/${lab}/#` || filter.startsWith(`labtrace/v1/${lab}/`);
        }
        if (!allowed) {
          logger.warn({ clientId: client.id, topic: filter }, 'MQTT subscription refused');
          this.refuse({
            kind: 'subscribe-refused',
            severity: 'notice',
            detail: `MQTT subscription to ${clip(filter)} refused (${user?.role ?? 'unauthenticated'} ${clip(user?.username ?? '')})`,
            ...(user?.gateway === undefined ? {} : { gateway: user.gateway }),
            address: this.addressOf(client),
            client: clip(client.id),
          });
          return callback(null, null);
        }
        callback(null, subscription);
      },
    });
    this.aedes = aedes;
    // every listener (TCP, TLS, WebSocket) hands its connections to aedes.handle: admitted there
    const handle = aedes.handle;
    aedes.handle = (conn, req) =>
      this.admit(conn, req?.socket.remoteAddress ?? (conn as net.Socket).remoteAddress ?? 'unknown', (guarded) => handle(guarded, req));
    aedes.on('clientReady', (client) => {
      if (this.sessions.get(client)?.role !== 'gateway') return;
      this.gatewayClients.set(client.id, client);
      this.emit('gatewayConnected', client.id);
    });
    aedes.on('clientDisconnect', (client) => {
      // Only the gateway's current connection counts; an old one closing after a takeover does not.
      if (this.gatewayClients.get(client.id) !== client) return;
      this.gatewayClients.delete(client.id);
      this.emit('gatewayDisconnected', client.id);
    });
    aedes.on('clientError', (client, err) => logger.debug({ clientId: client.id, err: err.message }, 'MQTT client error'));
    // messages of clients only: the server's own ACK and CMD are not ingested
    aedes.on('publish', (packet, client) => {
      if (client !== null) this.emit('message', packet.topic, packet.payload as Buffer);
    });

    const tcp = net.createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new LabtraceError(
                'E_PORT_IN_USE',
                `MQTT port ${this.options.host}:${this.options.port} is already in use (set MQTT_PORT or mqtt.port)`,
                { cause: err },
              )
            : err,
        );
      });
      tcp.listen(this.options.port, this.options.host, () => resolve());
    });
    this.tcp = tcp;
    if (this.options.tls) await this.listenTls(aedes, this.options.tls);
  }

  /**
   * The cluster's emitter (a connection to publish, one to subscribe) and persistence, on connections opened here:
   * an unreachable Redis or a wrong password fails the start, naming the setting, and stop() closes them all.
   */
  private async openCluster(target: RedisTarget): Promise<{ mq: unknown; persistence: unknown }> {
    try {
      for (let i = 0; i < 3; i++) this.redis.push(await openRedis(target, 'mqtt.cluster.redis', 'MQTT cluster', this.options.logger));
    } catch (err) {
      this.closeRedis();
      throw err;
    }
    const [pubConn, subConn, conn] = this.redis as [Redis, Redis, Redis];
    const mq = (requireCjs('mqemitter-redis') as MqEmitterRedis)({ pubConn, subConn });
    const persistence = (requireCjs('aedes-persistence-redis') as PersistenceRedis)({ conn });
    return { mq, persistence };
  }

  private closeRedis(): void {
    for (const redis of this.redis.splice(0)) redis.disconnect();
  }

  private async listenTls(aedes: Aedes, options: NonNullable<BrokerOptions['tls']>): Promise<void> {
    let context: tls.TlsOptions;
    try {
      context = { cert: readFileSync(options.certFile), key: readFileSync(options.keyFile), minVersion: 'TLSv1.2' };
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `mqtt.tls: cannot read the certificate or key: ${(err as Error).message}`, { cause: err });
    }
    let server: tls.Server;
    try {
      server = tls.createServer(context, (socket) => aedes.handle(socket));
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `mqtt.tls: the certificate and key do not make a TLS context: ${(err as Error).message}`, { cause: err });
    }
    server.on('tlsClientError', (err) => this.options.logger.debug({ err: err.message }, 'MQTT TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new LabtraceError('E_PORT_IN_USE', `MQTT TLS port ${options.host}:${options.port} is already in use (mqtt.tls.port)`, { cause: err })
            : err,
        ),
      );
      server.listen(options.port, options.host, () => resolve());
    });
    this.tlsServer = server;
  }

  /** Serves MQTT over WebSocket at /mqtt on the given HTTP server. */
  attachWebSocket(server: http.Server): void {
    const aedes = this.aedes;
    if (!aedes) throw new LabtraceError('E_CONFIG', 'broker not started');
    // one WebSocket message may hold at most one largest packet (the packet limit applies to the stream as well)
    const wss = new WebSocketServer({ noServer: true, maxPayload: (this.options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES) + 5 });
    this.wss = wss;
    server.on('upgrade', (req, socket, head) => {
      // the request line is the client's: one that is no URL (`//[`) gets a 400, not a throw out of the listener
      let pathname: string;
      try {
        pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      } catch {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
        return;
      }
      if (pathname !== '/mqtt') return;
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', () => stream.destroy());
        aedes.handle(stream, req);
      });
    });
  }

  publish(topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  async stop(): Promise<void> {
    const aedes = this.aedes;
    this.aedes = undefined;
    for (const ws of this.wss?.clients ?? []) ws.terminate();
    this.wss?.close();
    // stop accepting, close the clients, then wait for the listeners (they close once their connections have)
    const listeners = [this.tlsServer, this.tcp].filter((l) => l !== undefined);
    this.tlsServer = undefined;
    this.tcp = undefined;
    const closed = Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
    // the emitter's and the persistence's connections: Aedes leaves the persistence open
    this.closeRedis();
    this.gatewayClients.clear();
  }
}
