// The notifications' tables (owned by notify/, touched by no other module): each user's address and subscriptions,
// the webhooks the admin registers, and the durable outbox every notification passes through.
import type { Kysely, Migration } from 'kysely';
import { ddl } from '../store/portable-ddl.js';

const notificationsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // a user's e-mail address for notifications (not a sign-in identity)
    await ddl(db, `CREATE TABLE notification_settings (username TEXT PRIMARY KEY, email TEXT, updated_at INTEGER NOT NULL)`);
    // per user and event kind: e-mail or not, and which of the user's webhooks (a JSON array of ids)
    await ddl(
      db,
      `CREATE TABLE notification_subscriptions (
      username TEXT NOT NULL, kind TEXT NOT NULL, email INTEGER NOT NULL, webhooks TEXT NOT NULL,
      PRIMARY KEY (username, kind)) WITHOUT ROWID`,
    );
    await ddl(db, `CREATE INDEX notification_subscriptions_by_kind ON notification_subscriptions (kind)`);
    // a webhook delivers what its owner may see, in the owner's language; the secret signs (it is needed in clear to
    // compute an HMAC) and is shown once, at creation
    await ddl(
      db,
      `CREATE TABLE notification_webhooks (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, url TEXT NOT NULL, preset TEXT NOT NULL, format TEXT NOT NULL,
      secret TEXT, enabled INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL)`,
    );
    // the outbox: one row per delivery (event x recipient x channel x target), written in the transaction of the event
    // where there is one; a delivery is pending until sent, or failed after its last attempt (never deleted silently)
    await ddl(
      db,
      `CREATE TABLE notification_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, event_key TEXT NOT NULL, kind TEXT NOT NULL, recipient TEXT NOT NULL,
      channel TEXT NOT NULL, target TEXT NOT NULL, message TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
      next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, sent_at INTEGER, last_error TEXT,
      UNIQUE (event_key, recipient, channel, target))`,
    );
    await ddl(db, `CREATE INDEX notification_outbox_due ON notification_outbox (status, next_at)`);
  },
};

export const notifyMigrations: Record<string, Migration> = {
  // each user's notification subscriptions, the admin's webhooks and the outbox of deliveries
  '0025_notifications': notificationsMigration,
};
