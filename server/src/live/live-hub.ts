// socket.io: pushes stored samples and gateway state to dashboards as they happen.
import type http from 'node:http';
import { Server } from 'socket.io';
import type { ClientToServerEvents, GatewayStatus, InstrumentHealthMessage, LiveSample, ServerToClientEvents } from '@labtrace/protocols';

/** a dashboard draws at most this many points per channel and second; more would only cost bandwidth */
export const LIVE_MIN_INTERVAL_MS = 100;

export class LiveHub {
  private io: Server<ClientToServerEvents, ServerToClientEvents> | undefined;
  /** time of the last sample pushed, per instrument and channel */
  private readonly lastPushed = new Map<string, number>();

  constructor(
    private readonly server: http.Server,
    private readonly version: string,
  ) {}

  start(): Promise<void> {
    const io = new Server<ClientToServerEvents, ServerToClientEvents>(this.server, { serveClient: false, maxHttpBufferSize: 16 * 1024 });
    io.on('connection', (socket) => {
      socket.on('hello', (ack) => {
        if (typeof ack === 'function') ack({ version: this.version });
      });
    });
    this.io = io;
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const io = this.io;
    this.io = undefined;
    if (!io) return;
    io.disconnectSockets(true);
    // close() also closes the HTTP server it is attached to; the server owns that, so only detach.
    io.engine.close();
    await Promise.resolve();
  }

  /** Pushes stored samples to the dashboards, at most one per channel every LIVE_MIN_INTERVAL_MS (a fast channel is thinned). */
  samples(samples: LiveSample[]): void {
    const io = this.io;
    if (!io || io.engine.clientsCount === 0) return;
    const pushed: LiveSample[] = [];
    for (const s of samples) {
      const key = `${s.instrument}\u0000${s.channel}`;
      const last = this.lastPushed.get(key);
      if (last !== undefined && s.ts - last < LIVE_MIN_INTERVAL_MS && s.ts >= last) continue;
      this.lastPushed.set(key, s.ts);
      pushed.push(s);
    }
    if (this.lastPushed.size > 100_000) this.lastPushed.clear();
    if (pushed.length > 0) io.emit('samples', pushed);
  }

  gateway(status: GatewayStatus): void {
    this.io?.emit('gateway', status);
  }

  health(health: InstrumentHealthMessage[]): void {
    this.io?.emit('health', health);
  }

  instrumentsChanged(): void {
    this.io?.emit('instruments');
  }

  get clients(): number {
    return this.io?.engine.clientsCount ?? 0;
  }
}
