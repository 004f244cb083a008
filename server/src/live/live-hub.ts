// socket.io: pushes stored samples and gateway state to dashboards as they happen.
import type http from 'node:http';
import { Server } from 'socket.io';
import type { ClientToServerEvents, GatewayStatus, InstrumentHealthMessage, LiveSample, ServerToClientEvents } from '@labtrace/protocols';

export class LiveHub {
  private io: Server<ClientToServerEvents, ServerToClientEvents> | undefined;

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

  samples(samples: LiveSample[]): void {
    this.io?.emit('samples', samples);
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
