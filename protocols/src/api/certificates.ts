// Certificates (test reports, ISO/IEC 17025 7.8): requested, issued, amended and revoked; their files; and the
// public verification (status, digests, byte-for-byte check of an uploaded file).
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema, pageOf, pageQuery, reasonSchema } from './common.js';
import { LOCALES } from './auth.js';
import {
  certificateContentSchema,
  certificateSignatureSchema,
  certificateStatementSchema,
  draftContentSchema,
  reportLanguageSchema,
} from './certificate-content.js';
import { line, optionalLine, paragraph } from './text.js';
import { timeMsQuery } from './time.js';

/** a certificate number: TR-<lab>-<n> */
export const certificateIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'expected a report number such as TR-lab-000001');
const runId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a run id');

export const CERTIFICATE_STATUSES = ['draft', 'valid', 'amended', 'revoked'] as const;
export const certificateStatusSchema = z.enum(CERTIFICATE_STATUSES);
export type CertificateStatus = z.output<typeof certificateStatusSchema>;

/**
 * the language the report is printed in: zh-CN, en or bilingual (left out: as asked at the request, else en; an
 * amendment: as the report it replaces)
 */
const language = reportLanguageSchema.optional();
export const certificateRequestBody = z.strictObject({ run: runId, language });
export const certificateIssueBody = z.strictObject({ language });

/**
 * What an amendment corrects (7.8.8): the report's fields as its content holds them. A field left out keeps the
 * value of the report it replaces; a correction is never empty (each field is mandatory on a report, or, for
 * remarks and statements, left out when there are none: send [] or "" to remove them).
 */
export const certificateCorrectionsSchema = z.strictObject({
  customer: z.strictObject({ name: line(200).optional(), contact: paragraph(500).optional() }).optional(),
  item: z.strictObject({ description: paragraph(1000).optional(), condition: paragraph(500).optional() }).optional(),
  /** the signatory's remarks ("" removes them) */
  remarks: z.union([z.literal(''), paragraph(2000)]).optional(),
  /** further statements, each printed as its own paragraph ([] removes them) */
  statements: z.array(paragraph(1000)).max(20, 'at most 20 statements').optional(),
});
export type CertificateCorrections = z.output<typeof certificateCorrectionsSchema>;
/** the fields an amendment may correct, by their path in the content */
export const CORRECTABLE_FIELDS = ['customer.name', 'customer.contact', 'item.description', 'item.condition', 'remarks', 'statements'] as const;
export type CorrectableField = (typeof CORRECTABLE_FIELDS)[number];

export const certificateAmendBody = z.strictObject({ reason: reasonSchema, language, corrections: certificateCorrectionsSchema.optional() });
export const certificateReasonBody = z.strictObject({ reason: reasonSchema });
/**
 * A page of certificates, newest first (by request): of one run, of one status, issued in a time range, or
 * matching a text (report number, customer, run, sample id or description).
 */
export const certificatesQuery = z
  .strictObject({
    ...pageQuery,
    run: runId.optional(),
    status: certificateStatusSchema.optional(),
    /** a substring of the report number, the customer's name, the run id, the sample's id or description */
    q: optionalLine(200).optional(),
    /** issued at or after (ms since the epoch) */
    from: timeMsQuery.optional(),
    /** issued before (ms since the epoch) */
    to: timeMsQuery.optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'must not be before from', path: ['to'] });
/** the preview's query: the language to print it in (else as requested) */
export const certificatePreviewQuery = z.strictObject({ language });
const certificateParams = z.strictObject({ id: certificateIdSchema });

/** a report's verification code: 16 hex digits, printed on the report in its verification link (its QR code) */
export const verificationCodeSchema = z.string().regex(/^[0-9a-f]{16}$/, 'expected the 16 hex digits of the verification link printed on the report');
/** the public status's query: with the report's verification code, the answer carries its summary */
export const publicCertificateQuery = z.strictObject({ code: verificationCodeSchema.optional() });
/** the verification page's query: its language (else the browser's, else en) and the report's verification code */
export const verifyPageQuery = z.strictObject({
  lang: z.enum(LOCALES, { error: 'expected zh-CN or en' }).optional(),
  code: verificationCodeSchema.optional(),
});

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const digestsSchema = z.strictObject({ json: hex64, pdf: hex64, dcc: hex64 });

