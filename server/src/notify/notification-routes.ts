// REST routes of the notifications (contract: protocols/src/api/notifications.ts): a user's own subscriptions, the
// admin's webhooks and delivery log, a test message.
import express, { type Request } from 'express';
import { LabtraceError, parseWith } from '@labtrace/protocols';
import {
  changeWebhook,
  createWebhook,
  deleteWebhook,
  listDeliveries,
  putSubscriptions,
  retryDelivery,
  testNotification,
} from '@labtrace/protocols/api/notifications';
import { principalOf, route } from '../auth/policy.js';
import type { Principal } from '../auth/users.js';
import type { Notifier } from './notifier.js';

function who(req: Request): Principal {
  const principal = principalOf(req);
  // the policy lets no anonymous request reach these handlers; this is the type's proof of it
  if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
  return principal;
}

const actor = (req: Request): { username: string; role: string } => {
  const p = who(req);
  return { username: p.username, role: p.role };
};

export function notificationRoutes(notifier: Notifier): express.Router {
  const router = express.Router();

  route(router, 'GET', '/api/notifications/subscriptions', (req, res) => {
    res.json(notifier.subscriptionsOf(who(req)));
  });

  route(router, 'PUT', '/api/notifications/subscriptions', (req, res) => {
    const input = parseWith(putSubscriptions.body, req.body, 'body', 'E_BAD_REQUEST');
    res.json(notifier.setSubscriptions(who(req), input));
  });

  route(router, 'GET', '/api/notifications/webhooks', (_req, res) => {
    res.json(notifier.webhooks.list());
  });

  route(router, 'POST', '/api/notifications/webhooks', (req, res) => {
    const input = parseWith(createWebhook.body, req.body, 'body', 'E_BAD_REQUEST');
    res.status(201).json(notifier.webhooks.create(actor(req), input));
  });

  route(router, 'PATCH', '/api/notifications/webhooks/:id', (req, res) => {
    const { id } = parseWith(changeWebhook.params, req.params, 'path', 'E_BAD_REQUEST');
    const change = parseWith(changeWebhook.body, req.body, 'body', 'E_BAD_REQUEST');
    res.json(notifier.webhooks.update(actor(req), id, change));
  });

  route(router, 'DELETE', '/api/notifications/webhooks/:id', (req, res) => {
    const { id } = parseWith(deleteWebhook.params, req.params, 'path', 'E_BAD_REQUEST');
    const { reason } = parseWith(deleteWebhook.body, req.body ?? {}, 'body', 'E_BAD_REQUEST');
    res.json(notifier.removeWebhook(actor(req), id, reason));
  });

  route(router, 'GET', '/api/notifications/deliveries', (req, res) => {
    const query = parseWith(listDeliveries.query, req.query, 'query', 'E_BAD_REQUEST');
    res.json(notifier.deliveries(query));
  });

  route(router, 'POST', '/api/notifications/deliveries/:id/retry', (req, res) => {
    const { id } = parseWith(retryDelivery.params, req.params, 'path', 'E_BAD_REQUEST');
    res.json(notifier.retry(actor(req), id));
  });

  route(router, 'POST', '/api/notifications/test', async (req, res) => {
    const target = parseWith(testNotification.body, req.body, 'body', 'E_BAD_REQUEST');
    res.json(await notifier.test(who(req), target));
  });

  return router;
}
