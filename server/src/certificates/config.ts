// The reports' side of server.yaml: `laboratory:` (the laboratory as its reports name it) and `certificates:` (the
// signing key, the report font, the accreditation mark). Schema only: issuing lives in certificates.ts.
import path from 'node:path';
import { z } from 'zod';

/**
 * the laboratory as its reports name it (ISO/IEC 17025 7.8.2.1 b, c): required to issue certificates. `lab`
 * (server.yaml's root) stays the short id in topics and log names.
 */
export const laboratoryConfigSchema = z
  .strictObject({
    name: z.string().trim().min(1, 'required: the name printed on reports').max(200),
    address: z.string().trim().min(1, 'required: the address printed on reports').max(500),
    /** where the tests are done, when not at the address above */
    placeOfWork: z.string().trim().min(1).max(500).optional(),
    /** the laboratory's country, ISO 3166-1 alpha-2 (e.g. DE): the DCC's countryCodeISO3166_1 ("ZZ", unknown, when unset) */
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 country code in capitals, such as DE')
      .optional(),
    /** the laboratory's logo on its reports' letterhead: a PNG or JPEG file (checked at the start) */
    logo: z.string().min(1).optional(),
  })
  .optional();
export type LaboratoryConfig = z.output<typeof laboratoryConfigSchema>;

/** the certificate signing key (C2SP signer key file; created at the first start; default <dataDir>/certificate.key) */
export const certificatesConfigSchema = z
  .strictObject({
    keyFile: z.string().min(1).optional(),
    /**
     * the report font (docs/certificates.md): a TTF/OTF file, or a TTC file with the face's PostScript name; it
     * must cover Chinese. Default: Noto Sans SC from the npm dependency, else Debian's fonts-noto-cjk.
     */
    font: z
      .strictObject({
        regular: z.strictObject({ file: z.string().min(1), face: z.string().min(1).optional() }),
        bold: z.strictObject({ file: z.string().min(1), face: z.string().min(1).optional() }).optional(),
      })
      .optional(),
    /** the accreditation body's mark (PNG or JPEG), printed only on reports whose results all lie in the scope of a current accreditation */
    accreditationMark: z.string().min(1).optional(),
  })
  .default({});
export type CertificatesConfig = z.output<typeof certificatesConfigSchema>;

/** the signing key file, relative to the config file's folder */
export function resolveCertificatesConfig(certificates: CertificatesConfig, baseDir: string): CertificatesConfig {
  return { ...certificates, ...(certificates.keyFile === undefined ? {} : { keyFile: path.resolve(baseDir, certificates.keyFile) }) };
}
