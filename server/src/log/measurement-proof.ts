// The proof of one measurement, for an auditor who trusts nobody: the record's canonical bytes, its
// Merkle path to its batch's signed root, the batch header's path to the log's root, and the signed
// checkpoint of that root. Checked with the gateway's key, the log's key and RFC 6962 hashing alone.
import { inclusionProof, leafHashReader, LabtraceError, readRecords, sha256, toBase64 } from '@labtrace/protocols';
import type { SignedBatch } from '@labtrace/protocols';
import type { LogReader } from './log-reader.js';

/** a stored batch as the proof needs it: its signed header, its records' bytes and its entry in the log */
export interface StoredBatch {
  signed: SignedBatch;
  records: Uint8Array;
  logIndex: number | null;
}

/** where the stored batch holding a measurement is found: the SQLite store, or PostgreSQL's (both have batchOf) */
export interface BatchSource {
  batchOf(gateway: string, seq: number): StoredBatch | undefined | Promise<StoredBatch | undefined>;
}

export interface MeasurementProof {
  gateway: string;
  seq: number;
  /** the record's canonical bytes (protocols/src/trust/record.ts), base64, and what they say */
  record: { bytes: string; sample: unknown };
  /** the signed batch header, the record's index in the batch and its path to the header's root */
  batch: { header: unknown; signature: string; index: number; proof: string[] };
  /** the header's entry in the log (canonical JSON of {header, signature}), its index and path to the checkpoint's root */
  log: { index: number; size: number; proof: string[] };
  /** the signed checkpoint the log path leads to */
  checkpoint: string;
}

export async function measurementProof(store: BatchSource, log: LogReader, gateway: string, seq: number): Promise<MeasurementProof> {
  const batch = await store.batchOf(gateway, seq);
  if (batch === undefined) throw new LabtraceError('E_NOT_FOUND', `no stored batch of ${gateway} holds sequence number ${seq}`);
  if (batch.logIndex === null) throw new LabtraceError('E_NOT_FOUND', `the batch holding ${gateway}/${seq} was stored before the transparency log`);
  const bytes = batch.records;
  const leaves: Uint8Array[] = [];
  let index = -1;
  let record: { bytes: Uint8Array; sample: unknown } | undefined;
  readRecords(bytes, (r, start, end, i) => {
    // the stored slice is 0x00 || record: its hash is the leaf hash
    leaves.push(sha256(bytes.subarray(start, end)));
    if (r.sample.seq === seq) {
      index = i;
      record = { bytes: bytes.slice(start + 1, end), sample: r.sample };
    }
  });
  if (record === undefined) throw new LabtraceError('E_NOT_FOUND', `sequence number ${seq} is not in its batch's records`);
  await log.checkpoint(); // signs one now if it is due
  const { note: checkpoint, size } = await log.latestCheckpoint();
  if (!(batch.logIndex < size)) throw new LabtraceError('E_NOT_FOUND', `the batch is not in a signed checkpoint yet; try again in a second`);
  return {
    gateway,
    seq,
    record: { bytes: toBase64(record.bytes), sample: record.sample },
    batch: {
      header: batch.signed.header,
      signature: batch.signed.signature,
      index,
      proof: inclusionProof(index, leaves.length, leafHashReader(leaves)).map(toBase64),
    },
    log: { index: batch.logIndex, size, proof: (await log.inclusionProof(batch.logIndex, size)).map(toBase64) },
    checkpoint,
  };
}
