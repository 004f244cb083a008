// Faults injected through the control API, each observed the way a client would notice it: a raw
// Modbus TCP client (transaction ids, timing, exceptions, connection state) or mbpoll.
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { loadProfileFile, Simulator } from '../src/index.js';
import { expectNoLeakedHandles, liveHandles, mbpoll, mbpollValues, profile, RawClient, sleep } from './helpers.js';

const PROFILES = fileURLToPath(new URL('../../profiles/', import.meta.url));
const READ_TEMPERATURE = [3, 0, 0, 0, 2];
let handlesBefore: Map<string, number>;
let sim: Simulator;
let base: string;
let port: number;
let pressurePort: number;
const clients: RawClient[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', connection: 'close' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

async function client(to = port): Promise<RawClient> {
  const c = await RawClient.connect(to);
  clients.push(c);
  return c;
}

/** Reads the temperature (float32 ABCD at holding 0) on a fresh request; undefined when nothing came back. */
async function temperature(c: RawClient, tid = 1): Promise<number | undefined> {
  c.request(tid, 1, READ_TEMPERATURE);
  const reply = await c.next(1000);
  return reply?.readFloatBE(9);
}

// mbpoll's timeout is generous: a busy machine must not turn a slow answer into a missing one
function mbpollTcp(args: string[], to = port): Promise<string> {
  return mbpoll(['-m', 'tcp', '-p', String(to), '-a', '1', '-0', '-1', '-o', '3', ...args, '127.0.0.1']);
}

beforeAll(async () => {
  handlesBefore = liveHandles();
  const pressure = await loadProfileFile(`${PROFILES}pressure-calibrator.yaml`);
  sim = new Simulator({
    config: { host: '127.0.0.1', tickMs: 20, control: { host: '127.0.0.1', port: 0 } },
    instruments: [
      { profile: profile(), model: 'constant', port: 0 },
      { profile: pressure, model: 'pressure-calibrator', port: 0 },
    ],
  });
  await sim.start();
  base = `http://127.0.0.1:${sim.control?.port ?? 0}`;
  port = sim.instruments.get('climate-t')?.server.port ?? 0;
  pressurePort = sim.instruments.get(pressure.id)?.server.port ?? 0;
  await api('PUT', '/instruments/climate-t/values', { temperature: 21.5, humidity: 50, setpoint: 23.5, door_open: true });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const id of sim.instruments.keys()) await api('DELETE', `/instruments/${id}/fault`);
  await api('PUT', '/instruments/climate-t/values', { temperature: 21.5, humidity: 50, setpoint: 23.5, door_open: true });
});

afterAll(async () => {
  await sim.stop();
  await expectNoLeakedHandles(handlesBefore);
});

describe('the fault routes', () => {
  test('GET /instruments/:id shows the transport, the requests and the active faults', async () => {
    await api('PUT', '/instruments/climate-t/fault', { kind: 'slow', ms: 50 });
    await api('PUT', '/instruments/climate-t/fault', { kind: 'exception', code: 6, count: 3 });
    const { status, body } = await api('GET', '/instruments/climate-t');
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: 'climate-t', transport: 'tcp', port, unitId: 1, values: { temperature: 21.5 } });
    expect(body.faults).toEqual([
      expect.objectContaining({ kind: 'slow', ms: 50 }),
      expect.objectContaining({ kind: 'exception', code: 6, remaining: 3 }),
    ]);
    await api('DELETE', '/instruments/climate-t/fault/slow');
    expect((await api('GET', '/instruments/climate-t/fault')).body).toEqual([expect.objectContaining({ kind: 'exception' })]);
  });

  test('a bad fault body is refused with the path of the problem', async () => {
    const missing = await api('PUT', '/instruments/climate-t/fault', { kind: 'slow' });
    expect(missing.status).toBe(400);
    expect(missing.body.issues).toEqual([expect.objectContaining({ path: 'ms' })]);
    expect((await api('PUT', '/instruments/climate-t/fault', { kind: 'melt' })).status).toBe(400);
    expect((await api('PUT', '/instruments/climate-t/fault', { kind: 'noise', amplitude: 1, channels: ['door_open'] })).status).toBe(400);
    expect((await api('PUT', '/instruments/nope/fault', { kind: 'stuck' })).status).toBe(404);
    expect((await api('DELETE', '/instruments/climate-t/fault/melt')).status).toBe(400);
    const notJson = await fetch(`${base}/instruments/climate-t/fault`, { method: 'PUT', body: '{', headers: { connection: 'close' } });
    expect(notJson.status).toBe(400);
    await notJson.body?.cancel();
  });
});

