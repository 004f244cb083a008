// Leases: which node of a lab runs a job that must run on one node at a time, and the fence that keeps a node that
// only believes it still holds a lease from writing.
//
// On PostgreSQL a lease is a session-level advisory lock (pg_try_advisory_lock), taken on one connection per node
// that is dedicated to leases (never a pooled connection that other code could be handed, and that would carry the
// lock with it). PostgreSQL releases the lock when that session ends: the node exits or is killed (its socket
// closes), stop() closes it, or the node goes silent (stalled, partitioned) and the server ends the session after
// `sessionTimeoutMs` (idle_session_timeout, set on that session; TCP keepalive covers a peer that vanished). Another
// node's next poll then takes the lock. The lease connection must reach PostgreSQL (14 or later, for
// idle_session_timeout) itself or through a pooler in session mode: a transaction-mode pooler (pgbouncer's
// pool_mode=transaction) would hand the session, and its locks, to other clients.
//
// A lock alone does not make a write happen once: a node that stalled (a long GC pause, a stopped process, a
// partition) wakes up believing it holds a lease that another node took meanwhile, and nothing in its own state can
// tell it otherwise before its next write. So every acquisition adds one to the lease's epoch in `cluster_leases`
// (a fencing token), and a job's write that must happen once runs in a transaction that first reads the row
// `FOR SHARE` and refuses unless the epoch is still its own (fenced()). The row lock orders the two: a new holder's
// epoch update waits for a stale holder's transaction that read the row first (which commits before the new holder
// starts, and is seen by it), and a stale holder's transaction that comes after it finds a newer epoch and writes
// nothing. Checking pg_locks for the lease session instead would not do: the check and the write are on different
// connections, and the lease can be lost between them.
// Set idle_in_transaction_session_timeout on the store's connections, so that a node stalled inside such a
// transaction does not hold up the next holder indefinitely.
//
// The embedded SQLite store has one node: it holds every lease as soon as it wants it, with the same epochs and
// the same fence, so that the server runs the same job code on both stores.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { sql, type Kysely, type Transaction } from 'kysely';
import pg from 'pg';
import { LabtraceError } from '@labtrace/protocols';

export { clusterSettingsSchema, nodeName, type ClusterSettings } from './config.js';

export type ClusterTables = {
  cluster_leases: { name: string; holder: string; epoch: number; acquired_at: number };
};

export interface Lease {
  readonly name: string;
  /** the node holding it */
  readonly holder: string;
  /** the fencing token of this acquisition: greater than that of any earlier acquisition, on any node */
  readonly epoch: number;
}

export type LeaseLossReason = 'connection-lost' | 'query-failed' | 'stalled' | 'not-held';

export interface LeasesEvents {
  /** this node won the lease: its job may start */
  acquired: [lease: Lease];
  /** this node no longer holds the lease, without having given it up: its job must stop at once */
  lost: [lease: Lease, reason: LeaseLossReason, cause: unknown];
  /** this node gave the lease up (release() or stop()) */
  released: [lease: Lease];
  /** the lease connection could not be opened or failed; the node retries at its next poll */
  connectionError: [error: LabtraceError];
}

