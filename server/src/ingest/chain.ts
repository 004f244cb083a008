// Continuity of each gateway's chain of batches: batch numbers follow each other, each header names
// the hash of the previous one, and sequence numbers continue without a gap unless the gateway declared
// the jump in a signed record. Batches may arrive out of order (a resend after a reconnect): a batch
// ahead of the chain is stored and the chain advances over it once the missing ones arrive.
//
// The logic is written once (advanceSteps, a generator that asks for its reads and writes); Chain performs them with
// synchronous SQLite statements inside the SQLite ingest's group commit, chainIn with Kysely queries in the caller's
// transaction (the PostgreSQL ingest; it runs on SQLite too).
import type { Statement } from 'better-sqlite3';
import type { Kysely, Transaction } from 'kysely';
import { readRecords, type BatchHeader, type Sample } from '@labtrace/protocols';
import type { LabDatabase } from '../store/database.js';
import type { Tables } from '../store/tables.js';
import type { SecurityEventKind, Severity } from '../trust/security-events.js';

export interface ChainState {
  nextBatch: number;
  nextSeq: number;
  lastHeaderHash: string;
}

export interface ChainNote {
  kind: SecurityEventKind;
  severity: Severity;
  batch: number;
  detail: string;
}

/** a store or a transaction of it */
type Queryable = Kysely<Tables> | Transaction<Tables>;

interface Statements {
  get: Statement;
  upsert: Statement;
  header: Statement;
  firstRecord: Statement;
}

export class Chain {
  private s: Statements | undefined;

  constructor(private readonly database: LabDatabase) {}

  open(): void {
    const db = this.database.sqlite;
    this.s = {
      get: db.prepare('SELECT next_batch AS nextBatch, next_seq AS nextSeq, last_header_hash AS lastHeaderHash FROM gateway_chain WHERE gateway = ?'),
      upsert: db.prepare(
        `INSERT INTO gateway_chain (gateway, next_batch, next_seq, last_header_hash) VALUES (?, ?, ?, ?)
         ON CONFLICT(gateway) DO UPDATE SET next_batch = excluded.next_batch, next_seq = excluded.next_seq, last_header_hash = excluded.last_header_hash`,
      ),
      header: db.prepare('SELECT header, hash FROM batch_headers WHERE gateway = ? AND batch = ?'),
      firstRecord: db.prepare('SELECT records FROM batch_headers WHERE gateway = ? AND batch = ?'),
    };
  }

  private get stmts(): Statements {
    if (!this.s) throw new Error('chain used before open()');
    return this.s;
  }

  state(gateway: string): ChainState | undefined {
    return this.stmts.get.get(gateway) as ChainState | undefined;
  }

  /** The stored header of a batch, with its hash. */
  stored(gateway: string, batch: number): { header: BatchHeader; hash: string } | undefined {
    const row = this.stmts.header.get(gateway, batch) as { header: string; hash: string | null } | undefined;
    return row ? { header: JSON.parse(row.header) as BatchHeader, hash: row.hash ?? '' } : undefined;
  }

  /**
   * Called inside the transaction that stored a new batch (header and records): moves the chain over
   * it and over any stored successors, and returns what an auditor must hear about (gaps, breaks,
   * declared jumps).
   */
  advance(gateway: string, header: BatchHeader, hash: string, samples: readonly Sample[], shared = false): ChainNote[] {
    const steps = advanceSteps(gateway, header, hash, samples, shared);
    for (let step = steps.next(); ;) {
      if (step.done) return step.value.notes;
      step = steps.next(this.perform(gateway, step.value));
    }
  }

  /** One read or write the chain's logic asks for, on the synchronous statements. */
  private perform(gateway: string, step: Step): unknown {
    switch (step.op) {
      case 'state':
        return this.state(gateway);
      case 'stored':
        return this.stored(gateway, step.batch);
      case 'first':
        return firstOf((this.stmts.firstRecord.get(gateway, step.batch) as { records: Buffer | null } | undefined)?.records);
      case 'save':
        this.stmts.upsert.run(gateway, step.state.nextBatch, step.state.nextSeq, step.state.lastHeaderHash);
        return undefined;
    }
  }
}

