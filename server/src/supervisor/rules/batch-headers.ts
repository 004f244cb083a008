// The batch headers of the lab's log, by gateway: what the sequence and key rules read.
import { field, type LogEntryEvidence } from '../evidence.js';

export interface LoggedBatch {
  index: number;
  at: number;
  gateway: string;
  keyId: string;
  batch: number;
  firstSeq: number;
  count: number;
}

/** the batch-header entries of the log, parsed (entries that are not headers, or malformed ones, are left out) */
export function loggedBatches(entries: readonly LogEntryEvidence[]): Map<string, LoggedBatch[]> {
  const byGateway = new Map<string, LoggedBatch[]>();
  for (const e of entries) {
    if (e.kind !== 'batch-header') continue;
    const h = field(e.value, 'header');
    const gateway = field(h, 'gateway');
    const keyId = field(h, 'keyId');
    const batch = field(h, 'batch');
    const firstSeq = field(h, 'firstSeq');
    const count = field(h, 'count');
    if (
      typeof gateway !== 'string' ||
      typeof keyId !== 'string' ||
      typeof batch !== 'number' ||
      typeof firstSeq !== 'number' ||
      typeof count !== 'number'
    )
      continue;
    const b: LoggedBatch = { index: e.index, at: e.at, gateway, keyId, batch, firstSeq, count };
    const list = byGateway.get(gateway);
    if (list === undefined) byGateway.set(gateway, [b]);
    else list.push(b);
  }
  return byGateway;
}
