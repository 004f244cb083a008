// A simulated SCPI instrument (a 6½-digit multimeter) on a raw TCP socket, as port 5025 of a bench instrument.
// It answers `*IDN?` with the profile's identity (idn, and identity.firmware), each point's query with its
// channel's value (9 significant digits, `+1.50000000E+00`), and `SYST:ERR?` from an error queue (oldest first,
// `+0,"No error"` when empty); `*CLS` empties the queue, `*RST` and `*OPC?` are understood. A command it does
// not know puts -113,"Undefined header" in the queue and gets no reply, as instruments do.
// Faults: silence (no-answer), slow replies, a line of noise, overload (9.9E37), entries in the error queue,
// and a disconnect (connections reset, new ones refused for a while).
import type net from 'node:net';
import { channelOf, formatScpiNumber, type ScpiProfile } from '@labtrace/protocols';
import type { InstrumentEndpoint } from './endpoint.js';
import type { SimInstrument } from './sim-instrument.js';
import { TcpListener } from './tcp-listener.js';

export interface ScpiServerOptions {
  profile: ScpiProfile;
  instrument: SimInstrument;
  host: string;
  /** where to listen instead of the profile's port (0: a free one) */
  port?: number;
  onError?: (err: Error) => void;
  now?: () => number;
}

/** the longest command line kept; a longer one is dropped */
const MAX_COMMAND = 1024;
/** how many entries the error queue holds; beyond it the last becomes -350,"Queue overflow" (SCPI-99 21.8.2) */
const QUEUE_SIZE = 20;
/** a line of noise, as a wrong port or a faulty adapter gives (control bytes, high bytes) */
const GARBAGE = Buffer.from([0x00, 0x7f, 0xfe, 0x3f, 0x1f, 0xa5, 0x23, 0x0a]);

/** A command as compared: upper case, spaces dropped (`meas:volt:dc?` and `MEAS:VOLT:DC?` are the same). */
function normalize(command: string): string {
  return command.replace(/\s+/g, '').toUpperCase();
}

export class ScpiServer implements InstrumentEndpoint {
  readonly transport = 'tcp' as const;
  private readonly listener: TcpListener;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly queries = new Map<string, string>();
  private readonly errors: { code: number; message: string }[] = [];
  private readonly now: () => number;
  /** replies written and commands received, by kind, for tests and the control API */
  readonly sent = { value: 0, identity: 0, error: 0, garbage: 0 };

  constructor(private readonly options: ScpiServerOptions) {
    this.now = options.now ?? Date.now;
    for (const point of options.profile.points) this.queries.set(normalize(point.query), channelOf(point));
    this.listener = new TcpListener(
      options.host,
      options.port ?? options.profile.connection.port,
      'SCPI',
      (socket) => this.serve(socket),
      (err) => options.onError?.(err),
    );
  }

  get port(): number {
    return this.listener.port;
  }

  get address(): string {
    return `${this.options.host}:${this.port}`;
  }

  /** The error queue now, oldest first. */
  get errorQueue(): readonly { code: number; message: string }[] {
    return [...this.errors];
  }

  async start(): Promise<void> {
    await this.listener.start();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.listener.stop();
  }

  interrupt(ms: number): void {
    this.listener.refuse(ms);
  }

  private serve(socket: net.Socket): void {
    let text = '';
    const write = (data: Buffer): void => {
      if (!socket.destroyed) socket.write(data);
    };
    socket.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        if (byte === 0x0a || byte === 0x0d) {
          const line = text.trim();
          text = '';
          // several commands on a line are separated by ";"
          for (const command of line.split(';')) if (command.trim() !== '') this.onCommand(write, command.trim());
        } else if (text.length < MAX_COMMAND) text += String.fromCharCode(byte);
      }
    });
  }

  private pushError(code: number, message: string): void {
    if (this.errors.length >= QUEUE_SIZE) {
      this.errors[QUEUE_SIZE - 1] = { code: -350, message: 'Queue overflow' };
      return;
    }
    this.errors.push({ code, message });
  }

  /** Sends a reply line, or what a fault puts in its place. */
  private reply(write: (data: Buffer) => void, build: () => string, kind: 'value' | 'identity' | 'error'): void {
    const now = this.now();
    const fate = this.options.instrument.faults.lineReplyFate(now);
    if (fate?.kind === 'silent') return;
    let data: Buffer;
    if (fate?.kind === 'garbage') {
      data = GARBAGE;
      this.sent.garbage++;
    } else {
      data = Buffer.from(`${build()}\n`, 'latin1');
      this.sent[kind]++;
    }
    const delay = this.options.instrument.faults.replyDelayMs(now);
    if (delay <= 0) {
      write(data);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      write(data);
    }, delay);
    this.timers.add(timer);
  }

  private onCommand(write: (data: Buffer) => void, command: string): void {
    const key = normalize(command);
    const profile = this.options.profile;
    const channel = this.queries.get(key);
    if (channel !== undefined) {
      const now = this.now();
      const faults = this.options.instrument.faults;
      const error = faults.scpiErrorFate(now);
      if (error !== undefined) this.pushError(error.code, error.message);
      const overload = faults.has('overload', now);
      this.reply(write, () => (overload ? '+9.90000000E+37' : this.value(channel)), 'value');
      return;
    }
    switch (key) {
      case '*IDN?': {
        const { manufacturer, model } = profile.idn;
        const serial = profile.idn.serialNumber ?? profile.identity.serialNumber;
        this.reply(write, () => `${manufacturer},${model},${serial},${profile.identity.firmware ?? '1.0'}`, 'identity');
        return;
      }
      case 'SYST:ERR?':
      case 'SYSTEM:ERROR?':
      case 'SYST:ERR:NEXT?':
      case 'SYSTEM:ERROR:NEXT?':
        this.reply(
          write,
          () => {
            const entry = this.errors.shift();
            return entry === undefined ? '+0,"No error"' : `${entry.code > 0 ? '+' : ''}${entry.code},"${entry.message}"`;
          },
          'error',
        );
        return;
      case '*CLS':
        this.errors.length = 0;
        return;
      case '*RST':
        return;
      case '*OPC?':
        this.reply(write, () => '1', 'value');
        return;
      default:
        this.pushError(-113, 'Undefined header');
    }
  }

  /** The channel's value as the instrument prints it; 9.91E37 (not a number) for a channel that holds none. */
  private value(channel: string): string {
    const raw = this.options.instrument.values()[channel];
    const value = typeof raw === 'number' ? raw : typeof raw === 'boolean' ? Number(raw) : Number.parseFloat(String(raw ?? 0));
    return Number.isFinite(value) ? formatScpiNumber(value) : '+9.91000000E+37';
  }
}
