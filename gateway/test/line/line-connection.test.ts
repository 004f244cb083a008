// Cutting a byte stream into lines, from a real TCP peer that writes in awkward pieces: a CR LF split
// across two writes, bare CR or LF, and a line that never ends (noise) bounded and dropped whole.
import { afterEach, describe, expect, test } from '@jest/globals';
import { closeSync, openSync, writeSync } from 'node:fs';
import net from 'node:net';
import { LineConnection } from '../../src/index.js';
import { descriptorsOn, startPtyPair, type PtyPair } from '../helpers/socat.js';

let server: net.Server | undefined;
let connection: LineConnection | undefined;

afterEach(async () => {
  await connection?.stop();
  const s = server;
  server = undefined;
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** A peer that writes `pieces` one by one (each a separate write, given time to arrive apart). */
async function peer(pieces: (string | Buffer)[]): Promise<number> {
  server = net.createServer((socket) => {
    socket.on('error', () => undefined).resume();
    void (async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

function read(port: number, until: (lines: string[]) => boolean, maxLineBytes?: number): Promise<{ lines: string[]; overflows: number[] }> {
  const c = new LineConnection({ transport: 'tcp', host: '127.0.0.1', port }, maxLineBytes === undefined ? {} : { maxLineBytes });
  connection = c;
  const lines: string[] = [];
  const overflows: number[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${JSON.stringify(lines)}`)), 10_000);
    c.on('overflow', (n) => overflows.push(n));
    c.on('line', (line) => {
      lines.push(line);
      if (until(lines)) {
        clearTimeout(timer);
        resolve({ lines, overflows });
      }
    });
    c.start();
  });
}

test('CR LF split across writes, bare LF and bare CR all end a line; empty lines are none', async () => {
  const port = await peer(['S S     1.00 g\r', '\nS S     2.00 g\n', 'S S     3.00 g\r\r\n', 'S S ', '    4.00 g\r\n']);
  const { lines } = await read(port, (l) => l.length >= 4);
  expect(lines).toEqual(['S S     1.00 g', 'S S     2.00 g', 'S S     3.00 g', 'S S     4.00 g']);
});

test('bytes are kept as they came (latin1), for the parser to refuse', async () => {
  const port = await peer([Buffer.from([0x00, 0xfe, 0x41, 0x0d, 0x0a]), 'ES\r\n']);
  const { lines } = await read(port, (l) => l.length >= 2);
  expect(lines).toEqual(['\u0000\u00feA', 'ES']);
});

test('a line that never ends is dropped whole once past the bound, and the next line is read', async () => {
  const noise = 'x'.repeat(40);
  const port = await peer([noise, noise, `${noise}\r\n`, 'S S    10.00 g\r\n']);
  const { lines, overflows } = await read(port, (l) => l.includes('S S    10.00 g'), 64);
  expect(lines).toEqual(['S S    10.00 g']);
  expect(overflows).toHaveLength(1);
});

// A serial port is closed, not only destroyed as a stream: the stream's destroy() leaves the device open
// and polled, so a gateway never exited after SIGTERM and each reconnection kept one more descriptor.
describe('a serial port (a socat pseudo-terminal pair)', () => {
  let pair: PtyPair | undefined;
  afterEach(async () => {
    await connection?.stop();
    connection = undefined;
    await pair?.stop();
    pair = undefined;
  });

  async function until(what: string, check: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const serial = (path: string): LineConnection =>
    new LineConnection({ transport: 'serial', path, baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 });

  test('stop() closes the device, and a dropped port is closed before the next one opens', async () => {
    pair = await startPtyPair();
    const c = serial(pair.a);
    connection = c;
    let connects = 0;
    c.on('connected', () => connects++);
    c.start();
    await until('the port to open', () => c.connected);
    expect(descriptorsOn(pair.a)).toBe(1);

    for (let i = 1; i <= 3; i++) {
      c.drop(`test drop ${i}`);
      await until(`reconnection ${i}`, () => connects === i + 1 && c.connected);
      expect(descriptorsOn(pair.a)).toBe(1);
    }

    // the line still works after the drops: a line written by the other end arrives
    const got = new Promise<string>((resolve) => c.once('line', resolve));
    const peer = openSync(pair.b, 'w');
    writeSync(peer, 'S S      12.345 g\r\n');
    closeSync(peer);
    expect(await got).toBe('S S      12.345 g');

    await c.stop();
    expect(descriptorsOn(pair.a)).toBe(0);
  });
});
