// `ingest:` in server.yaml: the sample times a batch may carry around its arrival. Schema only: ingest lives in ingest.ts.
import { z } from 'zod';

/**
 * the sample times a batch may carry around its arrival (server clock): a batch with samples dated further ahead
 * than maxClockSkewMs or older than maxAgeMs is stored, recorded as a `clock-skew` security event, and kept out of
 * the instruments' latest values (docs/trust.md)
 */
export const ingestConfigSchema = z
  .strictObject({
    maxClockSkewMs: z
      .number()
      .int()
      .min(1000)
      .max(100 * 365 * 86_400_000)
      .default(5 * 60_000),
    maxAgeMs: z
      .number()
      .int()
      .min(60_000)
      .max(100 * 365 * 86_400_000)
      .default(30 * 86_400_000),
    /** how far a gateway's clock may be from the server's (measured from its HEALTH messages) before it is an alarm */
    maxClockOffsetMs: z.number().int().min(100).max(3_600_000).default(2000),
  })
  .default({ maxClockSkewMs: 5 * 60_000, maxAgeMs: 30 * 86_400_000, maxClockOffsetMs: 2000 });
export type IngestConfig = z.output<typeof ingestConfigSchema>;
