// Read-only links to one test run for a client without an account (docs/test-runs.md, "Sharing a run"). The lab's
// workers create a link for a limited time and may revoke it; the link's token (32 random bytes) is the holder's
// only credential, so only its SHA-256 is stored and the token is shown once. Creating, revoking and the first
// opening of a link are audit-trail entries; later openings are counted on the link.
import { createHash, randomBytes } from 'node:crypto';
import { LabtraceError } from '@labtrace/protocols';
import type { CreatedShare, RunShare, ShareInput } from '@labtrace/protocols/api';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { LabDatabase } from '../store/database.js';

interface ShareRow {
  id: number;
  run: string;
  token_hash: string;
  note: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  revoked_by: string | null;
  revoked_at: number | null;
  revoke_reason: string | null;
  first_used_at: number | null;
  uses: number;
}

const HOUR_MS = 3_600_000;
const hashOf = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export class RunShares {
  constructor(
    private readonly database: LabDatabase,
    private readonly audit: AuditTrail,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new link to the run for `hours`; the answer carries the token, which is not kept. */
  create(actor: Actor, run: string, input: ShareInput): CreatedShare {
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    const db = this.database.sqlite;
    const row = db.transaction(() => {
      const { lastInsertRowid } = db
        .prepare('INSERT INTO run_shares (run, token_hash, note, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(run, hashOf(token), input.note ?? null, actor.username, at, at + input.hours * HOUR_MS);
      const created = this.find(Number(lastInsertRowid));
      this.audit.record(actor, {
        action: 'create',
        recordType: 'run-share',
        recordId: `${run}/${created.id}`,
        newValue: { run, note: created.note, expiresAt: created.expires_at, hours: input.hours },
      });
      return created;
    })();
    return { ...toShare(row, at), token };
  }

  /** The links of a run, newest first. */
  list(run: string): RunShare[] {
    const at = this.now();
    return (this.database.sqlite.prepare('SELECT * FROM run_shares WHERE run = ? ORDER BY id DESC').all(run) as ShareRow[]).map((r) =>
      toShare(r, at),
    );
  }

  /** Revokes a link of the run, with the reason; a revoked link stays revoked. */
  revoke(actor: Actor, run: string, id: number, reason: string): RunShare {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const before = db.prepare('SELECT * FROM run_shares WHERE id = ? AND run = ?').get(id, run) as ShareRow | undefined;
      if (before === undefined)
        throw new LabtraceError('E_NOT_FOUND', `run ${run} has no share link ${id}`, {
          reason: 'record.not-found',
          params: { type: 'share', id: String(id) },
        });
      if (before.revoked_at !== null)
        throw new LabtraceError('E_CONFLICT', `share link ${id} is already revoked`, {
          reason: 'share.revoked',
          params: { revokedAt: before.revoked_at },
        });
      const at = this.now();
      db.prepare('UPDATE run_shares SET revoked_by = ?, revoked_at = ?, revoke_reason = ? WHERE id = ?').run(actor.username, at, reason, id);
      this.audit.record(actor, {
        action: 'update',
        recordType: 'run-share',
        recordId: `${run}/${id}`,
        oldValue: { state: toShare(before, at).state },
        newValue: { state: 'revoked' },
        reason,
      });
      return toShare(this.find(id), at);
    })();
  }

  /**
   * The run a token opens, counting the use; the first use is an audit-trail entry. An unknown token answers 404,
   * a revoked or expired link 410 with its reason.
   */
  open(token: string): { run: string; expiresAt: number } {
    const db = this.database.sqlite;
    return db.transaction(() => {
      const row = db.prepare('SELECT * FROM run_shares WHERE token_hash = ?').get(hashOf(token)) as ShareRow | undefined;
      if (row === undefined) throw new LabtraceError('E_NOT_FOUND', 'this share link is not known', { reason: 'share.not-found' });
      this.check(row);
      const at = this.now();
      db.prepare('UPDATE run_shares SET uses = uses + 1, first_used_at = COALESCE(first_used_at, ?) WHERE id = ?').run(at, row.id);
      if (row.first_used_at === null)
        this.audit.record(
          { username: `share-link:${row.id}`, role: 'public' },
          {
            action: 'state-change',
            recordType: 'run-share',
            recordId: `${row.run}/${row.id}`,
            oldValue: { opened: false },
            newValue: { opened: true, firstUsedAt: at },
          },
        );
      return { run: row.run, expiresAt: row.expires_at };
    })();
  }

  /** The run a token opens, without counting a use (the report's download after the page was opened). */
  peek(token: string): { run: string } {
    const row = this.database.sqlite.prepare('SELECT * FROM run_shares WHERE token_hash = ?').get(hashOf(token)) as ShareRow | undefined;
    if (row === undefined) throw new LabtraceError('E_NOT_FOUND', 'this share link is not known', { reason: 'share.not-found' });
    this.check(row);
    return { run: row.run };
  }

  private check(row: ShareRow): void {
    if (row.revoked_at !== null)
      throw new LabtraceError('E_GONE', 'this share link was revoked by the lab', { reason: 'share.revoked', params: { revokedAt: row.revoked_at } });
    if (row.expires_at <= this.now())
      throw new LabtraceError('E_GONE', 'this share link has expired', { reason: 'share.expired', params: { expiresAt: row.expires_at } });
  }

  private find(id: number): ShareRow {
    const row = this.database.sqlite.prepare('SELECT * FROM run_shares WHERE id = ?').get(id) as ShareRow | undefined;
    if (row === undefined) throw new LabtraceError('E_STORE', `share link ${id} vanished`);
    return row;
  }
}

function toShare(row: ShareRow, at: number): RunShare {
  return {
    id: String(row.id),
    run: row.run,
    note: row.note,
    state: row.revoked_at !== null ? 'revoked' : row.expires_at <= at ? 'expired' : 'active',
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedBy: row.revoked_by,
    revokedAt: row.revoked_at,
    revokeReason: row.revoke_reason,
    firstUsedAt: row.first_used_at,
    uses: row.uses,
  };
}
