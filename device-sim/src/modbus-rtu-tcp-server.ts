// RTU over TCP: RTU frames (unit id, PDU, CRC) on a TCP socket, as a serial device server forwards
// them from its bus. One server may stand for several units, the slaves behind one device server.
import type net from 'node:net';
import type { ModbusEndpoint } from './endpoint.js';
import type { ModbusUnit } from './modbus-unit.js';
import { ReplyQueue } from './reply-queue.js';
import { RtuFramer, silenceIntervalMs } from './rtu-framing.js';
import { RtuUnits } from './rtu-units.js';
import { TcpListener } from './tcp-listener.js';

export interface ModbusRtuTcpServerOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
  /** silence that ends a frame; default: 3.5 characters of a 9600 baud 8E1 line behind the server */
  silenceMs?: number;
  onClientError?: (err: Error) => void;
  now?: () => number;
}

export class ModbusRtuTcpServer implements ModbusEndpoint {
  readonly transport = 'rtu-over-tcp';
  private readonly listener: TcpListener;
  private readonly units: RtuUnits;
  private readonly silenceMs: number;
  private readonly now: () => number;
  private readonly framers = new Set<RtuFramer>();
  private closedDropped = 0;

  constructor(private readonly options: ModbusRtuTcpServerOptions) {
    this.now = options.now ?? Date.now;
    this.silenceMs = options.silenceMs ?? silenceIntervalMs({ baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1 });
    this.units = new RtuUnits(`RTU over TCP ${options.host}:${options.port}`);
    this.listener = new TcpListener(
      options.host,
      options.port,
      'Modbus RTU over TCP',
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

  /** frames dropped for a bad CRC or a truncation, over every connection */
  get droppedFrames(): number {
    let n = this.closedDropped;
    for (const f of this.framers) n += f.dropped;
    return n;
  }

  addUnit(unit: ModbusUnit): void {
    this.units.add(unit);
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    for (const f of this.framers) f.clear();
    this.framers.clear();
    await this.listener.stop();
  }

  interrupt(ms: number): void {
    // Alone behind the server, the instrument is the device server: the link goes down. With others,
    // only this slave leaves the bus, and its fault set keeps it silent.
    if (this.units.size === 1) this.listener.refuse(ms);
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const held = new ReplyQueue((data) => {
      if (socket.writable) socket.write(data);
    }, this.now);
    const framer = new RtuFramer(this.silenceMs, (frame) => {
      const reply = this.units.answer(frame);
      if (reply) held.push(reply.data, reply.delayMs);
    });
    this.framers.add(framer);
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('close', () => {
      this.closedDropped += framer.dropped;
      framer.clear();
      held.clear();
      this.framers.delete(framer);
    });
  }
}
