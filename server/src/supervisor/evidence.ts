// What the supervisor holds of one lab, as the compliance rules read it: the lab's signed checkpoints and log
// entries (public), and the records its read-only token lets the supervisor read (runs, alarms, certificates,
// calibrations and service status of instruments). Plain data, so that the rules are pure functions of it.
// The rules' settings are part of the supervisor's config.
import type { RuleSettings } from './config.js';
export { DEFAULT_RULE_SETTINGS, type RuleSettings } from './config.js';

export interface HeldCheckpoint {
  size: number;
  /** hex */
  rootHash: string;
  /** the signed note as the lab served it (with any cosignature lines) */
  note: string;
  /** when the supervisor first saw this size, ms */
  firstSeenAt: number;
  /** when the supervisor last saw this size, ms */
  lastSeenAt: number;
  /** names of the enrolled witnesses whose cosignatures verified on it */
  cosignedBy: string[];
}

export interface LogEntryEvidence {
  index: number;
  kind: string;
  /** the lab's time of the entry, ms */
  at: number;
  /** the entry's parsed JSON, or undefined when it is not JSON */
  value: unknown;
}

export interface RunEvidence {
  id: string;
  technician: string;
  createdBy: string;
  state: string;
  instruments: { id: string; gateway: string }[];
  startedAt: number | null;
  endedAt: number | null;
  ranges: { gateway: string; firstSeq: number; lastSeq: number | null }[];
  openAlarms: number;
}

export interface AlarmEvidence {
  id: string;
  raisedAt: number;
  acknowledgedAt: number | null;
  clearedAt: number | null;
  severity: string;
  message: string;
}

export interface CertificateEvidence {
  id: string;
  run: string;
  status: string;
  issuedBy: string | null;
  issuedAt: number | null;
  amends: string | null;
  amendReason: string | null;
  logIndex: number | null;
  /** SHA-256 digests as signed (json, pdf, dcc) */
  digests: Record<string, string> | null;
}

export interface InstrumentEvidence {
  id: string;
  calibrations: { calibratedAt: number; nextDueAt: number; certificate: string }[];
  checks: { checkedAt: number; result: 'pass' | 'fail' }[];
  /** service status changes, oldest first */
  status: { status: 'in-service' | 'out-of-service'; at: number; reason: string }[];
}

/** one line of an accreditation's scope: a measurand of a method's standard, in a unit, over a range (open bounds left out) */
export interface ScopeEntryEvidence {
  standard: string;
  measurand: string;
  unit: string;
  min?: number;
  max?: number;
}

/**
 * One of the lab's accreditations as its records stand (`GET /api/accreditations/:id`): the rules compute its status
 * and its scope at any time themselves, as docs/accreditation.md defines them.
 */
export interface AccreditationEvidence {
  id: string;
  body: string;
  number: string;
  validFrom: number;
  validTo: number;
  /** every version of the scope, oldest first: each in force from its effectiveFrom */
  scopes: { version: number; effectiveFrom: number; entries: ScopeEntryEvidence[] }[];
  /** suspensions, reinstatements and a withdrawal, oldest first, each in force from its time */
  events: { kind: 'suspend' | 'reinstate' | 'withdraw'; at: number; reason: string }[];
}

/**
 * What an issued report claims of its accreditation, from its signed content (`GET /api/certificates/:id`, read once:
 * an issued content never changes).
 */
export interface ReportMarkEvidence {
  id: string;
  /** SHA-256 (hex) of the canonical JSON of the content as the lab served it: the rules trust it only when it is the digest the lab signed */
  contentDigest: string;
  issuedAt: number;
  /** the accreditation mark and number the report carries, or null */
  mark: { body: string; number: string } | null;
  method: { id: string; version: number; standard: string };
  /**
   * each result as a scope judges it: its measurand in the measurand's unit, and the statistic's value in that unit
   * (the result before the method's scale, read from the method's version); a result the method version does not
   * define is taken as printed
   */
  results: { name: string; measurand: string; unit: string; value: number }[];
}

/** A checkpoint the lab served that contradicts one the supervisor held: kept by the follower as it happens. */
export interface ConflictEvidence {
  id: number;
  kind: 'fork' | 'bad-proof' | 'shrunk' | 'bad-entries';
  detectedAt: number;
  heldNote: string;
  servedNote: string;
  /** the consistency proof the lab served (base64 hashes), if any */
  proof: string[];
  reason: string;
}

export interface LabEvidence {
  lab: string;
  /** the supervisor's clock when the checks run */
  now: number;
  settings: RuleSettings;
  /** the witnesses the supervisor requires for this lab (names) and how many of them */
  witnesses: { names: string[]; required: number };
  /** oldest first */
  checkpoints: HeldCheckpoint[];
  /** index order, contiguous from 0 */
  entries: LogEntryEvidence[];
  runs: RunEvidence[];
  /** by run id, for completed runs */
  alarms: Map<string, AlarmEvidence[]>;
  certificates: CertificateEvidence[];
  instruments: Map<string, InstrumentEvidence>;
  conflicts: ConflictEvidence[];
  /** every accreditation the lab has recorded */
  accreditations: AccreditationEvidence[];
  /** by certificate id, for issued reports */
  marks: Map<string, ReportMarkEvidence>;
}

/** A text for people in English and in Simplified Chinese (identifiers, numbers and ISO times the same in both). */
export interface Bilingual {
  en: string;
  zh: string;
}

/** A log entry a finding rests on; the supervisor adds its leaf hash and inclusion proof when it stores the finding. */
export interface EntryRef {
  index: number;
  why: string;
}

export type Severity = 'minor' | 'major' | 'critical';

/** What a rule finds: `key` identifies it within the rule, so that a finding is recorded once however often the rule runs. */
export interface RuleFinding {
  key: string;
  /** when the violation happened (the lab's time), ms */
  at: number;
  /** what was found, in both languages */
  summary: Bilingual;
  subject: { run?: string; certificate?: string; instrument?: string; gateway?: string; keyId?: string };
  entries: EntryRef[];
  /** further evidence, for instance the two signed checkpoints of a fork */
  detail?: Record<string, unknown>;
}

export interface Rule {
  /** stable id, used in findings, the API and the documentation */
  id: string;
  title: { en: string; zh: string };
  /** the standard or rule it enforces */
  reference: string;
  severity: Severity;
  /** how the lab clears a finding of this rule, in English and Chinese */
  remedy: { en: string; zh: string };
  check(evidence: LabEvidence): RuleFinding[];
}

/** Certificate log entries by certificate id (issue, amend, revoke events), built once per check run. */
export function certificateEvents(entries: readonly LogEntryEvidence[]): Map<string, LogEntryEvidence[]> {
  const map = new Map<string, LogEntryEvidence[]>();
  for (const e of entries) {
    if (e.kind !== 'certificate-event') continue;
    const id = field(e.value, 'certificate');
    if (typeof id !== 'string') continue;
    const list = map.get(id);
    if (list === undefined) map.set(id, [e]);
    else list.push(e);
  }
  return map;
}

export function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined;
}

/** the log entry a certificate names, if it is in range */
export function entryAt(evidence: LabEvidence, index: number | null): LogEntryEvidence | undefined {
  return index === null ? undefined : evidence.entries[index];
}
