// `labtrace sim [--config file]`: serves the simulated instruments until stopped.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LabtraceError } from '@labtrace/protocols';
import { loadSimConfig } from './config.js';
import { createLogger } from './log.js';
import { Simulator } from './simulator.js';

export const DEFAULT_SIM_CONFIG = fileURLToPath(new URL('../../profiles/sim.yaml', import.meta.url));

export const usage = `usage: labtrace sim [--config <sim.yaml>]
  Serves simulated Modbus TCP instruments (default config: the climate chamber and the
  universal testing machine of device-sim/profiles).`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void> }> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const file = path.resolve(values.config ?? DEFAULT_SIM_CONFIG);
  const { config, instruments } = await loadSimConfig(file);
  const logger = createLogger('sim');
  const simulator = new Simulator({ config, instruments, logger });
  await simulator.start();
  return simulator;
}
