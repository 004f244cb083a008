import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { loadGatewayConfig } from '../src/index.js';

const profile = `id: ut-1
identity: { maker: Acme, model: T1, serialNumber: '42' }
connection: { transport: tcp, host: 127.0.0.1, port: 5020 }
points:
  - { name: force, register: input, address: 0, type: float32, unit: kN }
`;

function setup(gateway: string, profileText = profile): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-gw-'));
  writeFileSync(path.join(dir, 'ut.yaml'), profileText);
  writeFileSync(path.join(dir, 'pw'), 'a-long-enough-secret\n');
  writeFileSync(path.join(dir, 'gateway.yaml'), gateway);
  return path.join(dir, 'gateway.yaml');
}

const gateway = `gateway: { id: gw-1, lab: lab }
mqtt: { url: 'mqtt://127.0.0.1:1883', username: gw-1, passwordFile: pw }
instruments:
  - { profile: ut.yaml, port: 6000 }
`;

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('gateway config', () => {
  test('a valid config resolves profiles, overrides and the password file', async () => {
    const file = setup(gateway);
    const resolved = await loadGatewayConfig(file, {});
    expect(resolved.password).toBe('a-long-enough-secret');
    expect(resolved.profiles[0]?.connection).toEqual({ transport: 'tcp', host: '127.0.0.1', port: 6000 });
    expect(resolved.dataDir).toBe(path.join(path.dirname(file), 'gateway-data'));
  });

  test('a malformed profile names the profile file and the field', async () => {
    const file = setup(gateway, profile.replace('type: float32', 'type: real'));
    const message = await rejection(loadGatewayConfig(file, {}));
    expect(message).toContain(`${path.join(path.dirname(file), 'ut.yaml')}: points[0].type:`);
  });

  test('an unknown field in the gateway config is named', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace('lab: lab', 'lab: lab, color: red')), {}));
    expect(message).toMatch(/gateway\.yaml: gateway: .*color/);
  });

  test('a missing profile file is named', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace('ut.yaml', 'nope.yaml')), {}));
    expect(message).toMatch(/nope\.yaml: device profile: file not found/);
  });

  test('no password at all is refused with the reason', async () => {
    const message = await rejection(loadGatewayConfig(setup(gateway.replace(', passwordFile: pw', '')), {}));
    expect(message).toContain('mqtt.passwordFile: required unless LABTRACE_GATEWAY_PASSWORD is set');
  });

  test('the same instrument twice is refused', async () => {
    const message = await rejection(loadGatewayConfig(setup(`${gateway}  - { profile: ut.yaml }\n`), {}));
    expect(message).toContain('instruments[1].profile: instrument id "ut-1" is already used by instruments[0]');
  });
});
