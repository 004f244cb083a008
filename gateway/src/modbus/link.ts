// One physical Modbus connection (a TCP socket, a serial bus, or RTU over a TCP socket) shared by
// every instrument behind it. Requests go through one bounded FIFO, one at a time, with pacing; every
// reply is checked (transaction id, unit id, function code, length, CRC) before it is believed, and a
// late reply to a request that already timed out is dropped, never taken for the next answer.
import { closeStream, openSocket } from '../socket.js';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import {
  checkRtuCrc,
  decodeReply,
  encodeMbap,
  encodeRequest,
  encodeRtu,
  LabtraceError,
  rtuReplyLength,
  takeMbapFrames,
  type Connection,
  type ModbusReply,
  type ModbusRequest,
} from '@labtrace/protocols';

export interface LinkOptions {
  /** bound of queued requests; beyond it a request is refused at once (E_MODBUS_QUEUE_FULL) */
  maxQueue: number;
  /** pause between the end of one exchange and the next request */
  pacingMs: number;
  now?: () => number;
}

export interface LinkCounters {
  requests: number;
  staleReplies: number;
  badReplies: number;
  crcErrors: number;
  timeouts: number;
  connects: number;
  connectFailures: number;
}

interface LinkEvents {
  connected: [];
  disconnected: [reason: string];
}

interface Job {
  unitId: number;
  request: ModbusRequest;
  timeoutMs: number;
  resolve: (reply: { reply: ModbusReply; latencyMs: number }) => void;
  reject: (err: Error) => void;
}

interface Pending {
  onTimeout: () => void;
  job: Job;
  transactionId: number;
  sentAt: number;
  /** ends the exchange once: runs `fn` (resolve or reject the job) */
  settle: (fn: () => void) => void;
}

/** RTU inter-frame silence we wait for before sending (3.5 characters at 9600 baud is 4 ms) */
const RTU_INTERFRAME_MS = 5;

const CONNECT_BACKOFF_MAX_MS = 10_000;
/** consecutive timeouts after which a TCP connection is considered half-open and is replaced */
const TIMEOUTS_BEFORE_RECONNECT = 3;

export function linkKey(connection: Connection): string {
  return connection.transport === 'rtu' ? `rtu:${connection.path}` : `${connection.transport}:${connection.host}:${connection.port}`;
}

export function describe(connection: Connection): string {
  return connection.transport === 'rtu' ? `serial ${connection.path}` : `${connection.transport} ${connection.host}:${connection.port}`;
}

export class ModbusLink extends EventEmitter<LinkEvents> {
  readonly counters: LinkCounters = { requests: 0, staleReplies: 0, badReplies: 0, crcErrors: 0, timeouts: 0, connects: 0, connectFailures: 0 };
  private stream: Duplex | undefined;
  private connecting: Promise<void> | undefined;
  private readonly queue: Job[] = [];
  private pending: Pending | undefined;
  private buffer: Uint8Array = new Uint8Array(0);
  private transactionId = 0;
  private busy = false;
  private closed = false;
  private consecutiveTimeouts = 0;
  private connectFailures = 0;
  private nextConnectAt = 0;
  /** RTU: after a timeout, bytes are discarded until the line has been quiet this long */
  private quietUntil = 0;
  private pacedUntil = 0;
  private quietGuardMs = 0;
  private lastByteAt = 0;
  private readonly framing: 'mbap' | 'rtu';
  /** One timer per link, re-armed with refresh() for each request: a new timer per request costs more. */
  private watchdog: NodeJS.Timeout | undefined;
  private watchdogMs = 0;
  /** encoded PDUs of the (reused) request objects of the instruments' read plans */
  private readonly pdus = new WeakMap<ModbusRequest, Uint8Array>();
  private readonly now: () => number;

  constructor(
    readonly connection: Connection,
    private readonly options: LinkOptions,
  ) {
    super();
    this.framing = connection.transport === 'tcp' ? 'mbap' : 'rtu';
    this.now = options.now ?? Date.now;
  }

