// The supervisor's own store, on SQLite (a file, the default) or on PostgreSQL, through Kysely: per lab the follow
// cursor and the checkpoints seen, the log entries, the records read with the lab's token, the conflicts, the
// findings with their evidence and the lab's responses, and the checks run. The tables are written once in SQLite's
// words and said in PostgreSQL's on PostgreSQL (store/portable-ddl.ts): INTEGER is BIGINT, BLOB is BYTEA, and text is
// compared byte by byte on both (COLLATE "C"). One supervisor process writes a store: the rounds never overlap, and
// a lease (sup_lease, one row) names the process that holds the store; a second one is refused while the lease is
// renewed, and takes it over once it has not been renewed for leaseMs (its holder died).
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { sql, type Generated, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import { LabtraceError } from '@labtrace/protocols';
import { describeTarget, openStore, type OpenedStore, type StoreTarget } from '../store/dialect.js';
import { postgresStatement, type SqlDialect } from '../store/portable-ddl.js';
import { bilingualColumn, bilingualOfColumn } from './bilingual.js';
import type { Bilingual, ConflictEvidence, HeldCheckpoint, LogEntryEvidence, Severity } from './evidence.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sup_labs (
    lab TEXT PRIMARY KEY,
    size INTEGER NOT NULL DEFAULT 0,
    root_hash TEXT,
    note TEXT,
    -- the right edge of the Merkle tree of the entries held (JSON array of base64 hashes)
    peaks TEXT NOT NULL DEFAULT '[]',
    last_deep_check INTEGER
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_checkpoints (
    lab TEXT NOT NULL,
    size INTEGER NOT NULL,
    root_hash TEXT NOT NULL,
    note TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    cosigned_by TEXT NOT NULL,
    PRIMARY KEY (lab, size)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_entries (
    lab TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    data BLOB NOT NULL,
    leaf BLOB NOT NULL,
    PRIMARY KEY (lab, idx)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_records (
    lab TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (lab, kind, id)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lab TEXT NOT NULL,
    kind TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    held_note TEXT NOT NULL,
    served_note TEXT NOT NULL,
    proof TEXT NOT NULL,
    reason TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lab TEXT NOT NULL,
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL,
    at INTEGER NOT NULL,
    detected_at INTEGER NOT NULL,
    summary TEXT NOT NULL,
    subject TEXT NOT NULL,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    UNIQUE (lab, rule, key)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_responses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finding INTEGER NOT NULL REFERENCES sup_findings(id),
    at INTEGER NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('response', 'resolution')),
    text TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_check_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lab TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    deep INTEGER NOT NULL,
    log_size INTEGER NOT NULL,
    rules TEXT NOT NULL,
    new_findings INTEGER NOT NULL,
    error TEXT
  ) STRICT;
  CREATE TABLE IF NOT EXISTS sup_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    renewed_at INTEGER NOT NULL
  ) STRICT;
`;

/** how long a lease not renewed keeps another process out (its holder renews it every third of this) */
export const DEFAULT_LEASE_MS = 30_000;

export interface LabCursor {
  lab: string;
  size: number;
  rootHash: string | null;
  note: string | null;
  peaks: string[];
  lastDeepCheck: number | null;
}

export interface StoredFinding {
  id: number;
  lab: string;
  rule: string;
  key: string;
  severity: Severity;
  at: number;
  detectedAt: number;
  summary: Bilingual;
  subject: Record<string, string>;
  evidence: FindingEvidence;
  status: 'open' | 'resolved';
  responses: { at: number; author: string; kind: 'response' | 'resolution'; text: string }[];
}

/** what a finding carries so that anyone can check it */
export interface FindingEvidence {
  /** the checkpoint the proofs lead to */
  checkpoint: string | null;
  entries: { index: number; why: string; kind: string; leafHash: string; inclusionProof: string[] | null }[];
  detail?: Record<string, unknown>;
}

export interface CheckRun {
  id: number;
  lab: string;
  startedAt: number;
  durationMs: number;
  deep: boolean;
  logSize: number;
  rules: string[];
  newFindings: number;
  error: string | null;
}

/** Where the supervisor's store is: a SQLite file, or a PostgreSQL database whose password may come from a file. */
export interface SupervisorDatabase {
  target: StoreTarget;
  passwordFile?: string | undefined;
  /** the configuration field that named the password file, for its errors */
  passwordFileField?: string | undefined;
}

type Response = StoredFinding['responses'][number];

interface SupervisorTables {
  sup_labs: {
    lab: string;
    size: Generated<number>;
    root_hash: string | null;
    note: string | null;
    peaks: Generated<string>;
    last_deep_check: number | null;
  };
  sup_checkpoints: {
    lab: string;
    size: number;
    root_hash: string;
    note: string;
    first_seen_at: number;
    last_seen_at: number;
    cosigned_by: string;
  };
  sup_entries: { lab: string; idx: number; kind: string; at: number; data: Buffer; leaf: Buffer };
  sup_records: { lab: string; kind: string; id: string; body: string; fetched_at: number };
  sup_conflicts: {
    id: Generated<number>;
    lab: string;
    kind: ConflictEvidence['kind'];
    detected_at: number;
    held_note: string;
    served_note: string;
    proof: string;
    reason: string;
  };
  sup_findings: {
    id: Generated<number>;
    lab: string;
    rule: string;
    key: string;
    severity: Severity;
    at: number;
    detected_at: number;
    summary: string;
    subject: string;
    evidence: string;
    status: Generated<'open' | 'resolved'>;
  };
  sup_responses: { id: Generated<number>; finding: number; at: number; author: string; kind: Response['kind']; text: string };
  sup_check_runs: {
    id: Generated<number>;
    lab: string;
    started_at: number;
    duration_ms: number;
    deep: number;
    log_size: number;
    rules: string;
    new_findings: number;
    error: string | null;
  };
  sup_lease: { id: number; holder: string; host: string; pid: number; acquired_at: number; renewed_at: number };
}

type Db = Kysely<SupervisorTables> | Transaction<SupervisorTables>;
type FindingRow = Selectable<SupervisorTables['sup_findings']>;
type CheckRunRow = Selectable<SupervisorTables['sup_check_runs']>;
type CheckpointRow = Omit<Selectable<SupervisorTables['sup_checkpoints']>, 'lab'>;

// a finding as a row and back: the one place that knows how its fields are kept
const findingRowOf = (f: Omit<StoredFinding, 'id' | 'status' | 'responses'>): Insertable<SupervisorTables['sup_findings']> => ({
  lab: f.lab,
  rule: f.rule,
  key: f.key,
  severity: f.severity,
  at: f.at,
  detected_at: f.detectedAt,
  summary: bilingualColumn(f.summary),
  subject: JSON.stringify(f.subject),
  evidence: JSON.stringify(f.evidence),
});

const findingOf = (r: FindingRow, responses: Response[]): StoredFinding => ({
  id: r.id,
  lab: r.lab,
  rule: r.rule,
  key: r.key,
  severity: r.severity,
  at: r.at,
  detectedAt: r.detected_at,
  summary: bilingualOfColumn(r.summary),
  subject: JSON.parse(r.subject) as Record<string, string>,
  evidence: JSON.parse(r.evidence) as FindingEvidence,
  status: r.status,
  responses,
});

const checkRunOf = (r: CheckRunRow): CheckRun => ({
  id: r.id,
  lab: r.lab,
  startedAt: r.started_at,
  durationMs: r.duration_ms,
  deep: r.deep === 1,
  logSize: r.log_size,
  rules: JSON.parse(r.rules) as string[],
  newFindings: r.new_findings,
  error: r.error,
});

const checkpointOf = (r: CheckpointRow): HeldCheckpoint => ({
  size: r.size,
  rootHash: r.root_hash,
  note: r.note,
  firstSeenAt: r.first_seen_at,
  lastSeenAt: r.last_seen_at,
  cosignedBy: JSON.parse(r.cosigned_by) as string[],
});

const CHECKPOINT_COLUMNS = ['size', 'root_hash', 'note', 'first_seen_at', 'last_seen_at', 'cosigned_by'] as const;

/** entries written per INSERT: 6 parameters each, well under SQLite's 32,766 and PostgreSQL's 65,535 */
const ENTRIES_PER_INSERT = 1000;
const RECORDS_PER_INSERT = 1000;

/** The schema's statements in the engine's words: as written on SQLite; on PostgreSQL without STRICT, text compared as bytes. */
function schemaStatements(dialect: SqlDialect): string[] {
  const statements = SCHEMA.split(';')
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s !== '');
  if (dialect === 'sqlite') return statements;
  return statements.flatMap((s) => postgresStatement(s.replace(/\)\s*STRICT$/, ')').replace(/\bTEXT\b/g, 'TEXT COLLATE "C"')));
}

export class SupervisorStore {
  private opened: OpenedStore | undefined;
  private kysely: Kysely<SupervisorTables> | undefined;
  private readonly database: SupervisorDatabase;
  /** this store's holder id in the lease: random, so that a process that restarts is another holder */
  private readonly holder = randomUUID();
  private leased = false;

  /** `database`: where the store is (a string: the SQLite file) */
  constructor(database: string | SupervisorDatabase) {
    this.database = typeof database === 'string' ? { target: { dialect: 'sqlite', file: database } } : database;
  }

  /** where the store is, as it may be printed (no password) */
  get description(): string {
    return describeTarget(this.database.target);
  }

  /** Opens the store and creates its tables where they are missing. */
  async open(): Promise<void> {
    const opened = openStore(this.database.target, {
      passwordFile: this.database.passwordFile,
      ...(this.database.passwordFileField === undefined ? {} : { passwordFileField: this.database.passwordFileField }),
      poolSize: 4,
    });
    // the lab server's opener, typed for the lab's tables: this store has tables of its own
    const db = opened.db as unknown as Kysely<SupervisorTables>;
    try {
      await db.transaction().execute(async (trx) => {
        for (const statement of schemaStatements(opened.dialect)) await sql.raw(statement).execute(trx);
      });
    } catch (err) {
      await opened.close();
      throw new LabtraceError('E_STORE', `cannot open the supervisor's store ${opened.description}: ${(err as Error).message}`, { cause: err });
    }
    this.opened = opened;
    this.kysely = db;
  }

  /**
   * Takes the store's lease, in one transaction: when nobody holds it, when we do, or when its holder has not renewed
   * it for `leaseMs` (it died). Otherwise refuses (E_CONFLICT), naming the holder: one supervisor writes a store.
   */
  async takeLease(now: number, leaseMs = DEFAULT_LEASE_MS): Promise<void> {
    const held = await this.db()
      .transaction()
      .execute(async (trx) => {
        const mine = { holder: this.holder, host: os.hostname(), pid: process.pid, acquired_at: now, renewed_at: now };
        // the insert first: a write, so SQLite's transaction holds the write lock from here on, and on PostgreSQL two
        // processes finding no lease do not both take it (the second waits for the first's row, then inserts nothing)
        const inserted = await trx
          .insertInto('sup_lease')
          .values({ id: 1, ...mine })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        if (inserted.numInsertedOrUpdatedRows === 1n) return undefined;
        // FOR UPDATE on PostgreSQL: two processes reading an expired lease take it one after the other, the second
        // seeing the first's
        let query = trx.selectFrom('sup_lease').selectAll().where('id', '=', 1);
        if (this.opened?.dialect === 'postgres') query = query.forUpdate();
        const row = await query.executeTakeFirstOrThrow();
        if (row.holder !== this.holder && now - row.renewed_at < leaseMs) return row;
        // ours: renewed, held since it was first taken
        await trx
          .updateTable('sup_lease')
          .set(row.holder === this.holder ? { renewed_at: now } : mine)
          .where('id', '=', 1)
          .execute();
        return undefined;
      });
    if (held !== undefined)
      throw new LabtraceError(
        'E_CONFLICT',
        `the supervisor's store ${this.description} is held by another supervisor process (host ${held.host}, pid ${held.pid}, ` +
          `since ${new Date(held.acquired_at).toISOString()}, renewed ${new Date(held.renewed_at).toISOString()}): ` +
          `only one supervisor may write a store; stop it, or wait ${Math.ceil(leaseMs / 1000)} s after it died`,
      );
    this.leased = true;
  }

  /** Renews our lease; false when another holder has it (we were not renewing it for leaseMs, and it was taken over). */
  async renewLease(now: number): Promise<boolean> {
    const result = await this.db()
      .updateTable('sup_lease')
      .set({ renewed_at: now })
      .where('id', '=', 1)
      .where('holder', '=', this.holder)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) this.leased = false;
    return this.leased;
  }

  /** Gives the lease up (a standby may start at once); a lease taken over by another holder is left to it. */
  async releaseLease(): Promise<void> {
    if (!this.leased) return;
    await this.db().deleteFrom('sup_lease').where('id', '=', 1).where('holder', '=', this.holder).execute();
    this.leased = false;
  }

  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    this.kysely = undefined;
    await opened?.close();
  }

  async cursor(lab: string): Promise<LabCursor> {
    const row = await this.db().selectFrom('sup_labs').selectAll().where('lab', '=', lab).executeTakeFirst();
    return row === undefined
      ? { lab, size: 0, rootHash: null, note: null, peaks: [], lastDeepCheck: null }
      : {
          lab,
          size: row.size,
          rootHash: row.root_hash,
          note: row.note,
          peaks: JSON.parse(row.peaks) as string[],
          lastDeepCheck: row.last_deep_check,
        };
  }

  /** Stores entries [cursor.size, size) and the new checkpoint in one transaction: a restart resumes from here. */
  async advance(
    lab: string,
    entries: readonly { index: number; kind: string; at: number; data: Uint8Array; leaf: Uint8Array }[],
    next: { size: number; rootHash: string; note: string; peaks: string[]; seenAt: number; cosignedBy: string[] },
  ): Promise<void> {
    await this.db()
      .transaction()
      .execute(async (trx) => {
        for (let i = 0; i < entries.length; i += ENTRIES_PER_INSERT) {
          const rows = entries.slice(i, i + ENTRIES_PER_INSERT).map((e) => ({
            lab,
            idx: e.index,
            kind: e.kind,
            at: e.at,
            data: Buffer.from(e.data),
            leaf: Buffer.from(e.leaf),
          }));
          await trx.insertInto('sup_entries').values(rows).execute();
        }
        await trx
          .insertInto('sup_labs')
          .values({ lab, size: next.size, root_hash: next.rootHash, note: next.note, peaks: JSON.stringify(next.peaks) })
          .onConflict((oc) =>
            oc.column('lab').doUpdateSet((eb) => ({
              size: eb.ref('excluded.size'),
              root_hash: eb.ref('excluded.root_hash'),
              note: eb.ref('excluded.note'),
              peaks: eb.ref('excluded.peaks'),
            })),
          )
          .execute();
        await sawCheckpoint(trx, lab, next);
      });
  }

  /** Records that the lab served this checkpoint now (a new size, or the same one seen again). */
  async sawCheckpoint(lab: string, c: { size: number; rootHash: string; note: string; seenAt: number; cosignedBy: string[] }): Promise<void> {
    await sawCheckpoint(this.db(), lab, c);
  }

  async checkpoints(lab: string): Promise<HeldCheckpoint[]> {
    const rows = await this.db().selectFrom('sup_checkpoints').select(CHECKPOINT_COLUMNS).where('lab', '=', lab).orderBy('size').execute();
    return rows.map(checkpointOf);
  }

  /** the checkpoint of the largest size held, if any */
  async latestCheckpoint(lab: string): Promise<HeldCheckpoint | undefined> {
    const row = await this.db()
      .selectFrom('sup_checkpoints')
      .select(CHECKPOINT_COLUMNS)
      .where('lab', '=', lab)
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : checkpointOf(row);
  }

  /** the held entries, parsed (an entry that is not JSON has the value undefined) */
  async entries(lab: string): Promise<LogEntryEvidence[]> {
    const rows = await this.db().selectFrom('sup_entries').select(['idx', 'kind', 'at', 'data']).where('lab', '=', lab).orderBy('idx').execute();
    return rows.map((r) => {
      let value: unknown;
      try {
        value = JSON.parse(r.data.toString('utf8'));
      } catch {
        value = undefined;
      }
      return { index: r.idx, kind: r.kind, at: r.at, value };
    });
  }

  async entryLeaf(lab: string, index: number): Promise<{ kind: string; leaf: Uint8Array } | undefined> {
    const row = await this.db().selectFrom('sup_entries').select(['kind', 'leaf']).where('lab', '=', lab).where('idx', '=', index).executeTakeFirst();
    return row === undefined ? undefined : { kind: row.kind, leaf: new Uint8Array(row.leaf) };
  }

  async putRecords(lab: string, kind: string, records: readonly { id: string; body: unknown }[], at: number): Promise<void> {
    if (records.length === 0) return;
    await this.db()
      .transaction()
      .execute(async (trx) => {
        for (let i = 0; i < records.length; i += RECORDS_PER_INSERT) {
          // one id twice in one INSERT would be an error on PostgreSQL: the last one given is kept, as one by one
          const chunk = new Map(records.slice(i, i + RECORDS_PER_INSERT).map((r) => [r.id, r.body]));
          await trx
            .insertInto('sup_records')
            .values([...chunk].map(([id, body]) => ({ lab, kind, id, body: JSON.stringify(body), fetched_at: at })))
            .onConflict((oc) =>
              oc.columns(['lab', 'kind', 'id']).doUpdateSet((eb) => ({ body: eb.ref('excluded.body'), fetched_at: eb.ref('excluded.fetched_at') })),
            )
            .execute();
        }
      });
  }

  async records<T>(lab: string, kind: string): Promise<T[]> {
    const rows = await this.db().selectFrom('sup_records').select('body').where('lab', '=', lab).where('kind', '=', kind).orderBy('id').execute();
    return rows.map((r) => JSON.parse(r.body) as T);
  }

  async recordsById<T>(lab: string, kind: string): Promise<[string, T][]> {
    const rows = await this.db()
      .selectFrom('sup_records')
      .select(['id', 'body'])
      .where('lab', '=', lab)
      .where('kind', '=', kind)
      .orderBy('id')
      .execute();
    return rows.map((r) => [r.id, JSON.parse(r.body) as T]);
  }

  async recordIds(lab: string, kind: string): Promise<Set<string>> {
    const rows = await this.db().selectFrom('sup_records').select('id').where('lab', '=', lab).where('kind', '=', kind).execute();
    return new Set(rows.map((r) => r.id));
  }

  async addConflict(lab: string, c: Omit<ConflictEvidence, 'id'>): Promise<void> {
    await this.db()
      .insertInto('sup_conflicts')
      .values({
        lab,
        kind: c.kind,
        detected_at: c.detectedAt,
        held_note: c.heldNote,
        served_note: c.servedNote,
        proof: JSON.stringify(c.proof),
        reason: c.reason,
      })
      .execute();
  }

  async conflicts(lab: string): Promise<ConflictEvidence[]> {
    const rows = await this.db().selectFrom('sup_conflicts').selectAll().where('lab', '=', lab).orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      detectedAt: r.detected_at,
      heldNote: r.held_note,
      servedNote: r.served_note,
      proof: JSON.parse(r.proof) as string[],
      reason: r.reason,
    }));
  }

  /** the findings already recorded for a lab, by `rule key` */
  async findingKeys(lab: string): Promise<Set<string>> {
    const rows = await this.db().selectFrom('sup_findings').select(['rule', 'key']).where('lab', '=', lab).execute();
    return new Set(rows.map((r) => `${r.rule} ${r.key}`));
  }

  /** Records a finding, once: a finding of the same lab, rule and key already held is kept as it is. */
  async addFinding(f: Omit<StoredFinding, 'id' | 'status' | 'responses'>): Promise<void> {
    await this.db()
      .insertInto('sup_findings')
      .values(findingRowOf(f))
      .onConflict((oc) => oc.columns(['lab', 'rule', 'key']).doNothing())
      .execute();
  }

  async findings(lab: string): Promise<StoredFinding[]> {
    const db = this.db();
    const rows = await db.selectFrom('sup_findings').selectAll().where('lab', '=', lab).orderBy('id').execute();
    if (rows.length === 0) return [];
    const responses = await db
      .selectFrom('sup_responses')
      .innerJoin('sup_findings', 'sup_findings.id', 'sup_responses.finding')
      .select(['sup_responses.finding', 'sup_responses.at', 'sup_responses.author', 'sup_responses.kind', 'sup_responses.text'])
      .where('sup_findings.lab', '=', lab)
      .orderBy('sup_responses.id')
      .execute();
    const byFinding = new Map<number, Response[]>();
    for (const { finding, ...r } of responses) byFinding.set(finding, [...(byFinding.get(finding) ?? []), r]);
    return rows.map((r) => findingOf(r, byFinding.get(r.id) ?? []));
  }

  /** Records the lab's reasoned response, or the supervisor's resolution (which stops the finding counting). */
  async respond(lab: string, finding: number, r: Response): Promise<boolean> {
    return this.db()
      .transaction()
      .execute(async (trx) => {
        const exists = await trx.selectFrom('sup_findings').select('id').where('id', '=', finding).where('lab', '=', lab).executeTakeFirst();
        if (exists === undefined) return false;
        await trx.insertInto('sup_responses').values({ finding, at: r.at, author: r.author, kind: r.kind, text: r.text }).execute();
        if (r.kind === 'resolution') await trx.updateTable('sup_findings').set({ status: 'resolved' }).where('id', '=', finding).execute();
        return true;
      });
  }

  async markDeepCheck(lab: string, at: number): Promise<void> {
    await this.db()
      .insertInto('sup_labs')
      .values({ lab, last_deep_check: at })
      .onConflict((oc) => oc.column('lab').doUpdateSet((eb) => ({ last_deep_check: eb.ref('excluded.last_deep_check') })))
      .execute();
  }

  async addCheckRun(run: Omit<CheckRun, 'id'>): Promise<void> {
    await this.db()
      .insertInto('sup_check_runs')
      .values({
        lab: run.lab,
        started_at: run.startedAt,
        duration_ms: run.durationMs,
        deep: run.deep ? 1 : 0,
        log_size: run.logSize,
        rules: JSON.stringify(run.rules),
        new_findings: run.newFindings,
        error: run.error,
      })
      .execute();
  }

  async checkRuns(lab: string, limit = 100): Promise<CheckRun[]> {
    const rows = await this.db().selectFrom('sup_check_runs').selectAll().where('lab', '=', lab).orderBy('id', 'desc').limit(limit).execute();
    return rows.map(checkRunOf);
  }

  /** the checks run that started in [from, to), oldest first (a compliance report's period) */
  async checkRunsBetween(lab: string, from: number, to: number): Promise<CheckRun[]> {
    const rows = await this.db()
      .selectFrom('sup_check_runs')
      .selectAll()
      .where('lab', '=', lab)
      .where('started_at', '>=', from)
      .where('started_at', '<', to)
      .orderBy('started_at')
      .orderBy('id')
      .execute();
    return rows.map(checkRunOf);
  }

  private db(): Kysely<SupervisorTables> {
    if (this.kysely === undefined) throw new Error('the supervisor store is not open');
    return this.kysely;
  }
}

async function sawCheckpoint(
  db: Db,
  lab: string,
  c: { size: number; rootHash: string; note: string; seenAt: number; cosignedBy: string[] },
): Promise<void> {
  await db
    .insertInto('sup_checkpoints')
    .values({
      lab,
      size: c.size,
      root_hash: c.rootHash,
      note: c.note,
      first_seen_at: c.seenAt,
      last_seen_at: c.seenAt,
      cosigned_by: JSON.stringify(c.cosignedBy),
    })
    .onConflict((oc) =>
      oc.columns(['lab', 'size']).doUpdateSet((eb) => ({
        last_seen_at: eb.ref('excluded.last_seen_at'),
        note: eb.ref('excluded.note'),
        cosigned_by: eb.ref('excluded.cosigned_by'),
      })),
    )
    .execute();
}
