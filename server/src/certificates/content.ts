// What a test report (certificate) says: every item ISO/IEC 17025 7.8.2.1 a-p, 7.8.3 and 7.8.8 ask for, as one
// typed, validated object. The JSON rendering of it is what the lab signs; the PDF and the DCC show the same.
import { z } from 'zod';
import { reportLanguageSchema } from './report-text.js';

const text = z.string().trim().min(1, 'required');
const instant = z.number().int().min(0);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits');

export const CERTIFICATE_TITLE = 'Test Report';
export const RELATES_ONLY =
  'The results relate only to the items tested, as received. This report shall not be reproduced except in full without the written approval of the laboratory.';
export const SIGNATURE_MEANING = 'approval';

const limits = z.strictObject({ min: z.number().finite().optional(), max: z.number().finite().optional() });

export const certificateResultSchema = z.strictObject({
  name: text,
  title: text,
  measurand: text,
  /** the unit as the method names it ("" for a count or a ratio) */
  unit: z.string(),
  statistic: text,
  value: z.number().finite(),
  /** the value as reported, rounded to the uncertainty's digits */
  reported: text,
  uncertainty: z.strictObject({
    expanded: z.number().finite().min(0),
    /** U as reported: rounded up to two significant digits */
    reported: text,
    coverageFactor: z.number().finite().positive(),
    coverageProbability: z.number().gt(0).lt(1),
  }),
  /** null when the method sets no limit on the result */
  conformity: z
    .strictObject({
      verdict: z.enum(['pass', 'fail']),
      rule: z.enum(['simple-acceptance', 'guarded-acceptance']),
      ruleText: text,
      limits,
      acceptance: limits,
      /** the statement as printed: "Conforms to ... (decision rule: ...)" */
      statement: text,
    })
    .nullable(),
  instruments: z.array(z.string()),
  sampleCount: z.number().int().min(0),
  accredited: z.boolean(),
  /** why a result is outside the accreditation scope; printed beside it */
  scopeNote: z.string().optional(),
});
export type CertificateResult = z.output<typeof certificateResultSchema>;

export const instrumentTraceabilitySchema = z.strictObject({
  id: text,
  maker: text,
  model: text,
  serialNumber: text,
  firmware: z.string().nullable(),
  /** where the instrument stands (6.4.13); null when its profile does not say */
  location: z.string().nullable().default(null),
  calibration: z
    .strictObject({
      certificate: text,
      laboratory: text,
      calibratedAt: instant,
      dueAt: instant,
    })
    .nullable(),
  /** the calibration status over the run (the worse of its start and its end) */
  statusAtRun: z.enum(['valid', 'due-soon', 'expired', 'out-of-service', 'never-calibrated']),
  statement: text,
});
export type InstrumentTraceability = z.output<typeof instrumentTraceabilitySchema>;

export const certificateContentSchema = z.strictObject({
  format: z.literal('labtrace-certificate/1'),
  /**
   * the language the report is printed in: zh-CN, en, or bilingual (each heading in both). Absent in reports
   * issued before languages (English): optional rather than defaulted, so that their signed bytes stay theirs.
   */
  language: reportLanguageSchema.optional(),
  /** a) */
  title: text,
  /** b) */
  laboratory: z.strictObject({ name: text, address: text }),
  /** c) where the work was done */
  placeOfWork: text,
  /** d) unique on every page */
  id: text,
  /** e) */
  customer: z.strictObject({ id: text, name: text, contact: text }),
  /** f) */
  method: z.strictObject({ id: text, version: z.number().int().min(1), standard: text, title: text }),
  /** g) */
  item: z.strictObject({ id: text, description: text, condition: text }),
  /** h) */
  receivedAt: instant,
  /** i) the dates of the test */
  test: z.strictObject({ run: text, startedAt: instant, endedAt: instant, technician: text }),
  /** j) */
  issuedAt: instant,
  /** l) */
  statement: text,
  /** 7.8.3 b, 7.8.2.1 m: results with units, uncertainty, conformity */
  results: z.array(certificateResultSchema).min(1, 'at least one result'),
  /** pass, fail, or no-decision when no result has a limit */
  verdict: z.enum(['pass', 'fail', 'no-decision']),
  /** 6.5 traceability of every instrument the results come from */
  traceability: z.array(instrumentTraceabilitySchema).min(1, 'at least one instrument'),
  /** the accreditation mark: present only when every result is inside the scope (ILAC R7) */
  accreditation: z.strictObject({ body: text, number: text }).nullable(),
  /** the results outside the scope, by name ("" when all are inside) */
  notAccredited: z.array(z.string()),
  /** o) the person authorizing the report */
  authorization: z.strictObject({ name: text, role: text, at: instant, meaning: z.literal(SIGNATURE_MEANING) }),
  /** the evidence the results were computed from */
  records: z.strictObject({ count: z.number().int().min(0), digest: text, digestAlgorithm: text }),
  /** the transparency log as it stood at issue: a checkpoint any holder can ask the log to extend */
  checkpoint: z.strictObject({ origin: text, size: z.number().int().min(0), rootHash: hex64 }),
  /** 7.8.8: set on an amendment */
  amendment: z.strictObject({ amends: text, reason: text }).nullable(),
  /** where anyone checks the report online */
  verifyUrl: z.string().url(),
});
export type CertificateContent = z.output<typeof certificateContentSchema>;

