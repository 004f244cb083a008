// Where the dashboard's measurement reads come from: the store's own per-sample index (the default; SQLite or
// PostgreSQL) or InfluxDB. Every verified batch is stored whole in the store first (before its ACK); a series store
// answers the reads and, for InfluxDB, copies the stored batches there (on PostgreSQL as a job of one node at a time).
import type { LiveSample } from '@labtrace/protocols';
import type { JobContext } from '../../cluster/jobs.js';
import type { Tables } from '../database.js';
import type { SeriesPoint } from '../measurement-store.js';

export interface SeriesStatus {
  /** the embedded index of the store (SQLite or PostgreSQL), or InfluxDB */
  kind: 'sqlite' | 'postgres' | 'influxdb';
  /** 'failing' while InfluxDB writes fail; the batches wait in the store */
  status: 'ok' | 'failing';
  /** stored batches and samples not yet in InfluxDB (0 for the embedded store) */
  backlog: { batches: number; samples: number };
  /** batches InfluxDB refused for good (recorded in influx_failures) */
  refusedBatches: number;
  lastError?: string;
}

export interface SeriesResult {
  bucketMs: number;
  points: SeriesPoint[];
}

export interface SeriesStore {
  /**
   * On PostgreSQL, the copy to InfluxDB: a job for one node of the lab at a time (the server runs it as
   * `influx-forwarder`). Undefined where there is nothing to copy, or where start() copies (SQLite: one node).
   */
  readonly forwarderJob?: ((context: JobContext<Tables>) => Promise<void>) | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** a batch was stored: look for work now rather than at the next poll */
  notify(): void;
  /** the newest sample of each channel of an instrument */
  latest(instrument: string): Promise<LiveSample[]>;
  /** a channel's samples between from and to (ms, inclusive), the newest `limit`, oldest first */
  history(instrument: string, channel: string, from: number, to: number, limit: number): Promise<LiveSample[]>;
  /** a channel's numeric values in at most `points` time buckets of a whole number of ms, starting at `from` */
  series(instrument: string, channel: string, from: number, to: number, points: number): Promise<SeriesResult>;
  status(): SeriesStatus;
}

/** The bucket width that gives at most `points` buckets over [from, to]. */
export function bucketWidth(from: number, to: number, points: number): number {
  return Math.max(1, Math.ceil((to - from + 1) / points));
}
