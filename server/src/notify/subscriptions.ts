// Each user's notification address and, per event kind, the channels: e-mail and some of the user's own webhooks.
// Its queries run through Kysely on the store's database (SQLite or PostgreSQL); subscribersNow() is the synchronous
// twin the notifier needs for an event heard inside another module's synchronous SQLite transaction.
import type { Kysely } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
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

interface SubscriberRow {
  username: string;
  email: number;
  webhooks: string;
  address: string | null;
}

const subscriber = (r: SubscriberRow): Subscriber => ({
  username: r.username,
  address: r.address,
  choice: { email: Number(r.email) === 1, webhooks: JSON.parse(r.webhooks) as string[] },
});

export class Subscriptions {
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly now: () => number,
    private readonly database?: LabDatabase,
  ) {}

  async address(username: string): Promise<string | null> {
    const row = await this.store.selectFrom('notification_settings').select('email').where('username', '=', username).executeTakeFirst();
    return row?.email ?? null;
  }

  async of(username: string): Promise<Record<NotificationKind, ChannelChoice>> {
    const rows = await this.store
      .selectFrom('notification_subscriptions')
      .select(['kind', 'email', 'webhooks'])
      .where('username', '=', username)
      .execute();
    const out = Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, { email: false, webhooks: [] as string[] }])) as Record<
      NotificationKind,
      ChannelChoice
    >;
    for (const r of rows)
      if (r.kind in out) out[r.kind as NotificationKind] = { email: Number(r.email) === 1, webhooks: JSON.parse(r.webhooks) as string[] };
    return out;
  }

  /** Replaces a user's address (when given) and every subscription (the kinds left out are not notified). */
  async set(username: string, address: string | null | undefined, kinds: Partial<Record<NotificationKind, ChannelChoice>>): Promise<void> {
    const at = this.now();
    await this.store.transaction().execute(async (trx) => {
      // the user's settings row written first, always: on PostgreSQL its row lock holds two replacements at once (two
      // nodes) one after the other, so that the second does not insert next to the first's rows (SQLite has one writer)
      await trx
        .insertInto('notification_settings')
        .values({ username, email: address ?? null, updated_at: at })
        .onConflict((oc) =>
          oc
            .column('username')
            .doUpdateSet((eb) =>
              address === undefined
                ? { updated_at: eb.ref('excluded.updated_at') }
                : { email: eb.ref('excluded.email'), updated_at: eb.ref('excluded.updated_at') },
            ),
        )
        .execute();
      await trx.deleteFrom('notification_subscriptions').where('username', '=', username).execute();
      const rows = Object.entries(kinds)
        .filter(([, c]) => c.email || c.webhooks.length > 0)
        .map(([kind, c]) => ({ username, kind, email: c.email ? 1 : 0, webhooks: JSON.stringify([...new Set(c.webhooks)]) }));
      if (rows.length > 0) await trx.insertInto('notification_subscriptions').values(rows).execute();
    });
  }

  /** everyone subscribed to a kind by some channel (inside the transaction `db`, when given) */
  async subscribers(kind: NotificationKind, db: Kysely<Tables> = this.store): Promise<Subscriber[]> {
    const rows = await db
      .selectFrom('notification_subscriptions as s')
      .leftJoin('notification_settings as n', 'n.username', 's.username')
      .select(['s.username', 's.email', 's.webhooks', 'n.email as address'])
      .where('s.kind', '=', kind)
      .orderBy('s.username')
      .execute();
    return rows.map(subscriber);
  }

  /** subscribers() as one synchronous statement, for an event heard inside a module's synchronous transaction */
  subscribersNow(kind: NotificationKind): Subscriber[] {
    if (this.database === undefined) throw new Error('the subscriptions have no synchronous SQLite store');
    const rows = this.database.sqlite
      .prepare(
        `SELECT s.username, s.email, s.webhooks, n.email AS address FROM notification_subscriptions s
         LEFT JOIN notification_settings n ON n.username = s.username WHERE s.kind = ? ORDER BY s.username`,
      )
      .all(kind) as SubscriberRow[];
    return rows.map(subscriber);
  }

  /** a deleted webhook leaves every subscription that named it (inside the caller's transaction `trx`) */
  async forgetWebhook(trx: Kysely<Tables>, id: string): Promise<void> {
    const rows = await trx
      .selectFrom('notification_subscriptions')
      .select(['username', 'kind', 'email', 'webhooks'])
      .where('webhooks', 'like', `%${id}%`)
      .execute();
    for (const r of rows) {
      const rest = (JSON.parse(r.webhooks) as string[]).filter((w) => w !== id);
      if (rest.length === 0 && Number(r.email) === 0)
        await trx.deleteFrom('notification_subscriptions').where('username', '=', r.username).where('kind', '=', r.kind).execute();
      else
        await trx
          .updateTable('notification_subscriptions')
          .set({ webhooks: JSON.stringify(rest) })
          .where('username', '=', r.username)
          .where('kind', '=', r.kind)
          .execute();
    }
  }
}
