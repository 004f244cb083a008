// The server's configuration: file values, then environment overrides (PORT, MQTT_PORT, LABTRACE_DATA_DIR).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { idSchema, LabtraceError, parseConfigText, parseVerifierKey, parseWith } from '@labtrace/protocols';
import { INFLUX_MEASUREMENT_NAME } from '@labtrace/protocols/influx';
import { accreditationConfigSchema } from './lab/accreditation.js';
import { notificationsConfigSchema } from './notify/config.js';

const port = z.number().int().min(0).max(65535);
/** 8 MiB: above the largest batch of numbers a gateway sends (docs/trust.md, MQTT) */
export const DEFAULT_MAX_PACKET_BYTES = 8 * 1024 * 1024;
/** a gateway enrolls once; ten tries at once, then one every ten seconds */
const DEFAULT_ENROLL_RATE_LIMIT = { perSecond: 0.1, burst: 10 };

export const brokerUserSchema = z.strictObject({
  username: z.string().min(1).max(128),
  /** scrypt hash made by `hashPassword` (never a clear-text password) */
  passwordHash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'expected a hash "scrypt$N$r$p$salt$hash"'),
  role: z.enum(['gateway', 'reader']),
  /** for role gateway: the gateway id this user may publish as */
  gateway: idSchema.optional(),
});
export type BrokerUser = z.output<typeof brokerUserSchema>;

/**
 * InfluxDB as the measurement store. Writes: `api: v1` to /write with a database (every 1.x, and 2.x/3.x through their
 * v1 API); `api: v2` through the InfluxDB client to /api/v2/write with org, bucket and token (1.8+, 2.x, 3.x). Reads
 * are InfluxQL on /query, which all of them serve (2.x through the bucket's DBRP mapping).
 */
export const influxStoreSchema = z
  .strictObject({
    url: z.string().regex(/^https?:\/\/[^/\s]+/, 'expected a URL such as http://127.0.0.1:8086'),
    api: z.enum(['v1', 'v2']).default('v1'),
    /** v1: the database and optionally its retention policy; v2: the database InfluxQL reads (default: the bucket) */
    database: z.string().min(1).optional(),
    retentionPolicy: z.string().min(1).optional(),
    /** v1: credentials when the server has authentication on; LABTRACE_INFLUX_PASSWORD overrides the file */
    username: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    /** v2: organisation, bucket and a file holding the token; LABTRACE_INFLUX_TOKEN overrides the file */
    org: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    measurement: z.string().regex(INFLUX_MEASUREMENT_NAME, 'expected 1-200 characters, no backslash or control character').default('measurement'),
    /** lines per write request; InfluxData recommends 5,000 to 10,000 */
    batchLines: z.number().int().min(1).max(100_000).default(5000),
  })
  .superRefine((c, ctx) => {
    const need = (field: 'database' | 'org' | 'bucket' | 'username', why: string) => {
      if (c[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: why });
    };
    const only = (field: 'username' | 'passwordFile' | 'org' | 'bucket' | 'tokenFile', api: string) => {
      if (c[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `applies only to api ${api} (api is ${c.api})` });
    };
    if (c.api === 'v1') {
      need('database', 'required when api is v1');
      if (c.passwordFile !== undefined) need('username', 'required when passwordFile is given');
      for (const field of ['org', 'bucket', 'tokenFile'] as const) only(field, 'v2');
    } else {
      need('org', 'required when api is v2');
      need('bucket', 'required when api is v2');
      for (const field of ['username', 'passwordFile'] as const) only(field, 'v1');
    }
  });
