// `demo:` in server.yaml (docs/test-runs.md). Schema only: the demo's runs live in demo.ts.
import { z } from 'zod';
import { idSchema } from '@labtrace/protocols';

/**
 * the demo lab's daily work (`npm start` turns it on): tensile test runs of the simulated testing
 * machine, one specimen each, assigned to `technician`, on samples of `organization`, each with a
 * certificate issued by `signatory` (docs/test-runs.md)
 */
export const demoConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    technician: idSchema.default('technician'),
    signatory: idSchema.default('signatory'),
    organization: idSchema.default('demo-client'),
    /** specimens left out between two demo runs */
    pauseSpecimens: z.number().int().min(0).max(100).default(1),
  })
  .default({ enabled: false, technician: 'technician', signatory: 'signatory', organization: 'demo-client', pauseSpecimens: 1 });
export type DemoConfig = z.output<typeof demoConfigSchema>;