  get connected(): boolean {
    return this.stream !== undefined && !this.stream.destroyed;
  }

  get queued(): number {
    return this.queue.length + (this.pending ? 1 : 0);
  }

  /** Sends a request and resolves with the checked reply, or rejects with a coded error. */
  request(unitId: number, request: ModbusRequest, timeoutMs: number): Promise<{ reply: ModbusReply; latencyMs: number }> {
    if (this.closed) return Promise.reject(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)} is closed`));
    if (this.queue.length >= this.options.maxQueue) {
      return Promise.reject(new LabtraceError('E_MODBUS_QUEUE_FULL', `${describe(this.connection)}: ${this.queue.length} requests already queued`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ unitId, request, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    for (const job of this.queue.splice(0)) job.reject(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)} closed`));
    this.failPending(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)} closed`));
    await this.dropStream('closed');
  }

  /**
   * Sends the next queued request if the link is free. Synchronous while connected (a TCP link sends
   * from here, or from the reply handler of the previous request): promises per request cost CPU at
   * thousands of requests a second.
   */
  private pump(): void {
    if (this.busy || this.pending || this.closed || this.now() < this.pacedUntil) return;
    const job = this.queue.shift();
    if (!job) return;
    if (this.connected && this.framing === 'mbap') {
      this.send(job);
      return;
    }
    this.busy = true;
    this.prepare(job).then(
      (ready) => {
        this.busy = false;
        if (ready) this.send(job);
        else this.pump();
      },
      (err: unknown) => {
        this.busy = false;
        job.reject(err as Error);
        this.pump();
      },
    );
  }

  /** Connects if needed and, on RTU, waits for a quiet line; false (with the job rejected) if it cannot. */
  private async prepare(job: Job): Promise<boolean> {
    if (!this.connected) {
      try {
        await this.ensureConnected(job.timeoutMs);
      } catch (err) {
        job.reject(err as Error);
        return false;
      }
    }
    if (this.framing === 'rtu' && !(await this.waitForQuiet(job.timeoutMs))) {
      this.counters.timeouts++;
      job.reject(new LabtraceError('E_MODBUS_TIMEOUT', `${describe(this.connection)}: the line did not fall quiet within ${job.timeoutMs} ms`));
      return false;
    }
    if (!this.stream || this.closed) {
      job.reject(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)}: connection lost`));
      return false;
    }
    return true;
  }

  private send(job: Job): void {
    const stream = this.stream;
    if (!stream) {
      job.reject(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)}: connection lost`));
      this.pump();
      return;
    }
    let pdu = this.pdus.get(job.request);
    if (pdu === undefined) {
      pdu = encodeRequest(job.request);
      this.pdus.set(job.request, pdu);
    }
    this.transactionId = (this.transactionId + 1) & 0xffff;
    const encoded = this.framing === 'mbap' ? encodeMbap(this.transactionId, job.unitId, pdu) : encodeRtu(job.unitId, pdu);
    // a Buffer view: the socket would otherwise convert the Uint8Array on every write
    const frame = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
    const settle = (fn: () => void): void => {
      if (this.pending?.job !== job) return;
      this.pending = undefined;
      fn();
      if (this.options.pacingMs > 0) {
        // no request from any instrument of this link goes out before the pause is over
        this.pacedUntil = this.now() + this.options.pacingMs;
        setTimeout(() => {
          this.pacedUntil = 0;
          this.pump();
        }, this.options.pacingMs);
      } else this.pump();
    };
    const sentAt = this.now();
    const onTimeout = (): void => {
      // A half-open TCP connection is dropped before the next request could be sent on it.
      const drop = this.framing === 'mbap' && this.consecutiveTimeouts + 1 >= TIMEOUTS_BEFORE_RECONNECT;
      if (drop && this.stream) {
        const dead = this.stream;
        this.stream = undefined;
        closeStream(dead);
        this.emit('disconnected', `${this.consecutiveTimeouts + 1} timeouts in a row`);
      }
      settle(() => {
        this.counters.timeouts++;
        this.consecutiveTimeouts++;
        // RTU has no transaction id: keep the line closed to new requests until it has been quiet for
        // a whole timeout, so that a late answer cannot be read as the answer to the next request.
        if (this.framing === 'rtu') {
          this.quietGuardMs = job.timeoutMs;
          this.quietUntil = this.now() + job.timeoutMs;
        }
        job.reject(new LabtraceError('E_MODBUS_TIMEOUT', `unit ${job.unitId} on ${describe(this.connection)} did not answer in ${job.timeoutMs} ms`));
      });
    };
    this.pending = { job, transactionId: this.transactionId, sentAt, settle, onTimeout };
    this.armWatchdog(job.timeoutMs);
    // RTU replies carry no transaction id: anything received before this request is noise. (MBAP keeps
    // its leftover bytes: they may be the start of the next frame.)
    if (this.framing === 'rtu') this.buffer = new Uint8Array(0);
    this.counters.requests++;
    stream.write(frame);
  }

  private armWatchdog(ms: number): void {
    if (this.watchdog !== undefined && this.watchdogMs === ms) {
      this.watchdog.refresh();
      return;
    }
    clearTimeout(this.watchdog);
    this.watchdogMs = ms;
    this.watchdog = setTimeout(() => this.onWatchdog(), ms);
  }

  private onWatchdog(): void {
    const pending = this.pending;
    if (!pending) return;
    const left = pending.sentAt + pending.job.timeoutMs - this.now();
    if (left > 0) {
      this.watchdog = setTimeout(() => this.onWatchdog(), left);
      this.watchdogMs = -1; // a one-off: the next request arms a fresh timer
      return;
    }
    pending.onTimeout();
  }

  private onData(chunk: Buffer): void {
    this.lastByteAt = this.now();
    if (this.buffer.length === 0) this.buffer = chunk;
    else {
      const joined = new Uint8Array(this.buffer.length + chunk.length);
      joined.set(this.buffer);
      joined.set(chunk, this.buffer.length);
      this.buffer = joined;
    }
    if (this.framing === 'mbap') this.onMbapData();
    else this.onRtuData();
  }

  private onMbapData(): void {
    let frames;
    try {
      ({ frames, rest: this.buffer } = takeMbapFrames(this.buffer));
    } catch (err) {
      // A TCP stream cannot be resynchronised after garbage: start over on a new connection.
      this.counters.badReplies++;
      this.failPending(err as Error);
      void this.dropStream((err as Error).message);
      return;
    }
    for (const frame of frames) {
      const pending = this.pending;
      if (!pending || frame.transactionId !== pending.transactionId) {
        this.counters.staleReplies++;
        continue;
      }
      // 0xFF is the "not used" unit of Modbus TCP, which many TCP devices answer with (libmodbus accepts it too)
      if (frame.unitId !== pending.job.unitId && frame.unitId !== 0xff) {
        this.counters.badReplies++;
        this.resolvePending(new LabtraceError('E_MODBUS_REPLY', `reply from unit ${frame.unitId}, asked unit ${pending.job.unitId}`));
        continue;
      }
      this.resolvePending(frame.pdu);
    }
  }

  private onRtuData(): void {
    const pending = this.pending;
    if (!pending) {
      // Nobody is waiting: a late reply, or noise on the bus. The line stays closed until it is quiet.
      if (this.buffer.length > 0) this.counters.staleReplies++;
      this.buffer = new Uint8Array(0);
      if (this.now() < this.quietUntil) this.quietUntil = this.now() + this.quietGuardMs;
      return;
    }
    const length = rtuReplyLength(this.buffer, pending.job.request.fc);
    if (length === undefined) {
      if (this.buffer.length >= 2 && (this.buffer[1] ?? 0) !== pending.job.request.fc && (this.buffer[1] ?? 0) !== (pending.job.request.fc | 0x80)) {
        this.counters.badReplies++;
        this.buffer = new Uint8Array(0);
      }
      return;
    }
    if (this.buffer.length < length) return;
    const frame = this.buffer.subarray(0, length);
    this.buffer = new Uint8Array(0);
    if (!checkRtuCrc(frame)) {
      this.counters.crcErrors++;
      this.resolvePending(new LabtraceError('E_MODBUS_REPLY', 'reply with a bad CRC'));
      return;
    }
    if (frame[0] !== pending.job.unitId) {
      this.counters.staleReplies++;
      return; // another unit's answer; keep waiting for ours
    }
    this.resolvePending(frame.slice(1, length - 2));
  }

  private resolvePending(pduOrError: Uint8Array | Error): void {
    const pending = this.pending;
    if (!pending) return;
    const { job, sentAt } = pending;
    pending.settle(() => {
      if (pduOrError instanceof Error) {
        job.reject(pduOrError);
        return;
      }
      this.consecutiveTimeouts = 0;
      try {
        job.resolve({ reply: decodeReply(job.request, pduOrError), latencyMs: this.now() - sentAt });
      } catch (err) {
        if ((err as LabtraceError).code === 'E_MODBUS_REPLY') this.counters.badReplies++;
        job.reject(err as Error);
      }
    });
  }

  private failPending(err: Error): void {
    this.resolvePending(err);
  }

  /** RTU: waits until the line has been quiet long enough; false when it stays busy past `timeoutMs` (a chattering bus). */
  private async waitForQuiet(timeoutMs: number): Promise<boolean> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      if (this.closed) return false;
      const now = this.now();
      const until = Math.max(this.quietUntil, this.lastByteAt + RTU_INTERFRAME_MS);
      if (now >= until) return true;
      if (now >= deadline) return false;
      await sleep(Math.min(until - now, deadline - now, 50));
    }
  }

  private async ensureConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    if (!this.connecting) {
      const wait = this.nextConnectAt - this.now();
      if (wait > 0) {
        throw new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)} is not reachable (next attempt in ${wait} ms)`);
      }
      this.connecting = this.open(timeoutMs).finally(() => (this.connecting = undefined));
    }
    await this.connecting;
  }

  private async open(timeoutMs: number): Promise<void> {
    try {
      const stream =
        this.connection.transport === 'rtu'
          ? await openSerial(this.connection)
          : await openSocket(this.connection.host, this.connection.port, Math.max(timeoutMs, 1000));
      if (this.closed) {
        closeStream(stream);
        throw new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)} closed`);
      }
      this.stream = stream;
      this.buffer = new Uint8Array(0);
      this.consecutiveTimeouts = 0;
      this.connectFailures = 0;
      this.counters.connects++;
      stream.on('data', (chunk: Buffer) => this.onData(chunk));
      stream.on('error', () => undefined); // 'close' follows and does the work
      stream.on('close', () => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.failPending(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)}: connection closed by the device`));
        this.emit('disconnected', 'closed by the device');
      });
      this.emit('connected');
    } catch (err) {
      this.connectFailures++;
      this.counters.connectFailures++;
      const backoff = Math.min(CONNECT_BACKOFF_MAX_MS, 250 * 2 ** Math.min(this.connectFailures - 1, 6));
      this.nextConnectAt = this.now() + backoff * (0.8 + Math.random() * 0.4);
      throw err instanceof LabtraceError
        ? err
        : new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async dropStream(reason: string): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return;
    this.failPending(new LabtraceError('E_MODBUS_CONNECT', `${describe(this.connection)}: ${reason}`));
    await new Promise<void>((resolve) => {
      stream.once('close', () => resolve());
      closeStream(stream);
      setTimeout(resolve, 500).unref();
    });
    if (!this.closed) this.emit('disconnected', reason);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openSerial(connection: Extract<Connection, { transport: 'rtu' }>): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({
      path: connection.path,
      baudRate: connection.baudRate,
      parity: connection.parity,
      dataBits: connection.dataBits,
      stopBits: connection.stopBits,
      autoOpen: false,
    });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}
