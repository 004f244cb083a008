// The webhooks the admin registers. Each belongs to a user (its owner): it delivers what that user may see, in that
// user's language and zone, for the kinds the owner subscribes it to. Its secret is shown once, at creation (or at a
// rotation); lists show whether there is one and the URL with its credentials masked.
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { LabtraceError } from '@labtrace/protocols';
import type { webhookChangeSchema, webhookInputSchema } from '@labtrace/protocols/api/notifications';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Users } from '../auth/users.js';
import type { LabDatabase } from '../store/database.js';
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
  preset: Preset;
  format: 'text' | 'markdown';
  secret: string | null;
  enabled: number;
  created_by: string;
  created_at: number;
}

const view = (r: Row): WebhookView => ({
  id: r.id,
  name: r.name,
  owner: r.owner,
  preset: r.preset,
  format: r.format,
  url: maskUrl(r.url),
  hasSecret: r.secret !== null,
  enabled: r.enabled === 1,
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

export class Webhooks {
  constructor(
    private readonly database: LabDatabase,
    private readonly users: Users,
    private readonly audit: AuditTrail,
    private readonly now: () => number,
  ) {}

  private row(id: string): Row | undefined {
    return this.database.sqlite.prepare('SELECT * FROM notification_webhooks WHERE id = ?').get(id) as Row | undefined;
  }

  get(id: string): Webhook | undefined {
    const r = this.row(id);
    return r === undefined
      ? undefined
      : { id: r.id, name: r.name, owner: r.owner, url: r.url, preset: r.preset, format: r.format, secret: r.secret, enabled: r.enabled === 1 };
  }

  list(owner?: string): WebhookView[] {
    const rows = (
      owner === undefined
        ? this.database.sqlite.prepare('SELECT * FROM notification_webhooks ORDER BY created_at, id').all()
        : this.database.sqlite.prepare('SELECT * FROM notification_webhooks WHERE owner = ? ORDER BY created_at, id').all(owner)
    ) as Row[];
    return rows.map(view);
  }

  create(actor: Actor, input: WebhookInput): WebhookView & { secret: string | null } {
    if (this.users.get(input.owner) === undefined) throw new LabtraceError('E_BAD_REQUEST', `body: owner: no user "${input.owner}"`);
    const secret = secretFor(input.preset, input.secret);
    const db = this.database.sqlite;
    return db.transaction(() => {
      const id = `wh-${randomBytes(6).toString('hex')}`;
      db.prepare(
        `INSERT INTO notification_webhooks (id, name, owner, url, preset, format, secret, enabled, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
      ).run(id, input.name, input.owner, input.url, input.preset, input.format, secret, actor.username, this.now());
      const row = this.row(id) as Row;
      this.audit.record(actor, { action: 'create', recordType: 'notification-webhook', recordId: id, newValue: audited(row) });
      return { ...view(row), secret };
    })();
  }

  update(actor: Actor, id: string, change: WebhookChange): WebhookView & { secret?: string } {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const before = this.row(id);
      if (before === undefined) throw new LabtraceError('E_NOT_FOUND', `webhook "${id}" is not known`);
      let secret: string | undefined;
      if (change.rotateSecret === true) {
        if (before.preset !== 'generic')
          throw new LabtraceError('E_BAD_REQUEST', `body: rotateSecret: a ${before.preset} robot's secret is set in the robot, not here`);
        secret = newSecret();
      }
      db.prepare('UPDATE notification_webhooks SET name = ?, url = ?, format = ?, enabled = ?, secret = ? WHERE id = ?').run(
        change.name ?? before.name,
        change.url ?? before.url,
        change.format ?? before.format,
        change.enabled === undefined ? before.enabled : change.enabled ? 1 : 0,
        secret ?? before.secret,
        id,
      );
      const after = this.row(id) as Row;
      this.audit.record(actor, {
        action: 'update',
        recordType: 'notification-webhook',
        recordId: id,
        oldValue: audited(before),
        newValue: { ...audited(after), ...(secret === undefined ? {} : { secretRotated: true }) },
        reason: change.reason,
      });
      return { ...view(after), ...(secret === undefined ? {} : { secret }) };
    })();
  }

  /** Deletes a webhook (inside the caller's transaction, which fails its pending deliveries). */
  remove(actor: Actor, id: string, reason: string): void {
    const before = this.row(id);
    if (before === undefined) throw new LabtraceError('E_NOT_FOUND', `webhook "${id}" is not known`);
    this.database.sqlite.prepare('DELETE FROM notification_webhooks WHERE id = ?').run(id);
    this.audit.record(actor, { action: 'delete', recordType: 'notification-webhook', recordId: id, oldValue: audited(before), reason });
  }
}
