// LABTRACE_MQTT_USERNAME: the node's own user on the external broker, over `mqtt.external.username`, so that nodes
// sharing one server.yaml each log in as their own user (deploy/cluster/compose.yaml). Checked when the config is
// read: a bad value, or the variable without an external broker, is refused naming the variable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import { loadServerConfig } from '../../src/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-mqtt-user-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}
const EXTERNAL = configFile(
  'external.yaml',
  'mqtt:\n  external:\n    url: mqtt://broker:1883\n    username: labtrace-node-1\n    passwordFile: ./mqtt.password\n    sharedGroup: nodes\n',
);

test("the variable replaces the file's username and nothing else of the section; unset or empty, the file's stays", async () => {
  const file = await loadServerConfig(EXTERNAL, {});
  expect(file.mqtt.external?.username).toBe('labtrace-node-1');
  expect((await loadServerConfig(EXTERNAL, { LABTRACE_MQTT_USERNAME: '' })).mqtt.external?.username).toBe('labtrace-node-1');
  const node2 = await loadServerConfig(EXTERNAL, { LABTRACE_MQTT_USERNAME: 'labtrace-node-2' });
  expect(node2.mqtt.external).toEqual({ ...file.mqtt.external, username: 'labtrace-node-2' });
  expect(node2.mqtt.external?.passwordFile).toBe(path.join(dir, 'mqtt.password'));
});

test.each(['node 2', 'node/2', 'node+', '#', 'x'.repeat(129)])('a bad LABTRACE_MQTT_USERNAME (%j) is refused, naming the variable', async (value) => {
  const load = loadServerConfig(EXTERNAL, { LABTRACE_MQTT_USERNAME: value });
  await expect(load).rejects.toThrow(/^environment: LABTRACE_MQTT_USERNAME: expected 1 to 128 letters/);
  await expect(load).rejects.toMatchObject({ code: 'E_CONFIG' });
});

test('LABTRACE_MQTT_USERNAME without mqtt.external (the embedded broker) is refused, naming the variable', async () => {
  const embedded = configFile('embedded.yaml', 'mqtt: { host: 127.0.0.1, port: 1883 }\n');
  await expect(loadServerConfig(embedded, { LABTRACE_MQTT_USERNAME: 'labtrace-node-2' })).rejects.toThrow(
    /LABTRACE_MQTT_USERNAME: set, but the config has no mqtt\.external/,
  );
  expect((await loadServerConfig(embedded, {})).mqtt.external).toBeUndefined();
});
