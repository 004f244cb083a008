// Turns MQTT messages from gateways into stored samples: validate, verify the signed batch against the
// gateway's registered key, check the chain's continuity, store durably, then acknowledge.
import { EventEmitter } from 'node:events';
import {
  birthMessageSchema,
  canonicalBytes,
  dataMessageSchema,
  headerHash,
  healthMessageSchema,
  isSealedBatch,
  isLabtraceError,
  issuesOf,
  openBatch,
  parseTopic,
  toBase64,
  topicFor,
  verifyBatch,
  type CmdMessage,
  type DataMessage,
  type InstrumentHealthMessage,
  type LiveSample,
} from '@labtrace/protocols';
import type { Statement } from 'better-sqlite3';
import type { MessageBus } from '../broker/bus.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { Logger } from '../log.js';
import type { StoreCapacity } from '../store/capacity.js';
import type { LabDatabase } from '../store/database.js';
import type { MeasurementStore } from '../store/measurement-store.js';
import type { Registry } from '../store/registry.js';
import type { KeyRefusal, KeyRegistry } from '../trust/key-registry.js';
import type { SecurityEventKind, SecurityEvents, Severity } from '../trust/security-events.js';
import { writeFailureOf } from '../store/capacity.js';
import { Chain } from './chain.js';

interface IngestEvents {
  samples: [samples: LiveSample[]];
  birth: [gateway: string];
  health: [health: InstrumentHealthMessage[]];
  rejected: [gateway: string, reason: string];
}

/** a stored batch arriving again this many batches behind the chain is recorded as a replay, not a resend */
export const REPLAY_DISTANCE = 64;
/** records pending for the per-sample index that are indexed with their commit (a light load) */
const INDEX_AT_ONCE = 5_000;
/** under a heavy load, the index waits until this many records are pending (or INDEX_DELAY_MS have passed) */
const INDEX_GROUP = 100_000;
const INDEX_DELAY_MS = 500;
/** records indexed in one go between commits */
const INDEX_SLICE = 200_000;
const INDEX_RETRY_MS = 5_000;
/** after batches were refused for want of room, the gateway is asked to send them again this soon, doubling up to ROOM_RETRY_MAX_MS */
const ROOM_RETRY_MS = 1_000;
const ROOM_RETRY_MAX_MS = 10_000;
/** a gateway whose last batch was refused this recently, and none acknowledged since, is being refused (health) */
export const REFUSING_WINDOW_MS = 120_000;

/**
 * Why batches were refused, counted for health: the security event kind, or store-low-space (below the reserve),
 * store-write-failed (a full disk, an I/O error), store-failed (another store error), invalid (malformed, foreign).
 */
export type RefusalReason = string;

/** a payload that is not a message of its topic: counted per gateway and window, an alarm (a genuine gateway sends none) */
const MALFORMED = { kind: 'malformed', batch: null, counted: true } as const;

type Outcome =
  { kind: 'stored'; gap: boolean } | { kind: 'duplicate' } | { kind: 'conflict'; detail: string } | { kind: 'refused'; refusal: KeyRefusal };

/** The sample times a batch may carry, around its arrival (server clock): beyond them it is recorded as clock skew. */
export interface ClockWindow {
  /** how far ahead of the server clock */
  maxClockSkewMs: number;
  /** how far behind it (a gateway's outbox holds batches while the server is away) */
  maxAgeMs: number;
}

export const DEFAULT_CLOCK_WINDOW: ClockWindow = { maxClockSkewMs: 5 * 60_000, maxAgeMs: 30 * 86_400_000 };

export interface IngestCounters {
  batches: number;
  samples: number;
  duplicates: number;
  rejected: number;
}

