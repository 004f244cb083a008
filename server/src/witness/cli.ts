// `labtrace witness --config witness.yaml` runs a witness; `labtrace witness keygen --name <name>` makes its key.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatCosignerSignerKey, formatCosignerVerifierKey, isValidKeyName, LabtraceError, publicKeyFromSeed } from '@labtrace/protocols';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { createLogger } from '../log.js';
import { guardProcess } from '../process-faults.js';
import { loadWitnessConfig } from './config.js';
import { Witness } from './witness.js';

export const usage = `usage: labtrace witness --config <witness.yaml>
       labtrace witness keygen --name <witness name>

Runs a C2SP tlog-witness: POST /add-checkpoint cosigns each log checkpoint consistent with the last one it
cosigned, and keeps the evidence of forks and bad proofs. keygen prints a new signing key (keep it secret: put it
in the file named by keyFile, or in LABTRACE_WITNESS_KEY) and, on stderr, the public key to give to labs and verifiers.`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void>; done?: Promise<number> }> {
  if (argv[0] === 'keygen') {
    const { values } = parseOrExplain(argv.slice(1), { name: { type: 'string' } });
    const name = values.name;
    if (typeof name !== 'string' || !isValidKeyName(name))
      throw new LabtraceError('E_CONFIG', `keygen needs --name, a key name without spaces or "+"\n${usage}`);
    const seed = new Uint8Array(randomBytes(32));
    process.stdout.write(`${formatCosignerSignerKey(name, seed)}\n`);
    process.stderr.write(`public key: ${formatCosignerVerifierKey(name, publicKeyFromSeed(seed))}\n`);
    return { stop: () => Promise.resolve(), done: Promise.resolve(0) };
  }
  const { values } = parseOrExplain(argv, { config: { type: 'string', short: 'c' } });
  if (typeof values.config !== 'string') throw new LabtraceError('E_CONFIG', `witness needs --config\n${usage}`);
  const config = await loadWitnessConfig(path.resolve(values.config));
  useNodeCrypto();
  const logger = createLogger('witness');
  guardProcess(logger);
  const witness = new Witness({ key: config.key, database: config.database, host: config.host, port: config.port, logs: config.logs }, logger);
  await witness.start();
  return witness;
}

function parseOrExplain(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, unknown> } {
  try {
    return parseArgs({ args, options, strict: true });
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
}