/** `DB`: the store's tables as the jobs' fenced writes see them (any set that includes cluster_leases) */
export interface Leases<DB extends ClusterTables = ClusterTables> extends EventEmitter<LeasesEvents> {
  readonly node: string;
  start(): Promise<void>;
  /** gives up every lease and stops competing (another node takes them over at its next poll) */
  stop(): Promise<void>;
  /** competes for the lease from now on (acquired is emitted when it is won) */
  want(name: string): void;
  /** gives the lease up and stops competing for it */
  release(name: string): Promise<void>;
  /** the lease as this node believes it holds it (only fenced() knows for sure) */
  held(name: string): Lease | undefined;
  /**
   * Runs `write` in a transaction of the store that commits only if `lease` is still the current acquisition of
   * its name; otherwise nothing is written and E_LEASE_LOST is thrown (details: { name, epoch, current }).
   */
  fenced<T>(lease: Lease, write: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
}

/**
 * The advisory lock key of a lease: the first 8 bytes of SHA-256("labtrace:lease:" + name), read as a big-endian
 * signed 64-bit integer (PostgreSQL's bigint), returned as its decimal text. Stable across nodes, versions and
 * processes; the prefix keeps it apart from other users of advisory locks (Kysely's migration lock is one fixed key).
 */
export function leaseKey(name: string): string {
  const digest = createHash('sha256').update(`labtrace:lease:${name}`, 'utf8').digest();
  return digest.readBigInt64BE(0).toString();
}

const LEASE_NAME = /^[\w.:-]{1,128}$/;

function checkName(name: string): void {
  if (!LEASE_NAME.test(name)) throw new LabtraceError('E_CONFIG', `lease name "${name}": expected 1 to 128 letters, digits, _ . : or -`);
}

/** what both kinds of leases share: the wanted and held names, the epoch row and the fence */
abstract class LeaseBook<DB extends ClusterTables> extends EventEmitter<LeasesEvents> {
  protected readonly wanted = new Set<string>();
  protected readonly holding = new Map<string, Lease>();

  constructor(
    readonly node: string,
    protected readonly store: Kysely<DB>,
    protected readonly now: () => number,
  ) {
    super();
  }

  /** the store, as far as leases know it (Kysely's types do not narrow a generic table set) */
  protected get db(): Kysely<ClusterTables> {
    return this.store as unknown as Kysely<ClusterTables>;
  }

  held(name: string): Lease | undefined {
    return this.holding.get(name);
  }

  async fenced<T>(lease: Lease, write: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    const postgres = this.isPostgres();
    return this.store.transaction().execute(async (tx) => {
      const trx = tx as unknown as Transaction<ClusterTables>;
      // FOR SHARE: a new holder's epoch update waits until this transaction ends (SQLite has one writer at a time)
      const query = trx.selectFrom('cluster_leases').select(['epoch', 'holder']).where('name', '=', lease.name);
      const row = await (postgres ? query.forShare() : query).executeTakeFirst();
      const current = row === undefined ? null : Number(row.epoch);
      if (current !== lease.epoch || row?.holder !== lease.holder)
        throw new LabtraceError(
          'E_LEASE_LOST',
          `lease ${lease.name}: epoch ${lease.epoch} of ${lease.holder} is no longer current (now ${current ?? 'none'} of ${row?.holder ?? 'nobody'}); nothing written`,
          { details: { name: lease.name, epoch: lease.epoch, current } },
        );
      return write(tx);
    });
  }

  protected abstract isPostgres(): boolean;
}

/** The embedded store's leases: one node, which holds every lease it wants. */
export class SqliteLeases<DB extends ClusterTables = ClusterTables> extends LeaseBook<DB> implements Leases<DB> {
  private started = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(options: { db: Kysely<DB>; node: string; now?: () => number }) {
    super(options.node, options.db, options.now ?? Date.now);
  }

  protected isPostgres(): boolean {
    return false;
  }

  async start(): Promise<void> {
    this.started = true;
    for (const name of this.wanted) this.acquireLater(name);
    await this.pending;
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.pending;
    for (const lease of [...this.holding.values()]) {
      this.holding.delete(lease.name);
      this.emit('released', lease);
    }
  }

  want(name: string): void {
    checkName(name);
    if (this.wanted.has(name)) return;
    this.wanted.add(name);
    if (this.started) this.acquireLater(name);
  }

  async release(name: string): Promise<void> {
    this.wanted.delete(name);
    await this.pending;
    const lease = this.holding.get(name);
    if (lease === undefined) return;
    this.holding.delete(name);
    this.emit('released', lease);
  }

