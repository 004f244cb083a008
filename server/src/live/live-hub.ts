// socket.io: pushes stored samples and gateway state to dashboards as they happen.
import type http from 'node:http';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';
import { openRedis } from '../redis.js';
import { Server, type Socket } from 'socket.io';
import {
  packRunSamples,
  type ClientToServerEvents,
  type GatewayStatus,
  type InstrumentHealthMessage,
  type ListChange,
  type LiveSample,
  type RunAlarmEvent,
  type RunWatchAnswer,
  type ServerToClientEvents,
} from '@labtrace/protocols';
import { credentialOf } from '../auth/policy.js';
import type { Principal, Role, Users } from '../auth/users.js';
import { seesAll } from '../auth/visibility.js';
import type { Logger } from '../log.js';

/** who receives the lab-wide stream (samples, gateways, health): the lab's staff and auditors */
export const LAB_ROOM_ROLES: readonly Role[] = ['admin', 'technician', 'signatory', 'auditor'];
const LAB_ROOM = 'lab';
const userRoom = (username: string): string => `user:${username}`;
const runRoom = (run: string): string => `run:${run}`;
const organizationRoom = (organization: string): string => `organization:${organization}`;

/** who may watch a test run: the run's state when the principal may see it, else undefined (unknown or not theirs) */
export type RunAccess = (principal: Principal, run: string) => Promise<{ state: string } | undefined>;

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

interface SocketData {
  principal: Principal;
}
type LiveSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/**
 * Several server nodes: socket.io's Redis streams adapter carries every emit to the dashboards connected to any
 * node (samples, run events, alarms, list changes, a user's disconnection), so a dashboard on node B sees what
 * node A ingested. Redis 7; the password from a file or the environment, never in the URL or a log.
 */
export interface LiveCluster {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** the Redis stream the nodes of one lab share */
  stream: string;
}

/** a dashboard draws at most this many points per channel and second; more would only cost bandwidth */
export const LIVE_MIN_INTERVAL_MS = 100;

export class LiveHub {
  private io: Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData> | undefined;
  /** time of the last sample pushed, per instrument and channel */
  private readonly lastPushed = new Map<string, number>();
  /** the Redis connection of the cluster adapter, when the nodes share live updates */
  private redis: Redis | undefined;
  /** the adapter's own connections (its stream reader, its pub/sub): closed with the hub, or they would reconnect forever */
  private readonly redisCopies: Redis[] = [];

  /**
   * @param server the HTTP server whose clients connect here; undefined on a node that serves no API
   *   (cluster.roles): its hub only sends, through the cluster adapter, to the dashboards connected to other nodes
   */
  constructor(
    private readonly server: http.Server | undefined,
    private readonly version: string,
    private readonly users: Users,
    private readonly runAccess: RunAccess = () => Promise.resolve(undefined),
    private readonly logger?: Logger,
    private readonly cluster?: LiveCluster,
  ) {}

  async start(): Promise<void> {
    // Redis first: a node that cannot reach its peers' Redis does not start (nothing to undo then)
    const redis = this.cluster === undefined ? undefined : await this.connectRedis(this.cluster);
    const options = { serveClient: false, maxHttpBufferSize: 16 * 1024 };
    const io =
      this.server === undefined
        ? new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(options)
        : new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(this.server, options);
    if (redis !== undefined && this.cluster !== undefined) {
      this.redis = redis;
      io.adapter(createAdapter(redis, { streamName: this.cluster.stream, blockTimeInMs: 1000 }));
    }
    // the handshake carries the session cookie (a browser) or a token in `auth` (a script); anonymous sockets are refused
    io.use((socket, next) => {
      // a throw here would escape socket.io's middleware chain and end the process: refuse the socket instead
      try {
        this.admit(socket, next);
      } catch (err) {
        this.logger?.error({ err: String(err), socket: socket.id }, 'socket.io handshake failed');
        next(new Error('E_INTERNAL: the handshake could not be checked'));
      }
    });
    io.on('connection', (socket) => this.connected(socket));
    this.io = io;
  }

  /** The cluster's Redis connection; a failure names the setting, never the password. */
  private async connectRedis(cluster: LiveCluster): Promise<Redis> {
    // commands wait for a reconnection rather than fail at once; a dead Redis delays other nodes' updates only
    const redis = await openRedis(cluster, 'live.redis', 'live updates', this.logger);
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (override?: Parameters<Redis['duplicate']>[0]) => {
      const copy = duplicate(override);
      this.redisCopies.push(copy);
      return copy;
    };
    return redis;
  }