/** a certificate as lists show it */
export const certificateItemSchema = z.strictObject({
  id: z.string(),
  run: z.string(),
  organization: z.string(),
  status: certificateStatusSchema,
  requestedBy: z.string(),
  requestedAt: msSchema,
  issuedBy: z.string().nullable(),
  issuedAt: msSchema.nullable(),
  /** the certificate this one amends (7.8.8), and the reason */
  amends: z.string().nullable(),
  amendReason: z.string().nullable(),
  /** the certificate that replaced this one */
  amendedBy: z.string().nullable(),
  revokedAt: msSchema.nullable(),
  revocationReason: z.string().nullable(),
  /** SHA-256 of the content's canonical JSON, of the PDF and of the DCC XML, as signed; null for a draft */
  digests: digestsSchema.nullable(),
  keyId: z.string().nullable(),
  logIndex: z.number().int().nullable(),
  verifyUrl: z.string(),
  /** the customer's name (the organization's, as the records hold it now) */
  customer: z.string(),
  /** the sample tested, as the records hold it now */
  sample: z.strictObject({ id: z.string(), description: z.string() }),
});
export type CertificateItem = z.output<typeof certificateItemSchema>;

/** GET /api/certificates/:id: the list item, and for a draft what still blocks its issue, for an issued one its signed content */
/**
 * Why a draft cannot be issued now, as a kind with its parameters (the dashboard words it in the user's language)
 * and the server's English text.
 */
export const BLOCKER_KINDS = [
  'instrument-out-of-service',
  'instrument-out-of-calibration',
  'instrument-never-calibrated',
  'instrument-under-review',
  'no-font',
  'no-results',
  'missing-field',
  'time',
] as const;
export const certificateBlockerSchema = z.strictObject({
  kind: z.enum(BLOCKER_KINDS),
  params: z.record(z.string(), z.union([z.string(), z.number()])),
  text: z.string(),
});
export type CertificateBlocker = z.output<typeof certificateBlockerSchema>;

export const certificateDetailSchema = certificateItemSchema.extend({
  /** a draft: what stands in the way of its issue now (the server's English; blockerDetails says the same by kind) */
  blockers: z.array(z.string()).optional(),
  blockerDetails: z.array(certificateBlockerSchema).optional(),
  /** a draft: its content as it would be issued now (undefined while the run has no results) */
  draft: draftContentSchema.optional(),
  /** the signed content (the JSON file's `certificate`) */
  content: certificateContentSchema.optional(),
  /** what the lab signed: the number, the issue time and the renderings' digests */
  statement: certificateStatementSchema.optional(),
  signature: certificateSignatureSchema.optional(),
});
export type CertificateDetail = z.output<typeof certificateDetailSchema>;

export const publishedKeySchema = z.strictObject({
  keyId: z.string(),
  name: z.string(),
  algorithm: z.literal('Ed25519'),
  publicKey: z.string(),
  verifierKey: z.string(),
});

/** an issued report's content as its holder may see it online: only with the report's verification code */
export const publicSummarySchema = z.strictObject({
  customer: z.string(),
  item: z.strictObject({ id: z.string(), description: z.string() }),
  /** the standard and the method's title */
  method: z.string(),
  /** the language the report was issued in (en for reports issued before languages) */
  language: reportLanguageSchema,
  /** each result with the value and U as the report prints them */
  results: z.array(
    z.strictObject({
      name: z.string(),
      title: z.string(),
      reported: z.string(),
      uncertainty: z.string(),
      coverageFactor: z.number(),
      unit: z.string(),
      verdict: z.enum(['pass', 'fail']).nullable(),
    }),
  ),
  verdict: z.enum(['pass', 'fail', 'no-decision']),
  /** the test run the report was issued from: its client downloads the run's records with their proofs (GET /api/runs/:id/disclosure) */
  run: z.string().optional(),
});
export type PublicSummary = z.output<typeof publicSummarySchema>;

