// The simulated balance: MT-SICS over TCP (as a serial device server carries it) and SBI on a real
// serial line (a socat pseudo-terminal pair). The exact bytes follow the manuals' formats; the
// protocols package's parsers read them back; faults change the replies on demand.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { parseBalanceProfile, parseSbiLine, parseSicsReply, type BalanceProfile } from '@labtrace/protocols';
import { BalanceServer, loadSimConfig, Simulator } from '../src/index.js';
import { expectNoLeakedHandles, liveHandles, waitFor } from './helpers.js';
import { PtyPair } from './socat.js';

let handlesBefore: Map<string, number>;
let pty: PtyPair;
let sim: Simulator;

function balance(id: string, dialect: BalanceProfile['dialect'], connection: BalanceProfile['connection'], mode: BalanceProfile['mode'] = 'poll') {
  return parseBalanceProfile({
    id,
    identity: { maker: 'Test', model: 'Balance', serialNumber: `SN-${id}` },
    dialect,
    connection,
    mode,
    pollIntervalMs: 100,
    points: [{ name: 'mass', unit: 'g' }],
  });
}

/** Lines (CR LF cut off) as they arrive from a stream, read one at a time. */
class Lines {
  private readonly lines: Buffer[] = [];
  private partial = Buffer.alloc(0);
  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (chunk: Buffer) => {
      this.partial = Buffer.concat([this.partial, chunk]);
      for (let end = this.partial.indexOf('\r\n'); end >= 0; end = this.partial.indexOf('\r\n')) {
        this.lines.push(this.partial.subarray(0, end));
        this.partial = this.partial.subarray(end + 2);
      }
    });
  }
  async next(): Promise<Buffer> {
    await waitFor('a line from the balance', () => this.lines.length > 0);
    return this.lines.shift() as Buffer;
  }
  clear(): void {
    this.lines.length = 0;
  }
}

beforeAll(async () => {
  handlesBefore = liveHandles();
  pty = await PtyPair.start();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      { profile: balance('sics-1', 'mt-sics', { transport: 'tcp', host: '127.0.0.1', port: 1 }), model: 'constant', port: 0 },
      {
        profile: balance('sbi-1', 'sbi', { transport: 'serial', path: 'unused', baudRate: 9600, dataBits: 7, parity: 'odd', stopBits: 1 }),
        model: 'constant',
        path: pty.a,
      },
    ],
  });
  await sim.start();
});

afterAll(async () => {
  await sim.stop();
  await pty.stop();
  await expectNoLeakedHandles(handlesBefore);
});

test('MT-SICS over TCP: a new weight is dynamic, then stable, in the manual format', async () => {
  const server = sim.instruments.get('sics-1')?.server;
  if (!(server instanceof BalanceServer)) throw new Error('no balance server');
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  const lines = new Lines(socket);
  try {
    sim.instruments.get('sics-1')?.pin({ mass: 100 }, Date.now());
    socket.write('SI\r\n');
    // the first look at a weight is while it moves
    expect((await lines.next()).toString('latin1')).toBe('S D   100.0000 g');
    let reply = '';
    while (!reply.startsWith('S S')) {
      socket.write('SI\r\n');
      reply = (await lines.next()).toString('latin1');
    }
    expect(reply).toBe('S S   100.0000 g');
    expect(parseSicsReply(reply, 'SI')).toEqual({ kind: 'weight', value: 100, unit: 'g', stable: true });
    // S waits for stability: after a change it answers only once the weight has settled
    sim.instruments.get('sics-1')?.pin({ mass: -3.75 }, Date.now());
    socket.write('S\r\n');
    expect((await lines.next()).toString('latin1')).toBe('S S    -3.7500 g');

    socket.write('I4\r\n');
    expect((await lines.next()).toString('latin1')).toBe('I4 A "SN-sics-1"');
    socket.write('XYZ\r\n');
    expect((await lines.next()).toString('latin1')).toBe('ES');

    sim.instruments.get('sics-1')?.setFault({ kind: 'overload' }, Date.now());
    socket.write('SI\r\n');
    expect(parseSicsReply((await lines.next()).toString('latin1'), 'SI')).toEqual({ kind: 'overload' });
    sim.instruments.get('sics-1')?.clearFault(Date.now(), 'overload');

    sim.instruments.get('sics-1')?.setFault({ kind: 'error-reply', code: 'ET', count: 1 }, Date.now());
    socket.write('SI\r\n');
    expect((await lines.next()).toString('latin1')).toBe('ET');
    sim.instruments.get('sics-1')?.setFault({ kind: 'garbage', count: 1 }, Date.now());
    socket.write('SI\r\n');
    const garbage = (await lines.next()).toString('latin1');
    expect(() => parseSicsReply(garbage, 'SI')).toThrow(/control characters/);
    // both faults were for one reply only
    socket.write('SI\r\n');
    expect((await lines.next()).toString('latin1')).toBe('S S    -3.7500 g');
  } finally {
    socket.destroy();
    sim.instruments.get('sics-1')?.clearFault(Date.now());
  }
});

