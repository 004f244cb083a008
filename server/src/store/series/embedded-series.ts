// The default series store: reads the per-sample index that MeasurementStore keeps in SQLite.
import type { LiveSample } from '@labtrace/protocols';
import type { MeasurementStore } from '../measurement-store.js';
import type { SeriesResult, SeriesStatus, SeriesStore } from './series-store.js';

export class EmbeddedSeries implements SeriesStore {
  constructor(private readonly store: MeasurementStore) {}

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
    return { kind: 'sqlite', status: 'ok', backlog: { batches: 0, samples: 0 }, refusedBatches: 0 };
  }
}