/**
 * what anyone holding a report may read of its status: 404 with `status: 'unknown'` for a number never issued;
 * with the report's verification code (`?code=`), also its summary
 */
export const publicCertificateSchema = z.union([
  z.strictObject({ id: z.string(), status: z.literal('unknown') }),
  z.strictObject({
    id: z.string(),
    status: z.enum(['valid', 'amended', 'revoked']),
    issuedAt: msSchema,
    amends: z.string().nullable(),
    amendReason: z.string().nullable(),
    amendedBy: z.string().nullable(),
    revokedAt: msSchema.nullable(),
    revocationReason: z.string().nullable(),
    digests: digestsSchema,
    /** SHA-256 of the signed JSON file as downloaded */
    jsonFileDigest: hex64,
    keyId: z.string(),
    logIndex: z.number().int(),
    statement: certificateStatementSchema.optional(),
    signature: certificateSignatureSchema.optional(),
    summary: publicSummarySchema.optional(),
  }),
]);
export type PublicCertificate = z.output<typeof publicCertificateSchema>;

export const listCertificates = defineRoute({
  method: 'GET',
  path: '/api/certificates',
  query: certificatesQuery,
  response: pageOf(certificateItemSchema),
});
export const requestCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates',
  body: certificateRequestBody,
  /** the draft (201) */
  response: certificateItemSchema,
});
export const getCertificate = defineRoute({
  method: 'GET',
  path: '/api/certificates/:id',
  params: certificateParams,
  response: certificateDetailSchema,
});
/** application/pdf: a download (409 for a draft) */
export const certificatePdf = defineRoute({ method: 'GET', path: '/api/certificates/:id/pdf', params: certificateParams });
/**
 * application/pdf, shown inline: a draft printed as it would be issued now, marked "DRAFT - not issued" on every
 * page; neither signed nor logged (409 for an issued report: its own PDF is the one to read)
 */
export const certificatePreviewPdf = defineRoute({
  method: 'GET',
  path: '/api/certificates/:id/preview.pdf',
  params: certificateParams,
  query: certificatePreviewQuery,
});
/** the signed JSON file: a download (409 for a draft) */
export const certificateJson = defineRoute({ method: 'GET', path: '/api/certificates/:id/json', params: certificateParams });
/** the DCC XML: a download (409 for a draft) */
export const certificateDcc = defineRoute({ method: 'GET', path: '/api/certificates/:id/dcc.xml', params: certificateParams });
export const issueCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates/:id/issue',
  params: certificateParams,
  body: certificateIssueBody,
  response: certificateItemSchema,
});
export const amendCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates/:id/amend',
  params: certificateParams,
  body: certificateAmendBody,
  /** the new certificate, issued at once in place of the old one (201) */
  response: certificateItemSchema,
});
export const revokeCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates/:id/revoke',
  params: certificateParams,
  body: certificateReasonBody,
  response: certificateItemSchema,
});
export const publicKeys = defineRoute({
  method: 'GET',
  path: '/api/public/keys',
  response: z.strictObject({ certificates: z.array(publishedKeySchema) }),
});
export const publicCertificate = defineRoute({
  method: 'GET',
  path: '/api/public/certificates/:id',
  params: certificateParams,
  query: publicCertificateQuery,
  response: publicCertificateSchema,
});
/** the verification page (HTML, zh-CN or en) a report's QR code links to; 404 for a number never issued */
export const verifyPage = defineRoute({
  method: 'GET',
  path: '/verify/:id',
  params: certificateParams,
  query: verifyPageQuery,
  response: z.string(),
});
/** the file itself as application/octet-stream in the body; nothing is stored */
export const verifyUpload = defineRoute({
  method: 'POST',
  path: '/verify/:id',
  params: certificateParams,
  /** the file's bytes (a Buffer once express.raw has read them): checked by the route, not by a schema */
  body: z.unknown(),
  response: z.strictObject({
    match: z.boolean(),
    format: z.enum(['pdf', 'json', 'dcc', 'unknown']),
    status: z.enum(['unknown', 'valid', 'amended', 'revoked']),
  }),
});
