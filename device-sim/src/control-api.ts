// HTTP control of a running simulator: read what each instrument serves, pin values, drop connections,
// and inject faults.
//
//   GET    /instruments                   every instrument, with its values and active faults
//   GET    /instruments/:id               one instrument
//   GET    /instruments/:id/values        its values; PUT pins some ({"channel": value}), DELETE unpins all
//   POST   /instruments/:id/disconnect    drops its connections
//   GET    /instruments/:id/fault         its active faults
//   PUT    /instruments/:id/fault         activates one ({"kind": "slow", "ms": 1500}; see faults.ts)
//   DELETE /instruments/:id/fault[/:kind] clears every fault, or one kind
import http from 'node:http';
import { OpcuaServer } from './opcua-server.js';
import { z } from 'zod';
import { issuesOf, LabtraceError, type LabtraceErrorCode } from '@labtrace/protocols';
import { FAULT_KINDS, faultSchema, type FaultKind } from './faults.js';
import { MqttPublisher } from './mqtt-publisher.js';
import type { SimInstrument } from './sim-instrument.js';

/** an OPC UA status name such as BadSensorFailure or UncertainLastUsableValue; null: Good again */
const statusSchema = z.strictObject({
  channel: z.string().min(1),
  status: z
    .string()
    .regex(/^(Good|Uncertain|Bad)[A-Za-z0-9]*$/)
    .nullable(),
});
const pinSchema = z.record(z.string().min(1), z.union([z.number().finite(), z.boolean(), z.string().max(250)]));
const MAX_BODY = 64 * 1024;

/** The one place where error codes become HTTP statuses. */
function statusOf(code: LabtraceErrorCode): number {
  switch (code) {
    case 'E_BAD_REQUEST':
    case 'E_PAYLOAD':
      return 400;
    case 'E_NOT_FOUND':
      return 404;
    default:
      return 500;
  }
}

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
      this.route(req, res).catch((err: unknown) => {
        if (err instanceof LabtraceError)
          send(res, statusOf(err.code), { error: err.message, ...(err.details === undefined ? {} : { issues: err.details }) });
        else send(res, 500, { error: String(err) });
      });
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
    const noRoute = (): LabtraceError => new LabtraceError('E_NOT_FOUND', `no route ${req.method ?? ''} ${url.pathname}`);
    const parts = pathParts(url.pathname);
    if (parts === undefined || parts[0] !== 'instruments' || parts.length > 4) throw noRoute();
    const now = this.now();
    if (parts.length === 1) {
      if (req.method !== 'GET') throw noRoute();
      return send(
        res,
        200,
        [...this.instruments.values()].map((i) => describe(i, now)),
      );
    }
    const instrument = this.instruments.get(parts[1] ?? '');
    if (!instrument) throw new LabtraceError('E_NOT_FOUND', `instrument "${parts[1] ?? ''}" is not simulated here`);
    const action = `${req.method ?? 'GET'} ${parts[2] ?? ''}`;
    if (parts.length === 4 && action !== 'DELETE fault') throw noRoute();
    switch (action) {
      case 'GET ':
        return send(res, 200, describe(instrument, now));
      case 'GET values':
        return send(res, 200, instrument.values());
      case 'PUT values': {
        const parsed = pinSchema.safeParse(await readJson(req));
        if (!parsed.success) return send(res, 400, { error: 'invalid body', issues: issuesOf(parsed.error) });
        const unknown = instrument.pin(parsed.data, now);
        if (unknown.length > 0) throw new LabtraceError('E_BAD_REQUEST', `unknown channel(s) of ${instrument.id}: ${unknown.join(', ')}`);
        return send(res, 200, instrument.values());
      }
      case 'DELETE values':
        instrument.unpin(now);
        return send(res, 200, instrument.values());
      case 'PUT status': {
        // an OPC UA instrument: a status code on a channel's node (null: Good again)
        const parsed = statusSchema.safeParse(await readJson(req));
        if (!parsed.success) return send(res, 400, { error: 'invalid body', issues: issuesOf(parsed.error) });
        const server = instrument.server;
        if (!(server instanceof OpcuaServer)) {
          throw new LabtraceError(
            'E_BAD_REQUEST',
            `a status code applies to OPC UA instruments; ${instrument.id} is a ${instrument.profile.protocol} instrument`,
          );
        }
        server.setStatus(parsed.data.channel, parsed.data.status ?? undefined);
        return send(res, 200, { ok: true });
      }
      case 'POST disconnect':
        instrument.server.interrupt(0);
        return send(res, 200, { ok: true });
      case 'GET fault':
        return send(res, 200, instrument.activeFaults(now));
      case 'PUT fault': {
        const parsed = faultSchema.safeParse(await readJson(req));
        if (!parsed.success) return send(res, 400, { error: 'invalid fault', issues: issuesOf(parsed.error) });
        instrument.setFault(parsed.data, now);
        return send(res, 200, describe(instrument, now));
      }
      case 'DELETE fault': {
        const kind = parts[3];
        if (kind !== undefined && !isFaultKind(kind)) {
          throw new LabtraceError('E_BAD_REQUEST', `no fault kind "${kind}"; expected one of ${FAULT_KINDS.join(', ')}`);
        }
        instrument.clearFault(now, kind);
        return send(res, 200, describe(instrument, now));
      }
      default:
        throw noRoute();
    }
  }
}

function pathParts(pathname: string): string[] | undefined {
  try {
    return pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

function isFaultKind(kind: string): kind is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(kind);
}

function describe(i: SimInstrument, now: number): Record<string, unknown> {
  const server = i.server;
  return {
    id: i.id,
    model: i.modelKind,
    transport: server.transport,
    address: server.address,
    port: server.port,
    ...(i.profile.protocol === 'modbus' ? { unitId: i.profile.unitId, requests: i.requests } : {}),
    ...(server instanceof MqttPublisher ? { published: server.published, dropped: server.dropped, connected: server.connected } : {}),
    values: i.values(),
    faults: i.activeFaults(now),
  };
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
    if (size > MAX_BODY) throw new LabtraceError('E_BAD_REQUEST', `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new LabtraceError('E_BAD_REQUEST', 'body is not JSON');
  }
}
