// `labtrace sim fault ...` against a running simulator's control API, as an operator would use it.
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { faultCommand, main } from '../src/cli.js';
import { Simulator } from '../src/index.js';
import { expectNoLeakedHandles, freePort, liveHandles, profile, RawClient } from './helpers.js';

let handlesBefore: Map<string, number>;
let sim: Simulator;
let control: string;
let port: number;

beforeAll(async () => {
  handlesBefore = liveHandles();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20, control: { host: '127.0.0.1', port: 0 } },
    instruments: [{ profile: profile(), model: 'constant', port: 0 }],
  });
  await sim.start();
  control = `http://127.0.0.1:${sim.control?.port ?? 0}`;
  port = sim.instruments.get('climate-t')?.server.port ?? 0;
  sim.instruments.get('climate-t')?.pin({ temperature: 21.5 }, Date.now());
});

afterEach(() => {
  sim.instruments.get('climate-t')?.clearFault(Date.now());
});

afterAll(async () => {
  await sim.stop();
  await expectNoLeakedHandles(handlesBefore);
});

describe('labtrace sim fault', () => {
  test('exception --value 6 --count 1: the next request is refused as busy, the retry is answered', async () => {
    const out = JSON.parse(await faultCommand(['climate-t', 'exception', '--value', '6', '--count', '1', '--control', control])) as unknown;
    expect(out).toEqual({ instrument: 'climate-t', faults: [expect.objectContaining({ kind: 'exception', code: 6, remaining: 1 })] });
    const c = await RawClient.connect(port);
    try {
      c.request(1, 1, [3, 0, 0, 0, 2]);
      expect([...((await c.next()) ?? Buffer.alloc(0)).subarray(7)]).toEqual([0x83, 6]);
      c.request(2, 1, [3, 0, 0, 0, 2]);
      expect((await c.next())?.readFloatBE(9)).toBe(21.5);
    } finally {
      await c.close();
    }
  });

  test('main runs it as a one-shot command: prints the active faults, has nothing to stop; clear removes them', async () => {
    let printed = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed += String(chunk);
      return true;
    });
    try {
      const service = await main(['fault', 'climate-t', 'slow', '--value', '100', '--control', control]);
      await service.stop();
      expect(JSON.parse(printed)).toEqual({ instrument: 'climate-t', faults: [expect.objectContaining({ kind: 'slow', ms: 100 })] });
      expect(
        sim.instruments
          .get('climate-t')
          ?.activeFaults(Date.now())
          .map((f) => f.kind),
      ).toEqual(['slow']);
      printed = '';
      await main(['fault', 'climate-t', 'clear', 'slow', '--control', control]);
      expect(JSON.parse(printed)).toEqual({ instrument: 'climate-t', faults: [] });
    } finally {
      write.mockRestore();
    }
  });

  test('mistakes are explained before anything is sent', async () => {
    const fault = (...args: string[]) => faultCommand([...args, '--control', control]);
    await expect(fault('climate-t', 'slow')).rejects.toThrow(/fault slow: needs --value <ms>/);
    await expect(fault('climate-t', 'stuck', '--value', '3')).rejects.toThrow(/takes no --value/);
    await expect(fault('climate-t', 'melt')).rejects.toThrow(/no kind "melt"/);
    await expect(fault('climate-t', 'noise', '--value', 'loud')).rejects.toThrow(/--value: "loud" is not a number/);
    await expect(fault('climate-t', 'exception', '--value', '0')).rejects.toThrow(/--value: /);
    await expect(fault('climate-t')).rejects.toThrow(/needs an instrument and a kind/);
    await expect(faultCommand(['climate-t', 'stuck', '--control', 'not a url'])).rejects.toThrow(/--control/);
    expect(sim.instruments.get('climate-t')?.activeFaults(Date.now())).toEqual([]);
  });

  test('an unknown instrument, a bad channel, or no simulator at the address', async () => {
    await expect(faultCommand(['nope', 'stuck', '--control', control])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(faultCommand(['climate-t', 'noise', '--value', '1', '--channels', 'door_open', '--control', control])).rejects.toThrow(
      /no numeric channel\(s\) door_open/,
    );
    const nobody = `http://127.0.0.1:${await freePort()}`;
    await expect(faultCommand(['climate-t', 'stuck', '--control', nobody])).rejects.toThrow(/cannot reach the simulator control API/);
  });
});
