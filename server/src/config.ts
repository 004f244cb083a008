// The server's configuration: file values, then environment overrides (PORT, MQTT_PORT, LABTRACE_DATA_DIR).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { idSchema, LabtraceError, parseConfigText, parseVerifierKey, parseWith } from '@labtrace/protocols';

const port = z.number().int().min(0).max(65535);

export const brokerUserSchema = z.strictObject({
  username: z.string().min(1).max(128),
  /** scrypt hash made by `hashPassword` (never a clear-text password) */
  passwordHash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'expected a hash "scrypt$N$r$p$salt$hash"'),
  role: z.enum(['gateway', 'reader']),
  /** for role gateway: the gateway id this user may publish as */
  gateway: idSchema.optional(),
});
export type BrokerUser = z.output<typeof brokerUserSchema>;

export const serverConfigSchema = z.strictObject({
  lab: idSchema.default('lab'),
  dataDir: z.string().min(1).default('./data'),
  http: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(8080),
      /** behind a TLS-terminating proxy: trust its X-Forwarded-* headers from these addresses, so that session cookies are marked Secure */
      trustProxy: z.array(z.string().min(1)).optional(),
      /** requests a second per client address on /api, after a burst; `false` turns the limit off */
      rateLimit: z
        .union([
          z.literal(false),
          z.strictObject({ perSecond: z.number().positive().max(1_000_000), burst: z.number().int().min(1).max(10_000_000) }),
        ])
        .default({ perSecond: 100, burst: 1000 }),
    })
    .default({ host: '127.0.0.1', port: 8080, rateLimit: { perSecond: 100, burst: 1000 } }),
  mqtt: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(1883),
      /** an MQTT over TLS listener of the embedded broker (certificate and key in PEM files) */
      tls: z.strictObject({ port: port.default(8883), certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
      /**
       * external broker mode: no embedded broker; the server connects to the lab's broker as a client
       * and ingests from there (the broker's ACL must give each gateway only its own topics)
       */
      external: z
        .strictObject({
          url: z.string().regex(/^(mqtts?|tcp|tls):\/\/.+/, 'expected a URL such as mqtt://broker:1883 or mqtts://broker:8883'),
          username: z.string().min(1),
          /** file holding the password; LABTRACE_MQTT_PASSWORD overrides it */
          passwordFile: z.string().min(1).optional(),
          /** CA certificate (PEM) that signed the broker's certificate, for mqtts:// */
          caFile: z.string().min(1).optional(),
          clientId: z.string().min(1).max(128).optional(),
        })
        .optional(),
    })
    .default({ host: '127.0.0.1', port: 1883 }),
  broker: z
    .strictObject({
      users: z.array(brokerUserSchema).default([]),
      allowAnonymous: z.literal(false).default(false),
    })
    .default({ users: [], allowAnonymous: false }),
  /** registered gateway keys (verifier-key form name+keyid+base64); a registered gateway's batches must be signed with its key */
  gateways: z
    .array(
      z.strictObject({
        id: idSchema,
        key: z.string().superRefine((text, ctx) => {
          try {
            parseVerifierKey(text);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
          }
        }),
      }),
    )
    .default([]),
  /** the transparency log: its origin (the name in its checkpoints) and the lab's log key (created at first start when absent) */
  log: z
    .strictObject({
      origin: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, 'expected a schema-less URL such as labtrace.example/lab-a')
        .optional(),
      /** signer key file (C2SP form); default <dataDir>/log.key */
      keyFile: z.string().min(1).optional(),
      minCheckpointIntervalMs: z.number().int().min(100).max(3_600_000).default(1000),
    })
    .default({ minCheckpointIntervalMs: 1000 }),
  /** folder of the built dashboard; defaults to the dashboard package's dist */
  dashboardDir: z.string().min(1).optional(),
});
export type ServerConfig = z.output<typeof serverConfigSchema>;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).optional(),
  MQTT_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  LABTRACE_DATA_DIR: z.string().min(1).optional(),
});

/** Applies environment overrides; relative paths are resolved against `baseDir`. */
export function resolveServerConfig(config: ServerConfig, env: NodeJS.ProcessEnv, baseDir: string): ServerConfig {
  const overrides = parseWith(
    envSchema,
    { PORT: env['PORT'] || undefined, MQTT_PORT: env['MQTT_PORT'] || undefined, LABTRACE_DATA_DIR: env['LABTRACE_DATA_DIR'] || undefined },
    'environment',
  );
  return {
    ...config,
    dataDir: path.resolve(overrides.LABTRACE_DATA_DIR ?? path.resolve(baseDir, config.dataDir)),
    http: { ...config.http, port: overrides.PORT ?? config.http.port },
    mqtt: {
      ...config.mqtt,
      port: overrides.MQTT_PORT ?? config.mqtt.port,
      ...(config.mqtt.tls === undefined
        ? {}
        : {
            tls: {
              ...config.mqtt.tls,
              certFile: path.resolve(baseDir, config.mqtt.tls.certFile),
              keyFile: path.resolve(baseDir, config.mqtt.tls.keyFile),
            },
          }),
      ...(config.mqtt.external === undefined
        ? {}
        : {
            external: {
              ...config.mqtt.external,
              ...(config.mqtt.external.passwordFile === undefined ? {} : { passwordFile: path.resolve(baseDir, config.mqtt.external.passwordFile) }),
              ...(config.mqtt.external.caFile === undefined ? {} : { caFile: path.resolve(baseDir, config.mqtt.external.caFile) }),
            },
          }),
    },
    ...(config.dashboardDir === undefined ? {} : { dashboardDir: path.resolve(baseDir, config.dashboardDir) }),
    log: { ...config.log, ...(config.log.keyFile === undefined ? {} : { keyFile: path.resolve(baseDir, config.log.keyFile) }) },
  };
}

export async function loadServerConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${file}: server config: ${reason}`, { cause: err });
  }
  return resolveServerConfig(parseConfigText(text, file, serverConfigSchema), env, path.dirname(file));
}
