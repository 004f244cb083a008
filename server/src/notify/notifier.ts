// Outbound notifications, as one feature with a start and a stop: it listens to what the lab already announces
// (run alarms, run states, security events, gateways leaving the broker, report drafts, calibrations falling due),
// finds who subscribed and may see each event (the rule and visibility the REST API applies), renders the words in
// each recipient's language and zone, and writes one outbox row per delivery. A sender loop delivers the rows due,
// retrying with exponential back-off and jitter up to a cap, then records them as failed.
//
// The queries run through Kysely on the store's database (SQLite or PostgreSQL); several nodes may announce one
// event (one delivery each: the outbox's unique key) and drain one outbox (each row claimed by one sender). A security
// event's deliveries are queued in the transaction that records it (a hook of SecurityEvents: announceIn), so that
// they commit, or roll back, with the event, on the one node that records it. What stays synchronous, given the SQLite
// LabDatabase: the security events the SQLite ingest records inside its synchronous transaction (announceNow).
import { randomUUID } from 'node:crypto';
import { LabtraceError, type RunAlarmEvent } from '@labtrace/protocols';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import { ruleFor } from '../auth/policy.js';
import type { Principal, Users, UserView } from '../auth/users.js';
import { seesAll, type Viewer } from '../auth/visibility.js';
import type { MessageBus } from '../broker/bus.js';
import type { Calibration } from '../lab/calibration.js';
import type { Run, Runs } from '../lab/runs.js';
import type { Logger } from '../log.js';
import { readSecretFile } from '../secret-env.js';
import type { Kysely, Transaction } from 'kysely';
import type { LabDatabase, Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { RecordingHook, SecurityEvent, SecurityEvents } from '../trust/security-events.js';
import type { NotificationsConfig } from './config.js';
import { eventData, eventKey, eventType, NOTIFICATION_KINDS, SHOWN_BY, type NotificationKind, type NotifyEvent, type TestEvent } from './events.js';
import { knownLocale, knownZone, render, type Audience } from './messages.js';
import { backoffDelay, Outbox, type Channel, type ClaimedRow, type DeliveryStatus, type NewDelivery, type OutboxRow } from './outbox.js';
import { EmailSender, postWebhook, type Outcome } from './senders.js';
import { Subscriptions, type ChannelChoice, type Subscriber } from './subscriptions.js';
import { Webhooks, type Webhook } from './webhooks.js';

const SEVERITY_RANK = { info: 0, notice: 1, alarm: 2 } as const;
/** rows one pass of the sender takes at most (sent concurrently) */
const BATCH = 20;

type Recipient = Viewer & { role: UserView['role'] };
type SecurityNotice = Extract<NotifyEvent, { kind: 'security-event' }>;

export interface NotifierDeps {
  /** the store every query of the notifications goes through */
  store: Kysely<Tables>;
  /**
   * the SQLite store, for the synchronous twin announceNow (the security events the SQLite ingest records inside its
   * synchronous transaction); left out on a store without one (PostgreSQL)
   */
  database?: LabDatabase | undefined;
  users: Users;
  audit: AuditTrail;
  runs: Pick<Runs, 'on' | 'off' | 'getIn'>;
  inspection: { on(e: 'alarm', f: (e: RunAlarmEvent) => void): unknown; off(e: 'alarm', f: (e: RunAlarmEvent) => void): unknown };
  events: Pick<SecurityEvents, 'on' | 'off' | 'hookRecording' | 'unhookRecording'>;
  broker: Pick<MessageBus, 'on' | 'off'>;
  calibration: Pick<Calibration, 'reminders'>;
  /**
   * a certificate as the viewer may see it (undefined: not shown to them, as GET /api/certificates/:id answers), read
   * on `db` (the notifier's transaction)
   */
  certificateFor: (db: Kysely<Tables>, viewer: Recipient, id: string) => Promise<unknown>;
  config: NotificationsConfig;
  /** the SMTP password (smtpPasswordFrom); never logged */
  smtpPassword?: string | undefined;
  /** where the dashboard is reached, for links */
  baseUrl: () => string;
  logger: Logger;
  now?: () => number;
  /** the jitter's randomness (tests may fix it) */
  random?: () => number;
}

/** The SMTP password: LABTRACE_SMTP_PASSWORD, else the file notifications.smtp.passwordFile names. */
export function smtpPasswordFrom(config: NotificationsConfig, env: NodeJS.ProcessEnv): string | undefined {
  const value = env['LABTRACE_SMTP_PASSWORD'];
  if (value !== undefined && value !== '') return value;
  const file = config.smtp?.passwordFile;
  if (file !== undefined) return readSecretFile(file, 'notifications.smtp.passwordFile');
  if (config.smtp?.username !== undefined)
    throw new LabtraceError('E_CONFIG', 'notifications.smtp.passwordFile: required with a username unless LABTRACE_SMTP_PASSWORD is set');
  return undefined;
}

export interface DeliveryView {
  id: number;
  kind: string;
  type: string;
  recipient: string;
  channel: Channel;
  target: string;
  subject: string;
  status: DeliveryStatus;
  attempts: number;
  nextAt: number | null;
  createdAt: number;
  sentAt: number | null;
  lastError: string | null;
}

export const deliveryView = (r: OutboxRow): DeliveryView => ({
  id: r.id,
  kind: r.kind,
  type: r.message.type,
  recipient: r.recipient,
  channel: r.channel,
  target: r.target,
  subject: r.message.message.subject,
  status: r.status,
  attempts: r.attempts,
  nextAt: r.status === 'pending' ? r.nextAt : null,
  createdAt: r.createdAt,
  sentAt: r.sentAt,
  lastError: r.lastError,
});

export interface SubscriptionsView {
  email: string | null;
  kinds: Record<NotificationKind, ChannelChoice>;
  allowed: NotificationKind[];
  webhooks: { id: string; name: string; preset: string; enabled: boolean }[];
  emailAvailable: boolean;
}

export class Notifier {
  readonly outbox: Outbox;
  readonly subscriptions: Subscriptions;
  readonly webhooks: Webhooks;
  private readonly now: () => number;
  private readonly random: () => number;
  private email: EmailSender | undefined;
  private running = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private calibrationTimer: NodeJS.Timeout | undefined;
  private kick: NodeJS.Immediate | undefined;
  private pumping: Promise<void> | undefined;
  private again = false;
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: NotifierDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.outbox = new Outbox(deps.store, deps.database);
    this.subscriptions = new Subscriptions(deps.store, this.now, deps.database);
    this.webhooks = new Webhooks(deps.store, deps.users, deps.audit, this.now, deps.database);
  }

  /**
   * How long a sender's claim on a row lasts: past it, another node takes the row (its sender died). Longer than an
   * attempt can take (each step of one is bounded by timeoutMs), so that a row is never sent by two at once.
   */
  private get leaseMs(): number {
    return 3 * this.deps.config.timeoutMs + 10_000;
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    // the embedded SQLite store has one node: a row claimed by a sender is one of the last process (stopped, or
    // killed mid-send), released to go out now (on PostgreSQL another node's claim runs out after leaseMs)
    if (dialectOf(this.deps.store as unknown as Kysely<unknown>) === 'sqlite') await this.outbox.releaseClaims(this.now());
    if (config.smtp !== undefined) this.email = new EmailSender(config.smtp, this.deps.smtpPassword, config.timeoutMs);
    this.deps.inspection.on('alarm', this.onAlarm);
    this.deps.runs.on('state', this.onRunState);
    this.deps.events.hookRecording(this.recording);
    this.deps.events.on('event', this.onSecurityEvent);
    this.deps.broker.on('gatewayDisconnected', this.onGatewayGone);
    this.deps.broker.on('gatewayConnected', this.onGatewayBack);
    this.running = true;
    this.pollTimer = setInterval(() => this.wake(), config.pollMs);
    this.pollTimer.unref();
    void this.checkCalibrations();
    this.calibrationTimer = setInterval(() => void this.checkCalibrations(), config.calibrationCheckMs);
    this.calibrationTimer.unref();
    // deliveries left pending by the last process go out now
    this.wake();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.inspection.off('alarm', this.onAlarm);
    this.deps.runs.off('state', this.onRunState);
    this.deps.events.unhookRecording(this.recording);
    this.deps.events.off('event', this.onSecurityEvent);
    this.deps.broker.off('gatewayDisconnected', this.onGatewayGone);
    this.deps.broker.off('gatewayConnected', this.onGatewayBack);
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.calibrationTimer) clearInterval(this.calibrationTimer);
    if (this.kick) clearImmediate(this.kick);
    this.pollTimer = undefined;
    this.calibrationTimer = undefined;
    this.kick = undefined;
    for (const t of this.offlineTimers.values()) clearTimeout(t);
    this.offlineTimers.clear();
    // attempts under way finish (each bounded by timeoutMs); what they do not send stays pending for the next start
    await this.pumping;
    this.email?.close();
    this.email = undefined;
  }

  /** counts for /api/health: deliveries waiting, and those that failed for good */
  async status(): Promise<{ pending: number; failed: number; oldestPendingAt: number | null; email: boolean }> {
    const [pending, failed, oldestPendingAt] = await Promise.all([
      this.outbox.count('pending'),
      this.outbox.count('failed'),
      this.outbox.oldestPending(),
    ]);
    return { pending, failed, oldestPendingAt, email: this.deps.config.smtp !== undefined };
  }

  // ---- the events ----------------------------------------------------------------------------------------------

  private readonly onAlarm = (e: RunAlarmEvent): void => {
    // an escalation is told again, with the alarm as it stands after it (its severity, message and value)
    if (e.event !== 'raised' && e.event !== 'escalated') return;
    const event = e.event;
    // heard once the alarm event is stored: its deliveries are queued in a transaction of their own
    void this.guardAsync('alarm', async () => {
      const run = await this.deps.runs.getIn(this.deps.store, { role: 'admin', organization: null }, e.run);
      if (run === undefined) return;
      await this.announce({ kind: 'alarm', at: e.at, run: e.run, organization: run.organization, event, seq: e.seq, alarm: e.alarm });
    });
  };

  private readonly onRunState = (run: Run): void => {
    if (run.state !== 'completed') return;
    // heard once the run's change is committed: its deliveries are queued in a transaction of their own
    void this.guardAsync('run-completed', async () => {
      await this.announce({
        kind: 'run-completed',
        at: run.endedAt ?? this.now(),
        run: run.id,
        organization: run.organization,
        sample: run.sample,
        method: run.method,
      });
    });
  };

  /** a security event as notified; undefined below notifications.securityMinSeverity */
  private securityEvent(e: SecurityEvent): SecurityNotice | undefined {
    if (SEVERITY_RANK[e.severity] < SEVERITY_RANK[this.deps.config.securityMinSeverity]) return undefined;
    return { kind: 'security-event', at: e.at, id: e.id, gateway: e.gateway, event: e.kind, severity: e.severity, detail: e.detail };
  }

  /**
   * Told of every security event in the transaction that records it (SecurityEvents calls it; a failure is rolled
   * back alone and logged there, the event stands): its deliveries commit, or roll back, with it.
   */
  private readonly recording: RecordingHook = {
    in: async (trx, e) => {
      const event = this.securityEvent(e);
      if (event !== undefined) await this.announceIn(trx, event);
    },
    now: (e) => {
      const event = this.securityEvent(e);
      if (event === undefined) return;
      if (this.deps.database !== undefined) this.announceNow(event);
      // no synchronous twin: queued once the recording transaction (synchronous, so over by then) has ended
      else void this.guardAsync('security-event', () => this.announce(event));
    },
  };

  /** a security event told once its transaction committed: its deliveries were queued in it; they go out now */
  private readonly onSecurityEvent = (e: SecurityEvent): void => {
    if (this.securityEvent(e) !== undefined) this.wake();
  };

  private readonly onGatewayGone = (gateway: string): void => {
    const since = this.now();
    clearTimeout(this.offlineTimers.get(gateway));
    const timer = setTimeout(() => {
      this.offlineTimers.delete(gateway);
      void this.guardAsync('gateway-offline', () => this.announce({ kind: 'gateway-offline', at: this.now(), gateway, since }));
    }, this.deps.config.gatewayOfflineAfterMs);
    timer.unref();
    this.offlineTimers.set(gateway, timer);
  };

  private readonly onGatewayBack = (gateway: string): void => {
    clearTimeout(this.offlineTimers.get(gateway));
    this.offlineTimers.delete(gateway);
  };

  /** A draft report was requested and waits for a signatory (the certificates call this once it is committed). */
  draftRequested(c: { id: string; run: string; organization: string; requestedBy: string; requestedAt: number }): void {
    void this.guardAsync('draft-awaiting-signature', () =>
      this.announce({
        kind: 'draft-awaiting-signature',
        at: c.requestedAt,
        certificate: c.id,
        run: c.run,
        organization: c.organization,
        requestedBy: c.requestedBy,
      }),
    );
  }

  /** Calibrations due within calibration.dueSoonDays, or expired: told once per instrument, due date and status. */
  async checkCalibrations(): Promise<void> {
    await this.guardAsync('calibration-due', async () => {
      for (const r of await this.deps.calibration.reminders())
        if ((r.status === 'due-soon' || r.status === 'expired') && r.dueAt !== null)
          await this.announce({ kind: 'calibration-due', at: this.now(), instrument: r.instrument, status: r.status, dueAt: r.dueAt });
    });
  }

  /** A listener never throws into the module that announced (a person's act, a run's change). */
  private async guardAsync(kind: string, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.deps.logger.error({ part: 'notify', kind, err: (err as Error).message }, 'ALARM: notifications of an event could not be queued');
    }
  }

  // ---- who hears of it -----------------------------------------------------------------------------------------

  /** The user as a viewer, or undefined for one who may not sign in now (disabled, an auditor past the grant). */
  private recipientOf(user: UserView): Recipient | undefined {
    if (user.disabled) return undefined;
    if (user.grantUntil !== null && user.grantUntil < this.now()) return undefined;
    return { role: user.role, organization: user.organization, grantOrganizations: user.grantOrganizations };
  }

  /** The kinds a role may receive at all: those whose showing route its rule allows the role. */
  kindsFor(role: UserView['role']): NotificationKind[] {
    return NOTIFICATION_KINDS.filter((k) => {
      const rule = ruleFor(SHOWN_BY[k].method, SHOWN_BY[k].path);
      return rule.allow === 'public' || rule.allow.includes(role);
    });
  }

  /** Would the API show this event's record to the viewer? The route's rule, then the record's own visibility. */
  private mayReach(viewer: Recipient, e: NotifyEvent): boolean {
    const rule = ruleFor(SHOWN_BY[e.kind].method, SHOWN_BY[e.kind].path);
    if (rule.allow !== 'public' && !rule.allow.includes(viewer.role)) return false;
    return rule.scope !== 'every-organization' || seesAll(viewer);
  }

  /** mayReach(), then the record itself as the viewer may see it, read on `db` (the announcement's transaction) */
  private async maySeeIn(db: Kysely<Tables>, viewer: Recipient, e: NotifyEvent): Promise<boolean> {
    if (!this.mayReach(viewer, e)) return false;
    if (e.kind === 'alarm' || e.kind === 'run-completed') return (await this.deps.runs.getIn(db, viewer, e.run)) !== undefined;
    if (e.kind === 'draft-awaiting-signature') return (await this.deps.certificateFor(db, viewer, e.certificate)) !== undefined;
    return true;
  }

  /** the user's language and zone as the user saved them (their preferences); en and UTC when not saved */
  private audienceOf(user: UserView): Audience {
    return { locale: knownLocale(user.locale), timeZone: knownZone(user.timeZone), baseUrl: this.deps.baseUrl() };
  }

  /** The deliveries of an event: to everyone subscribed who may see it, by each channel the user chose. */
  private plan(
    e: NotifyEvent,
    subscribers: Subscriber[],
    hookOf: (id: string) => Webhook | undefined,
    userOf: (username: string) => UserView | undefined,
    /** whether the user, as this viewer, may see the event's record */
    maySee: (username: string, viewer: Recipient) => boolean,
  ): NewDelivery[] {
    const key = eventKey(e);
    const out: NewDelivery[] = [];
    for (const s of subscribers) {
      const user = userOf(s.username);
      const viewer = user === undefined ? undefined : this.recipientOf(user);
      if (user === undefined || viewer === undefined || !maySee(user.username, viewer)) continue;
      const targets: { channel: Channel; target: string }[] = [];
      if (s.choice.email && s.address !== null) targets.push({ channel: 'email', target: s.address });
      for (const id of s.choice.webhooks) {
        const hook = hookOf(id);
        // a webhook carries its owner's view only
        if (hook !== undefined && hook.owner === user.username && hook.enabled) targets.push({ channel: 'webhook', target: id });
      }
      if (targets.length === 0) continue;
      const audience = this.audienceOf(user);
      const stored = { type: eventType(e), at: e.at, data: eventData(e), message: render(e, audience), locale: audience.locale };
      for (const t of targets) out.push({ eventKey: key, kind: e.kind, recipient: user.username, ...t, message: stored });
    }
    return out;
  }

  /**
   * Queues the event for everyone subscribed who may see it, in one transaction; then wakes the sender. Announced on
   * several nodes, it is queued once (the outbox's unique key). How many deliveries were added.
   */
  async announce(e: NotifyEvent): Promise<number> {
    const added = await this.deps.store.transaction().execute((trx) => this.announceIn(trx, e));
    if (added > 0) this.wake();
    return added;
  }

  /**
   * announce() inside the caller's transaction `trx` (a security event's, SecurityEvents' hook): the deliveries
   * commit, or roll back, with what the caller writes. The sender is not woken: the rows are not seen before the
   * commit (the caller's announcement after it wakes it; else the next poll). How many deliveries were added.
   */
  async announceIn(trx: Transaction<Tables>, e: NotifyEvent): Promise<number> {
    const now = this.now();
    const subscribers = await this.subscriptions.subscribers(e.kind, trx);
    const hooks = new Map<string, Webhook>();
    for (const id of new Set(subscribers.flatMap((s) => s.choice.webhooks))) {
      const hook = await this.webhooks.get(id, trx);
      if (hook !== undefined) hooks.set(id, hook);
    }
    const users = new Map<string, UserView | undefined>();
    // who may see the record, asked on this transaction before the plan (which asks synchronously)
    const seeing = new Set<string>();
    for (const s of subscribers) {
      const user = await this.deps.users.get(s.username, trx);
      users.set(s.username, user);
      const viewer = user === undefined ? undefined : this.recipientOf(user);
      if (viewer !== undefined && (await this.maySeeIn(trx, viewer, e))) seeing.add(s.username);
    }
    let n = 0;
    for (const d of this.plan(
      e,
      subscribers,
      (id) => hooks.get(id),
      (username) => users.get(username),
      (username) => seeing.has(username),
    ))
      if ((await this.outbox.add(d, now, this.deps.config.maxPending, trx)) !== undefined) n++;
    return n;
  }

  /**
   * announce() for a security event recorded inside the SQLite ingest's synchronous transaction: the deliveries
   * commit, or roll back, with the event. Synchronous (given the SQLite LabDatabase only) until the ingest moves.
   */
  announceNow(e: SecurityNotice): number {
    const database = this.deps.database;
    if (database === undefined) throw new Error('notifier: announceNow needs the SQLite LabDatabase (deps.database)');
    const now = this.now();
    const added = database.sqlite.transaction(() => {
      let n = 0;
      for (const d of this.plan(
        e,
        this.subscriptions.subscribersNow(e.kind),
        (id) => this.webhooks.getNow(id),
        (username) => this.deps.users.getNow(username),
        // a security event's record is shown by its route's rule alone
        (_username, viewer) => this.mayReach(viewer, e),
      ))
        if (this.outbox.addNow(d, now, this.deps.config.maxPending) !== undefined) n++;
      return n;
    })();
    if (added > 0) this.wake();
    return added;
  }

  // ---- sending -------------------------------------------------------------------------------------------------

  /** Runs the sender soon (once, however often it is asked while it runs). */
  private wake(): void {
    if (!this.running) return;
    if (this.pumping !== undefined) {
      this.again = true;
      return;
    }
    if (this.kick !== undefined) return;
    this.kick = setImmediate(() => {
      this.kick = undefined;
      this.pumping = this.pump().finally(() => {
        this.pumping = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
    });
  }

  private async pump(): Promise<void> {
    try {
      while (this.running) {
        // claimed: no other sender (this node's or another's) takes these rows until their claim runs out
        const rows = await this.outbox.claim(this.now(), BATCH, this.leaseMs);
        if (rows.length === 0) return;
        await Promise.all(rows.map((r) => this.attempt(r)));
      }
    } catch (err) {
      // the store failing: the rows claimed wait for their claim to run out, the others for the next pass
      this.deps.logger.error({ part: 'notify', err: (err as Error).message }, 'the outbox could not be read');
    }
  }

  private backoff(attempts: number): number {
    return backoffDelay(attempts, this.deps.config.baseDelayMs, this.deps.config.maxDelayMs, this.random);
  }

  /** One attempt of one delivery this sender claimed; its outcome is written to the row. Never throws. */
  private async attempt(row: ClaimedRow): Promise<void> {
    try {
      const outcome = await this.send(row);
      const now = this.now();
      if (outcome.ok) {
        await this.outbox.sent(row.id, now);
        return;
      }
      const error = await this.scrub(outcome.error, row);
      const attempts = row.attempts + 1;
      const last = outcome.permanent || attempts >= this.deps.config.maxAttempts;
      await this.outbox.attemptFailed(row.id, error, last ? null : now + this.backoff(attempts), row.claimedUntil);
      const fields = { part: 'notify', delivery: row.id, channel: row.channel, kind: row.kind, attempts, error };
      if (last) this.deps.logger.error(fields, 'ALARM: a notification could not be delivered; recorded as failed');
      else this.deps.logger.warn(fields, 'a notification could not be delivered; it is tried again later');
    } catch (err) {
      // a bug or a request that cannot be built: recorded as failed, never retried in a loop
      try {
        const error = await this.scrub(`the delivery could not be attempted: ${(err as Error).message}`, row);
        this.deps.logger.error({ part: 'notify', delivery: row.id, error }, 'ALARM: a notification could not be delivered; recorded as failed');
        await this.outbox.attemptFailed(row.id, error, null, row.claimedUntil);
      } catch (inner) {
        this.deps.logger.error({ part: 'notify', delivery: row.id, err: (inner as Error).message }, 'a failed delivery could not be recorded');
      }
    }
  }

  private async send(row: OutboxRow): Promise<Outcome> {
    if (row.channel === 'email') {
      if (this.email === undefined) return { ok: false, error: 'no SMTP relay is configured (notifications.smtp)', permanent: true };
      return this.email.send(`msg_${row.id}`, row.target, row.message);
    }
    const hook = await this.webhooks.get(row.target);
    if (hook === undefined) return { ok: false, error: 'the webhook was deleted', permanent: true };
    if (!hook.enabled) return { ok: false, error: 'the webhook is disabled', permanent: true };
    const m = row.message;
    return postWebhook(
      hook,
      { id: `msg_${row.id}`, type: m.type, at: m.at, data: m.data, message: m.message },
      this.now(),
      this.deps.config.timeoutMs,
    );
  }

  /** An error's text without any credential it might echo: the SMTP password, the webhook's secret and URL. */
  private async scrub(text: string, row: OutboxRow): Promise<string> {
    const secrets: string[] = [];
    if (this.deps.smtpPassword !== undefined && this.deps.smtpPassword !== '') secrets.push(this.deps.smtpPassword);
    if (row.channel === 'webhook') {
      const hook = await this.webhooks.get(row.target);
      if (hook?.secret) secrets.push(hook.secret);
      if (hook !== undefined) secrets.push(hook.url);
    }
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return out.slice(0, 500);
  }

  // ---- what the routes ask -------------------------------------------------------------------------------------

  async subscriptionsOf(user: Pick<Principal, 'username' | 'role'>): Promise<SubscriptionsView> {
    const [email, kinds, webhooks] = await Promise.all([
      this.subscriptions.address(user.username),
      this.subscriptions.of(user.username),
      this.webhooks.list(user.username),
    ]);
    return {
      email,
      kinds,
      allowed: this.kindsFor(user.role),
      webhooks: webhooks.map((w) => ({ id: w.id, name: w.name, preset: w.preset, enabled: w.enabled })),
      emailAvailable: this.deps.config.smtp !== undefined,
    };
  }

  /** Replaces a user's subscriptions; a kind the role never receives, another's webhook or e-mail without an address is refused. */
  async setSubscriptions(
    user: Pick<Principal, 'username' | 'role'>,
    input: { email?: string | null | undefined; kinds: Partial<Record<NotificationKind, ChannelChoice>> },
  ): Promise<SubscriptionsView> {
    const allowed = new Set(this.kindsFor(user.role));
    const address = input.email === undefined ? await this.subscriptions.address(user.username) : input.email;
    const own = new Set((await this.webhooks.list(user.username)).map((w) => w.id));
    for (const [kind, c] of Object.entries(input.kinds) as [NotificationKind, ChannelChoice][]) {
      if (!allowed.has(kind) && (c.email || c.webhooks.length > 0))
        throw new LabtraceError('E_BAD_REQUEST', `body: kinds.${kind}: the role ${user.role} does not receive ${kind} notifications`);
      if (c.email && this.deps.config.smtp === undefined)
        throw new LabtraceError('E_BAD_REQUEST', `body: kinds.${kind}.email: this server sends no e-mail (no SMTP relay is configured)`);
      if (c.email && address === null)
        throw new LabtraceError('E_BAD_REQUEST', `body: email: an address is required to receive ${kind} notifications by e-mail`);
      c.webhooks.forEach((id, i) => {
        if (!own.has(id)) throw new LabtraceError('E_BAD_REQUEST', `body: kinds.${kind}.webhooks[${i}]: you have no webhook "${id}"`);
      });
    }
    await this.subscriptions.set(user.username, input.email, input.kinds);
    return this.subscriptionsOf(user);
  }

  /** Deletes a webhook: its pending deliveries are recorded as failed and the subscriptions naming it forget it. */
  async removeWebhook(actor: Actor, id: string, reason: string): Promise<{ deleted: string; failedDeliveries: number }> {
    return this.deps.store.transaction().execute(async (trx) => {
      await this.webhooks.remove(trx, actor, id, reason);
      await this.subscriptions.forgetWebhook(trx, id);
      return { deleted: id, failedDeliveries: await this.outbox.failTarget('webhook', id, 'the webhook was deleted', trx) };
    });
  }

  async deliveries(filter: { status?: DeliveryStatus | undefined; before?: number | undefined; limit: number }): Promise<{
    deliveries: DeliveryView[];
    next: number | null;
    counts: Record<DeliveryStatus, number>;
  }> {
    const [rows, pending, sent, failed] = await Promise.all([
      this.outbox.list({ ...filter, limit: filter.limit + 1 }),
      this.outbox.count('pending'),
      this.outbox.count('sent'),
      this.outbox.count('failed'),
    ]);
    const page = rows.slice(0, filter.limit);
    return {
      deliveries: page.map(deliveryView),
      next: rows.length > filter.limit ? (page.at(-1)?.id ?? null) : null,
      counts: { pending, sent, failed },
    };
  }

  /** The admin sends a failed delivery again from its first attempt (audited). */
  async retry(actor: Actor, id: number): Promise<DeliveryView> {
    const at = this.now();
    const row = await this.deps.store.transaction().execute(async (trx) => {
      const before = await this.outbox.get(id, trx);
      if (before === undefined) throw new LabtraceError('E_NOT_FOUND', `delivery ${id} is not known`);
      // one conditional update: of two retries at once (two nodes), one requeues and the other is refused
      if (!(await this.outbox.requeue(id, at, trx)))
        throw new LabtraceError('E_CONFLICT', `delivery ${id} is ${before.status}: only a failed one is retried`);
      await this.deps.audit.recordIn(trx, actor, {
        action: 'state-change',
        recordType: 'notification-delivery',
        recordId: String(id),
        oldValue: { status: before.status, attempts: before.attempts, lastError: before.lastError },
        newValue: { status: 'pending' },
      });
      return (await this.outbox.get(id, trx)) as OutboxRow;
    });
    this.wake();
    return deliveryView(row);
  }

  /** A test message to one of the caller's channels, attempted at once; answers the delivery after that attempt. */
  async test(user: Principal, target: { channel: 'email' } | { channel: 'webhook'; webhook: string }): Promise<DeliveryView> {
    let channel: Channel;
    let to: string;
    let owner = user.username;
    if (target.channel === 'email') {
      if (this.deps.config.smtp === undefined) throw new LabtraceError('E_CONFLICT', 'this server sends no e-mail (no SMTP relay is configured)');
      const address = await this.subscriptions.address(user.username);
      if (address === null)
        throw new LabtraceError('E_BAD_REQUEST', 'body: channel: you have no e-mail address (PUT /api/notifications/subscriptions)');
      channel = 'email';
      to = address;
    } else {
      const hook = await this.webhooks.get(target.webhook);
      if (hook === undefined || (hook.owner !== user.username && user.role !== 'admin'))
        throw new LabtraceError('E_NOT_FOUND', `webhook "${target.webhook}" is not known`);
      channel = 'webhook';
      to = hook.id;
      owner = hook.owner;
    }
    const ownerView = await this.deps.users.get(owner);
    const audience = ownerView === undefined ? { locale: 'en' as const, timeZone: 'UTC', baseUrl: this.deps.baseUrl() } : this.audienceOf(ownerView);
    const e: TestEvent = { kind: 'test', at: this.now(), requestedBy: user.username };
    const now = this.now();
    // queued claimed by this sender, which attempts it at once (no other sender takes it meanwhile)
    const claimedUntil = now + this.leaseMs;
    const row = await this.outbox.add(
      {
        eventKey: `test:${randomUUID()}`,
        kind: 'test',
        recipient: owner,
        channel,
        target: to,
        message: { type: eventType(e), at: e.at, data: eventData(e), message: render(e, audience), locale: audience.locale },
      },
      now,
      this.deps.config.maxPending,
      this.deps.store,
      claimedUntil,
    );
    if (row === undefined) throw new LabtraceError('E_CONFLICT', 'the test message could not be queued');
    if (row.status === 'pending') await this.attempt({ ...row, claimedUntil });
    return deliveryView((await this.outbox.get(row.id)) as OutboxRow);
  }
}
