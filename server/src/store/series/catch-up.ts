// The InfluxDB catch-up, told as it goes. After an outage of InfluxDB, a new InfluxDB target or a restored store,
// the forwarder has a backlog of stored batches to write (influx-series.ts), which at a year's data takes hours; an
// operator needs to see it move. Every few seconds while a backlog of at least `minSamples` is being written, one log
// line: samples written so far, the rate over the last interval, the samples and batches left and about how long
// they take at that rate (or that nothing moves: InfluxDB is not answering). Once the backlog is gone, a last line
// with what was written and in how long. The few batches in flight of a normal day say nothing.
import { formatDuration } from '@labtrace/protocols/node';
import type { Logger } from '../../log.js';

export interface CatchUpOptions {
  logger: Logger;
  /** the backlog now (batches and samples stored and not yet in InfluxDB) */
  backlog: () => { batches: number; samples: number };
  /** how often a line is written while catching up (default 5 s) */
  everyMs?: number;
  /** the backlog, in samples, that starts a catch-up report (default 50,000: some seconds of a busy lab) */
  minSamples?: number;
  now?: () => number;
}

export class CatchUpProgress {
  private readonly everyMs: number;
  private readonly minSamples: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private catching: { since: number; written: number } | undefined;
  /** samples written since the last look */
  private recent = 0;
  private lastLook: number;

  constructor(private readonly options: CatchUpOptions) {
    this.everyMs = options.everyMs ?? 5000;
    this.minSamples = options.minSamples ?? 50_000;
    this.now = options.now ?? Date.now;
    this.lastLook = this.now();
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.lastLook = this.now();
    this.recent = 0;
    this.timer = setInterval(() => this.look(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** samples the forwarder wrote (or InfluxDB refused for good: the cursor moved past them) */
  written(samples: number): void {
    this.recent += samples;
    if (this.catching !== undefined) this.catching.written += samples;
  }

  /** One look at the backlog (the timer's; the tests call it with their own clock). */
  look(): void {
    const now = this.now();
    let backlog: { batches: number; samples: number };
    try {
      backlog = this.options.backlog();
    } catch {
      return; // a store being closed: the next look, if any, tells
    }
    const rate = now > this.lastLook ? (this.recent * 1000) / (now - this.lastLook) : 0;
    this.recent = 0;
    this.lastLook = now;
    const fields = { store: 'influxdb', backlog };
    if (this.catching === undefined) {
      if (backlog.samples < this.minSamples) return;
      this.catching = { since: now, written: 0 };
      this.options.logger.info(fields, `InfluxDB catch-up: ${backlog.samples} samples in ${backlog.batches} stored batches to write`);
      return;
    }
    const { since, written } = this.catching;
    if (backlog.samples === 0) {
      this.catching = undefined;
      this.options.logger.info(
        { ...fields, written, ms: now - since },
        `InfluxDB caught up: ${written} samples written in ${formatDuration(now - since)}`,
      );
      return;
    }
    const left = rate > 0 ? `about ${formatDuration((backlog.samples / rate) * 1000)} left` : 'not moving (InfluxDB is not taking writes)';
    this.options.logger.info(
      { ...fields, written, perSecond: Math.round(rate) },
      `InfluxDB catch-up: ${written} samples written, ${backlog.samples} left in ${backlog.batches} batches, ${Math.round(rate)}/s, ${left}`,
    );
  }
}
