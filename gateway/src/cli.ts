// `labtrace gateway [--config file]`: polls the configured instruments and publishes to the server.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LabtraceError } from '@labtrace/protocols';
import { loadGatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { createLogger } from './log.js';

export const usage = `usage: labtrace gateway [--config <gateway.yaml>]
  Polls the instruments named in the config and publishes their samples to the server's broker.
  The MQTT password comes from mqtt.passwordFile or LABTRACE_GATEWAY_PASSWORD.`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void> }> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const file = path.resolve(values.config ?? 'gateway.yaml');
  const resolved = await loadGatewayConfig(file);
  const gateway = new Gateway(resolved, createLogger('gateway'));
  await gateway.start();
  return gateway;
}
