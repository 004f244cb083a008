// The durable outbox: every notification is a row before anything is sent, pending until a delivery succeeds, then
// sent; after the last attempt, or at once for what can never succeed, failed with the reason. Rows are never deleted,
// so nothing is lost silently: the failed ones are listed (GET /api/notifications/deliveries) and counted in /api/health.
//
// Its queries run through Kysely on the store's database (SQLite or PostgreSQL). Several nodes may drain one outbox:
// a sender claims the rows it attempts with one UPDATE ... RETURNING (on PostgreSQL over rows taken FOR UPDATE SKIP
// LOCKED), which marks them `sending` until a lease ends; another node takes a row only once its lease has run out
// (its sender died). The API shows a row being sent as pending. An event announced on two nodes is one delivery: the
// row's key (event, recipient, channel, target) is unique and the insert is ON CONFLICT DO NOTHING.
import type { Statement } from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { Message } from './messages.js';

export type Channel = 'email' | 'webhook';

/**
 * The wait before the next attempt after `attempts` failed ones: baseMs doubling each time, capped at maxMs, half
 * of it random ("equal jitter": never less than half, and deliveries to one receiver that was down spread out).
 */
export function backoffDelay(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const full = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(full / 2 + (random() * full) / 2);
}
export type DeliveryStatus = 'pending' | 'sent' | 'failed';

/** what a row keeps to send it again after a restart: rendered words and the event's facts */
export interface StoredMessage {
  type: string;
  at: number;
  data: Record<string, unknown>;
  message: Message;
  locale: string;
}

export interface OutboxRow {
  id: number;
  eventKey: string;
  kind: string;
  recipient: string;
  channel: Channel;
  target: string;
  message: StoredMessage;
  status: DeliveryStatus;
  attempts: number;
  nextAt: number;
  createdAt: number;
  sentAt: number | null;
  lastError: string | null;
}

export interface NewDelivery {
  eventKey: string;
  kind: string;
  recipient: string;
  channel: Channel;
  target: string;
  message: StoredMessage;
}

/** what the store holds: `sending` is a pending row claimed by a sender until `next_at` (shown as pending) */
type StoredStatus = DeliveryStatus | 'sending';

interface Row {
  id: number;
  event_key: string;
  kind: string;
  recipient: string;
  channel: string;
  target: string;
  message: string;
  status: string;
  attempts: number;
  next_at: number;
  created_at: number;
  sent_at: number | null;
  last_error: string | null;
}

const toRow = (r: Row): OutboxRow => ({
  id: Number(r.id),
  eventKey: r.event_key,
  kind: r.kind,
  recipient: r.recipient,
  channel: r.channel as Channel,
  target: r.target,
  message: JSON.parse(r.message) as StoredMessage,
  status: r.status === 'sending' ? 'pending' : (r.status as DeliveryStatus),
  attempts: r.attempts,
  nextAt: r.next_at,
  createdAt: r.created_at,
  sentAt: r.sent_at,
  lastError: r.last_error,
});

/** the stored statuses a status of the API covers */
const storedAs = (status: DeliveryStatus): StoredStatus[] => (status === 'pending' ? ['pending', 'sending'] : [status]);

/** a row claimed by a sender: the row, and the end of the claim (the fence its outcome is written with) */
export interface ClaimedRow extends OutboxRow {
  claimedUntil: number;
}

export class Outbox {
  private readonly statements = new Map<string, Statement>();

