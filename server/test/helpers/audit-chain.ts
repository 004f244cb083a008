// The audit trail as a store holds it, checked link by link (the store tests of the modules that write audit entries).
import { expect } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { entryHash, GENESIS_HASH, type AuditRow } from '../../src/audit/audit-trail.js';
import type { Tables } from '../../src/store/database.js';

/** the trail as stored, checked link by link: the ids in order from 1, each hash over the previous one */
export async function auditChain(db: Kysely<Tables>): Promise<AuditRow[]> {
  const { rows } = await sql<AuditRow>`SELECT * FROM audit_trail ORDER BY id`.execute(db);
  let prev = GENESIS_HASH;
  return rows.map((raw, i) => {
    const row = { ...raw, id: Number(raw.id), at: Number(raw.at) };
    expect(row.id).toBe(i + 1);
    expect(row.prev_hash).toBe(prev);
    const { hash, prev_hash: _p, log_index: _l, ...fields } = row;
    expect(entryHash(prev, fields)).toBe(hash);
    prev = hash;
    return row;
  });
}
