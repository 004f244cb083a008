// The default series store: reads the per-sample index the store keeps, MeasurementStore's in SQLite (synchronous)
// or PgMeasurementStore's in PostgreSQL (asynchronous).
import type { LiveSample } from '@labtrace/protocols';
import type { SeriesResult, SeriesStatus, SeriesStore } from './series-store.js';

/** The reads of a measurement store's per-sample index (MeasurementStore, PgMeasurementStore). */
export interface MeasurementReads {
  latest(instrument: string): LiveSample[] | Promise<LiveSample[]>;
  history(instrument: string, channel: string, from: number, to: number, limit: number): LiveSample[] | Promise<LiveSample[]>;
  series(instrument: string, channel: string, from: number, to: number, points: number): SeriesResult | Promise<SeriesResult>;
}

export class EmbeddedSeries implements SeriesStore {
  /** `kind`: the store's engine, as the health report names it */
  constructor(
    private readonly store: MeasurementReads,
    private readonly kind: 'sqlite' | 'postgres' = 'sqlite',
  ) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  notify(): void {
    // the index is kept by ingest itself
  }

  latest(instrument: string): Promise<LiveSample[]> {
    return Promise.resolve(this.store.latest(instrument));
  }

  history(instrument: string, channel: string, from: number, to: number, limit: number): Promise<LiveSample[]> {
    return Promise.resolve(this.store.history(instrument, channel, from, to, limit));
  }

  series(instrument: string, channel: string, from: number, to: number, points: number): Promise<SeriesResult> {
    return Promise.resolve(this.store.series(instrument, channel, from, to, points));
  }

  status(): SeriesStatus {
    return { kind: this.kind, status: 'ok', backlog: { batches: 0, samples: 0 }, refusedBatches: 0 };
  }
}
