// The store's side of server.yaml: `store:` (the free-space reserve) and `measurements:` (where the dashboard's
// measurement reads come from: the embedded index or InfluxDB). Schema only: the stores live beside this file.
import path from 'node:path';
import { z } from 'zod';
import { INFLUX_MEASUREMENT_NAME } from '@labtrace/protocols/influx';

/**
 * the store's free-space reserve on the data directory's filesystem: below it /api/health is degraded, a
 * security event and an ALARM line announce it, and new batches are refused (not acknowledged: the gateways
 * keep them) until space is freed; free space is measured every checkIntervalMs
 */
export const storeConfigSchema = z
  .strictObject({
    reserveBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 50)
      .default(64 * 1048576),
    checkIntervalMs: z.number().int().min(100).max(600_000).default(5000),
  })
  .default({ reserveBytes: 64 * 1048576, checkIntervalMs: 5000 });
export type StoreConfig = z.output<typeof storeConfigSchema>;

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

/** where the dashboard's measurement reads come from: the embedded SQLite index (default) or InfluxDB */
export const measurementsConfigSchema = z
  .strictObject({
    store: z.enum(['embedded', 'influxdb']).default('embedded'),
    influxdb: influxStoreSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.store === 'influxdb' && m.influxdb === undefined)
      ctx.addIssue({ code: 'custom', path: ['influxdb'], message: 'required when store is influxdb' });
  })
  .default({ store: 'embedded' });
export type MeasurementsConfig = z.output<typeof measurementsConfigSchema>;

/** the InfluxDB secret files, relative to the config file's folder */
export function resolveMeasurementsConfig(m: MeasurementsConfig, baseDir: string): MeasurementsConfig {
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