export class Ingest extends EventEmitter<IngestEvents> {
  readonly counters: IngestCounters = { batches: 0, samples: 0, duplicates: 0, rejected: 0 };
  /** refused DATA messages since the start, by reason */
  readonly refusedByReason: Record<RefusalReason, number> = {};
  /** each gateway's last refused and last acknowledged batch (when, and why refused) */
  private readonly outcomes = new Map<string, { refusedAt: number; reason: RefusalReason; ackedAt: number }>();
  private capacity: StoreCapacity | undefined;
  /** gateways with batches refused for want of room: the lowest refused batch, asked again once the store takes writes */
  private readonly awaitingRoom = new Map<string, number>();
  private roomTimer: NodeJS.Timeout | undefined;
  private roomRetryMs = ROOM_RETRY_MS;
  private readonly onAccepting = (): void => this.askForRefused();
  /** the latest health each gateway reported for each of its instruments */
  private readonly health = new Map<string, { gateway: string; health: InstrumentHealthMessage }>();
  private readonly onMessage = (topic: string, payload: Buffer): void => {
    this.handle(topic, payload).catch((err: unknown) => this.logger.error({ topic, err: String(err) }, 'ingest failed'));
  };

  /** the gateway of each announced instrument */
  private readonly owners = new Map<string, string>();
  readonly chain: Chain;
  private log: TransparencyLog | undefined;
  /** verified batches waiting for the next group commit */
  private readonly pending: { work: () => Outcome; resolve: (o: Outcome) => void; reject: (err: unknown) => void }[] = [];
  /** when a resend was last asked of each gateway */
  private readonly resendAsked = new Map<string, number>();

  constructor(
    private readonly lab: string,
    private readonly broker: MessageBus,
    private readonly database: LabDatabase,
    private readonly store: MeasurementStore,
    private readonly registry: Registry,
    private readonly keys: KeyRegistry,
    private readonly events: SecurityEvents,
    private readonly logger: Logger,
    private readonly clock: ClockWindow = DEFAULT_CLOCK_WINDOW,
  ) {
    super();
    this.chain = new Chain(database);
  }

  private skewedBatch: Statement | undefined;

