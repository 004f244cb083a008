// `supervision:` in server.yaml: the supervisor that follows this lab, the lab's id there and the lab's standing
// token (docs/supervision.md, "The lab's side"). Schema only: standing-routes.ts reads the supervisor.
import path from 'node:path';
import { z } from 'zod';

export const supervisionConfigSchema = z
  .strictObject({
    /** the supervisor's base URL, e.g. https://supervisor.regulator.example */
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).transform((u) => u.replace(/\/+$/, '')),
    /** the lab's id in the supervisor's supervisor.yaml */
    lab: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected letters, digits, ".", "_" or "-"'),
    /** a file holding the standing token the supervisor enrolled for this lab (at least 32 characters) */
    tokenFile: z.string().min(1).optional(),
    /** or the environment variable holding it */
    tokenEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name')
      .optional(),
  })
  .refine((s) => s.tokenFile !== undefined || s.tokenEnv !== undefined, { message: 'tokenFile or tokenEnv is required', path: ['tokenFile'] })
  .optional();
export type SupervisionConfig = NonNullable<z.output<typeof supervisionConfigSchema>>;

/** the token file relative to the configuration file's folder */
export function resolveSupervisionConfig(config: SupervisionConfig | undefined, baseDir: string): SupervisionConfig | undefined {
  if (config === undefined) return undefined;
  return { ...config, ...(config.tokenFile === undefined ? {} : { tokenFile: path.resolve(baseDir, config.tokenFile) }) };
}
