// Builds a certificate's content from the lab's records: the run, the sample and its customer, the method,
// the run's results, the instruments' identity and calibration as they stood during the run.
import { isLabTime, TIME_RANGE } from '../api/time.js';
import type { CalibrationStatus } from '../lab/calibration.js';
import type { RunResults } from '../lab/contracts.js';
import type { Run } from '../lab/runs.js';
import {
  CERTIFICATE_TITLE,
  conformityStatement,
  RELATES_ONLY,
  SIGNATURE_MEANING,
  type CertificateContent,
  type InstrumentTraceability,
} from './content.js';
import type { ReportLanguage } from './report-text.js';

/** The title in the report's language; an amendment names the report it replaces. */
export function titleOf(language: ReportLanguage, amends: string | null): string {
  const en = amends === null ? CERTIFICATE_TITLE : `${CERTIFICATE_TITLE} - Amendment to Report No. ${amends}`;
  const zh = amends === null ? '检测报告' : `检测报告 - 更正报告编号 ${amends} 的报告`;
  return language === 'en' ? en : language === 'zh-CN' ? zh : `${zh} ${en}`;
}

export interface ComposeInput {
  id: string;
  laboratory: { name: string; address: string; placeOfWork?: string | undefined } | undefined;
  run: Run;
  sample: { id: string; description: string; condition: string; receivedAt: number };
  customer: { id: string; name: string; contact: string | null };
  methodTitle: string;
  results: RunResults;
  instruments: {
    id: string;
    identity: { maker: string; model: string; serialNumber: string; firmware?: string | undefined; location?: string | undefined } | undefined;
    /** the calibration status at the run's start and at its end */
    atStart: CalibrationStatus;
    atEnd: CalibrationStatus;
  }[];
  signatory: { name: string; role: string };
  issuedAt: number;
  checkpoint: { origin: string; size: number; rootHash: string };
  amendment: { amends: string; reason: string } | null;
  /**
   * the report's own fields where they differ from the records: an amendment's corrections, and what the report it
   * replaces had corrected (each left out: as the records hold it)
   */
  fields?: ReportFields | undefined;
  verifyUrl: string;
  /** the language of the report (default en) */
  language?: ReportLanguage | undefined;
  /**
   * whether the accreditation the results name is current at the issue (not suspended, withdrawn or expired
   * since the run): the mark is printed only then (default true)
   */
  accreditationCurrent?: boolean | undefined;
}

/** The fields of a report a signatory corrects by an amendment (7.8.8), resolved: undefined keeps the records' value. */
export interface ReportFields {
  customer?: { name?: string | undefined; contact?: string | undefined } | undefined;
  item?: { description?: string | undefined; condition?: string | undefined } | undefined;
  remarks?: string | undefined;
  statements?: readonly string[] | undefined;
}

const SEVERITY: Record<CalibrationStatus['status'], number> = { valid: 0, 'due-soon': 1, 'never-calibrated': 2, expired: 3, 'out-of-service': 4 };

// a stored time that is no date (written before times were bounded) prints as what it is; it also blocks the issue
const day = (ms: number): string => (isLabTime(ms) ? new Date(ms).toISOString().slice(0, 10) : `(no date: ${ms})`);

export function traceabilityOf(i: ComposeInput['instruments'][number]): InstrumentTraceability {
  const worse = SEVERITY[i.atEnd.status] > SEVERITY[i.atStart.status] ? i.atEnd : i.atStart;
  const cal = i.atStart.calibration;
  const identity = i.identity;
  const name = identity === undefined ? i.id : `${identity.maker} ${identity.model}, serial number ${identity.serialNumber}`;
  return {
    id: i.id,
    maker: identity?.maker ?? '',
    model: identity?.model ?? '',
    serialNumber: identity?.serialNumber ?? '',
    firmware: identity?.firmware ?? null,
    location: identity?.location ?? null,
    calibration:
      cal === null ? null : { certificate: cal.certificate, laboratory: cal.laboratory, calibratedAt: cal.calibratedAt, dueAt: cal.nextDueAt },
    statusAtRun: worse.status,
    statement:
      cal === null
        ? `Instrument ${i.id} (${name}) had no calibration record at the time of the test.`
        : `Measurements with instrument ${i.id} (${name}) are traceable to the SI through calibration certificate ${cal.certificate} of ${cal.laboratory}, calibrated on ${day(cal.calibratedAt)}, due ${day(cal.nextDueAt)}; calibration status during the test: ${worse.status}.`,
  };
}

/**
 * The times of the content that are no date a lab can mean (a record stored before times were bounded, with
 * 9e15 ms): each is a blocker naming the record, since no report, PDF or DCC can print it.
 */
