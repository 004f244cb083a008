// `retention:` in server.yaml: how long the raw batches (the signed records) and the per-sample index are kept before
// the retention job (retention/retention.ts) removes them. Schema only. Without a value nothing is ever removed.
import { z } from 'zod';

/**
 * The shortest retention a laboratory may configure, in days: six years (6 x 365 days + 2 leap days). ISO/IEC 17025
 * 8.4 leaves the period to the accreditation body; CNAS and China's CMA rules ask that raw records and reports be kept
 * at least six years, the longest of the rules labtrace is built for. A value below it is refused at start.
 */
export const ACCREDITATION_MINIMUM_DAYS = 2192;

const days = (what: string) =>
  z
    .number()
    .int('expected a whole number of days')
    .max(100 * 366, 'expected at most 100 years of days')
    .superRefine((n, ctx) => {
      if (n < ACCREDITATION_MINIMUM_DAYS)
        ctx.addIssue({
          code: 'custom',
          message: `${n} days is below the accreditation minimum of ${ACCREDITATION_MINIMUM_DAYS} days (six years: ISO/IEC 17025 8.4, CNAS/CMA record retention); ${what} may not be kept for less (leave it out to keep them for ever)`,
        });
    });

/** the retention of the store's records; a value left out keeps those records for ever (the default) */
export const retentionConfigSchema = z
  .strictObject({
    /** days a signed batch's records are kept after its arrival; then its records' bytes leave, its header, signature and leaf hashes stay */
    rawBatchesDays: days('raw batches').optional(),
    /** days a batch's samples stay in the per-sample index (the dashboard's reads) after its arrival; a removed batch's samples leave with it */
    sampleIndexDays: days('the per-sample index').optional(),
    /** how often the retention job runs, in hours (default daily) */
    everyHours: z
      .number()
      .min(1)
      .max(24 * 31)
      .default(24),
  })
  .default({ everyHours: 24 });
export type RetentionConfig = z.output<typeof retentionConfigSchema>;
