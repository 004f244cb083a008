// The gateway's configuration file: who it is, where its broker is, and which instruments it reads.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { deviceProfileSchema, idSchema, LabtraceError, parseConfigText, type DeviceProfile } from '@labtrace/protocols';

export const gatewayConfigSchema = z.strictObject({
  gateway: z.strictObject({ id: idSchema, lab: idSchema }),
  /** where the gateway keeps its state (sequence numbers); relative to the config file */
  dataDir: z.string().min(1).default('./gateway-data'),
  mqtt: z.strictObject({
    url: z.string().regex(/^(mqtts?|wss?|tcp|tls):\/\/.+/, 'expected a URL such as mqtt://127.0.0.1:1883'),
    username: z.string().min(1),
    /** file holding the password; LABTRACE_GATEWAY_PASSWORD overrides it */
    passwordFile: z.string().min(1).optional(),
    keepaliveSeconds: z.number().int().min(5).max(600).default(30),
  }),
  batch: z
    .strictObject({
      maxSamples: z.number().int().min(1).max(10_000).default(500),
      maxDelayMs: z.number().int().min(10).max(60_000).default(200),
    })
    .default({ maxSamples: 500, maxDelayMs: 200 }),
  outbox: z.strictObject({ maxSamples: z.number().int().min(1000).max(10_000_000).default(200_000) }).default({ maxSamples: 200_000 }),
  instruments: z
    .array(
      z.strictObject({
        profile: z.string().min(1),
        /** overrides the host and port of the profile's connection */
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
      }),
    )
    .min(1),
});
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export interface ResolvedGatewayConfig {
  config: GatewayConfig;
  profiles: DeviceProfile[];
  dataDir: string;
  password: string;
  /** broker passwords of MQTT instruments, by instrument id */
  instrumentPasswords: Map<string, string>;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${file}: ${what}: ${reason}`, { cause: err });
  }
}

export async function loadProfileFile(file: string): Promise<DeviceProfile> {
  return parseConfigText(await readText(file, 'device profile'), file, deviceProfileSchema, 'E_PROFILE');
}

export async function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedGatewayConfig> {
  const config = parseConfigText(await readText(file, 'gateway config'), file, gatewayConfigSchema);
  const dir = path.dirname(file);
  const profiles: DeviceProfile[] = [];
  const instrumentPasswords = new Map<string, string>();
  const ids = new Map<string, number>();
  for (const [i, entry] of config.instruments.entries()) {
    const profile = await loadProfileFile(path.resolve(dir, entry.profile));
    const first = ids.get(profile.id);
    if (first !== undefined) {
      throw new LabtraceError(
        'E_CONFIG',
        `${file}: instruments[${i}].profile: instrument id "${profile.id}" is already used by instruments[${first}]`,
      );
    }
    ids.set(profile.id, i);
    const profileFile = path.resolve(dir, entry.profile);
    if (profile.protocol === 'mqtt' && profile.connection.passwordFile !== undefined) {
      const secret = (await readText(path.resolve(path.dirname(profileFile), profile.connection.passwordFile), 'connection.passwordFile')).trim();
      instrumentPasswords.set(profile.id, secret);
    }
    const connection = profile.connection;
    if ((entry.host !== undefined || entry.port !== undefined) && !('host' in connection)) {
      throw new LabtraceError(
        'E_CONFIG',
        `${file}: instruments[${i}]: host and port apply only to tcp and rtu-over-tcp instruments; ${profile.id} uses ${connection.transport}`,
      );
    }
    profiles.push(
      'host' in connection
        ? ({ ...profile, connection: { ...connection, host: entry.host ?? connection.host, port: entry.port ?? connection.port } } as DeviceProfile)
        : profile,
    );
  }
  let password = env['LABTRACE_GATEWAY_PASSWORD'];
  if (password === undefined) {
    if (config.mqtt.passwordFile === undefined) {
      throw new LabtraceError(
        'E_CONFIG',
        `${file}: mqtt.passwordFile: required unless LABTRACE_GATEWAY_PASSWORD is set (the broker refuses anonymous clients)`,
      );
    }
    password = (await readText(path.resolve(dir, config.mqtt.passwordFile), 'mqtt.passwordFile')).trim();
  }
  if (password === '') throw new LabtraceError('E_CONFIG', `${file}: mqtt password is empty`);
  return { config, profiles, dataDir: path.resolve(dir, config.dataDir), password, instrumentPasswords };
}

/** The gateway's id and data directory only, for commands that run before it has credentials. */
export async function loadGatewayIdentityConfig(file: string): Promise<{ id: string; dataDir: string }> {
  const config = parseConfigText(await readText(file, 'gateway config'), file, gatewayConfigSchema);
  return { id: config.gateway.id, dataDir: path.resolve(path.dirname(file), config.dataDir) };
}
