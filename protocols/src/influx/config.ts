// The InfluxDB section of a config file, one schema for the gateway's `influx:` (an on-site historian, written only)
// and the server's `measurements.influxdb:` (written, and read with InfluxQL), and what it means for the writer and
// the reader. `api: v1` writes to /write with a database (every 1.x, and 2.x/3.x through their v1 API); `api: v2` to
// /api/v2/write with an org, a bucket and a token (1.8+, 2.x, 3.x). Secrets are read by the caller (from a file, or
// LABTRACE_INFLUX_PASSWORD / LABTRACE_INFLUX_TOKEN): the schema names the files.
import { z } from 'zod';
import { LabtraceError } from '../errors.js';
import { INFLUX_MEASUREMENT_NAME } from './line-protocol.js';
import type { InfluxQueryAuth } from './query.js';
import type { InfluxTarget } from './write.js';

export interface InfluxConfigUse {
  /**
   * true where the config also says what InfluxQL reads (the server): with api v2, database and retentionPolicy then
   * name the database the reads go to (the bucket's DBRP mapping). false (the gateway): with api v2 they are refused.
   */
  reads: boolean;
}

const V1_ONLY = ['database', 'retentionPolicy', 'username', 'passwordFile'] as const;
const V2_ONLY = ['org', 'bucket', 'tokenFile'] as const;

/** The schema of an InfluxDB section; every error names the field (a path under the section). */
export function influxConfigSchema(use: InfluxConfigUse) {
  return z
    .strictObject({
      url: z.string().regex(/^https?:\/\/[^/\s]+/, 'expected a URL such as http://127.0.0.1:8086'),
      api: z.enum(['v1', 'v2']).default('v1'),
      /** v1: the database and optionally its retention policy; v2, where the config reads: the database InfluxQL reads */
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
      const need = (field: 'database' | 'org' | 'bucket' | 'username', why: string): void => {
        if (c[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: why });
      };
      const only = (fields: readonly (typeof V1_ONLY)[number][] | readonly (typeof V2_ONLY)[number][], api: string): void => {
        for (const field of fields)
          if (c[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `applies only to api ${api} (api is ${c.api})` });
      };
      if (c.api === 'v1') {
        need('database', 'required when api is v1');
        if (c.passwordFile !== undefined) need('username', 'required when passwordFile is given');
        only(V2_ONLY, 'v2');
      } else {
        need('org', 'required when api is v2');
        need('bucket', 'required when api is v2');
        only(use.reads ? (['username', 'passwordFile'] as const) : V1_ONLY, 'v1');
      }
    });
}

export type InfluxConfig = z.output<ReturnType<typeof influxConfigSchema>>;

/** Where the writes go and the reads come from, with the secret read by the caller. */
export interface InfluxEndpoints {
  url: string;
  target: InfluxTarget;
  /** the database (and retention policy) InfluxQL reads; for v2 the bucket's DBRP mapping (default: the bucket) */
  read: { database: string; retentionPolicy?: string; auth: InfluxQueryAuth };
}

/**
 * The writer's target and the reader's database from a checked section. `secret`: the token (v2) or the password (v1
 * with a username). `at` is the section's place in the config file, for the errors (such as measurements.influxdb).
 */
export function influxEndpoints(config: InfluxConfig, secret: string | undefined, at: string): InfluxEndpoints {
  const rp = config.retentionPolicy === undefined ? {} : { retentionPolicy: config.retentionPolicy };
  if (config.api === 'v2') {
    const { org, bucket } = config;
    if (org === undefined || bucket === undefined) throw new LabtraceError('E_CONFIG', `${at}: api v2 needs org and bucket`);
    if (secret === undefined)
      throw new LabtraceError('E_CONFIG', `${at}.tokenFile: required unless LABTRACE_INFLUX_TOKEN is set (api v2 needs a token)`);
    return {
      url: config.url,
      target: { api: 'v2', org, bucket, token: secret },
      read: { database: config.database ?? bucket, ...rp, auth: { kind: 'token', token: secret } },
    };
  }
  const database = config.database;
  if (database === undefined) throw new LabtraceError('E_CONFIG', `${at}.database: required when api is v1`);
  const password = config.username === undefined ? undefined : secret;
  return {
    url: config.url,
    target: { api: 'v1', database, retentionPolicy: config.retentionPolicy, username: config.username, password },
    read: {
      database,
      ...rp,
      auth: config.username === undefined ? { kind: 'none' } : { kind: 'basic', username: config.username, password },
    },
  };
}
