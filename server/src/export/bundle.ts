// An export bundle (format labtrace-bundle/v1): one gateway's stored batches over a time range, with all an auditor
// needs to check them offline (protocols/src/verify/verifier.ts, `labtrace verify`):
//   bundle.json       format, the log's origin, the selection, when it was made, the counts, and consistency proofs
//                     from the last CONSISTENCY_CHECKPOINTS stored checkpoints to the exported one (so that an
//                     auditor's saved checkpoint of one of those sizes can be checked against it)
//   checkpoint.txt    the latest signed checkpoint (not a new one: the export does not sign)
//   keys.json         the log's verifier key, and every key of the gateway with its status and validity
//   batches.jsonl     per stored batch overlapping the range: {header, signature, records (base64 of the stored
//                     records, each 0x00 || canonical record bytes), logIndex, logProof (base64 inclusion proof
//                     against the checkpoint's size)}; logIndex and logProof are null for a batch that the checkpoint
//                     does not cover yet (the verifier reports it)
//   records.jsonl     per record, what its bytes say: {gateway, seq, instrument, channel, ts, value, unit, quality,
//                     reason?, batch}
//   key-events.jsonl  the log's key events of the gateway within the checkpoint: {index, at, data (base64 of the
//                     leaf data), event (the same, parsed), proof}
//   boundaries.json   {before, after}: the gateway's stored batch just before the range and just after it, in the
//                     checkpoint, as {header, signature, logIndex, logProof}; null where there is none
//   statement.txt     the export statement (protocols/src/verify/export-statement.ts), signed by the log key: what
//                     the bundle holds, against which checkpoint, and which batches bound it; bundle.json is only a
//                     summary for people, the statement is what a verifier holds the files to
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  BUNDLE_FORMAT,
  LabtraceError,
  batchHeaderHash,
  formatExportStatement,
  headersDigest,
  keyEventsDigest,
  parseCheckpoint,
  parseNote,
  readableRecordLine,
  readRecords,
  toBase64,
  type BatchHeader,
} from '@labtrace/protocols';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { LabDatabase } from '../store/database.js';

/** Consistency proofs are included from at most this many of the latest stored checkpoints. */
export const CONSISTENCY_CHECKPOINTS = 100;

/** What a bundle holds: one gateway's stored batches over a time span. */
export interface BundleSelection {
  gateway: string;
  /** ms since the epoch, inclusive */
  from: number;
  /** ms since the epoch, inclusive */
  to: number;
}

export interface ExportOptions extends BundleSelection {
  outDir: string;
}

/** One file of a bundle: its name in the bundle's folder and its text. */
export interface BundleFile {
  name: string;
  content: string;
}

interface BatchRow {
  batch: number;
  header: string;
  signature: string;
  records: Buffer | null;
  logIndex: number | null;
}

/** Writes a bundle's files into `outDir` (made if missing). */
export async function exportBundle(
  database: LabDatabase,
  log: TransparencyLog,
  options: ExportOptions,
): Promise<{ batches: number; records: number }> {
  const { files, batches, records } = buildBundle(database, log, options);
  await mkdir(options.outDir, { recursive: true });
  await Promise.all(files.map((f) => writeFile(path.join(options.outDir, f.name), f.content)));
  return { batches, records };
}