  /**
   * `store` runs every query; `database` (the SQLite store) only the synchronous twin that the SQLite ingest needs
   * inside its own synchronous transaction (addNow).
   */
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly database?: LabDatabase,
  ) {}

  private get postgres(): boolean {
    return dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres';
  }

  private sql(text: string): Statement {
    if (this.database === undefined) throw new Error('the outbox has no synchronous SQLite store');
    let s = this.statements.get(text);
    if (s === undefined) {
      s = this.database.sqlite.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  /**
   * Adds a delivery (inside the transaction `db`, when given). The same event to the same recipient and target is
   * one delivery however often, and on however many nodes, it is announced: undefined when it was there already.
   * Past `maxPending` pending deliveries, a new one is recorded as failed at once (the bound of the queue; nothing
   * is dropped unrecorded). With `claimUntil`, the new row is claimed by the caller's sender until then.
   */
  async add(d: NewDelivery, now: number, maxPending: number, db: Kysely<Tables> = this.store, claimUntil?: number): Promise<OutboxRow | undefined> {
    const pending = await this.count('pending', db);
    const full = pending >= maxPending;
    const row = await db
      .insertInto('notification_outbox')
      .values({
        event_key: d.eventKey,
        kind: d.kind,
        recipient: d.recipient,
        channel: d.channel,
        target: d.target,
        message: JSON.stringify(d.message),
        status: full ? 'failed' : claimUntil === undefined ? 'pending' : 'sending',
        attempts: 0,
        next_at: full || claimUntil === undefined ? now : claimUntil,
        created_at: now,
        last_error: full ? `the outbox holds ${maxPending} pending deliveries already` : null,
      })
      .onConflict((oc) => oc.columns(['event_key', 'recipient', 'channel', 'target']).doNothing())
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : toRow(row);
  }

  /** add() as one synchronous statement, for an event heard inside a module's synchronous SQLite transaction */
  addNow(d: NewDelivery, now: number, maxPending: number): OutboxRow | undefined {
    const full = this.countNow('pending') >= maxPending;
    const row = this.sql(
      `INSERT INTO notification_outbox
         (event_key, kind, recipient, channel, target, message, status, attempts, next_at, created_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
       ON CONFLICT (event_key, recipient, channel, target) DO NOTHING RETURNING *`,
    ).get(
      d.eventKey,
      d.kind,
      d.recipient,
      d.channel,
      d.target,
      JSON.stringify(d.message),
      full ? 'failed' : 'pending',
      now,
      now,
      full ? `the outbox holds ${maxPending} pending deliveries already` : null,
    ) as Row | undefined;
    return row === undefined ? undefined : toRow(row);
  }

  async get(id: number, db: Kysely<Tables> = this.store): Promise<OutboxRow | undefined> {
    const row = await db.selectFrom('notification_outbox').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toRow(row);
  }

  /**
   * Claims up to `limit` deliveries whose time has come (and those whose sender's claim ran out), oldest first,
   * until `now + leaseMs`: one statement, so that two senders (two nodes) never claim one row both.
   */
  async claim(now: number, limit: number, leaseMs: number): Promise<ClaimedRow[]> {
    const until = now + leaseMs;
    const due = this.store
      .selectFrom('notification_outbox')
      .select('id')
      .where('status', 'in', ['pending', 'sending'])
      .where('next_at', '<=', now)
      .orderBy('next_at')
      .orderBy('id')
      .limit(limit)
      // PostgreSQL: rows another sender is claiming are passed over, not waited for
      .$if(this.postgres, (q) => q.forUpdate().skipLocked());
    const rows = await this.store
      .updateTable('notification_outbox')
      .set({ status: 'sending', next_at: until })
      .where('id', 'in', due)
      // checked again on the row itself: a row claimed meanwhile (READ COMMITTED re-reads it) is left out
      .where('status', 'in', ['pending', 'sending'])
      .where('next_at', '<=', now)
      .returningAll()
      .execute();
    return rows.map((r) => ({ ...toRow(r), claimedUntil: until })).sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
  }

  /**
   * The claims of senders that are gone, released at once: on the embedded SQLite store (one node) every claim
   * found at start is one of a process that stopped or died. How many.
   */
  async releaseClaims(now: number): Promise<number> {
    const result = await this.store
      .updateTable('notification_outbox')
      .set({ status: 'pending', next_at: now })
      .where('status', '=', 'sending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async sent(id: number, now: number): Promise<void> {
    await this.store
      .updateTable('notification_outbox')
      .set((eb) => ({ status: 'sent', attempts: eb('attempts', '+', 1), sent_at: now, last_error: null }))
      .where('id', '=', id)
      .execute();
  }

  /**
   * one more failed attempt: tried again at `nextAt`, or failed for good when `nextAt` is null. Only the row as this
   * sender claimed it changes: one failed meanwhile (its webhook deleted during the attempt) keeps its reason, one
   * claimed by another sender after this claim ran out is that sender's.
   */
  async attemptFailed(id: number, error: string, nextAt: number | null, claimedUntil: number): Promise<void> {
    await this.store
      .updateTable('notification_outbox')
      .set((eb) => ({
        status: nextAt === null ? 'failed' : 'pending',
        attempts: eb('attempts', '+', 1),
        last_error: error,
        ...(nextAt === null ? {} : { next_at: nextAt }),
      }))
      .where('id', '=', id)
      .where('status', '=', 'sending')
      .where('next_at', '=', claimedUntil)
      .execute();
  }

  /** a failed delivery tried again from the start (the admin's retry), inside the transaction `db` */
  async requeue(id: number, now: number, db: Kysely<Tables> = this.store): Promise<boolean> {
    const result = await db
      .updateTable('notification_outbox')
      .set({ status: 'pending', attempts: 0, next_at: now })
      .where('id', '=', id)
      .where('status', '=', 'failed')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** the pending deliveries to a webhook that is deleted fail, with the reason (inside the transaction `db`); how many */
  async failTarget(channel: Channel, target: string, reason: string, db: Kysely<Tables> = this.store): Promise<number> {
    const result = await db
      .updateTable('notification_outbox')
      .set({ status: 'failed', last_error: reason })
      .where('channel', '=', channel)
      .where('target', '=', target)
      .where('status', 'in', ['pending', 'sending'])
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async count(status: DeliveryStatus, db: Kysely<Tables> = this.store): Promise<number> {
    const row = await db
      .selectFrom('notification_outbox')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', 'in', storedAs(status))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** count() as one synchronous statement (addNow's bound) */
  countNow(status: DeliveryStatus): number {
    const [a, b] = storedAs(status);
    return (this.sql('SELECT COUNT(*) AS n FROM notification_outbox WHERE status IN (?, ?)').get(a, b ?? a) as { n: number }).n;
  }

  /** the oldest pending delivery's creation time, null when none waits */
  async oldestPending(): Promise<number | null> {
    const row = await this.store
      .selectFrom('notification_outbox')
      .select((eb) => eb.fn.min('created_at').as('at'))
      .where('status', 'in', storedAs('pending'))
      .executeTakeFirst();
    return row?.at === undefined || row.at === null ? null : Number(row.at);
  }

  /** newest first, paged by id */
  async list(filter: { status?: DeliveryStatus | undefined; before?: number | undefined; limit: number }): Promise<OutboxRow[]> {
    const { status, before } = filter;
    const rows = await this.store
      .selectFrom('notification_outbox')
      .selectAll()
      .$if(status !== undefined, (q) => q.where('status', 'in', storedAs(status as DeliveryStatus)))
      .$if(before !== undefined, (q) => q.where('id', '<', before as number))
      .orderBy('id', 'desc')
      .limit(filter.limit)
      .execute();
    return rows.map(toRow);
  }
}
