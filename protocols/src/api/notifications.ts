// The notifications' routes: each user's subscriptions (which events, by e-mail and by which of their webhooks), the
// admin's webhooks (generic JSON signed per Standard Webhooks 1.0, or a WeCom, DingTalk or Feishu group robot), the
// delivery log, and a test message. Times are milliseconds since the epoch (UTC).
import { z } from 'zod';
import { defineRoute } from './contract.js';

export const NOTIFICATION_KINDS = [
  'alarm',
  'run-completed',
  'draft-awaiting-signature',
  'calibration-due',
  'gateway-offline',
  'security-event',
] as const;
export const notificationKindSchema = z.enum(NOTIFICATION_KINDS);
export type NotificationKindName = z.output<typeof notificationKindSchema>;

export const WEBHOOK_PRESETS = ['generic', 'wecom', 'dingtalk', 'feishu'] as const;
export const webhookPresetSchema = z.enum(WEBHOOK_PRESETS);

const webhookId = z.string().regex(/^wh-[0-9a-f]{12}$/, 'expected a webhook id such as wh-0123456789ab');

/** one event kind's channels for a user: e-mail, and some of the user's own webhooks */
export const channelChoiceSchema = z.strictObject({
  email: z.boolean().default(false),
  webhooks: z.array(webhookId).max(20).default([]),
});

export const subscriptionsSchema = z.strictObject({
  /** where e-mail goes; null: no e-mail */
  email: z.email('expected an e-mail address').max(320).nullable(),
  kinds: z.record(notificationKindSchema, channelChoiceSchema),
  /** the kinds the user's role may receive (the others are never sent to them) */
  allowed: z.array(notificationKindSchema),
  /** the user's own webhooks, to choose from */
  webhooks: z.array(z.strictObject({ id: webhookId, name: z.string(), preset: webhookPresetSchema, enabled: z.boolean() })),
  /** whether the server has an SMTP relay (without one, e-mail cannot be chosen) */
  emailAvailable: z.boolean(),
});

export const subscriptionsInputSchema = z.strictObject({
  email: z.email('expected an e-mail address').max(320).nullable().optional(),
  /** the kinds left out are not notified */
  kinds: z.partialRecord(notificationKindSchema, channelChoiceSchema),
});

/** a webhook as listed: its secret is never shown again after creation; the URL's credentials are masked */
export const webhookViewSchema = z.strictObject({
  id: webhookId,
  name: z.string(),
  /** whose view it carries: it delivers the events that user may see, in that user's language and zone */
  owner: z.string(),
  preset: webhookPresetSchema,
  format: z.enum(['text', 'markdown']),
  url: z.string(),
  hasSecret: z.boolean(),
  enabled: z.boolean(),
  createdBy: z.string(),
  createdAt: z.number(),
});

export const webhookInputSchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  owner: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, 'expected a username'),
  url: z
    .string()
    .max(2000)
    .regex(/^https?:\/\/[^/\s?#]+[^\s]*$/, 'expected an http(s) URL')
    .refine((u) => URL.canParse(u), 'expected an http(s) URL'),
  preset: webhookPresetSchema.default('generic'),
  format: z.enum(['text', 'markdown']).default('markdown'),
  /**
   * generic: a Standard Webhooks secret (whsec_ + base64 of 24 to 64 bytes), made by the server when left out;
   * dingtalk and feishu: the robot's signing secret from its security settings (optional); wecom: none
   */
  secret: z.string().min(8).max(200).optional(),
});

export const webhookChangeSchema = z.strictObject({
  name: z.string().trim().min(1).max(100).optional(),
  url: webhookInputSchema.shape.url.optional(),
  format: z.enum(['text', 'markdown']).optional(),
  enabled: z.boolean().optional(),
  /** generic only: a new secret, shown once in the answer */
  rotateSecret: z.literal(true).optional(),
  reason: z.string().trim().min(1, 'required: why the webhook changes').max(500),
});

export const DELIVERY_STATUSES = ['pending', 'sent', 'failed'] as const;

export const deliverySchema = z.strictObject({
  id: z.number(),
  kind: z.string(),
  type: z.string(),
  recipient: z.string(),
  channel: z.enum(['email', 'webhook']),
  /** the e-mail address, or the webhook id */
  target: z.string(),
  subject: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number(),
  nextAt: z.number().nullable(),
  createdAt: z.number(),
  sentAt: z.number().nullable(),
  lastError: z.string().nullable(),
});
export type Delivery = z.output<typeof deliverySchema>;

export const getSubscriptions = defineRoute({ method: 'GET', path: '/api/notifications/subscriptions', response: subscriptionsSchema });
export const putSubscriptions = defineRoute({
  method: 'PUT',
  path: '/api/notifications/subscriptions',
  body: subscriptionsInputSchema,
  response: subscriptionsSchema,
});
export const listWebhooks = defineRoute({ method: 'GET', path: '/api/notifications/webhooks', response: z.array(webhookViewSchema) });
export const createWebhook = defineRoute({
  method: 'POST',
  path: '/api/notifications/webhooks',
  body: webhookInputSchema,
  /** the secret, this once */
  response: webhookViewSchema.extend({ secret: z.string().nullable() }),
});
export const changeWebhook = defineRoute({
  method: 'PATCH',
  path: '/api/notifications/webhooks/:id',
  params: z.strictObject({ id: webhookId }),
  body: webhookChangeSchema,
  response: webhookViewSchema.extend({ secret: z.string().optional() }),
});
export const deleteWebhook = defineRoute({
  method: 'DELETE',
  path: '/api/notifications/webhooks/:id',
  params: z.strictObject({ id: webhookId }),
  body: z.strictObject({ reason: z.string().trim().min(1, 'required: why the webhook is deleted').max(500) }),
  response: z.strictObject({ deleted: z.string(), failedDeliveries: z.number() }),
});
export const listDeliveries = defineRoute({
  method: 'GET',
  path: '/api/notifications/deliveries',
  query: z.strictObject({
    status: z.enum(DELIVERY_STATUSES).optional(),
    /** newest first; the page after the delivery with this id */
    before: z.coerce.number().int().min(1).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  }),
  response: z.strictObject({
    deliveries: z.array(deliverySchema),
    /** `before` of the next page; null on the last */
    next: z.number().nullable(),
    counts: z.strictObject({ pending: z.number(), sent: z.number(), failed: z.number() }),
  }),
});
export const retryDelivery = defineRoute({
  method: 'POST',
  path: '/api/notifications/deliveries/:id/retry',
  params: z.strictObject({ id: z.coerce.number().int().min(1) }),
  response: deliverySchema,
});
export const testNotification = defineRoute({
  method: 'POST',
  path: '/api/notifications/test',
  /** e-mail to the caller's own address, or one webhook (the caller's own; an admin's any) */
  body: z.union([z.strictObject({ channel: z.literal('email') }), z.strictObject({ channel: z.literal('webhook'), webhook: webhookId })]),
  /** the delivery after its first attempt: sent, or pending with the error and the time of the next attempt */
  response: deliverySchema,
});
