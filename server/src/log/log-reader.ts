// What the log's readers need of the transparency log (its routes, the measurement proofs): the same questions
// whether the log is the in-process one over SQLite (transparency-log.ts) or the store shared by several nodes
// (log-store.ts, SQLite or PostgreSQL). Answers are asynchronous; the in-process log answers at once.
import type { LogEntry, StoredCheckpoint, TransparencyLog } from './transparency-log.js';

export interface LogReader {
  /** the log's verifier key (C2SP signed-note format) */
  verifierKey(): string;
  /** the latest signed checkpoint, after signing a new one if one is due */
  checkpoint(): Promise<string>;
  /** the latest signed checkpoint, without signing */
  latestCheckpoint(): Promise<StoredCheckpoint>;
  /** the checkpoint signed at this tree size, if one was */
  checkpointAt(size: number): Promise<StoredCheckpoint | undefined>;
  leafHash(index: number): Promise<Uint8Array>;
  inclusionProof(index: number, size: number): Promise<Uint8Array[]>;
  consistencyProof(from: number, to: number): Promise<Uint8Array[]>;
  entries(start: number, end: number): Promise<LogEntry[]>;
}

/** The in-process log as a reader (LogStore is one already). */
export function logReaderOf(log: TransparencyLog): LogReader {
  // each answer is computed when asked, as the synchronous log gives it; a refusal (a bad size) rejects
  const now = <T>(answer: () => T): Promise<T> => new Promise((resolve) => resolve(answer()));
  return {
    verifierKey: () => log.verifierKey(),
    checkpoint: () => now(() => log.checkpoint()),
    latestCheckpoint: () => now(() => log.latestCheckpoint()),
    checkpointAt: (size) => now(() => log.checkpointAt(size)),
    leafHash: (index) => now(() => log.leafHash(index)),
    inclusionProof: (index, size) => now(() => log.inclusionProof(index, size)),
    consistencyProof: (from, to) => now(() => log.consistencyProof(from, to)),
    entries: (start, end) => now(() => log.entries(start, end)),
  };
}
