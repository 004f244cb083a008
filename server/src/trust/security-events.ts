// The security and integrity events of the lab: refused batches (forged, altered, replayed, unknown
// or revoked key), gaps and breaks in a gateway's chain, duplicates, sample times beyond the accepted clock skew,
// enrollments and key changes, and what the broker and the API refuse from outside (failed logins, refused
// publishes, enrollment attempts with a bad token). Kept durably; an alarm is also logged and pushed to whoever listens.
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import type { Transaction } from 'kysely';
import type { LabDatabase } from '../store/database.js';
import type { Tables } from '../store/tables.js';
import type { Logger } from '../log.js';
import { SECURITY_EVENT_KINDS, type Page } from '@labtrace/protocols/api';
import { pageOfRows, pageSql } from '../api/paging.js';

export const EVENT_KINDS = SECURITY_EVENT_KINDS;

export type SecurityEventKind = (typeof EVENT_KINDS)[number];
export type Severity = 'info' | 'notice' | 'alarm';

export interface SecurityEvent {
  id: number;
  at: number;
  /** the gateway the event is about; '' for what comes from an unauthenticated source */
  gateway: string;
  kind: SecurityEventKind;
  severity: Severity;
  batch: number | null;
  detail: string;
  /** how many times it happened in its window (1 for an event recorded once) */
  count: number;
  /** when it last happened (the same as `at` for an event recorded once) */
  lastAt: number;
  /** the network address it came from, where known */
  address: string | null;
  /** the MQTT client id or username it presented, where there was one */
  client: string | null;
}

/** A refusal of something from outside, counted rather than recorded each time. */
export interface Refusal {
  kind: SecurityEventKind;
  severity: Severity;
  detail: string;
  /** the authenticated gateway it concerns; leave out for an unauthenticated source */
  gateway?: string;
  address?: string | undefined;
  client?: string | undefined;
  batch?: number | null;
}

export interface AggregationOptions {
  /** refusals of one kind from one source are one row per window, with a count */
  windowMs: number;
  /** distinct sources (rows) of a kind per window; beyond it, one row of the kind counts the rest */
  maxKeysPerWindow: number;
}

export const DEFAULT_AGGREGATION: AggregationOptions = { windowMs: 60_000, maxKeysPerWindow: 200 };
/** counts of repeated refusals are written in one transaction at most this often (and before every read) */
const FLUSH_MS = 1000;

interface Events {
  event: [event: SecurityEvent];
}

const COLUMNS = 'id, at, gateway, kind, severity, batch, detail, count, COALESCE(last_at, at) AS lastAt, address, client';

