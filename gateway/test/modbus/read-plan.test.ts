import { expect, test } from '@jest/globals';
import { parseModbusProfile, type ModbusProfileInput } from '@labtrace/protocols';
import { planReads } from '../../src/index.js';

function profileWith(points: ModbusProfileInput['points'], addressBase: 0 | 1 = 0) {
  return parseModbusProfile({
    id: 'p',
    identity: { maker: 'm', model: 'x', serialNumber: '1' },
    connection: { transport: 'tcp', host: 'h', port: 1 },
    addressBase,
    points,
  });
}

test('neighbouring points share one request; a wide gap splits', () => {
  const plan = planReads(
    profileWith([
      { name: 'a', register: 'holding', address: 0, type: 'float32' },
      { name: 'b', register: 'holding', address: 2, type: 'int16' },
      { name: 'c', register: 'holding', address: 10, type: 'uint16' },
      { name: 'd', register: 'holding', address: 100, type: 'float64' },
    ]),
  );
  expect(plan.map((r) => [r.register, r.address, r.quantity])).toEqual([
    ['holding', 0, 11],
    ['holding', 100, 4],
  ]);
  expect(plan[0]?.points.map((p) => [p.point.name, p.offset])).toEqual([
    ['a', 0],
    ['b', 2],
    ['c', 10],
  ]);
});

test('register sets are never mixed, and the 125-register limit splits a request', () => {
  const plan = planReads(
    profileWith([
      { name: 'a', register: 'input', address: 0, type: 'uint16' },
      { name: 'b', register: 'holding', address: 0, type: 'uint16' },
      { name: 'c', register: 'holding', address: 122, type: 'float64' },
      { name: 'e', register: 'coil', address: 5, type: 'bool' },
    ]),
    { maxGap: 200, maxRegisters: 125, maxBits: 2000 },
  );
  expect(plan.map((r) => [r.register, r.address, r.quantity])).toEqual([
    ['coil', 5, 1],
    ['holding', 0, 1],
    ['holding', 122, 4],
    ['input', 0, 1],
  ]);
});

test('address base 1 reads protocol address 0 for register 1', () => {
  const plan = planReads(profileWith([{ name: 'a', register: 'holding', address: 1, type: 'uint16' }], 1));
  expect(plan[0]?.address).toBe(0);
});
