// Turns MQTT messages from gateways into stored samples: validate, verify the signed batch against the
// gateway's registered key, check the chain's continuity, store durably, then acknowledge.
//
// Two storage paths, chosen by the store the ingest is given:
// - SQLite (a LabDatabase): synchronous statements; the batches verified in one turn of the event loop are stored
//   in one group commit (one disk flush), the per-sample index brought up to date after it (or, with an index
//   worker, the worker told what was committed; a worker too far behind holds the next group commit back).
// - PostgreSQL (a Kysely store of that dialect, with a PgMeasurementStore and the LogStore): ONE transaction per batch
//   (or per group of one gateway's batches that gathered while its previous transaction ran) takes the gateway's
//   advisory lock, reads and advances its chain (chainIn: the same logic as Chain), stores the batch and its samples,
//   writes its security events (their notifications queued with them: SecurityEvents' hooks) and appends its header
//   to the transparency log; the events are announced and the ACK published only after COMMIT. A gateway's batches go through one pipeline, in order; different gateways' run at
//   once (the pool). Several nodes may ingest the same gateway's batches: the lock makes a batch redelivered to
//   another node a duplicate there (acknowledged again, stored once).
import { EventEmitter } from 'node:events';
import {
  birthMessageSchema,
  canonicalBytes,
  dataMessageSchema,
  headerHash,
  healthMessageSchema,
  isSealedBatch,
  isLabtraceError,
  LabtraceError,
  liveSampleOf,
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
  type Sample,
  type SignedBatch,
} from '@labtrace/protocols';
import type { Statement } from 'better-sqlite3';
import { Kysely, type Transaction } from 'kysely';
import type { MessageBus } from '../broker/bus.js';
import { LogStore } from '../log/log-store.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { Logger } from '../log.js';
import type { StoreCapacity } from '../store/capacity.js';
import type { LabDatabase } from '../store/database.js';
import type { MeasurementStore } from '../store/measurement-store.js';
import { PgMeasurementStore, type BatchToStore } from '../store/pg-measurement-store.js';
import { dialectOf } from '../store/portable-ddl.js';
import type { Tables } from '../store/tables.js';
import type { Registry } from '../store/registry.js';
import type { GatewayKey, KeyRefusal, KeyRegistry } from '../trust/key-registry.js';
import type { SecurityEvent, SecurityEventKind, SecurityEvents, Severity } from '../trust/security-events.js';
import { writeFailureOf } from '../store/capacity.js';
import { ClockOffsets, type ClockOffset } from './clock-offsets.js';
import { Chain, chainIn } from './chain.js';

