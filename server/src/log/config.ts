// `log:` in server.yaml: the transparency log's origin, its key file and how often it signs a checkpoint.
// Schema only: the log lives in transparency-log.ts.
import path from 'node:path';
import { z } from 'zod';

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
  })
  .default({ minCheckpointIntervalMs: 1000 });
export type LogConfig = z.output<typeof logConfigSchema>;

/** the key file, relative to the config file's folder */
export function resolveLogConfig(log: LogConfig, baseDir: string): LogConfig {
  return { ...log, ...(log.keyFile === undefined ? {} : { keyFile: path.resolve(baseDir, log.keyFile) }) };
}
