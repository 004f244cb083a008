// Instrument connection health over time (ISO/IEC 17025 6.4.13: the equipment's record of malfunctions). The
// gateways' HEALTH messages come every few seconds and the ingest keeps only the latest in memory; this keeps a
// thinned series of them: at most one point a minute per instrument, and every change of connection, for 90 days.
import type { InstrumentHealthMessage } from '@labtrace/protocols';
import type { HealthPoint } from '@labtrace/protocols/api';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

export interface EquipmentHealthOptions {
  /** the least time between two stored points of an instrument whose connection did not change */
  intervalMs: number;
  /** how long points are kept */
  retentionMs: number;
}

const DEFAULTS: EquipmentHealthOptions = { intervalMs: 60_000, retentionMs: 90 * 86_400_000 };

/**
 * the advisory lock (two-key form) under which a PostgreSQL transaction decides which reports are due and stores them:
 * every node hears every gateway's HEALTH, and one of them stores each point ('lteq')
 */
const HEALTH_LOCK = [0x6c74_6571, 2] as const;

export class EquipmentHealth {
  private lastPrune = 0;
  private readonly options: EquipmentHealthOptions;

  constructor(
    private readonly store: Kysely<Tables>,
    options: Partial<EquipmentHealthOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /**
   * Keeps the reports that are due (a minute after the instrument's last stored point, or a change of connection).
   * The last point is the store's, whichever node stored it: nodes hearing the same report store it once.
   */
  async record(reports: readonly InstrumentHealthMessage[]): Promise<void> {
    const at = this.now();
    const prune = at - this.lastPrune > 3_600_000;
    await this.store.transaction().execute(async (trx) => {
      if (dialectOf(trx as unknown as Kysely<unknown>) === 'postgres')
        await sql`SELECT pg_advisory_xact_lock(${HEALTH_LOCK[0]}, ${HEALTH_LOCK[1]})`.execute(trx);
      for (const h of reports) {
        const last = await this.lastStored(trx, h.instrument);
        if (last !== undefined && last.connected === (h.connected ? 1 : 0) && at - last.at < this.options.intervalMs) continue;
        await trx
          .insertInto('instrument_health')
          .values({
            instrument: h.instrument,
            at,
            connected: h.connected ? 1 : 0,
            polls: h.polls,
            errors: JSON.stringify(h.errors),
            latency_p50: h.latencyMs.p50,
            latency_p99: h.latencyMs.p99,
          })
          .execute();
      }
      if (prune)
        await trx
          .deleteFrom('instrument_health')
          .where('at', '<', at - this.options.retentionMs)
          .execute();
    });
    if (prune) this.lastPrune = at;
  }

  /**
   * The points of an instrument between two times, at most `points`: the interval is cut into that many buckets,
   * each answered by its last report (the counters are cumulative), disconnected when any report in it was.
   */
  async history(instrument: string, from: number, to: number, points: number): Promise<HealthPoint[]> {
    const rows = await this.store
      .selectFrom('instrument_health')
      .select(['at', 'connected', 'polls', 'errors', 'latency_p50', 'latency_p99'])
      .where('instrument', '=', instrument)
      .where('at', '>=', from)
      .where('at', '<=', to)
      .orderBy('at')
      .orderBy('id')
      .execute();
    const bucketMs = Math.max(1, Math.ceil((to - from + 1) / points));
    const out: HealthPoint[] = [];
    let bucket = -1;
    for (const r of rows) {
      const b = Math.floor((r.at - from) / bucketMs);
      const point: HealthPoint = {
        at: r.at,
        connected: r.connected === 1,
        polls: r.polls,
        errors: JSON.parse(r.errors) as Record<string, number>,
        latencyP50: r.latency_p50,
        latencyP99: r.latency_p99,
      };
      const previous = out.at(-1);
      if (b === bucket && previous !== undefined) out[out.length - 1] = { ...point, connected: previous.connected && point.connected };
      else out.push(point);
      bucket = b;
    }
    return out;
  }

  /** the instrument's newest stored point (by time, on the index; ties by id) */
  private async lastStored(trx: Transaction<Tables>, instrument: string): Promise<{ at: number; connected: number } | undefined> {
    return trx
      .selectFrom('instrument_health')
      .select(['at', 'connected'])
      .where('instrument', '=', instrument)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
  }
}