/**
 * The same chain on a Kysely store (SQLite or PostgreSQL), in the caller's transaction: the asynchronous twin of Chain,
 * running the same logic (advanceSteps). On PostgreSQL the transaction must hold the gateway's lock
 * (PgMeasurementStore.lockGateways), so that nodes advance a gateway's chain one after the other.
 */
export const chainIn = {
  async state(db: Queryable, gateway: string): Promise<ChainState | undefined> {
    const row = await db
      .selectFrom('gateway_chain')
      .select(['next_batch', 'next_seq', 'last_header_hash'])
      .where('gateway', '=', gateway)
      .executeTakeFirst();
    return row === undefined ? undefined : { nextBatch: Number(row.next_batch), nextSeq: Number(row.next_seq), lastHeaderHash: row.last_header_hash };
  },

  /** The stored header of a batch, with its hash. */
  async stored(db: Queryable, gateway: string, batch: number): Promise<{ header: BatchHeader; hash: string } | undefined> {
    const row = await db
      .selectFrom('batch_headers')
      .select(['header', 'hash'])
      .where('gateway', '=', gateway)
      .where('batch', '=', batch)
      .executeTakeFirst();
    return row === undefined ? undefined : { header: JSON.parse(row.header) as BatchHeader, hash: row.hash ?? '' };
  },

  /** Chain.advance in the caller's transaction; also the chain's state after it. */
  async advance(
    trx: Queryable,
    gateway: string,
    header: BatchHeader,
    hash: string,
    samples: readonly Sample[],
    shared = false,
  ): Promise<{ notes: ChainNote[]; state: ChainState }> {
    const steps = advanceSteps(gateway, header, hash, samples, shared);
    for (let step = steps.next(); ;) {
      if (step.done) return step.value;
      const s = step.value;
      let result: unknown;
      switch (s.op) {
        case 'state':
          result = await chainIn.state(trx, gateway);
          break;
        case 'stored':
          result = await chainIn.stored(trx, gateway, s.batch);
          break;
        case 'first': {
          const row = await trx
            .selectFrom('batch_headers')
            .select('records')
            .where('gateway', '=', gateway)
            .where('batch', '=', s.batch)
            .executeTakeFirst();
          result = firstOf(row?.records);
          break;
        }
        case 'save': {
          const values = { next_batch: s.state.nextBatch, next_seq: s.state.nextSeq, last_header_hash: s.state.lastHeaderHash };
          await trx
            .insertInto('gateway_chain')
            .values({ gateway, ...values })
            .onConflict((oc) => oc.column('gateway').doUpdateSet(values))
            .execute();
          break;
        }
      }
      step = steps.next(result);
    }
  },
};

/** What the chain's logic reads and writes, performed by Chain (synchronous statements) or chainIn (Kysely). */
type Step = { op: 'state' } | { op: 'stored'; batch: number } | { op: 'first'; batch: number } | { op: 'save'; state: ChainState };
type Steps<T> = Generator<Step, T, unknown>;

function* readState(): Steps<ChainState | undefined> {
  return (yield { op: 'state' }) as ChainState | undefined;
}
function* readStored(batch: number): Steps<{ header: BatchHeader; hash: string } | undefined> {
  return (yield { op: 'stored', batch }) as { header: BatchHeader; hash: string } | undefined;
}
function* readFirst(batch: number): Steps<Sample | undefined> {
  return (yield { op: 'first', batch }) as Sample | undefined;
}

/**
 * The chain's logic, once for both drivers: moves the chain over a newly stored batch and over any stored successors,
 * and returns the notes and the state it saved.
 */
