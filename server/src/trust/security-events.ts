// The security and integrity events of the lab: refused batches (forged, altered, replayed, unknown
// or revoked key), gaps and breaks in a gateway's chain, duplicates, sample times beyond the accepted clock skew,
// enrollments and key changes, and what the broker and the API refuse from outside (failed logins, refused
// publishes, enrollment attempts with a bad token). Kept durably; an alarm is also logged and pushed to whoever listens.
//
// Its queries run through Kysely on the store's database (SQLite or PostgreSQL). Two synchronous twins stay for the
// modules not yet moved, on SQLite only: record() (the ingest records inside its synchronous group transaction) and
// list() (a synchronous read). An event written in a caller's Kysely transaction (recordIn) is told to the listeners
// and logged only once that transaction has committed: the caller calls announce(event) after it.
//
// What must not be lost with an event (its notifications) is written by the recording hooks (hookRecording), in the
// transaction that records the event: it commits, or rolls back, with the event, so that a crash between a commit
// and an announcement loses nothing, and an event is handed to them on the one node that records it.
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import { storeOf, type TrustStore } from './store.js';
import type { Logger } from '../log.js';
import { SECURITY_EVENT_KINDS, type Page } from '@labtrace/protocols/api';
import { pageOfRows } from '../api/paging.js';

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

/**
 * A module told of every event in the transaction that records it (the notifier queues the event's deliveries):
 * what it writes there commits, or rolls back, with the event. A hook that fails is rolled back alone (a savepoint)
 * and logged: the event stands.
 */
export interface RecordingHook {
  /** an event written through Kysely (recordIn, a refusal's row), in `trx`: the transaction that records it */
  in(trx: Transaction<Tables>, event: SecurityEvent): Promise<void>;
  /** an event written by the synchronous record(), inside its synchronous SQLite transaction */
  now(event: SecurityEvent): void;
}

const COLUMNS = 'id, at, gateway, kind, severity, batch, detail, count, COALESCE(last_at, at) AS lastAt, address, client';

/** an aggregated refusal's row in this window: its id once inserted, and the repetitions not yet written */
interface WindowRow {
  id: number | undefined;
  /** settles once the row is inserted (or its insert failed: id stays undefined) */
  inserted: Promise<void>;
  count: number;
  lastAt: number;
}

type EventRow = {
  id: number;
  at: number;
  gateway: string;
  kind: string;
  severity: string;
  batch: number | null;
  detail: string;
  count: number;
  last_at: number | null;
  address: string | null;
  client: string | null;
};

const toEvent = (r: EventRow): SecurityEvent => ({
  id: r.id,
  at: r.at,
  gateway: r.gateway,
  kind: r.kind as SecurityEventKind,
  severity: r.severity as Severity,
  batch: r.batch,
  detail: r.detail,
  count: r.count,
  lastAt: r.last_at ?? r.at,
  address: r.address,
  client: r.client,
});

export class SecurityEvents extends EventEmitter<Events> {
  private readonly db: Kysely<Tables>;
  private readonly sqlite: LabDatabase | undefined;
  private insert: Statement | undefined;
  private readonly aggregation: AggregationOptions;
  private windowStart = -Infinity;
  /** this window's row of each source */
  private readonly windowRows = new Map<string, WindowRow>();
  /** this window's rows of each kind */
  private readonly kindRows = new Map<SecurityEventKind, number>();
  /** rows with repetitions not yet written */
  private readonly unwritten = new Set<WindowRow>();
  /** inserts of refusals under way (stop() waits for them) */
  private readonly inserting = new Set<Promise<void>>();
  /** the newest first-row insert: the next one waits for it */
  private lastInsert: Promise<void> = Promise.resolve();
  /** the flushes, one after the other */
  private flushing: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly hooks = new Set<RecordingHook>();

  /** `store`: the SQLite LabDatabase (record() and list() need it) or a Kysely store (SQLite or PostgreSQL) */
  constructor(
    store: TrustStore,
    private readonly logger: Logger,
    aggregation: Partial<AggregationOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    super();
    ({ db: this.db, sqlite: this.sqlite } = storeOf(store));
    this.aggregation = { ...DEFAULT_AGGREGATION, ...aggregation };
  }

  private sync(): LabDatabase {
    if (this.sqlite === undefined) throw new Error('security events: the synchronous twins need the SQLite store');
    return this.sqlite;
  }

  /** Has `hook` told of every event from now on, in the transaction that records it. */
  hookRecording(hook: RecordingHook): void {
    this.hooks.add(hook);
  }

  unhookRecording(hook: RecordingHook): void {
    this.hooks.delete(hook);
  }

  /** the hooks, each under a savepoint of `trx`: one that fails is rolled back alone and logged */
  private async hookIn(trx: Transaction<Tables>, event: SecurityEvent): Promise<void> {
    for (const hook of [...this.hooks]) {
      await sql`SAVEPOINT security_event_hook`.execute(trx);
      try {
        await hook.in(trx, event);
      } catch (err) {
        await sql`ROLLBACK TO SAVEPOINT security_event_hook`.execute(trx);
        this.hookFailed(event, err);
      }
      await sql`RELEASE SAVEPOINT security_event_hook`.execute(trx);
    }
  }

