// A report issued from a run whose instrument was out of calibration, never calibrated, failed an intermediate
// check, or was out of service while the run measured (ISO/IEC 17025:2017 6.4.4, 6.4.9, 6.4.10).
import type { Bilingual, CertificateEvidence, InstrumentEvidence, Rule, RuleFinding, RunEvidence } from '../evidence.js';

export const calibrationAtRun: Rule = {
  id: 'calibration-at-run',
  title: {
    en: 'Report issued from a run on an instrument out of calibration or out of service',
    zh: '报告所依据的检测使用了校准失效或停用的仪器',
  },
  reference: 'ISO/IEC 17025:2017 6.4.4, 6.4.9, 6.4.10; domain note "Equipment (6.4, 6.5)"',
  severity: 'major',
  remedy: {
    en: 'Review the results of the run (6.4.9): recalibrate or repair the instrument, amend or withdraw the report, and answer with the review record.',
    zh: '复核该次测试的结果（6.4.9）：重新校准或修理仪器，修改或撤回报告，并以复核记录作答。',
  },
  check(evidence) {
    const runs = new Map(evidence.runs.map((r) => [r.id, r]));
    const findings: RuleFinding[] = [];
    for (const cert of evidence.certificates) {
      if (cert.issuedAt === null || cert.amends !== null) continue;
      const run = runs.get(cert.run);
      if (run?.startedAt === null || run === undefined) continue;
      const from = run.startedAt;
      const to = run.endedAt ?? cert.issuedAt;
      for (const { id } of run.instruments) {
        const problem = problemOf(evidence.instruments.get(id), from, to);
        if (problem !== undefined) findings.push(finding(cert, run, id, problem));
      }
    }
    return findings;
  },
};

function finding(cert: CertificateEvidence, run: RunEvidence, instrument: string, problem: Bilingual): RuleFinding {
  return {
    key: `${cert.id}/${instrument}`,
    at: cert.issuedAt ?? 0,
    summary: {
      en: `report ${cert.id} was issued from run ${run.id}, measured with ${instrument} while ${problem.en}`,
      zh: `检测报告 ${cert.id} 依据检测 ${run.id} 签发；该次检测使用仪器 ${instrument}，而该仪器${problem.zh}`,
    },
    subject: { certificate: cert.id, run: run.id, instrument },
    entries: cert.logIndex === null ? [] : [{ index: cert.logIndex, why: 'the issue of the report' }],
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** why the instrument was not fit for use at some moment of [from, to], if it was not (the end of a sentence in each language) */
export function problemOf(instrument: InstrumentEvidence | undefined, from: number, to: number): Bilingual | undefined {
  if (instrument === undefined || instrument.calibrations.length === 0) return { en: 'it had no calibration on record', zh: '无校准记录' };
  // the calibration in force at the start: the newest performed at or before it
  let current: InstrumentEvidence['calibrations'][number] | undefined;
  for (const c of instrument.calibrations)
    if (c.calibratedAt <= from && (current === undefined || c.calibratedAt > current.calibratedAt)) current = c;
  if (current === undefined) return { en: 'it was not yet calibrated', zh: '在检测开始时尚未校准' };
  if (current.nextDueAt < to)
    return {
      en: `its calibration (${current.certificate}) was due on ${iso(current.nextDueAt)}`,
      zh: `的校准（${current.certificate}）已于 ${iso(current.nextDueAt)} 到期`,
    };
  const failed = instrument.checks.find((c) => c.result === 'fail' && c.checkedAt >= current.calibratedAt && c.checkedAt <= to);
  if (failed !== undefined)
    return { en: `it failed an intermediate check on ${iso(failed.checkedAt)}`, zh: `于 ${iso(failed.checkedAt)} 期间核查不合格` };
  let state: 'in-service' | 'out-of-service' = 'in-service';
  for (const s of instrument.status) {
    if (s.at <= from) state = s.status;
    else if (s.at <= to && s.status === 'out-of-service')
      return { en: `it was taken out of service (${s.reason})`, zh: `在检测期间被停用（${s.reason}）` };
  }
  return state === 'out-of-service' ? { en: 'it was out of service', zh: '当时处于停用状态' } : undefined;
}
