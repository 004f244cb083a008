// What the checks of the bundle verifier share: the report they add problems to, what the bundle's files say once
// read (files.ts), and what earlier checks found that later ones need (the key events, the batches, the statement).
import { fromBase64 } from '../../trust/bytes.js';
import type { Checkpoint } from '../../trust/checkpoint.js';
import type { VerifierKey } from '../../trust/ed25519.js';
import type { Sample } from '../../measurement.js';
import type { ExportStatement } from '../export-statement.js';
import { batchKeyProblem, type LoggedKeyEvent } from '../key-validity.js';
import { emptyReport, type BundleFiles, type Problem, type VerifyOptions, type VerifyReport } from '../report.js';
import type { ReadableCheck } from './readable-lines.js';

/** Raised for input that cannot be read at all; turned into an `unusable` report. */
export class Unusable extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(message);
  }
}

export interface GatewayKeyEntry {
  gateway: string;
  keyId: string;
  key: VerifierKey;
  status: string;
  validFrom: number | null;
  validUntil: number | null;
  /** no batch under the key may be in the log after this index (from the logged key events) */
  closedAt: number | null;
  /** a revoked key: the highest valid batch number (null: none; undefined: not stated) */
  lastValidBatch: number | null | undefined;
  /** a retired key: the key that replaced it, as the logged key events say */
  replacedBy: string | null;
}

export interface HeaderLike {
  v: number;
  gateway: string;
  keyId: string;
  batch: number;
  firstSeq: number;
  count: number;
  tsMin: number;
  tsMax: number;
  root: string;
  prev: string | null;
}

export interface BatchEntry {
  line: number;
  header: HeaderLike;
  signature: string;
  /** the batch's first record (a declared jump is one), and how many records its bytes hold */
  first: Sample | undefined;
  records: number;
  /** whether the record bytes decoded and matched the header (count, root) */
  intact: boolean;
  /** the header's log index, as the batch line states it */
  logIndex: number | null;
  /** the header's canonical bytes (what the gateway signed) */
  headerBytes: Uint8Array;
  /** the batch's log leaf hash: of the canonical {header, signature} */
  leaf: Uint8Array;
}

/** One verification: the report, the files as read, and what each check leaves for the next ones. */
export interface VerifyContext {
  readonly report: VerifyReport;
  readonly files: BundleFiles;
  readonly options: VerifyOptions;
  /** adds a problem to the report (past MAX_PROBLEMS, counts it) */
  readonly problem: (p: Problem) => void;
  /** bundle.json */
  readonly bundle: Record<string, unknown>;
  readonly origin: string;
  readonly selection: NonNullable<VerifyReport['selection']>;
  /** the trusted log key */
  readonly logKey: VerifierKey;
  /** keys.json's gateway keys by "gateway keyId"; the key events check holds them to the logged events */
  readonly gatewayKeys: Map<string, GatewayKeyEntry>;
  /** checkpoint.txt as read (its signature is checked by checkpoint.ts) */
  readonly checkpoint: Checkpoint;
  /** records.jsonl, compared with each batch's signed records as it is read */
  readonly readable: ReadableCheck;
  /** the logged key events that read, and every key event's bytes (key-events.ts) */
  keyEvents: LoggedKeyEvent[];
  keyEventData: Uint8Array[];
  /** the batch lines that read (batches.ts), in file order */
  entries: BatchEntry[];
  /** the records the signed batches hold */
  signedRecords: number;
  /** the export statement when it reads (statement.ts) */
  statement: ExportStatement | undefined;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
export const isString = (v: unknown): v is string => typeof v === 'string';

export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Unusable(where, `not JSON (${(err as Error).message})`);
  }
}

/** The non-empty lines of a JSON-lines file with their 1-based line numbers. */
export function lines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const parts = text.split('\n');
  for (let i = 0; i < parts.length; i++) {
    const t = parts[i] ?? '';
    if (t.trim() !== '') out.push({ line: i + 1, text: t });
  }
  return out;
}

/** Strict standard base64 (fromBase64: padding required, canonical), or the bundle is unusable at `where`. */
export function decodeBase64(text: string, where: string): Uint8Array {
  try {
    return fromBase64(text);
  } catch {
    throw new Unusable(where, `not padded standard base64: "${text.slice(0, 80)}"`);
  }
}

export function describeSeq(first: number, last: number): string {
  return first === last ? `${first}` : `${first}..${last}`;
}

export function checkHeader(h: unknown): h is HeaderLike {
  if (!isObject(h)) return false;
  return (
    h.v === 1 &&
    isString(h.gateway) &&
    isString(h.keyId) &&
    /^[0-9a-f]{8}$/.test(h.keyId) &&
    isCount(h.batch) &&
    isCount(h.firstSeq) &&
    isCount(h.count) &&
    h.count >= 1 &&
    isCount(h.tsMin) &&
    isCount(h.tsMax) &&
    isString(h.root) &&
    (h.prev === null || isString(h.prev))
  );
}

/** The batches in sequence order, the first of them and the one reaching furthest. */
export function rangeEnds(entries: BatchEntry[]): { first: BatchEntry | undefined; last: BatchEntry | undefined } {
  const bySeq = [...entries].sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.header.batch - b.header.batch);
  const last = bySeq.reduce<BatchEntry | undefined>(
    (l, e) => (l === undefined || e.header.firstSeq + e.header.count > l.header.firstSeq + l.header.count ? e : l),
    undefined,
  );
  return { first: bySeq[0], last };
}

/**
 * Runs a verifier's checks of `input` into a new report and settles it: an unusable input is reported so (never
 * thrown), otherwise it is verified when no problem was found.
 */
export function reportOf<T>(
  input: T,
  options: VerifyOptions,
  verifyInto: (report: VerifyReport, input: T, options: VerifyOptions) => void,
): VerifyReport {
  const report = emptyReport(options);
  try {
    verifyInto(report, input, options);
  } catch (err) {
    if (!(err instanceof Unusable)) throw err;
    report.status = 'unusable';
    report.ok = false;
    report.problems.unshift({ kind: 'unusable', where: err.where, message: err.message });
    return report;
  }
  report.ok = report.problems.length === 0 && report.problemsOmitted === 0;
  report.status = report.ok ? 'verified' : 'failed';
  return report;
}

/** Why a batch under a key of the bundle is not valid for it (key-validity.ts), or undefined; `logIndex`: the header's. */
export function keyProblemOf(key: GatewayKeyEntry, batch: number, logIndex: number | null): string | undefined {
  return batchKeyProblem(
    {
      keyId: key.keyId,
      status: key.status,
      closedAt: key.closedAt,
      // a revoked key's last valid batch not stated: the logged events bound it (closedAt)
      lastValidBatch: key.lastValidBatch === undefined ? Number.MAX_SAFE_INTEGER : key.lastValidBatch,
    },
    batch,
    logIndex,
  );
}
