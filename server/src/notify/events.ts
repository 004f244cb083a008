// What the lab tells people about: the kinds of notification, the events behind them, and the route of the REST API
// that shows each one. A user receives an event only when that route would show it to them (notifier.ts asks the
// policy and the owning module with the user as viewer), so notifications never reach further than the API.
import type { RunAlarm } from '@labtrace/protocols';
import { NOTIFICATION_KINDS } from '@labtrace/protocols/api/notifications';
import type { Method } from '../auth/policy.js';

export { NOTIFICATION_KINDS };
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** the route whose rule decides who may hear of an event of the kind */
export const SHOWN_BY: Record<NotificationKind, { method: Method; path: string }> = {
  alarm: { method: 'GET', path: '/api/runs/:id/alarms' },
  'run-completed': { method: 'GET', path: '/api/runs/:id' },
  'draft-awaiting-signature': { method: 'GET', path: '/api/certificates/:id' },
  'calibration-due': { method: 'GET', path: '/api/calibration/reminders' },
  'gateway-offline': { method: 'GET', path: '/api/gateways' },
  'security-event': { method: 'GET', path: '/api/security-events' },
};

export type NotifyEvent =
  | { kind: 'alarm'; at: number; run: string; organization: string; event: 'raised' | 'escalated'; seq: number; alarm: RunAlarm }
  | {
      kind: 'run-completed';
      at: number;
      run: string;
      organization: string;
      sample: string;
      method: { id: string; version: number; standard: string };
    }
  | { kind: 'draft-awaiting-signature'; at: number; certificate: string; run: string; organization: string; requestedBy: string }
  | { kind: 'calibration-due'; at: number; instrument: string; status: 'due-soon' | 'expired'; dueAt: number }
  | { kind: 'gateway-offline'; at: number; gateway: string; since: number }
  | { kind: 'security-event'; at: number; id: number; gateway: string; event: string; severity: string; detail: string };

/** a test message a user sends to one of their channels */
export interface TestEvent {
  kind: 'test';
  at: number;
  requestedBy: string;
}

/**
 * The event's identity: one delivery per recipient and channel however often it is announced (a restart that looks at
 * the calibrations again, an alarm event heard twice). A calibration is due once per due date and status.
 */
export function eventKey(e: NotifyEvent): string {
  switch (e.kind) {
    case 'alarm':
      return `alarm:${e.run}:${e.seq}`;
    case 'run-completed':
      return `run-completed:${e.run}`;
    case 'draft-awaiting-signature':
      return `draft:${e.certificate}`;
    case 'calibration-due':
      return `calibration:${e.instrument}:${e.dueAt}:${e.status}`;
    case 'gateway-offline':
      return `gateway-offline:${e.gateway}:${e.since}`;
    case 'security-event':
      return `security:${e.id}`;
  }
}

/** the `type` a webhook's JSON carries (Standard Webhooks: a dotted, hierarchical name) */
export function eventType(e: NotifyEvent | TestEvent): string {
  switch (e.kind) {
    case 'alarm':
      return `alarm.${e.event}`;
    case 'run-completed':
      return 'run.completed';
    case 'draft-awaiting-signature':
      return 'certificate.draft';
    case 'calibration-due':
      return `calibration.${e.status}`;
    case 'gateway-offline':
      return 'gateway.offline';
    case 'security-event':
      return 'security.event';
    case 'test':
      return 'test';
  }
}

/** the event's facts as a webhook's `data` carries them (what the recipient may see anyway) */
export function eventData(e: NotifyEvent | TestEvent): Record<string, unknown> {
  const { kind, ...data } = e;
  void kind;
  return data;
}
