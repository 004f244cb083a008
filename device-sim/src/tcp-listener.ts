// A TCP listener that owns its connections: it drops them all on demand and can refuse connections for
// a while (closed listener, so clients get ECONNREFUSED) before it listens again on the same port.
import net from 'node:net';
import { LabtraceError } from '@labtrace/protocols';

const RELISTEN_RETRY_MS = 200;

export class TcpListener {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private boundPort: number | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly host: string,
    private readonly requestedPort: number,
    /** what listens here, for error messages ("Modbus TCP") */
    private readonly what: string,
    private readonly onSocket: (socket: net.Socket) => void,
    private readonly onError: (err: Error) => void,
  ) {}

  get port(): number {
    return this.boundPort ?? this.requestedPort;
  }

  get connections(): number {
    return this.sockets.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.server = await this.listen(this.requestedPort);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const server = this.server;
    this.server = undefined;
    this.dropAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Drops every open connection, as a device restart would. */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Drops every connection and refuses new ones for `ms`. */
  refuse(ms: number): void {
    this.dropAll();
    if (ms <= 0 || this.stopped || this.boundPort === undefined) return;
    this.server?.close();
    this.server = undefined;
    if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => this.reopen(), ms);
  }

  private reopen(): void {
    this.reopenTimer = undefined;
    const port = this.boundPort;
    if (this.stopped || port === undefined) return;
    this.listen(port).then(
      (server) => {
        if (this.stopped || this.server !== undefined) server.close();
        else this.server = server;
      },
      (err: unknown) => {
        // The old listening socket may not be released yet, or someone took the port: try again.
        this.onError(err instanceof Error ? err : new Error(String(err)));
        if (!this.stopped && this.reopenTimer === undefined) this.reopenTimer = setTimeout(() => this.reopen(), RELISTEN_RETRY_MS);
      },
    );
  }

  private async listen(port: number): Promise<net.Server> {
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('error', (err) => this.onError(err));
      socket.on('close', () => this.sockets.delete(socket));
      this.onSocket(socket);
    });
    server.maxConnections = 256;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          err.code === 'EADDRINUSE'
            ? new LabtraceError('E_PORT_IN_USE', `${this.what} port ${this.host}:${port} is already in use`, { cause: err })
            : err,
        );
      };
      server.once('error', onError);
      server.listen(port, this.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.onError(err));
    const addr = server.address();
    if (typeof addr === 'object' && addr !== null) this.boundPort = addr.port;
    return server;
  }
}
