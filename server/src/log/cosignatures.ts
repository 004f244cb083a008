// The witnesses' cosignatures of the log's checkpoints (table log_cosignatures, migration 0067), on SQLite or
// PostgreSQL through Kysely: stored with the size of the checkpoint they cosign, and appended to its note when it is
// served or exported, so that a reader who trusts some witnesses can require theirs (C2SP tlog-cosignature).
import type { Kysely } from 'kysely';
import { LabtraceError, addCosignatures, toHex, type Cosignature } from '@labtrace/protocols';
import type { Tables } from '../store/tables.js';

export interface StoredCosignature {
  /** the tree size of the checkpoint it cosigns */
  size: number;
  /** the witness's key name */
  witness: string;
  /** the witness's key id, hex */
  keyId: string;
  /** the signature line, ending with a newline */
  line: string;
  /** the witness's time in the cosignature, POSIX seconds */
  witnessTime: number;
  /** when the lab received it, ms since the epoch */
  receivedAt: number;
}

export class CosignatureStore {
  constructor(private readonly db: Kysely<Tables>) {}

  /** Keeps a witness's cosignature of the checkpoint of `size`; a later one by the same key replaces it. */
  async add(size: number, cosignature: Cosignature, line: string, receivedAt: number): Promise<void> {
    const row = {
      size,
      witness: cosignature.name,
      key_id: toHex(cosignature.keyId),
      line: line.endsWith('\n') ? line : `${line}\n`,
      witness_time: cosignature.timestamp,
      received_at: receivedAt,
    };
    await this.db
      .insertInto('log_cosignatures')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['size', 'witness', 'key_id']).doUpdateSet({ line: row.line, witness_time: row.witness_time, received_at: row.received_at }),
      )
      .execute();
  }

  /** The cosignatures of the checkpoint of `size`, by witness name and key id. */
  async of(size: number, db: Kysely<Tables> = this.db): Promise<StoredCosignature[]> {
    const rows = await db.selectFrom('log_cosignatures').selectAll().where('size', '=', size).orderBy('witness').orderBy('key_id').execute();
    return rows.map(rowOf);
  }

  /** The checkpoint note with the cosignatures it got appended (signed-note signature lines after the log's). */
  async cosigned(size: number, note: string, db: Kysely<Tables> = this.db): Promise<string> {
    return withCosignatures(note, await this.of(size, db));
  }

  /** Per witness key (name and key id), its latest cosignature. */
  async latest(): Promise<StoredCosignature[]> {
    const rows = await this.db
      .selectFrom('log_cosignatures as c')
      .selectAll('c')
      .where((eb) =>
        eb(
          'c.size',
          '=',
          eb
            .selectFrom('log_cosignatures as d')
            .select((e) => e.fn.max('d.size').as('m'))
            .whereRef('d.witness', '=', 'c.witness')
            .whereRef('d.key_id', '=', 'c.key_id'),
        ),
      )
      .execute();
    return rows.map(rowOf);
  }
}

/** Appends the cosignature lines to a checkpoint note (none: the note as it is). */
export function withCosignatures(note: string, cosignatures: readonly { line: string }[]): string {
  if (cosignatures.length === 0) return note;
  return addCosignatures(note, cosignatures.map((c) => c.line).join(''));
}

function rowOf(row: {
  size: unknown;
  witness: string;
  key_id: string;
  line: string;
  witness_time: unknown;
  received_at: unknown;
}): StoredCosignature {
  return {
    size: count(row.size),
    witness: row.witness,
    keyId: row.key_id,
    line: row.line,
    witnessTime: count(row.witness_time),
    receivedAt: count(row.received_at),
  };
}

function count(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' || typeof value === 'bigint' ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new LabtraceError('E_STORE', `cosignatures: ${String(value)} read from the store is not a whole number`);
  return n;
}
