// Cutting a byte stream into lines, from a real TCP peer that writes in awkward pieces: a CR LF split
// across two writes, bare CR or LF, and a line that never ends (noise) bounded and dropped whole.
import { afterEach, expect, test } from '@jest/globals';
import net from 'node:net';
import { LineConnection } from '../../src/index.js';

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