  private acquireLater(name: string): void {
    this.pending = this.pending.then(async () => {
      if (!this.started || !this.wanted.has(name) || this.holding.has(name)) return;
      try {
        const epoch = await this.bump(name);
        const lease: Lease = { name, holder: this.node, epoch };
        this.holding.set(name, lease);
        this.emit('acquired', lease);
      } catch (err) {
        this.emit(
          'connectionError',
          new LabtraceError('E_STORE', `lease ${name}: cannot record its acquisition: ${(err as Error).message}`, { cause: err }),
        );
      }
    });
  }

  private async bump(name: string): Promise<number> {
    const row = await this.db
      .insertInto('cluster_leases')
      .values({ name, holder: this.node, epoch: 1, acquired_at: this.now() })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({
          holder: eb.ref('excluded.holder'),
          epoch: sql<number>`cluster_leases.epoch + 1`,
          acquired_at: eb.ref('excluded.acquired_at'),
        })),
      )
      .returning('epoch')
      .executeTakeFirstOrThrow();
    return Number(row.epoch);
  }
}

export interface PostgresLeasesOptions<DB extends ClusterTables = ClusterTables> {
  /** the store (a pooled Kysely): fenced() runs its transactions there */
  db: Kysely<DB>;
  /** how to open the node's own lease connection (the store's host, port, user, database, password, ssl) */
  connection: pg.ClientConfig;
  node: string;
  pollMs: number;
  sessionTimeoutMs: number;
  now?: () => number;
}

/** PostgreSQL's leases: session-level advisory locks on a connection of the node's own. */
export class PostgresLeases<DB extends ClusterTables = ClusterTables> extends LeaseBook<DB> implements Leases<DB> {
  private readonly options: PostgresLeasesOptions<DB>;
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** every use of the lease connection, one after the other */
  private chain: Promise<void> = Promise.resolve();
  /** when the leases were last confirmed held (a poll that reached the server) */
  private confirmedAt = 0;

  constructor(options: PostgresLeasesOptions<DB>) {
    super(options.node, options.db, options.now ?? Date.now);
    this.options = options;
  }

