// Continuity of each gateway's chain of batches: batch numbers follow each other, each header names
// the hash of the previous one, and sequence numbers continue without a gap unless the gateway declared
// the jump in a signed record. Batches may arrive out of order (a resend after a reconnect): a batch
// ahead of the chain is stored and the chain advances over it once the missing ones arrive.
import type { Statement } from 'better-sqlite3';
import { readRecords, type BatchHeader, type Sample } from '@labtrace/protocols';
import type { LabDatabase } from '../store/database.js';
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
    const notes: ChainNote[] = [];
    let state = this.state(gateway);
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
      if (this.stored(gateway, header.batch - 1) === undefined)
        notes.push({
          kind: 'batch-gap',
          severity: 'alarm',
          batch: header.batch,
          // a node sharing the gateways' batches with others asks no resend: the missing ones are usually theirs
          detail: `batch ${header.batch} arrived before batch ${state.nextBatch}${header.batch - 1 > state.nextBatch ? `..${header.batch - 1}` : ''}; ${shared ? 'this node shares the gateways’ batches with other nodes, which may hold the missing ones' : 'a resend was requested'}`,
        });
      this.stmts.upsert.run(gateway, state.nextBatch, state.nextSeq, state.lastHeaderHash);
      return notes;
    }
    if (header.batch < state.nextBatch) {
      notes.push({
        kind: 'chain-break',
        severity: 'notice',
        batch: header.batch,
        detail: `batch ${header.batch} precedes the start of the chain this server holds`,
      });
      return notes;
    }
    let filled = false;
    let current: { header: BatchHeader; hash: string; first: Sample | undefined } | undefined = { header, hash, first: samples[0] };
    while (current !== undefined) {
      notes.push(...this.check(gateway, state, current.header, current.first));
      state = { nextBatch: current.header.batch + 1, nextSeq: current.header.firstSeq + current.header.count, lastHeaderHash: current.hash };
      const next = this.stored(gateway, state.nextBatch);
      current = undefined;
      if (next !== undefined) {
        filled = true;
        current = { header: next.header, hash: next.hash, first: this.firstRecord(gateway, next.header.batch) };
      }
    }
    if (filled)
      notes.push({
        kind: 'gap-filled',
        severity: 'info',
        batch: header.batch,
        detail: `batch ${header.batch} closed a gap; the chain now continues at batch ${state.nextBatch}`,
      });
    this.stmts.upsert.run(gateway, state.nextBatch, state.nextSeq, state.lastHeaderHash);
    return notes;
  }

  /** The first record of a stored batch, read from its stored bytes. */
  private firstRecord(gateway: string, batch: number): Sample | undefined {
    const row = this.stmts.firstRecord.get(gateway, batch) as { records: Buffer | null } | undefined;
    if (!row?.records) return undefined;
    let first: Sample | undefined;
    readRecords(row.records, (record) => {
      first = record.sample;
      return false;
    });
    return first;
  }

  private check(gateway: string, state: ChainState, header: BatchHeader, first: Sample | undefined): ChainNote[] {
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
}
