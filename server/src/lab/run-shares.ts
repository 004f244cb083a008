// Read-only links to one test run for a client without an account (docs/test-runs.md, "Sharing a run"). The lab's
// workers create a link for a limited time and may revoke it; the link's token (32 random bytes) is the holder's
// only credential, so only its SHA-256 is stored and the token is shown once. Creating, revoking and the first
// opening of a link are audit-trail entries; later openings are counted on the link.
import { createHash, randomBytes } from 'node:crypto';
import { LabtraceError } from '@labtrace/protocols';
import type { CreatedShare, RunShare, ShareInput } from '@labtrace/protocols/api';
import type { Kysely, Selectable } from 'kysely';
import type { Actor, AuditTrail } from '../audit/audit-trail.js';
import type { Tables } from '../store/database.js';
import { dialectOf } from '../store/portable-ddl.js';

/** a link as stored */
type ShareRow = Selectable<Tables['run_shares']>;

const HOUR_MS = 3_600_000;
const hashOf = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * The share links of runs. Its queries run through Kysely on the store's database (SQLite or PostgreSQL), each
 * change in one transaction with its audit-trail entry (AuditTrail.recordIn).
 */
export class RunShares {
  constructor(
    private readonly store: Kysely<Tables>,
    private readonly audit: AuditTrail,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new link to the run for `hours`; the answer carries the token, which is not kept. */
  async create(actor: Actor, run: string, input: ShareInput): Promise<CreatedShare> {
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    const row = await this.store.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('run_shares')
        .values({
          run,
          token_hash: hashOf(token),
          note: input.note ?? null,
          created_by: actor.username,
          created_at: at,
          expires_at: at + input.hours * HOUR_MS,
          revoked_by: null,
          revoked_at: null,
          revoke_reason: null,
          first_used_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'run-share',
        recordId: `${run}/${created.id}`,
        newValue: { run, note: created.note, expiresAt: created.expires_at, hours: input.hours },
      });
      return created;
    });
    return { ...toShare(row, at), token };
  }

  /** The links of a run, newest first. */
  async list(run: string): Promise<RunShare[]> {
    const at = this.now();
    const rows = await this.store.selectFrom('run_shares').selectAll().where('run', '=', run).orderBy('id', 'desc').execute();
    return rows.map((r) => toShare(r, at));
  }

  /** Revokes a link of the run, with the reason; a revoked link stays revoked. */
  async revoke(actor: Actor, run: string, id: number, reason: string): Promise<RunShare> {
    return this.store.transaction().execute(async (trx) => {
      const found = await trx
        .selectFrom('run_shares')
        .selectAll()
        .where('id', '=', id)
        .where('run', '=', run)
        // PostgreSQL: the row held until the end, so that two revocations at once record one (SQLite has one writer)
        .$if(dialectOf(this.store as unknown as Kysely<unknown>) === 'postgres', (q) => q.forUpdate())
        .executeTakeFirst();
      if (found === undefined)
        throw new LabtraceError('E_NOT_FOUND', `run ${run} has no share link ${id}`, {
          reason: 'record.not-found',
          params: { type: 'share', id: String(id) },
        });
      const before = found;
      if (before.revoked_at !== null)
        throw new LabtraceError('E_CONFLICT', `share link ${id} is already revoked`, {
          reason: 'share.revoked',
          params: { revokedAt: before.revoked_at },
        });
      const at = this.now();
      const after = await trx
        .updateTable('run_shares')
        .set({ revoked_by: actor.username, revoked_at: at, revoke_reason: reason })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit.recordIn(trx, actor, {
        action: 'update',
        recordType: 'run-share',
        recordId: `${run}/${id}`,
        oldValue: { state: toShare(before, at).state },
        newValue: { state: 'revoked' },
        reason,
      });
      return toShare(after, at);
    });
  }

  /**
   * The run a token opens, counting the use; the first use is an audit-trail entry. An unknown token answers 404,
   * a revoked or expired link 410 with its reason.
   */
  async open(token: string): Promise<{ run: string; expiresAt: number }> {
    return this.store.transaction().execute(async (trx) => {
      const at = this.now();
      // counted first: on PostgreSQL the update also holds the row, so that two first openings at once record one
      const counted = await trx
        .updateTable('run_shares')
        .set((eb) => ({ uses: eb('uses', '+', 1), first_used_at: eb.fn.coalesce('first_used_at', eb.val(at)) }))
        .where('token_hash', '=', hashOf(token))
        .returning(['id'])
        .executeTakeFirst();
      if (counted === undefined) throw new LabtraceError('E_NOT_FOUND', 'this share link is not known', { reason: 'share.not-found' });
      const row = await trx.selectFrom('run_shares').selectAll().where('id', '=', counted.id).executeTakeFirstOrThrow();
      this.check(row);
      if (row.uses === 1)
        await this.audit.recordIn(
          trx,
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
    });
  }

  /** The run a token opens, without counting a use (the report's download after the page was opened). */
  async peek(token: string): Promise<{ run: string }> {
    const found = await this.store.selectFrom('run_shares').selectAll().where('token_hash', '=', hashOf(token)).executeTakeFirst();
    if (found === undefined) throw new LabtraceError('E_NOT_FOUND', 'this share link is not known', { reason: 'share.not-found' });
    const row = found;
    this.check(row);
    return { run: row.run };
  }

  private check(row: ShareRow): void {
    if (row.revoked_at !== null)
      throw new LabtraceError('E_GONE', 'this share link was revoked by the lab', { reason: 'share.revoked', params: { revokedAt: row.revoked_at } });
    if (row.expires_at <= this.now())
      throw new LabtraceError('E_GONE', 'this share link has expired', { reason: 'share.expired', params: { expiresAt: row.expires_at } });
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
