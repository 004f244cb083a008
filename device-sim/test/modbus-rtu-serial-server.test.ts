// Modbus RTU on a serial line: socat makes a pseudo-terminal pair, the simulator serves two units on
// one end, and mbpoll (a master nobody here wrote) or a raw serial port reads the other end.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { SerialPort } from 'serialport';
import { parseModbusProfile } from '@labtrace/protocols';
import { crcValid, ModbusRtuSerialServer, Simulator } from '../src/index.js';
import { expectNoLeakedHandles, liveHandles, mbpoll, mbpollValues, sleep, withCrc } from './helpers.js';
import { PtyPair } from './socat.js';

let handlesBefore: Map<string, number>;
let pty: PtyPair;
let sim: Simulator;

function rtuProfile(id: string, unitId: number, path: string) {
  return parseModbusProfile({
    id,
    identity: { maker: 'Test', model: 'RTU', serialNumber: id },
    connection: { transport: 'rtu', path },
    unitId,
    points: [
      { name: 'level', register: 'holding', address: 0, type: 'float32', order: 'ABCD' },
      { name: 'count', register: 'holding', address: 2, type: 'int32', order: 'CDAB' },
    ],
  });
}

function read(unit: number, args: string[]): Promise<string> {
  return mbpoll(['-m', 'rtu', '-b', '9600', '-P', 'even', '-a', String(unit), '-0', '-1', '-o', '0.5', ...args, pty.b]);
}

/**
 * The unit gave no answer: the bus wrote no reply while mbpoll polled it, and mbpoll read no value. mbpoll
 * says "timed out"; a stale frame left in the pty by the line's earlier traffic (seen on a loaded machine)
 * makes it say "not from requested slave" instead, which is not the unit answering.
 */
async function expectNoAnswer(unit: number): Promise<void> {
  const bus = sim.instruments.get('rtu-3')?.server as ModbusRtuSerialServer;
  const before = bus.repliesWritten;
  const output = await read(unit, ['-t', '4', '-r', '0', '-c', '1']);
  expect(output).toMatch(/timed out|not from requested slave/i);
  expect(mbpollValues(output)).toEqual({});
  expect(bus.repliesWritten).toBe(before);
}

const readLevel = async (unit: number): Promise<string | undefined> =>
  mbpollValues(await read(unit, ['-t', '4:float', '-B', '-r', '0', '-c', '1']))[0];

beforeAll(async () => {
  handlesBefore = liveHandles();
  pty = await PtyPair.start();
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      // the profile names another device; the config's path override puts both on the pty
      { profile: rtuProfile('rtu-3', 3, 'unused-device'), model: 'constant', path: pty.a },
      { profile: rtuProfile('rtu-7', 7, pty.a), model: 'constant' },
    ],
  });
  await sim.start();
  sim.instruments.get('rtu-3')?.pin({ level: 3.75, count: -123456 }, Date.now());
  sim.instruments.get('rtu-7')?.pin({ level: 7.5, count: 70000 }, Date.now());
});

afterEach(() => {
  for (const i of sim.instruments.values()) i.clearFault(Date.now());
});

afterAll(async () => {
  await sim.stop();
  await pty.stop();
  await expectNoLeakedHandles(handlesBefore);
});

test('one serial port serves every unit on the bus', () => {
  const bus = sim.instruments.get('rtu-3')?.server;
  expect(bus).toBeInstanceOf(ModbusRtuSerialServer);
  expect(sim.instruments.get('rtu-7')?.server).toBe(bus);
  expect((bus as ModbusRtuSerialServer).unitIds()).toEqual([3, 7]);
});

describe('mbpoll on the other end of the line', () => {
  test('each unit answers with its own values', async () => {
    const bus = sim.instruments.get('rtu-3')?.server as ModbusRtuSerialServer;
    const before = bus.repliesWritten;
    expect(await readLevel(3)).toBe('3.75');
    expect(await readLevel(7)).toBe('7.5');
    expect(mbpollValues(await read(3, ['-t', '4:int', '-r', '2', '-c', '1']))[2]).toBe('-123456');
    expect(mbpollValues(await read(7, ['-t', '4:int', '-r', '2', '-c', '1']))[2]).toBe('70000');
    // one reply frame per poll: the count the silence checks below rely on
    expect(bus.repliesWritten).toBe(before + 4);
  });

  test('a unit that is not on the bus never answers', async () => {
    await expectNoAnswer(9);
  });

  test('an exception on one unit: mbpoll sees a busy device there, the other unit still answers', async () => {
    sim.instruments.get('rtu-3')?.setFault({ kind: 'exception', code: 6 }, Date.now());
    expect(await read(3, ['-t', '4', '-r', '0', '-c', '1'])).toMatch(/busy/i);
    expect(await readLevel(7)).toBe('7.5');
  });

  test('a disconnected unit falls silent for the given time while the bus carries on', async () => {
    const set = Date.now();
    sim.instruments.get('rtu-7')?.setFault({ kind: 'disconnect', ms: 1500 }, set);
    await expectNoAnswer(7);
    expect(await readLevel(3)).toBe('3.75');
    await sleep(Math.max(0, set + 1600 - Date.now()));
    expect(await readLevel(7)).toBe('7.5');
  });

  test('no-answer, then the fault cleared: the next poll is answered', async () => {
    sim.instruments.get('rtu-3')?.setFault({ kind: 'no-answer' }, Date.now());
    await expectNoAnswer(3);
    sim.instruments.get('rtu-3')?.clearFault(Date.now(), 'no-answer');
    expect(await readLevel(3)).toBe('3.75');
  });
});

describe('a raw serial master', () => {
  test('a frame with a bad CRC is dropped and the next good one answered', async () => {
    const master = new SerialPort({ path: pty.b, baudRate: 9600, parity: 'even', autoOpen: false });
    await new Promise<void>((resolve, reject) => master.open((err) => (err ? reject(err) : resolve())));
    let received = Buffer.alloc(0);
    master.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    try {
      const bus = sim.instruments.get('rtu-3')?.server as ModbusRtuSerialServer;
      const dropped = bus.droppedFrames;
      const bad = withCrc([3, 3, 0, 0, 0, 2]);
      bad[6] = (bad[6] ?? 0) ^ 0x01;
      master.write(bad);
      await sleep(200);
      expect(received.length).toBe(0);
      expect(bus.droppedFrames).toBe(dropped + 1);
      master.write(withCrc([3, 3, 0, 0, 0, 2]));
      const deadline = Date.now() + 2000;
      while (received.length < 9 && Date.now() < deadline) await sleep(10);
      expect(crcValid(received)).toBe(true);
      expect([...received.subarray(0, 3)]).toEqual([3, 3, 4]);
      expect(received.readFloatBE(3)).toBe(3.75);
    } finally {
      await new Promise<void>((resolve) => master.close(() => resolve()));
    }
  });
});
