// The server's configuration: file values, then environment overrides (PORT, MQTT_PORT, LABTRACE_DATA_DIR,
// LABTRACE_DATABASE_URL, LABTRACE_DATABASE_PASSWORD_FILE, LABTRACE_MQTT_USERNAME; LABTRACE_METRICS_TOKEN is read where the
// metrics are served, metrics/server-metrics.ts).
// Each module contributes its section's schema from a schema-only file (its config.ts, or lab/*-config.ts); this
// file composes them, so that whatever reads the config reaches no store and no workflow code through it
// (server/test/config/boundaries.test.ts holds that rule).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { clockConfigSchema, idSchema, LabtraceError, parseConfigText, parseWith } from '@labtrace/protocols';
import { dashboardDirSchema, httpConfigSchema, publicBaseUrlSchema } from './api/config.js';
import { brokerConfigSchema, mqttConfigSchema, resolveMqttConfig } from './broker/config.js';
import { clusterSettingsSchema } from './cluster/config.js';
import { exportConfigSchema } from './export/config.js';
import { certificatesConfigSchema, laboratoryConfigSchema, resolveCertificatesConfig } from './certificates/config.js';
import { ingestConfigSchema } from './ingest/config.js';
import { accreditationConfigSchema } from './lab/accreditation-config.js';
import { calibrationConfigSchema } from './lab/calibration-config.js';
import { demoConfigSchema } from './lab/demo-config.js';
import { liveConfigSchema, resolveLiveConfig } from './live/config.js';
import { logConfigSchema, resolveLogConfig } from './log/config.js';
import { metricsConfigSchema, resolveMetricsConfig } from './metrics/config.js';
import { notificationsConfigSchema, resolveNotificationsConfig } from './notify/config.js';
import {
  databaseConfigSchema,
  measurementsConfigSchema,
  resolveDatabaseConfig,
  resolveMeasurementsConfig,
  storeConfigSchema,
  storeTargetOf,
} from './store/config.js';
import { retentionConfigSchema } from './retention/config.js';
import { resolveSupervisionConfig, supervisionConfigSchema } from './standing/config.js';
import { gatewaysConfigSchema, securityEventsConfigSchema } from './trust/config.js';

// the names other code imported from here before the sections moved to their modules
export { DEFAULT_MAX_PACKET_BYTES, brokerUserSchema, type BrokerUser } from './broker/config.js';
export { influxStoreSchema, type InfluxStoreConfig } from './store/config.js';

export const serverConfigSchema = z.strictObject({
  lab: idSchema.default('lab'),
  dataDir: z.string().min(1).default('./data'),
  /**
   * where the server keeps its records: without a URL, the SQLite file of the data directory (the default);
   * `sqlite:<file>` or `postgres://<user>@<host>:<port>/<database>` with `passwordFile` (docs/scale-out.md)
   */
  database: databaseConfigSchema.default({}),
  /** this node among the lab's several on a PostgreSQL store: its name, and the leases of the jobs one node runs */
  cluster: clusterSettingsSchema,
  http: httpConfigSchema,
  mqtt: mqttConfigSchema,
  broker: brokerConfigSchema,
  /**
   * refusals that can come in floods (failed MQTT logins, garbage payloads, enrollment attempts) are one security
   * event per kind and source per window, with a count
   */
  securityEvents: securityEventsConfigSchema,
  /** registered gateway keys; a registered gateway's batches must be signed with its key */
  gateways: gatewaysConfigSchema,
  /** the transparency log: its origin, its key and how often it signs a checkpoint */
  log: logConfigSchema,
  /** the sample times a batch may carry around its arrival (docs/trust.md) */
  ingest: ingestConfigSchema,
  /** the store's free-space reserve on the data directory's filesystem */
  store: storeConfigSchema,
  /** where the dashboard's measurement reads come from: the embedded SQLite index (default) or InfluxDB */
  measurements: measurementsConfigSchema,
  /** how long raw batches and the per-sample index are kept (never below the accreditation minimum; default: for ever) */
  retention: retentionConfigSchema,
  /** live updates across server nodes (docs/scale-out.md) */
  live: liveConfigSchema,
  /** the lab's accreditations (docs/accreditation.md): expiry warnings, and accreditations to record at the first start */
  accreditation: accreditationConfigSchema,
  /** calibration status (docs/calibration.md) */
  calibration: calibrationConfigSchema,
  /** the laboratory as its reports name it: required to issue certificates */
  laboratory: laboratoryConfigSchema,
  /** the URL the public reaches the server at: reports link to <publicBaseUrl>/verify/<id> (default: the listen address) */
  publicBaseUrl: publicBaseUrlSchema,
  /** the certificate signing key, the report font and the accreditation mark */
  certificates: certificatesConfigSchema,
  /** the demo lab's daily work (`npm start` turns it on) */
  demo: demoConfigSchema,
  /** outbound notifications (docs/notifications.md): the SMTP relay, retries and back-off */
  notifications: notificationsConfigSchema,
  /** folder of the built dashboard; defaults to the dashboard package's dist */
  dashboardDir: dashboardDirSchema,
  /** the data-export policy of the clients' selective-disclosure bundles (docs/trust.md) */
  export: exportConfigSchema,
  /**
   * Prometheus metrics at GET /metrics (docs/operations.md): a bearer token (`tokenFile`, LABTRACE_METRICS_TOKEN) or a
   * listener of their own (`listen`); without either, not served
   */
  metrics: metricsConfigSchema,
  /** the supervisor that follows this lab: the lab reads its standing there and answers its findings (docs/supervision.md) */
  supervision: supervisionConfigSchema,
  /** the server's own clock against NTP servers (docs/operations.md, "Clocks"); off when no server is named */
  clock: clockConfigSchema,
});
export type ServerConfig = z.output<typeof serverConfigSchema>;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).optional(),
  MQTT_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  LABTRACE_DATA_DIR: z.string().min(1).optional(),
  LABTRACE_DATABASE_URL: z.string().min(1).optional(),
  LABTRACE_DATABASE_PASSWORD_FILE: z.string().min(1).optional(),
  /**
   * this node's user on the external broker (`mqtt.external.username`), so that nodes sharing one server.yaml each
   * log in as their own user; with `use_username_as_clientid` it is also the node's client id
   */
  LABTRACE_MQTT_USERNAME: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, "expected 1 to 128 letters, digits, '.', '_', '-' or ':' (a broker user name)")
    .optional(),
});

