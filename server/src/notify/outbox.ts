// The durable outbox: every notification is a row before anything is sent, pending until a delivery succeeds, then
// sent; after the last attempt, or at once for what can never succeed, failed with the reason. Rows are never deleted,
// so nothing is lost silently: the failed ones are listed (GET /api/notifications/deliveries) and counted in /api/health.
import type { Statement } from 'better-sqlite3';
import type { LabDatabase } from '../store/database.js';
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

interface Row {
  id: number;
  event_key: string;
  kind: string;
  recipient: string;
  channel: Channel;
  target: string;
  message: string;
  status: DeliveryStatus;
  attempts: number;
  next_at: number;
  created_at: number;
  sent_at: number | null;
  last_error: string | null;
}

const toRow = (r: Row): OutboxRow => ({
  id: r.id,
  eventKey: r.event_key,
  kind: r.kind,
  recipient: r.recipient,
  channel: r.channel,
  target: r.target,
  message: JSON.parse(r.message) as StoredMessage,
  status: r.status,
  attempts: r.attempts,
  nextAt: r.next_at,
  createdAt: r.created_at,
  sentAt: r.sent_at,
  lastError: r.last_error,
});

export class Outbox {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly database: LabDatabase) {}

  private sql(text: string): Statement {
    let s = this.statements.get(text);
    if (s === undefined) {
      s = this.database.sqlite.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  /**
   * Adds a delivery (inside the caller's transaction, if any). The same event to the same recipient and target is
   * one delivery however often it is announced: undefined when it was there already. Past `maxPending` pending
   * deliveries, a new one is recorded as failed at once (the bound of the queue; nothing is dropped unrecorded).
   */
  add(d: NewDelivery, now: number, maxPending: number): OutboxRow | undefined {
    const full = this.count('pending') >= maxPending;
    const info = this.sql(
      `INSERT OR IGNORE INTO notification_outbox
         (event_key, kind, recipient, channel, target, message, status, attempts, next_at, created_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
    ).run(
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
    );
    return info.changes === 0 ? undefined : this.get(Number(info.lastInsertRowid));
  }

  get(id: number): OutboxRow | undefined {
    const row = this.sql('SELECT * FROM notification_outbox WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : toRow(row);
  }

  /** pending deliveries whose time has come, oldest first */
  due(now: number, limit: number): OutboxRow[] {
    return (
      this.sql("SELECT * FROM notification_outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?").all(now, limit) as Row[]
    ).map(toRow);
  }

  sent(id: number, now: number): void {
    this.sql("UPDATE notification_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ?").run(now, id);
  }

  /**
   * one more failed attempt: tried again at `nextAt`, or failed for good when `nextAt` is null. Only a pending row
   * changes: one failed meanwhile (its webhook deleted during the attempt) keeps its reason.
   */
  attemptFailed(id: number, error: string, nextAt: number | null): void {
    if (nextAt === null)
      this.sql("UPDATE notification_outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'pending'").run(
        error,
        id,
      );
    else
      this.sql("UPDATE notification_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ? AND status = 'pending'").run(
        nextAt,
        error,
        id,
      );
  }

  /** a failed delivery tried again from the start (the admin's retry) */
  requeue(id: number, now: number): boolean {
    return (
      this.sql("UPDATE notification_outbox SET status = 'pending', attempts = 0, next_at = ? WHERE id = ? AND status = 'failed'").run(now, id)
        .changes > 0
    );
  }

  /** the pending deliveries to a webhook that is deleted fail, with the reason; how many */
  failTarget(channel: Channel, target: string, reason: string): number {
    return this.sql("UPDATE notification_outbox SET status = 'failed', last_error = ? WHERE channel = ? AND target = ? AND status = 'pending'").run(
      reason,
      channel,
      target,
    ).changes;
  }

  count(status: DeliveryStatus): number {
    return (this.sql('SELECT COUNT(*) AS n FROM notification_outbox WHERE status = ?').get(status) as { n: number }).n;
  }

  /** the oldest pending delivery's creation time, null when none waits */
  oldestPending(): number | null {
    return (this.sql("SELECT MIN(created_at) AS at FROM notification_outbox WHERE status = 'pending'").get() as { at: number | null }).at;
  }

  /** newest first, paged by id */
  list(filter: { status?: DeliveryStatus | undefined; before?: number | undefined; limit: number }): OutboxRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.status !== undefined) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.before !== undefined) {
      where.push('id < ?');
      params.push(filter.before);
    }
    const text = `SELECT * FROM notification_outbox ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY id DESC LIMIT ?`;
    return (this.database.sqlite.prepare(text).all(...params, filter.limit) as Row[]).map(toRow);
  }
}