/** The mandatory items, by the letter of 7.8.2.1 (and 7.8.3, 7.8.8), with where they live in the content. */
export const MANDATORY_ITEMS: readonly { item: string; what: string; present: (c: Partial<CertificateContent>) => boolean }[] = [
  { item: '7.8.2.1 a', what: 'title', present: (c) => nonEmpty(c.title) },
  { item: '7.8.2.1 b', what: 'laboratory name', present: (c) => nonEmpty(c.laboratory?.name) },
  { item: '7.8.2.1 b', what: 'laboratory address', present: (c) => nonEmpty(c.laboratory?.address) },
  { item: '7.8.2.1 c', what: 'place of work', present: (c) => nonEmpty(c.placeOfWork) },
  { item: '7.8.2.1 d', what: 'unique identification', present: (c) => nonEmpty(c.id) },
  { item: '7.8.2.1 e', what: 'customer name', present: (c) => nonEmpty(c.customer?.name) },
  { item: '7.8.2.1 e', what: 'customer contact', present: (c) => nonEmpty(c.customer?.contact) },
  { item: '7.8.2.1 f', what: 'method', present: (c) => nonEmpty(c.method?.standard) && nonEmpty(c.method?.title) },
  { item: '7.8.2.1 f', what: 'method version', present: (c) => typeof c.method?.version === 'number' },
  { item: '7.8.2.1 g', what: 'item description', present: (c) => nonEmpty(c.item?.description) },
  { item: '7.8.2.1 g', what: 'item identification', present: (c) => nonEmpty(c.item?.id) },
  { item: '7.8.2.1 g', what: 'item condition', present: (c) => nonEmpty(c.item?.condition) },
  { item: '7.8.2.1 h', what: 'date of receipt', present: (c) => typeof c.receivedAt === 'number' },
  { item: '7.8.2.1 i', what: 'dates of test', present: (c) => typeof c.test?.startedAt === 'number' && typeof c.test.endedAt === 'number' },
  { item: '7.8.2.1 j', what: 'date of issue', present: (c) => typeof c.issuedAt === 'number' },
  { item: '7.8.2.1 l', what: 'statement that the results relate only to the items tested', present: (c) => nonEmpty(c.statement) },
  {
    item: '7.8.2.1 m',
    what: 'results with units',
    present: (c) => (c.results?.length ?? 0) > 0 && (c.results ?? []).every((r) => typeof r.unit === 'string'),
  },
  {
    item: '7.8.3.1 c',
    what: 'measurement uncertainty (U, k, coverage probability)',
    present: (c) =>
      (c.results?.length ?? 0) > 0 &&
      (c.results ?? []).every(
        (r) =>
          Number.isFinite(r.uncertainty?.expanded) &&
          Number.isFinite(r.uncertainty?.coverageFactor) &&
          Number.isFinite(r.uncertainty?.coverageProbability),
      ),
  },
  {
    item: '6.5 / 7.8.4.1',
    what: 'traceability statement per instrument',
    present: (c) => (c.traceability?.length ?? 0) > 0 && (c.traceability ?? []).every((i) => i.calibration !== null && nonEmpty(i.statement)),
  },
  {
    item: '7.8.6',
    what: 'statement of conformity with the decision rule',
    present: (c) => (c.results ?? []).every((r) => r.conformity === null || (nonEmpty(r.conformity?.ruleText) && nonEmpty(r.conformity?.statement))),
  },
  {
    item: '7.8.2.1 o',
    what: 'person authorizing the report (name, date and time, meaning of the signature)',
    present: (c) => nonEmpty(c.authorization?.name) && typeof c.authorization?.at === 'number' && nonEmpty(c.authorization?.meaning),
  },
  {
    item: '7.8.2.2',
    what: 'results outside the accreditation scope flagged, mark only when all are inside',
    present: (c) =>
      Array.isArray(c.notAccredited) &&
      c.accreditation !== undefined &&
      (c.accreditation === null || (c.results ?? []).every((r) => r.accredited)) &&
      (c.results ?? []).every((r) => r.accredited || (c.notAccredited ?? []).includes(r.name)),
  },
  {
    item: '7.8.8',
    what: 'amendment reference and reason',
    present: (c) => c.amendment === null || (nonEmpty(c.amendment?.amends) && nonEmpty(c.amendment?.reason)),
  },
  { item: '7.5', what: 'records digest and count', present: (c) => nonEmpty(c.records?.digest) && typeof c.records?.count === 'number' },
  {
    item: 'authenticity',
    what: 'transparency-log checkpoint at issue',
    present: (c) => typeof c.checkpoint?.size === 'number' && nonEmpty(c.checkpoint.rootHash),
  },
];

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/** The mandatory items missing from a content (empty when it is complete), each as "<clause> <what>". */
export function missingFields(content: Partial<CertificateContent>): string[] {
  return MANDATORY_ITEMS.filter((m) => !m.present(content)).map((m) => `${m.item} ${m.what}`);
}

/** The conformity statement as printed, with the decision rule it was decided by (ILAC-G8). */
export function conformityStatement(c: { verdict: 'pass' | 'fail'; ruleText: string; limits: { min?: number; max?: number } }, unit: string): string {
  const u = unit === '' ? '' : ` ${unit}`;
  const range =
    c.limits.min !== undefined && c.limits.max !== undefined
      ? `${c.limits.min}${u} to ${c.limits.max}${u}`
      : c.limits.min !== undefined
        ? `at least ${c.limits.min}${u}`
        : `at most ${String(c.limits.max)}${u}`;
  return `${c.verdict === 'pass' ? 'Conforms to' : 'Does not conform to'} the specification (${range}); decision rule: ${c.ruleText}`;
}
