// The simulator's config file: the shipped files load, overrides apply to the transports they fit,
// and every mistake names the file, the entry and the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { stringify } from 'yaml';
import { loadProfileFile, loadSimConfig, Simulator } from '../src/index.js';

const PROFILES = fileURLToPath(new URL('../../profiles/', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'labtrace-sim-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, doc: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, stringify(doc));
  return file;
}

const identity = { maker: 'T', model: 'M', serialNumber: 'S' };
const points = [{ name: 'v', register: 'holding', address: 0, type: 'uint16' }];
write('rtu.yaml', { id: 'rtu-1', identity, connection: { transport: 'rtu', path: 'unused-device' }, unitId: 4, points });
write('rtu-tcp.yaml', { id: 'rtt-1', identity, connection: { transport: 'rtu-over-tcp', host: '127.0.0.1', port: 5502 }, unitId: 2, points });
write('mqtt.yaml', {
  id: 'mq-1',
  identity,
  connection: { transport: 'mqtt', url: 'mqtt://127.0.0.1:1883', username: 'u', passwordFile: 'secret/broker.password' },
  points: [{ name: 'v', topic: 'lab/v' }],
});

describe('shipped files', () => {
  test('the default sim.yaml still serves the two demo instruments over Modbus TCP', async () => {
    const { instruments } = await loadSimConfig(`${PROFILES}sim.yaml`);
    expect(instruments.map((i) => [i.profile.id, i.model, 'connection' in i.profile && i.profile.connection.transport])).toEqual([
      ['climate-1', 'climate-chamber', 'tcp'],
      ['utm-1', 'universal-testing-machine', 'tcp'],
    ]);
  });

  test('the new profiles use the types they are meant to show', async () => {
    const pc = await loadProfileFile(`${PROFILES}pressure-calibrator.yaml`);
    const bal = await loadProfileFile(`${PROFILES}balance.yaml`);
    if (pc.protocol !== 'modbus' || bal.protocol !== 'modbus') throw new Error('expected Modbus profiles');
    expect(pc.points.map((p) => [p.name, p.type, p.order ?? ''])).toEqual([
      ['pressure', 'float32', 'CDAB'],
      ['setpoint', 'int32', 'CDAB'],
      ['setpoint_percent', 'uint16', ''],
      ['stable', 'bit', ''],
      ['ramping', 'bit', ''],
      ['rising', 'bit', ''],
    ]);
    expect(bal.points.find((p) => p.name === 'mass')?.type).toBe('float64');
    expect(bal.points.find((p) => p.name === 'unit')).toMatchObject({ type: 'string', length: 8 });
  });
});

describe('overrides', () => {
  test('path for rtu, port for rtu-over-tcp, url and publishIntervalMs for mqtt', async () => {
    const file = write('ok.yaml', {
      instruments: [
        { profile: 'rtu.yaml', model: 'constant', path: 'pty-a' },
        { profile: 'rtu-tcp.yaml', model: 'constant', port: 0 },
        { profile: 'mqtt.yaml', model: 'constant', url: 'mqtt://127.0.0.1:2883', publishIntervalMs: 250 },
      ],
    });
    const { instruments } = await loadSimConfig(file);
    expect(instruments[0]).toMatchObject({ path: 'pty-a' });
    expect(instruments[1]).toMatchObject({ port: 0 });
    expect(instruments[2]).toMatchObject({ url: 'mqtt://127.0.0.1:2883', publishIntervalMs: 250 });
    const mq = instruments[2]?.profile;
    // the password file is found beside the profile, wherever the simulator runs
    expect(mq?.protocol === 'mqtt' ? mq.connection.passwordFile : undefined).toBe(path.join(dir, 'secret', 'broker.password'));
  });

  test('an override that does not fit the transport is refused, naming the entry', async () => {
    const file = write('bad.yaml', {
      instruments: [
        { profile: 'rtu.yaml', model: 'constant', port: 5020 },
        { profile: `${PROFILES}climate-chamber.yaml`, model: 'climate-chamber', path: 'pty-a' },
        { profile: 'rtu-tcp.yaml', model: 'constant', publishIntervalMs: 100 },
      ],
    });
    const err = await loadSimConfig(file).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err).toMatchObject({ code: 'E_CONFIG' });
    expect(err?.message).toContain('instruments[0].port: does not apply to transport rtu');
    expect(err?.message).toContain('instruments[1].path: does not apply to transport tcp');
    expect(err?.message).toContain('instruments[2].publishIntervalMs: does not apply to transport rtu-over-tcp');
  });

  test('an RTU slave cannot have unit id 0 (the broadcast address)', async () => {
    write('rtu0.yaml', { id: 'rtu-0', identity, connection: { transport: 'rtu', path: 'x' }, unitId: 0, points });
    const file = write('zero.yaml', { instruments: [{ profile: 'rtu0.yaml', model: 'constant' }] });
    await expect(loadSimConfig(file)).rejects.toThrow(/unitId: an RTU slave address is 1-247/);
  });

  test('two instruments with one unit id, or two line formats, on one serial line are refused', async () => {
    write('rtu-b.yaml', { id: 'rtu-2', identity, connection: { transport: 'rtu', path: 'line' }, unitId: 4, points });
    write('rtu-c.yaml', { id: 'rtu-3', identity, connection: { transport: 'rtu', path: 'line', baudRate: 19200 }, unitId: 5, points });
    const same = await loadSimConfig(
      write('same.yaml', {
        instruments: [
          { profile: 'rtu.yaml', model: 'constant', path: 'line' },
          { profile: 'rtu-b.yaml', model: 'constant' },
        ],
      }),
    );
    expect(() => new Simulator({ config: { host: '127.0.0.1', tickMs: 100 }, instruments: same.instruments })).toThrow(/share unit id 4/);
    const formats = await loadSimConfig(
      write('formats.yaml', {
        instruments: [
          { profile: 'rtu.yaml', model: 'constant', path: 'line' },
          { profile: 'rtu-c.yaml', model: 'constant' },
        ],
      }),
    );
    expect(() => new Simulator({ config: { host: '127.0.0.1', tickMs: 100 }, instruments: formats.instruments })).toThrow(/runs at 9600 8E1/);
  });
  test('an OPC UA instrument: the shipped profile loads; its PKI folder and user password files resolve against the config', async () => {
    writeFileSync(path.join(dir, 'opcua-user.password'), 'tensile\n');
    const file = write('sim-opcua.yaml', {
      instruments: [
        {
          profile: path.join(PROFILES, 'utm-opcua.yaml'),
          model: 'universal-testing-machine',
          port: 0,
          opcua: {
            pkiDir: 'pki',
            secure: true,
            users: [{ username: 'op', passwordFile: 'opcua-user.password' }],
            functionalUnits: { Frame: ['force', 'extension'], Specimen: ['specimen'] },
          },
        },
      ],
    });
    const { instruments } = await loadSimConfig(file);
    expect(instruments[0]?.profile.protocol).toBe('opcua');
    expect(instruments[0]?.opcua).toMatchObject({ pkiDir: path.join(dir, 'pki'), secure: true, users: [{ username: 'op', password: 'tensile' }] });
    const wrong = write('sim-opcua-wrong.yaml', { instruments: [{ profile: 'rtu-tcp.yaml', model: 'constant', opcua: { secure: true } }] });
    await expect(loadSimConfig(wrong)).rejects.toThrow('instruments[0].opcua: does not apply to transport rtu-over-tcp');
  });
});
