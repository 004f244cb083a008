// `log:` in server.yaml: the transparency log's origin, its key file and how often it signs a checkpoint.
// Schema only: the log lives in transparency-log.ts.
import path from 'node:path';
import { z } from 'zod';
import { parseCosignerVerifierKey } from '@labtrace/protocols';

/** A witness the lab submits its checkpoints to (C2SP tlog-witness): its URL prefix and its cosigner key. */
export const witnessEndpointSchema = z.strictObject({
  /** the witness's submission prefix; add-checkpoint is appended */
  url: z
    .string()
    .url('expected an http(s) URL such as https://witness.example/')
    .refine((u) => /^https?:\/\//i.test(u), 'expected an http or https URL'),
  /** the witness's cosigner key, `name+keyid+base64(0x04 || key)` (labtrace witness keygen prints it) */
  key: z.string().superRefine((key, ctx) => {
    try {
      parseCosignerVerifierKey(key);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a witness cosigner key (name+keyid+base64 of 0x04 and the key): ${(err as Error).message}` });
    }
  }),
});
export type WitnessEndpointConfig = z.output<typeof witnessEndpointSchema>;

/** the transparency log: its origin (the name in its checkpoints) and the lab's log key (created at first start when absent) */
export const logConfigSchema = z
  .strictObject({
    origin: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, 'expected a schema-less URL such as labtrace.example/lab-a')
      .optional(),
    /** signer key file (C2SP form); default <dataDir>/log.key */
    keyFile: z.string().min(1).optional(),
    minCheckpointIntervalMs: z.number().int().min(100).max(3_600_000).default(1000),
    /** the witnesses that cosign the log's checkpoints (none: checkpoints are signed by the lab alone) */
    witnesses: z
      .array(witnessEndpointSchema)
      .max(32)
      .default([])
      .superRefine((witnesses, ctx) => {
        const seen = new Set<string>();
        witnesses.forEach((w, i) => {
          if (seen.has(w.key)) ctx.addIssue({ code: 'custom', path: [i, 'key'], message: 'this witness key is given twice' });
          seen.add(w.key);
        });
      }),
    /** the longest wait before a witness that failed is asked again (the wait doubles from 1 s up to it) */
    witnessMaxBackoffMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  })
  .default({ minCheckpointIntervalMs: 1000, witnesses: [], witnessMaxBackoffMs: 60_000 });
export type LogConfig = z.output<typeof logConfigSchema>;

/** the key file, relative to the config file's folder */
export function resolveLogConfig(log: LogConfig, baseDir: string): LogConfig {
  return { ...log, ...(log.keyFile === undefined ? {} : { keyFile: path.resolve(baseDir, log.keyFile) }) };
}
