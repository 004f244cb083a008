// REST routes of the notifications (contract: protocols/src/api/notifications.ts): a user's own subscriptions, the
// admin's webhooks and delivery log, a test message.
import express, { type Request } from 'express';
import { LabtraceError } from '@labtrace/protocols';
import {
  changeWebhook,
  createWebhook,
  deleteWebhook,
  getSubscriptions,
  listDeliveries,
  listWebhooks,
  putSubscriptions,
  retryDelivery,
  testNotification,
} from '@labtrace/protocols/api';
import { principalOf, routeOf } from '../auth/policy.js';
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

  routeOf(router, getSubscriptions, (req, res) => {
    res.json(notifier.subscriptionsOf(who(req)));
  });

  routeOf(router, putSubscriptions, (req, res, { body }) => {
    res.json(notifier.setSubscriptions(who(req), body));
  });

  routeOf(router, listWebhooks, (_req, res) => {
    res.json(notifier.webhooks.list());
  });

  routeOf(router, createWebhook, (req, res, { body }) => {
    res.status(201).json(notifier.webhooks.create(actor(req), body));
  });

  routeOf(router, changeWebhook, (req, res, { params, body }) => {
    res.json(notifier.webhooks.update(actor(req), params.id, body));
  });

  routeOf(router, deleteWebhook, (req, res, { params, body }) => {
    res.json(notifier.removeWebhook(actor(req), params.id, body.reason));
  });

  routeOf(router, listDeliveries, (_req, res, { query }) => {
    res.json(notifier.deliveries(query));
  });

  routeOf(router, retryDelivery, (req, res, { params }) => {
    res.json(notifier.retry(actor(req), params.id));
  });

  routeOf(router, testNotification, async (req, res, { body }) => {
    res.json(await notifier.test(who(req), body));
  });

  return router;
}