export class SecurityEvents extends EventEmitter<Events> {
  private insert: Statement | undefined;
  private readonly aggregation: AggregationOptions;
  private windowStart = -Infinity;
  /** this window's row of each source */
  private readonly windowRows = new Map<string, number>();
  /** this window's rows of each kind */
  private readonly kindRows = new Map<SecurityEventKind, number>();
  /** repetitions not yet written, by row */
  private readonly unwritten = new Map<number, { count: number; lastAt: number }>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly database: LabDatabase,
    private readonly logger: Logger,
    aggregation: Partial<AggregationOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.aggregation = { ...DEFAULT_AGGREGATION, ...aggregation };
  }

  /** Records an event (inside the caller's transaction, if any) and logs it; alarms at error level. */
  record(gateway: string, kind: SecurityEventKind, severity: Severity, detail: string, batch: number | null = null, at = Date.now()): SecurityEvent {
    return this.write({ gateway, kind, severity, detail, batch }, at);
  }

  private write(r: Refusal, at: number): SecurityEvent {
    this.insert ??= this.database.sqlite.prepare(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail, last_at, address, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const gateway = r.gateway ?? '';
    const batch = r.batch ?? null;
    const address = r.address ?? null;
    const client = r.client ?? null;
    const info = this.insert.run(at, gateway, r.kind, r.severity, batch, r.detail, at, address, client);
    const event: SecurityEvent = {
      id: Number(info.lastInsertRowid),
      at,
      gateway,
      kind: r.kind,
      severity: r.severity,
      batch,
      detail: r.detail,
      count: 1,
      lastAt: at,
      address,
      client,
    };
    this.announce(event);
    return event;
  }

  /**
   * Records an event in the caller's transaction (a Kysely transaction on either store) without announcing it: the
   * caller announces it (`announce`) once the transaction has committed.
   */
  async recordIn(
    trx: Transaction<Tables>,
    gateway: string,
    kind: SecurityEventKind,
    severity: Severity,
    detail: string,
    batch: number | null,
    at: number,
  ): Promise<SecurityEvent> {
    const row = await trx
      .insertInto('security_events')
      .values({ at, gateway, kind, severity, batch, detail, last_at: at, address: null, client: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: Number(row.id), at, gateway, kind, severity, batch, detail, count: 1, lastAt: at, address: null, client: null };
  }

  /** Logs a recorded event (alarms at error level) and pushes it to whoever listens. */
  announce(event: SecurityEvent): void {
    const { gateway, kind, batch, detail, address, client } = event;
    const fields = { gateway, kind, batch, detail, ...(address === null ? {} : { address }), ...(client === null ? {} : { client }) };
    if (event.severity === 'alarm') this.logger.error(fields, `ALARM: ${kind}`);
    else if (event.severity === 'notice') this.logger.warn(fields, kind);
    else this.logger.info(fields, kind);
    this.emit('event', event);
  }

  /**
   * Records a refusal of something that can come in floods (failed logins, garbage payloads, bad
   * enrollment tokens): the first of a (kind, gateway, address, client, batch) in a window is a row,
   * logged and pushed; the rest of the window only count on that row. A window holds at most
   * maxKeysPerWindow rows of a kind (a flood of one kind cannot crowd out another); further sources
   * are counted on one row of the kind. Never throws: a refusal stands even when it cannot be
   * recorded (the failure is logged).
   */
  refuse(r: Refusal): void {
    try {
      const now = this.now();
      if (now >= this.windowStart + this.aggregation.windowMs) {
        this.flush();
        this.windowRows.clear();
        this.kindRows.clear();
        this.windowStart = now;
      }
      const key = JSON.stringify([r.kind, r.gateway ?? '', r.address ?? null, r.client ?? null, r.batch ?? null]);
      let row = this.windowRows.get(key);
      const rows = this.kindRows.get(r.kind) ?? 0;
      if (row === undefined && rows >= this.aggregation.maxKeysPerWindow) {
        const other = JSON.stringify([r.kind, '*']);
        row = this.windowRows.get(other);
        if (row === undefined) {
          const event = this.write(
            {
              kind: r.kind,
              severity: r.severity,
              detail: `${r.kind} from more than ${this.aggregation.maxKeysPerWindow} sources in ${this.aggregation.windowMs / 1000} s: counted here, the first was: ${r.detail}`,
            },
            now,
          );
          this.windowRows.set(other, event.id);
          return;
        }
      }
      if (row === undefined) {
        this.windowRows.set(key, this.write(r, now).id);
        this.kindRows.set(r.kind, rows + 1);
        return;
      }
      const pending = this.unwritten.get(row) ?? { count: 0, lastAt: now };
      pending.count++;
      pending.lastAt = now;
      this.unwritten.set(row, pending);
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        this.flushSafely();
      }, FLUSH_MS).unref();
    } catch (err) {
      this.logger.error({ kind: r.kind, err: (err as Error).message }, 'a refusal could not be recorded');
    }
  }

  /** Writes the counted repetitions. */
  flush(): void {
    if (this.unwritten.size === 0) return;
    const update = this.database.sqlite.prepare('UPDATE security_events SET count = count + ?, last_at = MAX(COALESCE(last_at, at), ?) WHERE id = ?');
    this.database.sqlite
      .transaction(() => {
        for (const [id, p] of this.unwritten) update.run(p.count, p.lastAt, id);
      })
      .immediate();
    this.unwritten.clear();
  }

  private flushSafely(): void {
    try {
      this.flush();
    } catch (err) {
      // kept in memory: written at the next flush
      this.logger.error({ err: (err as Error).message }, 'the counts of repeated refusals could not be written');
    }
  }

  /** Writes what is counted and stops the timer (before the database closes). */
  stop(): Promise<void> {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushSafely();
    return Promise.resolve();
  }

  /**
   * A page of events, newest first (by id): of a gateway, of a kind, last happened at or after `from`, first
   * happened before `to`.
   */
  page(filter: {
    limit: number;
    cursor?: string | undefined;
    gateway?: string;
    kind?: SecurityEventKind;
    from?: number;
    to?: number;
  }): Page<SecurityEvent> {
    this.flushSafely();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.gateway !== undefined) {
      where.push('gateway = ?');
      args.push(filter.gateway);
    }
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    if (filter.from !== undefined) {
      where.push('COALESCE(last_at, at) >= ?');
      args.push(filter.from);
    }
    if (filter.to !== undefined) {
      where.push('at < ?');
      args.push(filter.to);
    }
    const page = pageSql(filter, 'id');
    const rows = this.database.sqlite
      .prepare(`SELECT ${COLUMNS} FROM security_events WHERE ${[...where, page.where].join(' AND ')} ${page.orderLimit}`)
      .all(...args, ...page.params) as SecurityEvent[];
    return pageOfRows(
      rows,
      filter,
      (e) => e.id,
      (e) => e,
    );
  }

  list(filter: { gateway?: string; kind?: SecurityEventKind; since?: number; limit?: number } = {}): SecurityEvent[] {
    this.flushSafely();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.gateway !== undefined) {
      where.push('gateway = ?');
      args.push(filter.gateway);
    }
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    if (filter.since !== undefined) {
      where.push('COALESCE(last_at, at) >= ?');
      args.push(filter.since);
    }
    const sqlText = `SELECT ${COLUMNS} FROM security_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.database.sqlite.prepare(sqlText).all(...args, filter.limit ?? 100) as SecurityEvent[];
  }
}
