// A Modbus TCP server for one simulated instrument. It frames MBAP itself, so coalesced or split
// packets are handled, and a client that vanishes never takes the process down.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import {
  decodeRequest,
  encodeException,
  encodeReadBitsResponse,
  encodeReadRegistersResponse,
  encodeWriteResponse,
  LabtraceError,
  ModbusException,
  ModbusPduError,
  type ModbusRequest,
} from '@labtrace/protocols';
import type { RegisterImage } from './register-image.js';

export interface ModbusTcpServerOptions {
  host: string;
  port: number;
  unitId: number;
  image: RegisterImage;
}

interface ServerEvents {
  request: [fc: number];
  clientError: [err: Error];
}

const MBAP = 7;

export class ModbusTcpServer extends EventEmitter<ServerEvents> {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  requests = 0;

  constructor(private readonly options: ModbusTcpServerOptions) {
    super();
  }

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.options.port;
  }

  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = 256;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const { host, port } = this.options;
        reject(
          err.code === 'EADDRINUSE' ? new LabtraceError('E_PORT_IN_USE', `Modbus TCP port ${host}:${port} is already in use`, { cause: err }) : err,
        );
      };
      server.once('error', onError);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Drops every open connection, as a device restart would. */
  disconnectAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= MBAP) {
        const length = pending.readUInt16BE(4);
        if (length < 2 || length > 254 || pending.readUInt16BE(2) !== 0) {
          // Not Modbus: there is no way to resynchronise a TCP stream, so close it.
          socket.destroy();
          return;
        }
        if (pending.length < 6 + length) break;
        const frame = pending.subarray(0, 6 + length);
        pending = pending.subarray(6 + length);
        const reply = this.handle(frame);
        if (reply && socket.writable) socket.write(reply);
      }
    });
    socket.on('error', (err) => this.emit('clientError', err));
    socket.on('close', () => this.sockets.delete(socket));
  }

  private handle(frame: Buffer): Buffer | undefined {
    const unit = frame[6] ?? 0;
    if (unit !== this.options.unitId && unit !== 0 && unit !== 255) return undefined;
    const pdu = frame.subarray(7);
    this.requests++;
    let out: Uint8Array;
    try {
      const req = decodeRequest(pdu);
      this.emit('request', req.fc);
      out = this.answer(req);
    } catch (err) {
      const code = err instanceof ModbusPduError ? err.exception : ModbusException.ServerDeviceFailure;
      out = encodeException(pdu[0] ?? 0, code);
    }
    const reply = Buffer.allocUnsafe(MBAP + out.length);
    frame.copy(reply, 0, 0, 4);
    reply.writeUInt16BE(out.length + 1, 4);
    reply[6] = unit;
    reply.set(out, MBAP);
    return reply;
  }

  private answer(req: ModbusRequest): Uint8Array {
    const image = this.options.image;
    const set = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input', 5: 'coil', 6: 'holding', 15: 'coil', 16: 'holding' } as const;
    const registerSet = set[req.fc];
    const quantity = 'quantity' in req ? req.quantity : 'values' in req ? req.values.length : 1;
    if (!image.isMapped(registerSet, req.address, quantity)) {
      throw new ModbusPduError(ModbusException.IllegalDataAddress, `address ${req.address}+${quantity} not mapped`);
    }
    switch (req.fc) {
      case 1:
        return encodeReadBitsResponse(1, image.coil.subarray(req.address, req.address + req.quantity));
      case 2:
        return encodeReadBitsResponse(2, image.discrete.subarray(req.address, req.address + req.quantity));
      case 3:
        return encodeReadRegistersResponse(3, image.holding.subarray(req.address, req.address + req.quantity));
      case 4:
        return encodeReadRegistersResponse(4, image.input.subarray(req.address, req.address + req.quantity));
      case 5:
        image.coil[req.address] = req.value ? 1 : 0;
        return encodeWriteResponse(req);
      case 6:
        image.holding[req.address] = req.value;
        return encodeWriteResponse(req);
      case 15:
        req.values.forEach((v, i) => (image.coil[req.address + i] = v ? 1 : 0));
        return encodeWriteResponse(req);
      case 16:
        image.holding.set(req.values, req.address);
        return encodeWriteResponse(req);
    }
  }
}
