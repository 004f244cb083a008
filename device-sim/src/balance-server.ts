// A simulated balance speaking MT-SICS or Sartorius SBI on a serial line (one end of a pseudo-terminal
// pair) or on a TCP port (as a serial device server would). The weight is the instrument's channel; a
// weight that moved is printed dynamic (MT-SICS `S D`, SBI without a unit) until it has held still for
// `settleMs`. Faults: overload, underload, busy, error replies and garbage lines, silence, slow replies.
import type net from 'node:net';
import type { SerialPort } from 'serialport';
import { channelOf, LabtraceError, type BalanceProfile } from '@labtrace/protocols';
import type { InstrumentEndpoint } from './endpoint.js';
import type { SimInstrument } from './sim-instrument.js';
import { TcpListener } from './tcp-listener.js';

export interface BalanceServerOptions {
  profile: BalanceProfile;
  instrument: SimInstrument;
  /** tcp: where to listen (port 0: a free one) */
  host: string;
  port?: number;
  /** serial: the device (one end of a pty pair) instead of the profile's */
  path?: string;
  /** how long a weight must hold still to be printed stable */
  settleMs?: number;
  /** digits after the decimal point (the readability) */
  decimals?: number;
  onError?: (err: Error) => void;
  now?: () => number;
}

const ESC = 0x1b;
/** the longest command line a session keeps before it gives up on it */
const MAX_COMMAND = 256;
/** how long an MT-SICS `S` waits for stability before it answers `S I` */
const STABLE_WAIT_MS = 5000;
const REOPEN_MS = 200;
/** a line of noise, as a wrong baud rate or a loose connector gives (control bytes, high bytes) */
const GARBAGE = Buffer.from([0x00, 0x7f, 0xfe, 0x3f, 0x1f, 0xa5, 0x23, 0x0d, 0x0a]);

/** One client of the balance: a TCP connection or the serial line, with its half-read command. */
class Session {
  private text = '';
  /** SBI: an ESC was the last byte: the next byte is the command */
  private escape = false;
  /** MT-SICS `SIR`: print the weight at every print tick until another command comes */
  repeat = false;

  constructor(
    readonly write: (data: Buffer) => void,
    private readonly onCommand: (session: Session, command: string) => void,
    private readonly dialect: BalanceProfile['dialect'],
  ) {}

  push(chunk: Buffer): void {
    for (const byte of chunk) {
      if (this.dialect === 'sbi') {
        // SBI commands are ESC and one character (a CR LF after it is tolerated and ignored)
        if (this.escape) {
          this.escape = false;
          this.onCommand(this, String.fromCharCode(byte));
        } else if (byte === ESC) this.escape = true;
        continue;
      }
      if (byte === 0x0d || byte === 0x0a) {
        const command = this.text.trim();
        this.text = '';
        if (command !== '') this.onCommand(this, command);
      } else if (this.text.length < MAX_COMMAND) this.text += String.fromCharCode(byte);
    }
  }
}

export class BalanceServer implements InstrumentEndpoint {
  readonly transport: 'tcp' | 'serial';
  private readonly listener: TcpListener | undefined;
  private readonly sessions = new Set<Session>();
  private serial: SerialPort | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private printTimer: NodeJS.Timeout | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** the weight the settling is measured from */
  private shown: number | undefined;
  private changedAt = 0;
  private readonly now: () => number;
  private readonly settleMs: number;
  private readonly decimals: number;
  private readonly channel: string;
  private readonly unit: string;
  /** replies written, by kind, for tests and the control API */
  readonly sent = { weight: 0, garbage: 0, error: 0 };
  /** MT-SICS commands received, by command, for tests (a zero or tare that must not have been sent) */
  readonly received: Record<string, number> = {};

