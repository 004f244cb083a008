// What the supervisor's API answers (server/src/supervisor/supervisor.ts), as the console reads it.
export type Severity = 'minor' | 'major' | 'critical';
export type Tier = 'A' | 'B' | 'C' | 'D';
export interface Both {
  en: string;
  zh: string;
}

export interface Lab {
  id: string;
  name: string;
  url: string;
  origin: string;
  tier: Tier;
  score: number;
  counted: Record<Severity, number>;
  checkEveryMs: number;
  openFindings: number;
  findings: number;
  logSize: number;
  lastDeepCheck: number | null;
  lastError: string | null;
  checkpoint: { size: number; firstSeenAt: number; lastSeenAt: number } | null;
  witnesses: { names: string[]; required: number; cosignedBy: string[] };
}

export interface Finding {
  id: number;
  rule: string;
  severity: Severity;
  at: number;
  detectedAt: number;
  /** what was found, in both languages (an older finding's has its English sentence in both) */
  summary: Both;
  subject: Record<string, string>;
  status: 'open' | 'resolved';
  evidence: {
    checkpoint: string | null;
    /** `why` as the rule recorded it (English), `whyText` in both languages */
    entries: { index: number; why: string; whyText?: Both; kind: string; leafHash: string; inclusionProof: string[] | null }[];
    detail?: Record<string, unknown>;
  };
  responses: { at: number; author: string; kind: 'response' | 'resolution'; text: string }[];
  title?: Both;
  reference?: string;
  remedy?: Both;
}

export interface CheckRun {
  id: number;
  startedAt: number;
  durationMs: number;
  deep: boolean;
  logSize: number;
  rules: string[];
  newFindings: number;
  error: string | null;
}

export interface Rule {
  id: string;
  title: Both;
  reference: string;
  severity: Severity;
  weight: number;
  remedy: Both;
}

export interface Scoring {
  rollingPeriodMs: number;
  weights: Record<Severity, number>;
  bands: { tier: Tier; below: number | null; checkEveryMs: number }[];
}