export type InfluxStoreConfig = z.output<typeof influxStoreSchema>;

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
      /** POST /api/enroll per client address (it needs no sign-in): a burst, then `perSecond` */
      enrollRateLimit: z
        .strictObject({ perSecond: z.number().positive().max(1_000_000), burst: z.number().int().min(1).max(10_000_000) })
        .default(DEFAULT_ENROLL_RATE_LIMIT),
    })
    .default({ host: '127.0.0.1', port: 8080, rateLimit: { perSecond: 100, burst: 1000 }, enrollRateLimit: DEFAULT_ENROLL_RATE_LIMIT }),
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
          /**
           * the client id of this node's persistent session; it must stay the same across restarts and differ between
           * nodes. Default `labtrace-server-<lab>`, with a shared group `labtrace-server-<lab>-<host name>` (set it
           * when two nodes run on one host). Brokers with `use_username_as_clientid` (the shipped Mosquitto
           * configuration) use the username instead: give each node its own user there.
           */
          clientId: z
            .string()
            .regex(/^[A-Za-z0-9._:-]{1,128}$/, "expected 1 to 128 letters, digits, '.', '_', '-' or ':'")
            .optional(),
          /**
           * several server nodes share the gateways' batches: each node subscribes to DATA through the MQTT shared
           * subscription `$share/<sharedGroup>/labtrace/v1/<lab>/+/DATA` and the broker gives each batch to one member
           * of the group (BIRTH, DEATH and HEALTH still reach every node). Every node of the lab uses the same group.
           */
          sharedGroup: z
            .string()
            .regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1 to 64 letters, digits, '.', '_' or '-' (an MQTT topic level, without '+', '#' or '/')")
            .optional(),
        })
        .optional(),
      /**
       * the largest MQTT packet the embedded broker takes from an authenticated client, on every listener; a
       * connection declaring a larger one is closed at its fixed header (before any of it is buffered). The
       * default holds the largest batch of numbers (10,000 samples with 64-character ids: about 5.1 MB as JSON);
       * batches of long text values may need more. Before authentication a packet may have 64 KiB at most.
       */
      maxPacketBytes: z.number().int().min(65_536).max(268_435_455).default(DEFAULT_MAX_PACKET_BYTES),
      /** open MQTT connections (TCP, TLS and WebSocket together) from one address; more are closed at once */
      maxConnectionsPerAddress: z.number().int().min(1).max(100_000).default(64),
    })
    .default({ host: '127.0.0.1', port: 1883, maxPacketBytes: DEFAULT_MAX_PACKET_BYTES, maxConnectionsPerAddress: 64 }),
  broker: z
    .strictObject({
      users: z.array(brokerUserSchema).default([]),
      allowAnonymous: z.literal(false).default(false),
    })
    .default({ users: [], allowAnonymous: false }),
  /**
   * refusals that can come in floods (failed MQTT logins, garbage payloads, enrollment attempts) are one security
   * event per kind and source per window, with a count; at most `maxSourcesPerWindow` sources of a kind per window
   */
  securityEvents: z
    .strictObject({
      windowMs: z.number().int().min(1000).max(86_400_000).default(60_000),
      maxSourcesPerWindow: z.number().int().min(1).max(100_000).default(200),
    })
    .default({ windowMs: 60_000, maxSourcesPerWindow: 200 }),
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
  /**
   * the sample times a batch may carry around its arrival (server clock): a batch with samples dated further ahead
   * than maxClockSkewMs or older than maxAgeMs is stored, recorded as a `clock-skew` security event, and kept out of
   * the instruments' latest values (docs/trust.md)
   */
  ingest: z
    .strictObject({
      maxClockSkewMs: z
        .number()
        .int()
        .min(1000)
        .max(100 * 365 * 86_400_000)
        .default(5 * 60_000),
      maxAgeMs: z
        .number()
        .int()
        .min(60_000)
        .max(100 * 365 * 86_400_000)
        .default(30 * 86_400_000),
    })
    .default({ maxClockSkewMs: 5 * 60_000, maxAgeMs: 30 * 86_400_000 }),
  /**
   * the store's free-space reserve on the data directory's filesystem: below it /api/health is degraded, a
   * security event and an ALARM line announce it, and new batches are refused (not acknowledged: the gateways
   * keep them) until space is freed; free space is measured every checkIntervalMs
   */
  store: z
    .strictObject({
      reserveBytes: z
        .number()
        .int()
        .min(0)
        .max(2 ** 50)
        .default(64 * 1048576),
      checkIntervalMs: z.number().int().min(100).max(600_000).default(5000),
    })
    .default({ reserveBytes: 64 * 1048576, checkIntervalMs: 5000 }),
  /** where the dashboard's measurement reads come from: the embedded SQLite index (default) or InfluxDB */
  measurements: z
    .strictObject({
      store: z.enum(['embedded', 'influxdb']).default('embedded'),
      influxdb: influxStoreSchema.optional(),
    })
    .superRefine((m, ctx) => {
      if (m.store === 'influxdb' && m.influxdb === undefined)
        ctx.addIssue({ code: 'custom', path: ['influxdb'], message: 'required when store is influxdb' });
    })
    .default({ store: 'embedded' }),
  /**
   * live updates across server nodes (docs/scale-out.md): socket.io's Redis streams adapter, so that a dashboard on
   * one node receives what another node ingested. Without it, each node pushes to its own dashboards only.
   */
  live: z
    .strictObject({
      redis: z
        .strictObject({
          url: z
            .string()
            .regex(
              /^rediss?:\/\/[^\s/@]+(\/\d{1,2})?$/,
              'expected a URL such as redis://redis:6379 (no user or password in it: use username and passwordFile)',
            ),
          username: z.string().min(1).max(128).optional(),
          /** file holding the Redis password; LABTRACE_REDIS_PASSWORD overrides it */
          passwordFile: z.string().min(1).optional(),
          /** the Redis stream the nodes of one lab share */
          stream: z
            .string()
            .regex(/^[\w.:-]{1,64}$/, 'expected 1 to 64 letters, digits, _ . : or -')
            .default('labtrace:live'),
        })
        .optional(),
    })
    .default({}),
  /** the lab's accreditations (docs/accreditation.md): expiry warnings, and accreditations to record at the first start */
  accreditation: accreditationConfigSchema,
  /** calibration status (docs/calibration.md): an instrument never calibrated may not start a run unless requireForRuns is false */
  calibration: z
    .strictObject({ requireForRuns: z.boolean().default(true), dueSoonDays: z.number().int().min(0).max(365).default(30) })
    .default({ requireForRuns: true, dueSoonDays: 30 }),
  /**
   * the laboratory as its reports name it (ISO/IEC 17025 7.8.2.1 b, c): required to issue certificates. `lab`
   * above stays the short id in topics and log names.
   */
  laboratory: z
    .strictObject({
      name: z.string().trim().min(1, 'required: the name printed on reports').max(200),
      address: z.string().trim().min(1, 'required: the address printed on reports').max(500),
      /** where the tests are done, when not at the address above */
      placeOfWork: z.string().trim().min(1).max(500).optional(),
      /** the laboratory's country, ISO 3166-1 alpha-2 (e.g. DE): the DCC's countryCodeISO3166_1 ("ZZ", unknown, when unset) */
      country: z
        .string()
        .regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 country code in capitals, such as DE')
        .optional(),
      /** the laboratory's logo on its reports' letterhead: a PNG or JPEG file (checked at the start) */
      logo: z.string().min(1).optional(),
    })
    .optional(),
  /** the URL the public reaches the server at: reports link to <publicBaseUrl>/verify/<id> (default: the listen address) */
  publicBaseUrl: z
    .string()
    .regex(/^https?:\/\/[^/\s?#]+(\/[^\s?#]*)?$/, 'expected an http(s) URL such as https://lab.example.com')
    .optional(),
  /** the certificate signing key (C2SP signer key file; created at the first start; default <dataDir>/certificate.key) */
  certificates: z
    .strictObject({
      keyFile: z.string().min(1).optional(),
      /**
       * the report font (docs/certificates.md): a TTF/OTF file, or a TTC file with the face's PostScript name; it
       * must cover Chinese. Default: Noto Sans SC from the npm dependency, else Debian's fonts-noto-cjk.
       */
      font: z
        .strictObject({
          regular: z.strictObject({ file: z.string().min(1), face: z.string().min(1).optional() }),
          bold: z.strictObject({ file: z.string().min(1), face: z.string().min(1).optional() }).optional(),
        })
        .optional(),
      /** the accreditation body's mark (PNG or JPEG), printed only on reports whose results all lie in the scope of a current accreditation */
      accreditationMark: z.string().min(1).optional(),
    })
    .default({}),
  /**
   * the demo lab's daily work (`npm start` turns it on): tensile test runs of the simulated testing
   * machine, one specimen each, assigned to `technician`, on samples of `organization`, each with a
   * certificate issued by `signatory` (docs/test-runs.md)
   */
  demo: z
    .strictObject({
      enabled: z.boolean().default(false),
      technician: idSchema.default('technician'),
      signatory: idSchema.default('signatory'),
      organization: idSchema.default('demo-client'),
      /** specimens left out between two demo runs */
      pauseSpecimens: z.number().int().min(0).max(100).default(1),
    })
    .default({ enabled: false, technician: 'technician', signatory: 'signatory', organization: 'demo-client', pauseSpecimens: 1 }),
  /** outbound notifications (docs/notifications.md): the SMTP relay, retries and back-off */
  notifications: notificationsConfigSchema,
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
    certificates: {
      ...config.certificates,
      ...(config.certificates.keyFile === undefined ? {} : { keyFile: path.resolve(baseDir, config.certificates.keyFile) }),
    },
    measurements: resolveMeasurements(config.measurements, baseDir),
    live:
      config.live.redis?.passwordFile === undefined
        ? config.live
        : { ...config.live, redis: { ...config.live.redis, passwordFile: path.resolve(baseDir, config.live.redis.passwordFile) } },
    notifications: resolveNotifications(config.notifications, baseDir),
  };
}

function resolveNotifications(n: ServerConfig['notifications'], baseDir: string): ServerConfig['notifications'] {
  const file = n.smtp?.passwordFile;
  return n.smtp === undefined || file === undefined ? n : { ...n, smtp: { ...n.smtp, passwordFile: path.resolve(baseDir, file) } };
}

function resolveMeasurements(m: ServerConfig['measurements'], baseDir: string): ServerConfig['measurements'] {
  const influx = m.influxdb;
  if (influx === undefined) return m;
  return {
    ...m,
    influxdb: {
      ...influx,
      ...(influx.passwordFile === undefined ? {} : { passwordFile: path.resolve(baseDir, influx.passwordFile) }),
      ...(influx.tokenFile === undefined ? {} : { tokenFile: path.resolve(baseDir, influx.tokenFile) }),
    },
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
