// The signed compliance report of one lab over one period: the checks the supervisor ran, the rules with their
// references, the findings detected in the period with their evidence (log index, leaf hash, inclusion proof) and the
// responses and resolutions recorded, and the lab's tier and score at the end of the period with the scoring table.
// The JSON file is the signed artefact: canonical JSON (RFC 8785) of the report and of a statement naming the
// report's SHA-256, signed with the supervisor's Ed25519 key, so that anyone holding the supervisor's public key
// checks it offline (`labtrace supervisor verify-report`). A report is a statement as at the end of its period: what
// was detected, answered and resolved before that instant; the same request gives the same bytes.
import { z } from 'zod';
import { canonicalBytes, formatVerifierKey, LabtraceError, parseWith, sha256, toHex, type SignerKey, type VerifierKey } from '@labtrace/protocols';
import { reportLanguageSchema, type ReportLanguage } from '@labtrace/protocols/api';
import { readSignedJson, signStatement, statementSignatureProblem } from '../signed-json.js';
import type { EnrolledLab } from './config.js';
import { RULES } from './rules/index.js';
import type { SupervisorStore } from './supervisor-store.js';
import { SCORING, standingOf } from './tiers.js';

/** what the supervisor's signature means; a signature over anything else is not a compliance report */
export const REPORT_PURPOSE = 'labtrace supervisor compliance report v1';

const severity = z.enum(['minor', 'major', 'critical']);
const instant = z.iso.datetime({ offset: false, precision: 3 });
const text = z.string();

const reportSchema = z.strictObject({
  kind: z.literal('compliance-report'),
  language: reportLanguageSchema,
  supervisor: z.strictObject({ name: text, keyId: z.string().regex(/^[0-9a-f]{8}$/), verifierKey: text }),
  lab: z.strictObject({ id: text, name: text, url: text, origin: text, logKey: text }),
  /** [from, to): findings detected, responses recorded and checks started in it */
  period: z.strictObject({ from: instant, to: instant }),
  summary: z.strictObject({
    findings: z.number().int().min(0),
    bySeverity: z.strictObject({ minor: z.number().int().min(0), major: z.number().int().min(0), critical: z.number().int().min(0) }),
    openAtEnd: z.number().int().min(0),
    resolvedAtEnd: z.number().int().min(0),
  }),
  checks: z.strictObject({
    count: z.number().int().min(0),
    failed: z.number().int().min(0),
    newFindings: z.number().int().min(0),
    runs: z.array(
      z.strictObject({
        startedAt: instant,
        durationMs: z.number().int().min(0),
        deep: z.boolean(),
        logSize: z.number().int().min(0),
        rules: z.array(text),
        newFindings: z.number().int().min(0),
        error: text.nullable(),
      }),
    ),
  }),
  rules: z.array(
    z.strictObject({
      id: text,
      title: z.strictObject({ en: text, zh: text }),
      reference: text,
      severity,
      weight: z.number(),
      /** English and Chinese; a report signed before the Chinese remedies has the English text only */
      remedy: z.union([z.strictObject({ en: text, zh: text }), text]),
    }),
  ),
  findings: z.array(
    z.strictObject({
      id: z.number().int(),
      rule: text,
      severity,
      /** when the violation happened (the lab's time) */
      occurredAt: instant,
      detectedAt: instant,
      /** what was found, in English and Chinese; a report signed before the Chinese summaries has the English sentence only */
      summary: z.union([z.strictObject({ en: text, zh: text }), text]),
      subject: z.record(z.string(), text),
      /** as at the end of the period */
      status: z.enum(['open', 'resolved']),
      evidence: z.strictObject({
        checkpoint: text.nullable(),
        entries: z.array(
          z.strictObject({ index: z.number().int().min(0), why: text, kind: text, leafHash: text, inclusionProof: z.array(text).nullable() }),
        ),
        detail: z.record(z.string(), z.unknown()).optional(),
      }),
      responses: z.array(z.strictObject({ at: instant, author: text, kind: z.enum(['response', 'resolution']), text })),
    }),
  ),
  standing: z.strictObject({
    asOf: instant,
    tier: z.enum(['A', 'B', 'C', 'D']),
    score: z.number().int().min(0),
    counted: z.strictObject({ minor: z.number().int().min(0), major: z.number().int().min(0), critical: z.number().int().min(0) }),
    checkEveryMs: z.number().int().min(0),
  }),
  scoring: z.strictObject({
    rollingPeriodMs: z.number().int().min(0),
    weights: z.strictObject({ minor: z.number(), major: z.number(), critical: z.number() }),
    bands: z.array(z.strictObject({ tier: z.enum(['A', 'B', 'C', 'D']), below: z.number().nullable(), checkEveryMs: z.number().int().min(0) })),
  }),
});
export type ComplianceReport = z.output<typeof reportSchema>;

