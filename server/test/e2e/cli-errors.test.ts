// Bad input at the command line gets one clear message and a non-zero exit, never a stack trace.
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { collect, exitOf, runLabtrace } from '../helpers/lab-process.js';
import { freePort } from '../helpers/ports.js';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = runLabtrace(args, env);
  const output = collect(proc);
  const code = await exitOf(proc);
  return { code, output: output() };
}

test('an unknown command prints the usage', async () => {
  const { code, output } = await run(['fly']);
  expect(code).toBe(2);
  expect(output).toContain('unknown command "fly"');
  expect(output).toContain('usage: labtrace <command>');
});

test('a port in use is named, and the lab does not start', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const busy = (blocker.address() as net.AddressInfo).port;
  try {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'labtrace-busy-'));
    const { code, output } = await run(['lab'], { PORT: String(busy), MQTT_PORT: String(await freePort()), LABTRACE_DATA_DIR: dataDir });
    expect(code).toBe(1);
    expect(output).toContain(`E_PORT_IN_USE: HTTP port ${busy} is already in use; set PORT to another port`);
    expect(output).not.toMatch(/\n\s+at /); // no stack trace
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
});

test('the server names the MQTT port it cannot take', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const busy = (blocker.address() as net.AddressInfo).port;
  try {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'labtrace-busy-'));
    const { code, output } = await run(['server'], { PORT: String(await freePort()), MQTT_PORT: String(busy), LABTRACE_DATA_DIR: dataDir });
    expect(code).toBe(1);
    expect(output).toContain(`MQTT port 127.0.0.1:${busy} is already in use`);
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
});

test('a malformed device profile names the file and the field', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'labtrace-badprofile-'));
  writeFileSync(
    path.join(dir, 'p.yaml'),
    `id: x-1
identity: { maker: m, model: x, serialNumber: '1' }
connection: { transport: tcp, host: 127.0.0.1, port: 5020 }
points:
  - { name: force, register: input, address: 0, type: float32, oder: ABCD }
`,
  );
  writeFileSync(
    path.join(dir, 'gateway.yaml'),
    `gateway: { id: gw-1, lab: l }\nmqtt: { url: 'mqtt://127.0.0.1:1', username: gw-1 }\ninstruments: [ { profile: p.yaml } ]\n`,
  );
  const { code, output } = await run(['gateway', '--config', path.join(dir, 'gateway.yaml')], { LABTRACE_GATEWAY_PASSWORD: 'x' });
  expect(code).toBe(1);
  expect(output).toContain(`${path.join(dir, 'p.yaml')}: points[0]: Unrecognized key: "oder"`);
});

test('a bad environment value is named', async () => {
  const { code, output } = await run(['server'], { PORT: 'eighty', LABTRACE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'labtrace-env-')) });
  expect(code).toBe(1);
  expect(output).toMatch(/environment: PORT: /);
});

test('a missing config file is named', async () => {
  const { code, output } = await run(['sim', '--config', '/nonexistent/sim.yaml']);
  expect(code).toBe(1);
  expect(output).toContain('/nonexistent/sim.yaml: file not found');
});

test('a date past the end of its month is refused by the command line, not rolled over to the next month', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'labtrace-dates-'));
  const out = path.join(dataDir, 'bundle');
  const exported = await run(['export', '--out', out, '--gateway', 'gw-a', '--from', '2026-02-31T00:00:00Z', '--to', '2026-03-05T00:00:00Z'], {
    LABTRACE_DATA_DIR: dataDir,
  });
  expect(exported.code).not.toBe(0);
  expect(exported.output).toContain('--from: "2026-02-31T00:00:00Z": 2026-02-31 is not a date of the calendar');
  const noZone = await run(['export', '--out', out, '--gateway', 'gw-a', '--from', '2026-02-01T00:00:00Z', '--to', '2026-03-05T10:00'], {
    LABTRACE_DATA_DIR: dataDir,
  });
  expect(noZone.output).toContain('--to: "2026-03-05T10:00": expected an ISO 8601 date-time with its offset');
  const revoked = await run(
    ['server', 'revoke-key', '--gateway', 'gw-a', '--key-id', '00000000', '--reason', 'lost', '--from', '2026-04-31T00:00:00Z'],
    {
      LABTRACE_DATA_DIR: dataDir,
    },
  );
  expect(revoked.code).not.toBe(0);
  expect(revoked.output).toContain('--from: "2026-04-31T00:00:00Z": 2026-04-31 is not a date of the calendar');
});
