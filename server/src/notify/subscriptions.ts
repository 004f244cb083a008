// Each user's notification address and, per event kind, the channels: e-mail and some of the user's own webhooks.
import type { LabDatabase } from '../store/database.js';
import { NOTIFICATION_KINDS, type NotificationKind } from './events.js';

export interface ChannelChoice {
  email: boolean;
  webhooks: string[];
}

export interface Subscriber {
  username: string;
  /** where e-mail goes, null when the user gave no address */
  address: string | null;
  choice: ChannelChoice;
}

export class Subscriptions {
  constructor(
    private readonly database: LabDatabase,
    private readonly now: () => number,
  ) {}

  address(username: string): string | null {
    const row = this.database.sqlite.prepare('SELECT email FROM notification_settings WHERE username = ?').get(username) as
      { email: string | null } | undefined;
    return row?.email ?? null;
  }

  of(username: string): Record<NotificationKind, ChannelChoice> {
    const rows = this.database.sqlite.prepare('SELECT kind, email, webhooks FROM notification_subscriptions WHERE username = ?').all(username) as {
      kind: NotificationKind;
      email: number;
      webhooks: string;
    }[];
    const out = Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, { email: false, webhooks: [] as string[] }])) as Record<
      NotificationKind,
      ChannelChoice
    >;
    for (const r of rows) if (r.kind in out) out[r.kind] = { email: r.email === 1, webhooks: JSON.parse(r.webhooks) as string[] };
    return out;
  }

  /** Replaces a user's address (when given) and every subscription (the kinds left out are not notified). */
  set(username: string, address: string | null | undefined, kinds: Partial<Record<NotificationKind, ChannelChoice>>): void {
    const db = this.database.sqlite;
    db.transaction(() => {
      if (address !== undefined)
        db.prepare(
          'INSERT INTO notification_settings (username, email, updated_at) VALUES (?, ?, ?) ON CONFLICT (username) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at',
        ).run(username, address, this.now());
      db.prepare('DELETE FROM notification_subscriptions WHERE username = ?').run(username);
      const insert = db.prepare('INSERT INTO notification_subscriptions (username, kind, email, webhooks) VALUES (?, ?, ?, ?)');
      for (const [kind, c] of Object.entries(kinds))
        if (c.email || c.webhooks.length > 0) insert.run(username, kind, c.email ? 1 : 0, JSON.stringify([...new Set(c.webhooks)]));
    })();
  }

  /** everyone subscribed to a kind by some channel */
  subscribers(kind: NotificationKind): Subscriber[] {
    const rows = this.database.sqlite
      .prepare(
        `SELECT s.username, s.email, s.webhooks, n.email AS address FROM notification_subscriptions s
         LEFT JOIN notification_settings n ON n.username = s.username WHERE s.kind = ? ORDER BY s.username`,
      )
      .all(kind) as { username: string; email: number; webhooks: string; address: string | null }[];
    return rows.map((r) => ({
      username: r.username,
      address: r.address,
      choice: { email: r.email === 1, webhooks: JSON.parse(r.webhooks) as string[] },
    }));
  }

  /** a deleted webhook leaves every subscription that named it */
  forgetWebhook(id: string): void {
    const db = this.database.sqlite;
    const rows = db.prepare("SELECT username, kind, email, webhooks FROM notification_subscriptions WHERE webhooks LIKE '%' || ? || '%'").all(id) as {
      username: string;
      kind: string;
      email: number;
      webhooks: string;
    }[];
    for (const r of rows) {
      const rest = (JSON.parse(r.webhooks) as string[]).filter((w) => w !== id);
      if (rest.length === 0 && r.email === 0)
        db.prepare('DELETE FROM notification_subscriptions WHERE username = ? AND kind = ?').run(r.username, r.kind);
      else
        db.prepare('UPDATE notification_subscriptions SET webhooks = ? WHERE username = ? AND kind = ?').run(
          JSON.stringify(rest),
          r.username,
          r.kind,
        );
    }
  }
}
