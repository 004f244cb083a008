// The supervisor's own store (SQLite; plain SQL without engine-specific types, so that a PostgreSQL store can take
// the same tables later): per lab the follow cursor and the checkpoints seen, the log entries, the records read
// with the lab's token, the conflicts, the findings with their evidence and the lab's responses, and the checks run.
import Database from 'better-sqlite3';
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
`;

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

interface CheckRunRow {
  id: number;
  lab: string;
  started_at: number;
  duration_ms: number;
  deep: number;
  log_size: number;
  rules: string;
  new_findings: number;
  error: string | null;
}

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

interface FindingRow {
  id: number;
  lab: string;
  rule: string;
  key: string;
  severity: Severity;
  at: number;
  detected_at: number;
  summary: string;
  subject: string;
  evidence: string;
  status: 'open' | 'resolved';
}

export class SupervisorStore {
  private db: Database.Database | undefined;

  constructor(private readonly file: string) {}

  open(): void {
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    this.db = db;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  cursor(lab: string): LabCursor {
    const row = this.handle()
      .prepare<[string], { size: number; root_hash: string | null; note: string | null; peaks: string; last_deep_check: number | null }>(
        'SELECT size, root_hash, note, peaks, last_deep_check FROM sup_labs WHERE lab = ?',
      )
      .get(lab);
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
  advance(
    lab: string,
    entries: readonly { index: number; kind: string; at: number; data: Uint8Array; leaf: Uint8Array }[],
    next: { size: number; rootHash: string; note: string; peaks: string[]; seenAt: number; cosignedBy: string[] },
  ): void {
    const db = this.handle();
    const insert = db.prepare('INSERT INTO sup_entries (lab, idx, kind, at, data, leaf) VALUES (?, ?, ?, ?, ?, ?)');
    db.transaction(() => {
      for (const e of entries) insert.run(lab, e.index, e.kind, e.at, Buffer.from(e.data), Buffer.from(e.leaf));
      db.prepare(
        `INSERT INTO sup_labs (lab, size, root_hash, note, peaks) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (lab) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash, note = excluded.note, peaks = excluded.peaks`,
      ).run(lab, next.size, next.rootHash, next.note, JSON.stringify(next.peaks));
      this.sawCheckpoint(lab, next);
    })();
  }

  /** Records that the lab served this checkpoint now (a new size, or the same one seen again). */
  sawCheckpoint(lab: string, c: { size: number; rootHash: string; note: string; seenAt: number; cosignedBy: string[] }): void {
    this.handle()
      .prepare(
        `INSERT INTO sup_checkpoints (lab, size, root_hash, note, first_seen_at, last_seen_at, cosigned_by) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (lab, size) DO UPDATE SET last_seen_at = excluded.last_seen_at, note = excluded.note, cosigned_by = excluded.cosigned_by`,
      )
      .run(lab, c.size, c.rootHash, c.note, c.seenAt, c.seenAt, JSON.stringify(c.cosignedBy));
  }

  checkpoints(lab: string): HeldCheckpoint[] {
    return this.handle()
      .prepare<[string], { size: number; root_hash: string; note: string; first_seen_at: number; last_seen_at: number; cosigned_by: string }>(
        'SELECT size, root_hash, note, first_seen_at, last_seen_at, cosigned_by FROM sup_checkpoints WHERE lab = ? ORDER BY size',
      )
      .all(lab)
      .map((r) => ({
        size: r.size,
        rootHash: r.root_hash,
        note: r.note,
        firstSeenAt: r.first_seen_at,
        lastSeenAt: r.last_seen_at,
        cosignedBy: JSON.parse(r.cosigned_by) as string[],
      }));
  }

  /** the checkpoint of the largest size held, if any */
  latestCheckpoint(lab: string): HeldCheckpoint | undefined {
    const r = this.handle()
      .prepare<[string], { size: number; root_hash: string; note: string; first_seen_at: number; last_seen_at: number; cosigned_by: string }>(
        'SELECT size, root_hash, note, first_seen_at, last_seen_at, cosigned_by FROM sup_checkpoints WHERE lab = ? ORDER BY size DESC LIMIT 1',
      )
      .get(lab);
    return r === undefined
      ? undefined
      : {
          size: r.size,
          rootHash: r.root_hash,
          note: r.note,
          firstSeenAt: r.first_seen_at,
          lastSeenAt: r.last_seen_at,
          cosignedBy: JSON.parse(r.cosigned_by) as string[],
        };
  }

  /** the held entries, parsed (an entry that is not JSON has the value undefined) */
  entries(lab: string): LogEntryEvidence[] {
    const out: LogEntryEvidence[] = [];
    const rows = this.handle()
      .prepare<[string], { idx: number; kind: string; at: number; data: Buffer }>(
        'SELECT idx, kind, at, data FROM sup_entries WHERE lab = ? ORDER BY idx',
      )
      .iterate(lab);
    for (const r of rows) {
      let value: unknown;
      try {
        value = JSON.parse(r.data.toString('utf8'));
      } catch {
        value = undefined;
      }
      out.push({ index: r.idx, kind: r.kind, at: r.at, value });
    }
    return out;
  }

  entryLeaf(lab: string, index: number): { kind: string; leaf: Uint8Array } | undefined {
    const row = this.handle()
      .prepare<[string, number], { kind: string; leaf: Buffer }>('SELECT kind, leaf FROM sup_entries WHERE lab = ? AND idx = ?')
      .get(lab, index);
    return row === undefined ? undefined : { kind: row.kind, leaf: new Uint8Array(row.leaf) };
  }

  putRecords(lab: string, kind: string, records: readonly { id: string; body: unknown }[], at: number): void {
    const db = this.handle();
    const put = db.prepare(
      'INSERT INTO sup_records (lab, kind, id, body, fetched_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (lab, kind, id) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at',
    );
    db.transaction(() => {
      for (const r of records) put.run(lab, kind, r.id, JSON.stringify(r.body), at);
    })();
  }

  records<T>(lab: string, kind: string): T[] {
    return this.handle()
      .prepare<[string, string], { body: string }>('SELECT body FROM sup_records WHERE lab = ? AND kind = ? ORDER BY id')
      .all(lab, kind)
      .map((r) => JSON.parse(r.body) as T);
  }

  recordsById<T>(lab: string, kind: string): [string, T][] {
    return this.handle()
      .prepare<[string, string], { id: string; body: string }>('SELECT id, body FROM sup_records WHERE lab = ? AND kind = ? ORDER BY id')
      .all(lab, kind)
      .map((r) => [r.id, JSON.parse(r.body) as T]);
  }

  recordIds(lab: string, kind: string): Set<string> {
    return new Set(
      this.handle()
        .prepare<[string, string], { id: string }>('SELECT id FROM sup_records WHERE lab = ? AND kind = ?')
        .all(lab, kind)
        .map((r) => r.id),
    );
  }

  addConflict(lab: string, c: Omit<ConflictEvidence, 'id'>): void {
    this.handle()
      .prepare('INSERT INTO sup_conflicts (lab, kind, detected_at, held_note, served_note, proof, reason) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(lab, c.kind, c.detectedAt, c.heldNote, c.servedNote, JSON.stringify(c.proof), c.reason);
  }

  conflicts(lab: string): ConflictEvidence[] {
    return this.handle()
      .prepare<
        [string],
        { id: number; kind: ConflictEvidence['kind']; detected_at: number; held_note: string; served_note: string; proof: string; reason: string }
      >('SELECT * FROM sup_conflicts WHERE lab = ? ORDER BY id')
      .all(lab)
      .map((r) => ({
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
  findingKeys(lab: string): Set<string> {
    return new Set(
      this.handle()
        .prepare<[string], { rule: string; key: string }>('SELECT rule, key FROM sup_findings WHERE lab = ?')
        .all(lab)
        .map((r) => `${r.rule} ${r.key}`),
    );
  }

  addFinding(f: Omit<StoredFinding, 'id' | 'status' | 'responses'>): void {
    this.handle()
      .prepare(
        'INSERT INTO sup_findings (lab, rule, key, severity, at, detected_at, summary, subject, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lab, rule, key) DO NOTHING',
      )
      .run(f.lab, f.rule, f.key, f.severity, f.at, f.detectedAt, bilingualColumn(f.summary), JSON.stringify(f.subject), JSON.stringify(f.evidence));
  }

  findings(lab: string): StoredFinding[] {
    const db = this.handle();
    const responses = db.prepare<[number], { at: number; author: string; kind: 'response' | 'resolution'; text: string }>(
      'SELECT at, author, kind, text FROM sup_responses WHERE finding = ? ORDER BY id',
    );
    return db
      .prepare<[string], FindingRow>('SELECT * FROM sup_findings WHERE lab = ? ORDER BY id')
      .all(lab)
      .map((r) => ({
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
        responses: responses.all(r.id),
      }));
  }

  /** Records the lab's reasoned response, or the supervisor's resolution (which stops the finding counting). */
  respond(lab: string, finding: number, r: { at: number; author: string; kind: 'response' | 'resolution'; text: string }): boolean {
    const db = this.handle();
    return db.transaction(() => {
      const exists = db.prepare<[number, string], { id: number }>('SELECT id FROM sup_findings WHERE id = ? AND lab = ?').get(finding, lab);
      if (exists === undefined) return false;
      db.prepare('INSERT INTO sup_responses (finding, at, author, kind, text) VALUES (?, ?, ?, ?, ?)').run(finding, r.at, r.author, r.kind, r.text);
      if (r.kind === 'resolution') db.prepare("UPDATE sup_findings SET status = 'resolved' WHERE id = ?").run(finding);
      return true;
    })();
  }

  markDeepCheck(lab: string, at: number): void {
    this.handle()
      .prepare('INSERT INTO sup_labs (lab, last_deep_check) VALUES (?, ?) ON CONFLICT (lab) DO UPDATE SET last_deep_check = excluded.last_deep_check')
      .run(lab, at);
  }

  addCheckRun(run: Omit<CheckRun, 'id'>): void {
    this.handle()
      .prepare(
        'INSERT INTO sup_check_runs (lab, started_at, duration_ms, deep, log_size, rules, new_findings, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(run.lab, run.startedAt, run.durationMs, run.deep ? 1 : 0, run.logSize, JSON.stringify(run.rules), run.newFindings, run.error);
  }

  checkRuns(lab: string, limit = 100): CheckRun[] {
    return this.handle()
      .prepare<[string, number], CheckRunRow>('SELECT * FROM sup_check_runs WHERE lab = ? ORDER BY id DESC LIMIT ?')
      .all(lab, limit)
      .map(checkRunOf);
  }

  /** the checks run that started in [from, to), oldest first (a compliance report's period) */
  checkRunsBetween(lab: string, from: number, to: number): CheckRun[] {
    return this.handle()
      .prepare<[string, number, number], CheckRunRow>(
        'SELECT * FROM sup_check_runs WHERE lab = ? AND started_at >= ? AND started_at < ? ORDER BY started_at, id',
      )
      .all(lab, from, to)
      .map(checkRunOf);
  }

  private handle(): Database.Database {
    if (this.db === undefined) throw new Error('the supervisor store is not open');
    return this.db;
  }
}