const statementSchema = z.strictObject({
  purpose: z.literal(REPORT_PURPOSE),
  /** SHA-256 (hex) of the report's canonical JSON */
  report: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits'),
  keyName: text,
  keyId: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits'),
});
export type ReportStatement = z.output<typeof statementSchema>;

export const signedReportSchema = z.strictObject({
  report: reportSchema,
  signed: z.strictObject({ statement: statementSchema, signature: z.string().min(1) }),
});
export type SignedReport = z.output<typeof signedReportSchema>;

// --- the request: GET /api/labs/:lab/reports?from=&to=&lang= ---

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** a date (midnight UTC) or an ISO 8601 date and time with its zone, as ms since the epoch */
const instantParam = z.string().transform((value, ctx) => {
  const ms = DAY.test(value) || DATE_TIME.test(value) ? Date.parse(DAY.test(value) ? `${value}T00:00:00Z` : value) : NaN;
  // Date.parse rolls an impossible day over (2026-02-30 is 2 March): the day must read back as given
  const day = value.slice(0, 10);
  const dayMs = Date.parse(`${day}T00:00:00Z`);
  if (!Number.isFinite(ms) || !Number.isFinite(dayMs) || new Date(dayMs).toISOString().slice(0, 10) !== day) {
    ctx.addIssue({ code: 'custom', message: 'expected a date (2026-11-01) or a date and time with its zone (2026-11-01T08:00:00+08:00)' });
    return z.NEVER;
  }
  return ms;
});

export const reportQuerySchema = z
  .strictObject({
    from: instantParam,
    to: instantParam,
    lang: reportLanguageSchema.default('en'),
  })
  .refine((q) => q.from < q.to, { message: 'the period must end after it starts (to later than from)', path: ['to'] });
export type ReportQuery = z.output<typeof reportQuerySchema>;

/** The query of a report request, or E_BAD_REQUEST naming the parameter. A report covers a past period only. */
export function parseReportQuery(query: unknown, now: number): ReportQuery {
  const q = parseWith(reportQuerySchema, query, 'query', 'E_BAD_REQUEST');
  if (q.to > now)
    throw new LabtraceError(
      'E_BAD_REQUEST',
      `query: to: the period ends after now (${new Date(now).toISOString()}); a report covers a period that has ended`,
    );
  return q;
}

// --- composing and signing ---

const iso = (ms: number): string => new Date(ms).toISOString();
const publicLab = (lab: EnrolledLab): ComplianceReport['lab'] => ({
  id: lab.id,
  name: lab.name,
  url: lab.url,
  origin: lab.origin,
  logKey: lab.logKey,
});

