// The series store the configuration asks for; InfluxDB secrets are read from their files (or the environment).
import { readFileSync } from 'node:fs';
import { LabtraceError } from '@labtrace/protocols';
import { influxEndpoints } from '@labtrace/protocols/influx';
import type { MeasurementsConfig } from '../config.js';
import type { Logger } from '../../log.js';
import type { Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../database.js';
import type { MeasurementStore } from '../measurement-store.js';
import type { PgMeasurementStore } from '../pg-measurement-store.js';
import { EmbeddedSeries } from './embedded-series.js';
import { InfluxSeries } from './influx-series.js';
import type { SeriesStore } from './series-store.js';

function secret(env: NodeJS.ProcessEnv, variable: string, file: string | undefined, field: string): string | undefined {
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${field}: ${file}: ${reason}`, { cause: err });
  }
  if (text === '') throw new LabtraceError('E_CONFIG', `${field}: ${file} is empty`);
  return text;
}

/**
 * `deps`: the SQLite LabDatabase and its MeasurementStore, or PostgreSQL's PgMeasurementStore with the store's Kysely.
 * With InfluxDB on PostgreSQL the copy is a job of one node at a time (InfluxSeries.forwarderJob, which the server
 * runs as `influx-forwarder`); every node reads the series from InfluxDB.
 */
export function seriesStoreFrom(
  config: MeasurementsConfig,
  deps: { database: LabDatabase; store: MeasurementStore; logger: Logger } | { store: PgMeasurementStore; db: Kysely<Tables>; logger: Logger },
  env: NodeJS.ProcessEnv = process.env,
): SeriesStore {
  const influx = config.influxdb;
  if (config.store === 'embedded' || influx === undefined)
    return 'database' in deps ? new EmbeddedSeries(deps.store.reads) : new EmbeddedSeries(deps.store, 'postgres');
  // the secret of the api in use: a token (v2), or a password (v1 with a username)
  const secretOf =
    influx.api === 'v2'
      ? secret(env, 'LABTRACE_INFLUX_TOKEN', influx.tokenFile, 'measurements.influxdb.tokenFile')
      : influx.username === undefined
        ? undefined
        : secret(env, 'LABTRACE_INFLUX_PASSWORD', influx.passwordFile, 'measurements.influxdb.passwordFile');
  const { url, target, read } = influxEndpoints(influx, secretOf, 'measurements.influxdb');
  return new InfluxSeries({
    ...('database' in deps ? { database: deps.database } : { postgres: { db: deps.db, store: deps.store } }),
    url,
    target,
    read,
    measurement: influx.measurement,
    batchLines: influx.batchLines,
    logger: deps.logger,
  });
}
