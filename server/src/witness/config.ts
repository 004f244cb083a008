// witness.yaml: where the witness listens, its store, its signing key, and the logs it witnesses with their keys.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { LabtraceError, parseConfigText, parseCosignerSignerKey, parseVerifierKey, type SignerKey } from '@labtrace/protocols';
import { readSecretFile } from '../secret-env.js';
import type { WitnessLog } from './witness.js';

const verifierKeySchema = z.string().superRefine((text, ctx) => {
  try {
    parseVerifierKey(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const witnessConfigSchema = z
  .object({
    listen: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(7380) })
      .strict()
      .default({ host: '127.0.0.1', port: 7380 }),
    /** the SQLite file of the witness's state and evidence, relative to the configuration file */
    database: z.string().min(1).default('witness.db'),
    /** a file holding the signing key `PRIVATE+KEY+<name>+<keyid>+<base64(0x04 || seed)>` (or LABTRACE_WITNESS_KEY) */
    keyFile: z.string().min(1).optional(),
    logs: z
      .array(z.object({ origin: z.string().min(1), keys: z.array(verifierKeySchema).min(1) }).strict())
      .min(1)
      .superRefine((logs, ctx) => {
        const seen = new Set<string>();
        logs.forEach((l, i) => {
          if (seen.has(l.origin)) ctx.addIssue({ code: 'custom', path: [i, 'origin'], message: `log "${l.origin}" is listed twice` });
          seen.add(l.origin);
        });
      }),
  })
  .strict();

export interface WitnessConfig {
  host: string;
  port: number;
  database: string;
  key: SignerKey;
  logs: WitnessLog[];
}

/** Reads witness.yaml; the key comes from LABTRACE_WITNESS_KEY when set, else from `keyFile`. */
export async function loadWitnessConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<WitnessConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new LabtraceError('E_CONFIG_READ', `${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseConfigText(text, file, witnessConfigSchema);
  const dir = path.dirname(file);
  const fromEnv = env['LABTRACE_WITNESS_KEY'];
  const keyText =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv
      : parsed.keyFile === undefined
        ? undefined
        : readSecretFile(path.resolve(dir, parsed.keyFile), `${file}: keyFile`);
  if (keyText === undefined)
    throw new LabtraceError('E_CONFIG', `${file}: keyFile: the witness needs a signing key (keyFile or LABTRACE_WITNESS_KEY)`);
  let key: SignerKey;
  try {
    key = parseCosignerSignerKey(keyText);
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${file}: keyFile: ${(err as Error).message}`, { cause: err });
  }
  return { host: parsed.listen.host, port: parsed.listen.port, database: path.resolve(dir, parsed.database), key, logs: parsed.logs };
}