  /** Authenticates a handshake: the session cookie (a browser) or a token in `auth` (a script). */
  private admit(socket: LiveSocket, next: (err?: Error) => void): void {
    const fromAuth = (socket.handshake.auth as { token?: unknown }).token;
    const credential =
      typeof fromAuth === 'string' ? { token: fromAuth, via: 'bearer' as const } : credentialOf({ cookie: socket.handshake.headers.cookie });
    // a cookie rides along on a socket opened by any page: only our own pages may use it (cross-site WebSocket hijacking)
    const origin = socket.handshake.headers.origin;
    if (credential?.via === 'cookie' && origin !== undefined && !sameHost(origin, socket.handshake.headers.host))
      return next(new Error('E_FORBIDDEN: a session cookie is accepted only from this server’s own pages'));
    if (credential === undefined) return next(new Error('E_AUTH: sign in first'));
    this.users.authenticate(credential.token, credential.via).then(
      (principal) => {
        if (!principal) return next(new Error('E_AUTH: sign in first'));
        if (principal.mustChange) return next(new Error('E_FORBIDDEN: change your one-time password first'));
        socket.data.principal = principal;
        next();
      },
      (err: unknown) => {
        // the store could not answer: the socket is refused (and may try again), never admitted
        this.logger?.error({ err: String(err), socket: socket.id }, 'socket.io handshake could not be authenticated');
        next(new Error('E_STORE_UNAVAILABLE: try again later'));
      },
    );
  }

