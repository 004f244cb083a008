// The report of the offline bundle verifier (verifier.ts): its format, the problems it lists, and the bundle's files
// it reads. Every check (checks/) adds its problems to one report.
import type { LoggedKeyStatus } from './key-validity.js';
import type { ExportStatement } from './export-statement.js';

export const BUNDLE_FORMAT = 'labtrace-bundle/v1';
export const REPORT_FORMAT = 'labtrace-verify-report/v1';
/** At most this many problems are listed; the others are counted in `problemsOmitted`. */
export const MAX_PROBLEMS = 1000;

/** The files of a bundle, as text. */
export interface BundleFiles {
  bundle: string;
  checkpoint: string;
  keys: string;
  batches: string;
  records: string;
  /** records.jsonl as its UTF-8 bytes, when the caller has them (an archive's reader): then `records` is not read */
  recordsBytes?: Uint8Array;
  keyEvents?: string;
  /** statement.txt: the export statement, a note signed by the log key */
  statement?: string;
  /** boundaries.json: the batches just outside the range */
  boundaries?: string;
}

export interface VerifyOptions {
  /** a checkpoint of the same log saved earlier (a signed note): the bundle's checkpoint must extend it */
  savedCheckpoint?: string;
  /** the log key the auditor trusts (C2SP verifier key); without it, the one in keys.json is used and reported */
  logKey?: string;
  /**
   * A witness policy: the checkpoint must carry valid cosignatures (C2SP cosignature/v1) by at least `required` of
   * these witness keys (`name+keyid+base64(0x04 || key)`). A key named twice counts once.
   */
  witnesses?: { keys: readonly string[]; required: number };
  /** told now and then of the batches read so far (a full bundle's): the command line's progress */
  progress?: (batches: number) => void;
}

export type ProblemKind =
  | 'unusable'
  | 'checkpoint-signature'
  | 'origin-mismatch'
  | 'unknown-key'
  | 'key-not-valid'
  | 'signature-invalid'
  | 'header-invalid'
  | 'records-invalid'
  | 'count-mismatch'
  | 'root-mismatch'
  | 'not-in-checkpoint'
  | 'log-inclusion'
  | 'gap'
  | 'overlap'
  | 'duplicate'
  | 'reordered'
  | 'chain-break'
  | 'readable-mismatch'
  | 'incomplete'
  | 'key-event-inclusion'
  | 'inconsistent-checkpoint'
  | 'statement'
  | 'truncated'
  | 'boundary'
  | 'key-validity'
  | 'witness-cosignature'
  | 'witnesses-required'
  | 'record-inclusion'
  | 'disclosure-policy';

export interface Problem {
  kind: ProblemKind;
  /** the exact place: file, line, batch, sequence number */
  where: string;
  message: string;
  computed?: string | number | null;
  claimed?: string | number | null;
}

export interface GatewaySummary {
  gateway: string;
  batches: number;
  records: number;
  /** the contiguous sequence ranges held (inclusive), in order */
  ranges: { first: number; last: number }[];
  /** numbers a gateway declared skipped (a first record on channel 'sequence-jump'), not gaps */
  declaredJumps: { from: number; to: number; batch: number }[];
}

export interface VerifyReport {
  format: typeof REPORT_FORMAT;
  ok: boolean;
  /** verified: everything checks; failed: something does not verify; unusable: the input cannot be read */
  status: 'verified' | 'failed' | 'unusable';
  trust: {
    logKey: string | null;
    logKeyId: string | null;
    /** whether the log key came from the caller (true) or only from the bundle's keys.json (false) */
    logKeyPinned: boolean;
    gatewayKeys: {
      gateway: string;
      keyId: string;
      /** as keys.json states it */
      status: string;
      validFrom: number | null;
      /** server arrival time from which no new batch under the key was accepted */
      validUntil: number | null;
      /** a revoked key: the highest valid batch number (null: none, or not stated) */
      lastValidBatch: number | null;
      /** as the logged key events state it (null: no logged event names the key) */
      logged: {
        status: LoggedKeyStatus;
        validFrom: number | null;
        validUntil: number | null;
        closedAt: number | null;
        lastValidBatch: number | null;
        events: number[];
      } | null;
    }[];
  };
  selection: { gateway: string; from: string; to: string; created: string } | null;
  checkpoint: { origin: string; size: number; root: string; signatureVerified: boolean } | null;
  savedCheckpoint: { size: number; root: string; consistent: boolean } | null;
  /** with a witness policy (VerifyOptions.witnesses): the named witnesses whose cosignature of the checkpoint verified */
  witnesses?: { required: number; named: number; cosignedBy: { name: string; keyId: string; timestamp: number }[] };
  /** the signed export statement (null: the bundle has none, or it does not read) */
  statement: (ExportStatement & { signatureVerified: boolean }) | null;
  /** the batches just outside the range, as boundaries.json holds them */
  boundaries: { before: BoundaryReport | null; after: BoundaryReport | null } | null;
  gateways: GatewaySummary[];
  /** kind: the structured event (registered, rotated, retired, revoked), or "legacy text event" for an earlier server's */
  keyEvents: { index: number; at: number | null; kind: string | null; gateway: string | null }[];
  /**
   * signaturesVerified: the headers whose own signature verified; headersChained: those authenticated instead by the
   * next header of their gateway and key, whose signature commits to them through `prev` (header-chain.ts)
   */
  counts: { batches: number; records: number; signaturesVerified: number; headersChained: number; rootsVerified: number; inclusionsVerified: number };
  /**
   * batches whose records the lab's retention removed: their headers, signatures, log inclusion and kept leaf hashes
   * are checked, their records are not in the bundle (absent when there are none)
   */
  removedByRetention?: { batches: number; records: number };
  problems: Problem[];
  problemsOmitted: number;
  /** a client's selective-disclosure bundle (checks/disclosure.ts): what it shows and what proves it */
  disclosure?: DisclosureReport;
}

export interface DisclosureReport {
  run: string;
  created: string;
  /** the record fields shown, and those replaced by commitments where a record carries them */
  fields: string[];
  redacted: string[];
  /** records disclosed whole: their bytes hash to leaves the signed roots hold (proven by the gateways' signatures) */
  wholeRecords: number;
  /** records with a redacted field: their leaves are proven in the signed batches, their shown fields are the lab's statement */
  redactedRecords: number;
  /** the disclosure statement's signature by the log key */
  statementVerified: boolean;
}

/** A report before any check: failed until the checks find nothing. */
export function emptyReport(options: VerifyOptions): VerifyReport {
  return {
    format: REPORT_FORMAT,
    ok: false,
    status: 'failed',
    trust: { logKey: null, logKeyId: null, logKeyPinned: options.logKey !== undefined, gatewayKeys: [] },
    selection: null,
    checkpoint: null,
    savedCheckpoint: null,
    statement: null,
    boundaries: null,
    gateways: [],
    keyEvents: [],
    counts: { batches: 0, records: 0, signaturesVerified: 0, headersChained: 0, rootsVerified: 0, inclusionsVerified: 0 },
    problems: [],
    problemsOmitted: 0,
  };
}

export interface BoundaryReport {
  batch: number;
  firstSeq: number;
  lastSeq: number;
  tsMin: number;
  tsMax: number;
  logIndex: number | null;
  hash: string;
  /** signature, log inclusion, place outside the range and link to the range all check */
  verified: boolean;
}
