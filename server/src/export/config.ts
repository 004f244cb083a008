// `export:` in server.yaml (docs/trust.md, "The client's bundle"). Schema only: the bundles are made in bundle.ts
// and disclosure.ts.
import { z } from 'zod';
import { REDACTABLE_FIELDS } from '@labtrace/protocols';

/**
 * The data-export policy of a client's selective-disclosure bundle: the record fields the lab may not send abroad.
 * Where a record carries one, the bundle holds a salted commitment to it instead (and the record's leaf hash).
 */
export const exportConfigSchema = z
  .strictObject({
    clientBundle: z
      .strictObject({
        redact: z
          .array(z.enum(REDACTABLE_FIELDS))
          .default([])
          .refine((fields) => new Set(fields).size === fields.length, { message: 'a field is named twice' }),
      })
      .default({ redact: [] }),
  })
  .default({ clientBundle: { redact: [] } });
export type ExportConfig = z.output<typeof exportConfigSchema>;
