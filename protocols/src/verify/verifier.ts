// The offline verifier of an export bundle (`labtrace export`, format labtrace-bundle/v1). It trusts nothing in the
// bundle but the keys it is given, and checks, with the log key, the gateways' keys and RFC 6962 hashing alone:
//   - the checkpoint: signed by the log key, for the bundle's log (origin);
//   - every batch: the header signed by its gateway's key, that key valid for the batch by its place in the log and
//     its batch number (never by the times it carries), the Merkle
//     root recomputed from the record bytes, and the header's inclusion in the log under the checkpoint's root;
//   - per gateway, the sequence numbers: gaps (except declared jumps), overlaps, duplicated and reordered batches,
//     and the header chain (each header names the hash of the previous one);
//   - the readable records.jsonl says what the signed bytes say, record for record;
//   - key events: their inclusion in the log, and each key's validity derived from them (key-validity.ts): keys.json
//     may be stricter than the log (an event not logged yet), never laxer, and batches are held to the stricter;
//   - the signed export statement (export-statement.ts): signed by the log key, made against this checkpoint, and
//     naming exactly the batches, records and key events the bundle holds (a bundle cut short in every file at once
//     fails here);
//   - the boundary witnesses (boundaries.json): the stored batches just before and after the range, signed and in
//     the log, outside the range, and chained to its first and last headers;
//   - with a saved earlier checkpoint: that the bundle's checkpoint extends it (a consistency proof in bundle.json).
// Each check is a module of checks/ adding its problems to one report, run here in order over one context.
// Pure TypeScript without Node globals, so that it also runs in a browser: the caller reads the files.
import { checkBatches } from './checks/batches.js';
import { checkBoundaries } from './checks/boundaries.js';
import { checkCheckpoint } from './checks/checkpoint.js';
import { reportOf } from './checks/context.js';
import { checkDeclaredCounts, openBundle } from './checks/files.js';
import { checkKeyEvents } from './checks/key-events.js';
import { checkReadableLines } from './checks/readable-lines.js';
import { checkSequences } from './checks/sequence.js';
import { checkStatement } from './checks/statement.js';
import { type BundleFiles, MAX_PROBLEMS, type Problem, type VerifyOptions, type VerifyReport } from './report.js';

export {
  BUNDLE_FORMAT,
  REPORT_FORMAT,
  MAX_PROBLEMS,
  type BundleFiles,
  type VerifyOptions,
  type ProblemKind,
  type Problem,
  type GatewaySummary,
  type VerifyReport,
  type BoundaryReport,
  type DisclosureReport,
} from './report.js';
export { verifyDisclosure } from './checks/disclosure.js';
export { readableRecordLine, readableLineSays } from './checks/readable-lines.js';

export function verifyBundle(files: BundleFiles, options: VerifyOptions = {}): VerifyReport {
  return reportOf(files, options, verifyInto);
}

function verifyInto(report: VerifyReport, files: BundleFiles, options: VerifyOptions): void {
  const problem = (p: Problem): void => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
    else report.problemsOmitted++;
  };
  // bundle.json, keys.json and checkpoint.txt, read once for every check
  const ctx = openBundle(report, files, options, problem);
  checkCheckpoint(ctx);
  // key events before any batch, so that the batches are held to the keys' validity they state
  checkKeyEvents(ctx);
  // batches.jsonl, with records.jsonl compared with each batch's signed records as it is read
  checkBatches(ctx);
  checkSequences(ctx);
  checkDeclaredCounts(ctx);
  checkReadableLines(ctx);
  // the signed statement of what the bundle holds (uses the records counted above), and the batches just outside it
  checkStatement(ctx);
  checkBoundaries(ctx);
}

/** Exit status of the command line: 0 verified, 1 something does not verify, 2 the input is unusable. */
export function exitCodeOf(report: VerifyReport): 0 | 1 | 2 {
  return report.status === 'verified' ? 0 : report.status === 'unusable' ? 2 : 1;
}