/** Applies environment overrides; relative paths are resolved against `baseDir`. */
export function resolveServerConfig(config: ServerConfig, env: NodeJS.ProcessEnv, baseDir: string): ServerConfig {
  const overrides = parseWith(
    envSchema,
    {
      PORT: env['PORT'] || undefined,
      MQTT_PORT: env['MQTT_PORT'] || undefined,
      LABTRACE_DATA_DIR: env['LABTRACE_DATA_DIR'] || undefined,
      LABTRACE_DATABASE_URL: env['LABTRACE_DATABASE_URL'] || undefined,
      LABTRACE_DATABASE_PASSWORD_FILE: env['LABTRACE_DATABASE_PASSWORD_FILE'] || undefined,
      LABTRACE_MQTT_USERNAME: env['LABTRACE_MQTT_USERNAME'] || undefined,
    },
    'environment',
  );
  if (overrides.LABTRACE_MQTT_USERNAME !== undefined && config.mqtt.external === undefined)
    throw new LabtraceError(
      'E_CONFIG',
      "environment: LABTRACE_MQTT_USERNAME: set, but the config has no mqtt.external (it is the external broker's user name)",
    );
  const mqtt = resolveMqttConfig(config.mqtt, baseDir);
  const dataDir = path.resolve(overrides.LABTRACE_DATA_DIR ?? path.resolve(baseDir, config.dataDir));
  const database = resolveDatabaseConfig(
    config.database,
    { url: overrides.LABTRACE_DATABASE_URL, passwordFile: overrides.LABTRACE_DATABASE_PASSWORD_FILE },
    baseDir,
    dataDir,
  );
  if (config.store.indexWorker) {
    if (storeTargetOf(database, dataDir).dialect === 'postgres')
      throw new LabtraceError('E_CONFIG', 'store.indexWorker: only for the embedded SQLite store (on PostgreSQL the index is in the database)');
    if (config.retention.rawBatchesDays !== undefined || config.retention.sampleIndexDays !== undefined)
      throw new LabtraceError(
        'E_CONFIG',
        "store.indexWorker: not with retention yet (retention removes samples from the store's file, the worker keeps them in a file of its own): remove one of the two",
      );
  }
  return {
    ...config,
    dataDir,
    database,
    http: { ...config.http, port: overrides.PORT ?? config.http.port },
    mqtt: {
      ...mqtt,
      port: overrides.MQTT_PORT ?? config.mqtt.port,
      ...(mqtt.external === undefined
        ? {}
        : { external: { ...mqtt.external, username: overrides.LABTRACE_MQTT_USERNAME ?? mqtt.external.username } }),
    },
    ...(config.dashboardDir === undefined ? {} : { dashboardDir: path.resolve(baseDir, config.dashboardDir) }),
    log: resolveLogConfig(config.log, baseDir),
    certificates: resolveCertificatesConfig(config.certificates, baseDir),
    measurements: resolveMeasurementsConfig(config.measurements, baseDir),
    live: resolveLiveConfig(config.live, baseDir),
    notifications: resolveNotificationsConfig(config.notifications, baseDir),
    metrics: resolveMetricsConfig(config.metrics, baseDir),
    ...(config.supervision === undefined ? {} : { supervision: resolveSupervisionConfig(config.supervision, baseDir) }),
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

/**
 * The config a command (`labtrace server user`, `export`, `retention`, ...) works with: the file given by --config,
 * else the defaults with LABTRACE_* applied from the environment, as the server itself reads them.
 */
export async function commandConfig(file: string | undefined): Promise<ServerConfig> {
  return file !== undefined && file !== ''
    ? await loadServerConfig(path.resolve(file))
    : resolveServerConfig(serverConfigSchema.parse({}), process.env, process.cwd());
}

/** The transparency log's key file: log.keyFile, else log.key in the data directory (the server makes it at its first start). */
export function logKeyFileOf(config: ServerConfig): string {
  return config.log.keyFile ?? path.join(config.dataDir, 'log.key');
}
