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

  routeOf(router, getSubscriptions, async (req, res) => {
    res.json(await notifier.subscriptionsOf(who(req)));
  });

  routeOf(router, putSubscriptions, async (req, res, { body }) => {
    res.json(await notifier.setSubscriptions(who(req), body));
  });

  routeOf(router, listWebhooks, async (_req, res) => {
    res.json(await notifier.webhooks.list());
  });

  routeOf(router, createWebhook, async (req, res, { body }) => {
    res.status(201).json(await notifier.webhooks.create(actor(req), body));
  });

  routeOf(router, changeWebhook, async (req, res, { params, body }) => {
    res.json(await notifier.webhooks.update(actor(req), params.id, body));
  });

  routeOf(router, deleteWebhook, async (req, res, { params, body }) => {
    res.json(await notifier.removeWebhook(actor(req), params.id, body.reason));
  });

  routeOf(router, listDeliveries, async (_req, res, { query }) => {
    res.json(await notifier.deliveries(query));
  });

  routeOf(router, retryDelivery, async (req, res, { params }) => {
    res.json(await notifier.retry(actor(req), params.id));
  });

  routeOf(router, testNotification, async (req, res, { body }) => {
    res.json(await notifier.test(who(req), body));
  });

  return router;
}