  private hookFailed(event: SecurityEvent, err: unknown): void {
    this.logger.error(
      { id: event.id, kind: event.kind, err: (err as Error).message },
      'ALARM: what is written with a security event (its notifications) could not be; the event is recorded',
    );
  }

  /**
   * Records an event (inside the caller's synchronous SQLite transaction, if any, else in one of its own) with what
   * the hooks write, logs it and tells the listeners at once (inside that transaction): the synchronous twin of
   * recordIn for the modules not yet on Kysely (the ingest).
   */
  record(gateway: string, kind: SecurityEventKind, severity: Severity, detail: string, batch: number | null = null, at = Date.now()): SecurityEvent {
    const db = this.sync().sqlite;
    this.insert ??= db.prepare(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail, last_at, address, client) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)',
    );
    const insert = this.insert;
    const event = db.transaction(() => {
      const info = insert.run(at, gateway, kind, severity, batch, detail, at);
      const recorded = eventOf(Number(info.lastInsertRowid), { gateway, kind, severity, detail, batch }, at);
      for (const hook of [...this.hooks])
        try {
          // a savepoint of its own: a hook that fails is rolled back alone
          db.transaction(() => hook.now(recorded))();
        } catch (err) {
          this.hookFailed(recorded, err);
        }
      return recorded;
    })();
    this.announce(event);
    return event;
  }

  /**
   * Writes an event in the caller's transaction (SQLite or PostgreSQL), with what the hooks write, and returns it;
   * nothing is logged nor told yet. Once the transaction has committed, the caller calls announce(event) (an event
   * rolled back is never told).
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
    const event = await this.insertIn(trx, { gateway, kind, severity, detail, batch }, at);
    await this.hookIn(trx, event);
    return event;
  }

  private async insertIn(db: Kysely<Tables>, r: Refusal, at: number): Promise<SecurityEvent> {
    const row = await db
      .insertInto('security_events')
      .values({
        at,
        gateway: r.gateway ?? '',
        kind: r.kind,
        severity: r.severity,
        batch: r.batch ?? null,
        detail: r.detail,
        last_at: at,
        address: r.address ?? null,
        client: r.client ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return eventOf(row.id, r, at);
  }

  /** Logs an event written (alarms at error level) and tells the listeners: after its transaction committed. */
  announce(event: SecurityEvent): void {
    const fields = {
      gateway: event.gateway,
      kind: event.kind,
      batch: event.batch,
      detail: event.detail,
      ...(event.address === null ? {} : { address: event.address }),
      ...(event.client === null ? {} : { client: event.client }),
    };
    if (event.severity === 'alarm') this.logger.error(fields, `ALARM: ${event.kind}`);
    else if (event.severity === 'notice') this.logger.warn(fields, event.kind);
    else this.logger.info(fields, event.kind);
    this.emit('event', event);
  }

  /**
   * Records a refusal of something that can come in floods (failed logins, garbage payloads, bad
   * enrollment tokens): the first of a (kind, gateway, address, client, batch) in a window is a row,
   * logged and pushed once written; the rest of the window only count on that row (written at most every
   * second, and before every read). A window holds at most maxKeysPerWindow rows of a kind (a flood of one
   * kind cannot crowd out another); further sources are counted on one row of the kind. Returns at once and
   * never throws: a refusal stands even when it cannot be recorded (the failure is logged).
   */
  refuse(r: Refusal): void {
    try {
      const now = this.now();
      if (now >= this.windowStart + this.aggregation.windowMs) {
        // the last window's counts are written meanwhile (their rows stay in `unwritten` until then)
        if (this.unwritten.size > 0) void this.flushSafely();
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
          this.windowRows.set(
            other,
            this.newRow(
              {
                kind: r.kind,
                severity: r.severity,
                detail: `${r.kind} from more than ${this.aggregation.maxKeysPerWindow} sources in ${this.aggregation.windowMs / 1000} s: counted here, the first was: ${r.detail}`,
              },
              now,
            ),
          );
          return;
        }
      }
      if (row === undefined) {
        this.windowRows.set(key, this.newRow(r, now));
        this.kindRows.set(r.kind, rows + 1);
        return;
      }
      row.count++;
      row.lastAt = now;
      this.unwritten.add(row);
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        void this.flushSafely();
      }, FLUSH_MS).unref();
    } catch (err) {
      this.logger.error({ kind: r.kind, err: (err as Error).message }, 'a refusal could not be recorded');
    }
  }

  /** A window's first refusal of a source: its row, inserted in a transaction of its own (with the hooks), then announced. */
  private newRow(r: Refusal, at: number): WindowRow {
    const row: WindowRow = { id: undefined, inserted: Promise.resolve(), count: 0, lastAt: at };
    // one after the other: the rows are numbered in the order the refusals came (a pool would race them)
    const inserted = this.lastInsert.then(() =>
      this.db.transaction().execute(async (trx) => {
        const event = await this.insertIn(trx, r, at);
        await this.hookIn(trx, event);
        return event;
      }),
    );
    const told = inserted.then(
      (event) => {
        row.id = event.id;
        this.announce(event);
      },
      (err: unknown) => this.logger.error({ kind: r.kind, err: (err as Error).message }, 'a refusal could not be recorded'),
    );
    row.inserted = told;
    this.lastInsert = told;
    this.inserting.add(told);
    void told.finally(() => this.inserting.delete(told));
    return row;
  }

  /** Writes the counted repetitions (one transaction); a failure keeps them for the next flush and rejects. */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(): Promise<void> {
    const rows = [...this.unwritten];
    this.unwritten.clear();
    await Promise.all(rows.map((r) => r.inserted));
    // a row whose insert failed has nothing to count on: its repetitions go (the failure was logged)
    const work = rows.flatMap((row) => (row.id !== undefined && row.count > 0 ? [{ row, id: row.id, count: row.count, lastAt: row.lastAt }] : []));
    if (work.length === 0) return;
    for (const w of work) w.row.count = 0;
    try {
      await this.db.transaction().execute(async (trx) => {
        for (const w of work)
          await trx
            .updateTable('security_events')
            .set({
              count: sql`count + ${w.count}`,
              last_at: sql`CASE WHEN COALESCE(last_at, at) > ${w.lastAt} THEN COALESCE(last_at, at) ELSE ${w.lastAt} END`,
            })
            .where('id', '=', w.id)
            .execute();
      });
    } catch (err) {
      // kept in memory: written at the next flush
      for (const w of work) {
        w.row.count += w.count;
        w.row.lastAt = Math.max(w.row.lastAt, w.lastAt);
        this.unwritten.add(w.row);
      }
      throw err;
    }
  }

  private async flushSafely(): Promise<void> {
    try {
      await this.flush();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'the counts of repeated refusals could not be written');
    }
  }

  /** flush() as synchronous statements, before a synchronous read (SQLite; the rows inserted by then) */
  private flushNow(): void {
    const work = [...this.unwritten].filter((r) => r.id !== undefined && r.count > 0);
    if (work.length === 0) return;
    const db = this.sync().sqlite;
    const update = db.prepare('UPDATE security_events SET count = count + ?, last_at = MAX(COALESCE(last_at, at), ?) WHERE id = ?');
    try {
      db.transaction(() => {
        for (const r of work) update.run(r.count, r.lastAt, r.id);
      }).immediate();
      for (const r of work) {
        r.count = 0;
        this.unwritten.delete(r);
      }
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'the counts of repeated refusals could not be written');
    }
  }

  /** Writes what is counted and stops the timer (before the database closes). */
  async stop(): Promise<void> {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await Promise.all([...this.inserting]);
    await this.flushSafely();
  }

  /**
   * A page of events, newest first (by id): of a gateway, of a kind, last happened at or after `from`, first
   * happened before `to`.
   */
  async page(filter: {
    limit: number;
    cursor?: string | undefined;
    gateway?: string;
    kind?: SecurityEventKind;
    from?: number;
    to?: number;
  }): Promise<Page<SecurityEvent>> {
    await Promise.all([...this.inserting]);
    await this.flushSafely();
    const limit = Math.max(1, Math.floor(filter.limit));
    const rows = await this.db
      .selectFrom('security_events')
      .select(['id', 'at', 'gateway', 'kind', 'severity', 'batch', 'detail', 'count', 'last_at', 'address', 'client'])
      .$if(filter.gateway !== undefined, (q) => q.where('gateway', '=', filter.gateway ?? ''))
      .$if(filter.kind !== undefined, (q) => q.where('kind', '=', filter.kind ?? ''))
      .$if(filter.from !== undefined, (q) => q.where(sql<number>`COALESCE(last_at, at)`, '>=', filter.from ?? 0))
      .$if(filter.to !== undefined, (q) => q.where('at', '<', filter.to ?? 0))
      .$if(filter.cursor !== undefined, (q) => q.where('id', '<', Number(filter.cursor)))
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    return pageOfRows(
      rows,
      filter,
      (e) => e.id,
      (e) => toEvent(e),
    );
  }

  /** The events, newest first: the synchronous twin (SQLite) of page() for tests and the command line. */
  list(filter: { gateway?: string; kind?: SecurityEventKind; since?: number; limit?: number } = {}): SecurityEvent[] {
    this.flushNow();
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
    return this.sync()
      .sqlite.prepare(sqlText)
      .all(...args, filter.limit ?? 100) as SecurityEvent[];
  }
}

function eventOf(id: number, r: Refusal, at: number): SecurityEvent {
  return {
    id,
    at,
    gateway: r.gateway ?? '',
    kind: r.kind,
    severity: r.severity,
    batch: r.batch ?? null,
    detail: r.detail,
    count: 1,
    lastAt: at,
    address: r.address ?? null,
    client: r.client ?? null,
  };
}