  /** Why a batch's sample times lie outside the accepted window around its arrival, or undefined. */
  private clockSkew(header: { tsMin: number; tsMax: number }, now: number): string | undefined {
    const earliest = now - this.clock.maxAgeMs;
    const latest = now + this.clock.maxClockSkewMs;
    if (header.tsMin >= earliest && header.tsMax <= latest) return undefined;
    const iso = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));
    return `its samples are dated ${iso(header.tsMin)} .. ${iso(header.tsMax)}, outside ${iso(earliest)} .. ${iso(latest)} (arrival ${iso(now)} by the server clock, minus ingest.maxAgeMs, plus ingest.maxClockSkewMs); stored, kept out of the latest values`;
  }

  /** Whether a sample's time lies within the accepted window around now. */
  private inWindow(ts: number, now: number): boolean {
    return ts >= now - this.clock.maxAgeMs && ts <= now + this.clock.maxClockSkewMs;
  }

  /** Batches are refused (not acknowledged) below the store's free-space reserve; write failures are reported to it. */
  useCapacity(capacity: StoreCapacity): void {
    this.capacity = capacity;
    capacity.on('accepting', this.onAccepting);
  }

  /** Refused batches in total, by reason, and the connected gateways whose batches are being refused now. */
  refusals(now = Date.now()): {
    total: number;
    byReason: Record<RefusalReason, number>;
    refusing: Map<string, { reason: RefusalReason; at: number }>;
  } {
    const refusing = new Map<string, { reason: RefusalReason; at: number }>();
    for (const [gateway, o] of this.outcomes)
      if (o.refusedAt > o.ackedAt && now - o.refusedAt < REFUSING_WINDOW_MS) refusing.set(gateway, { reason: o.reason, at: o.refusedAt });
    const total = Object.values(this.refusedByReason).reduce((a, b) => a + b, 0);
    return { total, byReason: { ...this.refusedByReason }, refusing };
  }

  /** Every stored batch's signed header enters this log in the same commit. */
  useLog(log: TransparencyLog): void {
    this.log = log;
  }

  async start(): Promise<void> {
    this.chain.open();
    this.scheduleIndex(0); // batches stored before a stop and not yet indexed
    for (const i of await this.registry.instruments()) this.owners.set(i.id, i.gateway);
    this.broker.on('message', this.onMessage);
  }

  /** Why a gateway may not speak for these instruments, or undefined: an instrument belongs to the gateway that announced it first. */
  private foreign(gateway: string, instruments: Iterable<string>): { reason: string; owner?: string } | undefined {
    for (const id of instruments) {
      const owner = this.owners.get(id);
      if (owner === undefined) return { reason: `instrument "${id}" was not announced in a BIRTH` };
      if (owner !== gateway) return { reason: `instrument "${id}" belongs to gateway ${owner}`, owner };
    }
    return undefined;
  }

  stop(): Promise<void> {
    this.broker.off('message', this.onMessage);
    // a short backlog is indexed now; a long one at the next start, from the stored batches
    if (this.indexTimer !== undefined) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    if (this.roomTimer !== undefined) clearTimeout(this.roomTimer);
    this.roomTimer = undefined;
    this.capacity?.off('accepting', this.onAccepting);
    if (this.store.indexBacklog <= 100) this.indexNow();
    return Promise.resolve();
  }

  /** The latest reported health of an instrument, or null. */
  healthOf(instrument: string): InstrumentHealthMessage | null {
    return this.health.get(instrument)?.health ?? null;
  }

  /** Forgets what a gateway reported: its instruments are not connected while it is away. */
  gatewayGone(gateway: string): void {
    for (const [id, entry] of this.health)
      if (entry.gateway === gateway) this.health.set(id, { gateway, health: { ...entry.health, connected: false } });
  }

  /**
   * `event`: the security event it is (an alarm unless told); `counted`: one per kind and gateway per window
   * with a count (what a misbehaving gateway can repeat at will: garbage payloads, claims on instruments).
   * `refusal`: why, counted for health when it is not the event's kind.
   */
  private reject(
    gateway: string,
    reason: string,
    event?: { kind: SecurityEventKind; batch: number | null; severity?: Severity; counted?: boolean },
    refusal?: RefusalReason,
  ): void {
    this.counters.rejected++;
    // a DATA message refused: counted by reason for health
    if (reason.startsWith('DATA')) {
      const why = refusal ?? event?.kind ?? 'invalid';
      this.refusedByReason[why] = (this.refusedByReason[why] ?? 0) + 1;
      const o = this.outcomes.get(gateway);
      this.outcomes.set(gateway, { refusedAt: Date.now(), reason: why, ackedAt: o?.ackedAt ?? 0 });
    }
    if (event?.counted) this.events.refuse({ gateway, kind: event.kind, severity: event.severity ?? 'alarm', detail: reason, batch: event.batch });
    else if (event) this.events.record(gateway, event.kind, event.severity ?? 'alarm', reason, event.batch);
    else this.logger.warn({ gateway, reason }, 'message rejected');
    this.emit('rejected', gateway, reason);
  }

  private command(gateway: string, cmd: CmdMessage): Promise<void> {
    return this.broker.publish(topicFor(this.lab, gateway, 'CMD'), JSON.stringify(cmd));
  }

  /** `leaves`: the records' leaf hashes, packed, computed over the received bytes (binary batches). */
  private async data(gateway: string, message: DataMessage, leaves?: Uint8Array, records?: Uint8Array): Promise<void> {
    const what = `DATA: batch ${message.batch} of ${gateway}`;
    if (message.gateway !== gateway)
      return this.reject(gateway, `${what}: names gateway "${message.gateway}"`, { kind: 'foreign-gateway', batch: message.batch });
    const signed = message.signed;
    if (signed === undefined) return this.reject(gateway, `${what}: not signed`, { kind: 'unsigned', batch: message.batch });
    const { header } = signed;
    if (header.batch !== message.batch)
      return this.reject(gateway, `${what}: the signed header is of batch ${header.batch}`, { kind: 'altered', batch: message.batch });
    const key = this.keys.get(gateway, header.keyId);
    if (key === undefined)
      return this.reject(gateway, `${what}: key ${header.keyId} is not registered for this gateway`, { kind: 'unknown-key', batch: header.batch });
    // the key's validity, by what the server knows: a batch not already stored must be acceptable under the key now
    // (arrival time, batch number); the times the batch carries play no part
    const hash = toBase64(headerHash(header));
    const now = Date.now();
    const refusal = this.keys.refusal(key, header.batch, now);
    if (refusal !== undefined && this.chain.stored(gateway, header.batch)?.hash !== hash)
      return this.reject(gateway, `${what}: ${refusal.detail}`, { kind: refusal.kind, batch: header.batch });
    try {
      verifyBatch(signed, message.samples, key.key, gateway, leaves);
    } catch (err) {
      const reason = (err as Error).message;
      return this.reject(gateway, `DATA: ${reason}`, { kind: /bad signature/.test(reason) ? 'forged' : 'altered', batch: header.batch });
    }
    const foreign = this.foreign(gateway, new Set(message.samples.filter((s) => s.instrument !== gateway).map((s) => s.instrument)));
    if (foreign !== undefined) {
      // not acknowledged: once the gateway announces its instruments, its resend is accepted
      await this.command(gateway, { v: 1, cmd: 'rebirth' });
      return this.reject(
        gateway,
        `${what}: ${foreign.reason}`,
        foreign.owner === undefined
          ? { kind: 'unannounced-instrument', severity: 'notice', batch: header.batch, counted: true }
          : { kind: 'foreign-instrument', batch: header.batch, counted: true },
      );
    }
    if (this.capacity !== undefined && !this.capacity.accepting()) {
      // below the free-space reserve: refused before anything is written, not acknowledged (the gateway keeps it)
      this.awaitRoom(gateway, header.batch);
      return this.reject(gateway, `${what}: the store keeps its free-space reserve; sent again once there is room`, undefined, 'store-low-space');
    }
    // sample times outside the accepted skew around the arrival: stored (signed, chained: nothing is lost and the
    // gateway is not made to resend forever), recorded, and kept out of the latest values
    const skew = this.clockSkew(header, now);
    let outcome: Outcome;
    try {
      outcome = await this.commit(() => {
        const stored = this.chain.stored(gateway, header.batch);
        if (stored !== undefined) {
          if (stored.hash === hash) return { kind: 'duplicate' as const };
          return {
            kind: 'conflict' as const,
            detail: `${what}: a different batch ${header.batch} (header ${stored.hash}) is already stored; this one hashes to ${hash}`,
          };
        }
        // checked again in the commit: a revocation made meanwhile (by the admin command line) holds at once
        const late = this.keys.refusal(this.keys.get(gateway, header.keyId) ?? key, header.batch, now);
        if (late !== undefined) return { kind: 'refused' as const, refusal: late };
        this.store.store(gateway, message.samples, signed, hash, now, records);
        const notes = this.chain.advance(gateway, header, hash, message.samples, this.broker.sharedIngest === true);
        if (this.log) this.store.setLogIndex(gateway, header.batch, this.log.append('batch-header', [canonicalBytes(signed)], now));
        for (const n of notes) this.events.record(gateway, n.kind, n.severity, n.detail, n.batch, now);
        if (skew !== undefined) {
          this.skewedBatch ??= this.database.sqlite.prepare(
            'INSERT OR IGNORE INTO clock_skew_batches (gateway, batch, first_seq, last_seq, earliest, latest) VALUES (?, ?, ?, ?, ?, ?)',
          );
          this.skewedBatch.run(
            gateway,
            header.batch,
            header.firstSeq,
            header.firstSeq + header.count - 1,
            now - this.clock.maxAgeMs,
            now + this.clock.maxClockSkewMs,
          );
          this.events.record(gateway, 'clock-skew', 'alarm', `${what}: ${skew}`, header.batch, now);
        }
        for (const s of message.samples)
          if (s.instrument === gateway && s.channel === 'samples-refused')
            this.events.record(
              gateway,
              'samples-refused',
              'alarm',
              `the gateway refused ${String(s.value)} samples: ${s.reason ?? ''}`,
              header.batch,
              now,
            );
        return { kind: 'stored' as const, gap: notes.some((n) => n.kind === 'batch-gap') };
      });
    } catch (err) {
      // numbers already stored under another batch: refused, not acknowledged (the gateway cannot resend it as it is)
      if (isLabtraceError(err) && err.code === 'E_CONFLICT')
        return this.reject(gateway, `${what}: ${err.message}`, { kind: 'sequence-overlap', batch: header.batch, counted: true });
      // not acknowledged: the gateway keeps the batch, nothing is lost
      this.logger.error({ gateway, batch: message.batch, err: (err as Error).message }, 'ALARM: batch not stored');
      const full = writeFailureOf(err) !== undefined;
      // asked again once the store takes writes (a write that failed for room fails again until then)
      if (full) this.awaitRoom(gateway, header.batch);
      return this.reject(gateway, `${what}: ${(err as Error).message}`, undefined, full ? 'store-write-failed' : 'store-failed');
    }
    if (outcome.kind === 'conflict') return this.reject(gateway, outcome.detail, { kind: 'conflict', batch: header.batch });
    if (outcome.kind === 'refused')
      return this.reject(gateway, `${what}: ${outcome.refusal.detail}`, { kind: outcome.refusal.kind, batch: header.batch });
    if (outcome.kind === 'duplicate') {
      this.counters.duplicates += message.samples.length;
      // a resend after a lost ACK comes soon after the batch; an old batch arriving again looks like a replay
      // (harmless either way: it is stored once and acknowledged again, so a genuine gateway is never stuck)
      const next = this.chain.state(gateway)?.nextBatch ?? 0;
      if (header.batch + REPLAY_DISTANCE < next)
        this.events.record(
          gateway,
          'replay',
          'notice',
          `${what} is ${next - header.batch} batches old and was already stored; acknowledged again, not stored twice`,
          header.batch,
          now,
        );
      else this.events.record(gateway, 'duplicate', 'info', `${what} was already stored; acknowledged again`, header.batch, now);
    } else {
      this.counters.batches++;
      // a batch is stored whole or not at all (overlapping batches are refused), so every sample is new
      this.counters.samples += message.samples.length;
    }
    const o = this.outcomes.get(gateway);
    if (o !== undefined) o.ackedAt = Date.now();
    // Only now, after the commit, does the gateway learn that it may forget the batch.
    await this.broker.publish(topicFor(this.lab, gateway, 'ACK'), JSON.stringify({ v: 1, batch: message.batch }));
    if (outcome.kind !== 'stored') return;
    // A node that shares DATA with other nodes sees gaps in its own stored chain that are batches in another
    // node's hands: asking for them would resend batches in flight there (stored twice across separate stores).
    // Lost batches come again anyway, after the gateway's ACK timeout.
    if (outcome.gap && this.broker.sharedIngest !== true) {
      const state = this.chain.state(gateway);
      const last = this.resendAsked.get(gateway) ?? 0;
      if (state !== undefined && now - last > 5000) {
        this.resendAsked.set(gateway, now);
        await this.command(gateway, { v: 1, cmd: 'resend', fromBatch: state.nextBatch });
      }
    }
    // samples dated outside the accepted window are not pushed live (they are not an instrument's latest value)
    const live = skew === undefined ? message.samples : message.samples.filter((s) => this.inWindow(s.ts, now));
    if (live.length > 0)
      this.emit(
        'samples',
        live.map((s) => ({
          gateway,
          seq: s.seq,
          instrument: s.instrument,
          channel: s.channel,
          ts: s.ts,
          value: s.value,
          unit: s.unit,
          quality: s.quality,
        })),
      );
  }

  /**
   * Group commit: the batches verified in one turn of the event loop are stored in one durable
   * transaction (one disk flush for all), each in its own savepoint, so one that fails rolls back
   * alone. Each caller learns its outcome only after the whole transaction is on disk.
   */
  private commit(work: () => Outcome): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ work, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.commitPending());
    });
  }

  private commitPending(): void {
    const items = this.pending.splice(0);
    const results: ({ ok: true; outcome: Outcome } | { ok: false; err: unknown })[] = [];
    const db = this.database.sqlite;
    // the batches stored in a savepoint or a transaction that rolls back are taken out of the index's backlog
    const start = this.store.backlogMark();
    try {
      db.transaction(() => {
        for (const item of items) {
          if (!db.inTransaction) {
            // SQLite rolled the whole transaction back (a full disk, an I/O error): none of it is stored, and
            // a batch must not be stored in a transaction of its own here; the commit below fails for all
            results.push({ ok: false, err: new Error('not stored: the transaction was rolled back') });
            continue;
          }
          const mark = this.store.backlogMark();
          try {
            results.push({ ok: true, outcome: db.transaction(item.work)() });
          } catch (err) {
            this.store.forgetFrom(mark);
            results.push({ ok: false, err });
          }
        }
      })();
    } catch (err) {
      this.store.forgetFrom(start);
      // the cause each caller learns: its own write failure, else the commit's
      const failures = results.map((r) => (r.ok ? undefined : r.err));
      const cause = failures.find((e) => writeFailureOf(e) !== undefined) ?? err;
      this.capacity?.writeFailed(cause);
      items.forEach((item, i) => item.reject(writeFailureOf(failures[i]) !== undefined ? failures[i] : cause));
      return;
    }
    for (const r of results) if (!r.ok) this.capacity?.writeFailed(r.err);
    // a duplicate writes nothing: only a stored batch shows that the store takes writes
    if (results.some((r) => r.ok && r.outcome.kind === 'stored')) {
      this.capacity?.writeSucceeded();
      this.roomRetryMs = ROOM_RETRY_MS;
    }
    // the per-sample index: at once under a light load; under a heavy one in groups of many batches, whose rows
    // go in sorted by stream (far cheaper per row), at most INDEX_DELAY_MS later. Reads never wait for this: the
    // store indexes what is pending before it answers one.
    const pending = this.store.indexBacklogSamples;
    if (pending <= INDEX_AT_ONCE) this.indexNow();
    else this.scheduleIndex(pending >= INDEX_GROUP ? 0 : INDEX_DELAY_MS);
    items.forEach((item, i) => {
      const r = results[i];
      if (r?.ok) item.resolve(r.outcome);
      else item.reject(r?.err ?? new Error('not committed'));
    });
  }

  /** A gateway's batch was refused for want of room: it is asked to send it again once the store takes writes. */
  private awaitRoom(gateway: string, batch: number): void {
    this.awaitingRoom.set(gateway, Math.min(batch, this.awaitingRoom.get(gateway) ?? batch));
    if (this.roomTimer !== undefined) return;
    this.roomTimer = setTimeout(() => {
      this.roomTimer = undefined;
      this.askForRefused();
    }, this.roomRetryMs);
    this.roomRetryMs = Math.min(this.roomRetryMs * 2, ROOM_RETRY_MAX_MS);
  }

  /**
   * Asks each gateway whose batches were refused for want of room to send them again (CMD resend from the
   * first refused), now that the store takes writes, or may again (a write that failed is tried again after a
   * back-off: the resent batch is the test). Without this, a gateway resends an unacknowledged batch only
   * after its RESEND_AFTER_MS.
   */
  private askForRefused(): void {
    if (this.capacity !== undefined && !this.capacity.accepting()) {
      // below the reserve: asked once space comes back ('accepting'), or at the next try
      if (this.awaitingRoom.size > 0 && this.roomTimer === undefined)
        this.roomTimer = setTimeout(() => {
          this.roomTimer = undefined;
          this.askForRefused();
        }, this.roomRetryMs);
      return;
    }
    if (this.capacity?.status().status === 'ok') this.roomRetryMs = ROOM_RETRY_MS;
    const waiting = [...this.awaitingRoom];
    this.awaitingRoom.clear();
    for (const [gateway, fromBatch] of waiting)
      this.command(gateway, { v: 1, cmd: 'resend', fromBatch }).catch((err: unknown) =>
        this.logger.warn({ gateway, err: String(err) }, 'could not ask the gateway to resend'),
      );
  }

  private indexTimer: NodeJS.Timeout | undefined;
  private indexTimerDelay = 0;

  private indexNow(): void {
    try {
      this.store.indexPending();
    } catch (err) {
      this.capacity?.writeFailed(err);
      this.logger.error({ err: (err as Error).message }, 'ALARM: the per-sample index could not be updated; stored batches are kept');
    }
  }

  private scheduleIndex(delayMs: number): void {
    if (this.indexTimer !== undefined) {
      if (this.indexTimerDelay <= delayMs) return;
      clearTimeout(this.indexTimer);
    }
    this.indexTimerDelay = delayMs;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = undefined;
      try {
        this.store.indexPending(INDEX_SLICE);
      } catch (err) {
        this.capacity?.writeFailed(err);
        this.logger.error({ err: (err as Error).message }, 'ALARM: the per-sample index could not be updated; stored batches are kept');
        this.scheduleIndex(INDEX_RETRY_MS);
        return;
      }
      const left = this.store.indexBacklogSamples;
      if (left > 0) this.scheduleIndex(left >= INDEX_GROUP ? 0 : INDEX_DELAY_MS);
    }, delayMs);
  }

  private async handle(topicText: string, payload: Buffer): Promise<void> {
    const topic = parseTopic(topicText);
    // FILE: result files are files/raw-files.ts's
    if (!topic || topic.lab !== this.lab || topic.kind === 'FILE') return;
    if (topic.kind === 'DATA' && isSealedBatch(payload)) {
      // the binary form: the records' bytes are hashed as received, nothing is re-encoded
      let opened;
      try {
        opened = openBatch(payload);
      } catch (err) {
        return this.reject(topic.gateway, `DATA: ${(err as Error).message}`, MALFORMED);
      }
      const { signed, samples, leaves, records } = opened;
      return this.data(topic.gateway, { v: 1, gateway: signed.header.gateway, batch: signed.header.batch, samples, signed }, leaves, records);
    }
    let body: unknown;
    try {
      body = JSON.parse(payload.toString());
    } catch {
      return this.reject(topic.gateway, `${topic.kind}: payload is not JSON`, MALFORMED);
    }
    switch (topic.kind) {
      case 'DATA': {
        const parsed = dataMessageSchema.safeParse(body);
        if (!parsed.success) {
          return this.reject(
            topic.gateway,
            `DATA: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
            MALFORMED,
          );
        }
        return this.data(topic.gateway, parsed.data);
      }
      case 'BIRTH': {
        const parsed = birthMessageSchema.safeParse(body);
        if (!parsed.success)
          return this.reject(
            topic.gateway,
            `BIRTH: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
            MALFORMED,
          );
        if (parsed.data.gateway !== topic.gateway)
          return this.reject(topic.gateway, `BIRTH: gateway "${parsed.data.gateway}" does not match the topic`, {
            kind: 'foreign-gateway',
            batch: null,
            counted: true,
          });
        const taken = parsed.data.instruments.find((i) => (this.owners.get(i.id) ?? topic.gateway) !== topic.gateway);
        if (taken)
          return this.reject(topic.gateway, `BIRTH: instrument "${taken.id}" belongs to gateway ${this.owners.get(taken.id) ?? ''}`, {
            kind: 'foreign-instrument',
            batch: null,
            counted: true,
          });
        // known before the first DATA is handled (the registry write below is asynchronous)
        for (const i of parsed.data.instruments) this.owners.set(i.id, topic.gateway);
        await this.registry.recordBirth(this.lab, parsed.data);
        this.logger.info({ gateway: topic.gateway, instruments: parsed.data.instruments.length }, 'gateway birth');
        this.emit('birth', topic.gateway);
        return;
      }
      case 'HEALTH': {
        const parsed = healthMessageSchema.safeParse(body);
        if (!parsed.success)
          return this.reject(
            topic.gateway,
            `HEALTH: ${issuesOf(parsed.error)
              .map((i) => `${i.path}: ${i.message}`)
              .slice(0, 5)
              .join('; ')}`,
            MALFORMED,
          );
        if (parsed.data.gateway !== topic.gateway)
          return this.reject(topic.gateway, `HEALTH: gateway "${parsed.data.gateway}" does not match the topic`, {
            kind: 'foreign-gateway',
            batch: null,
            counted: true,
          });
        const own = parsed.data.instruments.filter((h) => this.owners.get(h.instrument) === topic.gateway);
        for (const h of own) this.health.set(h.instrument, { gateway: topic.gateway, health: h });
        this.emit('health', own);
        return;
      }
      case 'DEATH':
        this.logger.info({ gateway: topic.gateway }, 'gateway death');
        await this.registry.touchGateway(topic.gateway);
        return;
      default:
        return;
    }
  }
}