interface IngestEvents {
  samples: [samples: LiveSample[]];
  birth: [gateway: string];
  health: [health: InstrumentHealthMessage[]];
  rejected: [gateway: string, reason: string];
  /** a batch was acknowledged (stored now or before), `latencyMs` after its message reached the ingest */
  acked: [gateway: string, latencyMs: number];
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
  /** next: the gateway's next expected batch after it (PostgreSQL) */
  | { kind: 'stored'; gap: boolean; next?: number }
  | { kind: 'duplicate' }
  | { kind: 'conflict'; detail: string }
  | { kind: 'refused'; refusal: KeyRefusal }
  /** its sequence numbers are stored already under another batch (PostgreSQL; SQLite throws E_CONFLICT) */
  | { kind: 'overlap'; detail: string };

/** a gateway's batches stored in one PostgreSQL transaction, at most */
const PG_GROUP = 64;

/** A verified batch waiting for its gateway's PostgreSQL transaction. */
interface PgItem {
  what: string;
  key: GatewayKey;
  now: number;
  skew: string | undefined;
  batch: BatchToStore;
  resolve: (outcome: Outcome) => void;
  reject: (err: unknown) => void;
}

/** A security event about a batch, before it is recorded. */
interface Note {
  kind: SecurityEventKind;
  severity: Severity;
  detail: string;
}

/** A batch stored before: acknowledged again; an old one arriving again looks like a replay. */
function duplicateNote(what: string, batch: number, next: number): Note {
  // a resend after a lost ACK comes soon after the batch; an old batch arriving again looks like a replay
  // (harmless either way: it is stored once and acknowledged again, so a genuine gateway is never stuck)
  return batch + REPLAY_DISTANCE < next
    ? {
        kind: 'replay',
        severity: 'notice',
        detail: `${what} is ${next - batch} batches old and was already stored; acknowledged again, not stored twice`,
      }
    : { kind: 'duplicate', severity: 'info', detail: `${what} was already stored; acknowledged again` };
}

/** A different batch under a stored batch's number. */
const conflictDetail = (what: string, batch: number, storedHash: string, hash: string): string =>
  `${what}: a different batch ${batch} (header ${storedHash}) is already stored; this one hashes to ${hash}`;

/** What a newly stored batch tells besides its chain: sample times beyond the accepted skew, samples the gateway refused. */
function batchNotes(gateway: string, what: string, samples: readonly Sample[], skew: string | undefined): Note[] {
  const notes: Note[] = [];
  if (skew !== undefined) notes.push({ kind: 'clock-skew', severity: 'alarm', detail: `${what}: ${skew}` });
  for (const s of samples)
    if (s.instrument === gateway && s.channel === 'samples-refused')
      notes.push({ kind: 'samples-refused', severity: 'alarm', detail: `the gateway refused ${String(s.value)} samples: ${s.reason ?? ''}` });
  return notes;
}

/** The sample times a batch may carry, around its arrival (server clock): beyond them it is recorded as clock skew. */
export interface ClockWindow {
  /** how far ahead of the server clock */
  maxClockSkewMs: number;
  /** how far behind it (a gateway's outbox holds batches while the server is away) */
  maxAgeMs: number;
  /** how far a gateway's clock may be from the server's (measured from its HEALTH messages) before it is an alarm */
  maxClockOffsetMs?: number;
}

export const DEFAULT_CLOCK_WINDOW: ClockWindow = { maxClockSkewMs: 5 * 60_000, maxAgeMs: 30 * 86_400_000, maxClockOffsetMs: 2000 };

export interface IngestCounters {
  /** DATA messages received that parse as a batch (stored, duplicate or refused) */
  received: number;
  /** the samples of those messages */
  receivedSamples: number;
  batches: number;
  samples: number;
  duplicates: number;
  rejected: number;
}

export class Ingest extends EventEmitter<IngestEvents> {
  readonly counters: IngestCounters = { received: 0, receivedSamples: 0, batches: 0, samples: 0, duplicates: 0, rejected: 0 };
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
  /** the SQLite path's store, index and chain */
  private readonly sqlite: { database: LabDatabase; store: MeasurementStore; chain: Chain } | undefined;
  /** the PostgreSQL path's store */
  private readonly pg: { db: Kysely<Tables>; store: PgMeasurementStore } | undefined;
  /** PostgreSQL: each gateway's DATA in turn (the last batch's turn: handed to the commit queue) */
  private readonly pipelines = new Map<string, Promise<void>>();
  /** PostgreSQL: each gateway's verified batches waiting for their transaction */
  private readonly pgQueues = new Map<string, PgItem[]>();
  /** PostgreSQL: DATA being handled (stop waits for it) */
  private readonly inHand = new Set<Promise<void>>();
  private log: TransparencyLog | undefined;
  private logStore: LogStore | undefined;
  /** verified batches waiting for the next group commit */
  private readonly pending: { work: () => Outcome; resolve: (o: Outcome) => void; reject: (err: unknown) => void }[] = [];
  /** when a resend was last asked of each gateway */
  private readonly resendAsked = new Map<string, number>();

  private readonly clockOffsets: ClockOffsets;

  /**
   * `database` and `store`: SQLite's LabDatabase with its MeasurementStore, or a PostgreSQL store (Kysely) with a
   * PgMeasurementStore on it.
   */
  constructor(
    private readonly lab: string,
    private readonly broker: MessageBus,
    database: LabDatabase | Kysely<Tables>,
    store: MeasurementStore | PgMeasurementStore,
    private readonly registry: Registry,
    private readonly keys: KeyRegistry,
    private readonly events: SecurityEvents,
    private readonly logger: Logger,
    private readonly clock: ClockWindow = DEFAULT_CLOCK_WINDOW,
  ) {
    super();
    this.clockOffsets = new ClockOffsets(clock.maxClockOffsetMs ?? DEFAULT_CLOCK_WINDOW.maxClockOffsetMs ?? 2000);
    if (!(database instanceof Kysely)) {
      if (store instanceof PgMeasurementStore) throw new LabtraceError('E_CONFIG', 'ingest: a SQLite store takes the SQLite measurement store');
      this.sqlite = { database, store, chain: new Chain(database) };
    } else if (dialectOf(database as Kysely<unknown>) === 'postgres' && store instanceof PgMeasurementStore) this.pg = { db: database, store };
    else
      throw new LabtraceError(
        'E_CONFIG',
        "ingest: a Kysely store must be PostgreSQL's with a PgMeasurementStore (SQLite's is given as its LabDatabase)",
      );
  }

