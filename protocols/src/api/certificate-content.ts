// What a test report (certificate) says: every item ISO/IEC 17025 7.8.2.1 a-p, 7.8.3 and 7.8.8 ask for, as one
// typed, validated object, and the statement the lab signs over its renderings' digests. The server composes,
// signs and stores them; the API answers them (GET /api/certificates/:id), so their schemas live in the contract.
import { z } from 'zod';

/** the languages a report is issued in: zh-CN, en, or bilingual (each heading in both, Chinese first) */
export const REPORT_LANGUAGES = ['zh-CN', 'en', 'bilingual'] as const;
export type ReportLanguage = (typeof REPORT_LANGUAGES)[number];
export const reportLanguageSchema = z.enum(REPORT_LANGUAGES, { error: 'expected zh-CN, en or bilingual' });

/** what the authorizing signature means (7.8.2.1 o) */
export const SIGNATURE_MEANING = 'approval';

const required = z.string().trim().min(1, 'required');
const instant = z.number().int().min(0);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits');

const limits = z.strictObject({ min: z.number().finite().optional(), max: z.number().finite().optional() });

/**
 * The content's schemas, built twice: for an issued report every mandatory text is non-empty and there is at
 * least one result and one instrument; for a draft (the report as it would be issued now, shown to the signatory
 * before the issue) a field may still be empty: its blockers say what is missing.
 */
function contentSchemas<T extends z.ZodType<string>>(text: T, issued: boolean) {
  const result = z.strictObject({
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

  const traceability = z.strictObject({
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

  const content = z.strictObject({
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
    /**
     * further statements the signatory adds (an amendment's corrections: deviations from the method, conditions
     * of the test, opinions and interpretations marked as such); absent when there are none, as in reports issued
     * before amendments could carry them
     */
    statements: z.array(text).optional(),
    /** the signatory's remarks, printed under their own heading; absent when there are none */
    remarks: text.optional(),
    /** 7.8.3 b, 7.8.2.1 m: results with units, uncertainty, conformity */
    results: issued ? z.array(result).min(1, 'at least one result') : z.array(result),
    /** pass, fail, or no-decision when no result has a limit */
    verdict: z.enum(['pass', 'fail', 'no-decision']),
    /** 6.5 traceability of every instrument the results come from */
    traceability: issued ? z.array(traceability).min(1, 'at least one instrument') : z.array(traceability),
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
  return { result, traceability, content };
}

const issuedSchemas = contentSchemas(required, true);
export const certificateResultSchema = issuedSchemas.result;
export type CertificateResult = z.output<typeof certificateResultSchema>;
export const instrumentTraceabilitySchema = issuedSchemas.traceability;
export type InstrumentTraceability = z.output<typeof instrumentTraceabilitySchema>;
export const certificateContentSchema = issuedSchemas.content;
export type CertificateContent = z.output<typeof certificateContentSchema>;
/** a draft's content as it would be issued now: the same fields, any of which may still be empty (its blockers say which) */
export const draftContentSchema = contentSchemas(z.string(), false).content;

export const STATEMENT_PURPOSE = 'labtrace-certificate-signature';

/** what the lab signs: the certificate's number, its issue time and the digests of its three renderings */
export const certificateStatementSchema = z.strictObject({
  purpose: z.literal(STATEMENT_PURPOSE),
  v: z.literal(1),
  certificate: z.string().min(1),
  issuedAt: z.number().int().min(0),
  /** the key id of the lab's certificate key (8 hex digits, the signed-note key id) */
  keyId: z.string().regex(/^[0-9a-f]{8}$/),
  digestAlgorithm: z.literal('SHA-256'),
  digests: z.strictObject({
    /** of the content's canonical JSON (RFC 8785) bytes */
    json: hex64,
    pdf: hex64,
    dcc: hex64,
  }),
});
export type CertificateStatement = z.output<typeof certificateStatementSchema>;

/** an Ed25519 signature in base64 */
export const certificateSignatureSchema = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature');