/** A bundle's files, made from one read transaction of the store and the log. */
export function buildBundle(
  database: LabDatabase,
  log: TransparencyLog,
  selection: BundleSelection,
): { files: BundleFile[]; batches: number; records: number } {
  const { gateway, from, to } = selection;
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to)
    throw new LabtraceError('E_CONFIG', `export: the time range ${from}..${to} is empty`);
  const sqlite = database.sqlite;
  // one read transaction: the checkpoint, the batches and the proofs of the same state
  const snapshot = sqlite.transaction(() => {
    const note = log.latestCheckpoint().note;
    const checkpoint = parseCheckpoint(parseNote(note).text);
    const size = checkpoint.size;
    const batchLines: string[] = [];
    const included: { header: BatchHeader; signature: string }[] = [];
    // the batches just outside the range (in the checkpoint): the last before it, the first after it
    let before: { header: BatchHeader; signature: string; logIndex: number } | undefined;
    let after: { header: BatchHeader; signature: string; logIndex: number } | undefined;
    const recordLines: string[] = [];
    const rows = sqlite
      .prepare<[string], BatchRow>(
        'SELECT batch, header, signature, records, log_index AS logIndex FROM batch_headers WHERE gateway = ? ORDER BY first_seq, batch',
      )
      .iterate(gateway);
    let uncovered = 0;
    for (const row of rows) {
      const header = JSON.parse(row.header) as BatchHeader;
      if (header.tsMax < from || header.tsMin > to) {
        if (row.logIndex === null || row.logIndex >= size) continue;
        const witness = { header, signature: row.signature, logIndex: row.logIndex };
        if (included.length === 0 && header.tsMax < from) before = witness;
        else after ??= witness;
        continue;
      }
      after = undefined;
      included.push({ header, signature: row.signature });
      if (row.records === null) throw new LabtraceError('E_STORE', `export: batch ${row.batch} of ${gateway} was stored without its records`);
      const bytes = row.records;
      const inLog = row.logIndex !== null && row.logIndex < size;
      if (!inLog) uncovered++;
      batchLines.push(
        JSON.stringify({
          header,
          signature: row.signature,
          records: bytes.toString('base64'),
          logIndex: inLog ? row.logIndex : null,
          logProof: inLog && row.logIndex !== null ? log.inclusionProof(row.logIndex, size).map(toBase64) : null,
        }),
      );
      readRecords(bytes, (record) => void recordLines.push(readableRecordLine(record.gateway, record.sample, header.batch)));
    }
    const keyEventLines: string[] = [];
    const keyEventData: Uint8Array[] = [];
    const events = sqlite
      .prepare<[number], { idx: number; data: Buffer; at: number }>(
        "SELECT idx, data, at FROM log_entries WHERE kind = 'key-event' AND idx < ? ORDER BY idx",
      )
      .iterate(size);
    for (const e of events) {
      let event: unknown;
      try {
        event = JSON.parse(e.data.toString('utf8'));
      } catch {
        event = null;
      }
      const eventGateway = typeof event === 'object' && event !== null ? (event as { gateway?: unknown }).gateway : undefined;
      if (eventGateway !== gateway) continue;
      keyEventData.push(new Uint8Array(e.data));
      keyEventLines.push(
        JSON.stringify({ index: e.idx, at: e.at, data: e.data.toString('base64'), event, proof: log.inclusionProof(e.idx, size).map(toBase64) }),
      );
    }
    const consistency = sqlite
      .prepare<[number, number], { size: number }>('SELECT size FROM log_checkpoints WHERE size > 0 AND size < ? ORDER BY size DESC LIMIT ?')
      .all(size, CONSISTENCY_CHECKPOINTS)
      .map((c) => ({ from: c.size, to: size, proof: log.consistencyProof(c.size, size).map(toBase64) }));
    const keys = sqlite
      .prepare<
        [string],
        {
          keyId: string;
          verifierKey: string;
          status: string;
          registeredAt: number;
          validUntil: number | null;
          lastValidBatch: number | null;
          reason: string | null;
          replacedBy: string | null;
        }
      >(
        'SELECT key_id AS keyId, verifier_key AS verifierKey, status, registered_at AS registeredAt, valid_until AS validUntil, last_valid_batch AS lastValidBatch, reason, replaced_by AS replacedBy FROM gateway_keys WHERE gateway = ? ORDER BY registered_at, key_id',
      )
      .all(gateway)
      .map((k) => ({ gateway, ...k }));
    const witness = (w: typeof before): object | null =>
      w === undefined ? null : { ...w, logProof: log.inclusionProof(w.logIndex, size).map(toBase64) };
    const boundaries = { before: witness(before), after: witness(after) };
    const firstBatch = included[0];
    const lastBatch = included[included.length - 1];
    const bySeq = [...included].sort((a, b) => a.header.firstSeq - b.header.firstSeq);
    const lastEnd = included.reduce<number | null>((m, b) => Math.max(m ?? 0, b.header.firstSeq + b.header.count - 1), null);
    const statement = log.signNote(
      formatExportStatement({
        format: BUNDLE_FORMAT,
        origin: log.origin,
        gateway,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        checkpoint: { size, root: toBase64(checkpoint.rootHash) },
        batches: { count: included.length, first: firstBatch?.header.batch ?? null, last: lastBatch?.header.batch ?? null },
        seq: { first: bySeq[0]?.header.firstSeq ?? null, last: lastEnd },
        records: recordLines.length,
        headers: headersDigest(included),
        keyEvents: { count: keyEventData.length, root: keyEventsDigest(keyEventData) },
        before: before === undefined ? null : { batch: before.header.batch, hash: batchHeaderHash(before.header) },
        after: after === undefined ? null : { batch: after.header.batch, hash: batchHeaderHash(after.header) },
      }),
    );
    return { note, size, batchLines, recordLines, keyEventLines, consistency, keys, uncovered, boundaries, statement };
  })();

  const bundle = {
    format: BUNDLE_FORMAT,
    origin: log.origin,
    selection: { gateway, from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    created: new Date().toISOString(),
    checkpointSize: snapshot.size,
    counts: { batches: snapshot.batchLines.length, records: snapshot.recordLines.length, notInCheckpoint: snapshot.uncovered },
    consistency: snapshot.consistency,
  };
  const jsonl = (lines: string[]): string => (lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  const files: BundleFile[] = [
    { name: 'bundle.json', content: `${JSON.stringify(bundle, null, 2)}\n` },
    { name: 'checkpoint.txt', content: snapshot.note },
    {
      name: 'keys.json',
      content: `${JSON.stringify({ log: { origin: log.origin, verifierKey: log.verifierKey() }, gateways: snapshot.keys }, null, 2)}\n`,
    },
    { name: 'batches.jsonl', content: jsonl(snapshot.batchLines) },
    { name: 'records.jsonl', content: jsonl(snapshot.recordLines) },
    { name: 'key-events.jsonl', content: jsonl(snapshot.keyEventLines) },
    { name: 'boundaries.json', content: `${JSON.stringify(snapshot.boundaries, null, 2)}\n` },
    { name: 'statement.txt', content: snapshot.statement },
  ];
  return { files, batches: snapshot.batchLines.length, records: snapshot.recordLines.length };
}
