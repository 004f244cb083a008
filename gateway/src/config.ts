// The gateway's configuration file: who it is, where its broker is, and which instruments it reads.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  clockConfigSchema,
  deviceProfileSchema,
  idSchema,
  isLoopback,
  LabtraceError,
  LISTEN_ADDRESS_HINT,
  parseConfigText,
  parseListen,
  type DeviceProfile,
} from '@labtrace/protocols';
import { influxConfigSchema as sharedInfluxConfigSchema } from '@labtrace/protocols/influx';

/**
 * An optional on-site historian: the shared InfluxDB section (@labtrace/protocols/influx), written only, so that with
 * `api: v2` a database or retention policy is refused (they apply to api v1 only).
 */
export const influxConfigSchema = sharedInfluxConfigSchema({ reads: false });
export type InfluxConfig = z.output<typeof influxConfigSchema>;

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
  influx: influxConfigSchema.optional(),
  /**
   * Prometheus metrics on a listener of their own (docs/operations.md, "Metrics"): on a loopback address without a
   * token; any other address needs a bearer token, from a file or an environment variable
   */
  metrics: z
    .strictObject({
      listen: z.string().refine((text) => parseListen(text) !== undefined, LISTEN_ADDRESS_HINT),
      /** a file holding the bearer token (at least 32 characters); relative to the config file */
      tokenFile: z.string().min(1).optional(),
      /** the environment variable that holds the bearer token */
      tokenEnv: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable')
        .optional(),
    })
    .optional(),
  /** the gateway's own clock against NTP servers (docs/operations.md, "Clocks"); off when no server is named */
  clock: clockConfigSchema,
});
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export interface ResolvedGatewayConfig {
  config: GatewayConfig;
  profiles: DeviceProfile[];
  dataDir: string;
  password: string;
  /** broker passwords of MQTT instruments, by instrument id */
  instrumentPasswords: Map<string, string>;
  /** the InfluxDB token (api v2) or password (api v1, when a username is configured) */
  influxSecret?: string;
  /** where the metrics are served, and the bearer token a scrape needs (none on loopback without one) */
  metrics?: GatewayMetricsEndpoint;
}

export interface GatewayMetricsEndpoint {
  host: string;
  port: number;
  token?: string;
}

/** the shortest metrics token taken */
export const MIN_METRICS_TOKEN_CHARS = 32;

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
    if (profile.protocol === 'file') {
      if (entry.host !== undefined || entry.port !== undefined)
        throw new LabtraceError('E_CONFIG', `${file}: instruments[${i}]: host and port do not apply to ${profile.id}, which reads result files`);
      // the folders are the profile's, relative to the profile file
      const folder = path.resolve(path.dirname(profileFile), profile.folder);
      profiles.push({ ...profile, folder });
      continue;
    }
    if (profile.protocol === 'opcua') {
      const auth = profile.connection.auth;
      const base = path.dirname(profileFile);
      if (auth.kind === 'username') {
        const secret = (await readText(path.resolve(base, auth.passwordFile), 'connection.auth.passwordFile')).trim();
        instrumentPasswords.set(profile.id, secret);
      } else if (auth.kind === 'certificate') {
        auth.certificateFile = path.resolve(base, auth.certificateFile);
        auth.privateKeyFile = path.resolve(base, auth.privateKeyFile);
      }
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
  const influxSecret = config.influx ? await loadInfluxSecret(config.influx, file, env) : undefined;
  const metrics = config.metrics === undefined ? undefined : await metricsEndpointOf(config.metrics, file, env);
  return {
    config,
    profiles,
    dataDir: path.resolve(dir, config.dataDir),
    password,
    instrumentPasswords,
    ...(influxSecret === undefined ? {} : { influxSecret }),
    ...(metrics === undefined ? {} : { metrics }),
  };
}

/** The metrics' listener and token, checked: a token of at least 32 characters; a listener off loopback needs one. Never logs the token. */
async function metricsEndpointOf(
  metrics: NonNullable<GatewayConfig['metrics']>,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<GatewayMetricsEndpoint> {
  const listen = parseListen(metrics.listen);
  if (listen === undefined) throw new LabtraceError('E_CONFIG', `${file}: metrics.listen: ${LISTEN_ADDRESS_HINT}`);
  if (metrics.tokenFile !== undefined && metrics.tokenEnv !== undefined)
    throw new LabtraceError('E_CONFIG', `${file}: metrics: tokenFile and tokenEnv are both set; set one of them`);
  let token: string | undefined;
  let field = '';
  if (metrics.tokenEnv !== undefined) {
    field = `metrics.tokenEnv (${metrics.tokenEnv})`;
    token = env[metrics.tokenEnv];
    if (token === undefined || token === '') throw new LabtraceError('E_CONFIG', `${file}: ${field}: the variable is not set`);
  } else if (metrics.tokenFile !== undefined) {
    field = 'metrics.tokenFile';
    token = (await readText(path.resolve(path.dirname(file), metrics.tokenFile), field)).trim();
  }
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_CHARS)
    throw new LabtraceError(
      'E_CONFIG',
      `${file}: ${field}: the metrics token has ${token.length} characters; at least ${MIN_METRICS_TOKEN_CHARS} are needed (for example: openssl rand -hex 32)`,
    );
  if (token === undefined && !isLoopback(listen.host))
    throw new LabtraceError(
      'E_CONFIG',
      `${file}: metrics.listen: ${listen.host} is not a loopback address: metrics served there need a token (metrics.tokenFile or metrics.tokenEnv)`,
    );
  return { ...listen, ...(token === undefined ? {} : { token }) };
}

async function loadInfluxSecret(influx: InfluxConfig, file: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const [variable, field, secretFile] =
    influx.api === 'v2'
      ? (['LABTRACE_INFLUX_TOKEN', 'influx.tokenFile', influx.tokenFile] as const)
      : (['LABTRACE_INFLUX_PASSWORD', 'influx.passwordFile', influx.passwordFile] as const);
  // v1 without a username talks to a server with authentication off: no secret to read
  if (influx.api === 'v1' && influx.username === undefined) return undefined;
  let secret = env[variable];
  if (secret === undefined) {
    if (secretFile === undefined) {
      const what = influx.api === 'v2' ? 'InfluxDB refuses writes without a token' : 'influx.username is set';
      throw new LabtraceError('E_CONFIG', `${file}: ${field}: required unless ${variable} is set (${what})`);
    }
    secret = (await readText(path.resolve(path.dirname(file), secretFile), field)).trim();
  }
  if (secret === '') throw new LabtraceError('E_CONFIG', `${file}: ${field}: the InfluxDB ${influx.api === 'v2' ? 'token' : 'password'} is empty`);
  return secret;
}

/** The gateway's id and data directory only, for commands that run before it has credentials. */
export async function loadGatewayIdentityConfig(file: string): Promise<{ id: string; dataDir: string; passwordFile: string | undefined }> {
  const config = parseConfigText(await readText(file, 'gateway config'), file, gatewayConfigSchema);
  const dir = path.dirname(file);
  return {
    id: config.gateway.id,
    dataDir: path.resolve(dir, config.dataDir),
    passwordFile: config.mqtt.passwordFile === undefined ? undefined : path.resolve(dir, config.mqtt.passwordFile),
  };
}