test('a balance refuses the faults of Modbus registers', () => {
  expect(() => sim.instruments.get('sics-1')?.setFault({ kind: 'wrong-byte-order' }, Date.now())).toThrow(/applies to Modbus instruments/);
});

test('SBI on a serial line at 7O1: ESC P prints a 16-character line, unit-less while the weight moves', async () => {
  const port = new SerialPort({ path: pty.b, baudRate: 9600, dataBits: 7, parity: 'odd', stopBits: 1, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const lines = new Lines(port);
  try {
    sim.instruments.get('sbi-1')?.pin({ mass: 3.75 }, Date.now());
    port.write('\x1bP');
    const first = await lines.next();
    expect(first.length + 2).toBe(16);
    expect(first.toString('latin1')).toBe('+   3.7500    ');
    expect(parseSbiLine(first.toString('latin1'))).toEqual({ kind: 'weight', value: 3.75, unit: '', stable: false });
    let line = '';
    while (!line.includes('g')) {
      port.write('\x1bP');
      line = (await lines.next()).toString('latin1');
    }
    expect(line).toBe('+   3.7500 g  ');
    sim.instruments.get('sbi-1')?.setFault({ kind: 'underload' }, Date.now());
    port.write('\x1bP');
    expect(parseSbiLine((await lines.next()).toString('latin1'))).toEqual({ kind: 'underload' });
    sim.instruments.get('sbi-1')?.setFault({ kind: 'error-reply' }, Date.now());
    sim.instruments.get('sbi-1')?.clearFault(Date.now(), 'underload');
    port.write('\x1bP');
    expect(parseSbiLine((await lines.next()).toString('latin1'))).toMatchObject({ kind: 'error', code: 'Err 101' });
  } finally {
    sim.instruments.get('sbi-1')?.clearFault(Date.now());
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }
});

test('a simulator config serves a balance profile: a serial device override applies, a broker URL does not', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-sim-bal-'));
  writeFileSync(
    path.join(dir, 'bal.yaml'),
    [
      'protocol: balance',
      'id: bal-9',
      'identity: { maker: T, model: T, serialNumber: "9" }',
      'dialect: sbi',
      'connection: { transport: serial, path: /dev/ttyUSB0 }',
      'points: [{ name: mass, unit: g }]',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'sim.yaml'), 'instruments:\n  - { profile: bal.yaml, model: constant, path: /dev/ttyS9 }\n');
  const { instruments } = await loadSimConfig(path.join(dir, 'sim.yaml'));
  expect(instruments[0]).toMatchObject({ path: '/dev/ttyS9', profile: { protocol: 'balance', dialect: 'sbi' } });
  writeFileSync(path.join(dir, 'sim.yaml'), 'instruments:\n  - { profile: bal.yaml, model: constant, url: "mqtt://h:1" }\n');
  await expect(loadSimConfig(path.join(dir, 'sim.yaml'))).rejects.toThrow(/instruments\[0\]\.url: does not apply to transport serial/);
});