function* advanceSteps(
  gateway: string,
  header: BatchHeader,
  hash: string,
  samples: readonly Sample[],
  shared: boolean,
): Steps<{ notes: ChainNote[]; state: ChainState }> {
  const notes: ChainNote[] = [];
  let state = yield* readState();
  if (state === undefined) {
    if (header.prev !== null)
      notes.push({
        kind: 'chain-break',
        severity: 'notice',
        batch: header.batch,
        detail: `the first batch this server sees (${header.batch}) follows an earlier one it never received`,
      });
    state = { nextBatch: header.batch, nextSeq: header.firstSeq, lastHeaderHash: header.prev ?? '' };
  }
  if (header.batch > state.nextBatch) {
    // ahead of the chain: stored, the chain waits for the missing batches
    if ((yield* readStored(header.batch - 1)) === undefined)
      notes.push({
        kind: 'batch-gap',
        severity: 'alarm',
        batch: header.batch,
        // a node sharing the gateways' batches with others asks no resend: the missing ones are usually theirs
        detail: `batch ${header.batch} arrived before batch ${state.nextBatch}${header.batch - 1 > state.nextBatch ? `..${header.batch - 1}` : ''}; ${shared ? 'this node shares the gateways’ batches with other nodes, which may hold the missing ones' : 'a resend was requested'}`,
      });
    yield { op: 'save', state };
    return { notes, state };
  }
  if (header.batch < state.nextBatch) {
    notes.push({
      kind: 'chain-break',
      severity: 'notice',
      batch: header.batch,
      detail: `batch ${header.batch} precedes the start of the chain this server holds`,
    });
    return { notes, state };
  }
  let filled = false;
  let current: { header: BatchHeader; hash: string; first: Sample | undefined } | undefined = { header, hash, first: samples[0] };
  while (current !== undefined) {
    notes.push(...check(gateway, state, current.header, current.first));
    state = { nextBatch: current.header.batch + 1, nextSeq: current.header.firstSeq + current.header.count, lastHeaderHash: current.hash };
    const next: { header: BatchHeader; hash: string } | undefined = yield* readStored(state.nextBatch);
    current = undefined;
    if (next !== undefined) {
      filled = true;
      current = { header: next.header, hash: next.hash, first: yield* readFirst(next.header.batch) };
    }
  }
  if (filled)
    notes.push({
      kind: 'gap-filled',
      severity: 'info',
      batch: header.batch,
      detail: `batch ${header.batch} closed a gap; the chain now continues at batch ${state.nextBatch}`,
    });
  yield { op: 'save', state };
  return { notes, state };
}

/** The first record of a stored batch, read from its stored bytes. */
function firstOf(records: Uint8Array | null | undefined): Sample | undefined {
  if (!records) return undefined;
  let first: Sample | undefined;
  readRecords(records, (record) => {
    first = record.sample;
    return false;
  });
  return first;
}

function check(gateway: string, state: ChainState, header: BatchHeader, first: Sample | undefined): ChainNote[] {
  const notes: ChainNote[] = [];
  if (state.lastHeaderHash !== '' && header.prev !== state.lastHeaderHash)
    notes.push({
      kind: 'chain-break',
      severity: 'alarm',
      batch: header.batch,
      detail: `batch ${header.batch} names previous header ${header.prev ?? 'none'}, the stored batch ${header.batch - 1} hashes to ${state.lastHeaderHash}`,
    });
  if (header.firstSeq > state.nextSeq) {
    const declared = first !== undefined && first.instrument === gateway && first.channel === 'sequence-jump' && first.value === state.nextSeq;
    notes.push(
      declared
        ? {
            kind: 'sequence-jump',
            severity: 'info',
            batch: header.batch,
            detail: `declared jump: numbers ${state.nextSeq}..${header.firstSeq - 1} were never used${first.reason ? ` (${first.reason})` : ''}`,
          }
        : {
            kind: 'sequence-gap',
            severity: 'alarm',
            batch: header.batch,
            detail: `sequence numbers ${state.nextSeq}..${header.firstSeq - 1} are missing before batch ${header.batch}`,
          },
    );
  } else if (header.firstSeq < state.nextSeq)
    notes.push({
      kind: 'chain-break',
      severity: 'alarm',
      batch: header.batch,
      detail: `batch ${header.batch} starts at sequence number ${header.firstSeq}, numbers up to ${state.nextSeq - 1} were already used`,
    });
  return notes;
}
