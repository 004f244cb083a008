// `calibration:` in server.yaml (docs/calibration.md). Schema only: the calibration records live in calibration.ts.
import { z } from 'zod';

/** calibration status (docs/calibration.md): an instrument never calibrated may not start a run unless requireForRuns is false */
export const calibrationConfigSchema = z
  .strictObject({ requireForRuns: z.boolean().default(true), dueSoonDays: z.number().int().min(0).max(365).default(30) })
  .default({ requireForRuns: true, dueSoonDays: 30 });
export type CalibrationConfig = z.output<typeof calibrationConfigSchema>;
