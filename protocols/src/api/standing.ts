// The lab's own standing with its supervisor (docs/supervision.md, "The lab's side"): its tier and score, the
// findings with the rule's title, reference and remedy and the responses given, the checks run, the signed reports;
// and the lab's reasoned response to a finding, recorded by the supervisor and in the lab's own audit trail.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema } from './common.js';
import { line, paragraph } from './text.js';

/** a text the supervisor gives in several languages (a rule's title, a finding's summary), or in one (a remedy written in English only) */
export const localizedTextSchema = z.union([z.string(), z.looseObject({ en: z.string(), zh: z.string().optional() })]);
export type LocalizedText = z.output<typeof localizedTextSchema>;

export const FINDING_SEVERITIES = ['minor', 'major', 'critical'] as const;
export const STANDING_TIERS = ['A', 'B', 'C', 'D'] as const;

export const standingResponseSchema = z.looseObject({
  at: msSchema,
  author: z.string(),
  kind: z.enum(['response', 'resolution']),
  text: z.string(),
});

export const standingFindingSchema = z.looseObject({
  id: z.number().int(),
  rule: z.string(),
  title: localizedTextSchema.optional(),
  reference: z.string().optional(),
  remedy: localizedTextSchema.optional(),
  severity: z.enum(FINDING_SEVERITIES),
  /** when the violation happened (the evidence's time) and when the supervisor found it */
  at: msSchema,
  detectedAt: msSchema,
  /** what was found, in English and Chinese (`{en, zh}`); a supervisor before the Chinese summaries gives the English sentence */
  summary: localizedTextSchema,
  status: z.enum(['open', 'resolved']),
  responses: z.array(standingResponseSchema),
});
export type StandingFinding = z.output<typeof standingFindingSchema>;

export const standingCheckSchema = z.looseObject({
  id: z.number().int(),
  startedAt: msSchema,
  durationMs: z.number(),
  deep: z.boolean(),
  logSize: z.number().int(),
  newFindings: z.number().int(),
  error: z.string().nullable(),
});

export type StandingCheck = z.output<typeof standingCheckSchema>;

/** a band of the published scoring table: a score below `below` (null: no bound) is the tier */
export const standingBandSchema = z.looseObject({ tier: z.enum(STANDING_TIERS), below: z.number().nullable(), checkEveryMs: z.number() });

export const standingSchema = z.union([
  z.strictObject({ configured: z.literal(false) }),
  z.strictObject({
    configured: z.literal(true),
    /** the lab's id with its supervisor */
    lab: z.string(),
    supervisor: z.string(),
    tier: z.enum(STANDING_TIERS),
    score: z.number(),
    counted: z.record(z.string(), z.number()),
    checkEveryMs: z.number(),
    lastDeepCheck: msSchema.nullable(),
    scoring: z.looseObject({
      rollingPeriodMs: z.number(),
      weights: z.record(z.string(), z.number()),
      bands: z.array(standingBandSchema),
    }),
    findings: z.array(standingFindingSchema),
    checks: z.array(standingCheckSchema),
  }),
]);
export type LabStanding = z.output<typeof standingSchema>;
export type StandingScoring = Extract<LabStanding, { configured: true }>['scoring'];

/** a period of the signed compliance report: a date (2026-11-01) or a date and time with its zone; the supervisor checks it */
export const standingReportQuery = z.strictObject({
  from: line(40),
  to: line(40),
  lang: z.enum(['en', 'zh-CN'], { error: 'expected en or zh-CN' }).default('en'),
});

export const standingResponseInput = z.strictObject({
  text: paragraph(10_000).refine((t) => t.length >= 10, 'a reasoned response has at least 10 characters'),
});

export const getStanding = defineRoute({ method: 'GET', path: '/api/standing', response: standingSchema });
/** the supervisor's signed compliance report of the lab over a period (application/json, a download) */
export const standingReport = defineRoute({ method: 'GET', path: '/api/standing/report', query: standingReportQuery });
/** the same report printed (application/pdf) */
export const standingReportPdf = defineRoute({ method: 'GET', path: '/api/standing/report.pdf', query: standingReportQuery });
export const respondToFinding = defineRoute({
  method: 'POST',
  path: '/api/standing/findings/:id/response',
  params: z.strictObject({ id: z.coerce.number().int().min(1) }),
  body: standingResponseInput,
  response: z.strictObject({ finding: standingFindingSchema, auditEntry: z.number().int() }),
});
