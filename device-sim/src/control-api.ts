// HTTP control of a running simulator: read what each instrument serves, pin values, drop connections.
import http from 'node:http';
import { z } from 'zod';
import { issuesOf, LabtraceError } from '@labtrace/protocols';
import type { SimInstrument } from './sim-instrument.js';

const pinSchema = z.record(z.string().min(1), z.union([z.number().finite(), z.boolean(), z.string().max(250)]));

export class ControlApi {
  private server: http.Server | undefined;

  constructor(
    private readonly instruments: ReadonlyMap<string, SimInstrument>,
    private readonly host: string,
    private readonly requestedPort: number,
    private readonly now: () => number = Date.now,
  ) {}

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.requestedPort;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => send(res, 500, { error: String(err) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new LabtraceError('E_PORT_IN_USE', `simulator control port ${this.host}:${this.requestedPort} is already in use`)
            : err,
        ),
      );
      server.listen(this.requestedPort, this.host, () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'instruments') return send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    if (parts.length === 1 && req.method === 'GET') {
      return send(
        res,
        200,
        [...this.instruments.values()].map((i) => ({
          id: i.id,
          model: i.modelKind,
          port: i.server.port,
          requests: i.server.requests,
          values: i.values(),
        })),
      );
    }
    const instrument = this.instruments.get(parts[1] ?? '');
    if (!instrument) return send(res, 404, { error: `instrument "${parts[1] ?? ''}" is not simulated here` });
    const action = `${req.method ?? 'GET'} ${parts[2] ?? ''}`;
    switch (action) {
      case 'GET values':
        return send(res, 200, instrument.values());
      case 'PUT values': {
        const body = await readJson(req);
        const parsed = pinSchema.safeParse(body);
        if (!parsed.success) return send(res, 400, { error: 'invalid body', issues: issuesOf(parsed.error) });
        const unknown = instrument.pin(parsed.data, this.now());
        if (unknown.length > 0) return send(res, 400, { error: `unknown channel(s) of ${instrument.id}: ${unknown.join(', ')}` });
        return send(res, 200, instrument.values());
      }
      case 'DELETE values':
        instrument.unpin(this.now());
        return send(res, 200, instrument.values());
      case 'POST disconnect':
        instrument.server.disconnectAll();
        return send(res, 200, { ok: true });
      default:
        return send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    }
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
