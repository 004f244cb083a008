// The simulated SCPI multimeter on a raw TCP socket, read with plain sockets: the identity, the pinned values
// (pinned by the simulator's config) printed as a 6½-digit meter prints them, the error queue (an unknown
// header, entries put there by a fault, *CLS), and the faults that apply to a SCPI instrument.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScpiNumber } from '@labtrace/protocols';
import { loadSimConfig, Simulator, type ScpiServer } from '../src/index.js';
import { waitFor } from './helpers.js';

const PROFILES = fileURLToPath(new URL('../../../device-sim/profiles/', import.meta.url));
let sim: Simulator;
let socket: net.Socket;
const lines: string[] = [];

async function ask(command: string): Promise<string> {
  socket.write(`${command}\n`);
  await waitFor(`a reply to ${command}`, () => lines.length > 0);
  return lines.shift() as string;
}

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-sim-scpi-'));
  copyFileSync(path.join(PROFILES, 'multimeter-scpi.yaml'), path.join(dir, 'dmm.yaml'));
  writeFileSync(
    path.join(dir, 'sim.yaml'),
    'instruments:\n  - { profile: dmm.yaml, model: constant, port: 0, pin: { voltage: 1.5, current: -0.0025, resistance: 1000.25 } }\n',
  );
  const { config, instruments } = await loadSimConfig(path.join(dir, 'sim.yaml'));
  sim = new Simulator({ config: { ...config, tickMs: 20 }, instruments });
  await sim.start();
  const port = sim.instruments.get('dmm-1')?.server.port ?? 0;
  socket = net.connect({ host: '127.0.0.1', port });
  let partial = '';
  socket.on('data', (chunk: Buffer) => {
    partial += chunk.toString('latin1');
    for (let end = partial.indexOf('\n'); end >= 0; end = partial.indexOf('\n')) {
      lines.push(partial.slice(0, end));
      partial = partial.slice(end + 1);
    }
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
});

afterAll(async () => {
  socket.destroy();
  await sim.stop();
});

test('identity and the values pinned by the config, in any case of the command', async () => {
  expect(await ask('*IDN?')).toBe('Keysight Technologies,34465A,MY57001234,A.03.01');
  expect(await ask('MEAS:VOLT:DC?')).toBe('+1.50000000E+00');
  expect(await ask('meas:curr:dc?')).toBe('-2.50000000E-03');
  const res = await ask('MEAS:RES?');
  expect(res).toBe('+1.00025000E+03');
  expect(parseScpiNumber(res)).toEqual({ kind: 'number', value: 1000.25 });
});

test('the error queue: an unknown header gets no reply and -113; entries from a fault, oldest first; *CLS empties it', async () => {
  socket.write('MEAS:FREQ?\n');
  expect(await ask('SYST:ERR?')).toBe('-113,"Undefined header"');
  expect(await ask('SYST:ERR?')).toBe('+0,"No error"');
  const dmm = sim.instruments.get('dmm-1');
  dmm?.setFault({ kind: 'error-queue', code: -222, message: 'Data out of range', count: 2 }, Date.now());
  await ask('MEAS:VOLT:DC?');
  await ask('MEAS:VOLT:DC?');
  await ask('MEAS:VOLT:DC?');
  expect((dmm?.server as ScpiServer).errorQueue).toEqual([
    { code: -222, message: 'Data out of range' },
    { code: -222, message: 'Data out of range' },
  ]);
  expect(await ask('SYSTEM:ERROR?')).toBe('-222,"Data out of range"');
  socket.write('*CLS\n');
  expect(await ask('SYST:ERR?')).toBe('+0,"No error"');
});

test('overload prints 9.9E37; faults of other kinds of instrument are refused', async () => {
  const dmm = sim.instruments.get('dmm-1');
  dmm?.setFault({ kind: 'overload' }, Date.now());
  expect(await ask('MEAS:VOLT:DC?')).toBe('+9.90000000E+37');
  dmm?.clearFault(Date.now());
  expect(() => dmm?.setFault({ kind: 'exception', code: 6 }, Date.now())).toThrow(/does not apply to dmm-1, a SCPI instrument/);
  expect(() => dmm?.setFault({ kind: 'busy' }, Date.now())).toThrow(/does not apply/);
});

test('a pin in the config for a channel the profile does not have is refused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-sim-scpi-'));
  copyFileSync(path.join(PROFILES, 'multimeter-scpi.yaml'), path.join(dir, 'dmm.yaml'));
  writeFileSync(path.join(dir, 'sim.yaml'), 'instruments:\n  - { profile: dmm.yaml, model: constant, port: 0, pin: { frequency: 50 } }\n');
  const { config, instruments } = await loadSimConfig(path.join(dir, 'sim.yaml'));
  expect(() => new Simulator({ config, instruments })).toThrow(/instrument "dmm-1": pin: no channel\(s\) frequency/);
});
