// An in-process server on free loopback ports with a temporary data directory.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { formatVerifierKey, publicKeyFromSeed } from '@labtrace/protocols';
import { hashPassword, LabtraceServer, serverConfigSchema } from '../../src/index.js';

export interface TestServer {
  server: LabtraceServer;
  base: string;
  mqttUrl: string;
  password: string;
  readerPassword: string;
  stop(): Promise<void>;
}

/** The signing key of test gateway gw-s, registered with the server. */
export const GW_S_SEED = new Uint8Array(32).map((_, i) => 200 - i);

export async function startServer(): Promise<TestServer> {
  const password = 'gateway-secret-for-tests';
  const readerPassword = 'reader-secret-for-tests';
  const config = serverConfigSchema.parse({
    lab: 'lab-t',
    dataDir: mkdtempSync(path.join(tmpdir(), 'labtrace-srv-')),
    http: { host: '127.0.0.1', port: 0 },
    mqtt: { host: '127.0.0.1', port: 0 },
    broker: {
      users: [
        { username: 'gw-a', passwordHash: await hashPassword(password), role: 'gateway', gateway: 'gw-a' },
        { username: 'gw-b', passwordHash: await hashPassword(password), role: 'gateway', gateway: 'gw-b' },
        { username: 'viewer', passwordHash: await hashPassword(readerPassword), role: 'reader' },
        { username: 'gw-s', passwordHash: await hashPassword(password), role: 'gateway', gateway: 'gw-s' },
      ],
    },
    gateways: [{ id: 'gw-s', key: formatVerifierKey('gw-s', publicKeyFromSeed(GW_S_SEED)) }],
  });
  const server = new LabtraceServer(config, pino({ level: 'silent' }));
  await server.start();
  return {
    server,
    base: `http://127.0.0.1:${server.httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
    password,
    readerPassword,
    stop: () => server.stop(),
  };
}