  protected isPostgres(): boolean {
    return true;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.exclusive(() => this.poll());
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.exclusive(async () => {
      const client = this.client;
      this.client = undefined;
      if (client === undefined) return;
      for (const lease of [...this.holding.values()]) {
        try {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [leaseKey(lease.name)]);
        } catch {
          // the session ends just below, and its locks with it
        }
        this.holding.delete(lease.name);
        this.emit('released', lease);
      }
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    });
  }

  want(name: string): void {
    checkName(name);
    this.wanted.add(name);
  }

  async release(name: string): Promise<void> {
    this.wanted.delete(name);
    await this.exclusive(async () => {
      const lease = this.holding.get(name);
      if (lease === undefined) return;
      this.holding.delete(name);
      try {
        await this.client?.query('SELECT pg_advisory_unlock($1::bigint)', [leaseKey(name)]);
        this.emit('released', lease);
      } catch (err) {
        // the lock could not be given back on this session: end the session, which ends its locks
        this.emit('released', lease);
        this.drop('query-failed', err);
      }
    });
  }

  private exclusive(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.exclusive(() => this.poll())
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.options.pollMs);
  }

  private async connect(): Promise<pg.Client> {
    const { pollMs, sessionTimeoutMs } = this.options;
    const client = new pg.Client({
      ...this.options.connection,
      application_name: `labtrace-leases:${this.node}`.slice(0, 63),
      keepAlive: true,
      keepAliveInitialDelayMillis: Math.max(1000, Math.floor(sessionTimeoutMs / 2)),
      connectionTimeoutMillis: sessionTimeoutMs,
      // a query that does not answer in time is taken as a lost session
      query_timeout: sessionTimeoutMs,
      // the server ends this session when the node stays silent that long (stalled, partitioned), releasing its
      // locks; a node that cannot record its epoch in time (a stale holder's fenced transaction holds the row)
      // gives the lock back and tries again
      options: `-c idle_session_timeout=${sessionTimeoutMs} -c lock_timeout=${Math.max(pollMs, 100)} -c idle_in_transaction_session_timeout=${sessionTimeoutMs}`,
    });
    client.on('error', (err) => this.drop('connection-lost', err, client));
    client.on('end', () => this.drop('connection-lost', new Error('the lease connection ended'), client));
    try {
      await client.connect();
    } catch (err) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  }

  /** The lease connection is gone or not to be trusted: every lease it held is lost, now. */
  private drop(reason: LeaseLossReason, cause: unknown, which?: pg.Client): void {
    const client = this.client;
    if (client === undefined || (which !== undefined && which !== client)) return;
    this.client = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.loseAll(reason, cause);
  }

  private loseAll(reason: LeaseLossReason, cause: unknown): void {
    for (const lease of [...this.holding.values()]) {
      this.holding.delete(lease.name);
      this.emit('lost', lease, reason, cause);
    }
  }

  private async poll(): Promise<void> {
    if (!this.running) return;
    // a node that could not confirm its leases for longer than the server keeps a silent session cannot know
    // that it still holds them (it was stalled or cut off): take them for lost before anything else
    if (this.holding.size > 0 && this.now() - this.confirmedAt > this.options.sessionTimeoutMs)
      this.drop('stalled', new Error(`the leases were last confirmed ${this.now() - this.confirmedAt} ms ago`));
    let client = this.client;
    if (client === undefined) {
      try {
        client = await this.connect();
      } catch (err) {
        this.emit(
          'connectionError',
          new LabtraceError('E_STORE_UNAVAILABLE', `leases: cannot open the lease connection: ${(err as Error).message}`, { cause: err }),
        );
        return;
      }
      if (!this.running) {
        client.removeAllListeners();
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
    }
    try {
      // the locks this session holds, as keys ("a bigint key is displayed with its high-order half in the classid
      // column, its low-order half in the objid column, and objsubid equal to 1")
      const { rows } = await client.query<{ key: string }>(
        `SELECT ((classid::bigint << 32) | objid::bigint)::text AS key FROM pg_locks
         WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid = pg_backend_pid()`,
      );
      const keys = new Set(rows.map((r) => r.key));
      this.confirmedAt = this.now();
      for (const lease of [...this.holding.values()])
        if (!keys.has(leaseKey(lease.name))) {
          this.holding.delete(lease.name);
          this.emit('lost', lease, 'not-held', new Error('the session no longer holds its advisory lock'));
        }
      for (const name of this.wanted) {
        if (this.holding.has(name) || !this.running) continue;
        const key = leaseKey(name);
        const { rows: got } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key]);
        if (got[0]?.ok !== true) continue;
        let epoch: number;
        try {
          const { rows: bumped } = await client.query<{ epoch: string }>(
            `INSERT INTO cluster_leases (name, holder, epoch, acquired_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = cluster_leases.epoch + 1, acquired_at = EXCLUDED.acquired_at
             RETURNING epoch`,
            [name, this.node, this.now()],
          );
          epoch = Number(bumped[0]?.epoch);
        } catch (err) {
          // not recorded (lock_timeout: a stale holder's fenced transaction still holds the row): give the lock back
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
          this.emit(
            'connectionError',
            new LabtraceError('E_STORE', `lease ${name}: cannot record its acquisition: ${(err as Error).message}`, { cause: err }),
          );
          continue;
        }
        const lease: Lease = { name, holder: this.node, epoch };
        this.holding.set(name, lease);
        this.emit('acquired', lease);
      }
    } catch (err) {
      if (this.client === client) this.drop('query-failed', err);
      this.emit(
        'connectionError',
        new LabtraceError('E_STORE_UNAVAILABLE', `leases: the lease connection failed: ${(err as Error).message}`, { cause: err }),
      );
    }
  }
}
