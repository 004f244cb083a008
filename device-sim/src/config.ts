// The simulator's configuration file: which instruments to serve, by which profile and signal model.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { deviceProfileSchema, LabtraceError, parseConfigText, type DeviceProfile } from '@labtrace/protocols';
import { MODEL_KINDS } from './models/index.js';
import type { OpcuaServerOptions } from './opcua-server.js';

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
        /** tcp and rtu-over-tcp: overrides the profile's port; 0 picks a free one */
        port: port.optional(),
        /** rtu, serial (a balance): overrides the profile's serial device (as given: a device name is not a path relative to this file) */
        path: z.string().min(1).optional(),
        /** mqtt: overrides the profile's broker URL */
        url: z
          .string()
          .regex(/^(mqtts?|wss?|tcp|tls):\/\/.+/, 'expected a URL such as mqtt://127.0.0.1:1883')
          .optional(),
        /** mqtt: how often the readings are published (default: 10 ticks) */
        publishIntervalMs: z.number().int().min(10).max(3_600_000).optional(),
        seed: z.number().int().optional(),
        /** channels held at these values from the start (as the control API's pin does) */
        pin: z.record(z.string().min(1), z.union([z.number().finite(), z.boolean(), z.string()])).optional(),
        /** opcua: the server's PKI, security and users */
        opcua: z
          .strictObject({
            /** the server's own certificate and trusted client certificates, relative to this file */
            pkiDir: z.string().min(1).default('./opcua-pki'),
            /** also offer Sign and SignAndEncrypt (Basic256Sha256) */
            secure: z.boolean().default(false),
            /** accept any client certificate (a test bench); false: only those in <pkiDir>/trusted/certs */
            trustAllClients: z.boolean().default(false),
            users: z.array(z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) })).default([]),
            /** functional unit of each channel, as { Frame: [force, extension] } (default: all in Frame) */
            functionalUnits: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/), z.array(z.string().min(1))).optional(),
          })
          .optional(),
      }),
    )
    .min(1),
});
export type SimConfig = z.output<typeof simConfigSchema>;

/** One instrument to simulate: its profile, and what the simulator's config overrides of it. */
export interface ResolvedSimInstrument {
  profile: DeviceProfile;
  model: SimConfig['instruments'][number]['model'];
  /** tcp, rtu-over-tcp: the port to listen on instead of the profile's (0: a free one) */
  port?: number;
  /** rtu: the serial device instead of the profile's */
  path?: string;
  /** mqtt: the broker instead of the profile's */
  url?: string;
  /** mqtt: publishing interval (default 10 ticks) */
  publishIntervalMs?: number;
  seed?: number;
  /** channels held at fixed values from the start */
  pin?: Record<string, number | boolean | string>;
  /** opcua: the server's PKI (resolved), security, users (passwords read) and functional units */
  opcua?: Omit<OpcuaServerOptions, 'profile' | 'instrument' | 'host' | 'port' | 'now' | 'onError'>;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${file}: ${reason}`, { cause: err });
  }
}

/** Reads a profile; a broker password file is resolved against the profile's folder. */
export async function loadProfileFile(file: string): Promise<DeviceProfile> {
  const profile = parseConfigText(await readText(file), file, deviceProfileSchema, 'E_PROFILE');
  if (profile.protocol === 'mqtt' && profile.connection.passwordFile !== undefined) {
    profile.connection.passwordFile = path.resolve(path.dirname(file), profile.connection.passwordFile);
  }
  return profile;
}

/** Which overrides apply to which transport. */
const OVERRIDES: Record<'port' | 'path' | 'url' | 'publishIntervalMs', ReadonlySet<string>> = {
  port: new Set(['tcp', 'rtu-over-tcp', 'opcua']),
  path: new Set(['rtu', 'serial']),
  url: new Set(['mqtt']),
  publishIntervalMs: new Set(['mqtt']),
};

export async function loadSimConfig(file: string): Promise<{ config: SimConfig; instruments: ResolvedSimInstrument[] }> {
  const config = parseConfigText(await readText(file), file, simConfigSchema);
  const dir = path.dirname(file);
  const instruments: ResolvedSimInstrument[] = [];
  const problems: string[] = [];
  for (const [i, entry] of config.instruments.entries()) {
    const profileFile = path.resolve(dir, entry.profile);
    const profile = await loadProfileFile(profileFile);
    if (profile.protocol === 'file') {
      problems.push(
        `${file}: instruments[${i}].profile: ${profile.id} reads result files, which the simulator does not serve: write them with 'labtrace-sim drop-files' (${profileFile})`,
      );
      continue;
    }
    const transport = profile.connection.transport;
    for (const [key, transports] of Object.entries(OVERRIDES)) {
      if (entry[key as keyof typeof OVERRIDES] !== undefined && !transports.has(transport)) {
        problems.push(`${file}: instruments[${i}].${key}: does not apply to transport ${transport} (${profileFile})`);
      }
    }
    if (profile.protocol === 'modbus' && transport !== 'tcp' && (profile.unitId < 1 || profile.unitId > 247)) {
      problems.push(`${profileFile}: unitId: an RTU slave address is 1-247, got ${profile.unitId}`);
    }
    if (entry.opcua !== undefined && transport !== 'opcua')
      problems.push(`${file}: instruments[${i}].opcua: does not apply to transport ${transport}`);
    const opcua =
      profile.protocol === 'opcua' ? (entry.opcua ?? { pkiDir: './opcua-pki', secure: false, trustAllClients: false, users: [] }) : undefined;
    const users = [];
    for (const u of opcua?.users ?? []) users.push({ username: u.username, password: (await readText(path.resolve(dir, u.passwordFile))).trim() });
    instruments.push({
      profile,
      ...(opcua === undefined
        ? {}
        : {
            opcua: {
              pkiDir: path.resolve(dir, opcua.pkiDir),
              secure: opcua.secure,
              trustAllClients: opcua.trustAllClients,
              users,
              ...(opcua.functionalUnits === undefined ? {} : { functionalUnits: opcua.functionalUnits }),
            },
          }),
      model: entry.model,
      ...(entry.port === undefined ? {} : { port: entry.port }),
      ...(entry.path === undefined ? {} : { path: entry.path }),
      ...(entry.url === undefined ? {} : { url: entry.url }),
      ...(entry.publishIntervalMs === undefined ? {} : { publishIntervalMs: entry.publishIntervalMs }),
      ...(entry.seed === undefined ? {} : { seed: entry.seed }),
      ...(entry.pin === undefined ? {} : { pin: entry.pin }),
    });
  }
  if (problems.length > 0) throw new LabtraceError('E_CONFIG', problems.join('\n'));
  return { config, instruments };
}
