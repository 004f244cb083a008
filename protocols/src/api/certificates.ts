// Certificates (test reports, ISO/IEC 17025 7.8): requested, issued, amended and revoked; their files; and the
// public verification (status, digests, byte-for-byte check of an uploaded file).
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { msSchema, reasonSchema } from './common.js';

/** a certificate number: TR-<lab>-<n> */
export const certificateIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'expected a report number such as TR-lab-000001');
const runId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a run id');

export const CERTIFICATE_STATUSES = ['draft', 'valid', 'amended', 'revoked'] as const;
export const certificateStatusSchema = z.enum(CERTIFICATE_STATUSES);
export type CertificateStatus = z.output<typeof certificateStatusSchema>;

export const certificateRequestBody = z.strictObject({ run: runId });
export const certificateReasonBody = z.strictObject({ reason: reasonSchema });
export const certificatesQuery = z.strictObject({ run: runId.optional(), status: certificateStatusSchema.optional() });
const certificateParams = z.strictObject({ id: certificateIdSchema });

const digestsSchema = z.strictObject({ json: z.string(), pdf: z.string(), dcc: z.string() });

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
});
export type CertificateItem = z.output<typeof certificateItemSchema>;

/** GET /api/certificates/:id: the list item, and for a draft what still blocks its issue, for an issued one its signed content */
export const certificateDetailSchema = certificateItemSchema.extend({
  blockers: z.array(z.string()).optional(),
  /** the signed content (the JSON file's `certificate`): its shape is the certificate content schema of the server */
  content: z.record(z.string(), z.unknown()).optional(),
  statement: z.record(z.string(), z.unknown()).optional(),
  signature: z.string().optional(),
});
export type CertificateDetail = z.output<typeof certificateDetailSchema>;

export const publishedKeySchema = z.strictObject({
  keyId: z.string(),
  name: z.string(),
  algorithm: z.literal('Ed25519'),
  publicKey: z.string(),
  verifierKey: z.string(),
});

/** what anyone holding a report may read of its status: 404 with `status: 'unknown'` for a number never issued */
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
    jsonFileDigest: z.string(),
    keyId: z.string(),
    logIndex: z.number().int(),
    statement: z.record(z.string(), z.unknown()).optional(),
    signature: z.string().optional(),
  }),
]);
export type PublicCertificate = z.output<typeof publicCertificateSchema>;

export const listCertificates = defineRoute({
  method: 'GET',
  path: '/api/certificates',
  query: certificatesQuery,
  response: z.array(certificateItemSchema),
});
export const requestCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates',
  body: certificateRequestBody,
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
/** the signed JSON file: a download (409 for a draft) */
export const certificateJson = defineRoute({ method: 'GET', path: '/api/certificates/:id/json', params: certificateParams });
/** the DCC XML: a download (409 for a draft) */
export const certificateDcc = defineRoute({ method: 'GET', path: '/api/certificates/:id/dcc.xml', params: certificateParams });
export const issueCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates/:id/issue',
  params: certificateParams,
  response: certificateItemSchema,
});
export const amendCertificate = defineRoute({
  method: 'POST',
  path: '/api/certificates/:id/amend',
  params: certificateParams,
  body: certificateReasonBody,
  /** the new certificate (a draft that amends the old one) */
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
  response: publicCertificateSchema,
});
/** the verification page (HTML) a report's QR code links to */
export const verifyPage = defineRoute({ method: 'GET', path: '/verify/:id', params: certificateParams, response: z.string() });
/** the file itself as application/octet-stream in the body; nothing is stored */
export const verifyUpload = defineRoute({
  method: 'POST',
  path: '/verify/:id',
  params: certificateParams,
  body: z.unknown(),
  response: z.strictObject({
    match: z.boolean(),
    format: z.enum(['pdf', 'json', 'dcc', 'unknown']),
    status: z.enum(['unknown', 'valid', 'amended', 'revoked']),
  }),
});
