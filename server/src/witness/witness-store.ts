// The witness's own small SQLite store: per log, the latest checkpoint it cosigned (size, root and the log's
// signed note), and the evidence of refused submissions that may show the log misbehaving.
import Database from 'better-sqlite3';

export interface CosignedState {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** The log's signed checkpoint note that was cosigned. */
  note: string;
}

export type EvidenceKind = 'fork' | 'bad-proof';

export interface Evidence {
  id: number;
  origin: string;
  kind: EvidenceKind;
  receivedAt: string;
  /** The whole add-checkpoint request body, whose checkpoint carries a valid log signature. */
  request: string;
  /** The cosigned checkpoint note it contradicts. */
  cosignedNote: string;
  reason: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS witness_log (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS witness_evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fork', 'bad-proof')),
    received_at TEXT NOT NULL,
    request TEXT NOT NULL,
    cosigned_note TEXT NOT NULL,
    reason TEXT NOT NULL
  ) STRICT;
`;

interface LogRow {
  origin: string;
  size: number;
  root_hash: Buffer;
  note: string;
}

interface EvidenceRow {
  id: number;
  origin: string;
  kind: EvidenceKind;
  received_at: string;
  request: string;
  cosigned_note: string;
  reason: string;
}

export class WitnessStore {
  private db: Database.Database | undefined;

  constructor(private readonly file: string) {}

  open(): void {
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    this.db = db;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  latest(origin: string): CosignedState | undefined {
    const row = this.handle().prepare<[string], LogRow>('SELECT origin, size, root_hash, note FROM witness_log WHERE origin = ?').get(origin);
    return row === undefined ? undefined : { origin: row.origin, size: row.size, rootHash: new Uint8Array(row.root_hash), note: row.note };
  }

  /**
   * Records `next` as the latest cosigned checkpoint if the stored size is still `oldSize` (0 and no row: never
   * cosigned). Returns false, changing nothing, when another submission moved it first: the caller answers 409.
   */
  advance(oldSize: number, next: CosignedState): boolean {
    const db = this.handle();
    return db
      .transaction(() => {
        const current = this.latest(next.origin);
        if ((current?.size ?? 0) !== oldSize) return false;
        db.prepare(
          'INSERT INTO witness_log (origin, size, root_hash, note) VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash, note = excluded.note',
        ).run(next.origin, next.size, Buffer.from(next.rootHash), next.note);
        return true;
      })
      .immediate();
  }

  keepEvidence(evidence: Omit<Evidence, 'id'>): void {
    this.handle()
      .prepare('INSERT INTO witness_evidence (origin, kind, received_at, request, cosigned_note, reason) VALUES (?, ?, ?, ?, ?, ?)')
      .run(evidence.origin, evidence.kind, evidence.receivedAt, evidence.request, evidence.cosignedNote, evidence.reason);
  }

  evidence(origin?: string): Evidence[] {
    const rows =
      origin === undefined
        ? this.handle().prepare<[], EvidenceRow>('SELECT * FROM witness_evidence ORDER BY id').all()
        : this.handle().prepare<[string], EvidenceRow>('SELECT * FROM witness_evidence WHERE origin = ? ORDER BY id').all(origin);
    return rows.map((r) => ({
      id: r.id,
      origin: r.origin,
      kind: r.kind,
      receivedAt: r.received_at,
      request: r.request,
      cosignedNote: r.cosigned_note,
      reason: r.reason,
    }));
  }

  private handle(): Database.Database {
    if (this.db === undefined) throw new Error('the witness store is not open');
    return this.db;
  }
}