export function timeBlockers(content: CertificateContent): string[] {
  const problems: string[] = [];
  const check = (ms: number, what: string): void => {
    if (!isLabTime(ms)) problems.push(`${what} is ${ms}, not a time between ${TIME_RANGE}: correct the record before the report is issued`);
  };
  check(content.receivedAt, `sample "${content.item.id}": the date of receipt`);
  check(content.test.startedAt, `run "${content.test.run}": the start`);
  check(content.test.endedAt, `run "${content.test.run}": the end`);
  for (const t of content.traceability)
    if (t.calibration !== null) {
      const of = `instrument "${t.id}": calibration certificate ${t.calibration.certificate}`;
      check(t.calibration.calibratedAt, `${of}: the calibration date`);
      check(t.calibration.dueAt, `${of}: the due date`);
    }
  check(content.issuedAt, 'the date of issue');
  return problems;
}

/** The content, possibly incomplete (missingFields tells what is absent); validated before it is issued. */
export function composeContent(input: ComposeInput): CertificateContent {
  const { run, results } = input;
  const lab = input.laboratory;
  const language = input.language ?? 'en';
  const fields = input.fields ?? {};
  const remarks = fields.remarks?.trim() ?? '';
  const statements = (fields.statements ?? []).map((s) => s.trim()).filter((s) => s !== '');
  return {
    format: 'labtrace-certificate/1',
    language,
    title: titleOf(language, input.amendment?.amends ?? null),
    laboratory: { name: lab?.name ?? '', address: lab?.address ?? '' },
    placeOfWork: lab === undefined ? '' : (lab.placeOfWork ?? `the laboratory's premises, ${lab.address}`),
    id: input.id,
    customer: {
      id: input.customer.id,
      name: fields.customer?.name ?? input.customer.name,
      contact: fields.customer?.contact ?? input.customer.contact ?? '',
    },
    method: { id: run.method.id, version: run.method.version, standard: run.method.standard, title: input.methodTitle },
    item: {
      id: input.sample.id,
      description: fields.item?.description ?? input.sample.description,
      condition: fields.item?.condition ?? input.sample.condition,
    },
    receivedAt: input.sample.receivedAt,
    test: { run: run.id, startedAt: run.startedAt ?? 0, endedAt: run.endedAt ?? 0, technician: run.technician },
    issuedAt: input.issuedAt,
    statement: RELATES_ONLY,
    // (left out when there are none: the signed bytes of a report without them stay as they were)
    ...(statements.length > 0 ? { statements } : {}),
    ...(remarks !== '' ? { remarks } : {}),
    results: results.results.map((r) => ({
      name: r.name,
      title: r.title,
      measurand: r.measurand,
      unit: r.unit,
      statistic: r.statistic,
      value: r.value,
      reported: r.reported,
      uncertainty: {
        expanded: r.uncertainty.expanded,
        reported: r.reportedUncertainty,
        coverageFactor: r.uncertainty.coverageFactor,
        coverageProbability: r.uncertainty.coverageProbability,
      },
      conformity:
        r.conformity === null
          ? null
          : {
              verdict: r.conformity.verdict,
              rule: r.conformity.rule,
              ruleText: r.conformity.ruleText,
              limits: r.conformity.limits,
              acceptance: r.conformity.acceptance,
              statement: conformityStatement(r.conformity, r.unit),
            },
      instruments: r.instruments,
      sampleCount: r.sampleCount,
      accredited: r.accredited,
      ...(r.accredited ? {} : { scopeNote: r.scopeNote ?? 'outside the accreditation scope' }),
    })),
    verdict: results.verdict,
    traceability: input.instruments.map(traceabilityOf),
    // the mark only when every result lies inside the scope, by the same accreditation (ILAC R7)
    // (a mark needs the body and the number: a scope that names neither gives none)
    accreditation:
      input.accreditationCurrent !== false &&
      results.accredited &&
      results.accreditation !== undefined &&
      results.accreditation.body !== '' &&
      results.accreditation.number !== '' &&
      results.results.every((r) => r.accredited)
        ? { ...results.accreditation }
        : null,
    notAccredited: results.results.filter((r) => !r.accredited).map((r) => r.name),
    authorization: { name: input.signatory.name, role: input.signatory.role, at: input.issuedAt, meaning: SIGNATURE_MEANING },
    records: { ...results.records },
    checkpoint: { ...input.checkpoint },
    amendment: input.amendment === null ? null : { ...input.amendment },
    verifyUrl: input.verifyUrl,
  };
}
