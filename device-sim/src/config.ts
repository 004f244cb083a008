// The simulator's configuration file: which instruments to serve, by which profile and signal model.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { deviceProfileSchema, LabtraceError, parseConfigText, type DeviceProfile } from '@labtrace/protocols';
import { MODEL_KINDS } from './models/index.js';

const port = z.number().int().min(0).max(65535);

export const simConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  tickMs: z.number().int().min(10).max(60_000).default(100),
  control: z.strictObject({ host: z.string().min(1).default('127.0.0.1'), port: port.default(0) }).optional(),
  instruments: z
    .array(
      z.strictObject({
        profile: z.string().min(1),
        model: z.enum(MODEL_KINDS),
        /** overrides the profile's port; 0 picks a free one */
        port: port.optional(),
        seed: z.number().int().optional(),
      }),
    )
    .min(1),
});
export type SimConfig = z.output<typeof simConfigSchema>;

export interface ResolvedSimInstrument {
  profile: DeviceProfile;
  model: SimConfig['instruments'][number]['model'];
  port: number;
  seed?: number;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${file}: ${reason}`, { cause: err });
  }
}

export async function loadProfileFile(file: string): Promise<DeviceProfile> {
  return parseConfigText(await readText(file), file, deviceProfileSchema, 'E_PROFILE');
}

export async function loadSimConfig(file: string): Promise<{ config: SimConfig; instruments: ResolvedSimInstrument[] }> {
  const config = parseConfigText(await readText(file), file, simConfigSchema);
  const dir = path.dirname(file);
  const instruments: ResolvedSimInstrument[] = [];
  for (const entry of config.instruments) {
    const profile = await loadProfileFile(path.resolve(dir, entry.profile));
    instruments.push({
      profile,
      model: entry.model,
      port: entry.port ?? profile.connection.port,
      ...(entry.seed === undefined ? {} : { seed: entry.seed }),
    });
  }
  return { config, instruments };
}
