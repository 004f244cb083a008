// The simulator's Modbus TCP server, read by mbpoll (a Modbus master nobody here wrote).
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Simulator } from '../src/index.js';
import { profile } from './helpers.js';

const run = promisify(execFile);
let sim: Simulator;
let port: number;

async function mbpoll(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('mbpoll', ['-m', 'tcp', '-p', String(port), '-a', '1', '-0', '-1', '-o', '1', ...args, '127.0.0.1']);
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

function valuesOf(output: string): Record<number, string> {
  const out: Record<number, string> = {};
  for (const m of output.matchAll(/^\[(\d+)\]:\s+(\S+)/gm)) out[Number(m[1])] = m[2] ?? '';
  return out;
}

beforeAll(async () => {
  sim = new Simulator({ config: { host: '127.0.0.1', tickMs: 50 }, instruments: [{ profile: profile(), model: 'constant', port: 0 }] });
  await sim.start();
  const instrument = sim.instruments.get('climate-t');
  if (!instrument) throw new Error('no instrument');
  port = instrument.server.port;
  expect(instrument.pin({ temperature: 21.5, humidity: 123456, setpoint: 23.5, door_open: true }, Date.now())).toEqual([]);
});

afterAll(async () => {
  await sim.stop();
});

describe('mbpoll reads the profile values', () => {
  test('float32 in word order ABCD (mbpoll -B: big-endian words)', async () => {
    expect(valuesOf(await mbpoll(['-t', '4:float', '-B', '-r', '0', '-c', '1']))[0]).toBe('21.5');
  });

  test('float32 in word order CDAB (mbpoll default: little-endian words)', async () => {
    expect(valuesOf(await mbpoll(['-t', '4:float', '-r', '2', '-c', '1']))[2]).toBe('123456');
  });

  test('a scaled int16 and a discrete input', async () => {
    expect(valuesOf(await mbpoll(['-t', '4', '-r', '4', '-c', '1']))[4]).toBe('235');
    expect(valuesOf(await mbpoll(['-t', '1', '-r', '0', '-c', '1']))[0]).toBe('1');
  });

  test('an address no point maps answers "illegal data address"', async () => {
    expect(await mbpoll(['-t', '4', '-r', '40', '-c', '1'])).toMatch(/Illegal data address/i);
  });
});

describe('robustness', () => {
  test('clients that vanish mid-frame or send garbage do not take the server down', async () => {
    for (const bytes of [Buffer.from([0, 1, 0, 0, 0, 6, 1]), Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(bytes);
          setTimeout(() => {
            s.resetAndDestroy();
            resolve();
          }, 20);
        });
        s.on('error', () => resolve());
      });
    }
    expect(valuesOf(await mbpoll(['-t', '4:float', '-B', '-r', '0', '-c', '1']))[0]).toBe('21.5');
  });

  test('a request split over several TCP segments is answered', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.setNoDelay(true);
      s.once('data', (d) => {
        s.destroy();
        resolve(d);
      });
      s.on('error', reject);
      // transaction 0x0102, read 2 holding registers from 0, sent in three pieces
      const frame = Buffer.from([1, 2, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2]);
      s.write(frame.subarray(0, 3));
      setTimeout(() => s.write(frame.subarray(3, 8)), 20);
      setTimeout(() => s.write(frame.subarray(8)), 40);
    });
    expect(reply.readUInt16BE(0)).toBe(0x0102);
    expect([...reply.subarray(7)]).toEqual([3, 4, 0x41, 0xac, 0, 0]); // 21.5 = 0x41AC0000
  });
});
