// One line-oriented connection to an instrument: a serial port (an RS-232 or USB adapter) or a raw TCP
// socket to a serial device server. It cuts the bytes into lines (CR LF, LF or CR), bounds a line that
// never ends, and reopens by itself with a jittered back-off after the port or socket closes.
import { closeStream, openSocket } from '../socket.js';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { LineConnection as LineConnectionConfig } from '@labtrace/protocols';

export interface LineConnectionEvents {
  line: [line: string];
  /** bytes thrown away: a line longer than the bound (noise, a wrong baud rate) */
  overflow: [bytes: number];
  connected: [];
  /** the port or socket closed, or could not be opened; another attempt follows after `retryInMs` */
  disconnected: [reason: string, retryInMs: number];
}

export interface LineConnectionOptions {
  /** longest line kept; beyond it the bytes are dropped until the next line end */
  maxLineBytes?: number;
  connectTimeoutMs?: number;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export function describeLine(connection: LineConnectionConfig): string {
  return connection.transport === 'serial' ? `serial ${connection.path}` : `tcp ${connection.host}:${connection.port}`;
}

export class LineConnection extends EventEmitter<LineConnectionEvents> {
  private stream: Duplex | undefined;
  private running = false;
  private opening: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private partial = '';
  /** the line being dropped for its length: wait for its end before taking lines again */
  private dropping = false;
  private readonly maxLine: number;
  /** why the stream is being closed from this side (drop), for the 'disconnected' event */
  private dropReason: string | undefined;

  constructor(
    readonly config: LineConnectionConfig,
    private readonly options: LineConnectionOptions = {},
  ) {
    super();
    this.maxLine = options.maxLineBytes ?? 1024;
  }

  get connected(): boolean {
    return this.stream !== undefined && !this.stream.destroyed;
  }

  /** Starts connecting in the background: it never waits for the instrument. */
  start(): void {
    this.running = true;
    this.open();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.opening;
    const stream = this.stream;
    this.stream = undefined;
    if (stream && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        closeStream(stream);
        setTimeout(resolve, 500).unref();
      });
    }
  }

  /** Writes if connected; false when there is no open port or socket. */
  write(data: string): boolean {
    const stream = this.stream;
    if (!stream || stream.destroyed) return false;
    stream.write(Buffer.from(data, 'latin1'));
    return true;
  }

  /** Closes the port or socket from this side (the exchange is out of step); it is opened again with the back-off. */
  drop(reason: string): void {
    const stream = this.stream;
    if (!stream || stream.destroyed) return;
    this.dropReason = reason;
    closeStream(stream);
  }

  private open(): void {
    if (!this.running || this.opening) return;
    this.opening = this.connect()
      .then(
        (stream) => {
          if (!this.running) {
            closeStream(stream);
            return;
          }
          this.failures = 0;
          this.partial = '';
          this.dropping = false;
          this.stream = stream;
          stream.on('data', (chunk: Buffer) => this.onData(chunk));
          stream.on('error', () => undefined); // 'close' follows and does the work
          stream.on('close', () => {
            if (this.stream !== stream) return;
            this.stream = undefined;
            const reason = this.dropReason ?? 'closed by the other end';
            this.dropReason = undefined;
            this.retry(reason);
          });
          this.emit('connected');
        },
        (err: unknown) => this.retry((err as Error).message),
      )
      .finally(() => (this.opening = undefined));
  }

  private retry(reason: string): void {
    if (!this.running) return;
    this.failures++;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures - 1, 6)) * (0.8 + Math.random() * 0.4);
    this.emit('disconnected', reason, Math.round(backoff));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, backoff);
  }

  private async connect(): Promise<Duplex> {
    const config = this.config;
    if (config.transport === 'tcp') return openSocket(config.host, config.port, this.options.connectTimeoutMs ?? 3000);
    // Loaded here so that a gateway without serial instruments never needs the native bindings.
    const { SerialPort } = await import('serialport');
    const port = new SerialPort({
      path: config.path,
      baudRate: config.baudRate,
      dataBits: config.dataBits,
      parity: config.parity,
      stopBits: config.stopBits,
      autoOpen: false,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return port;
  }

  private onData(chunk: Buffer): void {
    // latin1: every byte is one character, so noise never turns into multi-byte surprises
    const text = chunk.toString('latin1');
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      const piece = this.partial + text.slice(start, i);
      this.partial = '';
      start = i + 1;
      if (this.dropping) {
        this.dropping = false;
        continue;
      }
      if (piece.length > this.maxLine) {
        this.emit('overflow', piece.length);
        continue;
      }
      // CR LF gives an empty piece between the two: not a line
      if (piece !== '') this.emit('line', piece);
    }
    if (this.dropping) return;
    this.partial += text.slice(start);
    if (this.partial.length > this.maxLine) {
      this.emit('overflow', this.partial.length);
      this.partial = '';
      this.dropping = true;
    }
  }
}
