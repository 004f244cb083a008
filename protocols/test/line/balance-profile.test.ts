// The balance profile: line protocols over a serial line or a serial device server, validated with
// errors that name the field.
import { expect, test } from '@jest/globals';
import { deviceProfileSchema, LabtraceError, parseConfigText, type BalanceProfile } from '../../src/index.js';

const serial = `
protocol: balance
id: bal-2
identity: { maker: Mettler Toledo, model: XS204, serialNumber: B-1 }
dialect: mt-sics
connection: { transport: serial, path: /dev/ttyUSB0 }
points: [{ name: mass, unit: g }]
`;

function parse(text: string): BalanceProfile {
  const p = parseConfigText(text, 'bal.yaml', deviceProfileSchema, 'E_PROFILE');
  if (p.protocol !== 'balance') throw new Error(`parsed as ${p.protocol}`);
  return p;
}

function problem(text: string): string {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof LabtraceError) return err.message;
    throw err;
  }
  throw new Error('expected the profile to be rejected');
}

test('a serial balance gets the line defaults: 9600 8N1, poll every second, no commands', () => {
  const p = parse(serial);
  expect(p.connection).toEqual({ transport: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 });
  expect(p.mode).toBe('poll');
  expect(p.pollIntervalMs).toBe(1000);
  expect(p.timeoutMs).toBe(1000);
  expect(p.allowCommands).toEqual([]);
  expect(p.points).toEqual([{ name: 'mass', unit: 'g' }]);
});

test('an SBI balance behind a serial device server, printing on its own, with 7O1', () => {
  const p = parse(
    serial
      .replace('dialect: mt-sics', 'dialect: sbi\nmode: unsolicited')
      .replace('{ transport: serial, path: /dev/ttyUSB0 }', '{ transport: tcp, host: 10.0.0.5, port: 4001 }'),
  );
  expect(p.dialect).toBe('sbi');
  expect(p.mode).toBe('unsolicited');
  expect(p.connection).toEqual({ transport: 'tcp', host: '10.0.0.5', port: 4001 });
  const sevenOdd = parse(serial.replace('path: /dev/ttyUSB0', 'path: /dev/ttyS0, dataBits: 7, parity: odd, baudRate: 1200'));
  expect(sevenOdd.connection).toMatchObject({ baudRate: 1200, dataBits: 7, parity: 'odd' });
});

test('each problem names its field', () => {
  expect(problem(serial.replace('dialect: mt-sics', 'dialect: kern'))).toMatch(/dialect/);
  expect(problem(serial.replace('dialect: mt-sics', 'dialect: sbi\nmode: sometimes'))).toMatch(/mode/);
  expect(problem(serial.replace('path: /dev/ttyUSB0', 'path: /dev/ttyUSB0, parity: mark'))).toMatch(/connection\.parity/);
  expect(problem(serial.replace('path: /dev/ttyUSB0', 'path: /dev/ttyUSB0, dataBits: 6'))).toMatch(/connection\.dataBits/);
  expect(problem(serial.replace('{ transport: serial, path: /dev/ttyUSB0 }', '{ transport: tcp, host: h }'))).toMatch(/connection\.port/);
  expect(problem(serial.replace('[{ name: mass, unit: g }]', '[{ name: mass }]'))).toMatch(/points\[0\]\.unit/);
  expect(problem(serial.replace('[{ name: mass, unit: g }]', '[{ name: a, unit: g }, { name: b, unit: g }]'))).toMatch(
    /points: a balance gives one weight/,
  );
  expect(problem(`${serial}pollIntervalMs: 5\n`)).toMatch(/pollIntervalMs/);
});

test('zero and tare: MT-SICS balances in poll mode only, each listed once', () => {
  expect(parse(`${serial}allowCommands: [tare, zero]\n`).allowCommands).toEqual(['tare', 'zero']);
  expect(problem(`${serial}allowCommands: [calibrate]\n`)).toMatch(/allowCommands/);
  expect(problem(`${serial}allowCommands: [tare, tare]\n`)).toMatch(/allowCommands: a command is listed twice/);
  expect(problem(`${serial.replace('mt-sics', 'sbi')}allowCommands: [tare]\n`)).toMatch(
    /allowCommands: zero and tare are sent to MT-SICS balances only/,
  );
  expect(problem(`${serial}mode: unsolicited\nallowCommands: [zero]\n`)).toMatch(/allowCommands: zero and tare are sent between two polls/);
  expect(parse(`${serial}allowCommands: []\n`).allowCommands).toEqual([]);
});
