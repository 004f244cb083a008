// Modbus RTU slaves on a serial line: one port serves every simulated unit on that bus, each answering
// only its own unit id. Frames end at 3.5 characters of silence; a frame with a bad CRC is dropped.
import type { SerialPort } from 'serialport';
import { LabtraceError } from '@labtrace/protocols';
import type { ModbusEndpoint } from './endpoint.js';
import type { ModbusUnit } from './modbus-unit.js';
import { ReplyQueue } from './reply-queue.js';
import { RtuFramer, silenceIntervalMs, type SerialFormat } from './rtu-framing.js';
import { RtuUnits } from './rtu-units.js';

export interface ModbusRtuSerialServerOptions extends SerialFormat {
  /** serial device, or one end of a pseudo-terminal pair */
  path: string;
  /** an error on the line after it opened */
  onError?: (err: Error) => void;
  now?: () => number;
}

export class ModbusRtuSerialServer implements ModbusEndpoint {
  readonly transport = 'rtu';
  readonly port = 0;
  private readonly units: RtuUnits;
  private readonly framer: RtuFramer;
  private readonly held: ReplyQueue;
  private serial: SerialPort | undefined;
  private written = 0;

  constructor(private readonly options: ModbusRtuSerialServerOptions) {
    this.units = new RtuUnits(`RTU bus ${options.path}`);
    this.held = new ReplyQueue((data) => {
      if (this.serial === undefined) return;
      this.written++;
      this.serial.write(data);
    }, options.now);
    this.framer = new RtuFramer(silenceIntervalMs(options), (frame) => {
      const reply = this.units.answer(frame);
      if (reply) this.held.push(reply.data, reply.delayMs);
    });
  }

  get address(): string {
    return this.options.path;
  }

  get format(): SerialFormat {
    const { baudRate, parity, dataBits, stopBits } = this.options;
    return { baudRate, parity, dataBits, stopBits };
  }

  /** unit ids served on this bus */
  unitIds(): number[] {
    return this.units.ids();
  }

  /** frames dropped for a bad CRC or a truncation */
  get droppedFrames(): number {
    return this.framer.dropped;
  }

  /** reply frames written to the line since start */
  get repliesWritten(): number {
    return this.written;
  }

  addUnit(unit: ModbusUnit): void {
    this.units.add(unit);
  }

  async start(): Promise<void> {
    // Loaded here so that a simulator without serial instruments never needs the native bindings.
    const { SerialPort } = await import('serialport');
    const { path, baudRate, parity, dataBits, stopBits } = this.options;
    const serial = new SerialPort({ path, baudRate, parity, dataBits, stopBits, autoOpen: false });
    await new Promise<void>((resolve, reject) =>
      serial.open((err) =>
        err ? reject(new LabtraceError('E_CONFIG', `serial port ${path}: cannot open: ${err.message}`, { cause: err })) : resolve(),
      ),
    );
    serial.on('data', (chunk: Buffer) => this.framer.push(chunk));
    serial.on('error', (err: Error) => this.options.onError?.(err));
    serial.on('close', () => {
      // Closed under us (the adapter was unplugged, the pty's other side went away): say so once.
      if (this.serial === serial) this.options.onError?.(new Error(`serial port ${path} closed`));
      this.serial = undefined;
      this.framer.clear();
      this.held.clear();
    });
    this.serial = serial;
  }

  async stop(): Promise<void> {
    this.framer.clear();
    this.held.clear();
    const serial = this.serial;
    this.serial = undefined;
    if (serial?.isOpen) await new Promise<void>((resolve) => serial.close(() => resolve()));
  }

  interrupt(): void {
    // The bus stays up for the other slaves; the unit's fault set keeps it silent.
  }
}
