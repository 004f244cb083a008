import { describe, expect, test } from '@jest/globals';
import { deviceProfileSchema, LabtraceError, modbusProfileSchema, parseConfigText, pointWidth } from '../src/index.js';

const good = `
id: utm-1
identity: { maker: Acme, model: T1, serialNumber: '42' }
connection: { transport: tcp, host: 127.0.0.1, port: 5020 }
points:
  - { name: force, register: input, address: 0, type: float32, order: CDAB, unit: kN }
  - { name: door, register: coil, address: 3, type: bool }
`;

function errorOf(text: string): LabtraceError {
  try {
    parseConfigText(text, 'ut.yaml', deviceProfileSchema, 'E_PROFILE');
  } catch (err) {
    if (err instanceof LabtraceError) return err;
    throw err;
  }
  throw new Error('expected the profile to be rejected');
}

describe('device profile', () => {
  test('a valid profile gets its defaults', () => {
    const p = modbusProfileSchema.parse(parseConfigText(good, 'ut.yaml', deviceProfileSchema));
    expect(p.protocol).toBe('modbus');
    expect(p.unitId).toBe(1);
    expect(p.addressBase).toBe(0);
    expect(p.points[0]?.scale).toBe(1);
    expect(p.points.map(pointWidth)).toEqual([2, 1]);
  });

  test('an unknown field is named with its path', () => {
    const err = errorOf(good.replace('unit: kN', 'unit: kN, colour: red'));
    expect(err.code).toBe('E_PROFILE');
    expect(err.message).toContain('ut.yaml: points[0]');
    expect(err.message).toContain('colour');
  });

  test('a bad type lists the allowed ones', () => {
    const err = errorOf(good.replace('type: float32', 'type: float31'));
    expect(err.message).toMatch(/ut\.yaml: points\[0\]\.type: .*float32/);
  });

  test('an order that does not fit the type', () => {
    const err = errorOf(good.replace('order: CDAB', 'order: AB'));
    expect(err.message).toContain('points[0].order: order AB does not fit a 32-bit float32');
  });

  test('a coil must be bool, and channels are unique', () => {
    expect(errorOf(good.replace('type: bool', 'type: int16')).message).toContain('points[1].type: a coil holds one bit');
    expect(errorOf(good.replace('name: door', 'name: force')).message).toContain('points[1].name: channel "force" is already used by points[0]');
  });

  test('every problem is reported, not only the first', () => {
    const err = errorOf(good.replace('port: 5020', 'port: 70000').replace('address: 3', 'address: -1'));
    expect(err.message).toContain('connection.port');
    expect(err.message).toContain('points[1].address');
  });

  test('broken YAML names the file and line', () => {
    const err = errorOf('id: [unclosed\n  x: 1');
    expect(err.message).toMatch(/^ut\.yaml \(line \d+, column \d+\): not valid YAML or JSON/);
  });

  test('an MQTT instrument is told apart by its transport', () => {
    const p = parseConfigText(
      `id: bal-1
identity: { maker: Acme, model: B1, serialNumber: '7' }
connection: { transport: mqtt, url: 'mqtt://127.0.0.1:1883' }
points:
  - { name: mass, topic: lab/balance/1, jsonPath: reading.value, timestampPath: reading.ts, unit: g }
`,
      'bal.yaml',
      deviceProfileSchema,
    );
    expect(p.protocol).toBe('mqtt');
    expect(p.protocol === 'mqtt' && p.staleAfterMs).toBe(30_000);
    expect(errorOf(good.replace('transport: tcp, host: 127.0.0.1, port: 5020', "transport: mqtt, url: 'mqtt://h'")).message).toMatch(
      /points\[0\]: Unrecognized keys?: .*register/,
    );
  });

  test('RTU connections get the serial defaults', () => {
    const p = parseConfigText(
      good.replace('transport: tcp, host: 127.0.0.1, port: 5020', 'transport: rtu, path: /dev/ttyUSB0'),
      'ut.yaml',
      deviceProfileSchema,
    );
    expect('connection' in p && p.connection).toEqual({
      transport: 'rtu',
      path: '/dev/ttyUSB0',
      baudRate: 9600,
      parity: 'even',
      dataBits: 8,
      stopBits: 1,
    });
  });

  test('JSON is read too', () => {
    const p = parseConfigText(
      JSON.stringify({
        id: 'a',
        identity: { maker: 'm', model: 'x', serialNumber: '1' },
        connection: { transport: 'tcp', host: 'h', port: 1 },
        points: [{ name: 'p', register: 'holding', address: 0 }],
      }),
      'a.json',
      deviceProfileSchema,
    );
    expect(p.protocol === 'modbus' && p.points[0]?.type).toBe('uint16');
  });
});

test('a point has no reporting of its own unless it says so', () => {
  const p = parseConfigText(good.replace('unit: kN }', 'unit: kN, reporting: { mode: change, deadband: 0.1 } }'), 'ut.yaml', deviceProfileSchema);
  if (p.protocol !== 'modbus') throw new Error('expected modbus');
  expect(p.reporting).toEqual({ mode: 'periodic', deadband: 0, periodMs: 60_000 });
  expect(p.points[0]?.reporting).toEqual({ mode: 'change', deadband: 0.1, periodMs: 60_000 });
  expect(p.points[1]?.reporting).toBeUndefined();
});

test('a malformed JSON path in an MQTT profile is named with its field', () => {
  const text = `id: bal-1
identity: { maker: Acme, model: B1, serialNumber: '7' }
connection: { transport: mqtt, url: 'mqtt://127.0.0.1:1883' }
points:
  - { name: mass, topic: lab/balance/1, jsonPath: 'reading..value' }
  - { name: tare, topic: lab/balance/1, jsonPath: 'a.__proto__' }
`;
  expect(() => parseConfigText(text, 'bal.yaml', deviceProfileSchema)).toThrow(
    /bal\.yaml: points\[0\]\.jsonPath: "reading\.\.value" is not a dotted path/,
  );
  expect(() => parseConfigText(text, 'bal.yaml', deviceProfileSchema)).toThrow(/bal\.yaml: points\[1\]\.jsonPath: "__proto__" cannot be a key/);
});