  /**
   * A handler of a client's event. socket.io calls it from the socket's message event, where a throw would end the
   * process: it is caught, logged, and the socket is disconnected.
   */
  private guarded<A extends unknown[]>(socket: LiveSocket, event: string, handler: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        handler(...args);
      } catch (err) {
        this.logger?.error({ err: String(err), socket: socket.id, event }, 'socket.io handler failed');
        socket.disconnect(true);
      }
    };
  }

  /** the last of each socket's room requests (watch, unwatch), which run one after another */
  private readonly turns = new WeakMap<LiveSocket, Promise<void>>();

  /** `work` after the socket's requests before it; a failure is logged and ends the socket, as guarded() does */
  private inTurn(socket: LiveSocket, event: string, work: () => Promise<unknown>): void {
    const next = (this.turns.get(socket) ?? Promise.resolve()).then(work).then(
      () => undefined,
      (err: unknown) => {
        this.logger?.error({ err: String(err), socket: socket.id, event }, 'socket.io handler failed');
        socket.disconnect(true);
      },
    );
    this.turns.set(socket, next);
  }

  /** A socket's rooms and requests. */
  private connected(socket: LiveSocket): void {
    const { principal } = socket.data;
    // rooms are joined by the server from the role, never on a client's request
    void socket.join(userRoom(principal.username));
    // the lab-wide stream carries every client's measurements: not for an auditor whose grant names some clients
    if (LAB_ROOM_ROLES.includes(principal.role) && seesAll(principal)) void socket.join(LAB_ROOM);
    // a client's people hear of changes to their organization's runs and reports (`changed`)
    if (principal.organization !== null) void socket.join(organizationRoom(principal.organization));
    socket.on(
      'hello',
      this.guarded(socket, 'hello', (ack) => {
        if (typeof ack === 'function') ack({ version: this.version });
      }),
    );
    // a run's room is joined only after the same visibility check as GET /api/runs/:id
    socket.on(
      'run:watch',
      this.guarded(socket, 'run:watch', (run, ack) => {
        if (typeof ack !== 'function') return;
        // `run` is whatever the client sent: only a string is a run id (String() of an object may throw)
        if (typeof run !== 'string') {
          ack({ ok: false, error: 'expected a run id (a string)' });
          return;
        }
        // the socket's requests in the order they came: a watch asked before an unwatch is joined before it leaves
        this.inTurn(socket, 'run:watch', async () => {
          const visible = await this.runAccess(principal, run);
          const answer: RunWatchAnswer =
            visible === undefined ? { ok: false, error: `run "${run}" is not known` } : { ok: true, state: visible.state };
          if (answer.ok) await socket.join(runRoom(run));
          ack(answer);
        });
      }),
    );
    socket.on(
      'run:unwatch',
      this.guarded(socket, 'run:unwatch', (run) => {
        if (typeof run === 'string') this.inTurn(socket, 'run:unwatch', () => Promise.resolve(socket.leave(runRoom(run))));
      }),
    );
  }

  /** the clients connected to this node (none on a node without the API: its hub is not attached to an HTTP server) */
  private get connectedClients(): number {
    return (this.io?.engine as { clientsCount: number } | undefined)?.clientsCount ?? 0;
  }

  async stop(): Promise<void> {
    const io = this.io;
    this.io = undefined;
    if (!io) return;
    // this node's sockets only: with the cluster adapter, io.disconnectSockets would end every node's
    io.local.disconnectSockets(true);
    // close() also closes the HTTP server it is attached to; the server owns that, so only detach (a hub of a node
    // without the API was never attached: it has no engine)
    (io.engine as typeof io.engine | undefined)?.close();
    const redis = this.redis;
    this.redis = undefined;
    if (redis) {
      await io.of('/').adapter.close();
      for (const copy of this.redisCopies.splice(0)) copy.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    }
  }

  /** Pushes stored samples to the dashboards, at most one per channel every LIVE_MIN_INTERVAL_MS (a fast channel is thinned). */
  samples(samples: LiveSample[]): void {
    const io = this.io;
    // nobody connected here, and no other node to tell: nothing to push
    if (!io || (this.connectedClients === 0 && !this.redis)) return;
    const pushed: LiveSample[] = [];
    for (const s of samples) {
      const key = `${s.instrument}\u0000${s.channel}`;
      const last = this.lastPushed.get(key);
      if (last !== undefined && s.ts - last < LIVE_MIN_INTERVAL_MS && s.ts >= last) continue;
      this.lastPushed.set(key, s.ts);
      pushed.push(s);
    }
    if (this.lastPushed.size > 100_000) this.lastPushed.clear();
    if (pushed.length > 0) io.to(LAB_ROOM).emit('samples', pushed);
  }

  /**
   * Pushes a running test run's stored samples to the sockets watching it (not thinned: a witness sees every
   * record). One emit per stored batch to the room: socket.io encodes it once, and the WebSocket frame is built
   * once for all sockets (per-message compression stays off: it would compress per socket). The samples are
   * packed in columns, a fifth of the bytes of LiveSample objects.
   */
  runSamples(run: string, samples: LiveSample[]): void {
    const io = this.io;
    if (!io || samples.length === 0) return;
    const room = runRoom(run);
    // nobody watching (on this node, when it is the only one): no packing
    if (!this.redis && (io.sockets.adapter.rooms.get(room)?.size ?? 0) === 0) return;
    io.to(room).emit('run:samples', run, packRunSamples(samples));
  }

  runState(run: { id: string; state: string; startedAt: number | null; endedAt: number | null }): void {
    this.io?.to(runRoom(run.id)).emit('run:state', { id: run.id, state: run.state, startedAt: run.startedAt, endedAt: run.endedAt });
  }

  /** Pushes an inspection alarm event to the sockets watching its run (joined after the run's visibility check). */
  runAlarm(event: RunAlarmEvent): void {
    this.io?.to(runRoom(event.run)).emit('run:alarm', event);
  }

  gateway(status: GatewayStatus): void {
    this.io?.to(LAB_ROOM).emit('gateway', status);
  }

  health(health: InstrumentHealthMessage[]): void {
    this.io?.to(LAB_ROOM).emit('health', health);
  }

  /**
   * Tells the dashboards that a record of a list changed, so that views showing the list read it again (no polling).
   * The lab's staff hear of every change; a customer organization's users of their own records (`organization`).
   */
  changed(change: ListChange, organization?: string | null): void {
    const io = this.io;
    if (!io) return;
    const rooms = organization ? [LAB_ROOM, organizationRoom(organization)] : [LAB_ROOM];
    io.to(rooms).emit('changed', { list: change.list, id: change.id });
  }

  instrumentsChanged(): void {
    this.io?.to(LAB_ROOM).emit('instruments');
  }

  /** Ends a user's live connections (logout, password change, role change). */
  disconnectUser(username: string): void {
    this.io?.in(userRoom(username)).disconnectSockets(true);
  }

  get clients(): number {
    return this.connectedClients;
  }
}
