// The lab records as the server's REST API answers them (docs/test-runs.md, docs/calibration.md, server/src/lab/contracts.ts).
import type { InstrumentView, LiveSample, RunAlarm, RunAlarmEvent } from '@labtrace/protocols';

export type RunState = 'planned' | 'running' | 'completed' | 'aborted';

export interface Run {
  id: string;
  sample: string;
  organization: string;
  method: { id: string; version: number; standard: string };
  instruments: { id: string; gateway: string }[];
  technician: string;
  state: RunState;
  accredited: boolean;
  flags: string[];
  createdBy: string;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  /** the identity and calibration of the run's instruments, where the server gives them */
  equipment?: RunEquipment[];
}

export interface RunEquipment {
  id: string;
  /** where the instrument stands, when its profile says (ISO/IEC 17025 6.4.13) */
  identity: (InstrumentView['identity'] & { location?: string | undefined }) | null;
  calibration: NonNullable<InstrumentView['calibration']> | null;
}

export interface MethodLimit {
  measurand: string;
  min?: number;
  max?: number;
}

export interface MethodRule {
  id: string;
  kind: string;
  severity: string;
  channel?: string;
  instrument?: string;
  low?: number;
  high?: number;
  warnLow?: number;
  warnHigh?: number;
}

export interface Method {
  id: string;
  version: number;
  standard: string;
  title: string;
  accredited?: boolean;
  definition: {
    measurands: { name: string; unit: string; channel: string }[];
    instrumentTypes: string[];
    limits: MethodLimit[];
    decisionRule: { kind: string; guardBandFactor?: number };
    rules?: MethodRule[];
  };
}

export interface LabSample {
  id: string;
  organization: string;
  description: string;
}

export interface RunRecords {
  run: string;
  samples: LiveSample[];
  truncated: boolean;
}

export interface RunAlarms {
  run: string;
  alarms: RunAlarm[];
  events: RunAlarmEvent[];
}

export interface RunResult {
  name: string;
  title: string;
  measurand: string;
  unit: string;
  statistic: string;
  value: number;
  /** the value as the report gives it, rounded once by the server: shown verbatim, never rounded again */
  reported: string;
  /** U as the report gives it (up to two significant digits, the value's decimal place): shown verbatim */
  reportedUncertainty: string;
  uncertainty: { expanded: number; coverageFactor: number; coverageProbability: number };
  conformity: { verdict: 'pass' | 'fail'; rule: string; ruleText: string } | null;
  sampleCount: number;
  accredited: boolean;
  accreditation?: { body: string; number: string };
  scopeNote?: string;
}

export interface RunResults {
  run: string;
  method: { id: string; version: number; standard: string };
  computedAt: number;
  records: { count: number; digest: string; digestAlgorithm: string };
  results: RunResult[];
  verdict: 'pass' | 'fail' | 'no-decision';
  accredited: boolean;
  accreditation?: { body: string; number: string };
}

export interface Accreditation {
  id: string;
  body: string;
  number: string;
  standard?: string;
  status: 'active' | 'suspended' | 'withdrawn' | 'expired' | 'not-yet-valid';
  statusSince?: number | null;
  validFrom: number | string;
  validTo: number | string;
  /** the signed-in route's expiry warnings */
  warnings?: (string | { code: string; message: string })[];
}

export interface CertificateItem {
  id: string;
  run: string;
  status: 'draft' | 'valid' | 'amended' | 'revoked' | string;
  issuedAt?: number | string | null;
  amends?: string | null;
  amendedBy?: string | null;
  revocationReason?: string | null;
  /** null for a draft: an issued certificate's files are signed */
  digests?: { json: string; pdf: string; dcc: string } | null;
  verifyUrl?: string;
}

/** GET /api/certificates/:id: the list item, and for a draft what still blocks its issue */
export interface CertificateDetail extends CertificateItem {
  organization?: string;
  requestedBy?: string;
  requestedAt?: number;
  issuedBy?: string | null;
  amendReason?: string | null;
  revokedAt?: number | null;
  blockers?: string[];
}

/** an entry of the audit trail (GET /api/audit-trail, docs/security.md) */
export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  actorRole: string;
  action: string;
  recordType: string;
  recordId: string;
  oldValue: unknown;
  newValue: unknown;
  reason: string | null;
  prevHash: string;
  hash: string;
  logIndex: number | null;
}

/** a user as GET /api/users answers (extra fields, such as an auditor's grant, are shown as they come) */
export interface UserItem {
  username: string;
  role: string;
  organization: string | null;
  disabled: boolean;
  grantUntil: number | null;
  mustChange: boolean;
  lockedUntil: number | null;
  createdAt: number;
  passwordChangedAt: number;
  [extra: string]: unknown;
}

export interface Organization {
  id: string;
  name: string;
  contact: string | null;
  createdAt: number;
}

export const formatTime = (ts: number | string | null | undefined): string =>
  ts === null || ts === undefined ? '—' : new Date(ts).toISOString().replace('T', ' ').slice(0, 19);

export const formatValue = (value: unknown): string => {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (value === null || value === undefined) return '—';
  return String(value);
};

/** who may change lab records (acknowledge alarms) and who runs tests */
export const canActOnAlarms = (role: string | undefined): boolean => role === 'admin' || role === 'technician';
export const isTechnician = (role: string | undefined): boolean => role === 'technician';
/** who approves, issues, amends and revokes certificates */
export const isSignatory = (role: string | undefined): boolean => role === 'signatory';
/** who administers users and organizations */
export const isAdmin = (role: string | undefined): boolean => role === 'admin';
/** who reads the audit trail */
export const readsAuditTrail = (role: string | undefined): boolean => role === 'admin' || role === 'auditor';
