// `labtrace server [--config file]` and `labtrace server hash-password`.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LabtraceError } from '@labtrace/protocols';
import { hashPassword } from './broker/passwords.js';
import { loadServerConfig, resolveServerConfig, serverConfigSchema } from './config.js';
import { createLogger } from './log.js';
import { LabtraceServer } from './server.js';
import { useNodeCrypto } from './node-crypto.js';

export const usage = `usage: labtrace server [--config <server.yaml>]
       labtrace server hash-password     reads a password on stdin, prints its scrypt hash
  Runs the broker (MQTT on 1883, WebSocket at /mqtt), ingest, store, REST API and dashboard (8080).
  Environment: PORT, MQTT_PORT, LABTRACE_DATA_DIR override the config.`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function main(argv: string[]): Promise<{ stop(): Promise<void> }> {
  if (argv[0] === 'hash-password') {
    const password = await readStdin();
    if (password.length < 12) throw new LabtraceError('E_CONFIG', 'password: at least 12 characters');
    process.stdout.write(`${await hashPassword(password)}\n`);
    return { stop: () => Promise.resolve() };
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const config = values.config
    ? await loadServerConfig(path.resolve(values.config))
    : resolveServerConfig(serverConfigSchema.parse({}), process.env, process.cwd());
  useNodeCrypto();
  const logger = createLogger('server');
  if (config.broker.users.length === 0) logger.warn('no broker users configured: no gateway can connect (anonymous access is refused)');
  const server = new LabtraceServer(config, logger);
  await server.start();
  return server;
}
