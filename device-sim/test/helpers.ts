// Shared test pieces: profiles, a raw Modbus client (MBAP or RTU framing over TCP), mbpoll, waiting,
// reading the published vectors, and a check that a suite left no socket, server, timer or child behind.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { crc16, parseModbusProfile, type ModbusProfileInput, type ModbusProfile } from '@labtrace/protocols';

const run = promisify(execFile);

export const climateProfileInput: ModbusProfileInput = {
  id: 'climate-t',
  identity: { maker: 'Test', model: 'Chamber', serialNumber: 'T-1' },
  connection: { transport: 'tcp', host: '127.0.0.1', port: 1 },
  points: [
    { name: 'temperature', register: 'holding', address: 0, type: 'float32', order: 'ABCD', unit: '°C' },
    { name: 'humidity', register: 'holding', address: 2, type: 'float32', order: 'CDAB', unit: '%RH' },
    { name: 'setpoint', register: 'holding', address: 4, type: 'int16', scale: 0.1, unit: '°C' },
    { name: 'door_open', register: 'discrete', address: 0, type: 'bool' },
  ],
};

export function profile(input: ModbusProfileInput = climateProfileInput): ModbusProfile {
  return parseModbusProfile(input);
}

export const VECTORS_DIR = fileURLToPath(new URL('../../../protocols/test/vectors/', import.meta.url));

export function readVector<T>(relative: string): T {
  return JSON.parse(readFileSync(VECTORS_DIR + relative, 'utf8')) as T;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export { freePort } from '@labtrace/protocols/test/ports';

/** Runs mbpoll once; resolves with its stdout and stderr together (a failed read is output too). */
export async function mbpoll(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('mbpoll', args, { timeout: 10_000 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

/** The "[ref]: value" lines of mbpoll's output. */
export function mbpollValues(output: string): Record<number, string> {
  const out: Record<number, string> = {};
  for (const m of output.matchAll(/^\[(\d+)\]:\s+(\S+)/gm)) out[Number(m[1])] = m[2] ?? '';
  return out;
}

export function withCrc(bytes: number[] | Uint8Array): Buffer {
  const body = Buffer.from(bytes);
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16(body));
  return Buffer.concat([body, crc]);
}

/** Length of the reply frame at the start of `buf` (RTU framing), or undefined while too short to tell. */
function rtuReplyLength(buf: Buffer): number | undefined {
  if (buf.length < 3) return undefined;
  const fc = buf[1] ?? 0;
  if (fc & 0x80) return 5;
  if (fc >= 1 && fc <= 4) return 5 + (buf[2] ?? 0);
  return 8;
}

/** A Modbus client that sends raw bytes and collects whole reply frames, for checks no library would let through. */
export class RawClient {
  readonly frames: Buffer[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];

  private constructor(
    private readonly socket: net.Socket,
    private readonly framing: 'mbap' | 'rtu',
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      for (;;) {
        const need = this.framing === 'mbap' ? (this.buf.length >= 6 ? 6 + this.buf.readUInt16BE(4) : undefined) : rtuReplyLength(this.buf);
        if (need === undefined || this.buf.length < need) break;
        this.frames.push(this.buf.subarray(0, need));
        this.buf = this.buf.subarray(need);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, framing: 'mbap' | 'rtu' = 'mbap'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      socket.once('connect', () => resolve(new RawClient(socket, framing)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.from(bytes));
  }

  /** Sends an MBAP request: transaction id, unit, PDU. */
  request(tid: number, unit: number, pdu: number[]): void {
    const head = Buffer.alloc(7);
    head.writeUInt16BE(tid, 0);
    head.writeUInt16BE(pdu.length + 1, 4);
    head[6] = unit;
    this.send(Buffer.concat([head, Buffer.from(pdu)]));
  }

  /** The next reply frame, or undefined when none came within `ms` (or the connection closed). */
  async next(ms = 1000): Promise<Buffer | undefined> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.shift();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Reads a float32 (ABCD) from the first two registers of a read-registers reply PDU at `at`. */
export function float32At(frame: Buffer, at: number): number {
  return frame.readFloatBE(at);
}

/**
 * Handles (sockets, servers, timers, child processes) alive now, by kind, and the open file
 * descriptors where the system lists them: a serial port is a descriptor Node does not report.
 */
export function liveHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  if (existsSync('/proc/self/fd')) {
    for (const fd of readdirSync('/proc/self/fd')) {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue; // the descriptor of the listing itself, closed by now
      }
      counts.set(`descriptor ${target}`, (counts.get(`descriptor ${target}`) ?? 0) + 1);
    }
  }
  return counts;
}

/** Fails when there are more handles of some kind than in `before`, after giving closes `graceMs` to finish. */
export async function expectNoLeakedHandles(before: Map<string, number>, graceMs = 1000): Promise<void> {
  const extra = (): string[] => {
    const out: string[] = [];
    for (const [kind, n] of liveHandles()) {
      const was = before.get(kind) ?? 0;
      if (n > was) out.push(`${kind} +${n - was}`);
    }
    return out;
  };
  const deadline = Date.now() + graceMs;
  // Our own sleep adds a Timeout while it waits, so compare between sleeps.
  while (extra().length > 0 && Date.now() < deadline) await sleep(25);
  const left = extra();
  if (left.length > 0) throw new Error(`leaked handles: ${left.join(', ')}`);
}
