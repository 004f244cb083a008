// The gateway against a Modbus server nobody here wrote (modbus-serial's ServerTCP).
import net from 'node:net';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import ModbusSerial from 'modbus-serial';
import pino from 'pino';
import { encodeRegisters, parseModbusProfile } from '@labtrace/protocols';
import { LinkPool, ModbusInstrument, type PolledSample } from '../../src/index.js';

const registers = new Uint16Array(64);
registers.set(encodeRegisters(123456, { type: 'float32', order: 'CDAB' }), 0);
registers.set(encodeRegisters(-1234567, { type: 'int32', order: 'ABCD' }), 2);
registers.set(encodeRegisters(2.5, { type: 'float64', order: 'ABCD' }), 4);
registers.set(encodeRegisters('LAB-42', { type: 'string', length: 4 }), 8);

let server: InstanceType<typeof ModbusSerial.ServerTCP>;
let port: number;

beforeAll(async () => {
  const probe = net.createServer();
  port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const vector = {
    getHoldingRegister: (address: number) => {
      if (address >= registers.length) throw Object.assign(new Error('no such register'), { modbusErrorCode: 2 });
      return registers[address] ?? 0;
    },
    getInputRegister: () => {
      throw Object.assign(new Error('busy'), { modbusErrorCode: 6 });
    },
  };
  server = new ModbusSerial.ServerTCP(vector, { host: '127.0.0.1', port, unitID: 7 });
  await new Promise<void>((resolve) => server.on('initialized', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('values and exceptions from an independent server', async () => {
  const profile = parseModbusProfile({
    id: 'peer',
    identity: { maker: 'x', model: 'y', serialNumber: 'z' },
    connection: { transport: 'tcp', host: '127.0.0.1', port },
    unitId: 7,
    pollIntervalMs: 100,
    retries: 1,
    limits: { maxGap: 0 },
    points: [
      { name: 'a', register: 'holding', address: 0, type: 'float32', order: 'CDAB' },
      { name: 'b', register: 'holding', address: 2, type: 'int32', order: 'ABCD' },
      { name: 'c', register: 'holding', address: 4, type: 'float64' },
      { name: 'label', register: 'holding', address: 8, type: 'string', length: 4 },
      { name: 'missing', register: 'holding', address: 100, type: 'uint16' },
      { name: 'busy', register: 'input', address: 0, type: 'uint16' },
    ],
  });
  const pool = new LinkPool({ maxQueue: 100, pacingMs: 0 });
  const link = pool.acquire(profile.connection, 0);
  const instrument = new ModbusInstrument(profile, link, pino({ level: 'silent' }));
  const samples = await new Promise<PolledSample[]>((resolve) => {
    instrument.once('samples', resolve);
    void instrument.start();
  });
  await instrument.stop();
  await pool.release(link);
  const by = Object.fromEntries(samples.map((s) => [s.channel, s]));
  expect(by['a']).toMatchObject({ value: 123456, quality: 'good' });
  expect(by['b']).toMatchObject({ value: -1234567, quality: 'good' });
  expect(by['c']).toMatchObject({ value: 2.5, quality: 'good' });
  expect(by['label']).toMatchObject({ value: 'LAB-42', quality: 'good' });
  expect(by['missing']).toMatchObject({ value: null, quality: 'bad' });
  expect(by['missing']?.reason).toMatch(/exception 2/);
  // exception 6 (busy) is retried, then reported
  expect(by['busy']?.reason).toMatch(/exception 6 \(server device busy\)/);
  expect(instrument.getHealth().errors['exception_6']).toBe(2);
});