  constructor(private readonly options: BalanceServerOptions) {
    this.now = options.now ?? Date.now;
    this.settleMs = options.settleMs ?? 500;
    this.decimals = options.decimals ?? 4;
    const point = options.profile.points[0];
    if (point === undefined) throw new LabtraceError('E_CONFIG', `balance ${options.profile.id} has no point`);
    this.channel = channelOf(point);
    this.unit = point.unit;
    const connection = options.profile.connection;
    this.transport = connection.transport;
    if (connection.transport === 'tcp') {
      this.listener = new TcpListener(
        options.host,
        options.port ?? connection.port,
        'balance',
        (socket) => this.serve(socket),
        (err) => options.onError?.(err),
      );
    }
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get address(): string {
    const connection = this.options.profile.connection;
    return connection.transport === 'tcp' ? `${this.options.host}:${this.port}` : (this.options.path ?? connection.path);
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.listener) await this.listener.start();
    else await this.openSerial();
    if (this.options.profile.mode === 'unsolicited' || this.options.profile.dialect === 'mt-sics') {
      // unsolicited: the balance prints on its own (auto print); MT-SICS: SIR repeats on the same beat
      this.printTimer = setInterval(() => this.printTick(), this.options.profile.pollIntervalMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.printTimer);
    clearTimeout(this.reopenTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sessions.clear();
    await this.listener?.stop();
    const serial = this.serial;
    this.serial = undefined;
    if (serial?.isOpen) await new Promise<void>((resolve) => serial.close(() => resolve()));
  }

  /** A "disconnect" fault: TCP connections are reset and refused for `ms`; a serial line falls silent (its fault set). */
  interrupt(ms: number): void {
    this.listener?.refuse(ms);
  }

  private serve(socket: net.Socket): void {
    const session = new Session(
      (data) => {
        if (!socket.destroyed) socket.write(data);
      },
      (s, c) => this.onCommand(s, c),
      this.options.profile.dialect,
    );
    this.sessions.add(session);
    socket.on('data', (chunk: Buffer) => session.push(chunk));
    socket.on('close', () => this.sessions.delete(session));
  }

  private async openSerial(): Promise<void> {
    const connection = this.options.profile.connection;
    if (connection.transport !== 'serial') return;
    const path = this.options.path ?? connection.path;
    // Loaded here so that a simulator without serial instruments never needs the native bindings.
    const { SerialPort } = await import('serialport');
    const { baudRate, parity, dataBits, stopBits } = connection;
    const serial = new SerialPort({ path, baudRate, parity, dataBits, stopBits, autoOpen: false });
    await new Promise<void>((resolve, reject) =>
      serial.open((err) =>
        err ? reject(new LabtraceError('E_CONFIG', `serial port ${path}: cannot open: ${err.message}`, { cause: err })) : resolve(),
      ),
    );
    const session = new Session(
      (data) => {
        if (serial.isOpen) serial.write(data);
      },
      (s, c) => this.onCommand(s, c),
      this.options.profile.dialect,
    );
    this.sessions.add(session);
    serial.on('data', (chunk: Buffer) => session.push(chunk));
    serial.on('error', (err: Error) => this.options.onError?.(err));
    serial.on('close', () => {
      this.sessions.delete(session);
      if (this.serial !== serial) return;
      this.serial = undefined;
      // The other end went away (the pty pair was closed, the cable pulled): open again when it is back.
      this.options.onError?.(new Error(`serial port ${path} closed`));
      this.scheduleReopen();
    });
    this.serial = serial;
  }

  private scheduleReopen(): void {
    if (this.stopped) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      if (this.stopped) return;
      this.openSerial().catch(() => this.scheduleReopen());
    }, REOPEN_MS);
  }

  /** The weight now, and whether it has held still long enough to be stable. */
  private reading(): { text: string; stable: boolean; value: number } {
    const raw = this.options.instrument.values()[this.channel];
    const value = typeof raw === 'number' ? raw : typeof raw === 'boolean' ? Number(raw) : Number.parseFloat(String(raw ?? 0));
    const text = (Number.isFinite(value) ? value : 0).toFixed(this.decimals);
    const now = this.now();
    // a flicker of one digit is noise on a still pan, not a new weight
    if (this.shown === undefined || Math.abs(Number(text) - this.shown) > 1.5 * 10 ** -this.decimals) {
      this.shown = Number(text);
      this.changedAt = now;
    }
    return { text, stable: now - this.changedAt >= this.settleMs, value };
  }

  /** The state faults put the weighing cell in, if any. */
  private cellState(): 'overload' | 'underload' | 'busy' | undefined {
    const now = this.now();
    const faults = this.options.instrument.faults;
    if (faults.size === 0) return undefined;
    if (faults.has('overload', now)) return 'overload';
    if (faults.has('underload', now)) return 'underload';
    if (faults.has('busy', now)) return 'busy';
    return undefined;
  }