/** The report of one lab over [from, to), from what the supervisor held at `to`. */
export async function composeReport(
  store: SupervisorStore,
  lab: EnrolledLab,
  key: VerifierKey,
  query: { from: number; to: number; lang: ReportLanguage },
): Promise<ComplianceReport> {
  const { from, to } = query;
  // every finding known at the end of the period, each with its responses and status as they stood then
  const known = (await store.findings(lab.id))
    .filter((f) => f.detectedAt < to)
    .map((f) => {
      const responses = f.responses.filter((r) => r.at < to);
      return { ...f, responses, status: responses.some((r) => r.kind === 'resolution') ? ('resolved' as const) : ('open' as const) };
    });
  const inPeriod = known.filter((f) => f.detectedAt >= from);
  const standing = standingOf(known, to);
  const runs = await store.checkRunsBetween(lab.id, from, to);
  const bySeverity = { minor: 0, major: 0, critical: 0 };
  for (const f of inPeriod) bySeverity[f.severity] += 1;
  return {
    kind: 'compliance-report',
    language: query.lang,
    supervisor: { name: key.name, keyId: toHex(key.keyId), verifierKey: formatVerifierKey(key.name, key.publicKey) },
    lab: publicLab(lab),
    period: { from: iso(from), to: iso(to) },
    summary: {
      findings: inPeriod.length,
      bySeverity,
      openAtEnd: inPeriod.filter((f) => f.status === 'open').length,
      resolvedAtEnd: inPeriod.filter((f) => f.status === 'resolved').length,
    },
    checks: {
      count: runs.length,
      failed: runs.filter((r) => r.error !== null).length,
      newFindings: runs.reduce((n, r) => n + r.newFindings, 0),
      runs: runs.map((r) => ({
        startedAt: iso(r.startedAt),
        durationMs: r.durationMs,
        deep: r.deep,
        logSize: r.logSize,
        rules: r.rules,
        newFindings: r.newFindings,
        error: r.error,
      })),
    },
    rules: RULES.map((r) => ({
      id: r.id,
      title: { en: r.title.en, zh: r.title.zh },
      reference: r.reference,
      severity: r.severity,
      weight: SCORING.weights[r.severity],
      remedy: { en: r.remedy.en, zh: r.remedy.zh },
    })),
    findings: inPeriod.map((f) => ({
      id: f.id,
      rule: f.rule,
      severity: f.severity,
      occurredAt: iso(f.at),
      detectedAt: iso(f.detectedAt),
      summary: { en: f.summary.en, zh: f.summary.zh },
      subject: f.subject,
      status: f.status,
      evidence: {
        checkpoint: f.evidence.checkpoint,
        entries: f.evidence.entries.map((e) => ({
          index: e.index,
          why: e.why,
          kind: e.kind,
          leafHash: e.leafHash,
          inclusionProof: e.inclusionProof,
        })),
        ...(f.evidence.detail === undefined ? {} : { detail: f.evidence.detail }),
      },
      responses: f.responses.map((r) => ({ at: iso(r.at), author: r.author, kind: r.kind, text: r.text })),
    })),
    standing: { asOf: iso(to), tier: standing.tier, score: standing.score, counted: standing.counted, checkEveryMs: standing.checkEveryMs },
    scoring: {
      rollingPeriodMs: SCORING.rollingPeriodMs,
      weights: { ...SCORING.weights },
      bands: SCORING.bands.map((b) => ({ tier: b.tier, below: Number.isFinite(b.below) ? b.below : null, checkEveryMs: b.checkEveryMs })),
    },
  };
}

export const sha256Hex = (bytes: Uint8Array): string => toHex(sha256(bytes));

/** Signs the report (a statement over its canonical JSON's digest) and returns the signed JSON file's bytes. */
export function signReport(key: SignerKey, report: ComplianceReport): Uint8Array {
  const statement: ReportStatement = {
    purpose: REPORT_PURPOSE,
    report: sha256Hex(canonicalBytes(report)),
    keyName: key.name,
    keyId: toHex(key.keyId),
  };
  return canonicalBytes({ report, signed: { statement, signature: signStatement(key, statement) } });
}

export type ReportCheck = { ok: true; file: SignedReport } | { ok: false; problem: string; file?: SignedReport | undefined };

/**
 * Checks a signed report file on its own: well-formed, in canonical form (so that no byte can change unnoticed), the
 * report matching the signed digest, and the signature valid under one of the supervisor keys given.
 */
export function checkSignedReport(bytes: Uint8Array, keys: readonly VerifierKey[]): ReportCheck {
  const read = readSignedJson(bytes, signedReportSchema, 'a labtrace compliance report', 5);
  if (!read.ok) return read;
  const { parsed, file } = read;
  const { statement, signature } = file.signed;
  // the digest of the report as it is in the file (the parsed JSON, not the schema's output)
  if (sha256Hex(canonicalBytes((parsed as { report: unknown }).report)) !== statement.report)
    return { ok: false, problem: 'the report does not match the signed digest: it was changed', file };
  const key = keys.find((k) => toHex(k.keyId) === statement.keyId && k.name === statement.keyName);
  if (key === undefined)
    return { ok: false, problem: `signed by key ${statement.keyName}+${statement.keyId}, which is not among the supervisor keys given`, file };
  const problem = statementSignatureProblem(statement, signature, key.publicKey, "the supervisor's key");
  return problem === undefined ? { ok: true, file } : { ok: false, problem, file };
}

/** The file name of a report: lab, period (days, or instants when not at midnight) and language. */
export function reportFileName(report: ComplianceReport, extension: 'json' | 'pdf'): string {
  const stamp = (s: string): string => (s.endsWith('T00:00:00.000Z') ? s.slice(0, 10) : s.replace(/[:.]/g, ''));
  return `compliance-${report.lab.id}-${stamp(report.period.from)}-${stamp(report.period.to)}.${report.language}.${extension}`;
}

/** the refusal when no key is configured */
export const noKey = (): LabtraceError =>
  new LabtraceError('E_CONFLICT', 'the supervisor has no signing key (keyFile or LABTRACE_SUPERVISOR_KEY): compliance reports cannot be signed');
