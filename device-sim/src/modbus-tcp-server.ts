// A Modbus TCP server for one simulated instrument. It frames MBAP itself, so coalesced or split
// packets are handled, and a client that vanishes never takes the process down.
import type net from 'node:net';
import { LabtraceError } from '@labtrace/protocols';
import type { ModbusEndpoint } from './endpoint.js';
import type { ModbusUnit } from './modbus-unit.js';
import { ReplyQueue } from './reply-queue.js';
import { TcpListener } from './tcp-listener.js';

export interface ModbusTcpServerOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
  onClientError?: (err: Error) => void;
  now?: () => number;
}

const MBAP = 7;

export class ModbusTcpServer implements ModbusEndpoint {
  readonly transport = 'tcp';
  private readonly listener: TcpListener;
  private unit: ModbusUnit | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ModbusTcpServerOptions) {
    this.now = options.now ?? Date.now;
    this.listener = new TcpListener(
      options.host,
      options.port,
      'Modbus TCP',
      (socket) => this.accept(socket),
      (err) => options.onClientError?.(err),
    );
  }

  get port(): number {
    return this.listener.port;
  }

  get address(): string {
    return `${this.options.host}:${this.port}`;
  }

  /** requests its instrument received */
  get requests(): number {
    return this.unit?.requests ?? 0;
  }

  addUnit(unit: ModbusUnit): void {
    if (this.unit !== undefined) {
      throw new LabtraceError('E_CONFIG', `Modbus TCP ${this.address}: already serves unit ${this.unit.unitId}; one instrument per TCP port`);
    }
    this.unit = unit;
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }

  /** Drops every open connection, as a device restart would. */
  disconnectAll(): void {
    this.listener.dropAll();
  }

  interrupt(ms: number): void {
    this.listener.refuse(ms);
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    let pending: Buffer | undefined;
    let held: ReplyQueue | undefined;
    const send = (data: Buffer): void => {
      if (socket.writable) socket.write(data);
    };
    socket.on('data', (chunk: Buffer) => {
      const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      while (buf.length - at >= MBAP) {
        const length = buf.readUInt16BE(at + 4);
        if (length < 2 || length > 254 || buf.readUInt16BE(at + 2) !== 0) {
          // Not Modbus: there is no way to resynchronise a TCP stream, so close it.
          socket.destroy();
          return;
        }
        const end = at + 6 + length;
        if (buf.length < end) break;
        const reply = this.handle(buf, at, end);
        at = end;
        if (reply === undefined) continue;
        if (reply.delayMs > 0 || held !== undefined) {
          held ??= new ReplyQueue(send, this.now);
          held.push(reply.data, reply.delayMs);
        } else send(reply.data);
      }
      pending = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined;
    });
    socket.on('close', () => held?.clear());
  }

  private handle(buf: Buffer, at: number, end: number): { data: Buffer; delayMs: number } | undefined {
    const unitId = buf[at + 6] ?? 0;
    const unit = this.unit;
    if (unit === undefined || (unitId !== unit.unitId && unitId !== 0 && unitId !== 255)) return undefined;
    const reply = unit.handle(buf.subarray(at + MBAP, end));
    if (reply === undefined) return undefined;
    const data = Buffer.allocUnsafe(MBAP + reply.pdu.length);
    buf.copy(data, 0, at, at + 4);
    data.writeUInt16BE(reply.pdu.length + 1, 4);
    data[6] = unitId;
    data.set(reply.pdu, MBAP);
    return { data, delayMs: reply.delayMs };
  }
}
