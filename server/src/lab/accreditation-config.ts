// `accreditation:` in server.yaml: when expiry warnings start, and the accreditations recorded at the first start.
// Schema only: the accreditation records and their workflow live in accreditation.ts.
import { z } from 'zod';
import { accreditationFields, configTime, validAfterFrom, validToIssue } from '@labtrace/protocols/api';

const configAccreditation = z
  .strictObject({ ...accreditationFields, validFrom: configTime, validTo: configTime })
  .refine(validAfterFrom, validToIssue);

/** `accreditation` in server.yaml: when expiry warnings start, and the accreditations recorded at the first start */
export const accreditationConfigSchema = z
  .strictObject({
    /** how many days before valid_to an accreditation shows the warning expiring-soon */
    warnDays: z.number().int().min(0).max(3650).default(90),
    /** recorded once (by the user `system`, through the audit trail) when the server starts and they are not yet there */
    accreditations: z
      .array(configAccreditation)
      .max(100)
      .default([])
      .superRefine((list, ctx) => {
        const ids = new Set<string>();
        list.forEach((a, i) => {
          if (ids.has(a.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${a.id}" appears twice` });
          ids.add(a.id);
        });
      }),
    // the list of standards of earlier versions: a scope is now part of an accreditation record
    scope: z
      .never({
        error:
          'replaced by accreditations[]: each accreditation has a body, a number, validFrom/validTo and a scope of {standard, measurand, unit, min, max} entries (docs/accreditation.md)',
      })
      .optional(),
  })
  .default({ warnDays: 90, accreditations: [] });
export type AccreditationConfig = z.output<typeof accreditationConfigSchema>;