describe('each fault, as a client sees it', () => {
  test('no-answer swallows requests until it is cleared', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'no-answer' });
    c.request(1, 1, READ_TEMPERATURE);
    expect(await c.next(300)).toBeUndefined();
    await api('DELETE', '/instruments/climate-t/fault/no-answer');
    c.request(2, 1, READ_TEMPERATURE);
    const reply = await c.next(1000);
    expect(reply?.readUInt16BE(0)).toBe(2); // the swallowed request is never answered
    expect(await c.next(200)).toBeUndefined();
  });

  test('slow delays replies, which keep their transaction ids: a client that gave up gets the late one first', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'slow', ms: 300 });
    const sent = Date.now();
    c.request(0x0101, 1, READ_TEMPERATURE);
    expect(await c.next(100)).toBeUndefined(); // the client's timeout
    c.request(0x0102, 1, READ_TEMPERATURE); // its retry
    const late = await c.next(1000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(290);
    expect(late?.readUInt16BE(0)).toBe(0x0101);
    expect(late?.readFloatBE(9)).toBe(21.5);
    expect((await c.next(1000))?.readUInt16BE(0)).toBe(0x0102);
  });

  test('exception answers with the code, for the next K requests only when a count is given', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'exception', code: 6, count: 2 });
    for (const tid of [1, 2]) {
      c.request(tid, 1, READ_TEMPERATURE);
      expect([...((await c.next()) ?? Buffer.alloc(0)).subarray(7)]).toEqual([0x83, 6]);
    }
    expect(await temperature(c, 3)).toBe(21.5); // the retry succeeds
    expect((await api('GET', '/instruments/climate-t/fault')).body).toEqual([]);
  });

  test('exception without a count: mbpoll reports a busy device until the fault is cleared', async () => {
    await api('PUT', '/instruments/climate-t/fault', { kind: 'exception', code: 6 });
    expect(await mbpollTcp(['-t', '4:float', '-B', '-r', '0', '-c', '1'])).toMatch(/busy/i);
    expect(await mbpollTcp(['-t', '4:float', '-B', '-r', '0', '-c', '1'])).toMatch(/busy/i);
    await api('DELETE', '/instruments/climate-t/fault');
    expect(mbpollValues(await mbpollTcp(['-t', '4:float', '-B', '-r', '0', '-c', '1']))[0]).toBe('21.5');
  });

  test('disconnect drops open connections and refuses new ones for the given time', async () => {
    const c = await client();
    expect(await temperature(c)).toBe(21.5);
    const set = Date.now();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'disconnect', ms: 500 });
    await sleep(50);
    expect(c.closed).toBe(true);
    await expect(RawClient.connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await sleep(Math.max(0, 650 - (Date.now() - set)));
    const again = await client();
    expect(await temperature(again)).toBe(21.5);
  });

  test('stuck freezes the served values', async () => {
    const c = await client(pressurePort);
    const read = async (tid: number): Promise<string> => {
      c.request(tid, 1, [3, 0, 0, 0, 2]);
      return ((await c.next()) ?? Buffer.alloc(0)).subarray(9).toString('hex');
    };
    const moving = [await read(1), (await sleep(60), await read(2))];
    expect(moving[0]).not.toBe(moving[1]); // the calibrator's pressure moves on every tick
    await api('PUT', '/instruments/pc-1/fault', { kind: 'stuck' });
    const frozen: string[] = [];
    for (let i = 0; i < 5; i++, await sleep(60)) frozen.push(await read(10 + i));
    expect(new Set(frozen).size).toBe(1);
    await api('DELETE', '/instruments/pc-1/fault/stuck');
    await sleep(60);
    expect(await read(20)).not.toBe(frozen[0]);
  });

  test('noise adds gaussian noise of the given amplitude to the chosen channels only', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'noise', amplitude: 1, channels: ['temperature'] });
    const samples: number[] = [];
    for (let i = 0; i < 40; i++) {
      samples.push((await temperature(c, i)) ?? NaN);
      await sleep(22);
    }
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    const sd = Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples.length - 1));
    expect(sd).toBeGreaterThan(0.5);
    expect(sd).toBeLessThan(1.7);
    expect(Math.abs(mean - 21.5)).toBeLessThan(0.8);
    // humidity (float32 CDAB at 2) is left alone
    expect(mbpollValues(await mbpollTcp(['-t', '4:float', '-r', '2', '-c', '1']))[2]).toBe('50');
  });

  test('drift adds a linear drift in units per second', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'drift', ratePerSecond: 10, channels: ['temperature'] });
    const t0 = Date.now();
    const first = (await temperature(c, 1)) ?? NaN;
    await sleep(400);
    const second = (await temperature(c, 2)) ?? NaN;
    const expected = (10 * (Date.now() - t0)) / 1000;
    expect(second - first).toBeGreaterThan(expected - 1);
    expect(second - first).toBeLessThan(expected + 1);
    await api('DELETE', '/instruments/climate-t/fault/drift');
    expect(await temperature(c, 3)).toBe(21.5);
  });

  test('wrong-byte-order swaps the words of 32-bit values: mbpoll reads them in the other word order', async () => {
    const args = ['-t', '4:float', '-r', '0', '-c', '1'];
    expect(mbpollValues(await mbpollTcp([...args, '-B']))[0]).toBe('21.5');
    await api('PUT', '/instruments/climate-t/fault', { kind: 'wrong-byte-order' });
    expect(mbpollValues(await mbpollTcp([...args, '-B']))[0]).not.toBe('21.5');
    expect(mbpollValues(await mbpollTcp(args))[0]).toBe('21.5');
    const c = await client();
    c.request(1, 1, READ_TEMPERATURE);
    expect([...((await c.next()) ?? Buffer.alloc(0)).subarray(9)]).toEqual([0, 0, 0x41, 0xac]);
    // a 16-bit register is not touched
    expect(mbpollValues(await mbpollTcp(['-t', '4', '-r', '4', '-c', '1']))[4]).toBe('235');
  });

  test('several faults at once: slow and exception for one request', async () => {
    const c = await client();
    await api('PUT', '/instruments/climate-t/fault', { kind: 'slow', ms: 150 });
    await api('PUT', '/instruments/climate-t/fault', { kind: 'exception', code: 4, count: 1 });
    const sent = Date.now();
    c.request(9, 1, READ_TEMPERATURE);
    const reply = await c.next(1000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(140);
    expect([...(reply ?? Buffer.alloc(0)).subarray(7)]).toEqual([0x83, 4]);
  });
});
