// Sequence continuity, per gateway: duplicated and reordered batches (in file order), gaps (except declared jumps)
// and overlaps (in sequence order), and the header chain (each header names the hash of the previous one).
import { toBase64 } from '../../trust/bytes.js';
import { sha256 } from '../../trust/sha256.js';
import type { GatewaySummary, Problem } from '../report.js';
import { describeSeq, type BatchEntry, type VerifyContext } from './context.js';

export function checkSequences(ctx: VerifyContext): void {
  const byGateway = new Map<string, BatchEntry[]>();
  for (const e of ctx.entries) {
    const list = byGateway.get(e.header.gateway);
    if (list === undefined) byGateway.set(e.header.gateway, [e]);
    else list.push(e);
  }
  for (const [gateway, list] of byGateway) ctx.report.gateways.push(checkSequence(ctx.problem, gateway, list));
}

const at = (e: BatchEntry): string =>
  `batches.jsonl line ${e.line} (batch ${e.header.batch} of ${e.header.gateway}, seq ${describeSeq(e.header.firstSeq, e.header.firstSeq + e.header.count - 1)})`;

function checkSequence(problem: (p: Problem) => void, gateway: string, list: BatchEntry[]): GatewaySummary {
  const summary: GatewaySummary = { gateway, batches: list.length, records: 0, ranges: [], declaredJumps: [] };
  const unique = inFileOrder(problem, list);
  // in sequence order: gaps, declared jumps, overlaps and the header chain
  unique.sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.header.batch - b.header.batch);
  let last: BatchEntry | undefined;
  for (const e of unique) {
    const h = e.header;
    summary.records += h.count;
    const end = h.firstSeq + h.count - 1;
    if (last === undefined) summary.ranges.push({ first: h.firstSeq, last: end });
    else {
      checkContinuity(problem, summary, last, e);
      checkChain(problem, last, e);
    }
    if (last === undefined || end >= last.header.firstSeq + last.header.count - 1) last = e;
  }
  return summary;
}

/** In file order: duplicates (left out of what follows) and reordering. */
function inFileOrder(problem: (p: Problem) => void, list: BatchEntry[]): BatchEntry[] {
  const seen = new Map<number, BatchEntry>();
  const unique: BatchEntry[] = [];
  let previous: BatchEntry | undefined;
  for (const e of list) {
    const first = seen.get(e.header.batch);
    if (first !== undefined) {
      problem({ kind: 'duplicate', where: at(e), message: `batch ${e.header.batch} appears again (first on line ${first.line})` });
      continue;
    }
    seen.set(e.header.batch, e);
    if (previous !== undefined && (e.header.batch < previous.header.batch || e.header.firstSeq < previous.header.firstSeq))
      problem({
        kind: 'reordered',
        where: at(e),
        message: `comes after batch ${previous.header.batch} (seq from ${previous.header.firstSeq}) on line ${previous.line}`,
        computed: e.header.firstSeq,
        claimed: previous.header.firstSeq + previous.header.count,
      });
    previous = e;
    unique.push(e);
  }
  return unique;
}

/** A batch after the one reaching furthest so far: a gap (or a declared jump), an overlap, or the next range's end. */
function checkContinuity(problem: (p: Problem) => void, summary: GatewaySummary, last: BatchEntry, e: BatchEntry): void {
  const h = e.header;
  const end = h.firstSeq + h.count - 1;
  const next = last.header.firstSeq + last.header.count;
  const range = summary.ranges[summary.ranges.length - 1];
  if (h.firstSeq > next) {
    const firstRecord = e.first;
    const declared =
      firstRecord !== undefined &&
      firstRecord.instrument === summary.gateway &&
      firstRecord.channel === 'sequence-jump' &&
      firstRecord.value === next;
    if (declared) summary.declaredJumps.push({ from: next, to: h.firstSeq - 1, batch: h.batch });
    else
      problem({
        kind: 'gap',
        where: at(e),
        message: `sequence numbers ${describeSeq(next, h.firstSeq - 1)} are missing between batch ${last.header.batch} (line ${last.line}) and batch ${h.batch}`,
        computed: h.firstSeq,
        claimed: next,
      });
    summary.ranges.push({ first: h.firstSeq, last: end });
  } else if (h.firstSeq < next) {
    problem({
      kind: 'overlap',
      where: at(e),
      message: `sequence numbers ${describeSeq(h.firstSeq, Math.min(end, next - 1))} are also in batch ${last.header.batch} (line ${last.line})`,
      computed: h.firstSeq,
      claimed: next,
    });
    if (range !== undefined) range.last = Math.max(range.last, end);
  } else if (range !== undefined) range.last = end;
}

/** Consecutive batches: the header names the previous one's hash. */
function checkChain(problem: (p: Problem) => void, last: BatchEntry, e: BatchEntry): void {
  const h = e.header;
  if (h.batch !== last.header.batch + 1 || h.prev === null) return;
  const expected = toBase64(sha256(last.headerBytes));
  if (h.prev !== expected)
    problem({
      kind: 'chain-break',
      where: at(e),
      message: `the header does not name batch ${last.header.batch}'s hash as previous`,
      computed: expected,
      claimed: h.prev,
    });
}
