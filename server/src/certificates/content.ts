// What a test report (certificate) says: every item ISO/IEC 17025 7.8.2.1 a-p, 7.8.3 and 7.8.8 ask for, as one
// typed, validated object. The JSON rendering of it is what the lab signs; the PDF and the DCC show the same.
import type { CertificateContent } from '@labtrace/protocols/api';

export const CERTIFICATE_TITLE = 'Test Report';
export const RELATES_ONLY =
  'The results relate only to the items tested, as received. This report shall not be reproduced except in full without the written approval of the laboratory.';
// the schemas are the API contract's (GET /api/certificates/:id answers the content)
export {
  certificateContentSchema,
  certificateResultSchema,
  instrumentTraceabilitySchema,
  SIGNATURE_MEANING,
  type CertificateContent,
  type CertificateResult,
  type InstrumentTraceability,
} from '@labtrace/protocols/api';

/** The mandatory items, by the letter of 7.8.2.1 (and 7.8.3, 7.8.8), with where they live in the content. */
export const MANDATORY_ITEMS: readonly { key: string; item: string; what: string; present: (c: Partial<CertificateContent>) => boolean }[] = [
  {
    key: 'title',
    item: '7.8.2.1 a',
    what: 'title',
    present: (c) => nonEmpty(c.title),
  },
  {
    key: 'laboratory-name',
    item: '7.8.2.1 b',
    what: 'laboratory name',
    present: (c) => nonEmpty(c.laboratory?.name),
  },
  {
    key: 'laboratory-address',
    item: '7.8.2.1 b',
    what: 'laboratory address',
    present: (c) => nonEmpty(c.laboratory?.address),
  },
  {
    key: 'place-of-work',
    item: '7.8.2.1 c',
    what: 'place of work',
    present: (c) => nonEmpty(c.placeOfWork),
  },
  {
    key: 'identification',
    item: '7.8.2.1 d',
    what: 'unique identification',
    present: (c) => nonEmpty(c.id),
  },
  {
    key: 'customer-name',
    item: '7.8.2.1 e',
    what: 'customer name',
    present: (c) => nonEmpty(c.customer?.name),
  },
  {
    key: 'customer-contact',
    item: '7.8.2.1 e',
    what: 'customer contact',
    present: (c) => nonEmpty(c.customer?.contact),
  },
  {
    key: 'method',
    item: '7.8.2.1 f',
    what: 'method',
    present: (c) => nonEmpty(c.method?.standard) && nonEmpty(c.method?.title),
  },
  {
    key: 'method-version',
    item: '7.8.2.1 f',
    what: 'method version',
    present: (c) => typeof c.method?.version === 'number',
  },
  {
    key: 'item-description',
    item: '7.8.2.1 g',
    what: 'item description',
    present: (c) => nonEmpty(c.item?.description),
  },
  {
    key: 'item-identification',
    item: '7.8.2.1 g',
    what: 'item identification',
    present: (c) => nonEmpty(c.item?.id),
  },
  {
    key: 'item-condition',
    item: '7.8.2.1 g',
    what: 'item condition',
    present: (c) => nonEmpty(c.item?.condition),
  },
  {
    key: 'received',
    item: '7.8.2.1 h',
    what: 'date of receipt',
    present: (c) => typeof c.receivedAt === 'number',
  },
  {
    key: 'test-dates',
    item: '7.8.2.1 i',
    what: 'dates of test',
    present: (c) => typeof c.test?.startedAt === 'number' && typeof c.test.endedAt === 'number',
  },
  {
    key: 'issue-date',
    item: '7.8.2.1 j',
    what: 'date of issue',
    present: (c) => typeof c.issuedAt === 'number',
  },
  {
    key: 'relates-only',
    item: '7.8.2.1 l',
    what: 'statement that the results relate only to the items tested',
    present: (c) => nonEmpty(c.statement),
  },
  {
    key: 'results',
    item: '7.8.2.1 m',
    what: 'results with units',
    present: (c) => (c.results?.length ?? 0) > 0 && (c.results ?? []).every((r) => typeof r.unit === 'string'),
  },
  {
    key: 'uncertainty',
    item: '7.8.3.1 c',
    what: 'measurement uncertainty (U, k, coverage probability)',
    present: (c) =>
      (c.results?.length ?? 0) > 0 &&
      (c.results ?? []).every(
        (r) =>
          Number.isFinite(r.uncertainty?.expanded) &&
          Number.isFinite(r.uncertainty?.coverageFactor) &&
          Number.isFinite(r.uncertainty?.coverageProbability),
      ),
  },
  {
    key: 'traceability',
    item: '6.5 / 7.8.4.1',
    what: 'traceability statement per instrument',
    present: (c) => (c.traceability?.length ?? 0) > 0 && (c.traceability ?? []).every((i) => i.calibration !== null && nonEmpty(i.statement)),
  },
  {
    key: 'conformity',
    item: '7.8.6',
    what: 'statement of conformity with the decision rule',
    present: (c) => (c.results ?? []).every((r) => r.conformity === null || (nonEmpty(r.conformity?.ruleText) && nonEmpty(r.conformity?.statement))),
  },
  {
    key: 'authorization',
    item: '7.8.2.1 o',
    what: 'person authorizing the report (name, date and time, meaning of the signature)',
    present: (c) => nonEmpty(c.authorization?.name) && typeof c.authorization?.at === 'number' && nonEmpty(c.authorization?.meaning),
  },
  {
    key: 'accreditation-scope',
    item: '7.8.2.2',
    what: 'results outside the accreditation scope flagged, mark only when all are inside',
    present: (c) =>
      Array.isArray(c.notAccredited) &&
      c.accreditation !== undefined &&
      (c.accreditation === null || (c.results ?? []).every((r) => r.accredited)) &&
      (c.results ?? []).every((r) => r.accredited || (c.notAccredited ?? []).includes(r.name)),
  },
  {
    key: 'amendment',
    item: '7.8.8',
    what: 'amendment reference and reason',
    present: (c) => c.amendment === null || (nonEmpty(c.amendment?.amends) && nonEmpty(c.amendment?.reason)),
  },
  {
    key: 'records',
    item: '7.5',
    what: 'records digest and count',
    present: (c) => nonEmpty(c.records?.digest) && typeof c.records?.count === 'number',
  },
  {
    key: 'checkpoint',
    item: 'authenticity',
    what: 'transparency-log checkpoint at issue',
    present: (c) => typeof c.checkpoint?.size === 'number' && nonEmpty(c.checkpoint.rootHash),
  },
];

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/** The mandatory items missing from a content (empty when it is complete), each as "<clause> <what>". */
export function missingFields(content: Partial<CertificateContent>): string[] {
  return missingItems(content).map((m) => `${m.item} ${m.what}`);
}

/** The mandatory items missing from a content, with the key a translation names them by. */
export function missingItems(content: Partial<CertificateContent>): { key: string; item: string; what: string }[] {
  return MANDATORY_ITEMS.filter((m) => !m.present(content)).map(({ key, item, what }) => ({ key, item, what }));
}

/** The conformity statement as printed, with the decision rule it was decided by (ILAC-G8). */
export function conformityStatement(c: { verdict: 'pass' | 'fail'; ruleText: string; limits: { min?: number; max?: number } }, unit: string): string {
  const u = unit === '' ? '' : ` ${unit}`;
  const range =
    c.limits.min !== undefined && c.limits.max !== undefined
      ? `${c.limits.min}${u} to ${c.limits.max}${u}`
      : c.limits.min !== undefined
        ? `at least ${c.limits.min}${u}`
        : `at most ${String(c.limits.max)}${u}`;
  return `${c.verdict === 'pass' ? 'Conforms to' : 'Does not conform to'} the specification (${range}); decision rule: ${c.ruleText}`;
}