  private get lite(): { database: LabDatabase; store: MeasurementStore; chain: Chain } {
    if (this.sqlite === undefined) throw new LabtraceError('E_STORE', 'ingest: this is the SQLite path, the store is PostgreSQL');
    return this.sqlite;
  }
  private get database(): LabDatabase {
    return this.lite.database;
  }
  private get store(): MeasurementStore {
    return this.lite.store;
  }
  /** the chain on SQLite (on PostgreSQL, chainIn reads it) */
  get chain(): Chain {
    return this.lite.chain;
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

  /** Every stored batch's signed header enters this log in the same commit (PostgreSQL: the LogStore on the same store). */
  useLog(log: TransparencyLog | LogStore): void {
    if (log instanceof LogStore) {
      if (this.pg === undefined) throw new LabtraceError('E_CONFIG', 'ingest: on SQLite the log is the TransparencyLog');
      this.logStore = log;
    } else {
      if (this.pg !== undefined) throw new LabtraceError('E_CONFIG', "ingest: on PostgreSQL the log is the LogStore on the ingest's store");
      this.log = log;
    }
  }

  async start(): Promise<void> {
    if (this.sqlite !== undefined) {
      this.chain.open();
      this.scheduleIndex(0); // batches stored before a stop and not yet indexed
    }
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

  async stop(): Promise<void> {
    this.broker.off('message', this.onMessage);
    if (this.roomTimer !== undefined) clearTimeout(this.roomTimer);
    this.roomTimer = undefined;
    this.capacity?.off('accepting', this.onAccepting);
    if (this.pg !== undefined) {
      // the batches in hand are stored (or refused) and answered
      await Promise.allSettled([...this.inHand]);
      return;
    }
    // a short backlog is indexed now; a long one at the next start, from the stored batches
    if (this.indexTimer !== undefined) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    if (this.store.indexBacklog <= 100) this.indexNow();
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
  ): Promise<void> | undefined {
    this.counters.rejected++;
    // a DATA message refused: counted by reason for health
    if (reason.startsWith('DATA')) {
      const why = refusal ?? event?.kind ?? 'invalid';
      this.refusedByReason[why] = (this.refusedByReason[why] ?? 0) + 1;
      const o = this.outcomes.get(gateway);
      this.outcomes.set(gateway, { refusedAt: Date.now(), reason: why, ackedAt: o?.ackedAt ?? 0 });
    }
    if (event?.counted) this.events.refuse({ gateway, kind: event.kind, severity: event.severity ?? 'alarm', detail: reason, batch: event.batch });
    else if (event && this.pg !== undefined)
      return this.recordAlone(this.pg.db, gateway, { kind: event.kind, severity: event.severity ?? 'alarm', detail: reason }, event.batch).then(
        () => {
          this.emit('rejected', gateway, reason);
        },
      );
    else if (event) this.events.record(gateway, event.kind, event.severity ?? 'alarm', reason, event.batch);
    else this.logger.warn({ gateway, reason }, 'message rejected');
    this.emit('rejected', gateway, reason);
    return undefined;
  }

  /** PostgreSQL: a security event in a transaction of its own, announced once committed (never throws). */
  private async recordAlone(db: Kysely<Tables>, gateway: string, note: Note, batch: number | null): Promise<void> {
    try {
      const event = await db
        .transaction()
        .execute((trx) => this.events.recordIn(trx, gateway, note.kind, note.severity, note.detail, batch, Date.now()));
      this.events.announce(event);
    } catch (err) {
      this.logger.error({ gateway, kind: note.kind, err: (err as Error).message }, 'a security event could not be recorded');
    }
  }

  /** The gateway's clock against the server's, from a HEALTH message's time: an alarm beyond the bound, a notice back. */
  private observeClock(gateway: string, sentAt: number): void {
    const change = this.clockOffsets.observe(gateway, sentAt, Date.now());
    if (change === undefined) return;
    const seconds = (change.offsetMs / 1000).toFixed(1);
    const bound = (this.clockOffsets.boundMs / 1000).toFixed(1);
    const note: Note =
      change.kind === 'beyond'
        ? {
            kind: 'clock-offset',
            severity: 'alarm',
            detail: `the gateway's clock is ${seconds} s ${change.offsetMs > 0 ? 'ahead of' : 'behind'} the server's (bound ${bound} s): the times it gives its samples are off by as much`,
          }
        : { kind: 'clock-offset', severity: 'notice', detail: `the gateway's clock is back within ${bound} s of the server's (${seconds} s)` };
    if (this.pg !== undefined) void this.recordAlone(this.pg.db, gateway, note, null);
    else
      try {
        this.events.record(gateway, note.kind, note.severity, note.detail, null);
      } catch (err) {
        this.logger.error({ gateway, err: (err as Error).message }, 'a clock-offset event could not be recorded');
      }
  }

  /** A gateway's clock offset against the server's, from its HEALTH messages (undefined before the first). */
  clockOffsetOf(gateway: string): ClockOffset | undefined {
    return this.clockOffsets.of(gateway);
  }

  /**
   * Every gateway measured recently: its clock minus the server's (ms), and minus NTP's when it says: the server's
   * clock as they see it.
   */
  recentClockOffsets(): { offsetMs: number; ntpOffsetMs: number | undefined }[] {
    return this.clockOffsets.recent(Date.now());
  }

  /** the bound of a gateway's clock offset (ingest.maxClockOffsetMs) */
  get clockOffsetBoundMs(): number {
    return this.clockOffsets.boundMs;
  }

  private command(gateway: string, cmd: CmdMessage): Promise<void> {
    return this.broker.publish(topicFor(this.lab, gateway, 'CMD'), JSON.stringify(cmd));
  }

  /** `leaves`: the records' leaf hashes, packed, computed over the received bytes (binary batches). */
  private data(gateway: string, message: DataMessage, receivedAt: number, leaves?: Uint8Array, records?: Uint8Array): Promise<void> {
    this.counters.received++;
    this.counters.receivedSamples += message.samples.length;
    if (this.pg === undefined) return this.dataOf(gateway, message, receivedAt, leaves, records);
    // PostgreSQL: a gateway's batches are checked one after the other and handed to its commit queue in the order
    // they came (its chain advances in order); a batch is checked once the one before it is handed on (or answered)
    let handed = (): void => undefined;
    const turn = new Promise<void>((resolve) => (handed = resolve));
    const before = this.pipelines.get(gateway) ?? Promise.resolve();
    this.pipelines.set(gateway, turn);
    void turn.then(() => {
      if (this.pipelines.get(gateway) === turn) this.pipelines.delete(gateway);
    });
    const done = before.then(() => this.dataOf(gateway, message, receivedAt, leaves, records, handed)).finally(handed);
    this.inHand.add(done);
    void done.catch(() => undefined).finally(() => this.inHand.delete(done));
    return done;
  }

  /** `receivedAt`: performance.now() when the message reached the ingest; `handed`: called once the batch is in its gateway's commit queue (PostgreSQL) */
  private async dataOf(
    gateway: string,
    message: DataMessage,
    receivedAt: number,
    leaves?: Uint8Array,
    records?: Uint8Array,
    handed?: () => void,
  ): Promise<void> {
    const what = `DATA: batch ${message.batch} of ${gateway}`;
    if (message.gateway !== gateway)
      return this.reject(gateway, `${what}: names gateway "${message.gateway}"`, { kind: 'foreign-gateway', batch: message.batch });
    const signed = message.signed;
    if (signed === undefined) return this.reject(gateway, `${what}: not signed`, { kind: 'unsigned', batch: message.batch });
    const { header } = signed;
    if (header.batch !== message.batch)
      return this.reject(gateway, `${what}: the signed header is of batch ${header.batch}`, { kind: 'altered', batch: message.batch });
    let key = this.keys.get(gateway, header.keyId);
    if (key === undefined && this.pg !== undefined) {
      // registered through another node since this one loaded the keys
      await this.keys.refresh();
      key = this.keys.get(gateway, header.keyId);
    }
    if (key === undefined)
      return this.reject(gateway, `${what}: key ${header.keyId} is not registered for this gateway`, { kind: 'unknown-key', batch: header.batch });
    // the key's validity, by what the server knows: a batch not already stored must be acceptable under the key now
    // (arrival time, batch number); the times the batch carries play no part
    const hash = toBase64(headerHash(header));
    const now = Date.now();
    const refusal = this.keys.refusal(key, header.batch, now);
    if (
      refusal !== undefined &&
      (this.pg === undefined ? this.chain.stored(gateway, header.batch)?.hash : (await chainIn.stored(this.pg.db, gateway, header.batch))?.hash) !==
        hash
    )
      return this.reject(gateway, `${what}: ${refusal.detail}`, { kind: refusal.kind, batch: header.batch });
    try {
      verifyBatch(signed, message.samples, key.key, gateway, leaves);
    } catch (err) {
      const reason = (err as Error).message;
      return this.reject(gateway, `DATA: ${reason}`, { kind: /bad signature/.test(reason) ? 'forged' : 'altered', batch: header.batch });
    }
    const named = new Set(message.samples.filter((s) => s.instrument !== gateway).map((s) => s.instrument));
    let foreign = this.foreign(gateway, named);
    if (foreign !== undefined && this.pg !== undefined) {
      // announced through another node since this one read the register (its BIRTH reached that node only)
      for (const i of await this.registry.instruments()) this.owners.set(i.id, i.gateway);
      foreign = this.foreign(gateway, named);
    }
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
      if (this.pg !== undefined)
        outcome = await this.enqueuePg(this.pg, handed, what, key, now, skew, {
          gateway,
          samples: message.samples,
          signed,
          headerHash: hash,
          now,
          ...(records === undefined ? {} : { records }),
        });
      else
        outcome = await this.commit(() => {
          const stored = this.chain.stored(gateway, header.batch);
          if (stored !== undefined) {
            if (stored.hash === hash) return { kind: 'duplicate' as const };
            return { kind: 'conflict' as const, detail: conflictDetail(what, header.batch, stored.hash, hash) };
          }
          // checked again in the commit: a revocation made meanwhile (by the admin command line) holds at once
          const late = this.keys.refusal(this.keys.get(gateway, header.keyId) ?? key, header.batch, now);
          if (late !== undefined) return { kind: 'refused' as const, refusal: late };
          this.store.store(gateway, message.samples, signed, hash, now, records);
          const notes = this.chain.advance(gateway, header, hash, message.samples, this.broker.sharedIngest === true);
          if (this.log) this.store.setLogIndex(gateway, header.batch, this.log.append('batch-header', [canonicalBytes(signed)], now));
          for (const n of notes) this.events.record(gateway, n.kind, n.severity, n.detail, n.batch, now);
          for (const n of batchNotes(gateway, what, message.samples, skew))
            this.events.record(gateway, n.kind, n.severity, n.detail, header.batch, now);
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
          }
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
    if (outcome.kind === 'overlap')
      return this.reject(gateway, `${what}: ${outcome.detail}`, { kind: 'sequence-overlap', batch: header.batch, counted: true });
    if (outcome.kind === 'conflict') return this.reject(gateway, outcome.detail, { kind: 'conflict', batch: header.batch });
    if (outcome.kind === 'refused')
      return this.reject(gateway, `${what}: ${outcome.refusal.detail}`, { kind: outcome.refusal.kind, batch: header.batch });
    if (outcome.kind === 'duplicate') {
      this.counters.duplicates += message.samples.length;
      // PostgreSQL recorded it in the transaction that found it
      if (this.pg === undefined) {
        const n = duplicateNote(what, header.batch, this.chain.state(gateway)?.nextBatch ?? 0);
        this.events.record(gateway, n.kind, n.severity, n.detail, header.batch, now);
      }
    } else {
      this.counters.batches++;
      // a batch is stored whole or not at all (overlapping batches are refused), so every sample is new
      this.counters.samples += message.samples.length;
    }
    const o = this.outcomes.get(gateway);
    if (o !== undefined) o.ackedAt = Date.now();
    // Only now, after the commit, does the gateway learn that it may forget the batch.
    await this.broker.publish(topicFor(this.lab, gateway, 'ACK'), JSON.stringify({ v: 1, batch: message.batch }));
    this.emit('acked', gateway, performance.now() - receivedAt);
    // which node took which batch, for an operator following batches across nodes (LOG_LEVEL=debug)
    this.logger.debug({ gateway, batch: message.batch, outcome: outcome.kind }, 'batch acknowledged');
    if (outcome.kind !== 'stored') return;
    // A node that shares DATA with other nodes sees gaps in its own stored chain that are batches in another
    // node's hands: asking for them would resend batches in flight there (stored twice across separate stores).
    // Lost batches come again anyway, after the gateway's ACK timeout.
    if (outcome.gap && this.broker.sharedIngest !== true) {
      const next = this.pg === undefined ? this.chain.state(gateway)?.nextBatch : outcome.next;
      const last = this.resendAsked.get(gateway) ?? 0;
      if (next !== undefined && now - last > 5000) {
        this.resendAsked.set(gateway, now);
        await this.command(gateway, { v: 1, cmd: 'resend', fromBatch: next });
      }
    }
    // samples dated outside the accepted window are not pushed live (they are not an instrument's latest value)
    const live = skew === undefined ? message.samples : message.samples.filter((s) => this.inWindow(s.ts, now));
    if (live.length > 0)
      this.emit(
        'samples',
        live.map((s) => liveSampleOf(gateway, s)),
      );
  }

  /**
   * PostgreSQL: hands a verified batch to its gateway's commit queue. The batches that gather there while a
   * transaction of the gateway runs are stored together in the next one (at most PG_GROUP): one lock, one log append,
   * one COMMIT for them all, as SQLite's group commit does across gateways.
   */
  private enqueuePg(
    pg: { db: Kysely<Tables>; store: PgMeasurementStore },
    handed: (() => void) | undefined,
    what: string,
    key: GatewayKey,
    now: number,
    skew: string | undefined,
    batch: BatchToStore,
  ): Promise<Outcome> {
    const outcome = new Promise<Outcome>((resolve, reject) => {
      const item: PgItem = { what, key, now, skew, batch, resolve, reject };
      const queue = this.pgQueues.get(batch.gateway);
      if (queue !== undefined) queue.push(item);
      else {
        this.pgQueues.set(batch.gateway, [item]);
        void this.commitQueue(pg, batch.gateway);
      }
    });
    handed?.();
    return outcome;
  }

  /** Stores a gateway's queued batches, a group per transaction, until its queue is empty. */
  private async commitQueue(pg: { db: Kysely<Tables>; store: PgMeasurementStore }, gateway: string): Promise<void> {
    for (let queue = this.pgQueues.get(gateway); queue !== undefined && queue.length > 0; queue = this.pgQueues.get(gateway)) {
      const group = queue.splice(0, PG_GROUP);
      try {
        const outcomes = await this.commitPg(pg, gateway, group);
        group.forEach((item, i) => item.resolve(outcomes[i] as Outcome));
      } catch (err) {
        if (group.length === 1) (group[0] as PgItem).reject(err);
        else
          // one batch's failure must not refuse the others: each again in a transaction of its own
          for (const item of group)
            await this.commitPg(pg, gateway, [item]).then(
              ([outcome]) => item.resolve(outcome as Outcome),
              (e: unknown) => item.reject(e),
            );
      }
    }
    this.pgQueues.delete(gateway);
  }

  /**
   * PostgreSQL: one transaction for verified batches of one gateway, holding the gateway's lock (taken before anything
   * is read, so that a batch another node is committing is seen as stored once it has): each stored, duplicate,
   * conflict, overlap or refused, with the chain advanced, its security events and its log leaf; the events are
   * announced after COMMIT.
   */
  private async commitPg(pg: { db: Kysely<Tables>; store: PgMeasurementStore }, gateway: string, group: readonly PgItem[]): Promise<Outcome[]> {
    // ids and month partitions: committed on their own, before the transaction (harmless if it rolls back)
    await pg.store.prepare(group.map((item) => item.batch));
    const recorded: SecurityEvent[] = [];
    const outcomes = await pg.db.transaction().execute(async (trx): Promise<Outcome[]> => {
      const raw = trx as unknown as Transaction<unknown>;
      await pg.store.lockGateways(raw, [gateway]);
      const results: Outcome[] = [];
      const leaves: { batch: number; signed: SignedBatch; now: number }[] = [];
      for (const item of group) {
        const outcome = await this.storeIn(trx, item, recorded);
        results.push(outcome);
        if (outcome.kind === 'stored') leaves.push({ batch: item.batch.signed.header.batch, signed: item.batch.signed, now: item.now });
      }
      // last: the log's lock is held from here until COMMIT, serializing every node's appends
      const last = leaves[leaves.length - 1];
      if (this.logStore !== undefined && last !== undefined) {
        const first = await this.logStore.append(
          trx,
          'batch-header',
          leaves.map((l) => canonicalBytes(l.signed)),
          last.now,
        );
        for (const [i, l] of leaves.entries()) await pg.store.setLogIndex(raw, gateway, l.batch, first + i);
      }
      return results;
    });
    for (const event of recorded) this.events.announce(event);
    return outcomes;
  }

  /** One batch in the gateway's transaction (see commitPg); its security events are collected in `recorded`. */
  private async storeIn(trx: Transaction<Tables>, item: PgItem, recorded: SecurityEvent[]): Promise<Outcome> {
    const { what, key, now, skew, batch } = item;
    const { gateway, signed, headerHash: hash } = batch;
    const { header } = signed;
    const raw = trx as unknown as Transaction<unknown>;
    const pg = this.pg as { db: Kysely<Tables>; store: PgMeasurementStore };
    const record = async (n: Note, number: number | null = header.batch): Promise<void> => {
      recorded.push(await this.events.recordIn(trx, gateway, n.kind, n.severity, n.detail, number, now));
    };
    // a batch stored already (here or by another node): acknowledged again; another batch under its number: a conflict
    const already = async (): Promise<Outcome | undefined> => {
      const stored = await chainIn.stored(trx, gateway, header.batch);
      if (stored === undefined) return undefined;
      if (stored.hash !== hash) return { kind: 'conflict', detail: conflictDetail(what, header.batch, stored.hash, hash) };
      await record(duplicateNote(what, header.batch, (await chainIn.state(trx, gateway))?.nextBatch ?? 0));
      return { kind: 'duplicate' };
    };
    // checked again under the lock, as the store holds the key now: a rotation or revocation made meanwhile, on any
    // node, holds at once (for a batch not stored already); one read by primary key
    const late = await this.keys.refusalIn(trx, this.keys.get(gateway, header.keyId) ?? key, header.batch, now);
    if (late !== undefined) return (await already()) ?? { kind: 'refused', refusal: late };
    // storeBatch looks for the batch itself (one query less per batch); nothing is written unless it is stored
    const result = await pg.store.storeBatch(raw, batch);
    if (result.kind !== 'stored') return (await already()) ?? { kind: 'overlap', detail: result.kind === 'conflict' ? result.detail : '' };
    const { notes, state } = await chainIn.advance(trx, gateway, header, hash, batch.samples, this.broker.sharedIngest === true);
    for (const n of notes) await record(n, n.batch);
    if (skew !== undefined)
      await trx
        .insertInto('clock_skew_batches')
        .values({
          gateway,
          batch: header.batch,
          first_seq: header.firstSeq,
          last_seq: header.firstSeq + header.count - 1,
          earliest: now - this.clock.maxAgeMs,
          latest: now + this.clock.maxClockSkewMs,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    for (const n of batchNotes(gateway, what, batch.samples, skew)) await record(n);
    return { kind: 'stored', gap: notes.some((n) => n.kind === 'batch-gap'), next: state.nextBatch };
  }

  /**
   * Group commit: the batches verified in one turn of the event loop are stored in one durable
   * transaction (one disk flush for all), each in its own savepoint, so one that fails rolls back
   * alone. Each caller learns its outcome only after the whole transaction is on disk.
   */
  private commit(work: () => Outcome): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ work, resolve, reject });
      if (this.pending.length !== 1) return;
      // back-pressure: while the index worker is too far behind, the next group commit waits for it (its batches
      // are neither stored nor acknowledged meanwhile, so the gateways hold them)
      if (this.store.hasIndexRoom()) setImmediate(() => this.commitPending());
      else void this.store.whenIndexRoom().then(() => setImmediate(() => this.commitPending()));
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
    // an index worker is told at once (it reads the committed batches from the store on its own thread)
    if (this.store.worker !== undefined) this.indexNow();
    else if (pending <= INDEX_AT_ONCE) this.indexNow();
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
    const receivedAt = performance.now();
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
      return this.data(
        topic.gateway,
        { v: 1, gateway: signed.header.gateway, batch: signed.header.batch, samples, signed },
        receivedAt,
        leaves,
        records,
      );
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
        return this.data(topic.gateway, parsed.data, receivedAt);
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
        this.observeClock(topic.gateway, parsed.data.ts);
        // its own clock against NTP, when it measures it and NTP answers: what the server's clock is then known against
        this.clockOffsets.ntpSays(topic.gateway, parsed.data.clock?.answering === true ? parsed.data.clock.offsetMs : undefined);
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
