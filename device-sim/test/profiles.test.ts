// The new default profiles served by their models, read by mbpoll or a raw client: float32 and int32
// in word order CDAB and the bits of a status word (pressure calibrator), float64 and an 8-register
// string (balance).
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { decodeRegisters } from '@labtrace/protocols';
import { loadProfileFile, Simulator } from '../src/index.js';
import { expectNoLeakedHandles, liveHandles, mbpoll, mbpollValues, RawClient } from './helpers.js';

const PROFILES = fileURLToPath(new URL('../../profiles/', import.meta.url));
let handlesBefore: Map<string, number>;
let sim: Simulator;

const portOf = (id: string): number => sim.instruments.get(id)?.server.port ?? 0;
const read = (id: string, args: string[]): Promise<string> =>
  mbpoll(['-m', 'tcp', '-p', String(portOf(id)), '-a', '1', '-0', '-1', '-o', '1', ...args, '127.0.0.1']);

beforeAll(async () => {
  handlesBefore = liveHandles();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      { profile: await loadProfileFile(`${PROFILES}pressure-calibrator.yaml`), model: 'pressure-calibrator', port: 0 },
      { profile: await loadProfileFile(`${PROFILES}balance.yaml`), model: 'balance', port: 0 },
    ],
  });
  await sim.start();
});

afterAll(async () => {
  await sim.stop();
  await expectNoLeakedHandles(handlesBefore);
});

describe('pressure-calibrator.yaml', () => {
  test('float32 and int32 in word order CDAB (mbpoll reads little-endian words by default)', async () => {
    sim.instruments.get('pc-1')?.pin({ pressure: 12.5, setpoint: 15, setpoint_percent: 75 }, Date.now());
    expect(mbpollValues(await read('pc-1', ['-t', '4:float', '-r', '0', '-c', '1']))[0]).toBe('12.5');
    expect(mbpollValues(await read('pc-1', ['-t', '4:int', '-r', '2', '-c', '1']))[2]).toBe('15000');
    expect(mbpollValues(await read('pc-1', ['-t', '4', '-r', '4', '-c', '1']))[4]).toBe('75');
  });

  test('the status word carries stable, ramping and rising as bits 0, 1 and 2', async () => {
    sim.instruments.get('pc-1')?.pin({ stable: true, ramping: false, rising: true }, Date.now());
    expect(mbpollValues(await read('pc-1', ['-t', '4:hex', '-r', '5', '-c', '1']))[5]).toBe('0x0005');
    sim.instruments.get('pc-1')?.pin({ stable: false, ramping: true, rising: false }, Date.now());
    expect(mbpollValues(await read('pc-1', ['-t', '4:hex', '-r', '5', '-c', '1']))[5]).toBe('0x0002');
  });
});

describe('balance.yaml', () => {
  test('the model serves its mass as float64, its unit as a string of 8 registers, and its stability flag', async () => {
    const c = await RawClient.connect(portOf('bal-1'));
    try {
      c.request(1, 1, [4, 0, 0, 0, 13]);
      const reply = (await c.next()) ?? Buffer.alloc(0);
      const values = sim.instruments.get('bal-1')?.values() ?? {};
      const regs: number[] = [];
      for (let i = 9; i + 1 < reply.length; i += 2) regs.push(reply.readUInt16BE(i));
      expect(regs).toHaveLength(13);
      // the reading moves every tick; it must be one the model produced, to the readability
      expect(Math.abs((decodeRegisters(regs, { type: 'float64', order: 'ABCDEFGH' }) as number) - (values['mass'] as number))).toBeLessThan(1);
      expect(decodeRegisters(regs, { type: 'string', length: 8 }, 4)).toBe('g');
      expect(decodeRegisters(regs, { type: 'uint16' }, 12)).toBe(values['weighings']);
    } finally {
      await c.close();
    }
  });

  test('pinned values come back exactly', async () => {
    sim.instruments.get('bal-1')?.pin({ mass: 199.9997, unit: 'mg', stable: true }, Date.now());
    const c = await RawClient.connect(portOf('bal-1'));
    try {
      c.request(2, 1, [4, 0, 0, 0, 12]);
      const reply = (await c.next()) ?? Buffer.alloc(0);
      expect(reply.readDoubleBE(9)).toBe(199.9997);
      expect(reply.subarray(17, 33).toString('latin1')).toBe(`mg${'\0'.repeat(14)}`);
    } finally {
      await c.close();
    }
    expect(mbpollValues(await read('bal-1', ['-t', '1', '-r', '0', '-c', '1']))[0]).toBe('1');
  });
});
