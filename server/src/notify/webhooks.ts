// The webhooks the admin registers. Each belongs to a user (its owner): it delivers what that user may see, in that
// user's language and zone, for the kinds the owner subscribes it to. Its secret is shown once, at creation (or at a
// rotation); lists show whether there is one and the URL with its credentials masked. Its queries run through Kysely
// on the store's database (SQLite or PostgreSQL), each change in one transaction with its audit-trail entry;
// getNow() is the synchronous twin the notifier needs for an event heard inside a synchronous SQLite transaction.
import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { z } from 'zod';
import { LabtraceError } from '@labtrace/protocols';
import type { webhookChangeSchema, webhookInputSchema } from '@labtrace/protocols/api/notifications';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Users } from '../auth/users.js';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import { maskUrl, newSecret, secretKey, type Preset, type WebhookTarget } from './webhook-request.js';

export type WebhookInput = z.output<typeof webhookInputSchema>;
export type WebhookChange = z.output<typeof webhookChangeSchema>;

export interface WebhookView {
  id: string;
  name: string;
  owner: string;
  preset: Preset;
  format: 'text' | 'markdown';
  url: string;
  hasSecret: boolean;
  enabled: boolean;
  createdBy: string;
  createdAt: number;
}

export interface Webhook extends WebhookTarget {
  id: string;
  name: string;
  owner: string;
  enabled: boolean;
}

interface Row {
  id: string;
  name: string;
  owner: string;
  url: string;
  preset: string;
  format: string;
  secret: string | null;
  enabled: number;
  created_by: string;
  created_at: number;
}

const view = (r: Row): WebhookView => ({
  id: r.id,
  name: r.name,
  owner: r.owner,
  preset: r.preset as Preset,
  format: r.format as WebhookView['format'],
  url: maskUrl(r.url),
  hasSecret: r.secret !== null,
  enabled: Number(r.enabled) === 1,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

/** what the audit trail keeps of a webhook: never its secret, nor the credentials in its URL */
const audited = (r: Row): Record<string, unknown> => ({ ...view(r) });

/** the secret a preset takes: generic a Standard Webhooks one (made when left out), the robots their own or none */
function secretFor(preset: Preset, given: string | undefined): string | null {
  if (preset === 'generic') {
    if (given === undefined) return newSecret();
    secretKey(given);
    return given;
  }
  if (preset === 'wecom' && given !== undefined)
    throw new LabtraceError('E_BAD_REQUEST', 'body: secret: a WeCom group robot signs nothing (its key is in the URL); leave it out');
  return given ?? null;
}

const webhook = (r: Row): Webhook => ({
  id: r.id,
  name: r.name,
  owner: r.owner,
  url: r.url,
  preset: r.preset as Preset,
  format: r.format as Webhook['format'],
  secret: r.secret,
  enabled: Number(r.enabled) === 1,
});

export class Webhooks {
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly users: Users,
    private readonly audit: AuditTrail,
    private readonly now: () => number,
    private readonly database?: LabDatabase,
  ) {}

  /** the row (inside the transaction `db`; `lock`: held until its end on PostgreSQL, SQLite has one writer) */
  private async row(id: string, db: Kysely<Tables> = this.store, lock = false): Promise<Row | undefined> {
    return db
      .selectFrom('notification_webhooks')
      .selectAll()
      .where('id', '=', id)
      .$if(lock && dialectOf(db as unknown as Kysely<unknown>) === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
  }

  async get(id: string, db: Kysely<Tables> = this.store): Promise<Webhook | undefined> {
    const r = await this.row(id, db);
    return r === undefined ? undefined : webhook(r);
  }

  /** get() as one synchronous statement, for an event heard inside a module's synchronous transaction */
  getNow(id: string): Webhook | undefined {
    if (this.database === undefined) throw new Error('the webhooks have no synchronous SQLite store');
    const r = this.database.sqlite.prepare('SELECT * FROM notification_webhooks WHERE id = ?').get(id) as Row | undefined;
    return r === undefined ? undefined : webhook(r);
  }

  async list(owner?: string): Promise<WebhookView[]> {
    const rows = await this.store
      .selectFrom('notification_webhooks')
      .selectAll()
      .$if(owner !== undefined, (q) => q.where('owner', '=', owner as string))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(view);
  }

  async create(actor: Actor, input: WebhookInput): Promise<WebhookView & { secret: string | null }> {
    if ((await this.users.get(input.owner)) === undefined) throw new LabtraceError('E_BAD_REQUEST', `body: owner: no user "${input.owner}"`);
    const secret = secretFor(input.preset, input.secret);
    const at = this.now();
    return this.store.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('notification_webhooks')
        .values({
          id: `wh-${randomBytes(6).toString('hex')}`,
          name: input.name,
          owner: input.owner,
          url: input.url,
          preset: input.preset,
          format: input.format,
          secret,
          enabled: 1,
          created_by: actor.username,
          created_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, { action: 'create', recordType: 'notification-webhook', recordId: row.id, newValue: audited(row) });
      return { ...view(row), secret };
    });
  }

  async update(actor: Actor, id: string, change: WebhookChange): Promise<WebhookView & { secret?: string }> {
    return this.store.transaction().execute(async (trx) => {
      const before = await this.row(id, trx, true);
      if (before === undefined) throw new LabtraceError('E_NOT_FOUND', `webhook "${id}" is not known`);
      let secret: string | undefined;
      if (change.rotateSecret === true) {
        if (before.preset !== 'generic')
          throw new LabtraceError('E_BAD_REQUEST', `body: rotateSecret: a ${before.preset} robot's secret is set in the robot, not here`);
        secret = newSecret();
      }
      const after = await trx
        .updateTable('notification_webhooks')
        .set({
          name: change.name ?? before.name,
          url: change.url ?? before.url,
          format: change.format ?? before.format,
          enabled: change.enabled === undefined ? before.enabled : change.enabled ? 1 : 0,
          secret: secret ?? before.secret,
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, {
        action: 'update',
        recordType: 'notification-webhook',
        recordId: id,
        oldValue: audited(before),
        newValue: { ...audited(after), ...(secret === undefined ? {} : { secretRotated: true }) },
        reason: change.reason,
      });
      return { ...view(after), ...(secret === undefined ? {} : { secret }) };
    });
  }

  /** Deletes a webhook inside the caller's transaction `trx` (which fails its pending deliveries), with its audit entry. */
  async remove(trx: Transaction<Tables>, actor: Actor, id: string, reason: string): Promise<void> {
    const before = await this.row(id, trx, true);
    if (before === undefined) throw new LabtraceError('E_NOT_FOUND', `webhook "${id}" is not known`);
    await trx.deleteFrom('notification_webhooks').where('id', '=', id).execute();
    await this.audit.recordIn(trx, actor, { action: 'delete', recordType: 'notification-webhook', recordId: id, oldValue: audited(before), reason });
  }
}