  private send(session: Session, line: string | Buffer, kind: keyof BalanceServer['sent']): void {
    const data = typeof line === 'string' ? Buffer.from(`${line}\r\n`, 'latin1') : line;
    const delay = this.options.instrument.faults.replyDelayMs(this.now());
    this.sent[kind]++;
    if (delay <= 0) {
      session.write(data);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      session.write(data);
    }, delay);
    this.timers.add(timer);
  }

  /** Sends the reply to a request, or what a fault puts in its place. */
  private reply(session: Session, build: () => { line: string; kind: keyof BalanceServer['sent'] } | undefined): void {
    const fate = this.options.instrument.faults.lineReplyFate(this.now());
    if (fate?.kind === 'silent') return;
    if (fate?.kind === 'garbage') {
      this.send(session, GARBAGE, 'garbage');
      return;
    }
    if (fate?.kind === 'error') {
      const sics = this.options.profile.dialect === 'mt-sics';
      const code = fate.code ?? (sics ? 'EL' : 'Err 101');
      const fits = sics === !code.startsWith('Err');
      this.send(session, sics ? (fits ? code : 'EL') : sbiText(fits ? code : 'Err 101'), 'error');
      return;
    }
    const reply = build();
    if (reply) this.send(session, reply.line, reply.kind);
  }

  private onCommand(session: Session, command: string): void {
    if (this.options.profile.dialect === 'sbi') this.onSbiCommand(session, command);
    else this.onSicsCommand(session, command);
  }

  private onSbiCommand(session: Session, command: string): void {
    // ESC P: print; ESC T: tare (answered with nothing, as the balance does); anything else is ignored
    if (command === 'P') this.reply(session, () => this.sbiWeight());
  }

  private sbiWeight(): { line: string; kind: 'weight' | 'error' } {
    const state = this.cellState();
    if (state === 'overload') return { line: sbiText('High'), kind: 'error' };
    if (state === 'underload') return { line: sbiText('Low'), kind: 'error' };
    if (state === 'busy') return { line: sbiText('C'), kind: 'error' };
    const { text, stable } = this.reading();
    const sign = text.startsWith('-') ? '-' : '+';
    const digits = text.replace(/^-/, '');
    // 16 characters: sign, 9 for the value, a space, 3 for the unit (blank while unstable), CR LF
    return { line: `${sign}${digits.padStart(9)} ${(stable ? this.unit : '').padEnd(3)}`, kind: 'weight' };
  }

  private sicsWeight(): { line: string; kind: 'weight' | 'error' } {
    const state = this.cellState();
    if (state === 'overload') return { line: 'S +', kind: 'error' };
    if (state === 'underload') return { line: 'S -', kind: 'error' };
    if (state === 'busy') return { line: 'S I', kind: 'error' };
    const { text, stable } = this.reading();
    return { line: `S ${stable ? 'S' : 'D'} ${text.padStart(10)} ${this.unit}`, kind: 'weight' };
  }

  private onSicsCommand(session: Session, command: string): void {
    session.repeat = false;
    this.received[command] = (this.received[command] ?? 0) + 1;
    const serial = this.options.profile.identity.serialNumber;
    switch (command) {
      case 'SI':
        this.reply(session, () => this.sicsWeight());
        return;
      case 'SIR':
        session.repeat = true;
        this.reply(session, () => this.sicsWeight());
        return;
      case 'S': {
        // waits for a stable weight, then answers; `S I` when it does not settle in time
        const started = this.now();
        const attempt = (): void => {
          const state = this.cellState();
          const { stable } = this.reading();
          if (stable || state !== undefined) {
            this.reply(session, () => this.sicsWeight());
            return;
          }
          if (this.now() - started >= STABLE_WAIT_MS) {
            this.reply(session, () => ({ line: 'S I', kind: 'error' }));
            return;
          }
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            attempt();
          }, 50);
          this.timers.add(timer);
        };
        attempt();
        return;
      }
      case 'Z':
        this.reply(session, () => ({ line: 'Z A', kind: 'weight' }));
        return;
      case 'T':
        this.reply(session, () => ({ line: `T S ${this.reading().text.padStart(10)} ${this.unit}`, kind: 'weight' }));
        return;
      case '@':
      case 'I4':
        this.reply(session, () => ({ line: `I4 A "${serial}"`, kind: 'weight' }));
        return;
      default:
        this.reply(session, () => ({ line: 'ES', kind: 'error' }));
    }
  }

  /** Unsolicited printing (auto print) and MT-SICS SIR repetition. */
  private printTick(): void {
    const unsolicited = this.options.profile.mode === 'unsolicited';
    for (const session of this.sessions) {
      if (!unsolicited && !session.repeat) continue;
      if (this.options.profile.dialect === 'sbi') this.reply(session, () => this.sbiWeight());
      else this.reply(session, () => this.sicsWeight());
    }
  }
}

/** A text in the value field of a 16-character SBI line. */
function sbiText(text: string): string {
  return ` ${text.padStart(9)}    `;
}
