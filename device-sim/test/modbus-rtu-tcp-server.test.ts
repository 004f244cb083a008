// RTU over TCP, read with a raw socket: frames carry a CRC, a bad CRC or a truncated frame is dropped
// and the next good frame answered, and two units behind one port answer for themselves only.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { parseModbusProfile } from '@labtrace/protocols';
import { crcValid, ModbusRtuTcpServer, Simulator } from '../src/index.js';
import { expectNoLeakedHandles, freePort, liveHandles, RawClient, readVector, sleep, withCrc } from './helpers.js';

interface PduExamples {
  rtuFrames: { request: string; response: string }[];
}

const vector = readVector<PduExamples>('modbus/pdu-examples.json').rtuFrames[0];
let handlesBefore: Map<string, number>;
let sim: Simulator;
let port: number;
const clients: RawClient[] = [];

function rtuProfile(id: string, unitId: number, points: Parameters<typeof parseModbusProfile>[0]['points'], to: number) {
  return parseModbusProfile({
    id,
    identity: { maker: 'Test', model: 'RTU', serialNumber: id },
    connection: { transport: 'rtu-over-tcp', host: '127.0.0.1', port: to },
    unitId,
    points,
  });
}

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(port, 'rtu');
  clients.push(c);
  return c;
}

beforeAll(async () => {
  handlesBefore = liveHandles();
  port = await freePort();
  // Unit 0x11 holds the registers of the published example (holding 0x160-0x162 = 555, 1, 100).
  const vectorUnit = rtuProfile(
    'rtu-vector',
    0x11,
    [
      { name: 'a', register: 'holding', address: 0x160, type: 'uint16' },
      { name: 'b', register: 'holding', address: 0x161, type: 'uint16' },
      { name: 'c', register: 'holding', address: 0x162, type: 'uint16' },
    ],
    port,
  );
  const floatUnit = rtuProfile('rtu-float', 5, [{ name: 'level', register: 'input', address: 0, type: 'float32', order: 'ABCD' }], port);
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20 },
    instruments: [
      { profile: vectorUnit, model: 'constant' },
      { profile: floatUnit, model: 'constant' },
    ],
  });
  await sim.start();
  sim.instruments.get('rtu-vector')?.pin({ a: 555, b: 1, c: 100 }, Date.now());
  sim.instruments.get('rtu-float')?.pin({ level: 12.25 }, Date.now());
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const i of sim.instruments.values()) i.clearFault(Date.now());
});

afterAll(async () => {
  await sim.stop();
  await expectNoLeakedHandles(handlesBefore);
});

test('instruments on one rtu-over-tcp port share one server', () => {
  const a = sim.instruments.get('rtu-vector')?.server;
  expect(a).toBeInstanceOf(ModbusRtuTcpServer);
  expect(sim.instruments.get('rtu-float')?.server).toBe(a);
  expect(a?.port).toBe(port);
});

describe('framing and CRC', () => {
  test('answers the published RTU example byte for byte', async () => {
    const c = await client();
    c.send(Buffer.from(vector?.request ?? '', 'hex'));
    expect((await c.next())?.toString('hex')).toBe(vector?.response);
  });

  test('a reply carries a valid CRC and the unit that was asked', async () => {
    const c = await client();
    c.send(withCrc([5, 4, 0, 0, 0, 2]));
    const reply = await c.next();
    expect(reply && crcValid(reply)).toBe(true);
    expect(reply?.[0]).toBe(5);
    expect(reply?.readFloatBE(3)).toBe(12.25);
  });

  test('a frame with a bad CRC is dropped, and the next good one is answered', async () => {
    const server = sim.instruments.get('rtu-float')?.server as ModbusRtuTcpServer;
    const dropped = server.droppedFrames;
    const c = await client();
    const bad = withCrc([5, 4, 0, 0, 0, 2]);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    c.send(bad);
    expect(await c.next(200)).toBeUndefined();
    expect(server.droppedFrames).toBe(dropped + 1);
    c.send(withCrc([5, 4, 0, 0, 0, 2]));
    expect((await c.next())?.readFloatBE(3)).toBe(12.25);
  });

  test('silence ends a frame: a fragment followed by a pause is dropped, not joined to what follows', async () => {
    const c = await client();
    const frame = withCrc([5, 4, 0, 0, 0, 2]);
    c.send(frame.subarray(0, 3));
    // far more than 3.5 characters, and long enough that a busy machine has let the server read the fragment alone
    // (a fragment still unread when the rest arrives is one chunk to the server, rightly taken as one frame)
    await sleep(500);
    c.send(frame.subarray(3));
    expect(await c.next(200)).toBeUndefined();
    c.send(frame);
    expect((await c.next())?.readFloatBE(3)).toBe(12.25);
  });

  test('two requests in one segment are both answered, in order', async () => {
    const c = await client();
    c.send(Buffer.concat([withCrc([5, 4, 0, 0, 0, 2]), Buffer.from(vector?.request ?? '', 'hex')]));
    expect((await c.next())?.[0]).toBe(5);
    expect((await c.next())?.toString('hex')).toBe(vector?.response);
  });

  test('a unit nobody simulates gets no answer', async () => {
    const c = await client();
    c.send(withCrc([9, 4, 0, 0, 0, 2]));
    expect(await c.next(200)).toBeUndefined();
  });
});

describe('faults on a shared line', () => {
  test('an exception on one unit leaves the other alone', async () => {
    sim.instruments.get('rtu-float')?.setFault({ kind: 'exception', code: 6 }, Date.now());
    const c = await client();
    c.send(withCrc([5, 4, 0, 0, 0, 2]));
    const reply = await c.next();
    expect(reply && crcValid(reply)).toBe(true);
    expect([...(reply ?? Buffer.alloc(0)).subarray(0, 3)]).toEqual([5, 0x84, 6]);
    c.send(Buffer.from(vector?.request ?? '', 'hex'));
    expect((await c.next())?.toString('hex')).toBe(vector?.response);
  });

  test('a disconnect silences that unit only; the line stays up', async () => {
    const c = await client();
    sim.instruments.get('rtu-float')?.setFault({ kind: 'disconnect', ms: 300 }, Date.now());
    c.send(withCrc([5, 4, 0, 0, 0, 2]));
    expect(await c.next(150)).toBeUndefined();
    c.send(Buffer.from(vector?.request ?? '', 'hex'));
    expect((await c.next())?.toString('hex')).toBe(vector?.response);
    expect(c.closed).toBe(false);
    await sleep(250);
    c.send(withCrc([5, 4, 0, 0, 0, 2]));
    expect((await c.next())?.readFloatBE(3)).toBe(12.25);
  });
});
